"""Read side and small-table CRUD (SQLAlchemy Core, synchronous).

Every method does blocking I/O: call them from a worker thread, e.g.
``await asyncio.to_thread(repo.ticks_between, code, start, end)``, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...config import Secret, redact_url
from ...defaults import RETENTION_DAYS
from ...core.events import AlertEvent, PendingGap
from ...core.ticks import VENUE_KRX, Tick
from ...protocol.records import KST
from . import schema
from . import day_reads, layout
from .layout import SOURCE_NAMES, VENUE_NAMES
from .schema import alerts, bars_1m, pending_gaps, settings, ticks, watchlist_items, watchlists

T = ticks.c


class SecretSettingError(ValueError):
    """Raised when code tries to persist something that looks like a credential."""


class StoredAlert(NamedTuple):
    alert: AlertEvent
    acknowledged: bool
    acknowledged_at: datetime | None


def create_engine(url: str, **kwargs: Any) -> Engine:
    """Engine with the pragmas kis-desk relies on (SQLite: WAL, synchronous=NORMAL, busy_timeout)."""
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA auto_vacuum=INCREMENTAL")      # takes effect on a new file only
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    return engine


def _stored_alert(row: Any) -> StoredAlert:
    """A row of ``alerts`` → StoredAlert; every AlertEvent field the table has is carried over."""
    m = row._mapping
    values = {f.name: m[f.name] for f in dataclass_fields(AlertEvent) if f.name in m}
    return StoredAlert(AlertEvent(**values), bool(m["acknowledged"]), m["acknowledged_at"])


def _tick(row: Any) -> Tick:
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


class StorageInfo(NamedTuple):
    """What Settings and ``collect`` show about the database."""

    database: str                 # redacted URL
    backend: str                  # sqlite | postgresql
    size_bytes: int
    retention_days: int           # raw trades kept (0: forever); bars_1m are kept forever
    oldest_trade_day: date | None
    newest_trade_day: date | None
    trade_days: int = 0           # business dates with raw trades kept


# SQLite: the distinct codes by key seeks (a "skip scan" in SQL: one seek per code, in C).
_SQLITE_CODES = f"""WITH RECURSIVE codes(c) AS (
    SELECT min(stock_code) FROM {layout.TICKS}
    UNION ALL SELECT (SELECT min(stock_code) FROM {layout.TICKS} WHERE stock_code > c) FROM codes
    WHERE c IS NOT NULL)"""
_SQLITE_CODES_ON = _SQLITE_CODES + f"""
    SELECT c FROM codes WHERE c IS NOT NULL AND EXISTS (SELECT 1 FROM {layout.TICKS}
        WHERE stock_code = c AND venue IN (0, 1, 2) AND business_date = :d) ORDER BY c"""
# … and each series' days the same way (one seek per code, venue and day kept).
_SQLITE_DAYS = _SQLITE_CODES + f""", venues(v) AS (VALUES (0), (1), (2)),
    days(c, v, d) AS (
        SELECT c, v, (SELECT min(business_date) FROM {layout.TICKS} WHERE stock_code = c AND venue = v)
        FROM codes, venues WHERE c IS NOT NULL
        UNION ALL SELECT c, v, (SELECT min(business_date) FROM {layout.TICKS}
                                WHERE stock_code = c AND venue = v AND business_date > d)
        FROM days WHERE d IS NOT NULL)
    SELECT min(d), max(d), count(DISTINCT d) FROM days WHERE d IS NOT NULL"""


class Repository:
    """Queries for the UI and the collector; watchlists, alerts and settings."""

    def __init__(self, url: str, *, migrate: bool = True, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or create_engine(url)
        if migrate:
            schema.migrate(self.engine)

    def __repr__(self) -> str:
        return f"Repository({redact_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # -- trades ------------------------------------------------------------------------------------
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
            return [_tick(r) for r in conn.execute(q)]

    def _day(self, code: str, business_date: date, venue: str) -> sa.ColumnElement[bool]:
        return self._series(code, venue, business_date, business_date)

    def last_trade(self, code: str, business_date: date, venue: str = VENUE_KRX) -> Tick | None:
        """The day's last stored trade (highest cumulative volume): where a back-fill resumes."""
        q = (sa.select(ticks).where(self._day(code, business_date, venue))
             .order_by(T.cum_volume.desc()).limit(1))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _tick(row) if row is not None else None

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
        return _tick(row) if row is not None else None

    def first_trade(self, code: str, business_date: date, venue: str = VENUE_KRX) -> Tick | None:
        """The day's first stored trade (lowest cumulative volume)."""
        q = sa.select(ticks).where(self._day(code, business_date, venue)).order_by(T.cum_volume).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _tick(row) if row is not None else None

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
            return [(t.timestamp, t.price, t.cum_volume) for t in map(_tick, conn.execute(q))]

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

    def storage_info(self) -> StorageInfo:
        """Database size, retention and the days of raw trades kept, cheaply (key seeks,
        catalog reads; never a scan of the trades)."""
        from .retention import RETENTION_SETTING

        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                size = int(pages) * int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
                lo, hi, kept_days = conn.execute(sa.text(_SQLITE_DAYS)).one()
                lo, hi = (None if v is None else layout.day_from_number(v) for v in (lo, hi))
            else:
                size = int(conn.exec_driver_sql(layout.PG_SIZE).scalar_one())
                days = sorted(d for (n,) in conn.exec_driver_sql(layout.PG_PARTITIONS)
                              if (d := layout.pg_partition_day(n)) is not None)
                used = [d for d in days if conn.exec_driver_sql(
                    f"SELECT EXISTS (SELECT 1 FROM {layout.pg_partition_name(d)})").scalar()]
                lo, hi = (used[0], used[-1]) if used else (None, None)
                kept_days = len(used)
            kept = conn.execute(sa.select(settings.c.value)
                                .where(settings.c.key == RETENTION_SETTING)).scalar()
        return StorageInfo(redact_url(self.url), self.engine.dialect.name, size,
                           int(kept) if kept is not None else RETENTION_DAYS, lo, hi, int(kept_days or 0))

    # -- export: long ranges in bounded chunks (``kis-desk export``, tools/export.py) ------------
    EXPORT_CHUNK_ROWS = 20_000

    def trade_chunks(self, code: str, first: date, last: date, venue: str = VENUE_KRX,
                     chunk_rows: int = EXPORT_CHUNK_ROWS) -> Iterator[list[Tick]]:
        """Trades of ``code`` on ``venue`` with ``first <= business_date <= last`` in key order
        (day, then cumulative volume = trade order), as lists of at most ``chunk_rows``."""
        q = sa.select(ticks).where(T.stock_code == code, T.venue == layout.venue_code(venue),
                                   T.business_date <= last)
        for rows in self._chunked(q, T.business_date >= first, (T.business_date, T.cum_volume), chunk_rows):
            yield [_tick(r) for r in rows]

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

    # -- watchlists --------------------------------------------------------------------------------
    def list_watchlists(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(watchlists.c.name)
                                     .order_by(watchlists.c.position, watchlists.c.id)).scalars())

    def create_watchlist(self, name: str, codes: Sequence[str] = ()) -> None:
        """Raises ValueError when the name is taken or blank."""
        name = name.strip()
        if not name:
            raise ValueError("watchlist name is empty")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(watchlists.c.id).where(watchlists.c.name == name)).first():
                raise ValueError(f"watchlist {name!r} already exists")
            pos = conn.execute(sa.select(sa.func.coalesce(sa.func.max(watchlists.c.position), -1))).scalar_one()
            conn.execute(sa.insert(watchlists).values(name=name, position=int(pos) + 1,
                                                      created=datetime.now(timezone.utc)))
            if codes:
                self._set_codes(conn, self._wl_id(conn, name), codes)

    def rename_watchlist(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise ValueError("watchlist name is empty")
        with self.engine.begin() as conn:
            wl_id = self._wl_id(conn, old)
            if new != old and conn.execute(sa.select(watchlists.c.id).where(watchlists.c.name == new)).first():
                raise ValueError(f"watchlist {new!r} already exists")
            conn.execute(sa.update(watchlists).where(watchlists.c.id == wl_id).values(name=new))

    def delete_watchlist(self, name: str) -> None:
        with self.engine.begin() as conn:
            wl_id = self._wl_id(conn, name)
            conn.execute(sa.delete(watchlist_items).where(watchlist_items.c.watchlist_id == wl_id))
            conn.execute(sa.delete(watchlists).where(watchlists.c.id == wl_id))

    def set_watchlist_order(self, names: Sequence[str]) -> None:
        """Reorder watchlists (names not given keep their relative order after these)."""
        with self.engine.begin() as conn:
            current = list(conn.execute(sa.select(watchlists.c.name)
                                        .order_by(watchlists.c.position, watchlists.c.id)).scalars())
            unknown = [n for n in names if n not in current]
            if unknown:
                raise KeyError(f"unknown watchlist(s): {', '.join(unknown)}")
            order = list(dict.fromkeys(names)) + [n for n in current if n not in names]
            for i, n in enumerate(order):
                conn.execute(sa.update(watchlists).where(watchlists.c.name == n).values(position=i))

    def watchlist_codes(self, name: str) -> list[str]:
        with self.engine.connect() as conn:
            wl_id = self._wl_id(conn, name)
            return list(conn.execute(sa.select(watchlist_items.c.code)
                                     .where(watchlist_items.c.watchlist_id == wl_id)
                                     .order_by(watchlist_items.c.position)).scalars())

    def set_watchlist_codes(self, name: str, codes: Sequence[str]) -> None:
        """Replace the watchlist's codes; their order is the display order (duplicates dropped)."""
        with self.engine.begin() as conn:
            self._set_codes(conn, self._wl_id(conn, name), codes)

    @staticmethod
    def _wl_id(conn: sa.Connection, name: str) -> int:
        wl_id = conn.execute(sa.select(watchlists.c.id).where(watchlists.c.name == name)).scalar()
        if wl_id is None:
            raise KeyError(f"no watchlist named {name!r}")
        return int(wl_id)

    @staticmethod
    def _set_codes(conn: sa.Connection, wl_id: int, codes: Iterable[str]) -> None:
        conn.execute(sa.delete(watchlist_items).where(watchlist_items.c.watchlist_id == wl_id))
        rows = [{"watchlist_id": wl_id, "code": c, "position": i}
                for i, c in enumerate(dict.fromkeys(c.strip().upper() for c in codes if c.strip()))]
        if rows:
            conn.execute(sa.insert(watchlist_items), rows)

    # -- alerts ------------------------------------------------------------------------------------
    def save_alert(self, alert: AlertEvent) -> bool:
        """Insert unless already stored (same alert_id). True when inserted."""
        values = {c: getattr(alert, c) for c in schema.ALERT_COLUMNS if c != "business_date"}
        values["business_date"] = schema.kst_date(alert.trigger_time)
        with self.engine.begin() as conn:
            if conn.execute(sa.select(alerts.c.id).where(alerts.c.alert_id == alert.alert_id)).first():
                return False
            conn.execute(sa.insert(alerts).values(**values))
        return True

    def alerts_on(self, business_date: date) -> list[StoredAlert]:
        q = (sa.select(alerts).where(alerts.c.business_date == business_date)
             .order_by(alerts.c.trigger_time, alerts.c.id))
        with self.engine.connect() as conn:
            return [StoredAlert(AlertEvent(
                alert_id=r.alert_id, stock_code=r.stock_code, stock_name=r.stock_name,
                direction=r.direction, change_pct=r.change_pct, base_price=int(r.base_price),
                base_time=r.base_time, trigger_price=int(r.trigger_price), trigger_time=r.trigger_time,
                trigger_cum_volume=int(r.trigger_cum_volume), detected_at=r.detected_at,
                window_seconds=r.window_seconds, threshold_pct=r.threshold_pct, step=int(r.step),
                late=bool(r.late), delay_s=float(r.delay_s), source=r.source, kind=r.kind),
                bool(r.acknowledged), r.acknowledged_at) for r in conn.execute(q)]

    def alert_ids_on(self, business_date: date) -> list[str]:
        """Ids of the alerts stored for a day (the detector's seed after a restart)."""
        q = sa.select(alerts.c.alert_id).where(alerts.c.business_date == business_date)
        with self.engine.connect() as conn:
            return list(conn.scalars(q))

    def acknowledge(self, alert_id: str) -> bool:
        """Mark an alert as seen. False when no such alert or already acknowledged."""
        with self.engine.begin() as conn:
            res = conn.execute(sa.update(alerts)
                               .where(alerts.c.alert_id == alert_id, alerts.c.acknowledged == sa.false())
                               .values(acknowledged=True, acknowledged_at=datetime.now(timezone.utc)))
            return res.rowcount > 0

    # -- alert history (any past day) ------------------------------------------------------------
    ACK_CHUNK = 500      # ids per UPDATE statement (SQLite's bound-variable limit), one transaction

    def alerts_between(self, start_date: date, end_date: date, codes: Sequence[str] | None = None,
                       direction: str | None = None) -> list[StoredAlert]:
        """Stored alerts with ``start_date <= business_date <= end_date``, oldest first.

        ``codes``: only these symbols (None = all; an empty list matches nothing);
        ``direction``: ``"up"`` / ``"down"`` / None for both.
        """
        q = sa.select(alerts).where(alerts.c.business_date >= start_date, alerts.c.business_date <= end_date)
        if codes is not None:
            q = q.where(alerts.c.stock_code.in_(list(dict.fromkeys(codes))))
        if direction is not None:
            if direction not in ("up", "down"):
                raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
            q = q.where(alerts.c.direction == direction)
        q = q.order_by(alerts.c.trigger_time, alerts.c.id)
        with self.engine.connect() as conn:
            return [_stored_alert(r) for r in conn.execute(q)]

    def acknowledge_many(self, alert_ids: Iterable[str]) -> int:
        """Acknowledge all ``alert_ids`` in ONE transaction (all or none); returns how many
        changed (unknown and already acknowledged ids count 0)."""
        ids = list(dict.fromkeys(alert_ids))
        if not ids:
            return 0
        now = datetime.now(timezone.utc)
        changed = 0
        with self.engine.begin() as conn:
            for i in range(0, len(ids), self.ACK_CHUNK):
                res = conn.execute(sa.update(alerts)
                                   .where(alerts.c.alert_id.in_(ids[i:i + self.ACK_CHUNK]),
                                          alerts.c.acknowledged == sa.false())
                                   .values(acknowledged=True, acknowledged_at=now))
                changed += res.rowcount
        return changed

    # -- pending back-fill gaps --------------------------------------------------------------------
    def add_pending_gaps(self, gaps: Iterable[PendingGap], status: str = "pending") -> int:
        rows = [{"stock_code": g.code, "business_date": g.business_date, "after_cum": g.after_cum,
                 "since_hhmmss": g.since_hhmmss, "until_cum": g.until_cum, "status": status,
                 "recorded_at": datetime.now(timezone.utc)} for g in gaps]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(pending_gaps), rows)
        return len(rows)

    def list_pending_gaps(self, status: str = "pending") -> list[PendingGap]:
        q = sa.select(pending_gaps).where(pending_gaps.c.status == status).order_by(pending_gaps.c.id)
        with self.engine.connect() as conn:
            return [PendingGap(r.stock_code, r.business_date,
                               None if r.after_cum is None else int(r.after_cum), r.since_hhmmss,
                               None if r.until_cum is None else int(r.until_cum))
                    for r in conn.execute(q)]

    def clear_pending_gaps(self, status: str = "pending") -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(pending_gaps).where(pending_gaps.c.status == status)).rowcount

    def replace_pending_gaps(self, gaps: Sequence[PendingGap],
                             unrecoverable: Sequence[PendingGap] = ()) -> None:
        """In one transaction: the pending set becomes ``gaps``; ``unrecoverable`` are kept
        on record as such."""
        now = datetime.now(timezone.utc)

        def rows(items: Sequence[PendingGap], status: str) -> list[dict[str, Any]]:
            return [{"stock_code": g.code, "business_date": g.business_date,
                     "after_cum": g.after_cum, "since_hhmmss": g.since_hhmmss,
                     "until_cum": g.until_cum, "status": status, "recorded_at": now} for g in items]

        with self.engine.begin() as conn:
            conn.execute(sa.delete(pending_gaps).where(pending_gaps.c.status == "pending"))
            new = rows(gaps, "pending") + rows(unrecoverable, "unrecoverable")
            if new:
                conn.execute(sa.insert(pending_gaps), new)

    # -- settings (non-secret only) ---------------------------------------------------------------
    @staticmethod
    def _check_setting(key: str, value: object = "") -> None:
        if isinstance(value, Secret) or schema.looks_secret(key):
            raise SecretSettingError(
                f"refusing to store setting {key!r}: credentials belong in the OS keyring, not the database")
        if not isinstance(value, str):
            raise TypeError("setting values are strings (serialise structured values yourself)")

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.engine.connect() as conn:
            v = conn.execute(sa.select(settings.c.value).where(settings.c.key == key)).scalar()
        return default if v is None else v

    def set_setting(self, key: str, value: str) -> None:
        self._check_setting(key, value)
        with self.engine.begin() as conn:
            updated = conn.execute(sa.update(settings).where(settings.c.key == key).values(value=value))
            if updated.rowcount == 0:
                conn.execute(sa.insert(settings).values(key=key, value=value))

    def delete_setting(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(settings).where(settings.c.key == key))

    def all_settings(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {k: v for k, v in conn.execute(sa.select(settings.c.key, settings.c.value))}
