"""Long ranges of stored trades and bars in bounded chunks (``kis-desk export``, tools/export.py).

Why its own module: an export reads months of trades without holding them in memory or
keeping a read transaction open for the whole run (PostgreSQL: one server-side cursor;
SQLite: keyset pages of the clustered key), a different job from the short reads the desktop
makes (:mod:`.trade_reads`). A mixin of :class:`~.repository.Repository` (its ``engine``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from ...core.ticks import VENUE_KRX, Tick
from ...protocol.records import KST
from . import layout
from .layout import VENUE_NAMES
from .schema import bars_1m, ticks
from .trade_reads import tick_from_row

T = ticks.c


class Bar(NamedTuple):
    """One stored 1-minute bar (``bars_1m``), minute as a KST datetime."""

    stock_code: str
    venue: str
    minute: datetime
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int


class ExportReads:
    """Trades and bars of a day range, ``chunk_rows`` at a time (see the module docstring)."""

    EXPORT_CHUNK_ROWS = 20_000

    def trade_chunks(self, code: str, first: date, last: date, venue: str = VENUE_KRX,
                     chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[list[Tick]]:
        """Trades of ``code`` on ``venue`` with ``first <= business_date <= last`` in key order
        (day, then cumulative volume = trade order), as lists of at most ``chunk_rows``."""
        q = sa.select(ticks).where(T.stock_code == code, T.venue == layout.venue_code(venue),
                                   T.business_date <= last)
        for rows in self._chunked(q, T.business_date >= first, (T.business_date, T.cum_volume), chunk_rows):
            yield [tick_from_row(r) for r in rows]

    def bar_chunks(self, code: str, first: date, last: date, venue: str = VENUE_KRX,
                   chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[list[Bar]]:
        """1-minute bars of ``code`` on ``venue`` whose minute falls on the KST days
        ``first..last``, oldest first, as lists of at most ``chunk_rows``."""
        b = bars_1m.c
        lo, _ = layout.epoch_parts(datetime.combine(first, time(), KST))
        hi, _ = layout.epoch_parts(datetime.combine(last + timedelta(days=1), time(), KST))
        q = sa.select(bars_1m).where(b.stock_code == code, b.venue == layout.venue_code(venue),
                                     b.minute < hi)
        for rows in self._chunked(q, b.minute >= lo, (b.minute,), chunk_rows):
            yield [Bar(r.stock_code, VENUE_NAMES[r.venue], datetime.fromtimestamp(r.minute, KST),
                       int(r.open), int(r.high), int(r.low), int(r.close), int(r.volume), int(r.trades))
                   for r in rows]

    def _chunked(self, q: sa.Select, lower: sa.ColumnElement[bool], key: Sequence[sa.ColumnElement],
                 chunk_rows: int) -> Iterator[list[Any]]:
        """``q.where(lower)``'s rows in ``key`` order, ``chunk_rows`` at a time; never the whole
        result in memory.

        PostgreSQL: one server-side cursor (``yield_per``). SQLite: keyset pagination on the
        key (each page a short read of the clustered B-tree, so no read transaction stays open
        for the whole export and the writer's WAL checkpoints keep working). After the first
        page ``key > last row`` *replaces* ``lower``: with both, SQLite seeks by ``lower`` and
        every page would rescan the range before it.
        """
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be >= 1")
        q = q.order_by(*key)
        if self.engine.dialect.name != "sqlite":
            with self.engine.connect() as conn:
                yield from conn.execution_options(yield_per=chunk_rows).execute(q.where(lower)).partitions()
            return
        after: list[Any] | None = None
        while True:
            page = q.where(lower) if after is None else q.where(
                sa.tuple_(*key) > sa.tuple_(*(sa.literal(v, c.type) for c, v in zip(key, after))))
            with self.engine.connect() as conn:
                rows = conn.execute(page.limit(chunk_rows)).all()
            if rows:
                yield rows
            if len(rows) < chunk_rows:
                return
            last = rows[-1]._mapping
            after = [last[c] for c in key]


__all__ = ["Bar", "ExportReads"]
