"""Shared helpers of the end-to-end completeness tests (tests/test_alert_completeness.py,
tests/test_collector_failover.py, tests/test_feed_failover.py) and the alert fault benchmark:
per-symbol fresh-data gaps, the collector's alerts as the bus / alerts table / Redis saw them,
and the moves the simulator's history really contains (the detector tests' brute-force
reference run on the simulator's own tape)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from kis_desk.protocol.records import KST

from benchmarks.fault_watch import CollectorWatch, worst_gap  # shared with the benchmark


def stored_alert_rows(db_url: str) -> list[dict[str, Any]]:
    """The alerts table as rows (with the late columns of migration 3)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT alert_id, stock_code, direction, step, trigger_cum_volume, late, delay_s, "
                "source FROM alerts ORDER BY id")).mappings().all()
    finally:
        engine.dispose()
    return [dict(r) for r in rows]


async def redis_stream_alerts(redis_url: str, stream: str) -> list[dict[str, Any]]:
    """Every alert JSON the collector XADDed to ``stream`` (what Redis really received)."""
    import json

    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        entries = await client.xrange(stream)
        await client.delete(stream)
    finally:
        await client.aclose()
    return [json.loads(fields[b"alert"]) for _, fields in entries]


class _RefTrade(NamedTuple):
    stock_code: str
    timestamp: datetime
    price: int
    cum_volume: int
    volume: int              # the standing price counts only with no trade missing before
    state: str = ""          # the reference's VI marking; these comparisons leave ``vi`` out


def reference_alerts(sim: Any, codes: Iterable[str], pct: float, window: float) -> list[tuple]:
    """The alerts the brute-force reference of tests/test_detector.py finds in the simulator's
    own history of ``codes`` (every trade made, in exchange order): what a complete detector
    must raise. (alert_id, change_pct, base, base_time, trigger_time, step) per alert."""
    from test_detector import Reference

    ref = Reference(pct, window)
    out: list[tuple] = []
    for code in codes:
        trades = [_RefTrade(code, datetime.strptime(t.business_date + t.time, "%Y%m%d%H%M%S")
                            .replace(tzinfo=KST), t.price, t.cum_volume, t.volume)
                  for t in sim.history(code)]
        out.extend(ref.feed(trades))
    return out


def per_code(items: Iterable[str]) -> dict[str, int]:
    """alert ids → how many per ``code:direction``."""
    counts: dict[str, int] = {}
    for aid in items:
        code, _, direction = aid.split(":")[:3]
        key = f"{code}:{direction}"
        counts[key] = counts.get(key, 0) + 1
    return counts


__all__ = ["CollectorWatch", "per_code", "redis_stream_alerts", "reference_alerts",
           "stored_alert_rows", "worst_gap"]
