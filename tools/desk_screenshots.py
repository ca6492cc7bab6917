"""Screenshots of the dark theme and the alert history on a live simulator demo.

``xvfb-run -a -s "-screen 0 1920x1080x24" python -m tools.desk_screenshots``

Throw-away ``KIS_DESK_HOME``; the demo database is seeded with a week of made-up past alerts (so
the history has something to show), then the app runs the simulator in the dark theme, a
scripted jump raises a live alert, and the tool writes ``docs/screenshot-dark-1920.png`` (the
window with the banner) and ``docs/screenshot-history.png`` (the alert history dialog).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seed_history(db_url: str, codes: list[str], names, days: int = 7) -> int:
    """A few past alerts per day (some acknowledged) in the demo database."""
    from kis_desk.core.events import AlertEvent
    from kis_desk.engine.storage import Repository
    from kis_desk.protocol.records import KST

    rng = random.Random(12)
    repo = Repository(db_url)
    today = datetime.now(KST).date()
    n = 0
    try:
        for back in range(days, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() >= 5:
                continue
            for _ in range(rng.randint(2, 5)):
                code = rng.choice(codes[:20])
                up = rng.random() < 0.55
                move = rng.uniform(5.0, 9.5) * (1 if up else -1)
                t = datetime(day.year, day.month, day.day, rng.randint(9, 15), rng.randint(0, 59),
                             rng.randint(0, 59), tzinfo=KST)
                base = rng.randrange(5_000, 300_000, 50)
                trigger = round(base * (1 + move / 100) / 50) * 50
                pct = round((trigger - base) / base * 100, 2)
                n += 1
                a = AlertEvent(alert_id=f"{code}:{day:%Y%m%d}:{'up' if up else 'down'}:1:{n}", stock_code=code,
                               stock_name=names(code), direction="up" if up else "down", change_pct=pct,
                               base_price=base, base_time=t - timedelta(seconds=45),
                               trigger_price=trigger, trigger_time=t, trigger_cum_volume=n,
                               detected_at=t.astimezone(timezone.utc), window_seconds=60.0, threshold_pct=5.0)
                repo.save_alert(a)
                if rng.random() < 0.5:
                    repo.acknowledge(a.alert_id)
    finally:
        repo.close()
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.desk_screenshots", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument("--after", type=float, default=8.0)
    args = p.parse_args(argv)
    os.environ["KIS_DESK_HOME"] = tempfile.mkdtemp(prefix="kis-desk-desk-shots-")
    from kis_desk.config import UserPaths
    from kis_desk.engine.collector import CollectorConfig
    from kis_desk.logs import setup_logging
    from kis_desk.market.symbols import default_directory, default_watchlist
    from kis_desk.settings import SettingsStore, UserSettings
    from kis_desk.ui.app import run_app

    setup_logging("WARNING")
    store = SettingsStore()
    store.save(UserSettings(language="ko", sound=False, theme="dark"))
    codes = default_watchlist()
    seed_history(UserPaths.default().ensure().default_demo_database_url, codes, default_directory().name)
    width, height = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    jump_code = codes[2]

    async def script(window) -> None:
        from PySide6.QtCore import QTimer

        window.resize(width, height)
        await asyncio.sleep(args.warmup)
        window.engine.exchange.simulator.jump(jump_code, 6.5, 6.0)
        await asyncio.sleep(args.after)
        window.select_code(jump_code)
        await asyncio.sleep(1.5)
        dialog = window.desk.open_history()
        dialog.resize(1280, 640)
        await asyncio.sleep(1.5)
        done = asyncio.get_running_loop().create_future()

        def grab() -> None:            # outside any task: grab() processes Qt events
            dark = args.out / f"screenshot-dark-{width}.png"
            history = args.out / "screenshot-history.png"
            dialog.grab().save(str(history))
            dialog.hide()
            window.grab().save(str(dark))
            shots.extend([dark, history])
            done.set_result(None)

        QTimer.singleShot(0, grab)
        await done
        print(f"history rows: {dialog.model.rowCount()}, live alerts: {window.alert_dock.model.rowCount()}",
              flush=True)
        window.close()

    code = run_app([sys.argv[0]], CollectorConfig(env="sim", codes=[], sim_rate=400.0), store=store,
                   on_started=script)
    for s in shots:
        print(f"wrote {s}")
    return code if shots else 1


if __name__ == "__main__":
    sys.exit(main())
