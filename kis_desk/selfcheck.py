"""``kis-desk --self-check``: exercise the real stack briefly and say what works.

Frozen or not, offscreen or on a display: checks the bundled libraries and resources (the
frozen probe), then runs the real desktop app on the built-in simulator with a temporary home
(so a user's data is never touched): ticks are collected into a temporary SQLite database, a
scripted jump must raise an alert, and the main window must show the watchlist. Prints one line
per check and exits 0 only when every check passed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import traceback
from typing import Any

CHECK_SECONDS = 25.0


def _line(ok: bool, name: str, detail: str) -> str:
    return f"{'ok    ' if ok else 'FAILED'} {name:<22} {detail}"


def self_check_main() -> int:
    results: list[tuple[bool, str, str]] = []
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kis-desk-selfcheck-", ignore_cleanup_errors=True) as home:
        os.environ["KIS_DESK_HOME"] = home      # never the user's settings or database
        try:
            from .frozen_probe import probe

            for name, item in probe().items():
                results.append((bool(item.get("ok")), f"bundle: {name}", str(item.get("detail", ""))[:90]))
        except Exception as exc:
            results.append((False, "bundle probe", f"{type(exc).__name__}: {exc}"))
        try:
            results += _run_stack(home)
        except Exception as exc:
            traceback.print_exc()
            results.append((False, "desktop stack", f"{type(exc).__name__}: {exc}"))
    for ok, name, detail in results:
        print(_line(ok, name, detail))
    failed = [name for ok, name, _ in results if not ok]
    took = time.monotonic() - started
    if failed:
        print(f"self-check FAILED ({len(failed)} of {len(results)}): {', '.join(failed)} [{took:.1f} s]")
        return 1
    print(f"self-check passed: {len(results)} checks in {took:.1f} s")
    return 0


def _run_stack(home: str) -> list[tuple[bool, str, str]]:
    from .config import UserPaths
    from .engine.collector import CollectorConfig
    from .core.events import AlertEvent
    from .market.symbols import default_watchlist
    from .ui.app import run_app

    paths = UserPaths.default().ensure()
    codes = default_watchlist()[:10]
    db_url = f"sqlite:///{(paths.data / 'self-check.sqlite3').as_posix()}"
    config = CollectorConfig(env="sim", codes=codes, sim_rate=400, db_url=db_url, paths=paths,
                             sim_jumps=[(codes[0], 8.0, 1.0)])
    found: dict[str, Any] = {}

    async def exercise(window: Any) -> None:
        engine = window.engine
        alerts: list[AlertEvent] = []
        engine.bus.subscribe(AlertEvent, alerts.append)
        deadline = time.monotonic() + CHECK_SECONDS
        while time.monotonic() < deadline:
            s = engine.summary()
            if s["stored"] > 100 and alerts and window.model.rowCount() == len(codes):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)           # let the grid's coalescing timer paint once
        found["summary_live"] = engine.summary()
        found["alerts"] = len(alerts)
        found["rows"] = window.model.rowCount()
        image = window.grab().toImage()
        found["image"] = (image.width(), image.height(), not image.isNull())
        window.closeRequested.emit()

    code = run_app([sys.argv[0], "-platform", os.environ.get("QT_QPA_PLATFORM", "")]
                   if os.environ.get("QT_QPA_PLATFORM") else [sys.argv[0]], config, on_started=exercise,
                   single_instance=True)    # as the real app starts (QtNetwork + filelock in the bundle)
    out: list[tuple[bool, str, str]] = []
    live = found.get("summary_live", {})
    out.append((code == 0, "app exit", f"code {code}"))
    out.append((live.get("received", 0) > 100, "simulator → feed", f"{live.get('received', 0)} trades received"))
    from .engine.storage import Repository

    repo = Repository(db_url)
    try:
        stored = repo.count_ticks()
    finally:
        repo.close()
    out.append((stored >= live.get("received", 1) - live.get("duplicates", 0) and stored > 100,
                "storage (SQLite)", f"{stored} trades in the database after shutdown"))
    out.append((found.get("alerts", 0) >= 1, "detector", f"{found.get('alerts', 0)} alert(s) from a scripted +8% jump"))
    out.append((found.get("rows") == len(codes), "main window", f"{found.get('rows')} rows in the grid"))
    w, h, ok = found.get("image", (0, 0, False))
    out.append((ok and w > 0 and h > 0, "rendering", f"window grabbed at {w}×{h}"))
    return out
