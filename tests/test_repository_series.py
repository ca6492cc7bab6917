"""Repository.price_buckets / first_trade against a brute-force reference, SQLite and PostgreSQL.

Trades are written by the real TickWriter (the same path the collector uses).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import Repository, TickWriter
from kis_desk.protocol.records import KST
from test_storage import db_url, pg_schema  # noqa: F401  (fixtures: sqlite + postgresql)

DAY1 = datetime(2026, 3, 5, 9, 0, tzinfo=KST)
DAY2 = datetime(2026, 3, 6, 9, 0, tzinfo=KST)


def day_ticks(code: str, start: datetime, n: int, seed: int) -> list[Tick]:
    """Trades with irregular gaps, several per second, some at .999999 of a second."""
    rng = random.Random(seed)
    out, t, cum, price = [], start, 0, 50_000
    for _ in range(n):
        t += timedelta(microseconds=rng.choice([0, 0, 1, 250_000, 999_999, 3_000_000, 47_000_000]))
        cum += rng.randint(1, 30)
        price += rng.choice([-50, 0, 50])
        out.append(Tick(code, t, price, 1, cum, price - 50_000, round((price - 50_000) / 500, 2),
                        100.0, 0.0, "ws"))
    return out


def reference(ticks: list[Tick], start: datetime, end: datetime, width: int) -> list[tuple]:
    last: dict[tuple, Tick] = {}
    for t in ticks:
        if start <= t.timestamp < end:
            key = (t.timestamp.date(), int(t.timestamp.timestamp()) // width)
            if key not in last or t.cum_volume > last[key].cum_volume:
                last[key] = t
    rows = sorted(last.values(), key=lambda t: (t.timestamp, t.cum_volume))
    return [(t.timestamp, t.price, t.cum_volume) for t in rows]


async def store(url: str, tmp_path, ticks: list[Tick]) -> None:
    writer = TickWriter(url, journal_dir=tmp_path / "journal")
    await writer.start()
    writer.submit(ticks)
    await writer.stop()


async def test_price_buckets_match_a_brute_force_reference(db_url, tmp_path):  # noqa: F811
    a1 = day_ticks("005930", DAY1, 3000, 1)
    a2 = day_ticks("005930", DAY2, 500, 2)
    other = day_ticks("000660", DAY1, 800, 3)
    await store(db_url, tmp_path, a1 + a2 + other)
    repo = Repository(db_url)
    try:
        everything = a1 + a2
        for start, end in [(DAY1.replace(hour=0), DAY1.replace(hour=0) + timedelta(days=1)),
                           (DAY1 + timedelta(minutes=7), DAY1 + timedelta(minutes=61)),
                           (DAY1.replace(hour=0), DAY2 + timedelta(days=1))]:
            for width in (1, 2, 7, 64, 128, 3600):
                got = repo.price_buckets("005930", start, end, width)
                assert got == reference(everything, start, end, width), (start, end, width)
        assert repo.price_buckets("005930", DAY1 - timedelta(days=3), DAY1 - timedelta(days=2), 1) == []
        assert repo.price_buckets("999999", DAY1, DAY2, 1) == []
        with pytest.raises(ValueError):
            repo.price_buckets("005930", DAY1, DAY2, 0)
        first = repo.first_trade("005930", DAY1.date())
        assert first is not None and first.cum_volume == a1[0].cum_volume and first.price == a1[0].price
        assert repo.first_trade("005930", (DAY1 - timedelta(days=1)).date()) is None
        assert repo.last_trade("005930", DAY1.date()).cum_volume == a1[-1].cum_volume
    finally:
        repo.close()


async def test_bucket_boundaries_are_epoch_aligned(db_url, tmp_path):  # noqa: F811
    """Buckets are ``epoch // width`` (what the UI's sparkline uses), not offsets from ``start``."""
    base = datetime(2026, 3, 5, 9, 0, 13, tzinfo=KST)
    assert int(base.timestamp()) % 128 != 0       # so the test tells the two alignments apart
    edge = (int(base.timestamp()) // 128 + 1) * 128
    t_before = datetime.fromtimestamp(edge - 1, KST).replace(microsecond=999_999)
    t_after = datetime.fromtimestamp(edge, KST)
    ticks = [Tick("005930", base, 100, 1, 1, 0, 0.0, None, 0.0, "ws"),
             Tick("005930", t_before, 101, 1, 2, 1, 1.0, None, 0.0, "ws"),
             Tick("005930", t_after, 102, 1, 3, 2, 2.0, None, 0.0, "ws")]
    await store(db_url, tmp_path, ticks)
    repo = Repository(db_url)
    try:
        got = repo.price_buckets("005930", base, base + timedelta(hours=1), 128)
        assert [(p, c) for _, p, c in got] == [(101, 2), (102, 3)]
        assert got[0][0] == t_before
    finally:
        repo.close()
