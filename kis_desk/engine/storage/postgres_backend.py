"""PostgreSQL writer backend: binary ``COPY`` into a per-connection staging table, then one
statement that inserts the batch (``ON CONFLICT DO NOTHING``) and folds the rows really
inserted into ``bars_1m`` (see :mod:`.layout`); it returns the number inserted.

The staging table is ``TEMP … ON COMMIT DELETE ROWS``: never a row in the user's schema. The
trade table is partitioned by day; a batch's days get their partition first (created ahead of
time too), and retention drops whole partitions — no row-by-row delete, a lock of milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ...core.events import AlertEvent
from ...core.ticks import Tick
from . import layout, schema
from .backend import OneConnection, alert_row

PG_COLS = ", ".join(schema.TICK_COLUMNS)
_ALERT_COLS = ", ".join(schema.ALERT_COLUMNS)
_STAGE_NAME = "_kis_tick_stage"
# The stage holds every integer as int8: binary COPY into an int4 column silently keeps the low
# 32 bits of a larger value, while INSERT … SELECT into the table's int4 columns refuses it
# ("integer out of range"), which ``write`` turns into ValueError (the tick is isolated).
_STAGE = (f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_NAME} (cum_volume int8, ts int8, recv_delay_us int8, "
          "price int8, volume int8, change int8, change_rate_bp int8, strength_bp int8, ts_us int8, "
          "business_date date, venue int2, source int2, stock_code text) ON COMMIT DELETE ROWS")
_COPY = f"COPY {_STAGE_NAME} ({PG_COLS}) FROM STDIN (FORMAT BINARY)"
PG_COPY_TYPES = ["int8", "int8", "int8", "int8", "int8", "int8", "int8", "int8", "int8", "date", "int2",
                 "int2", "text"]
_DATA_EXCEPTION = "22"          # SQLSTATE class: a value the column cannot hold
_MERGE = layout.PG_MERGE_WITH_BARS.format(stage=_STAGE_NAME, conflict=layout.PG_SKIP_DUPLICATES)
_INSERT_NEW = layout.PG_MERGE_WITH_BARS.format(stage=_STAGE_NAME, conflict="")
_UNIQUE_VIOLATION = "23505"
#: After a batch with duplicates, this many batches go straight to the merge (a back-fill
#: overlapping stored trades comes in several batches).
_MERGE_AFTER_DUPLICATE = 8
_ALERT = (f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({', '.join(['%s'] * len(schema.ALERT_COLUMNS))}) "
          "ON CONFLICT (alert_id) DO NOTHING")
_SETTING = ("INSERT INTO settings (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value")


def pg_rows(ticks: Sequence[Tick]) -> list[tuple]:
    """Tick → row in ``layout.TICK_COLUMNS`` order (see :func:`.layout.trade_rows`)."""
    return layout.trade_rows(ticks, dates=True)


def connect_psycopg(url: sa.URL, connect_timeout: float, application_name: str) -> Any:
    """A psycopg connection from a SQLAlchemy URL, with keepalives (a dead server or a half-open
    socket is noticed instead of blocking forever)."""
    import psycopg

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    engine.dispose()
    kwargs.setdefault("connect_timeout", max(1, int(connect_timeout)))
    kwargs.setdefault("application_name", application_name)
    kwargs.setdefault("keepalives", 1)
    kwargs.setdefault("keepalives_idle", 5)
    kwargs.setdefault("keepalives_interval", 2)
    kwargs.setdefault("keepalives_count", 3)
    return psycopg.connect(*args, **kwargs)


class PostgresBackend(OneConnection):
    name = "postgresql"

    def __init__(self, url: sa.URL, busy_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.conn: Any = None
        self._days: set[date] = set()          # partitions known to exist
        self._merge_next = 0                    # batches left that skip the fast path

    def connect(self) -> None:
        conn = connect_psycopg(self.url, self.connect_timeout, "kis-desk-writer")
        self._days = set()
        try:
            conn.execute(_STAGE)
            conn.commit()
        except Exception:
            conn.close()
            raise
        self.conn = conn

    def probe(self) -> None:
        self.conn.execute("SELECT 1")
        self.conn.rollback()

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> tuple[int, int]:
        rows = pg_rows(ticks)
        conn = self.conn
        inserted = alerts_inserted = 0
        try:
            with conn.cursor() as cur:
                if rows:
                    self._ensure_partitions(cur, {r[layout.DAY_INDEX] for r in rows})
                    with cur.copy(_COPY) as cp:
                        cp.set_types(PG_COPY_TYPES)
                        write_row = cp.write_row
                        for r in rows:
                            write_row(r)
                    inserted = self._insert_staged(cur)
                for a in alerts:
                    cur.execute(_ALERT, alert_row(a, False))
                    alerts_inserted += max(cur.rowcount, 0)
            conn.commit()
        except BaseException as exc:
            self._days = set()                  # partitions created in this transaction are gone
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001
                pass
            if str(getattr(exc, "sqlstate", "") or "").startswith(_DATA_EXCEPTION):
                raise ValueError(f"value out of range: {exc}") from exc
            raise
        return inserted, alerts_inserted

    def _insert_staged(self, cur: Any) -> int:
        """Staged rows into the table and bars_1m; returns the number inserted.

        Fast path: a plain INSERT (about half the cost of ``ON CONFLICT``'s speculative
        insertion) inside a savepoint; a duplicate makes it fail, and the batch then goes
        through the merge that skips duplicates.
        """
        if self._merge_next <= 0:
            cur.execute("SAVEPOINT kis_fast")
            try:
                cur.execute(_INSERT_NEW)
                inserted = int(cur.fetchone()[0])
            except Exception as exc:
                if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT kis_fast")
                self._merge_next = _MERGE_AFTER_DUPLICATE
            else:
                cur.execute("RELEASE SAVEPOINT kis_fast")
                return inserted
        self._merge_next -= 1
        cur.execute(_MERGE)
        return int(cur.fetchone()[0])

    def _ensure_partitions(self, cur: Any, days: set[date]) -> None:
        missing = days - self._days
        if not missing:
            return
        today = datetime.now(schema.KST).date()
        missing |= {today + timedelta(days=i) for i in range(layout.PG_DAYS_AHEAD + 1)} - self._days
        cur.execute(layout.PG_PARTITION_LOCK)
        cur.execute(layout.PG_PARTITIONS)
        existing = {layout.pg_partition_day(name) for (name,) in cur.fetchall()}
        for day in sorted(missing - existing):
            cur.execute(layout.pg_create_partition(day))
        self._days |= missing

    # -- retention and size ------------------------------------------------------------------------
    def purge_step(self, cutoff: date, max_rows: int) -> tuple[int, bool]:
        """Drop the oldest daily partition before ``cutoff``; (trades removed, nothing left)."""
        conn = self.conn
        try:
            with conn.cursor() as cur:
                cur.execute(layout.PG_PARTITIONS)
                old = sorted((d, n) for (n,) in cur.fetchall()
                             if (d := layout.pg_partition_day(n)) is not None and d < cutoff)
                if not old:
                    conn.rollback()
                    return 0, True
                day, name = old[0]
                cur.execute(f"SELECT count(*) FROM {name}")
                n = cur.fetchone()[0]
                cur.execute("SET LOCAL lock_timeout = '2s'")    # never queue behind a long reader
                cur.execute(f"DROP TABLE {name}")
                self._days.discard(day)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001
                pass
            raise
        return int(n), len(old) == 1

    def database_bytes(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute(layout.PG_SIZE)
            n = cur.fetchone()[0]
        self.conn.rollback()
        return int(n)

    def record_setting(self, key: str, value: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(_SETTING, (key, value))
        self.conn.commit()
