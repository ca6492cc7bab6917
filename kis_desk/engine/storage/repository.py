"""The repository: the read side and small-table CRUD of the database (SQLAlchemy Core, synchronous).

Every method does blocking I/O: call them from a worker thread, e.g.
``await asyncio.to_thread(repo.ticks_between, code, start, end)``, never on the event loop.

One :class:`Repository` (one engine) answers everything; each job is a module of its own:
trades and bars (:mod:`.trade_reads`), long exports (:mod:`.export_reads`), watchlists
(:mod:`.watchlist_store`), alerts (:mod:`.alert_store`). This module keeps the engine, what
Settings shows about the database (:meth:`Repository.storage_info`), the pending back-fill
gaps and the (non-secret) settings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ...config import Secret, redact_url
from ...defaults import RETENTION_DAYS
from ...core.events import PendingGap
from . import schema
from . import layout
from .alert_store import AlertStore
from .export_reads import ExportReads
from .schema import pending_gaps, settings
from .trade_reads import SQLITE_CODES, TradeReads
from .watchlist_store import WatchlistStore


class SecretSettingError(ValueError):
    """Raised when code tries to persist something that looks like a credential."""


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


class StorageInfo(NamedTuple):
    """What Settings and ``collect`` show about the database."""

    database: str                 # redacted URL
    backend: str                  # sqlite | postgresql
    size_bytes: int
    retention_days: int           # raw trades kept (0: forever); bars_1m are kept forever
    oldest_trade_day: date | None
    newest_trade_day: date | None
    trade_days: int = 0           # business dates with raw trades kept


# each series' days by key seeks (one seek per code, venue and day kept).
_SQLITE_DAYS = SQLITE_CODES + f""", venues(v) AS (VALUES (0), (1), (2)),
    days(c, v, d) AS (
        SELECT c, v, (SELECT min(business_date) FROM {layout.TICKS} WHERE stock_code = c AND venue = v)
        FROM codes, venues WHERE c IS NOT NULL
        UNION ALL SELECT c, v, (SELECT min(business_date) FROM {layout.TICKS}
                                WHERE stock_code = c AND venue = v AND business_date > d)
        FROM days WHERE d IS NOT NULL)
    SELECT min(d), max(d), count(DISTINCT d) FROM days WHERE d IS NOT NULL"""


def _gap_rows(gaps: Iterable[PendingGap], status: str, now: datetime) -> list[dict[str, Any]]:
    return [{"stock_code": g.code, "business_date": g.business_date, "after_cum": g.after_cum,
             "since_hhmmss": g.since_hhmmss, "until_cum": g.until_cum, "venue": g.venue,
             "status": status, "recorded_at": now} for g in gaps]


class Repository(TradeReads, ExportReads, WatchlistStore, AlertStore):
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

    # -- what Settings shows about the database ---------------------------------------------------
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

    # -- pending back-fill gaps --------------------------------------------------------------------
    def add_pending_gaps(self, gaps: Iterable[PendingGap], status: str = "pending") -> int:
        rows = _gap_rows(gaps, status, datetime.now(timezone.utc))
        if rows:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(pending_gaps), rows)
        return len(rows)

    def list_pending_gaps(self, status: str = "pending") -> list[PendingGap]:
        q = sa.select(pending_gaps).where(pending_gaps.c.status == status).order_by(pending_gaps.c.id)
        with self.engine.connect() as conn:
            return [PendingGap(r.stock_code, r.business_date,
                               None if r.after_cum is None else int(r.after_cum), r.since_hhmmss,
                               None if r.until_cum is None else int(r.until_cum), r.venue)
                    for r in conn.execute(q)]

    def clear_pending_gaps(self, status: str = "pending") -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(pending_gaps).where(pending_gaps.c.status == status)).rowcount

    def replace_pending_gaps(self, gaps: Sequence[PendingGap],
                             unrecoverable: Sequence[PendingGap] = ()) -> None:
        """In one transaction: the pending set becomes ``gaps``; ``unrecoverable`` are kept
        on record as such."""
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(pending_gaps).where(pending_gaps.c.status == "pending"))
            new = _gap_rows(gaps, "pending", now) + _gap_rows(unrecoverable, "unrecoverable", now)
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


__all__ = ["Repository", "SecretSettingError", "StorageInfo", "create_engine"]
