"""Detector cost per trade and Redis alert latency under tick load.

    python -m benchmarks.bench_detector [--quick]

* detector: ``MoveDetector.process`` over synthetic trades (50 symbols, random walk with jumps,
  several trades per second) vs a bare loop touching the same trades → ns/trade and ratio.
* publish latency: ``RedisPublisher.publish_alert`` → receipt by a pub/sub subscriber, while the
  same publisher streams 2,000 ticks/s to a tick channel (another subscriber consumes them).
  Goal: p99 < 100 ms. Redis from ``KIS_DESK_BENCH_REDIS_URL`` / ``KIS_DESK_TEST_REDIS_URL`` /
  ``redis://127.0.0.1:6379/0``; skipped (reported) when unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from kis_desk.config import redact_url
from kis_desk.engine.detector import MoveDetector
from kis_desk.core.events import AlertEvent
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST

T0 = datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)


def synthetic_trades(n: int, symbols: int = 50, seed: int = 7) -> list[Tick]:
    rng = random.Random(seed)
    codes = [f"{100000 + i:06d}" for i in range(symbols)]
    price = {c: rng.randint(5_000, 200_000) for c in codes}
    cum = dict.fromkeys(codes, 0)
    out = []
    for i in range(n):
        c = codes[rng.randrange(symbols)]
        p = price[c]
        step = rng.choice((-1, 0, 1)) * max(1, p // 1000)
        if rng.random() < 0.001:                      # occasional jump
            step = rng.choice((-1, 1)) * p // 15
        price[c] = max(100, p + step)
        cum[c] += rng.randint(1, 100)
        ts = T0 + timedelta(seconds=i // 200)         # ~200 trades/s overall
        out.append(Tick(c, ts, price[c], 1, cum[c], None, None, None, 0.0, "ws"))
    return out


def bench_detector(n: int, repeats: int = 3) -> dict:
    trades = synthetic_trades(n)

    def bare() -> float:
        t = time.perf_counter()
        s = 0
        for tk in trades:
            s += tk.price
        return time.perf_counter() - t

    def detect() -> tuple[float, int]:
        d = MoveDetector(clock=lambda: T0)
        t = time.perf_counter()
        alerts = d.process(trades)
        return time.perf_counter() - t, len(alerts)

    bare_s = statistics.median(bare() for _ in range(repeats))
    runs = [detect() for _ in range(repeats)]
    det_s = statistics.median(r[0] for r in runs)
    return {"trades": n, "alerts": runs[0][1],
            "detector_ns_per_trade": round(det_s / n * 1e9, 1),
            "bare_ns_per_trade": round(bare_s / n * 1e9, 1),
            "ratio": round(det_s / bare_s, 1),
            "detector_trades_per_s": round(n / det_s)}


def _alert(i: int, run: str) -> AlertEvent:
    now = datetime.now(timezone.utc)
    return AlertEvent(f"{run}:{i}", "005930", "삼성전자", "up", 5.0, 70_000, T0, 73_500,
                      T0, 1000 + i, now, 60.0, 5.0, 1)


async def bench_latency(url: str, alerts: int, ticks_per_s: int = 2_000) -> dict:
    import redis.asyncio as aioredis

    from kis_desk.engine.publisher import RedisPublisher

    run = uuid.uuid4().hex[:8]
    channel, tick_channel = f"bench:{run}:alerts", f"bench:{run}:ticks"
    sub = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await asyncio.wait_for(sub.ping(), 3)
    except Exception as exc:
        await sub.aclose()
        return {"skipped": f"Redis unreachable at {redact_url(url)}: {type(exc).__name__}"}
    ps = sub.pubsub(ignore_subscribe_messages=True)
    await ps.subscribe(channel)
    tsub = aioredis.Redis.from_url(url)
    tps = tsub.pubsub(ignore_subscribe_messages=True)
    await tps.subscribe(tick_channel)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    ticks_received = 0

    async def receive_alerts() -> None:
        while len(latencies) < alerts:
            msg = await ps.get_message(timeout=1.0)
            if msg and msg["type"] == "message":
                aid = json.loads(msg["data"])["alert_id"]
                latencies.append(time.perf_counter() - sent_at[aid])

    async def receive_ticks() -> None:
        nonlocal ticks_received
        while True:
            msg = await tps.get_message(timeout=1.0)
            if msg and msg["type"] == "message":
                ticks_received += msg["data"].count(b'"stock_code"')

    pub = RedisPublisher(url, channel=channel, tick_channel=tick_channel)
    await pub.start()
    stop = asyncio.Event()
    trades = synthetic_trades(ticks_per_s * 2)

    async def tick_load() -> None:
        per = ticks_per_s // 100                       # every 10 ms
        i = 0
        nxt = time.perf_counter()
        while not stop.is_set():
            chunk = trades[i % len(trades):i % len(trades) + per]
            i += per
            pub.publish_ticks(chunk)
            nxt += 0.01
            await asyncio.sleep(max(0.0, nxt - time.perf_counter()))

    rx = asyncio.create_task(receive_alerts())
    rt = asyncio.create_task(receive_ticks())
    load = asyncio.create_task(tick_load())
    await asyncio.sleep(0.5)                           # load reaches steady state
    t_start = time.perf_counter()
    rng = random.Random(1)
    for i in range(alerts):
        a = _alert(i, run)
        sent_at[a.alert_id] = time.perf_counter()
        pub.publish_alert(a)
        await asyncio.sleep(rng.uniform(0.01, 0.04))
    try:
        await asyncio.wait_for(rx, 30)
    finally:
        elapsed = time.perf_counter() - t_start
        stop.set()
        await load
        st = await pub.stop()
        rt.cancel()
        await asyncio.gather(rt, return_exceptions=True)
        await ps.aclose()
        await tps.aclose()
        await sub.delete(*[f"{channel}:sent:{aid}" for aid in sent_at])
        await sub.aclose()
        await tsub.aclose()
    lat = sorted(latencies)
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"alerts": len(lat), "p50_ms": round(statistics.median(lat) * 1e3, 2),
            "p99_ms": round(q[98] * 1e3, 2), "max_ms": round(lat[-1] * 1e3, 2),
            "tick_load_per_s": ticks_per_s,
            "ticks_sent": st.ticks_sent, "ticks_dropped": st.ticks_dropped,
            "ticks_received": ticks_received, "seconds": round(elapsed, 1),
            "goal_p99_ms": 100, "goal_met": q[98] * 1e3 < 100}


def run(quick: bool = False) -> dict:
    url = os.environ.get("KIS_DESK_BENCH_REDIS_URL") or os.environ.get(
        "KIS_DESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    det = bench_detector(20_000 if quick else 200_000)
    lat = asyncio.run(bench_latency(url, 50 if quick else 300))
    results = [
        {"metric": "detector cost per trade", "value": det["detector_ns_per_trade"], "unit": "ns",
         "baseline": det["bare_ns_per_trade"], "ratio": det["ratio"]},
        {"metric": "detector throughput", "value": det["detector_trades_per_s"], "unit": "trades/s"},
    ]
    if "skipped" not in lat:
        results += [
            {"metric": "alert publish→receive p50", "value": lat["p50_ms"], "unit": "ms"},
            {"metric": "alert publish→receive p99", "value": lat["p99_ms"], "unit": "ms",
             "goal": "< 100 ms under 2,000 ticks/s"},
            {"metric": "ticks dropped under load", "value": lat["ticks_dropped"], "unit": "ticks"},
        ]
    return {"name": "detector", "results": results,
            "ratios": {"detector_vs_bare_loop": det["ratio"]},
            "detector": det, "publish_latency": lat}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    res = run(quick="--quick" in argv)
    d, p = res["detector"], res["publish_latency"]
    print(f"{'detector ns/trade':<28}{d['detector_ns_per_trade']:>12}")
    print(f"{'bare loop ns/trade':<28}{d['bare_ns_per_trade']:>12}")
    print(f"{'ratio':<28}{d['ratio']:>12}")
    print(f"{'detector trades/s':<28}{d['detector_trades_per_s']:>12}")
    if "skipped" in p:
        print(f"{'publish latency':<28}{'skipped: ' + p['skipped']}")
    else:
        print(f"{'alert latency p50 ms':<28}{p['p50_ms']:>12}")
        print(f"{'alert latency p99 ms':<28}{p['p99_ms']:>12}  (goal < 100, "
              f"under {p['tick_load_per_s']} ticks/s)")
        print(f"{'ticks sent / dropped':<28}{p['ticks_sent']:>12} / {p['ticks_dropped']}")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
