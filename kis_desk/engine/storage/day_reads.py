"""The day's state for the grid and the chart, at a cost that does not grow with the day.

Why: a busy symbol trades 10⁵+ times a day. Reading its day trade by trade at every start — the
sparkline and 1-minute change, the day chart, where the back-fill resumes — cost seconds once a
full day was stored (``benchmarks/bench_startup.py``: 50 symbols, 1M trades a day). Everything
older than the live edge now comes from ``bars_1m`` (one row per symbol and minute, written in
the same transaction as its trades, so it always matches them); raw trades are read only at the
edge, found by a key range: ``cum_volume >= first_cum`` of the edge's first bar (a venue's
cumulative volume grows with exchange time, so the bars give where a minute starts in the key).

Blocking (database): call from a worker thread (``EngineReads`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa

from ...core.ticks import VENUE_KRX, Tick
from ...protocol.records import KST
from . import layout
from .schema import bars_1m, pending_gaps, ticks

T = ticks.c
B = bars_1m.c
MINUTE = 60
#: Chart: each stored minute before the live edge becomes open, high, low, close at these
#: seconds of the minute (the candles of any size ≥ 1 minute come out exactly as from the trades).
_OHLC_OFFSETS = (0.0, 15.0, 30.0, 45.0)

#: (epoch second, price, cum_volume): the grid's history points (``Intraday.history``).
Point = tuple[int, int, int]


def _day_epochs(day: date) -> tuple[int, int]:
    start = datetime(day.year, day.month, day.day, tzinfo=KST)
    return layout.epoch_parts(start)[0], layout.epoch_parts(start + timedelta(days=1))[0]


def _p(name: str) -> sa.BindParameter:
    return sa.bindparam(name)


# Statements built once (bound parameters only): SQLAlchemy then skips building them and their
# cache keys on every call — with 50 symbols × several reads at each start, that was the cost.
_KEY = sa.and_(T.stock_code == _p("code"), T.venue == _p("venue"), T.business_date == _p("day"))
_BAR_RANGE = sa.and_(B.stock_code == _p("code"), B.venue == _p("venue"), B.minute >= _p("lo"),
                     B.minute < _p("hi"))
_BARS = (sa.select(B.minute, B.open, B.high, B.low, B.close, B.volume, B.first_cum, B.last_cum)
         .where(_BAR_RANGE).order_by(B.minute))
_FIRST = sa.select(T.ts, T.price, T.cum_volume, T.volume).where(_KEY).order_by(T.cum_volume).limit(1)
_AFTER = (sa.select(T.cum_volume, T.volume).where(_KEY, T.cum_volume > _p("cum"))
          .order_by(T.cum_volume).limit(1))
_EDGE_TRADES = (sa.select(T.ts, T.ts_us, T.price, T.volume, T.cum_volume, T.change)
                .where(_KEY, T.cum_volume >= _p("cum")).order_by(T.cum_volume))
_SECOND_LAST = (sa.select(sa.func.max(T.cum_volume))
                .where(_KEY, T.cum_volume >= _p("cum"), T.ts >= _p("ts")).group_by(T.ts))
_LAST_PER_SECOND = (sa.select(T.ts, T.price, T.cum_volume)
                    .where(_KEY, T.cum_volume.in_(_SECOND_LAST.scalar_subquery()))
                    .order_by(T.ts, T.cum_volume))


def _bars(conn: sa.Connection, code: str, venue: int, day: date) -> list[Any]:
    lo, hi = _day_epochs(day)
    return conn.execute(_BARS, {"code": code, "venue": venue, "lo": lo, "hi": hi}).all()


#: Per bucket of ``w`` seconds: its last trade (the day's trades: only for buckets under a
#: minute, i.e. the first two hours of a session, which the bars cannot resolve).
_BUCKET_LAST = (sa.select(T.ts, T.price, T.cum_volume)
                .where(_KEY, T.cum_volume.in_(sa.select(sa.func.max(T.cum_volume)).where(_KEY)
                                              .group_by(T.ts / _p("w")).scalar_subquery())))
#: The first trade at ``price`` within a minute's cumulative volumes (a short key range).
_AT_PRICE = (sa.select(T.ts, T.price, T.cum_volume)
             .where(_KEY, T.cum_volume >= _p("lo"), T.cum_volume <= _p("hi"), T.price == _p("price"))
             .order_by(T.cum_volume).limit(1))


class EdgeReads(Protocol):
    """The raw-trade reads of one symbol's day that the bars cannot answer (see
    :func:`grid_points`): per statement (:class:`_OneSymbol`) or prefetched for many symbols
    (:mod:`.grid_reads`)."""

    def buckets(self, width: int) -> list[Any]: ...          # (ts, price, cum) per bucket

    def at_price(self, lo: int, hi: int, price: int) -> Any: ...  # first trade at price, or None

    def tail(self, bound: int, since: int) -> list[Any]: ...  # (ts, price, cum) per second


class _OneSymbol:
    """:class:`EdgeReads` of one symbol, a statement each (SQLite: no round trip to pay)."""

    def __init__(self, conn: sa.Connection, key: dict[str, Any]) -> None:
        self.conn, self.key = conn, key

    def buckets(self, width: int) -> list[Any]:
        return self.conn.execute(_BUCKET_LAST, {**self.key, "w": width}).all()

    def at_price(self, lo: int, hi: int, price: int) -> Any:
        return self.conn.execute(_AT_PRICE, {**self.key, "lo": lo, "hi": hi, "price": price}).first()

    def tail(self, bound: int, since: int) -> list[Any]:
        return self.conn.execute(_LAST_PER_SECOND, {**self.key, "cum": bound, "ts": since}).all()


class EdgePlan(NamedTuple):
    """What :func:`grid_points` will ask its :class:`EdgeReads`, from the bars alone."""

    width: int                           # the sparkline's bucket width (s)
    edge: int                            # the tail's first minute
    since: int                           # the tail's first second
    coarse: bool                         # buckets of a minute or more: from the bars
    bound: int                           # the tail's first cum_volume (a key range)
    extremes: list[tuple[Any, int]]      # (bar, price) of the high, then the low
    lookups: list[tuple[int, int, int]]  # (lo, hi, price): the extremes read from the trades


def edge_plan(bars: list[Any], last_epoch: int, tail_seconds: int, width: int) -> EdgePlan:
    since = last_epoch - tail_seconds
    edge = since - since % MINUTE
    coarse = width >= MINUTE
    extremes, lookups = [], []
    for column, pick in ((2, max), (3, min)):           # the high, then the low
        if not bars:
            break
        bar = pick(bars, key=itemgetter(column))        # the earliest minute with it
        extremes.append((bar, bar[column]))
        if not (coarse and bar[0] < edge):
            lookups.append((bar[6], bar[7], bar[column]))
    bound = next((b[6] for b in bars if b[0] >= edge), 0)
    return EdgePlan(width, edge, since, coarse, bound, extremes, lookups)


def grid_points(bars: list[Any], first: Any, last_epoch: int, tail_seconds: int, width: int,
                reads: EdgeReads, plan: EdgePlan | None = None) -> list[Point]:
    """A symbol's day as grid points ``(epoch, price, cum_volume)`` in trade order, from its
    ``bars_1m`` rows (``_BARS``' columns) plus the trades of its last minutes (``reads``):

    * every ``width``-second bucket before the tail's first minute ends on the close of its
      last minute (a minute stands at its last second) — or, for buckets under a minute (a day
      of less than two hours), on its last trade;
    * the day's first trade, its high and its low (``RowState.seed`` gets open, high and low
      exact). Before the tail a high or low stands at its minute's last second, with a
      cumulative volume inside its minute (the close keeps the minute's last);
    * the last trade of every second of the last ``tail_seconds`` (raw trades, a key range from
      the cumulative volume the bars give) — the 1-minute change and the live end of the line.

    ``first``: the day's first trade (``ts``, ``price``, ``cum_volume``); ``plan``: this
    :func:`edge_plan`, when the caller has made it already.
    """
    plan = plan or edge_plan(bars, last_epoch, tail_seconds, width)
    edge, coarse = plan.edge, plan.coarse

    def at(ts: int) -> int:
        return ts if ts >= edge or not coarse else ts - ts % MINUTE + MINUTE - 1

    if coarse:
        closes = {}
        for minute, _o, _h, _lo, close, _v, _f, last in bars:
            if minute >= edge:
                break
            closes[(minute + MINUTE - 1) // width] = (last, minute + MINUTE - 1, close)
        points = {cum: (epoch, price) for cum, epoch, price in closes.values()}
    else:
        points = {cum: (ts, price) for ts, price, cum in reads.buckets(width)}
    points.setdefault(first.cum_volume, (at(first.ts), first.price))
    for bar, price in plan.extremes:
        minute, first_cum, last_cum = bar[0], bar[6], bar[7]
        if coarse and minute < edge:
            inside = (last_cum if price == bar[4] else first_cum if price == bar[1] else
                      next((c for c in range(first_cum + 1, last_cum) if c not in points), None))
            if inside is not None:
                points.setdefault(inside, (minute + MINUTE - 1, price))
            continue
        trade = reads.at_price(first_cum, last_cum, price)
        if trade is not None:
            points.setdefault(trade.cum_volume, (at(trade.ts), price))
    for ts, price, cum in reads.tail(plan.bound, plan.since):
        points[cum] = (ts, price)
    return [(int(epoch), int(price), int(cum)) for cum, (epoch, price) in sorted(points.items())]


def day_points(repo: Any, code: str, day: date, tail_seconds: int,
               width_of: Callable[[int, int], int]) -> tuple[Tick, list[Point], int] | None:
    """``(last trade, points, bucket width)`` of ``code``'s KRX day, or None without trades.

    ``width_of(first epoch, last epoch)``: the sparkline's bucket width. Points: see
    :func:`grid_points` — a day costs its buckets and its last minutes, not its trades.
    A few statements per symbol: for many symbols on PostgreSQL see :mod:`.grid_reads`.
    """
    last = repo.last_trade(code, day)
    if last is None:
        return None
    key = {"code": code, "venue": layout.venue_code(VENUE_KRX), "day": day}
    last_epoch = int(last.timestamp.timestamp())
    with repo.engine.connect() as conn:
        first = conn.execute(_FIRST, key).first()
        if first is None:                    # removed meanwhile (retention of an old day)
            return None
        width = width_of(int(first.ts), last_epoch)
        bars = _bars(conn, code, key["venue"], day)
        points = grid_points(bars, first, last_epoch, tail_seconds, width, _OneSymbol(conn, key))
    return last, points, width


def day_series(repo: Any, code: str, day: date,
               venue: str = VENUE_KRX) -> tuple[list[float], list[int], list[int], int, int | None]:
    """The day chart's trade series ``(times, prices, volumes, last cum_volume, previous close)``.

    Every stored minute but the last as four points (open, high, low, close at 0/15/30/45 s of
    the minute, the minute's volume on the close): 1- and 5-minute candles and the downsampled
    tick line come out as from the trades. The last stored minute as its raw trades, so live
    trades that follow join the series exactly where the stored ones end (``last cum_volume``
    is the newest stored trade's). A day whose raw trades retention removed: its bars only.
    Empty lists and -1 for a day without bars.
    """
    v = layout.venue_code(venue)
    with repo.engine.connect() as conn:
        bars = _bars(conn, code, v, day)
        if not bars:
            return [], [], [], -1, None
        edge = bars[-1]
        rows = conn.execute(_EDGE_TRADES, {"code": code, "venue": v, "day": day,
                                           "cum": int(edge.first_cum)}).all()
    t: list[float] = []
    p: list[int] = []
    vol: list[int] = []
    for minute, o, h, lo, c, volume, _first, _last in (bars[:-1] if rows else bars):
        t += [minute + dt for dt in _OHLC_OFFSETS]
        p += [o, h, lo, c]
        vol += [0, 0, 0, volume]
    for ts, ts_us, price, volume, _cum, _change in rows:
        t.append(ts + ts_us / 1_000_000)
        p.append(price)
        vol.append(volume)
    if not rows:                        # a day whose raw trades retention removed: bars only
        return t, p, vol, int(edge.last_cum), None
    newest = rows[-1]
    prev_close = None if newest.change is None else int(newest.price) - int(newest.change)
    return t, p, vol, int(newest.cum_volume), prev_close


# -- where a back-fill resumes after a crash (Repository.last_before_first_gap) -------------------

_PREV_CUM = sa.func.lag(T.cum_volume).over(order_by=T.cum_volume).label("prev_cum")
_CHAIN = sa.select(T.cum_volume, T.volume, _PREV_CUM).where(_KEY, T.cum_volume >= _p("cum")).subquery()
_KNOWN_BREAKS = (sa.select(pending_gaps.c.after_cum)
                 .where(pending_gaps.c.stock_code == _p("code"), pending_gaps.c.business_date == _p("gday"),
                        pending_gaps.c.venue == _p("gvenue"), pending_gaps.c.status == "unrecoverable",
                        pending_gaps.c.after_cum.is_not(None)))
#: The cumulative volume just before the first break in the chain at or after ``cum`` (a trade
#: whose ``cum_volume - volume`` is not the previous stored ``cum_volume``), skipping breaks on
#: record as unrecoverable. Reads the trades from ``cum`` on.
_FIRST_BREAK = (sa.select(_CHAIN.c.prev_cum)
                .where(_CHAIN.c.prev_cum.is_not(None),
                       _CHAIN.c.cum_volume - _CHAIN.c.volume != _CHAIN.c.prev_cum,
                       _CHAIN.c.prev_cum.not_in(_KNOWN_BREAKS))
                .order_by(_CHAIN.c.cum_volume).limit(1))


_RUNNING = (sa.select(B.minute, B.first_cum, B.last_cum,
                      sa.func.lag(B.last_cum).over(order_by=B.minute).label("prev_last"),
                      sa.func.sum(B.volume).over(order_by=B.minute, rows=(None, 0)).label("summed"))
            .where(_BAR_RANGE).subquery())
#: The first minute whose volumes do not add up to its last cumulative volume (minus ``base``,
#: the day's first ``cum_volume - volume``), or that overlaps the minute before it.
_FIRST_UNBALANCED = (sa.select(_RUNNING.c.first_cum, _RUNNING.c.prev_last)
                     .where(sa.or_(_RUNNING.c.summed != _RUNNING.c.last_cum - _p("base"),
                                   _RUNNING.c.first_cum <= _RUNNING.c.prev_last))
                     .order_by(_RUNNING.c.minute).limit(1))


def first_gap_start(repo: Any, code: str, day: date, venue: str = VENUE_KRX) -> int | None:
    """The ``cum_volume`` of the trade just before the day's first unexplained break, or None.

    Minute by minute from ``bars_1m``: with no break, the volumes summed up to a minute equal
    its last cumulative volume minus the day's first ``cum_volume - volume`` (unrecoverable
    breaks on record add their known size). The trades are read only from the first minute
    where that fails — none at all on a day without a hole. Bars out of cumulative-volume
    order (not seen from KIS) fall back to reading the whole day. Relies on the day's bars
    holding exactly its stored trades, which the writer guarantees (bars are built from the
    trades it inserts, in the same transaction; retention removes only older days): a hole a
    crash left has no bars either. Trades deleted by hand keep their bars, so such a hole is
    not seen here.
    """
    v = layout.venue_code(venue)
    # gday, gvenue: pending_gaps' date type and venue name (trades store the venue's number)
    key = {"code": code, "venue": v, "day": day, "gday": day, "gvenue": venue}
    with repo.engine.connect() as conn:
        head = conn.execute(_FIRST, key).first()
        if head is None:
            return None

        def first_break(from_cum: int) -> int | None:
            return conn.execute(_FIRST_BREAK, {**key, "cum": from_cum}).scalar()

        base = int(head.cum_volume) - int(head.volume)
        known_after = list(dict.fromkeys(conn.execute(_KNOWN_BREAKS, key).scalars()))
        if not known_after:                 # the usual day: one statement over its bars, in SQL
            lo, hi = _day_epochs(day)
            odd = conn.execute(_FIRST_UNBALANCED, {"code": code, "venue": v, "lo": lo, "hi": hi,
                                                   "base": base}).first()
            if odd is None:
                return None
            if odd.prev_last is not None and odd.first_cum <= odd.prev_last:
                return first_break(0)
            return first_break(int(head.cum_volume) if odd.prev_last is None else int(odd.prev_last))
        known = []
        for after in known_after:
            nxt = conn.execute(_AFTER, {**key, "cum": after}).first()
            if nxt is not None:
                known.append((int(after), int(nxt.cum_volume) - int(nxt.volume) - int(after)))
        bars = _bars(conn, code, v, day)
        summed, prev_last = 0, None
        for _minute, _o, _h, _lo, _c, volume, first, last in bars:
            if prev_last is not None and first <= prev_last:
                return first_break(0)
            summed += volume
            explained = sum(size for after, size in known if after < last)
            if summed + explained != last - base:
                return first_break(int(head.cum_volume) if prev_last is None else prev_last)
            prev_last = last
    return None
