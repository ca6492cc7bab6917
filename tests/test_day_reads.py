"""The day's grid and chart state read from ``bars_1m`` plus the live edge (storage/day_reads.py)
against brute-force references over every stored trade, on SQLite and PostgreSQL.

Trades are written by the real TickWriter, so the bars are the ones the trigger (SQLite) or
the writer's statement (PostgreSQL) built.
"""

from __future__ import annotations

import random
from collections import deque
from datetime import date, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from kis_desk.core.events import PendingGap
from kis_desk.core.ticks import Tick
from kis_desk.engine.handle import TAIL_SECONDS, DaySeries, bucket_width, load_intraday
from kis_desk.engine.storage import Repository, TickWriter
from kis_desk.engine.storage.day_reads import day_series
from kis_desk.engine.storage.schema import ticks as ticks_table
from kis_desk.protocol.records import KST
from kis_desk.ui.candles import build_candles
from kis_desk.ui.chart import history_arrays, history_from_series
from kis_desk.ui.row_state import SPARK_POINTS, RowState, Sparkline, minute_add
from test_storage import db_url, pg_schema  # noqa: F401  (fixtures: sqlite + postgresql)

DAY = date(2026, 3, 5)
OPEN = datetime(2026, 3, 5, 9, 0, tzinfo=KST)


def session(code: str, n: int, seed: int, start: datetime = OPEN) -> list[Tick]:
    """``n`` trades of irregular spacing (several in a second, pauses of seconds to a minute),
    volumes 1–30, a price walk with jumps: about three hours."""
    rng = random.Random(seed)
    out, t, cum, price = [], start, 0, 50_000
    for _ in range(n):
        t += timedelta(microseconds=rng.choice([0, 0, 1, 250_000, 999_999, 3_000_000, 20_000_000, 61_000_000]))
        vol = rng.randint(1, 30)
        cum += vol
        price = max(100, price + rng.choice([-50, 0, 0, 50, 150, -150, 900]))
        out.append(Tick(code, t, price, vol, cum, price - 50_000, round((price - 50_000) / 500, 2), 100.0,
                        t.timestamp() + 0.02, "ws"))
    return out


async def store(url: str, tmp_path, ticks: list[Tick]) -> None:
    writer = TickWriter(url, journal_dir=tmp_path / "journal")
    await writer.start()
    for i in range(0, len(ticks), 500):            # network-read-sized batches
        writer.submit(ticks[i:i + 500])
    await writer.stop()
    assert writer.stats().stored == len(ticks)


def epoch(t: Tick) -> int:
    return int(t.timestamp.timestamp())


def reference_spark(ticks: list[Tick], width: int) -> list[float]:
    """The sparkline the spec gives (storage/day_reads._grid_points), from every trade: before
    the tail's first minute each ``width`` bucket ends on the close of its last minute (a minute
    stands at its last second); the day's first, highest and lowest trades; in the tail the last
    trade of every second."""
    tail_from = epoch(ticks[-1]) - TAIL_SECONDS
    edge = tail_from - tail_from % 60
    if width < 60:                                          # finer than the bars: the trades
        last = {epoch(t) // width: t for t in ticks}
        points = {t.cum_volume: (epoch(t), t.price) for t in last.values()}
    else:
        closes: dict[int, Tick] = {}
        for t in ticks:
            if epoch(t) < edge:
                closes[epoch(t) - epoch(t) % 60] = t        # trade order: the minute's last wins
        buckets: dict[int, Tick] = {}
        for m, t in sorted(closes.items()):
            buckets[(m + 59) // width] = t
        points = {t.cum_volume: (epoch(t) - epoch(t) % 60 + 59, t.price) for t in buckets.values()}
    high = min((t for t in ticks if t.price == max(x.price for x in ticks)), key=lambda t: t.cum_volume)
    low = min((t for t in ticks if t.price == min(x.price for x in ticks)), key=lambda t: t.cum_volume)
    for t in (ticks[0], high, low):
        at = epoch(t) if epoch(t) >= edge or width < 60 else epoch(t) - epoch(t) % 60 + 59
        points.setdefault(t.cum_volume, (at, t.price))
    seconds: dict[int, Tick] = {}
    for t in ticks:
        if epoch(t) >= tail_from:
            seconds[epoch(t)] = t
    points.update({t.cum_volume: (s, t.price) for s, t in seconds.items()})
    spark = Sparkline()
    spark.seed([p for _, p in sorted(points.items())], width)
    return spark.points


async def test_grid_rows_from_bars_match_the_trades(db_url, tmp_path):  # noqa: F811
    days = {"005930": session("005930", 3000, 1), "000660": session("000660", 40, 2),
            "035420": session("035420", 1, 3)}
    other_day = session("005930", 200, 4, start=OPEN + timedelta(days=1))
    await store(db_url, tmp_path, [t for ts in days.values() for t in ts] + other_day)
    repo = Repository(db_url)
    try:
        loaded = load_intraday(repo, [*days, "999999"], DAY, SPARK_POINTS)
    finally:
        repo.close()
    assert set(loaded) == set(days)
    for code, ticks in days.items():
        got = loaded[code]
        assert got.last == ticks[-1]
        assert got.width == bucket_width(epoch(ticks[0]), epoch(ticks[-1]), SPARK_POINTS)
        row = RowState(code, code)
        row.seed(got.last, got.history, got.width)
        prices = [t.price for t in ticks]
        # open, high and low are exact (the bars keep every minute's extremes)
        assert (row.open, row.high, row.low) == (prices[0], max(prices), min(prices)), code
        assert (row.price, row.cum_volume, row.change) == (ticks[-1].price, ticks[-1].cum_volume, ticks[-1].change)
        minute: deque = deque()
        for t in ticks:
            minute_add(minute, epoch(t), t.price)
        assert list(row.minute) == list(minute), code                      # the 1-minute change
        assert row.change_1m is not None
        assert row.spark.points == reference_spark(ticks, got.width), code
    assert loaded["005930"].width > 1 and len(loaded["005930"].history) < 1500   # buckets, not trades


async def test_chart_series_gives_the_candles_of_the_trades(db_url, tmp_path):  # noqa: F811
    ticks = session("005930", 3000, 5)
    await store(db_url, tmp_path, ticks + session("000660", 500, 6))
    repo = Repository(db_url)
    try:
        got = history_from_series(DaySeries(*day_series(repo, "005930", DAY)))
        empty = DaySeries(*day_series(repo, "005930", DAY - timedelta(days=1)))
        with repo.engine.begin() as conn:               # retention took the raw trades: bars stay
            conn.execute(sa.delete(ticks_table).where(ticks_table.c.stock_code == "005930"))
        bars_only = history_from_series(DaySeries(*day_series(repo, "005930", DAY)))
    finally:
        repo.close()
    every = history_arrays(ticks)
    a, _ = build_candles(bars_only.t, bars_only.p, bars_only.v, 60)
    b, _ = build_candles(every.t, every.p, every.v, 60)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and bars_only.prev_close is None
    for size in (60, 300):
        a, _ = build_candles(got.t, got.p, got.v, size)
        b, _ = build_candles(every.t, every.p, every.v, size)
        for x, y in zip(a, b):
            assert np.array_equal(x, y), size
    assert got.last_cum == ticks[-1].cum_volume and got.prev_close == ticks[-1].price - ticks[-1].change
    last_minute = epoch(ticks[-1]) - epoch(ticks[-1]) % 60
    raw = [t for t in ticks if epoch(t) >= last_minute]
    assert got.t[-len(raw):].tolist() == [t.timestamp.timestamp() for t in raw]   # the edge is raw
    assert len(got.t) < len(ticks)
    assert empty == DaySeries([], [], [], -1, None)


def first_break(stored: list[Tick], known: set[int]) -> int | None:
    """Brute force: the cum_volume before the first link that does not chain, known ones aside."""
    chain = sorted(stored, key=lambda t: t.cum_volume)
    for prev, cur in zip(chain, chain[1:]):
        if cur.cum_volume - cur.volume != prev.cum_volume and prev.cum_volume not in known:
            return prev.cum_volume
    return None


async def test_first_gap_from_bars_matches_the_chain(db_url, tmp_path):  # noqa: F811
    base = session("005930", 1500, 7)
    minute_starts = [i for i in range(1, len(base)) if epoch(base[i]) // 60 != epoch(base[i - 1]) // 60]
    cases = {                       # code: (indexes removed, holes on record as unrecoverable)
        "100000": ([], []),
        "100001": ([2, 3], []),                                    # in the first minute
        "100002": ([minute_starts[5]], []),                        # a minute's first trade
        "100003": ([minute_starts[9] - 1], []),                    # a minute's last trade
        "100004": (list(range(700, 720)), []),                     # mid-day
        "100005": ([300, 301, 900], [299]),                        # known, then unknown
        "100006": ([300, 301], [299]),                             # only a known hole
        "100007": ([100, 1200], []),                               # two: the first counts
        "100008": ([len(base) - 2], []),                           # just before the last trade
    }
    stored: dict[str, list[Tick]] = {}
    for code, (removed, _) in cases.items():
        gone = set(removed)
        stored[code] = [t._replace(stock_code=code) for i, t in enumerate(base) if i not in gone]
    await store(db_url, tmp_path, [t for ts in stored.values() for t in ts])
    repo = Repository(db_url)
    try:
        repo.add_pending_gaps([PendingGap(code, DAY, base[i].cum_volume) for code, (_, known) in cases.items()
                               for i in known], status="unrecoverable")
        statements: list[str] = []
        sa.event.listen(repo.engine, "before_cursor_execute",
                        lambda _c, _cur, statement, *_a: statements.append(statement))
        for code, (_, known) in cases.items():
            want = first_break(stored[code], {base[i].cum_volume for i in known})
            statements.clear()
            got = repo.last_before_first_gap(code, DAY)
            assert (got.cum_volume if got else None) == want, code
            if code in ("100000", "100006"):           # no hole to chase: the trades are not read
                assert not any("lag(stock_prices_realtime" in s for s in statements), code
        assert repo.last_before_first_gap("100001", DAY + timedelta(days=1)) is None
    finally:
        repo.close()
