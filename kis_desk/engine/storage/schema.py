"""Database schema and forward-only migrations (SQLAlchemy 2 Core).

Portable between SQLite (the desktop default) and PostgreSQL.

Trades
------
``stock_prices_realtime`` uses the compact integer layout of :mod:`.layout` (schema v5): the
trade identity (stock_code, venue, business_date, cum_volume) is the primary key, times are
integers, and ``bars_1m`` keeps 1-minute OHLCV forever while retention removes old trades.

Other time values
-----------------
Every other timezone-aware column uses :class:`TZDateTime`:

* PostgreSQL: native ``TIMESTAMP WITH TIME ZONE``.
* SQLite: ``TEXT`` holding ISO-8601 **in KST with microseconds and offset**, always the same
  shape (``2026-03-05T09:00:01.000000+09:00``), so text order is time order.

Migrations
----------
``MIGRATIONS`` is an ordered list; migration *n* takes the schema from version *n-1* to *n*
(numbers may have gaps: those above the current version are applied in order). Each migration
defines the tables it creates with its own frozen DDL (never the current one), so an old
database is always upgraded through the same steps a new one went through. Migrations add
tables, columns and indexes, with one exception: v5 changes the trade layout — it renames the
old table, copies every row into the new one in bounded chunks (converted in SQL, no row goes
through Python), builds the 1-minute bars, and then drops the old table. It runs in the same
single transaction as every migration, so an interrupted upgrade leaves the v4 table intact.
User data is never discarded: row counts and values are equal before and after (tested).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ...protocol.records import KST
from . import layout

# -- time type -----------------------------------------------------------------------------------


def sqlite_dt(dt: datetime) -> str:
    """The one SQLite text form of an aware datetime (KST, microseconds, offset)."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: kis-desk stores timezone-aware times only")
    if dt.utcoffset() != _KST_OFFSET:
        dt = dt.astimezone(KST)
    return dt.isoformat(timespec="microseconds")


def sqlite_epoch(ts: float) -> str:
    """SQLite text form of an epoch-seconds wall-clock time (``Tick.received_at``)."""
    return datetime.fromtimestamp(ts, KST).isoformat(timespec="microseconds")


_KST_OFFSET = datetime(2000, 1, 1, tzinfo=KST).utcoffset()


class TZDateTime(sa.types.TypeDecorator):
    """Aware datetime: timestamptz on PostgreSQL, normalised KST ISO text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect):  # type: ignore[override]
        if value is None:
            return None
        if dialect.name == "sqlite":
            return sqlite_dt(value)
        if value.tzinfo is None:
            raise ValueError("naive datetime: kis-desk stores timezone-aware times only")
        return value

    def process_result_value(self, value, dialect: sa.Dialect):  # type: ignore[override]
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:  # defensive: a hand-edited row
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(KST)


# -- current schema (what the application code queries) --------------------------------------------

TICKS = layout.TICKS
metadata = sa.MetaData()


def _id_column() -> sa.Column:
    # INTEGER PRIMARY KEY is SQLite's rowid alias; BIGSERIAL-like identity on PostgreSQL.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                     autoincrement=True)


def _ticks_table_v1(md: sa.MetaData) -> sa.Table:
    """The trade table of schema v1–v4 (rowid, text times; replaced by :mod:`.layout` in v5)."""
    return sa.Table(
        TICKS, md,
        _id_column(),
        sa.Column("stock_code", sa.String(12), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("timestamp", TZDateTime, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("volume", sa.BigInteger, nullable=False),
        sa.Column("cum_volume", sa.BigInteger, nullable=False),
        sa.Column("change", sa.BigInteger),
        sa.Column("change_rate", sa.Float(precision=53)),
        sa.Column("strength", sa.Float(precision=53)),
        sa.Column("received_at", TZDateTime, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.UniqueConstraint("stock_code", "business_date", "cum_volume", name="uq_tick_trade"),
        sa.Index("ix_tick_code_time", "stock_code", "timestamp"),
    )


def _settings_table(md: sa.MetaData) -> sa.Table:
    return sa.Table("settings", md,
                    sa.Column("key", sa.String(200), primary_key=True),
                    sa.Column("value", sa.Text, nullable=False))


def _schema_version_table(md: sa.MetaData) -> sa.Table:
    return sa.Table("schema_version", md,
                    sa.Column("version", sa.Integer, primary_key=True),
                    sa.Column("applied_at", TZDateTime, nullable=False),
                    sa.Column("description", sa.String(200), nullable=False))


def _watchlist_tables(md: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    wl = sa.Table("watchlists", md,
                  sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                  sa.Column("name", sa.String(100), nullable=False, unique=True),
                  sa.Column("position", sa.Integer, nullable=False),
                  sa.Column("created", TZDateTime, nullable=False))
    items = sa.Table("watchlist_items", md,
                     sa.Column("watchlist_id", sa.Integer,
                               sa.ForeignKey("watchlists.id", ondelete="CASCADE"), primary_key=True),
                     sa.Column("code", sa.String(12), primary_key=True),
                     sa.Column("position", sa.Integer, nullable=False))
    return wl, items


def _alert_late_columns() -> list[sa.Column]:
    """v3: how late an alert was detected (engine.detector: "Late alerts")."""
    return [sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("delay_s", sa.Float(precision=53), nullable=False, server_default="0"),
            sa.Column("source", sa.String(10), nullable=False, server_default="ws")]


def _alert_kind_column() -> sa.Column:
    """v7: "move" (sudden move) or "level" (price-level alert, engine.price_levels)."""
    return sa.Column("kind", sa.String(8), nullable=False, server_default="move")


def _alert_vi_column() -> sa.Column:
    """v8: the VI auction the alert's move went through ("" = none; engine.detector "VI")."""
    return sa.Column("vi", sa.String(12), nullable=False, server_default="")


def _alerts_table(md: sa.MetaData, *, late_columns: bool = True, kind_column: bool = True,
                  vi_column: bool = True) -> sa.Table:
    return sa.Table(
        "alerts", md,
        _id_column(),
        sa.Column("alert_id", sa.String(120), nullable=False, unique=True),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("stock_code", sa.String(12), nullable=False),
        sa.Column("stock_name", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("change_pct", sa.Float(precision=53), nullable=False),
        sa.Column("base_price", sa.BigInteger, nullable=False),
        sa.Column("base_time", TZDateTime, nullable=False),
        sa.Column("trigger_price", sa.BigInteger, nullable=False),
        sa.Column("trigger_time", TZDateTime, nullable=False),
        sa.Column("trigger_cum_volume", sa.BigInteger, nullable=False),
        sa.Column("detected_at", TZDateTime, nullable=False),
        sa.Column("window_seconds", sa.Float(precision=53), nullable=False),
        sa.Column("threshold_pct", sa.Float(precision=53), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("acknowledged", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("acknowledged_at", TZDateTime),
        *(_alert_late_columns() if late_columns else []),
        *([_alert_kind_column()] if kind_column else []),
        *([_alert_vi_column()] if vi_column else []),
        sa.Index("ix_alerts_date", "business_date"),
    )


def _pending_gaps_table(md: sa.MetaData, venue_column: bool = True) -> sa.Table:
    """Trades still to back-fill, left by a stop mid back-fill (the next run fills them first);
    status "unrecoverable" keeps a record of those no API can fetch any more (a past day)."""
    return sa.Table(
        "pending_gaps", md,
        _id_column(),
        sa.Column("stock_code", sa.String(12), nullable=False),
        sa.Column("business_date", sa.Date, nullable=False),
        sa.Column("after_cum", sa.BigInteger),
        sa.Column("since_hhmmss", sa.String(6)),
        sa.Column("until_cum", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("recorded_at", TZDateTime, nullable=False),
        *([_pending_gap_venue_column()] if venue_column else []),
        sa.Index("ix_pending_gaps_status", "status"),
    )


def _pending_gap_venue_column() -> sa.Column:
    return sa.Column("venue", sa.String(8), nullable=False, server_default="krx")


ticks = layout.ticks_table(metadata)
bars_1m = layout.bars_table(metadata)
settings = _settings_table(metadata)
schema_version = _schema_version_table(metadata)
watchlists, watchlist_items = _watchlist_tables(metadata)
alerts = _alerts_table(metadata)
pending_gaps = _pending_gaps_table(metadata)

TICK_COLUMNS = layout.TICK_COLUMNS
#: Columns of the v1–v4 trade table (``legacy_rows`` encodes them).
TICK_COLUMNS_V1 = ("stock_code", "business_date", "timestamp", "price", "volume", "cum_volume",
                   "change", "change_rate", "strength", "received_at", "source")
ALERT_COLUMNS = ("alert_id", "business_date", "stock_code", "stock_name", "direction",
                 "change_pct", "base_price", "base_time", "trigger_price", "trigger_time",
                 "trigger_cum_volume", "detected_at", "window_seconds", "threshold_pct", "step",
                 "late", "delay_s", "source", "kind", "vi")

# -- migrations ----------------------------------------------------------------------------------


def _m1_initial(conn: Connection) -> None:
    """v1: trades, settings, watchlists (the first released schema)."""
    md = sa.MetaData()
    _schema_version_table(md)
    _ticks_table_v1(md)
    _settings_table(md)
    _watchlist_tables(md)
    md.create_all(conn)


def _m2_alerts(conn: Connection) -> None:
    """v2: persisted alerts with an acknowledged flag."""
    md = sa.MetaData()
    _alerts_table(md, late_columns=False, kind_column=False, vi_column=False)
    md.create_all(conn)


def _m3_alert_lateness(conn: Connection) -> None:
    """v3: alerts.late, alerts.delay_s, alerts.source (rows before it: live, 0 s, ws)."""
    table = sa.Table("alerts", sa.MetaData(), *_alert_late_columns())
    for column in table.columns:
        spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE alerts ADD COLUMN {spec}"))


def _m4_pending_gaps(conn: Connection) -> None:
    """v4: back-fill gaps a clean stop left (migration 3 belongs to the alerts' late columns)."""
    md = sa.MetaData()
    _pending_gaps_table(md, venue_column=False)
    md.create_all(conn)


def _sql(conn: Connection, statement: str) -> Any:
    """Run literal SQL (DDL, no parameters): psycopg reads ``%`` as a placeholder, SQLite does not."""
    if conn.dialect.name == "postgresql":
        statement = statement.replace("%", "%%")
    return conn.exec_driver_sql(statement)


def _m5_compact_ticks(conn: Connection) -> None:
    """v5: compact trades keyed by (stock_code, venue, business_date, cum_volume), bars_1m."""
    dialect = conn.dialect.name
    old = f"{TICKS}_v4"
    _sql(conn, f"ALTER TABLE {TICKS} RENAME TO {old}")
    for ddl in layout.create_ddl(dialect):
        _sql(conn, ddl)
    if dialect == "postgresql":
        days = set(_sql(conn, f"SELECT DISTINCT business_date FROM {old}").scalars())
        today = datetime.now(KST).date()
        days |= {today + timedelta(days=i) for i in range(-1, layout.PG_DAYS_AHEAD + 1)}
        for day in sorted(days):
            _sql(conn, layout.pg_create_partition(day))
    top = _sql(conn, f"SELECT max(id) FROM {old}").scalar() or 0
    copy = sa.text((layout._SQLITE_FROM_V1 if dialect == "sqlite" else layout._PG_FROM_V1).format(old=old))
    for lo in range(0, int(top), layout.COPY_CHUNK):
        conn.execute(copy, {"lo": lo, "hi": lo + layout.COPY_CHUNK})
    if dialect == "postgresql":
        _sql(conn, layout._PG_BARS_FROM_TICKS)      # SQLite: the trigger built them
    _sql(conn, f"DROP TABLE {old}")


def _m7_alert_kind(conn: Connection) -> None:
    """v7: alerts.kind (rows before it: "move"); 5 and 6 belong to other changes."""
    column = sa.Table("alerts", sa.MetaData(), _alert_kind_column()).c.kind
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE alerts ADD COLUMN {spec}"))


def _m8_alert_vi(conn: Connection) -> None:
    """v8: alerts.vi (rows before it: ""); 6 stays unused (reserved by another change)."""
    column = sa.Table("alerts", sa.MetaData(), _alert_vi_column()).c.vi
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE alerts ADD COLUMN {spec}"))


def _m9_pending_gap_venue(conn: Connection) -> None:
    """v9: pending_gaps.venue (rows before it: "krx", the only venue then)."""
    column = sa.Table("pending_gaps", sa.MetaData(), _pending_gap_venue_column()).c.venue
    spec = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE pending_gaps ADD COLUMN {spec}"))


Migration = tuple[int, str, Callable[[Connection], None]]
MIGRATIONS: list[Migration] = [
    (1, "initial: stock_prices_realtime, settings, watchlists", _m1_initial),
    (2, "alerts", _m2_alerts),
    (3, "alerts: late, delay_s, source", _m3_alert_lateness),
    (4, "pending_gaps", _m4_pending_gaps),
    (5, "compact trades with venue (integer times, identity as key), bars_1m", _m5_compact_ticks),
    (7, "alerts: kind", _m7_alert_kind),
    (8, "alerts: vi", _m8_alert_vi),
    (9, "pending_gaps: venue", _m9_pending_gap_venue),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    """0 for an empty database."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    v = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(v or 0)


def migrate(engine: Engine, target: int | None = None) -> tuple[int, int]:
    """Apply pending migrations up to ``target`` (default: latest). Returns (before, after).

    Runs in one transaction per migration; on PostgreSQL an advisory lock serialises two
    processes starting at once.
    """
    target = LATEST_VERSION if target is None else target
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7315004)"))
        before = current_version(conn)
        if before > LATEST_VERSION:
            raise RuntimeError(f"database schema v{before} is newer than this kis-desk (v{LATEST_VERSION})")
        version = before
        for number, description, step in MIGRATIONS:
            if version < number <= target:
                step(conn)
                conn.execute(sa.insert(schema_version).values(
                    version=number, applied_at=datetime.now(timezone.utc), description=description))
                version = number
    return before, version


# -- secrets guard ---------------------------------------------------------------------------------

_SECRET_KEY_RE = re.compile(r"(app_?key|appkey|secret|passw(or)?d|passwd|token|credential|api_?key|"
                            r"private_?key|approval)", re.IGNORECASE)


def looks_secret(key: str) -> bool:
    """Setting names that must never be stored in the database."""
    return bool(_SECRET_KEY_RE.search(key))


def kst_date(dt: datetime) -> date:
    return (dt if dt.utcoffset() == _KST_OFFSET else dt.astimezone(KST)).date()
