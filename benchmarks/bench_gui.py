"""GUI smoothness under load: event-loop lag and CPU at 2,000 trades/s, memory over 1M trades.

The full main window (grid with sparklines, chart following the selected row, status bar,
alert dock) runs offscreen at 1680×1020 on a qasync loop. Real ``TicksEvent`` batches of 20
trades (one per simulated network read) are published on the real EventBus every 10 ms across
50 symbols. A 10 ms QTimer measures its own lateness (the GUI's responsiveness); process CPU
comes from ``getrusage``. The idle run (same window, no trades) is the baseline.

Memory: 1,000,000 trades spread over a simulated 6.5-hour session are pushed through the bus
as fast as possible; RSS after the first 100k and after 1M must stay flat (bounded per-row
history).
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Engine:
    """Just enough EngineHandle for the window: real bus, symbols and SQLite repository."""

    def __init__(self, db_url: str) -> None:
        from kis_desk.core.events import EventBus
        from kis_desk.engine.storage import Repository
        from kis_desk.market.symbols import default_directory

        self.bus = EventBus()
        self.symbols = default_directory()
        self.repository = Repository(db_url)

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.repository.close()

    async def set_watchlist(self, codes) -> None: ...

    async def acknowledge_alert(self, alert_id: str) -> None: ...


class _Market:
    """Random-walk trades for 50 codes with growing cumulative volume (cheap to generate)."""

    def __init__(self, codes: list[str], start: datetime, step_seconds: float) -> None:
        from kis_desk.core.ticks import Tick

        self.Tick = Tick
        self.codes = codes
        self.prev = {c: 10_000 + 1_000 * i for i, c in enumerate(codes)}
        self.price = dict(self.prev)
        self.cum = {c: 0 for c in codes}
        self.t = start
        self.step = timedelta(seconds=step_seconds)
        self.rng = random.Random(7)

    def batch(self, n: int) -> tuple:
        out = []
        rng, Tick = self.rng, self.Tick
        for _ in range(n):
            c = self.codes[rng.randrange(len(self.codes))]
            p = max(100, self.price[c] + rng.choice((-10, 0, 0, 10)))
            self.price[c] = p
            v = rng.randint(1, 50)
            self.cum[c] += v
            ch = p - self.prev[c]
            self.t += self.step
            out.append(Tick(c, self.t, p, v, self.cum[c], ch, round(ch / self.prev[c] * 100, 2), 100.0,
                            0.0, "ws"))
        return tuple(out)


async def _measure(window, market, rate: float, seconds: float) -> dict:
    from PySide6.QtCore import Qt, QTimer

    from kis_desk.core.events import TicksEvent

    lateness: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        lateness.append(max(0.0, now - last[0] - 0.010))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    emits0, applied0 = window.model.emits, window.model.ticks_applied
    cpu0, wall0 = _cpu(), time.perf_counter()
    timer.start()
    sent = 0
    bus = window.engine.bus
    while (elapsed := time.perf_counter() - wall0) < seconds:
        if rate:
            due = int(elapsed * rate) - sent
            while due > 0:
                n = min(20, due)
                bus.publish(TicksEvent(market.batch(n)))
                sent += n
                due -= n
        await asyncio.sleep(0.010)
    timer.stop()
    wall = time.perf_counter() - wall0
    cpu = _cpu() - cpu0
    lat = sorted(lateness) or [0.0]
    return {
        "seconds": round(wall, 2), "trades": sent, "trades_per_s": round(sent / wall, 1),
        "lag_p50_ms": round(statistics.median(lat) * 1e3, 2),
        "lag_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 2),
        "lag_max_ms": round(lat[-1] * 1e3, 2),
        "timer_ticks": len(lat),
        "cpu_percent": round(cpu / wall * 100, 1),
        "data_changed_per_s": round((window.model.emits - emits0) / wall, 1),
        "applied": window.model.ticks_applied - applied0,
    }


async def _memory(window, market, total: int) -> dict:
    from PySide6.QtWidgets import QApplication

    from kis_desk.core.events import TicksEvent

    bus = window.engine.bus
    batch = 200
    rss_at: dict[int, float] = {}
    sent = 0
    t0 = time.perf_counter()
    while sent < total:
        bus.publish(TicksEvent(market.batch(batch)))
        sent += batch
        if sent % 20_000 == 0:
            window.model.flush()
            window.chart.redraw()
            QApplication.processEvents()
            await asyncio.sleep(0)
        if sent in (100_000, total):
            import gc
            gc.collect()
            rss_at[sent] = _rss_mib()
    wall = time.perf_counter() - t0
    spark = max(len(window.model.state(c).spark.points) for c in window.model.codes())
    return {"trades": sent, "rss_100k_mib": round(rss_at[100_000], 1),
            "rss_end_mib": round(rss_at[total], 1),
            "growth_mib": round(rss_at[total] - rss_at[100_000], 1),
            "max_sparkline_points": spark, "chart_points": window.chart.series.n,
            "trades_per_s_unthrottled": round(sent / wall)}


async def _bench(quick: bool) -> dict:
    from kis_desk.market.symbols import default_watchlist
    from kis_desk.protocol.records import KST
    from kis_desk.settings import SettingsStore
    from kis_desk.ui.main_window import MainWindow

    home = tempfile.mkdtemp(prefix="kis-desk-bench-gui-")
    previous_home = os.environ.get("KIS_DESK_HOME")
    os.environ["KIS_DESK_HOME"] = home        # never the user's settings or database
    from kis_desk.config import UserPaths

    paths = UserPaths.default().ensure()
    engine = _Engine(paths.default_database_url)
    codes = default_watchlist()[:50]
    engine.repository.create_watchlist("bench", codes)
    window = MainWindow(engine, SettingsStore())
    window.resize(1680, 1020)
    window.show()
    await window.start("bench", codes)
    window.select_code(codes[0])
    seconds = 4.0 if quick else 15.0
    start = datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    idle = await _measure(window, _Market(codes, start, 0.0005), 0, min(seconds, 5.0))
    loaded = await _measure(window, _Market(codes, start, 0.0005), 2000.0, seconds)
    total = 200_000 if quick else 1_000_000
    mem_market = _Market(codes, start, 6.5 * 3600 / total)   # the whole session
    memory = await _memory(window, mem_market, total)
    await window.shutdown()
    window.close()
    await engine.stop()
    if previous_home is None:
        os.environ.pop("KIS_DESK_HOME", None)
    else:
        os.environ["KIS_DESK_HOME"] = previous_home
    shutil.rmtree(home, ignore_errors=True)
    return {"idle": idle, "load": loaded, "memory": memory}


def run(quick: bool = False) -> dict:
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        r = loop.run_until_complete(_bench(quick))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    idle, load, mem = r["idle"], r["load"], r["memory"]
    results = [
        {"metric": "trades/s pushed to a 50-row window", "value": load["trades_per_s"], "unit": "trades/s",
         "goal": "2,000"},
        {"metric": "GUI lag p50 under load", "value": load["lag_p50_ms"], "unit": "ms",
         "baseline": idle["lag_p50_ms"], "goal": "< 5 ms"},
        {"metric": "GUI lag p99 under load", "value": load["lag_p99_ms"], "unit": "ms",
         "baseline": idle["lag_p99_ms"], "goal": "< 50 ms"},
        {"metric": "GUI lag max under load", "value": load["lag_max_ms"], "unit": "ms"},
        {"metric": "process CPU under load", "value": load["cpu_percent"], "unit": "% of one core",
         "baseline": idle["cpu_percent"]},
        {"metric": "dataChanged signals under load", "value": load["data_changed_per_s"], "unit": "/s",
         "goal": "8 Hz per dirty row range (value cells) + 2 Hz per sparkline cell, not per trade"},
        {"metric": f"RSS growth {mem['trades']:,} trades (after first 100k)", "value": mem["growth_mib"],
         "unit": "MiB", "goal": "flat (< 10 MiB)"},
        {"metric": "max sparkline points per row", "value": mem["max_sparkline_points"], "unit": "points"},
        {"metric": "trades/s through bus+model+chart, unthrottled", "value": mem["trades_per_s_unthrottled"],
         "unit": "trades/s"},
    ]
    for row in results:
        if row.get("baseline"):
            row["ratio"] = round(row["value"] / row["baseline"], 2)
    return {"name": "gui", "results": results,
            "ratios": {"cpu_load_vs_idle": round(load["cpu_percent"] / max(idle["cpu_percent"], 0.1), 1)},
            **r}


def main() -> int:
    import json

    quick = "--quick" in sys.argv
    report = run(quick)
    width = max(len(r["metric"]) for r in report["results"])
    for r in report["results"]:
        base = f"  (idle {r['baseline']})" if "baseline" in r else ""
        print(f"{r['metric'].ljust(width)}  {r['value']!s:>12} {r['unit']}{base}  {r.get('goal', '')}")
    print(json.dumps({k: v for k, v in report.items() if k != "results"}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
