"""``make screenshots``: the app on a live simulator demo, photographed the way a trader sees it.

One command takes every picture in ``docs/`` (README and docs point at these files only):

* ``screenshot-main-<W>x<H>.png`` and ``…-dark.png`` — the whole window at 1366×768 and
  1920×1080, light and dark theme, with an alert showing: the banner, the highlighted row and
  the alert dock (a scripted +6.5 % jump on one symbol);
* ``screenshot-chart-<W>x<H>.png`` and ``…-dark.png`` — that window's detail chart;
* ``screenshot-nxt-vi-<W>x<H>.png`` — light theme, venue ``total`` with the market's clock moved
  into NXT's after-market (16:40 KST: the status bar reads "NXT 애프터마켓", the simulator trades
  by the session table): a scripted +6.5 % move on one symbol runs into a VI and its auction
  print raises the alert (the alert dock's VI mark, the chart's VI band), a second symbol is in a
  VI auction ("VI 16:4x" in the 구분 column) and a third is halted ("정지");
* ``screenshot-history.png`` — the alert history (1920×1080 run; a week of made-up past alerts
  is put in the demo database first);
* ``screenshot-chart.png`` and ``…-dark.png`` — the candle chart on a fixed 40-minute day
  (``tools/chart_screenshot.py``: the same picture on every run).

Each size runs on its own X server of exactly that size (``xvfb-run``) with openbox as the window
manager, as a first start on a fresh profile (a throw-away ``KIS_DESK_HOME``: the user's data and
settings are untouched), so the window sizes itself to the screen as it would for a user. The
themes are switched live in one run, as Settings → 테마 does; the NXT scene is a second run per
size (its own clock and VI rule). ``--here`` takes one size on the current display instead (no Xvfb).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = ("1366x768", "1920x1080")
HISTORY_SIZE = "1920x1080"
SCENES = ("main", "nxt-vi")
NXT_AT = (16, 40, 0)      # KST: NXT's after-market (15:30–20:00), KRX in its single-price session
VI_SECONDS = 40.0         # the NXT scene's VI auctions (KRX: 2 minutes + random end; compressed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tools.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "docs", help="output folder (default docs/)")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), help="screen sizes WxH (default both)")
    p.add_argument("--here", action="store_true",
                   help="one size on the current display (the first of --sizes), no Xvfb")
    p.add_argument("--warmup", type=float, default=6.0, help="seconds of trading before the jump")
    p.add_argument("--after", type=float, default=3.0, help="seconds after the first alert")
    p.add_argument("--rate", type=float, default=400.0, help="simulated trades per second")
    p.add_argument("--lang", choices=("ko", "en"), default="ko", help="UI language")
    p.add_argument("--scenes", nargs="+", choices=SCENES, default=list(SCENES), help="scenes (default all)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- the parent: one X server per size -------------------------------------------------------------
def run_all(args: argparse.Namespace) -> int:
    if not shutil.which("xvfb-run"):
        print("screenshots: xvfb-run not found (apt-get install xvfb xauth), or use --here on a display",
              file=sys.stderr)
        return 2
    if not shutil.which("openbox"):
        print("screenshots: openbox not found (apt-get install openbox): the window would have no "
              "frame and no window manager placing it", file=sys.stderr)
        return 2
    for size in args.sizes:
        for scene in args.scenes:
            width, height = _size(size)
            inner = " ".join([sys.executable, "-m", "tools.screenshots", "--child", "--sizes", size,
                              "--scenes", scene, "--out", str(args.out), "--warmup", str(args.warmup),
                              "--after", str(args.after), "--rate", str(args.rate), "--lang", args.lang])
            script = f"openbox >/dev/null 2>&1 & sleep 0.5; {inner}; status=$?; kill %1 2>/dev/null; exit $status"
            env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
            env["QT_QPA_PLATFORM"] = "xcb"
            print(f"screenshots: {size} {scene} on Xvfb + openbox …", flush=True)
            done = subprocess.run(["xvfb-run", "-a", "-s", f"-screen 0 {width}x{height}x24", "sh", "-c", script],
                                  env=env, cwd=ROOT, timeout=300)
            if done.returncode != 0:
                print(f"screenshots: the {size} {scene} run failed (exit {done.returncode})", file=sys.stderr)
                return done.returncode
    done = subprocess.run([sys.executable, "-m", "tools.chart_screenshot", "--out", str(args.out)], cwd=ROOT,
                          env={**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")})
    return done.returncode


def _size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


# -- the child: one size, light then dark ----------------------------------------------------------
def seed_history(db_url: str, codes: list[str], names, days: int = 7) -> int:
    """A few past alerts per weekday (about half acknowledged) in the demo database."""
    import sqlalchemy as sa

    from kis_desk.core.events import AlertEvent
    from kis_desk.engine.storage import Repository
    from kis_desk.engine.storage.schema import alerts
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
                if rng.random() < 0.5:          # seen a minute or two later
                    repo.acknowledge(a.alert_id)
                    seen = t + timedelta(seconds=rng.randint(20, 180))
                    with repo.engine.begin() as conn:
                        conn.execute(sa.update(alerts).where(alerts.c.alert_id == a.alert_id)
                                     .values(acknowledged_at=seen.astimezone(timezone.utc)))
    finally:
        repo.close()
    return n


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"screenshots: gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def _grab(shots: dict[str, object]) -> None:
    """Save ``{path: widget}`` from a plain Qt callback: ``grab()`` processes Qt events, which
    would re-enter other asyncio tasks from inside this one (qasync: "Cannot enter into task")."""
    from PySide6.QtCore import QTimer

    done = asyncio.get_running_loop().create_future()

    def grab() -> None:
        for path, widget in shots.items():
            widget.grab().save(path)      # type: ignore[attr-defined]
            print(f"wrote {path}", flush=True)
        done.set_result(None)

    QTimer.singleShot(0, grab)
    await done


def run_child(args: argparse.Namespace) -> int:
    size = args.sizes[0]
    os.environ["KIS_DESK_HOME"] = tempfile.mkdtemp(prefix="kis-desk-shots-")   # before UserPaths
    from kis_desk.config import UserPaths
    from kis_desk.engine.collector import CollectorConfig
    from kis_desk.logs import setup_logging
    from kis_desk.market.symbols import default_directory, default_watchlist
    from kis_desk.settings import SettingsStore, UserSettings
    from kis_desk.ui.app import run_app

    setup_logging("WARNING")
    store = SettingsStore()
    store.save(UserSettings(language=args.lang, sound=False, theme="light"))
    codes = default_watchlist()
    if args.scenes[0] == "nxt-vi":
        return run_nxt_vi(args, store, codes)
    history = size == HISTORY_SIZE
    if history:
        seed_history(UserPaths.default().ensure().default_demo_database_url, codes, default_directory().name)
    jump_code = codes[2] if len(codes) > 2 else codes[0]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    async def script(window) -> None:
        feed = window.engine.feed
        await _until(feed.all_live, 30, "every symbol live")
        await asyncio.sleep(args.warmup)
        window.engine.exchange.simulator.jump(jump_code, 6.5, 6.0)      # the demo's scripted move
        await _until(lambda: window.alert_dock.model.rowCount() > 0, 40, "the jump's alert")
        await asyncio.sleep(args.after)
        window.select_code(jump_code)
        window.status.clearMessage()      # start-up notes (keyring, …) are not part of the scene
        await asyncio.sleep(1.5)          # chart history load + a redraw
        window.banner.hide_timer.stop()   # the banner stays for the pictures (it hides after 8 s)
        shots = {str(out / f"screenshot-main-{size}.png"): window,
                 str(out / f"screenshot-chart-{size}.png"): window.chart}
        await _grab(shots)
        written.extend(shots)
        if history:
            dialog = window.desk.open_history()
            dialog.resize(1280, 640)
            await dialog.idle()
            await asyncio.sleep(1.0)
            await _grab({str(out / "screenshot-history.png"): dialog})
            written.append(str(out / "screenshot-history.png"))
            dialog.hide()
        window.apply_settings(replace(window.settings, theme="dark"))    # as Settings → 테마 does
        await asyncio.sleep(1.5)
        window.banner.hide_timer.stop()
        shots = {str(out / f"screenshot-main-{size}-dark.png"): window,
                 str(out / f"screenshot-chart-{size}-dark.png"): window.chart}
        await _grab(shots)
        written.extend(shots)
        area = window.screen().availableGeometry()
        print(f"{size}: window {window.frameGeometry().getRect()} on screen area {area.getRect()}; "
              f"alerts {window.alert_dock.model.rowCount()}, rows {window.model.rowCount()}, "
              f"status bar {window.status.error.text()!r}", flush=True)
        window.apply_settings(replace(window.settings, theme="light"))   # the throw-away profile only
        window.close()

    # demo spikes off: their VI auctions would hold the scripted jump for two minutes
    config = CollectorConfig(env="sim", codes=[], sim_rate=args.rate, sim_spikes=False)
    code = run_app([sys.argv[0]], config, store=store, on_started=script)
    return code if written else 1


def nxt_clock():
    """A KST clock that runs from ``NXT_AT`` on the last trading day up to today (the calendar's)."""
    from kis_desk.market.calendar import MarketPhase, default_calendar
    from kis_desk.protocol.records import KST

    cal = default_calendar()
    day = datetime.now(KST).date()
    start = datetime(day.year, day.month, day.day, *NXT_AT, tzinfo=KST)
    while cal.phase_at(start, "total") is not MarketPhase.AFTER_MARKET:
        start -= timedelta(days=1)
    shift = start - datetime.now(KST)
    return lambda: datetime.now(KST) + shift


def run_nxt_vi(args: argparse.Namespace, store, codes: list[str]) -> int:
    """The NXT scene: venue total at 16:40, a VI that ends in an alert, one in progress, a halt."""
    from kis_desk.engine.collector import CollectorConfig
    from kis_desk.sim.config import ViSpec
    from kis_desk.ui.app import run_app

    size = args.sizes[0]
    vi_code, auction_code, halt_code = codes[2], codes[4], codes[6]
    path = args.out / f"screenshot-nxt-vi-{size}.png"
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    async def script(window) -> None:
        engine = window.engine
        sim = engine.exchange.simulator
        sim.config.vi = ViSpec(seconds=VI_SECONDS, random_end=0.0)   # the VI rule, compressed
        await _until(engine.feed.all_live, 30, "every symbol live")
        await asyncio.sleep(args.warmup)
        sim.faults.halt(halt_code)                 # until resumed: 정지
        sim.jump(vi_code, 6.5, 6.0)                # runs into a dynamic VI; its print alerts
        await asyncio.sleep(VI_SECONDS / 2)
        sim.jump(auction_code, 6.5, 6.0)           # in its VI auction when the picture is taken
        await _until(lambda: window.alert_dock.model.rowCount() > 0, VI_SECONDS + 40, "the VI's alert")
        states = engine.market_states
        await _until(lambda: {auction_code, halt_code} <= set(states()), 30, "the VI and halt badges")
        await asyncio.sleep(args.after)
        window.select_code(vi_code)
        window.status.clearMessage()
        await asyncio.sleep(1.5)
        window.banner.hide_timer.stop()
        await _grab({str(path): window})
        written.append(str(path))
        print(f"{size} nxt-vi: states {dict((c, e.state) for c, e in states().items())}, "
              f"alerts {window.alert_dock.model.rowCount()}, phase {window.status.phase.text()!r}", flush=True)
        window.close()

    config = CollectorConfig(env="sim", codes=[], sim_rate=args.rate, sim_spikes=False, venue="total",
                             always_open=False)
    code = run_app([sys.argv[0]], config, store=store, on_started=script, clock=nxt_clock())
    return code if written else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child or args.here:
        return run_child(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
