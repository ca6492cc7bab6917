"""Helpers shared by the UI tests (no tests here): in-memory keyring, a small real engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import keyring
import keyring.backend
import keyring.errors

from kis_desk.core.events import EventBus
from kis_desk.engine.handle import EngineReads


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps passwords in a dict (keyrings.alt is not installed)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.passwords[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


class RecordingEngine(EngineReads):
    """A tiny EngineHandle: real bus, symbols and SQLite repository (the engines' shared
    EngineReads over it); records engine calls."""

    def __init__(self, db_url: str) -> None:
        from kis_desk.engine.storage import Repository
        from kis_desk.market.symbols import default_directory

        self.bus = EventBus()
        self.symbols = default_directory()
        self.repository = Repository(db_url)
        self.calls: list[tuple[str, object]] = []
        self.simulated = self.always_open = False
        self.attached = False
        from kis_desk.engine.alert_rules import AlertRules

        self.alert_rules = AlertRules(5.0, 60.0)
        self.owns_alert_rules = True
        self.states: dict = {}                 # market_states(): halts / VI under way

    def market_states(self) -> dict:
        return dict(self.states)

    async def start(self) -> None:
        self.calls.append(("start", None))

    async def stop(self) -> None:
        self.calls.append(("stop", None))
        self.repository.close()

    async def set_watchlist(self, codes: Sequence[str]) -> None:
        self.calls.append(("set_watchlist", list(codes)))

    async def acknowledge_alert(self, alert_id: str) -> None:
        self.calls.append(("acknowledge", alert_id))
        await asyncio.to_thread(self.repository.acknowledge, alert_id)

    # -- alert history and the test alert: recorded, then the real reads ------------------------
    async def alerts_between(self, start_date, end_date, codes=None, direction=None) -> list:
        self.calls.append(("alerts_between", (start_date, end_date, codes, direction)))
        return await super().alerts_between(start_date, end_date, codes, direction)

    async def acknowledge_alerts(self, alert_ids: Sequence[str]) -> int:
        self.calls.append(("acknowledge_alerts", list(alert_ids)))
        return await super().acknowledge_alerts(alert_ids)

    async def set_alert_rules(self, rules) -> None:
        self.calls.append(("set_alert_rules", rules))
        self.alert_rules = rules

    async def send_test_alert(self, alert) -> None:
        self.calls.append(("send_test_alert", alert.alert_id))
        return None                                   # no Redis configured
    async def apply_settings(self, settings, store, previous=None) -> list[str]:
        self.calls.append(("apply_settings", (settings, previous)))
        return ["threshold_pct"]

    def watchlist_calls(self) -> list[list[str]]:
        return [c[1] for c in self.calls if c[0] == "set_watchlist"]  # type: ignore[misc]


async def until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Wait (yielding to the loop) until ``predicate()``; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)



def recording_engine(codes: Sequence[str], watchlist: str = "기본") -> RecordingEngine:
    """A RecordingEngine on the test's own user database with one watchlist of ``codes``."""
    from kis_desk.config import UserPaths

    eng = RecordingEngine(UserPaths.default().ensure().default_database_url)
    eng.repository.create_watchlist(watchlist, list(codes))
    return eng


@contextmanager
def shown_window(qloop, engine, codes: Sequence[str], watchlist: str = "기본") -> Iterator:
    """The real MainWindow on ``engine``, shown and started on ``watchlist``; shut down after."""
    from kis_desk.settings import SettingsStore
    from kis_desk.ui.main_window import MainWindow

    win = MainWindow(engine, SettingsStore())
    win.show()
    qloop.run_until_complete(win.start(watchlist, list(codes)))
    try:
        yield win
    finally:
        qloop.run_until_complete(win.shutdown())
        win.close()
        win.deleteLater()
