"""The start-up benchmark's measurements, each run in its own process by ``bench_startup``.

``python -m benchmarks.startup_probe app|reads DB_URL DAY ARG`` prints one JSON line:

* ``app``: the desktop app from ``ui.app.run_window`` (offscreen Qt, the built-in simulator,
  the clock moved to DAY 15:31) until a grid flush paints the first live trade, with
  milestones (watchlist, collector started, window started, rows seeded, first row's chart,
  a chart opened afterwards), the process's CPU and GC time until then, and logged errors;
  ARG: seconds to wait at most. The patches below work on the tree before the change too
  (``--before``).
* ``reads``: the storage reads alone (``load_intraday`` of 50 symbols, the busiest symbol's
  chart read, the back-fill resume points, ``storage_info``), ARG times each (median).
"""

from __future__ import annotations

import gc
import json
import logging
import resource
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


def _shifted_clock(day: date):
    from benchmarks.startup_data import after_session

    start, origin = after_session(day), time.time()
    return lambda: start + timedelta(seconds=time.time() - origin)


def _child_app(db_url: str, day: date, timeout: float) -> dict[str, Any]:
    """The desktop app from ``run_window`` to the first live trade painted, with milestones."""
    import asyncio

    import qasync
    from PySide6.QtWidgets import QApplication

    from kis_desk.core.events import EventBus, SessionStateEvent, TicksEvent
    from kis_desk.engine.collector import Collector, CollectorConfig
    from kis_desk.engine.storage import retention
    from kis_desk.settings import SettingsStore, UserSettings
    from kis_desk.ui import app as ui_app
    from kis_desk.ui.main_window import MainWindow
    from kis_desk.ui.watchlist_model import WatchlistModel

    clock = _shifted_clock(day)
    marks: dict[str, Any] = {}
    t0, cpu0 = [0.0], [0.0]

    def mark(name: str) -> None:
        marks.setdefault(name, round(time.perf_counter() - t0[0], 4))

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter() - t0[0]
            try:
                return await original(*args, **kwargs)
            finally:
                took = round(time.perf_counter() - t0[0] - began, 4)
                marks.setdefault(label + "_all", []).append(took)
                if label not in marks:
                    marks[label] = round(time.perf_counter() - t0[0], 4)
                    marks[label + "_took"] = took

        setattr(owner, name, wrapper)

    # the benchmark's day everywhere (these work on the tree before the change too)
    build = ui_app.build_collector
    ui_app.build_collector = lambda config, *a, **kw: build(config, *a, **{**kw, "clock": clock})
    window_init = MainWindow.__init__
    MainWindow.__init__ = lambda self, *a, **kw: window_init(self, *a, **{**kw, "clock": clock})
    retention_init = retention.Retention.__init__
    retention.Retention.__init__ = lambda self, policy, **kw: retention_init(
        self, policy, **{**kw, "today": lambda: clock().date()})
    watchlist = ui_app.resolve_watchlist

    def resolve(*args: Any) -> Any:
        try:
            return watchlist(*args)
        finally:
            mark("watchlist")

    ui_app.resolve_watchlist = resolve
    timed(Collector, "start", "collector_started")
    timed(MainWindow, "start", "window_started")
    # the window's jobs moved to helper classes (ui/row_history.py, ui/chart_link.py); older trees
    # have them on the window
    if hasattr(MainWindow, "seed_rows"):
        timed(MainWindow, "seed_rows", "rows_seeded")
        timed(MainWindow, "_load_chart", "chart_loaded")
    else:
        from kis_desk.ui.chart_link import ChartLink
        from kis_desk.ui.row_history import RowHistory

        timed(RowHistory, "seed_rows", "rows_seeded")
        timed(ChartLink, "load", "chart_loaded")
    flush = WatchlistModel.flush

    def painted(self: WatchlistModel) -> None:
        flush(self)
        if self.ticks_applied and "live" not in marks:
            mark("live")
            gc_spent["until_live_s"] = round(gc_spent["s"], 3)
            marks["cpu_until_live_s"] = round(_cpu() - cpu0[0], 3)

    WatchlistModel.flush = painted
    gc_spent = {"s": 0.0, "gen2": 0, "until_live_s": None}
    gc_began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:     # the GUI thread's collections
        if phase == "start":
            gc_began[0] = time.perf_counter()
        else:
            gc_spent["s"] += time.perf_counter() - gc_began[0]
            gc_spent["gen2"] += info["generation"] == 2

    gc.callbacks.append(on_gc)
    publish = EventBus.publish

    def noted(self: EventBus, event: Any) -> None:       # where the first live data came from
        if isinstance(event, TicksEvent) and event.ticks:
            mark(f"first_trade_{event.ticks[0].source}")
        elif isinstance(event, SessionStateEvent) and event.state == "live":
            mark(f"{event.session}_live")
        publish(self, event)

    EventBus.publish = noted
    app = QApplication.instance() or QApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()

    async def script(window: Any) -> None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not (
                "live" in marks and "rows_seeded" in marks and "chart_loaded" in marks):
            await asyncio.sleep(0.005)
        # a chart opened once the window is up (the user selecting a row): another symbol,
        # then the busiest again
        await asyncio.sleep(1.0)
        for code in (window.model.codes()[1], window.model.codes()[0]):
            loads = len(marks.get("chart_loaded_all", []))
            window.select_code(code)
            while len(marks.get("chart_loaded_all", [])) == loads and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
        marks["chart_clicked_took"] = marks["chart_loaded_all"][-1]
        model = window.model
        marks["rows"] = model.rowCount()
        marks["rows_with_history"] = sum(1 for c in model.codes() if model.state(c).open is not None
                                         and model.state(c).spark.points)
        marks["errors"] = errors
        marks["gc_until_live_s"], marks["gc_s"], marks["gc_full"] = (
            gc_spent["until_live_s"], round(gc_spent["s"], 3), gc_spent["gen2"])
        stop.set()

    errors: list[str] = []

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage() + (f" {record.exc_info[1]!r}" if record.exc_info else ""))

    logging.getLogger().addHandler(Errors(logging.ERROR))
    store = SettingsStore()
    store.save(UserSettings(sound=False))
    config = CollectorConfig(env="sim", codes=[], db_url=db_url)
    try:
        t0[0], cpu0[0] = time.perf_counter(), _cpu()
        loop.run_until_complete(ui_app.run_window(config, store=store, on_started=script, stop=stop))
    finally:
        loop.close()
    return marks


def _cpu() -> float:
    """CPU seconds of this process, every thread."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _median_time(fn: Any, n: int) -> tuple[float, list[float], Any]:
    runs, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), [round(r, 4) for r in runs], out


def _child_reads(db_url: str, day: date, repeat: int) -> dict[str, Any]:
    """The storage reads of the start, the sparklines and the chart, alone."""
    from kis_desk.engine import handle
    from kis_desk.engine.storage import Repository
    from kis_desk.market.symbols import default_watchlist
    from kis_desk.protocol.records import KST
    from kis_desk.ui.row_state import SPARK_POINTS

    codes = default_watchlist()[:50]
    repo = Repository(db_url)
    out: dict[str, Any] = {}
    try:
        med, runs, loaded = _median_time(lambda: handle.load_intraday(repo, codes, day, SPARK_POINTS), repeat)
        out["intraday_s"], out["intraday_runs"], out["intraday_rows"] = med, runs, len(loaded)
        if hasattr(handle, "DaySeries"):
            from kis_desk.engine.storage.day_reads import day_series
            from kis_desk.ui.chart import history_from_series

            chart = lambda: history_from_series(handle.DaySeries(*day_series(repo, codes[0], day)))  # noqa: E731
        else:
            from kis_desk.ui.chart import history_arrays

            start = datetime(day.year, day.month, day.day, tzinfo=KST)
            chart = lambda: history_arrays(repo.ticks_between(codes[0], start, start + timedelta(days=1)))  # noqa: E731
        med, runs, h = _median_time(chart, repeat)
        out["chart_s"], out["chart_runs"], out["chart_points"] = med, runs, len(h.t)

        def resume_points() -> None:
            for code in codes:
                if repo.last_trade(code, day) is not None:
                    repo.last_before_first_gap(code, day)

        out["resume_s"], out["resume_runs"], _ = _median_time(resume_points, max(1, repeat // 2))
        if hasattr(repo, "storage_info"):
            out["storage_info_s"], _, info = _median_time(repo.storage_info, repeat)
            out["storage_info"] = {"size_bytes": info.size_bytes, "trade_days": getattr(info, "trade_days", None)}
        out["busiest_trades"] = repo.count_ticks(codes[0], day)
    finally:
        repo.close()
    return out


def child_main(argv: list[str]) -> int:
    import kis_desk

    print(f"kis_desk from {Path(kis_desk.__file__).parent.parent}", file=sys.stderr)
    what, db_url, day = argv[0], argv[1], date.fromisoformat(argv[2])
    if what == "app":
        result = _child_app(db_url, day, float(argv[3]))
    else:
        result = _child_reads(db_url, day, int(argv[3]))
    print(json.dumps(result), flush=True)
    return 0




if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
