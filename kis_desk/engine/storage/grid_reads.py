"""The grid rows' day state of many symbols at once, in a constant number of statements.

Why: :func:`.day_reads.day_points` asks ~5 statements per symbol (last trade, first trade,
bars, the tail's last trade per second, sometimes the high/low's trade). On PostgreSQL each is
a round trip to a server process that competes for the same cores while the app starts: the 50
rows took 1.64 s in the app (0.57 s alone; ``benchmarks/bench_startup.py``). Here the same
reads are made for all the symbols together — PostgreSQL: the arrays of codes (and of their key
ranges) ``unnest``-ed and ``LATERAL``-joined to the trades, so each symbol is still a key seek
or a short key range, and the bars of all symbols in one ``= ANY`` range: 3 statements (up to
5 when a high or low is in the tail or a day is under two hours). The points are assembled
by the same code (:func:`.day_reads.grid_points`), so they are the per-symbol ones exactly.

SQLite pays no round trip: there the per-symbol statements stay (on one connection).

Blocking (database): call from a worker thread (``EngineReads`` does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, NamedTuple

import sqlalchemy as sa

from ...core.ticks import VENUE_KRX, Tick
from . import day_reads, layout
from .day_reads import Point
from .trade_reads import tick_from_row

_T, _B = layout.TICKS, layout.BARS
_KEY = "t.stock_code = k.code AND t.venue = %(venue)s AND t.business_date = %(day)s"

#: The day's last trade (every column: a Tick) and its first, per code with trades.
_HEADS = f"""
SELECT l.*, f.ts AS first_ts, f.price AS first_price, f.cum_volume AS first_cum
FROM unnest(CAST(%(codes)s AS text[])) AS k(code)
CROSS JOIN LATERAL (SELECT * FROM {_T} t WHERE {_KEY} ORDER BY t.cum_volume DESC LIMIT 1) AS l
CROSS JOIN LATERAL (SELECT t.ts, t.price, t.cum_volume FROM {_T} t WHERE {_KEY}
                    ORDER BY t.cum_volume LIMIT 1) AS f"""
#: Every symbol's bars of the day (``day_reads._BARS``' columns after the code), one key range
#: per code (a bitmap scan of the primary key). Not sorted here: a sort of 20k rows by a text
#: key took longer than the scan; the caller puts each code's bars in minute order.
_BARS = f"""
SELECT stock_code, minute, open, high, low, close, volume, first_cum, last_cum FROM {_B}
WHERE stock_code = ANY(CAST(%(codes)s AS text[])) AND venue = %(venue)s
  AND minute >= %(lo)s AND minute < %(hi)s"""
#: The last trade of every second from ``since`` on, within the key range ``cum..top`` (``top``:
#: the day's last trade as the heads read it; a closed range also keeps the planner's estimate
#: of the rows small).
_TAILS = f"""
SELECT k.code, s.ts, s.price, s.cum_volume
FROM unnest(CAST(%(codes)s AS text[]), CAST(%(cums)s AS bigint[]), CAST(%(tops)s AS bigint[]),
            CAST(%(sinces)s AS bigint[])) AS k(code, cum, top, since)
CROSS JOIN LATERAL (SELECT DISTINCT ON (t.ts) t.ts, t.price, t.cum_volume FROM {_T} t
                    WHERE {_KEY} AND t.cum_volume BETWEEN k.cum AND k.top AND t.ts >= k.since
                    ORDER BY t.ts, t.cum_volume DESC) AS s"""
#: The first trade at ``price`` within ``lo..hi`` (a minute's cumulative volumes).
_AT_PRICE = f"""
SELECT k.code, k.lo, k.hi, k.price, s.ts, s.cum_volume
FROM unnest(CAST(%(codes)s AS text[]), CAST(%(los)s AS bigint[]), CAST(%(his)s AS bigint[]),
            CAST(%(prices)s AS bigint[])) AS k(code, lo, hi, price)
CROSS JOIN LATERAL (SELECT t.ts, t.cum_volume FROM {_T} t
                    WHERE {_KEY} AND t.cum_volume >= k.lo AND t.cum_volume <= k.hi AND t.price = k.price
                    ORDER BY t.cum_volume LIMIT 1) AS s"""
#: A day under two hours (buckets under a minute): the last trade of each second of the day
#: up to the heads' last trade, as ``day_reads._BUCKET_LAST`` gives (its ``ts / w`` is a true
#: division in SQLAlchemy 2: one group a second, not one a bucket).
_SECONDS = f"""
SELECT k.code, s.ts, s.price, s.cum_volume
FROM unnest(CAST(%(codes)s AS text[]), CAST(%(firsts)s AS bigint[]),
            CAST(%(tops)s AS bigint[])) AS k(code, first, top)
CROSS JOIN LATERAL (SELECT DISTINCT ON (t.ts) t.ts, t.price, t.cum_volume FROM {_T} t
                    WHERE {_KEY} AND t.cum_volume BETWEEN k.first AND k.top
                    ORDER BY t.ts, t.cum_volume DESC) AS s"""


class _First(NamedTuple):
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


def _pg_points(conn: sa.Connection, codes: list[str], day: date, tail_seconds: int,
               width_of: Callable[[int, int], int]) -> dict[str, tuple[Tick, list[Point], int]]:
    from psycopg.rows import namedtuple_row

    # On the driver's cursor, each result fetched whole as plain tuples: SQLAlchemy's rows,
    # fetched one at a time, cost more than the statements (35k rows for 50 symbols).
    driver = conn.connection.driver_connection
    cur = driver.cursor()

    def rows(sql: str, **params: Any) -> list[tuple]:
        cur.execute(sql, {"venue": layout.venue_code(VENUE_KRX), "day": day, **params})
        return cur.fetchall()

    with driver.cursor(row_factory=namedtuple_row) as named:
        named.execute(_HEADS, {"venue": layout.venue_code(VENUE_KRX), "day": day, "codes": codes})
        heads = {r.stock_code: r for r in named.fetchall()}
    if not heads:
        return {}
    lo, hi = day_reads._day_epochs(day)
    bars = _grouped(rows(_BARS, codes=list(heads), lo=lo, hi=hi))
    for day_bars in bars.values():
        day_bars.sort()                      # by minute (the key's order: nearly free)
    plans = {}
    for code, head in heads.items():
        plans[code] = day_reads.edge_plan(bars[code], head.ts, tail_seconds, width_of(head.first_ts, head.ts))
    tails = _grouped(rows(_TAILS, codes=list(plans), cums=[p.bound for p in plans.values()],
                          tops=[heads[c].cum_volume for c in plans],
                          sinces=[p.since for p in plans.values()]))
    wanted = [(code, *look) for code, p in plans.items() for look in p.lookups]
    found: defaultdict[str, dict[tuple[int, int, int], Any]] = defaultdict(dict)
    if wanted:
        c, lows, highs, prices = (list(column) for column in zip(*wanted))
        for code, low, high, price, ts, cum in rows(_AT_PRICE, codes=c, los=lows, his=highs, prices=prices):
            found[code][(low, high, price)] = _First(ts, price, cum)
    fine = [code for code, p in plans.items() if not p.coarse]
    seconds: defaultdict[str, list[tuple]] = defaultdict(list)
    if fine:
        seconds = _grouped(rows(_SECONDS, codes=fine, firsts=[heads[c].first_cum for c in fine],
                                tops=[heads[c].cum_volume for c in fine]))
    out = {}
    for code in codes:
        if (head := heads.get(code)) is None:
            continue
        plan = plans[code]
        first = _First(head.first_ts, head.first_price, head.first_cum)
        reads = _Prefetched(seconds[code], found[code], tails[code])
        points = day_reads.grid_points(bars[code], first, head.ts, tail_seconds, plan.width, reads, plan)
        out[code] = (tick_from_row(head), points, plan.width)
    return out


def many_day_points(repo: Any, codes: Sequence[str], day: date, tail_seconds: int,
                    width_of: Callable[[int, int], int]) -> dict[str, tuple[Tick, list[Point], int]]:
    """Per code with KRX trades on ``day``: ``(last trade, points, bucket width)``, exactly as
    :func:`.day_reads.day_points` gives them one code at a time."""
    if not codes:
        return {}
    if repo.engine.dialect.name != "postgresql":
        out = {}
        for code in codes:
            read = day_reads.day_points(repo, code, day, tail_seconds, width_of)
            if read is not None:
                out[code] = read
        return out
    with repo.engine.connect() as conn:
        return _pg_points(conn, list(dict.fromkeys(codes)), day, tail_seconds, width_of)


__all__ = ["many_day_points"]
