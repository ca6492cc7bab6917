"""Shared fixtures: real PostgreSQL and Redis, offscreen Qt, isolated user directories."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# tests share generators and watchers with benchmarks/ (one copy of each): make it importable
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REQUIRE_SERVICES = os.environ.get("KIS_DESK_REQUIRE_SERVICES") == "1"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 1.0):
            return True
    except OSError:
        return False


def _service_url(env_name: str, default: str, port: int, what: str) -> str:
    url = os.environ.get(env_name, default)
    if not _reachable(url, port):
        message = f"{what} not reachable at {urlsplit(url).hostname}:{urlsplit(url).port or port} (set {env_name})"
        if REQUIRE_SERVICES:
            pytest.fail(message + " — KIS_DESK_REQUIRE_SERVICES=1, so this is a failure")
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url() -> str:
    """SQLAlchemy URL of a real PostgreSQL database."""
    return _service_url("KIS_DESK_TEST_PG_URL", DEFAULT_PG_URL, 5432, "PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    """URL of a real Redis server."""
    return _service_url("KIS_DESK_TEST_REDIS_URL", DEFAULT_REDIS_URL, 6379, "Redis")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own data/log/config directories (never the user's)."""
    monkeypatch.setenv("KIS_DESK_HOME", str(tmp_path / "kis-desk-home"))
    return tmp_path / "kis-desk-home"


@pytest.fixture
def qloop(qapp):
    """A qasync loop on pytest-qt's QApplication: the desktop app's own arrangement."""
    import qasync

    from kis_desk.ui.gc_guard import GuiThreadGarbageCollector

    guard = GuiThreadGarbageCollector(freeze_after_ms=None)   # as in the app: Qt objects die on the GUI thread only
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    yield loop
    # a task a test left behind (a dialog's storage read, say) must not run on a later test's
    # event processing with no loop (noise: "no running event loop" logged to a closed stream)
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending and not loop.is_closed():
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    asyncio.set_event_loop(None)
    guard.stop()
    guard.deleteLater()


@pytest.fixture
def memory_keyring():
    """A real in-memory keyring backend (headless machines have none); Korean UI strings."""
    import keyring

    from kis_desk.ui.i18n import set_language
    from test_ui_support import MemoryKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    set_language("ko")
    yield
    keyring.set_keyring(previous)
    set_language("ko")
