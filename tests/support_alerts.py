"""Shared helpers of the end-to-end completeness tests (tests/test_alert_completeness.py,
tests/test_collector_failover.py, tests/test_feed_failover.py) and the alert fault benchmark:
per-symbol fresh-data gaps, the collector's alerts as the bus / alerts table / Redis saw them,
and the moves the simulator's history really contains (the detector tests' brute-force
reference run on the simulator's own tape)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from kis_desk.core.events import AlertEvent, TicksEvent
from kis_desk.protocol.records import KST


def worst_gap(fresh: Mapping[str, Sequence[float]], codes: Iterable[str], start: float,
              end: float) -> tuple[float, str]:
    """Longest time in [start, end] any of ``codes`` received no fresh data (arrival times in
    ``fresh``, monotonic seconds) and which symbol it was."""
    worst, who = 0.0, ""
    for code in codes:
        times = [start] + [t for t in fresh.get(code, ()) if start < t < end] + [end]
        gap = max(b - a for a, b in zip(times, times[1:]))
        if gap > worst:
            worst, who = gap, code
    return worst, who


class CollectorWatch:
    """Subscribes to a collector's bus: when fresh data (socket or poll, not back-fill) arrived
    per symbol, and every alert raised."""

    def __init__(self, bus: Any) -> None:
        self.fresh: dict[str, list[float]] = {}
        self.alerts: list[AlertEvent] = []
        bus.subscribe(TicksEvent, self._on_ticks)
        bus.subscribe(AlertEvent, self.alerts.append)

    def _on_ticks(self, event: TicksEvent) -> None:
        now = time.monotonic()
        for t in event.ticks:
            if t.source != "backfill":
                self.fresh.setdefault(t.stock_code, []).append(now)

    def worst_gap(self, codes: Iterable[str], start: float, end: float) -> tuple[float, str]:
        return worst_gap(self.fresh, codes, start, end)

    def alerts_of(self, code: str) -> list[AlertEvent]:
        return [a for a in self.alerts if a.stock_code == code]


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


def reference_alerts(sim: Any, codes: Iterable[str], pct: float, window: float) -> list[tuple]:
    """The alerts the brute-force reference of tests/test_detector.py finds in the simulator's
    own history of ``codes`` (every trade made, in exchange order): what a complete detector
    must raise. (alert_id, change_pct, base, base_time, trigger_time, step) per alert."""
    from test_detector import Reference

    ref = Reference(pct, window)
    out: list[tuple] = []
    for code in codes:
        trades = [_RefTrade(code, datetime.strptime(t.business_date + t.time, "%Y%m%d%H%M%S")
                            .replace(tzinfo=KST), t.price, t.cum_volume) for t in sim.history(code)]
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
