"""Fan-out to attached desktops over Redis (issue 13 item 5).

* publish cost, same run, same trades, same Redis: pub/sub (one ``TicksEvent`` JSON per batch,
  what ``--redis-ticks`` does) vs the trade stream (one ``XADD MAXLEN ~`` per packed batch, what
  ``--redis-trades`` does) vs one ``XADD`` per trade; client CPU µs per trade (this process) and
  Redis server CPU µs per trade (``INFO cpu``), all pipelined; ratios against pub/sub.
* decode cost on the desktop: packed batch vs ``TicksEvent`` JSON, µs per trade.
* ticks lost across a Redis restart (goal 0): a producer at 2,000 trades/s stores every trade
  (SQLite) and publishes it to both the stream and a pub/sub channel; one desktop follows the
  stream (``RemoteEngine``, streams), one subscribes to the channel (``RemoteEngine``, pub/sub).
  Redis is killed and restarted mid-run; lost = trades stored − distinct trades the desktop
  saw, per symbol, summed.

Needs a ``redis-server`` binary (a private server on an ephemeral port; never the shared one).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from kis_desk.core.events import TicksEvent, event_from_json
from kis_desk.core.ticks import Tick
from kis_desk.engine.publisher import RedisPublisher
from kis_desk.engine.remote import RemoteEngine
from kis_desk.engine.storage import TickWriter
from kis_desk.engine.trade_batch import pack_trades, unpack_trades
from kis_desk.protocol.records import KST

CODES = [f"{i:06d}" for i in range(100_010, 100_030)]


class _Server:
    def __init__(self, d: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = d
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _ticks(n: int, day_start: datetime, per_code_cum: dict[str, int] | None = None) -> list[Tick]:
    cum = per_code_cum if per_code_cum is not None else {}
    out = []
    now = time.time()
    for i in range(n):
        code = CODES[i % len(CODES)]
        c = cum.get(code, 0) + 7
        cum[code] = c
        out.append(Tick(code, day_start + timedelta(milliseconds=10 * (c // 7)), 70_000 + i % 50 * 10,
                        7, c, -300, -0.42, 101.25, now, "ws"))
    return out


async def _server_cpu(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _publish_cost(url: str, n: int, batch: int) -> dict[str, dict[str, float]]:
    day = datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    ticks = _ticks(n, day)
    batches = [ticks[i:i + batch] for i in range(0, n, batch)]
    client = aioredis.Redis.from_url(url)
    sub = aioredis.Redis.from_url(url)
    pubsub = sub.pubsub()
    await pubsub.subscribe("bench:ticks")           # a listener, so PUBLISH does its real work
    drained = 0

    async def drain() -> None:
        nonlocal drained
        async for m in pubsub.listen():
            if m.get("type") == "message":
                drained += 1
    listener = asyncio.create_task(drain())

    async def pubsub_way() -> None:
        for i in range(0, len(batches), 20):         # the publisher pipelines ≤ 20 batches
            async with client.pipeline(transaction=False) as pipe:
                for b in batches[i:i + 20]:
                    pipe.publish("bench:ticks", TicksEvent(tuple(b)).to_json())
                await pipe.execute()

    async def stream_packed() -> None:
        seq = 0
        for i in range(0, len(batches), 20):
            async with client.pipeline(transaction=False) as pipe:
                for b in batches[i:i + 20]:
                    seq += 1
                    pipe.xadd("bench:stream", {"src": "b", "seq": seq, "n": len(b),
                                               "t": pack_trades(b)}, maxlen=6000, approximate=True)
                await pipe.execute()

    async def stream_per_trade() -> None:
        seq = 0
        for i in range(0, len(batches), 20):
            async with client.pipeline(transaction=False) as pipe:
                for b in batches[i:i + 20]:
                    for t in b:
                        seq += 1
                        pipe.xadd("bench:stream1", {"src": "b", "seq": seq, "n": 1,
                                                    "t": pack_trades((t,))},
                                  maxlen=600_000, approximate=True)
                await pipe.execute()

    out: dict[str, dict[str, float]] = {}
    for name, fn in (("pubsub", pubsub_way), ("stream_packed", stream_packed),
                     ("stream_per_trade", stream_per_trade)):
        s0, c0, w0 = await _server_cpu(client), time.process_time(), time.perf_counter()
        await fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        server = await _server_cpu(client) - s0
        out[name] = {"client_us": cpu / n * 1e6, "server_us": server / n * 1e6,
                     "trades_per_s": n / wall}
    mem = await client.memory_usage("bench:stream", samples=0)
    out["stream_packed"]["bytes_per_trade"] = (mem or 0) / n
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await pubsub.aclose()
    await sub.aclose()
    await client.delete("bench:stream", "bench:stream1")
    await client.aclose()
    return out


def _decode_cost(n: int, batch: int) -> dict[str, float]:
    day = datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    ticks = _ticks(n, day)
    batches = [ticks[i:i + batch] for i in range(0, n, batch)]
    packed = [pack_trades(b) for b in batches]
    events = [TicksEvent(tuple(b)).to_json() for b in batches]
    t0 = time.process_time()
    for p in packed:
        unpack_trades(p)
    t1 = time.process_time()
    for e in events:
        event_from_json(e)
    t2 = time.process_time()
    return {"packed_us": (t1 - t0) / n * 1e6, "json_us": (t2 - t1) / n * 1e6,
            "packed_bytes": sum(map(len, packed)) / n, "json_bytes": sum(map(len, events)) / n}


async def _restart_loss(srv: _Server, tmp: Path, seconds: float, rate: int) -> dict[str, Any]:
    """Producer at ``rate``/s for ``seconds``; Redis killed at 40 %, back at 55 %."""
    db = f"sqlite:///{tmp / 'shared.sqlite3'}"
    writer = TickWriter(db, journal_dir=tmp / "journal")
    await writer.start()
    pub = RedisPublisher(srv.url, channel="bench:alerts", stream="bench:alerts:stream",
                         trade_stream="bench:trades", tick_channel="bench:ticks",
                         backoff_initial=0.05, backoff_max=0.3)
    await pub.start()
    streams = RemoteEngine(srv.url, db, alert_channel="bench:alerts", tick_channel=None,
                           trade_stream="bench:trades", alert_stream="bench:alerts:stream")
    channel = RemoteEngine(srv.url, db, alert_channel="bench:alerts", tick_channel="bench:ticks")
    seen: dict[str, list[Tick]] = {"stream": [], "pubsub": []}
    streams.bus.subscribe(TicksEvent, lambda e: seen["stream"].extend(e.ticks))
    channel.bus.subscribe(TicksEvent, lambda e: seen["pubsub"].extend(e.ticks))
    await streams.start()
    await channel.start()
    await asyncio.sleep(0.5)                          # both attached
    day = datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    cum: dict[str, int] = {}
    stored: list[Tick] = []
    step = 0.01
    t0 = time.monotonic()
    killed = restarted = False
    while (elapsed := time.monotonic() - t0) < seconds:
        if not killed and elapsed > 0.4 * seconds:
            srv.kill()
            killed = True
        if killed and not restarted and elapsed > 0.55 * seconds:
            srv.start()
            restarted = True
        batch = _ticks(max(1, int(rate * elapsed) - len(stored)), day, cum)   # paced to rate
        stored.extend(batch)
        writer.submit(batch)
        pub.publish_ticks(batch)
        await asyncio.sleep(step)
    await writer.flush()
    await pub.stop(flush_timeout=10)
    deadline = time.monotonic() + 30
    want = {(t.stock_code, t.cum_volume) for t in stored}
    while time.monotonic() < deadline:
        got = {(t.stock_code, t.cum_volume) for t in seen["stream"]}
        if got >= want and not streams._gaps.busy:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    stats = streams.reader.stats
    await streams.stop()
    await channel.stop()
    await writer.stop()
    out: dict[str, Any] = {"stored": len(want), "reloaded": stats.reloaded, "gaps": stats.gaps}
    for name, rows in seen.items():
        keys = Counter((t.stock_code, t.cum_volume) for t in rows)
        out[f"{name}_lost"] = len(want - set(keys))
        out[f"{name}_twice"] = sum(v - 1 for v in keys.values())
    return out


async def _run(quick: bool) -> dict[str, Any]:
    n = 40_000 if quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        srv = _Server(Path(tmp))
        srv.start()
        try:
            cost = await _publish_cost(srv.url, n, batch=100)
            loss = await _restart_loss(srv, Path(tmp), seconds=4.0 if quick else 10.0, rate=2000)
        finally:
            srv.kill()
    dec = _decode_cost(n // 4, batch=100)
    base = cost["pubsub"]
    rows = [
        {"metric": "publish pub/sub (TicksEvent JSON per batch of 100): client CPU",
         "value": base["client_us"], "unit": "µs/trade"},
        {"metric": "publish stream, packed batch XADD: client CPU", "value": cost["stream_packed"]["client_us"],
         "unit": "µs/trade", "baseline": base["client_us"],
         "ratio": cost["stream_packed"]["client_us"] / base["client_us"], "goal": "≤ 1 (vs pub/sub)"},
        {"metric": "publish stream, one XADD per trade: client CPU",
         "value": cost["stream_per_trade"]["client_us"], "unit": "µs/trade", "baseline": base["client_us"],
         "ratio": cost["stream_per_trade"]["client_us"] / base["client_us"]},
        {"metric": "Redis server CPU, pub/sub", "value": base["server_us"], "unit": "µs/trade"},
        {"metric": "Redis server CPU, stream packed", "value": cost["stream_packed"]["server_us"],
         "unit": "µs/trade", "baseline": base["server_us"],
         "ratio": cost["stream_packed"]["server_us"] / max(base["server_us"], 1e-9)},
        {"metric": "Redis server CPU, stream per trade", "value": cost["stream_per_trade"]["server_us"],
         "unit": "µs/trade", "baseline": base["server_us"],
         "ratio": cost["stream_per_trade"]["server_us"] / max(base["server_us"], 1e-9)},
        {"metric": "publish throughput pub/sub / packed / per-trade",
         "value": f"{base['trades_per_s']:,.0f} / {cost['stream_packed']['trades_per_s']:,.0f} / "
                  f"{cost['stream_per_trade']['trades_per_s']:,.0f}", "unit": "trades/s"},
        {"metric": "Redis memory of the packed trade stream", "value": cost["stream_packed"]["bytes_per_trade"],
         "unit": "bytes/trade"},
        {"metric": "desktop decode, packed batch", "value": dec["packed_us"], "unit": "µs/trade",
         "baseline": dec["json_us"], "ratio": dec["packed_us"] / dec["json_us"]},
        {"metric": "wire size packed vs TicksEvent JSON", "value": dec["packed_bytes"], "unit": "bytes/trade",
         "baseline": dec["json_bytes"], "ratio": dec["packed_bytes"] / dec["json_bytes"]},
        {"metric": f"ticks lost across a Redis restart, stream desktop ({loss['stored']:,} stored at 2,000/s, "
                   f"{loss['reloaded']:,} reloaded from the DB)", "value": loss["stream_lost"],
         "unit": "trades", "goal": "0"},
        {"metric": "ticks seen twice, stream desktop", "value": loss["stream_twice"], "unit": "trades",
         "goal": "0"},
        {"metric": "ticks lost across the same restart, pub/sub desktop (before)",
         "value": loss["pubsub_lost"], "unit": "trades"},
    ]
    return {"name": "fanout", "results": rows,
            "ratios": {"stream_packed_vs_pubsub_client_cpu": rows[1]["ratio"],
                       "stream_per_trade_vs_pubsub_client_cpu": rows[2]["ratio"]}}


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server binary not on PATH")
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2, ensure_ascii=False, default=str))
