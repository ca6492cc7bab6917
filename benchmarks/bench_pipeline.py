"""End-to-end benchmarks of the collector (issue 3 and 4 goals).

* ingest: the same pre-built stream (burst_server) consumed by a bare ``websockets`` receive
  loop vs by the whole collector (decode → Tick → detector → bus → writer committed to SQLite);
  ratio = our trades/s ÷ bare trades/s (goal ≥ 0.5), and CPU µs per trade of the whole process
  (``getrusage``: every thread, plus any child process reaped meanwhile) from the first trade to
  the last one received (bare) or committed (ours). The collector runs twice per round: with the
  compiled kernels (frame decoder kis_desk/core/_frame_ticks.pyx, detector step
  kis_desk/engine/_detector_step.pyx, the SQLite writer's rows _trade_values.pyx and its GIL-free
  INSERT _trade_insert.pyx) when they are built, and pure Python (what runs without a C
  compiler), alternating so load changes hit both.
* latency: the stream paced at 2,000 and 20,000 trades/s; trade sent by the server → row
  committed in SQLite, p50/p99 (goal p99 < 100 ms at 2,000/s).
* resubscribe: simulator drops every socket; time until every symbol is acknowledged again
  (goal median < 2 s).
* alert: simulator jumps under 2,000 trades/s; jump trade's arrival → alert received by a Redis
  subscriber, p50/p99 (goal p99 < 100 ms). Skipped when no Redis is reachable.
* failover: 50 symbols at 400 trades/s on two keys, production feed settings (no compressed
  time); one key refused with OPSP8996 for 60 s (15 s with --quick): the longest time any symbol
  received no fresh data (goal ≤ 10 s); a 60 s (15 s) stall: silence before it is declared
  (goal 10–15 s).
* headless demo: ``kis-desk collect`` on its built-in simulator (collector + embedded simulator +
  SQLite writer in one process) at the demo's 200 trades/s and at 2,000 trades/s: CPU % of one
  core (``getrusage`` of the process) and µs of CPU per stored trade, with the simulator's old
  10 ms market step measured in the same run as the baseline (issue 14).
  ``python -m benchmarks.bench_pipeline --headless`` runs only this part, ``--ingest`` only the
  ingest part.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

from kis_desk.config import UserPaths
from kis_desk.core.heap import freeze_startup_heap, thaw_heap
from kis_desk.engine.collector import Collector, CollectorConfig
from kis_desk.wiring import build_collector
from kis_desk.core.events import AlertEvent, Event, TicksEvent
from kis_desk.protocol.codec import build_approval_request, build_subscription

from .burst_server import BurstServer, ProcessBurstServer, make_frames

CODES = [f"{i:06d}" for i in range(100_010, 100_050)]   # 40 codes: one session

#: Where the ingest benchmark's producer runs, for the bare loop and ours alike:
#: "loop" = on the consumer's own event loop (the producer's framing and sending cost is added
#: to both sides); "process" = a separate process (the consumer's loop thread does only its own
#: work, but on a 2-core machine the producer then occupies the core the writer thread would use).
PRODUCER = os.environ.get("KIS_BENCH_PRODUCER", "loop")


def _server(frames: list[tuple[str, int]], rate: float | None = None) -> Any:
    cls = ProcessBurstServer if PRODUCER == "process" else BurstServer
    return cls(frames, rate=rate, expected_subscriptions=len(CODES))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _paths(tmp: str) -> UserPaths:
    base = Path(tmp)
    return UserPaths(base / "data", base / "logs", base / "config")


def _use_compiled(compiled: bool) -> Any:
    """Run the compiled kernels (frame decoder, detector step, the SQLite writer's rows and its
    GIL-free INSERT) when built, or the pure-Python ones (``compiled=False``: the tree as it runs
    without a C compiler); returns the undo."""
    from kis_desk.core.frame_ticks import FRAME_TICKS
    from kis_desk.engine.detector import MoveDetector
    from kis_desk.engine.detector_window import SymbolState
    from kis_desk.engine.storage import raw_sqlite, sqlite_backend
    from kis_desk.feed import session as feed_session

    saved = (feed_session.FRAME_TICKS, MoveDetector._one, MoveDetector._state_class,
             MoveDetector.process, sqlite_backend.FLAT_VALUES, raw_sqlite._KERNEL)
    if not compiled:
        feed_session.FRAME_TICKS = None
        MoveDetector._one, MoveDetector._state_class = MoveDetector._one_python, SymbolState
        MoveDetector.process = MoveDetector._process_python
        sqlite_backend.FLAT_VALUES = raw_sqlite._KERNEL = None

    def restore() -> None:
        (feed_session.FRAME_TICKS, MoveDetector._one, MoveDetector._state_class,
         MoveDetector.process, sqlite_backend.FLAT_VALUES, raw_sqlite._KERNEL) = saved
    return restore


def _cpu_now() -> float:
    """CPU seconds of this process (all threads) and of its reaped children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def _bare_receive(frames: list[tuple[str, int]], cpu: list[float] | None = None) -> float:
    """Baseline: approval + subscribe + a bare recv loop counting data frames."""
    server = _server(frames)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(server.rest_url + "/oauth2/Approval",
                                 json=build_approval_request("k", "s")) as r:
                approval = (await r.json())["approval_key"]
        freeze_startup_heap()                 # the same heap as the collector runs with
        async with connect(server.ws_url, ping_interval=None, max_size=None, compression=None) as ws:
            for code in CODES:
                await ws.send(build_subscription(approval, "H0STCNT0", code))
            expected = len(frames)
            got = 0
            first = 0.0
            cpu0 = 0.0
            while got < expected:
                msg = await ws.recv(decode=False)
                if msg[:1] == b"0":
                    if got == 0:
                        first, cpu0 = time.perf_counter(), _cpu_now()
                    got += 1
            elapsed = time.perf_counter() - first
            if cpu is not None:
                cpu.append(_cpu_now() - cpu0)
            return elapsed
    finally:
        await server.stop()
        thaw_heap()


async def _collector_receive(frames: list[tuple[str, int]], n_trades: int, tmp: str,
                             rate: float | None = None, compiled: bool = True) -> dict[str, Any]:
    """Our pipeline on the same stream: time (and CPU) from the first tick to the last row
    committed. ``compiled=False``: the feed decodes with the pure-Python path."""
    restore = _use_compiled(compiled)
    server = _server(frames, rate) if rate is None else BurstServer(
        frames, rate=rate, expected_subscriptions=len(CODES))
    await server.start()
    cfg = CollectorConfig(env="sim", ws_url=server.ws_url, rest_url=server.rest_url, codes=list(CODES),
                          db_url=f"sqlite:///{tmp}/bench-{time.time_ns()}.sqlite3", paths=_paths(tmp))
    collector = build_collector(cfg)
    first: list[float] = []
    latencies: list[float] = []
    frame_of: dict[tuple[str, int], int] = {}
    if rate is not None:
        for i, (frame, _k) in enumerate(frames):
            payload = frame.split("|", 3)[3].split("^")
            for j in range(0, len(payload), 46):
                frame_of[(payload[j], int(payload[j + 13]))] = i

    cpu0: list[float] = []

    def on_event(event: Any) -> None:
        if isinstance(event, TicksEvent) and not first:
            first.append(time.perf_counter())
            cpu0.append(_cpu_now())

    def on_committed(batch: Any, commit_wall: float) -> None:
        if rate is None or isinstance(batch, int):
            return
        for t in batch:
            i = frame_of.get((t.stock_code, t.cum_volume))
            if i is not None and i < len(server.sent_at):
                latencies.append((commit_wall - server.sent_at[i]) * 1000)

    collector.bus.subscribe(Event, on_event)
    await collector.start()
    freeze_startup_heap()                     # as ``kis-desk collect`` and the app do
    collector.writer.on_committed.append(on_committed)
    try:
        deadline = time.perf_counter() + 300
        while collector.writer.stats().stored + collector.writer.stats().duplicates < n_trades:
            if time.perf_counter() > deadline:
                raise TimeoutError("collector did not store the stream within 300 s")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - first[0]
        cpu = _cpu_now() - cpu0[0]
    finally:
        await collector.stop()
        await server.stop()
        restore()
        thaw_heap()
    return {"elapsed": elapsed, "cpu": cpu, "latencies_ms": latencies,
            "stored": collector.writer.stats().stored}


async def _feed_receive(frames: list[tuple[str, int]], n_trades: int, compiled: bool = True) -> float:
    """The feed alone (socket → decode → Tick → on_ticks), to show where the time goes."""
    from kis_desk.config import AppCredential, Secret, custom_environment
    from kis_desk.feed.manager import FeedManager

    restore = _use_compiled(compiled)

    server = _server(frames)
    await server.start()
    got = [0]
    first: list[float] = []
    done = asyncio.Event()

    def on_ticks(ticks: Any, source: str) -> None:
        if not first:
            first.append(time.perf_counter())
        got[0] += len(ticks)
        if got[0] >= n_trades:
            done.set()

    feed = FeedManager(custom_environment(server.ws_url, server.rest_url),
                       [AppCredential("key1", Secret("BENCHKEY"), Secret("BENCHSECRET"))], on_ticks)
    try:
        await feed.start(CODES)
        await asyncio.wait_for(done.wait(), 300)
        return time.perf_counter() - first[0]
    finally:
        await feed.stop()
        await server.stop()
        restore()


async def _ingest(quick: bool, tmp: str) -> list[dict[str, Any]]:
    from kis_desk.core.frame_ticks import IMPLEMENTATION

    n = 40_000 if quick else 200_000
    frames = make_frames(CODES, n)
    compiled = IMPLEMENTATION == "compiled"
    rate: dict[str, list[float]] = {}
    cpu_us: dict[str, list[float]] = {}

    def note(key: str, elapsed: float, cpu: float | None = None) -> None:
        rate.setdefault(key, []).append(n / elapsed)
        if cpu is not None:
            cpu_us.setdefault(key, []).append(cpu / n * 1e6)

    load0 = os.getloadavg()[0]
    for _ in range(1 if quick else 3):
        bare_cpu: list[float] = []
        note("bare", await _bare_receive(frames, bare_cpu), bare_cpu[0])
        note("feed", await _feed_receive(frames, n, compiled))
        if compiled:
            note("feed_py", await _feed_receive(frames, n, False))
        r = await _collector_receive(frames, n, tmp, compiled=compiled)
        note("ours", r["elapsed"], r["cpu"])
        if compiled:
            r = await _collector_receive(frames, n, tmp, compiled=False)
            note("ours_py", r["elapsed"], r["cpu"])
    load = (load0 + os.getloadavg()[0]) / 2
    med = {k: statistics.median(v) for k, v in rate.items()}
    cpu = {k: statistics.median(v) for k, v in cpu_us.items()}
    b = med["bare"]
    decoder = "compiled kernels" if compiled else "pure Python: extensions not built"
    rows = [
        {"metric": f"bare websockets receive (producer: {PRODUCER})", "value": b, "unit": "trades/s",
         "cpu_us_per_trade": cpu["bare"], "load_avg": round(load, 2)},
        {"metric": f"feed only (decode → Tick; {decoder})", "value": med["feed"], "unit": "trades/s",
         "baseline": b, "ratio": med["feed"] / b},
    ]
    if compiled:
        rows.append({"metric": "feed only (decode → Tick; pure Python)", "value": med["feed_py"],
                     "unit": "trades/s", "baseline": b, "ratio": med["feed_py"] / b})
    rows.append({"metric": f"collector ingest (parse+detect+store; {decoder})", "value": med["ours"],
                 "unit": "trades/s", "baseline": b, "ratio": med["ours"] / b, "goal": ">= 0.5",
                 "cpu_us_per_trade": cpu["ours"], "bare_cpu_us_per_trade": cpu["bare"]})
    if compiled:
        rows.append({"metric": "collector ingest (parse+detect+store; pure Python)",
                     "value": med["ours_py"], "unit": "trades/s", "baseline": b,
                     "ratio": med["ours_py"] / b, "goal": ">= 0.5", "cpu_us_per_trade": cpu["ours_py"],
                     "bare_cpu_us_per_trade": cpu["bare"]})
    return rows


async def _latency(quick: bool, tmp: str) -> list[dict[str, Any]]:
    rows = []
    for rate in (2_000, 20_000):
        n = int(rate * (3 if quick else 8))
        frames = make_frames(CODES, n, seed=rate, max_batch=5)
        result = await _collector_receive(frames, n, tmp, rate=rate)
        lat = result["latencies_ms"]
        rows.append({"metric": f"trade→committed p50 @ {rate}/s", "value": _pct(lat, 0.5), "unit": "ms"})
        rows.append({"metric": f"trade→committed p99 @ {rate}/s", "value": _pct(lat, 0.99), "unit": "ms",
                     "goal": "< 100" if rate == 2_000 else ""})
    return rows


async def _resubscribe(quick: bool, tmp: str) -> list[dict[str, Any]]:
    from kis_desk.market.symbols import default_watchlist

    codes = default_watchlist()[:50]
    durations = []
    # A fresh collector per trial: production backoff escalates on drops less than a healthy
    # minute apart (by design: KIS blocks app keys that flap), and one drop is what we measure.
    for _ in range(3 if quick else 8):
        cfg = CollectorConfig(env="sim", codes=codes, sim_rate=500, paths=_paths(tmp),
                              db_url=f"sqlite:///{tmp}/resub-{time.time_ns()}.sqlite3")
        collector = build_collector(cfg)
        await collector.start()
        try:
            deadline = time.perf_counter() + 30
            while not collector.feed.all_live() and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.0)
            reconnects = collector.feed.stats().reconnects
            n_sessions = len(collector.feed.sessions)
            t0 = time.perf_counter()
            collector.exchange.simulator.faults.drop_all()
            end = t0 + 30
            while time.perf_counter() < end and not (
                    collector.feed.stats().reconnects >= reconnects + n_sessions
                    and collector.feed.all_live()):
                await asyncio.sleep(0.002)
            if time.perf_counter() < end:
                durations.append(time.perf_counter() - t0)
        finally:
            await collector.stop()
    return [{"metric": "server back → all 50 resubscribed (median)", "value": statistics.median(durations)
             if durations else float("nan"), "unit": "s", "goal": "< 2"},
            {"metric": "… worst of trials", "value": max(durations) if durations else float("nan"), "unit": "s"}]


async def _alerts(quick: bool, tmp: str) -> list[dict[str, Any]]:
    import redis.asyncio as aioredis

    url = os.environ.get("KIS_DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = aioredis.from_url(url)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        return [{"metric": "jump arrival → Redis subscriber", "value": None, "unit": "skipped: " + str(exc)[:40]}]
    from kis_desk.market.symbols import default_watchlist

    codes = default_watchlist()[:50]
    channel = f"kis:bench:{time.time_ns()}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=2000, paths=_paths(tmp), redis_url=url,
                          redis_channel=channel, db_url=f"sqlite:///{tmp}/alerts-{time.time_ns()}.sqlite3",
                          sim_spikes=False)   # only the scripted jumps are measured
    collector = build_collector(cfg)
    arrival: dict[tuple[str, int], float] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, TicksEvent):
            for t in event.ticks:
                arrival[(t.stock_code, t.cum_volume)] = t.received_at

    collector.bus.subscribe(Event, on_event)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    latencies = []
    await collector.start()
    try:
        jumps = codes[:5] if quick else codes[:20]
        for i, code in enumerate(jumps):
            collector.exchange.simulator.jump(code, 7.0 if i % 2 == 0 else -7.0, 2.0)
        deadline = time.perf_counter() + (20 if quick else 40)
        while len(latencies) < len(jumps) and time.perf_counter() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                continue
            now = time.time()
            alert = AlertEvent.from_dict(json.loads(msg["data"]))
            t = arrival.get((alert.stock_code, alert.trigger_cum_volume))
            if t is not None:
                latencies.append((now - t) * 1000)
    finally:
        await collector.stop()
        await pubsub.aclose()
        await client.aclose()
    return [{"metric": "jump arrival → Redis subscriber p50", "value": _pct(latencies, 0.5), "unit": "ms"},
            {"metric": "jump arrival → Redis subscriber p99", "value": _pct(latencies, 0.99), "unit": "ms",
             "goal": "< 100"},
            {"metric": "alerts measured", "value": len(latencies), "unit": "alerts"}]


async def _failover(quick: bool, tmp: str) -> list[dict[str, Any]]:
    from kis_desk.config import AppCredential, Secret, custom_environment
    from kis_desk.feed.manager import FeedManager
    from kis_desk.market.symbols import default_watchlist
    from kis_desk.sim import SimConfig, Simulator

    codes = default_watchlist()[:50]
    outage = 15.0 if quick else 60.0
    rows: list[dict[str, Any]] = []
    for scenario in ("stuck", "stall"):
        fresh: dict[str, list[float]] = {}

        def on_ticks(ticks: Any, source: str) -> None:
            if source != "backfill":
                now = time.monotonic()
                for code in {t.stock_code for t in ticks}:
                    fresh.setdefault(code, []).append(now)

        async with Simulator(SimConfig(codes=codes, rate=400.0, page_size=400)) as sim:
            feed = FeedManager(custom_environment(sim.ws_url, sim.rest_url, 19.0, "sim"),
                               [AppCredential(f"key{i}", Secret(f"app{i}"), Secret(f"s{i}"))
                                for i in (1, 2)], on_ticks)
            await feed.start(codes)
            deadline = time.monotonic() + 30
            while not feed.all_live() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)
            t0 = time.monotonic()
            if scenario == "stuck":
                sim.faults.reject_sessions(outage, app_key="app2")
                sim.faults.drop_all()
            else:
                sim.faults.stall(outage)
            await asyncio.sleep(outage)
            t1 = time.monotonic()
            stats = feed.stats()
            await feed.stop(drain_timeout=0)
        worst = 0.0
        for code in codes:
            times = [t0] + [t for t in fresh.get(code, []) if t0 < t < t1] + [t1]
            worst = max(worst, max(b - a for a, b in zip(times, times[1:])))
        if scenario == "stuck":
            rows.append({"metric": f"one key OPSP8996 {outage:.0f} s: worst per-symbol data gap",
                         "value": worst, "unit": "s", "goal": "<= 10"})
        else:
            rows.append({"metric": f"{outage:.0f} s stall: silence before declared",
                         "value": stats.stall_detect_s, "unit": "s", "goal": "10-15"})
            rows.append({"metric": f"{outage:.0f} s stall: worst per-symbol data gap",
                         "value": worst, "unit": "s"})
    return rows


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _headless_once(rate: float, step: float | None, seconds: float, tmp: str) -> tuple[float, float]:
    """(CPU % of one core, µs CPU per stored trade) of the headless demo in steady state."""
    from kis_desk.sim.embedded import EmbeddedSimulator

    db = Path(tmp) / f"headless-{rate:.0f}-{step}-{time.monotonic_ns()}.db"
    config = CollectorConfig(env="sim", codes=[], sim_rate=rate, db_url=f"sqlite:///{db}",
                             paths=_paths(tmp))
    # what kis_desk.wiring.build_collector builds for this config, with the step chosen
    exchange = EmbeddedSimulator(rate, config.sim_keys, config.sim_jumps, spikes=config.sim_spikes,
                                 tick_interval=step)
    collector = Collector(config, exchange=exchange)
    await collector.start()
    try:
        await asyncio.sleep(2.0)                     # start-up, subscriptions, first back-fills
        stored0, cpu0, t0 = collector.summary()["stored"], _cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, elapsed = _cpu_seconds() - cpu0, time.monotonic() - t0
        stored = collector.summary()["stored"] - stored0
    finally:
        await collector.stop()
    return cpu / elapsed * 100.0, cpu / max(1, stored) * 1e6


async def _headless(quick: bool, tmp: str) -> list[dict[str, Any]]:
    seconds, rounds = (5.0, 1) if quick else (15.0, 2)
    old_step = 0.01                                  # the simulator's step before issue 14
    samples: dict[tuple[float, float | None], list[tuple[float, float]]] = {}
    for _ in range(rounds):                          # alternate, so load changes hit both
        for rate in (200.0, 2000.0):
            for step in (old_step, None):
                samples.setdefault((rate, step), []).append(
                    await _headless_once(rate, step, seconds, tmp))
    rows = []
    for rate in (200.0, 2000.0):
        new, old = samples[(rate, None)], samples[(rate, old_step)]
        cpu_new = statistics.median(x[0] for x in new)
        cpu_old = statistics.median(x[0] for x in old)
        us_new = statistics.median(x[1] for x in new)
        us_old = statistics.median(x[1] for x in old)
        label = "demo 200" if rate == 200.0 else "2,000"
        rows.append({"metric": f"headless demo CPU, {label} trades/s (baseline: 10 ms sim step)",
                     "value": round(cpu_new, 1), "unit": "% of one core", "baseline": round(cpu_old, 1),
                     "ratio": round(cpu_new / cpu_old, 2)})
        rows.append({"metric": f"headless demo µs CPU per trade, {label} trades/s (baseline: 10 ms step)",
                     "value": round(us_new), "unit": "µs", "baseline": round(us_old),
                     "ratio": round(us_new / us_old, 2)})
    return rows


def run(quick: bool = False, parts: tuple[str, ...] | None = None) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    every = (_ingest, _latency, _resubscribe, _alerts, _failover, _headless)
    chosen = every if parts is None else tuple(p for p in every if p.__name__.strip("_") in parts)
    with tempfile.TemporaryDirectory() as tmp:
        for part in chosen:
            results += asyncio.run(part(quick, tmp))
    ratios = {r["metric"]: r["ratio"] for r in results if "ratio" in r}
    return {"name": "pipeline", "results": results, "ratios": ratios}


if __name__ == "__main__":
    report = run(quick="--quick" in os.sys.argv,
                 parts=("headless",) if "--headless" in os.sys.argv
                 else ("ingest",) if "--ingest" in os.sys.argv else None)
    for r in report["results"]:
        print(r)
    print(json.dumps(report, default=str))
