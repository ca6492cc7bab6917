"""``make screenshots``: run the app on a live simulator demo and save PNGs of the window.

Runs under the current display (``xvfb-run`` in the Makefile; ``QT_QPA_PLATFORM=offscreen`` works
too). Uses a throw-away ``KIS_DESK_HOME`` so the user's data and settings are untouched; the
watchlist is the default 50; a scripted jump on one symbol triggers an alert before the grab.

Writes ``docs/screenshot-main<suffix>.png`` (the whole window) and ``docs/screenshot-chart<suffix>.png``
(the detail chart of the symbol that jumped); ``make screenshots`` takes them at 1366×768 and
1920×1080 (``--size``, ``--suffix``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="output folder (default docs/)")
    p.add_argument("--warmup", type=float, default=8.0, help="seconds of trading before the jump")
    p.add_argument("--after", type=float, default=10.0, help="seconds after the jump starts")
    p.add_argument("--rate", type=float, default=400.0, help="simulated trades per second")
    p.add_argument("--lang", choices=("ko", "en"), default="ko", help="UI language")
    p.add_argument("--size", default="screen",
                   help="window size WxH, or 'screen': as the app sizes itself on a first start")
    p.add_argument("--suffix", default="", help="appended to the file names (e.g. -1366x768-after)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = tempfile.mkdtemp(prefix="kis-desk-shots-")
    os.environ["KIS_DESK_HOME"] = home            # before anything reads UserPaths
    from kis_desk.engine.collector import CollectorConfig
    from kis_desk.logs import setup_logging
    from kis_desk.market.symbols import default_watchlist
    from kis_desk.settings import SettingsStore, UserSettings
    from kis_desk.ui.app import run_app

    setup_logging("WARNING")
    store = SettingsStore()
    store.save(UserSettings(language=args.lang, sound=False))
    codes = default_watchlist()
    jump_code = codes[2] if len(codes) > 2 else codes[0]
    size = None if args.size == "screen" else tuple(int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    async def script(window) -> None:
        from PySide6.QtCore import QTimer

        if size is not None:
            window.resize(*size)
        await asyncio.sleep(args.warmup)
        window.engine.exchange.simulator.jump(jump_code, 6.5, 6.0)   # the demo's scripted move
        await asyncio.sleep(args.after)
        window.select_code(jump_code)
        await asyncio.sleep(1.5)                          # chart history load + a redraw
        # grab outside any asyncio task: grab() may process Qt events, which would re-enter
        # other tasks from inside this one (qasync: "Cannot enter into task …")
        done = asyncio.get_running_loop().create_future()

        def grab() -> None:
            main_png = args.out / f"screenshot-main{args.suffix}.png"
            window.grab().save(str(main_png))
            chart_png = args.out / f"screenshot-chart{args.suffix}.png"
            window.chart.grab().save(str(chart_png))
            shots.extend([main_png, chart_png])
            done.set_result(None)

        QTimer.singleShot(0, grab)
        await done
        area = window.screen().availableGeometry()
        print(f"window {window.frameGeometry().getRect()} on screen area {area.getRect()}; "
              f"minimum size hint {window.minimumSizeHint().toTuple()}", flush=True)
        print(f"alerts: {window.alert_dock.model.rowCount()}, rows: {window.model.rowCount()}, "
              f"ticks applied: {window.model.ticks_applied}", flush=True)
        window.close()

    # demo spikes off: their VI auctions would hold the scripted jump for two minutes
    config = CollectorConfig(env="sim", codes=[], sim_rate=args.rate, sim_spikes=False)
    code = run_app([sys.argv[0]], config, store=store, on_started=script)
    for s in shots:
        print(f"wrote {s}")
    return code if shots else 1


if __name__ == "__main__":
    sys.exit(main())
