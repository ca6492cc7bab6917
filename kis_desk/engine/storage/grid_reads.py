"""The grid rows' day state of many symbols at once, in a constant number of statements.

Why: :func:`.day_reads.day_points` asks ~4 statements per symbol (last trade, first trade,
bars, the tail's last trade per second, sometimes the high/low's trade). On PostgreSQL each is
a round trip to a server process that competes for the same cores while the app starts: the 50
rows took 1.64 s in the app (0.57 s alone; ``benchmarks/bench_startup.py``). Here each of those
reads is one statement for all the symbols together, over a key table ``k`` (the codes, or the
codes with their key ranges): PostgreSQL ``unnest``-s arrays and ``LATERAL``-joins the trades,
SQLite reads a JSON array with ``json_each`` and joins by the key (a ``max()``/``min()`` with
bare columns picks a group's last/first trade). Each symbol is still a key seek or a short key
range. 3 statements (up to 5 when a high or low is in the tail or a day is under two hours);
the points are assembled by the same code (:func:`.day_reads.grid_points`), so they are the
per-symbol ones exactly. SQLite pays no round trip, but the batch still takes a third less CPU
(fewer statements through SQLAlchemy, rows fetched whole on the driver's cursor).

The tails end at the last trade the heads read (a trade stored meanwhile is in the row's live
buffer, ``WatchlistModel.seed``); on a table nobody writes to, the points equal the per-symbol
ones. Other drivers than psycopg 3 and the standard sqlite3 (with SQLite ≥ 3.38: ``->>``) keep
the per-symbol reads.

Blocking (database): call from a worker thread (``EngineReads`` does).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict, namedtuple
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import date
from typing import Any, NamedTuple

from ...core.ticks import VENUE_KRX, Tick
from . import day_reads, layout
from .day_reads import Point
from .trade_reads import tick_from_row

_T, _B = layout.TICKS, layout.BARS
Rows = list[list[Any]]          # the key table's rows


class _Dialect(NamedTuple):
    """One backend's statements (named parameters ``venue``, ``day``, ``lo``, ``hi`` and the key
    table's) and how its key table and day are passed."""

    heads: str
    bars: str
    tails: str
    at_price: str
    seconds: str
    keys: Callable[[Rows], dict[str, Any]]
    day: Callable[[date], Any]


# -- PostgreSQL: arrays (k0, k1, …: the key table's columns) unnest-ed, LATERAL key seeks --------

def _pg_keys(rows: Rows) -> dict[str, Any]:
    return {f"k{i}": list(column) for i, column in enumerate(zip(*rows))}


def _pg_table(*columns: str) -> str:
    types = ["text"] + ["bigint"] * (len(columns) - 1)
    arrays = ", ".join(f"CAST(%(k{i})s AS {t}[])" for i, t in enumerate(types))
    return f"unnest({arrays}) AS k({', '.join(columns)})"


_PG_KEY = "t.stock_code = k.code AND t.venue = %(venue)s AND t.business_date = %(day)s"
_PG = _Dialect(
    # the day's last trade (every column: a Tick) and its first, per code with trades
    heads=f"""SELECT l.*, f.ts AS first_ts, f.price AS first_price, f.cum_volume AS first_cum
FROM {_pg_table('code')}
CROSS JOIN LATERAL (SELECT * FROM {_T} t WHERE {_PG_KEY} ORDER BY t.cum_volume DESC LIMIT 1) AS l
CROSS JOIN LATERAL (SELECT t.ts, t.price, t.cum_volume FROM {_T} t WHERE {_PG_KEY}
                    ORDER BY t.cum_volume LIMIT 1) AS f""",
    # every code's bars of the day (``day_reads._BARS``' columns after the code): a bitmap scan
    # of the key. Not sorted here (a sort of 20k rows by a text key took longer than the scan).
    bars=f"""SELECT stock_code, minute, open, high, low, close, volume, first_cum, last_cum FROM {_B}
WHERE stock_code = ANY(CAST(%(k0)s AS text[])) AND venue = %(venue)s
  AND minute >= %(lo)s AND minute < %(hi)s""",
    # the last trade of every second from ``since`` on, in the key range ``cum..top`` (a closed
    # range also keeps the planner's row estimate small: no JIT compilation for 50 symbols)
    tails=f"""SELECT k.code, s.ts, s.price, s.cum_volume FROM {_pg_table('code', 'cum', 'top', 'since')}
CROSS JOIN LATERAL (SELECT DISTINCT ON (t.ts) t.ts, t.price, t.cum_volume FROM {_T} t
                    WHERE {_PG_KEY} AND t.cum_volume BETWEEN k.cum AND k.top AND t.ts >= k.since
                    ORDER BY t.ts, t.cum_volume DESC) AS s""",
    # the first trade at ``price`` within ``lo..hi`` (a minute's cumulative volumes)
    at_price=f"""SELECT k.code, k.lo, k.hi, k.price, s.ts, s.cum_volume
FROM {_pg_table('code', 'lo', 'hi', 'price')}
CROSS JOIN LATERAL (SELECT t.ts, t.cum_volume FROM {_T} t
                    WHERE {_PG_KEY} AND t.cum_volume BETWEEN k.lo AND k.hi AND t.price = k.price
                    ORDER BY t.cum_volume LIMIT 1) AS s""",
    # a day under two hours: the last trade of each second of the day, as
    # ``day_reads._BUCKET_LAST`` gives (its ``ts / w`` is a true division in SQLAlchemy 2: one
    # group a second, not one a bucket)
    seconds=f"""SELECT k.code, s.ts, s.price, s.cum_volume FROM {_pg_table('code', 'first', 'top')}
CROSS JOIN LATERAL (SELECT DISTINCT ON (t.ts) t.ts, t.price, t.cum_volume FROM {_T} t
                    WHERE {_PG_KEY} AND t.cum_volume BETWEEN k.first AND k.top
                    ORDER BY t.ts, t.cum_volume DESC) AS s""",
    keys=_pg_keys,
    day=lambda d: d,
)


# -- SQLite: the key table as a JSON array (json_each), joins by the key --------------------------

def _sqlite_table(*columns: str) -> str:
    picked = ", ".join(f"value ->> {i} AS {c}" for i, c in enumerate(columns))
    return f"(SELECT {picked} FROM json_each(:keys)) AS k"


_SQ_KEY = "t.stock_code = k.code AND t.venue = :venue AND t.business_date = :day"


def _sq_end(agg: str) -> str:
    return (f"(SELECT {agg}(cum_volume) FROM {_T} WHERE stock_code = k.code AND venue = :venue"
            " AND business_date = :day)")


_SQLITE = _Dialect(
    heads=f"""SELECT t.*, f.ts AS first_ts, f.price AS first_price, f.cum_volume AS first_cum
FROM {_sqlite_table('code')}
JOIN {_T} t ON {_SQ_KEY} AND t.cum_volume = {_sq_end('max')}
JOIN {_T} f ON f.stock_code = k.code AND f.venue = :venue AND f.business_date = :day
           AND f.cum_volume = {_sq_end('min')}""",
    bars=f"""SELECT stock_code, minute, open, high, low, close, volume, first_cum, last_cum FROM {_B}
WHERE stock_code IN (SELECT code FROM {_sqlite_table('code')}) AND venue = :venue
  AND minute >= :lo AND minute < :hi""",
    # max()/min() with bare columns: the other columns come from the row with that value
    tails=f"""SELECT k.code, t.ts, t.price, max(t.cum_volume)
FROM {_sqlite_table('code', 'cum', 'top', 'since')}
JOIN {_T} t ON {_SQ_KEY} AND t.cum_volume BETWEEN k.cum AND k.top AND t.ts >= k.since
GROUP BY k.code, t.ts""",
    at_price=f"""SELECT k.code, k.lo, k.hi, k.price, t.ts, min(t.cum_volume)
FROM {_sqlite_table('code', 'lo', 'hi', 'price')}
JOIN {_T} t ON {_SQ_KEY} AND t.cum_volume BETWEEN k.lo AND k.hi AND t.price = k.price
GROUP BY k.code, k.lo, k.hi, k.price""",
    seconds=f"""SELECT k.code, t.ts, t.price, max(t.cum_volume) FROM {_sqlite_table('code', 'first', 'top')}
JOIN {_T} t ON {_SQ_KEY} AND t.cum_volume BETWEEN k.first AND k.top
GROUP BY k.code, t.ts""",
    keys=lambda rows: {"keys": json.dumps(rows)},
    day=layout.day_number,
)

_DIALECTS = {("postgresql", "psycopg"): _PG}
if sqlite3.sqlite_version_info >= (3, 38):     # JSON built in, and its ->> operator
    _DIALECTS[("sqlite", "pysqlite")] = _SQLITE


class _Trade(NamedTuple):
    """A trade as :func:`.day_reads.grid_points` reads it (the day's first, a high or low's)."""

    ts: int
    price: int
    cum_volume: int


class _Prefetched:
    """:class:`.day_reads.EdgeReads` of one symbol from the batch's results."""

    def __init__(self, seconds: list[Any], found: dict[tuple[int, int, int], Any], tail: list[Any]) -> None:
        self.seconds, self.found, self.tail_rows = seconds, found, tail

    def buckets(self, width: int) -> list[Any]:
        return self.seconds

    def at_price(self, lo: int, hi: int, price: int) -> Any:
        return self.found.get((lo, hi, price))

    def tail(self, bound: int, since: int) -> list[Any]:
        return self.tail_rows


def _grouped(rows: list[tuple]) -> defaultdict[str, list[tuple]]:
    """Rows whose first column is the code → per code, the rest of each row, in order."""
    out: defaultdict[str, list[tuple]] = defaultdict(list)
    for r in rows:
        out[r[0]].append(r[1:])
    return out


def _points(cur: Any, sql: _Dialect, codes: list[str], day: date, tail_seconds: int,
            width_of: Callable[[int, int], int]) -> dict[str, tuple[Tick, list[Point], int]]:
    # On the driver's cursor, every result fetched whole as plain tuples: SQLAlchemy's rows,
    # fetched one at a time, cost more than the statements (35k rows for 50 symbols).
    base = {"venue": layout.venue_code(VENUE_KRX), "day": sql.day(day)}

    def rows(statement: str, keys: Rows, **params: Any) -> list[tuple]:
        cur.execute(statement, {**base, **sql.keys(keys), **params})
        return cur.fetchall()

    found_heads = rows(sql.heads, [[c] for c in codes])
    if not found_heads:
        return {}
    head_row = namedtuple("head_row", [d[0] for d in cur.description])   # type: ignore[misc]
    heads = {h.stock_code: h for h in map(head_row._make, found_heads)}
    lo, hi = day_reads._day_epochs(day)
    bars = _grouped(rows(sql.bars, [[c] for c in heads], lo=lo, hi=hi))
    for day_bars in bars.values():
        day_bars.sort()                      # by minute (the key's order: nearly free)
    plans = {code: day_reads.edge_plan(bars[code], h.ts, tail_seconds, width_of(h.first_ts, h.ts))
             for code, h in heads.items()}
    tails = _grouped(rows(sql.tails, [[c, p.bound, heads[c].cum_volume, p.since] for c, p in plans.items()]))
    found: defaultdict[str, dict[tuple[int, int, int], Any]] = defaultdict(dict)
    wanted = [[code, *look] for code, p in plans.items() for look in p.lookups]
    if wanted:
        for code, low, high, price, ts, cum in rows(sql.at_price, wanted):
            found[code][(low, high, price)] = _Trade(ts, price, cum)
    fine = [[c, heads[c].first_cum, heads[c].cum_volume] for c, p in plans.items() if not p.coarse]
    seconds = _grouped(rows(sql.seconds, fine)) if fine else defaultdict(list)
    out = {}
    for code in codes:
        if (head := heads.get(code)) is None:
            continue
        plan = plans[code]
        first = _Trade(head.first_ts, head.first_price, head.first_cum)
        reads = _Prefetched(seconds[code], found[code], tails[code])
        points = day_reads.grid_points(bars[code], first, head.ts, tail_seconds, plan.width, reads, plan)
        out[code] = (tick_from_row(head), points, plan.width)
    return out


def many_day_points(repo: Any, codes: Sequence[str], day: date, tail_seconds: int,
                    width_of: Callable[[int, int], int]) -> dict[str, tuple[Tick, list[Point], int]]:
    """Per code with KRX trades on ``day``: ``(last trade, points, bucket width)``, exactly as
    :func:`.day_reads.day_points` gives them one code at a time, in ``codes``' order."""
    codes = list(dict.fromkeys(codes))
    if not codes:
        return {}
    dialect = repo.engine.dialect
    sql = _DIALECTS.get((dialect.name, dialect.driver))
    if sql is None:
        out = {}
        for code in codes:
            read = day_reads.day_points(repo, code, day, tail_seconds, width_of)
            if read is not None:
                out[code] = read
        return out
    with repo.engine.connect() as conn, closing(conn.connection.driver_connection.cursor()) as cur:
        return _points(cur, sql, codes, day, tail_seconds, width_of)


__all__ = ["many_day_points"]
