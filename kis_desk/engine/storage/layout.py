"""The compact trade layout (schema v5): integer columns, the trade identity as the key.

Why: the v1 rows (two 32-character time strings, a rowid table plus a unique index plus a time
index) cost ~213 bytes per trade in SQLite; fifty large caps trade 1–3 million times a day. This
layout stores one trade in ~50 bytes (``benchmarks/bench_storage.py`` measures it).

``stock_prices_realtime`` columns
    ``stock_code``, ``venue`` (0 krx, 1 nxt, 2 total), ``business_date`` (KST date: days since
    1970-01-01 in SQLite, ``date`` in PostgreSQL), ``cum_volume`` — together the trade identity
    and the primary key (SQLite ``WITHOUT ROWID``: the table *is* that B-tree; no other index).
    The key starts with the code so every query of one symbol (all venues or one) is a key range.
    ``ts`` exchange time in epoch seconds and ``ts_us`` its sub-second part (0 for KIS, whose
    clock has 1-s resolution, which SQLite stores in no bytes at all); ``recv_delay_us`` =
    receipt time − exchange time in µs; ``change_rate_bp``/``strength_bp`` in hundredths of a
    percent (KIS sends both with two decimals); ``source`` 0 ws, 1 backfill, 2 poll.
    ``stock_prices_view`` shows the same rows with readable names and times.

``bars_1m``
    OHLCV per (stock_code, venue, minute), ``minute`` = epoch seconds of the minute's start; kept
    forever (retention never touches it). ``first_cum``/``last_cum`` make it order-independent:
    a back-filled trade can arrive after later ones and still sets open/close correctly. Built
    from the trades actually inserted, in the same transaction: by a trigger in SQLite (runs in
    C inside the insert, no GIL, no second pass) and by the writer's ``INSERT … RETURNING`` CTE
    in PostgreSQL (a row trigger there would cost more than the COPY it follows).

PostgreSQL partitions the trades by ``business_date``, one partition per day
(``stock_prices_realtime_pYYYYMMDD``), created ahead of time and on demand; retention drops
whole partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from ...core.ticks import SOURCE_BACKFILL, SOURCE_POLL, SOURCE_WS, VENUE_KRX, VENUE_NXT, VENUE_TOTAL, Tick

TICKS = "stock_prices_realtime"
BARS = "bars_1m"
VIEW = "stock_prices_view"

VENUE_CODES = {VENUE_KRX: 0, VENUE_NXT: 1, VENUE_TOTAL: 2}
VENUE_NAMES = {v: k for k, v in VENUE_CODES.items()}
SOURCE_CODES = {SOURCE_WS: 0, SOURCE_BACKFILL: 1, SOURCE_POLL: 2}
SOURCE_NAMES = {v: k for k, v in SOURCE_CODES.items()}

#: Column order of the table and of every row encoder: 8-byte, 4-byte, 2-byte values, then the
#: text, so a PostgreSQL row has no alignment padding (SQLite does not care).
TICK_COLUMNS = ("cum_volume", "ts", "recv_delay_us", "price", "volume", "change", "change_rate_bp",
                "strength_bp", "ts_us", "business_date", "venue", "source", "stock_code")
DAY_INDEX = TICK_COLUMNS.index("business_date")
#: PostgreSQL types of ``TICK_COLUMNS`` (binary COPY straight into the table must match them).
PG_COLUMN_TYPES = ["int8", "int8", "int8", "int8", "int4", "int4", "int4", "int4", "int4", "date", "int2",
                   "int2", "text"]
KEY = ("stock_code", "venue", "business_date", "cum_volume")
BAR_COLUMNS = ("stock_code", "venue", "minute", "open", "high", "low", "close", "volume", "trades",
               "first_cum", "last_cum")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DATE = date(1970, 1, 1)
KST_SECONDS = 9 * 3600


def day_number(d: date) -> int:
    return (d - _EPOCH_DATE).days


def day_from_number(n: int) -> date:
    return _EPOCH_DATE + timedelta(days=int(n))


def epoch_parts(ts: datetime) -> tuple[int, int]:
    """Aware datetime → exact (epoch seconds, microseconds)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp {ts}")
    d = ts - EPOCH
    return d.days * 86400 + d.seconds, d.microseconds


def venue_code(venue: str) -> int:
    try:
        return VENUE_CODES[venue]
    except KeyError:
        raise ValueError(f"unknown venue {venue!r} (krx, nxt or total)") from None


_MISS = object()


def trade_rows(ticks: Sequence[Tick], dates: bool = False) -> list[tuple]:
    """Ticks → rows in ``TICK_COLUMNS`` order (``business_date`` as a day number, or as a
    ``date`` when ``dates``). Hot path of both backends.

    Every conversion is cached per batch: a network read's ticks share one receipt time, KIS
    times have 1-s resolution, and rates repeat. Naive times, unknown venues or sources and
    non-finite rates raise ValueError (the writer then isolates the bad tick).
    """
    out: list[tuple] = []
    append = out.append
    ts_cache: dict[datetime, tuple] = {}
    recv_cache: dict[float, int] = {}
    bp_cache: dict[float | None, int | None] = {None: None}
    venues, sources = VENUE_CODES, SOURCE_CODES
    last_ts = hit = None
    for t in ticks:
        ts = t[1]
        if ts is not last_ts:
            hit = ts_cache.get(ts)
            if hit is None:
                sec, us = epoch_parts(ts)
                day = (sec + KST_SECONDS) // 86400
                hit = ts_cache[ts] = (sec, us, day_from_number(day) if dates else day,
                                      sec * 1_000_000 + us)
            last_ts = ts
        r = t[8]
        recv = recv_cache.get(r)
        if recv is None:
            recv = recv_cache[r] = round(r * 1_000_000)
        rate = bp_cache.get(t[6], _MISS)
        if rate is _MISS:
            rate = bp_cache[t[6]] = round(t[6] * 100)
        strength = bp_cache.get(t[7], _MISS)
        if strength is _MISS:
            strength = bp_cache[t[7]] = round(t[7] * 100)
        venue = venues.get(t[10])
        source = sources.get(t[9])
        if venue is None or source is None:
            raise ValueError(f"unknown venue {t[10]!r} or source {t[9]!r} in tick {t[0]}")
        append((t[4], hit[0], recv - hit[3], t[2], t[3], t[5], rate, strength, hit[1], hit[2],
                venue, source, t[0]))
    return out


class EpochDay(sa.types.TypeDecorator):
    """A KST calendar date: days since 1970-01-01 in SQLite (2 bytes), ``date`` in PostgreSQL."""

    impl = sa.Integer
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Integer())
        return dialect.type_descriptor(sa.Date())

    def process_bind_param(self, value, dialect):  # type: ignore[override]
        if value is None or dialect.name != "sqlite":
            return value
        return day_number(value)

    def process_result_value(self, value, dialect):  # type: ignore[override]
        if value is None or isinstance(value, date):
            return value
        return day_from_number(value)


def ticks_table(md: sa.MetaData) -> sa.Table:
    """The v5 trade table as SQLAlchemy sees it (for queries; DDL below is per dialect)."""
    return sa.Table(
        TICKS, md,
        sa.Column("cum_volume", sa.BigInteger, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("recv_delay_us", sa.BigInteger, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("volume", sa.Integer, nullable=False),
        sa.Column("change", sa.Integer),
        sa.Column("change_rate_bp", sa.Integer),
        sa.Column("strength_bp", sa.Integer),
        sa.Column("ts_us", sa.Integer, nullable=False),
        sa.Column("business_date", EpochDay, primary_key=True),
        sa.Column("venue", sa.SmallInteger, primary_key=True),
        sa.Column("source", sa.SmallInteger, nullable=False),
        sa.Column("stock_code", sa.String(12), primary_key=True),
    )


def bars_table(md: sa.MetaData) -> sa.Table:
    return sa.Table(
        BARS, md,
        sa.Column("stock_code", sa.String(12), primary_key=True),
        sa.Column("venue", sa.SmallInteger, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in BAR_COLUMNS[3:]),
    )


# -- DDL ------------------------------------------------------------------------------------------

_SQLITE_TICKS = f"""CREATE TABLE {TICKS} (
    cum_volume INTEGER NOT NULL, ts INTEGER NOT NULL, recv_delay_us INTEGER NOT NULL,
    price INTEGER NOT NULL, volume INTEGER NOT NULL, change INTEGER, change_rate_bp INTEGER,
    strength_bp INTEGER, ts_us INTEGER NOT NULL, business_date INTEGER NOT NULL,
    venue INTEGER NOT NULL, source INTEGER NOT NULL, stock_code TEXT NOT NULL,
    PRIMARY KEY (stock_code, venue, business_date, cum_volume)) WITHOUT ROWID"""
_SQLITE_BARS = f"""CREATE TABLE {BARS} (
    stock_code TEXT NOT NULL, venue INTEGER NOT NULL, minute INTEGER NOT NULL,
    open INTEGER NOT NULL, high INTEGER NOT NULL, low INTEGER NOT NULL, close INTEGER NOT NULL,
    volume INTEGER NOT NULL, trades INTEGER NOT NULL, first_cum INTEGER NOT NULL,
    last_cum INTEGER NOT NULL, PRIMARY KEY (stock_code, venue, minute)) WITHOUT ROWID"""
_BAR_MERGE = """
    open = CASE WHEN excluded.first_cum < {b}first_cum THEN excluded.open ELSE {b}open END,
    close = CASE WHEN excluded.last_cum > {b}last_cum THEN excluded.close ELSE {b}close END,
    high = {max}({b}high, excluded.high), low = {min}({b}low, excluded.low),
    volume = {b}volume + excluded.volume, trades = {b}trades + excluded.trades,
    first_cum = {min}({b}first_cum, excluded.first_cum), last_cum = {max}({b}last_cum, excluded.last_cum)"""
_SQLITE_TRIGGER = f"""CREATE TRIGGER {BARS}_from_trades AFTER INSERT ON {TICKS} BEGIN
    INSERT INTO {BARS} ({', '.join(BAR_COLUMNS)})
    VALUES (NEW.stock_code, NEW.venue, NEW.ts - NEW.ts % 60, NEW.price, NEW.price, NEW.price, NEW.price,
            NEW.volume, 1, NEW.cum_volume, NEW.cum_volume)
    ON CONFLICT (stock_code, venue, minute) DO UPDATE SET {_BAR_MERGE.format(b='', max='max', min='min')};
END"""
_SQLITE_VIEW = f"""CREATE VIEW {VIEW} AS SELECT stock_code,
    CASE venue WHEN 0 THEN 'krx' WHEN 1 THEN 'nxt' WHEN 2 THEN 'total' END AS venue,
    date(business_date * 86400, 'unixepoch') AS business_date, cum_volume,
    strftime('%Y-%m-%dT%H:%M:%S', ts + {KST_SECONDS}, 'unixepoch') || printf('.%06d+09:00', ts_us) AS "timestamp",
    price, volume, change, change_rate_bp / 100.0 AS change_rate, strength_bp / 100.0 AS strength,
    strftime('%Y-%m-%dT%H:%M:%f', (ts * 1000000 + ts_us + recv_delay_us) / 1000000.0 + {KST_SECONDS},
             'unixepoch') || '+09:00' AS received_at,
    recv_delay_us / 1000.0 AS receive_delay_ms,
    CASE source WHEN 0 THEN 'ws' WHEN 1 THEN 'backfill' WHEN 2 THEN 'poll' END AS source
    FROM {TICKS}"""

_PG_TICKS = f"""CREATE TABLE {TICKS} (
    cum_volume bigint NOT NULL, ts bigint NOT NULL, recv_delay_us bigint NOT NULL,
    price bigint NOT NULL, volume integer NOT NULL, change integer, change_rate_bp integer,
    strength_bp integer, ts_us integer NOT NULL, business_date date NOT NULL,
    venue smallint NOT NULL, source smallint NOT NULL, stock_code text NOT NULL,
    CONSTRAINT pk_trade PRIMARY KEY (stock_code, venue, business_date, cum_volume))
    PARTITION BY RANGE (business_date)"""
_PG_BARS = f"""CREATE TABLE {BARS} (
    stock_code text NOT NULL, venue smallint NOT NULL, minute bigint NOT NULL,
    open bigint NOT NULL, high bigint NOT NULL, low bigint NOT NULL, close bigint NOT NULL,
    volume bigint NOT NULL, trades bigint NOT NULL, first_cum bigint NOT NULL, last_cum bigint NOT NULL,
    CONSTRAINT pk_bar_1m PRIMARY KEY (stock_code, venue, minute))"""
_PG_VIEW = f"""CREATE VIEW {VIEW} AS SELECT stock_code,
    CASE venue WHEN 0 THEN 'krx' WHEN 1 THEN 'nxt' WHEN 2 THEN 'total' END AS venue,
    business_date, cum_volume, to_timestamp(ts + ts_us / 1000000.0) AS "timestamp",
    price, volume, change, change_rate_bp / 100.0 AS change_rate, strength_bp / 100.0 AS strength,
    to_timestamp((ts * 1000000 + ts_us + recv_delay_us) / 1000000.0) AS received_at,
    recv_delay_us / 1000.0 AS receive_delay_ms,
    CASE source WHEN 0 THEN 'ws' WHEN 1 THEN 'backfill' WHEN 2 THEN 'poll' END AS source
    FROM {TICKS}"""

#: PostgreSQL: the trades of a batch (staged by COPY) into the table, and the ones really
#: inserted into their 1-minute bars, in one statement; returns the number inserted.
#: ``conflict``: ``PG_SKIP_DUPLICATES``, or nothing (faster; fails on a duplicate).
PG_SKIP_DUPLICATES = "ON CONFLICT ON CONSTRAINT pk_trade DO NOTHING"
PG_MERGE_WITH_BARS = f"""WITH ins AS (
    INSERT INTO {TICKS} ({', '.join(TICK_COLUMNS)}) SELECT {', '.join(TICK_COLUMNS)} FROM {{stage}}
    {{conflict}} RETURNING stock_code, venue, ts, price, volume, cum_volume
), bars AS (
    INSERT INTO {BARS} AS b ({', '.join(BAR_COLUMNS)})
    SELECT stock_code, venue, ts - ts % 60, (array_agg(price ORDER BY cum_volume))[1], max(price),
           min(price), (array_agg(price ORDER BY cum_volume DESC))[1], sum(volume), count(*),
           min(cum_volume), max(cum_volume)
    FROM ins GROUP BY stock_code, venue, ts - ts % 60
    ON CONFLICT ON CONSTRAINT pk_bar_1m DO UPDATE SET {_BAR_MERGE.format(b='b.', max='greatest', min='least')}
    RETURNING 1
) SELECT count(*) FROM ins"""


def pg_partition_name(day: date) -> str:
    return f"{TICKS}_p{day:%Y%m%d}"


def pg_partition_day(name: str) -> date | None:
    prefix = f"{TICKS}_p"
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix):], "%Y%m%d").date()
    except ValueError:
        return None


def pg_create_partition(day: date) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {pg_partition_name(day)} PARTITION OF {TICKS} "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')")


PG_PARTITIONS = (f"SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                 f"WHERE i.inhparent = '{TICKS}'::regclass")
#: PostgreSQL: bytes on disk of this schema's tables (partitions, indexes and TOAST included).
PG_SIZE = ("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
           "JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')")
#: Serialises partition creation between writers (``IF NOT EXISTS`` alone races).
PG_PARTITION_LOCK = "SELECT pg_advisory_xact_lock(7315005)"
#: How many days ahead partitions exist before they are needed.
PG_DAYS_AHEAD = 7


def create_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [_SQLITE_TICKS, _SQLITE_BARS, _SQLITE_TRIGGER, _SQLITE_VIEW]
    return [_PG_TICKS, _PG_BARS, _PG_VIEW]


# -- v4 → v5 copy ---------------------------------------------------------------------------------

_V1_TARGET = ("stock_code, venue, business_date, cum_volume, ts, ts_us, price, volume, change, "
              "change_rate_bp, strength_bp, recv_delay_us, source")
_SQLITE_FROM_V1 = f"""INSERT INTO {TICKS} ({_V1_TARGET})
    SELECT stock_code, 0, CAST(julianday(business_date) - 2440587.5 AS INTEGER), cum_volume,
        CAST(strftime('%s', substr("timestamp", 1, 19)) AS INTEGER) - {KST_SECONDS},
        CAST(substr("timestamp", 21, 6) AS INTEGER), price, volume, change,
        CAST(round(change_rate * 100) AS INTEGER), CAST(round(strength * 100) AS INTEGER),
        (CAST(strftime('%s', substr(received_at, 1, 19)) AS INTEGER)
            - CAST(strftime('%s', substr("timestamp", 1, 19)) AS INTEGER)) * 1000000
            + CAST(substr(received_at, 21, 6) AS INTEGER) - CAST(substr("timestamp", 21, 6) AS INTEGER),
        CASE source WHEN 'backfill' THEN 1 WHEN 'poll' THEN 2 ELSE 0 END
    FROM {{old}} WHERE id > :lo AND id <= :hi ORDER BY id
    ON CONFLICT DO NOTHING"""
_PG_FROM_V1 = f"""INSERT INTO {TICKS} ({_V1_TARGET})
    SELECT stock_code, 0, business_date, cum_volume, floor(extract(epoch FROM "timestamp"))::bigint,
        (extract(microseconds FROM "timestamp"))::bigint % 1000000, price, volume, change,
        round(change_rate * 100)::integer, round(strength * 100)::integer,
        round(extract(epoch FROM (received_at - "timestamp")) * 1000000)::bigint,
        CASE source WHEN 'backfill' THEN 1 WHEN 'poll' THEN 2 ELSE 0 END
    FROM {{old}} WHERE id > :lo AND id <= :hi
    ON CONFLICT ON CONSTRAINT pk_trade DO NOTHING"""
_PG_BARS_FROM_TICKS = f"""INSERT INTO {BARS} ({', '.join(BAR_COLUMNS)})
    SELECT stock_code, venue, ts - ts % 60, (array_agg(price ORDER BY cum_volume))[1], max(price),
           min(price), (array_agg(price ORDER BY cum_volume DESC))[1], sum(volume), count(*),
           min(cum_volume), max(cum_volume)
    FROM {TICKS} GROUP BY stock_code, venue, ts - ts % 60"""

#: Rows copied per statement when converting a v4 table.
COPY_CHUNK = 200_000
