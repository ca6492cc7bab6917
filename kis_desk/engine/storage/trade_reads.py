"""Reads of stored trades: the chart's and the back-fill's ranges, sparkline buckets, bars.

Why its own module: every question about one symbol's trades is a range of the trades key
(stock_code, venue, business_date, …) — the day's first and last trade, the trade before a
hole in the cumulative-volume chain, a time range, the last trade per bucket — and how a
stored row becomes a :class:`Tick` exactly (µs times, two-decimal rates) is this module's.
A mixin of :class:`~.repository.Repository` (its ``engine``); blocking I/O: call from a
worker thread.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from ...core.ticks import VENUE_KRX, Tick
from ...protocol.records import KST
from . import day_reads, layout, schema
from .layout import SOURCE_NAMES, VENUE_NAMES
from .schema import bars_1m, ticks

T = ticks.c

def tick_from_row(row: Any) -> Tick:
    """A v5 row (see :mod:`.layout`) → Tick, exactly: µs times, two-decimal rates."""
    ts = datetime.fromtimestamp(row.ts, KST).replace(microsecond=int(row.ts_us))
    received = (row.ts * 1_000_000 + row.ts_us + row.recv_delay_us) / 1_000_000
    return Tick(row.stock_code, ts, int(row.price), int(row.volume), int(row.cum_volume),
                None if row.change is None else int(row.change),
                None if row.change_rate_bp is None else row.change_rate_bp / 100,
                None if row.strength_bp is None else row.strength_bp / 100,
                received, SOURCE_NAMES[row.source], VENUE_NAMES[row.venue])


def _epoch_us(dt: datetime) -> int:
    sec, us = layout.epoch_parts(dt)
    return sec * 1_000_000 + us


# SQLite: the distinct codes by key seeks (a "skip scan" in SQL: one seek per code, in C).
SQLITE_CODES = f"""WITH RECURSIVE codes(c) AS (
    SELECT min(stock_code) FROM {layout.TICKS}
    UNION ALL SELECT (SELECT min(stock_code) FROM {layout.TICKS} WHERE stock_code > c) FROM codes
    WHERE c IS NOT NULL)"""
_SQLITE_CODES_ON = SQLITE_CODES + f"""
    SELECT c FROM codes WHERE c IS NOT NULL AND EXISTS (SELECT 1 FROM {layout.TICKS}
        WHERE stock_code = c AND venue IN (0, 1, 2) AND business_date = :d) ORDER BY c"""


class TradeReads:
    """Queries of stored trades and bars (see the module docstring)."""

    # Every query of one symbol is a range of the key (stock_code, venue, business_date, …).

    @staticmethod
    def _series(code: str, venue: str, first: date, last: date) -> sa.ColumnElement[bool]:
        # one day: equality on the whole prefix, so ORDER BY cum_volume … LIMIT 1 is a seek
        # (a range on business_date made SQLite sort the symbol's day to find its last trade)
        days = T.business_date == first if first == last else sa.and_(
            T.business_date >= first, T.business_date <= last)
        return sa.and_(T.stock_code == code, T.venue == layout.venue_code(venue), days)

    def ticks_between(self, code: str, start: datetime, end: datetime,
                      venue: str = VENUE_KRX) -> list[Tick]:
        """Trades of ``code`` on ``venue`` with ``start <= timestamp < end``, in trade order."""
        at = T.ts * 1_000_000 + T.ts_us
        q = (sa.select(ticks)
             .where(self._series(code, venue, schema.kst_date(start), schema.kst_date(end)),
                    at >= _epoch_us(start), at < _epoch_us(end))
             .order_by(T.ts, T.ts_us, T.cum_volume))
        with self.engine.connect() as conn:
            return [tick_from_row(r) for r in conn.execute(q)]

    def _day(self, code: str, business_date: date, venue: str) -> sa.ColumnElement[bool]:
        return self._series(code, venue, business_date, business_date)

    def last_trade(self, code: str, business_date: date, venue: str = VENUE_KRX) -> Tick | None:
        """The day's last stored trade (highest cumulative volume): where a back-fill resumes."""
        q = (sa.select(ticks).where(self._day(code, business_date, venue))
             .order_by(T.cum_volume.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return tick_from_row(row) if row is not None else None

    def last_before_first_gap(self, code: str, business_date: date,
                              venue: str = VENUE_KRX) -> Tick | None:
        """The trade just before the day's first break in the venue's cumulative-volume chain.

        Why: after a crash in the middle of a back-fill, later trades are stored but the ones of
        the outage are not; resuming from the newest trade would never fill that hole. A trade
        whose ``cum_volume - volume`` is not the previous stored ``cum_volume`` marks a gap.
        Each venue has its own chain (the integrated stream's cumulative volume is not KRX's).
        Breaks on record as unrecoverable (``pending_gaps`` status "unrecoverable": a back-fill
        already tried and the server no longer has those trades) are not gaps to chase: without
        this, every clean restart re-fetched them and warned again.

        Found minute by minute from ``bars_1m`` (:func:`.day_reads.first_gap_start`): the
        trades are read only from the first minute whose volumes do not add up.
        """
        before = day_reads.first_gap_start(self, code, business_date, venue)
        if before is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(ticks).where(self._day(code, business_date, venue),
                                                      T.cum_volume == before)).first()
        return tick_from_row(row) if row is not None else None

    def first_trade(self, code: str, business_date: date, venue: str = VENUE_KRX) -> Tick | None:
        """The day's first stored trade (lowest cumulative volume)."""
        q = sa.select(ticks).where(self._day(code, business_date, venue)).order_by(T.cum_volume).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return tick_from_row(row) if row is not None else None

    def price_buckets(self, code: str, start: datetime, end: datetime, bucket_seconds: int,
                      venue: str = VENUE_KRX) -> list[tuple[datetime, int, int]]:
        """The last trade per ``bucket_seconds`` bucket as ``(timestamp, price, cum_volume)``.

        Why: a busy symbol's day is 10⁵+ trades; a sparkline needs a few hundred points. Buckets
        are aligned to the Unix epoch (bucket = epoch // bucket_seconds) so callers can line
        them up with their own power-of-two buckets; "last" = highest cumulative volume, i.e.
        the trade KIS printed last. Trades with ``start <= timestamp < end``, in time order.
        """
        width = int(bucket_seconds)
        if width < 1:
            raise ValueError("bucket_seconds must be >= 1")
        at = T.ts * 1_000_000 + T.ts_us
        where = (self._series(code, venue, schema.kst_date(start), schema.kst_date(end)),
                 at >= _epoch_us(start), at < _epoch_us(end))
        inner = (sa.select(T.business_date.label("d"), sa.func.max(T.cum_volume).label("cv"))
                 .where(*where).group_by(T.business_date, T.ts - T.ts % width).subquery())
        q = (sa.select(ticks)
             .join(inner, sa.and_(T.stock_code == code, T.venue == layout.venue_code(venue),
                                  T.business_date == inner.c.d, T.cum_volume == inner.c.cv))
             .order_by(T.ts, T.ts_us, T.cum_volume))
        with self.engine.connect() as conn:
            return [(t.timestamp, t.price, t.cum_volume) for t in map(tick_from_row, conn.execute(q))]

    def bars(self, code: str, start: datetime, end: datetime,
             venue: str = VENUE_KRX) -> list[tuple[datetime, int, int, int, int, int]]:
        """1-minute bars ``(minute, open, high, low, close, volume)`` with ``start <= minute < end``
        (kept forever, also for days whose raw trades retention removed)."""
        b = bars_1m.c
        lo, _ = layout.epoch_parts(start)
        hi, _ = layout.epoch_parts(end)
        q = (sa.select(b.minute, b.open, b.high, b.low, b.close, b.volume)
             .where(b.stock_code == code, b.venue == layout.venue_code(venue), b.minute >= lo, b.minute < hi)
             .order_by(b.minute))
        with self.engine.connect() as conn:
            return [(datetime.fromtimestamp(r.minute, KST), int(r.open), int(r.high), int(r.low),
                     int(r.close), int(r.volume)) for r in conn.execute(q)]

    def count_ticks(self, code: str | None = None, business_date: date | None = None,
                    source: str | None = None, venue: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(ticks)
        if code is not None:
            q = q.where(T.stock_code == code)
        if venue is not None:
            q = q.where(T.venue == layout.venue_code(venue))
        if business_date is not None:
            q = q.where(T.business_date == business_date)
        if source is not None:
            q = q.where(T.source == layout.SOURCE_CODES[source])
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def codes_on(self, business_date: date) -> list[str]:
        """Codes with at least one stored trade that day (any venue)."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                rows = conn.execute(sa.text(_SQLITE_CODES_ON), {"d": layout.day_number(business_date)})
                return list(rows.scalars())
            q = (sa.select(T.stock_code).where(T.business_date == business_date)
                 .distinct().order_by(T.stock_code))
            return list(conn.execute(q).scalars())


__all__ = ["SQLITE_CODES", "TradeReads", "tick_from_row"]
