"""The start-up benchmark's data set: weeks of trades generated in bulk, straight into the v5 layout.

Not the live pipeline (60M trades through the writer would take hours): SQLite builds each
symbol's day in SQL (a recursive CTE: a price walk of ±1 tick, volumes 1–37 with rare blocks,
increasing cumulative volume, exchange times spread evenly over the 6.5-hour session, receipt
delays of 5–900 ms, no sub-second part — as KIS sends), one transaction per day, with
``journal_mode=OFF``/``synchronous=OFF`` during generation only; ``bars_1m`` is built per symbol
and day by one ``INSERT … SELECT … GROUP BY`` (the trigger is dropped meanwhile and restored:
per-row trigger work doubled the time; ``tests/test_startup_data.py`` checks the bulk bars equal
the trigger's). Symbols are the default watchlist (what the app opens), with 1/rank activity
(the busiest takes 22 % of a day's trades). Each day also gets 20 stored alerts.

PostgreSQL gets the same rows by binary ``COPY`` from the SQLite file, into each day's partition,
and its bars the same way (the same rows as SQLite's: the data is the same).

Both are cached, keyed by the parameters (SQLite: a file under ``benchmarks/results/``,
PostgreSQL: a schema), and reused while complete (a ``bench.generated`` settings row, written
last). :func:`clean_after_run` removes what an app run added (the simulator trades after the
session of the last day, its alerts), so the cache stays the generated data.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kis_desk.core.events import AlertEvent
from kis_desk.engine.storage import create_engine, layout, migrate, schema
from kis_desk.market.calendar import is_trading_day, previous_trading_day
from kis_desk.market.symbols import default_watchlist
from kis_desk.market.ticks import tick_size
from kis_desk.protocol.records import KST

GEN_VERSION = 1
#: The last generated trading day; the benchmark moves the app's clock there (15:31 KST on).
ANCHOR = date(2026, 11, 27)
SESSION_SECONDS = 23_400                 # 09:00–15:30
MARKER = "bench.generated"
ALERTS_PER_DAY = 20
_BASES = (61_000, 182_000, 395_000, 820_000, 210_000, 47_500, 9_870, 1_250, 126_000, 73_400)
T = layout.TICKS

# One symbol's day. h(k) = affine hashes of the trade number: deterministic, so the volume can
# be written both into the running cumulative volume and into the row.
_VOL = "(1 + ((k) * 2654435761 + :seed) % 4099 % 37 + (((k) * 97 + :seed) % 1499 = 0) * 4000)"
_STEP = "((((k) * 40503 + :seed * 7) % 8191 % 8 = 7) - (((k) * 40503 + :seed * 7) % 8191 % 8 = 0))"
_DAY_SQL = f"""
WITH RECURSIVE g(k, cum, price) AS (
  SELECT 1, {_VOL.replace('(k)', '(1)')}, :base
  UNION ALL
  SELECT k + 1, cum + {_VOL.replace('(k)', '(k + 1)')},
         max(:tick, price + :tick * {_STEP.replace('(k)', '(k + 1)')})
  FROM g WHERE k < :n)
INSERT INTO {T} ({', '.join(layout.TICK_COLUMNS)})
SELECT cum, :t0 + (k - 1) * {SESSION_SECONDS} / :n, 5000 + (k * 7919 + :seed) % 895001, price,
       {_VOL}, price - :base, (price - :base) * 10000 / :base, 6000 + (k * 104729 + :seed) % 10001,
       0, :day, 0, 0, :code FROM g"""
_DAY_BARS = f"""INSERT INTO {layout.BARS} ({', '.join(layout.BAR_COLUMNS)})
SELECT :code, 0, m,
  (SELECT price FROM {T} WHERE stock_code = :code AND venue = 0 AND business_date = :day AND cum_volume = fc),
  hi, lo,
  (SELECT price FROM {T} WHERE stock_code = :code AND venue = 0 AND business_date = :day AND cum_volume = lc),
  vol, n, fc, lc
FROM (SELECT ts - ts % 60 AS m, min(cum_volume) AS fc, max(cum_volume) AS lc, max(price) AS hi,
             min(price) AS lo, sum(volume) AS vol, count(*) AS n
      FROM {T} WHERE stock_code = :code AND venue = 0 AND business_date = :day GROUP BY ts - ts % 60)"""


def trading_days(n: int, last: date = ANCHOR) -> list[date]:
    days = [last if is_trading_day(last) else previous_trading_day(last)]
    while len(days) < n:
        days.append(previous_trading_day(days[-1]))
    return days[::-1]


def plan(days: int, per_day: int, symbols: int) -> dict[str, Any]:
    codes = default_watchlist()[:symbols]
    h = sum(1 / (i + 1) for i in range(len(codes)))
    counts = [max(1, round(per_day / h / (i + 1))) for i in range(len(codes))]
    return {"days": trading_days(days), "codes": codes, "counts": counts,
            "key": f"startup-{days}d-{per_day}-{symbols}s-v{GEN_VERSION}"}


def session_open(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST).timestamp())


def after_session(day: date) -> datetime:
    """Where the benchmark's clock starts on the last day: after every generated trade."""
    return datetime(day.year, day.month, day.day, 15, 31, tzinfo=KST)


def _alerts(day: date, codes: list[str], n: int) -> list[dict[str, Any]]:
    rows = []
    t0 = datetime(day.year, day.month, day.day, 9, 5, tzinfo=KST)
    for k in range(n):
        code = codes[k % len(codes)]
        at = t0 + timedelta(seconds=k * 1100)
        a = AlertEvent(f"bench-{code}:{day:%Y%m%d}:up:1:{k}", code, code, "up" if k % 2 else "down",
                       5.2, 10_000, at - timedelta(seconds=40), 10_520, at, 1000 + k,
                       at.astimezone(timezone.utc), 60.0, 5.0)
        values = {c: getattr(a, c) for c in schema.ALERT_COLUMNS if c != "business_date"}
        rows.append({**values, "business_date": day})
    return rows


def _complete(engine: sa.Engine) -> dict[str, Any] | None:
    try:
        with engine.connect() as conn:
            value = conn.execute(sa.select(schema.settings.c.value)
                                 .where(schema.settings.c.key == MARKER)).scalar()
    except sa.exc.DBAPIError:
        return None
    return json.loads(value) if value else None


def sqlite_data_set(directory: Path, days: int, per_day: int, symbols: int,
                    log=print) -> tuple[Path, dict[str, Any]]:
    """The cached SQLite file (generated first when missing); returns (path, its meta)."""
    p = plan(days, per_day, symbols)
    path = directory / f"{p['key']}.sqlite3"
    if path.exists():
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.NullPool)
        meta = _complete(engine)
        engine.dispose()
        if meta is not None:
            return path, {**meta, "cached": True}
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{tmp}")
    migrate(engine)
    engine.dispose()
    started = time.perf_counter()
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    trigger_name = f"{layout.BARS}_from_trades"
    trigger = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                           (trigger_name,)).fetchone()[0]
    conn.execute(f"DROP TRIGGER {trigger_name}")
    alerts = sa.create_engine(f"sqlite:///{tmp}", poolclass=sa.NullPool)
    for d, day in enumerate(p["days"]):
        conn.execute("BEGIN")
        for i, (code, n) in enumerate(zip(p["codes"], p["counts"])):
            base = _BASES[i % len(_BASES)] * (100 + (d * 7 + i * 13) % 11 - 5) // 100
            tick = tick_size(base)
            base -= base % tick
            args = {"seed": d * 131 + i, "base": base, "tick": tick, "n": n, "t0": session_open(day),
                    "day": layout.day_number(day), "code": code}
            conn.execute(_DAY_SQL, args)
            conn.execute(_DAY_BARS, {"code": code, "day": layout.day_number(day)})
        conn.execute("COMMIT")
        with alerts.begin() as c:
            c.execute(sa.insert(schema.alerts), _alerts(day, p["codes"], ALERTS_PER_DAY))
        if d % 10 == 9 or d == len(p["days"]) - 1:
            log(f"  generated {d + 1}/{len(p['days'])} days ({time.perf_counter() - started:.0f} s)")
    conn.execute(trigger)
    conn.execute("PRAGMA journal_mode=WAL")
    seconds = time.perf_counter() - started
    trades = conn.execute(f"SELECT sum(trades) FROM {layout.BARS}").fetchone()[0]
    meta = {"days": len(p["days"]), "first_day": p["days"][0].isoformat(),
            "last_day": p["days"][-1].isoformat(), "trades": int(trades), "symbols": len(p["codes"]),
            "per_day": per_day, "generation_s": round(seconds, 1)}
    conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (MARKER, json.dumps(meta)))
    conn.close()
    alerts.dispose()
    os.replace(tmp, path)
    return path, {**meta, "cached": False}


# -- PostgreSQL ------------------------------------------------------------------------------------

def pg_data_set(admin_url: str, schema_url, source: Path, days: int, per_day: int, symbols: int,
                log=print, name: str | None = None) -> tuple[str, dict[str, Any]]:
    """The cached PostgreSQL schema (``name``, default from the parameters) with the last
    ``days`` days of ``source`` (COPY); returns (its URL, meta). ``schema_url(name)``: the URL
    that puts ``name`` first on the search path."""
    import psycopg

    p = plan(days, per_day, symbols)
    name = name or p["key"].replace("-", "_")
    url = schema_url(name)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    meta = _complete(engine)
    if meta is not None:
        engine.dispose()
        return url, {**meta, "cached": True}
    admin = sa.create_engine(admin_url, poolclass=sa.NullPool)
    with admin.begin() as c:
        c.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        c.execute(sa.text(f"CREATE SCHEMA {name}"))
    admin.dispose()
    migrate(engine)
    started = time.perf_counter()
    lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    # binary COPY of the SQLite rows as they come (no per-row Python): every column but the
    # day, which the partition supplies as its default while loading
    cols = [c for c in layout.TICK_COLUMNS if c != "business_date"]
    types = [t for c, t in zip(layout.TICK_COLUMNS, layout.PG_COLUMN_TYPES) if c != "business_date"]
    select = f"SELECT {', '.join(cols)} FROM {T} WHERE stock_code = ? AND venue = 0 AND business_date = ?"
    with psycopg.connect(*args, **kwargs) as pg:
        for d, day in enumerate(p["days"]):
            part = layout.pg_partition_name(day)
            with pg.cursor() as cur:
                cur.execute(layout.pg_create_partition(day))
                cur.execute(f"ALTER TABLE {part} ALTER COLUMN business_date SET DEFAULT '{day.isoformat()}'")
                with cur.copy(f"COPY {part} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(types)
                    write_row = cp.write_row
                    for code in p["codes"]:
                        for row in lite.execute(select, (code, layout.day_number(day))):
                            write_row(row)
                cur.execute(f"ALTER TABLE {part} ALTER COLUMN business_date DROP DEFAULT")
                lo = session_open(day) - 9 * 3600          # the day's bars: the same rows as SQLite's
                with cur.copy(f"COPY {layout.BARS} ({', '.join(layout.BAR_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["text", "int2"] + ["int8"] * (len(layout.BAR_COLUMNS) - 2))
                    for code in p["codes"]:
                        for row in lite.execute(f"SELECT {', '.join(layout.BAR_COLUMNS)} FROM {layout.BARS} "
                                                "WHERE stock_code = ? AND venue = 0 AND minute >= ? AND minute < ?",
                                                (code, lo, lo + 86_400)):
                            cp.write_row(row)
            pg.commit()
            if d % 10 == 9 or d == len(p["days"]) - 1:
                log(f"  copied {d + 1}/{len(p['days'])} days to PostgreSQL ({time.perf_counter() - started:.0f} s)")
    with engine.begin() as c:
        for day in p["days"]:
            c.execute(sa.insert(schema.alerts), _alerts(day, p["codes"], ALERTS_PER_DAY))
    lite.close()
    vac = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    with vac.connect() as c:
        c.exec_driver_sql("VACUUM ANALYZE")
    vac.dispose()
    seconds = time.perf_counter() - started
    with engine.connect() as c:
        trades = int(c.exec_driver_sql(f"SELECT sum(trades) FROM {layout.BARS}").scalar())
    meta = {"days": len(p["days"]), "first_day": p["days"][0].isoformat(),
            "last_day": p["days"][-1].isoformat(), "trades": trades, "symbols": len(p["codes"]),
            "per_day": per_day, "generation_s": round(seconds, 1)}
    with engine.begin() as c:
        c.execute(sa.insert(schema.settings).values(key=MARKER, value=json.dumps(meta)))
    engine.dispose()
    return url, {**meta, "cached": False}


# -- after an app run ------------------------------------------------------------------------------

def clean_after_run(url: str, last_day: date, codes: list[str]) -> int:
    """Remove what an app run added to the cached data set: trades (any venue) from 15:30 of
    the last day on, their bars, alerts and pending gaps it recorded. Returns trades removed."""
    cut = int(datetime(last_day.year, last_day.month, last_day.day, 15, 30, tzinfo=KST).timestamp())
    t, b = schema.ticks.c, schema.bars_1m.c
    engine = create_engine(url, poolclass=sa.NullPool)
    removed = 0
    with engine.begin() as conn:
        for code in codes:
            for venue in (0, 1, 2):
                removed += conn.execute(sa.delete(schema.ticks).where(
                    t.stock_code == code, t.venue == venue, t.business_date == last_day, t.ts >= cut)).rowcount
                conn.execute(sa.delete(schema.bars_1m).where(b.stock_code == code, b.venue == venue,
                                                             b.minute >= cut))
        conn.execute(sa.delete(schema.alerts).where(schema.alerts.c.alert_id.not_like("bench-%")))
        conn.execute(sa.delete(schema.pending_gaps))
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return removed
