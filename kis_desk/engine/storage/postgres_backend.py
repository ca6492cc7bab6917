"""PostgreSQL writer backend: binary ``COPY`` into a per-connection staging table, then one
``INSERT … SELECT … ON CONFLICT DO NOTHING`` (inserted rows = its ``rowcount``).

The staging table is ``TEMP … ON COMMIT DELETE ROWS``: never a row in the user's schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ...core.events import AlertEvent
from ...core.ticks import Tick
from . import schema
from .backend import alert_row, close_quietly

PG_COLS = ", ".join(f'"{c}"' for c in schema.TICK_COLUMNS)
_ALERT_COLS = ", ".join(schema.ALERT_COLUMNS)
_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS _kis_tick_stage (stock_code text, business_date date, "
          '"timestamp" timestamptz, price int8, volume int8, cum_volume int8, change int8, '
          "change_rate float8, strength float8, received_at timestamptz, source text) "
          "ON COMMIT DELETE ROWS")
_COPY = f"COPY _kis_tick_stage ({PG_COLS}) FROM STDIN (FORMAT BINARY)"
PG_COPY_TYPES = ["text", "date", "timestamptz", "int8", "int8", "int8", "int8", "float8", "float8",
                 "timestamptz", "text"]
_MERGE = (f"INSERT INTO {schema.TICKS} ({PG_COLS}) SELECT {PG_COLS} FROM _kis_tick_stage "
          "ON CONFLICT (stock_code, business_date, cum_volume) DO NOTHING")
_ALERT = (f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({', '.join(['%s'] * len(schema.ALERT_COLUMNS))}) "
          "ON CONFLICT (alert_id) DO NOTHING")
_UTC = timezone.utc


def pg_rows(ticks: Sequence[Tick]) -> list[tuple]:
    """Tick → COPY row in ``PG_COPY_TYPES`` order."""
    out = []
    append = out.append
    last_ts = None
    day = None
    for t in ticks:
        ts = t[1]
        if ts is not last_ts:
            if ts.tzinfo is None:
                raise ValueError(f"naive timestamp in tick {t.stock_code} {ts}")
            day = schema.kst_date(ts)
            last_ts = ts
        rate, strength = t[6], t[7]
        append((t[0], day, ts, t[2], t[3], t[4], t[5],
                None if rate is None else float(rate), None if strength is None else float(strength),
                datetime.fromtimestamp(t[8], _UTC), t[9]))
    return out


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


class PostgresBackend:
    name = "postgresql"

    def __init__(self, url: sa.URL, busy_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.conn: Any = None

    @property
    def connected(self) -> bool:
        return self.conn is not None

    def connect(self) -> None:
        conn = connect_psycopg(self.url, self.connect_timeout, "kis-desk-writer")
        try:
            conn.execute(_STAGE)
            conn.commit()
        except Exception:
            conn.close()
            raise
        self.conn = conn

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None

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
                    with cur.copy(_COPY) as cp:
                        cp.set_types(PG_COPY_TYPES)
                        write_row = cp.write_row
                        for r in rows:
                            write_row(r)
                    cur.execute(_MERGE)
                    inserted = cur.rowcount
                for a in alerts:
                    cur.execute(_ALERT, alert_row(a, False))
                    alerts_inserted += max(cur.rowcount, 0)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001
                pass
            raise
        return inserted, alerts_inserted
