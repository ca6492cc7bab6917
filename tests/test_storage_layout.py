"""The compact trade layout (schema v5) on real SQLite and PostgreSQL: migration from the v4
layout with every value kept, venues as part of the identity, bars_1m against a brute-force
reference, retention (old days leave, bars stay, recent trades intact), storage_info, and the
bytes a trade takes on disk."""

from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks.bench_storage import realistic_day  # the benchmark's own realistic day
from kis_desk.config import redact_url
from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import MIGRATIONS, Repository, TickWriter, migrate
from kis_desk.engine.storage.journal import decode_tick, encode_tick
from kis_desk.engine.storage.legacy_rows import pg_rows as v1_pg_rows, sqlite_rows as v1_sqlite_rows
from kis_desk.engine.storage.repository import create_engine
from kis_desk.engine.storage.retention import RetentionPolicy
from kis_desk.engine.storage.schema import TICK_COLUMNS_V1
from kis_desk.protocol.records import KST
from test_storage import db_url, pg_schema, same_trade, wait_until  # noqa: F401  (fixtures)

V5 = 5
BEFORE_V5 = max(n for n, _, _ in MIGRATIONS if n < V5)


def varied_ticks(code: str, day: date, n: int, seed: int, venue: str = "krx",
                 start_cum: int = 0) -> list[Tick]:
    """Trades of one symbol and day with every kind of value the layout must keep."""
    rng = random.Random(seed)
    t = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST)
    out, cum, price = [], start_cum, 50_000 + seed * 100
    for i in range(n):
        t += timedelta(microseconds=rng.choice([0, 0, 0, 1, 250_000, 999_999, 1_000_000, 61_000_000]))
        vol = rng.randint(1, 500)
        cum += vol
        price += rng.choice([-50, 0, 0, 50])
        out.append(Tick(code, t, price, vol, cum,
                        None if i % 11 == 0 else price - 50_000,
                        None if i % 13 == 0 else round((price - 50_000) / 500, 2),
                        None if i % 5 == 0 else round(rng.uniform(20, 300), 2),
                        t.timestamp() + rng.choice([0.003, 0.25, 1.75, 3600.5]) + i * 1e-6,
                        ("ws", "backfill", "poll")[i % 3], venue))
    return out


def brute_bars(ticks: list[Tick]) -> dict[tuple, tuple]:
    """(code, venue, minute) → (open, high, low, close, volume, trades) from distinct trades."""
    seen: dict[tuple, Tick] = {}
    for t in ticks:
        seen.setdefault((t.stock_code, t.venue, t.business_date, t.cum_volume), t)
    groups: dict[tuple, list[Tick]] = {}
    for t in seen.values():
        groups.setdefault((t.stock_code, t.venue, int(t.timestamp.timestamp()) // 60 * 60), []).append(t)
    out = {}
    for key, ts in groups.items():
        ts.sort(key=lambda x: x.cum_volume)
        out[key] = (ts[0].price, max(x.price for x in ts), min(x.price for x in ts), ts[-1].price,
                    sum(x.volume for x in ts), len(ts))
    return out


def stored_bars(url: str) -> dict[tuple, tuple]:
    venues = {0: "krx", 1: "nxt", 2: "total"}
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT stock_code, venue, minute, open, high, low, close, volume, "
                                    "trades FROM bars_1m")).all()
    engine.dispose()
    return {(r[0], venues[r[1]], int(r[2])): tuple(int(v) for v in r[3:]) for r in rows}


async def store(url: str, journal: Path, *batches: list[Tick], **kwargs) -> TickWriter:
    w = TickWriter(url, journal_dir=journal, **kwargs)
    await w.start()
    for b in batches:
        w.submit(b)
        await w.flush()
    await w.stop()
    return w


def all_ticks(repo: Repository, code: str, venue: str = "krx") -> list[Tick]:
    return repo.ticks_between(code, datetime(2000, 1, 1, tzinfo=KST), datetime(2100, 1, 1, tzinfo=KST), venue)


# -- migration ------------------------------------------------------------------------------------

def test_migration_from_the_v4_layout_keeps_every_value(db_url):
    days = [date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)]
    ticks = [t for i, d in enumerate(days) for code in ("005930", "000660", "Q500001")
             for t in varied_ticks(code, d, 700, seed=i * 10 + len(code))]
    engine = create_engine(db_url)
    try:
        assert migrate(engine, target=BEFORE_V5)[1] == BEFORE_V5
        sqlite = engine.dialect.name == "sqlite"
        rows = v1_sqlite_rows(ticks) if sqlite else v1_pg_rows(ticks)
        ph = ", ".join(("?" if sqlite else "%s") for _ in TICK_COLUMNS_V1)
        cols = ", ".join(f'"{c}"' for c in TICK_COLUMNS_V1)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO stock_prices_realtime ({cols}) VALUES ({ph})", rows)
            before = conn.exec_driver_sql("SELECT count(*) FROM stock_prices_realtime").scalar_one()
        assert before == len(ticks)

        assert migrate(engine) == (BEFORE_V5, MIGRATIONS[-1][0])
        repo = Repository(db_url, engine=engine)
        assert repo.count_ticks() == len(ticks)
        for code in ("005930", "000660", "Q500001"):
            want = sorted((t for t in ticks if t.stock_code == code), key=lambda t: (t.timestamp, t.cum_volume))
            got = all_ticks(repo, code)
            assert len(got) == len(want)
            assert all(same_trade(a, b) and a.venue == "krx" for a, b in zip(got, want, strict=True))
            assert repo.count_ticks(code, days[1]) == 700
        assert stored_bars(db_url) == brute_bars(ticks)
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if sqlite:
                indexes = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' "
                                               "AND tbl_name = 'stock_prices_realtime'").scalars().all()
                assert indexes == []                      # the key is the table: no other index
                ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'stock_prices_realtime'").scalar()
                assert "WITHOUT ROWID" in ddl
            else:
                parts = set(conn.exec_driver_sql(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'stock_prices_realtime'::regclass").scalars())
                assert {f"stock_prices_realtime_p{d:%Y%m%d}" for d in days} <= parts
            view = conn.exec_driver_sql("SELECT venue, source, price FROM stock_prices_view "
                                        "ORDER BY stock_code, business_date, cum_volume LIMIT 1").one()
        assert "stock_prices_realtime_v4" not in tables
        assert view[0] == "krx" and view[1] in ("ws", "backfill", "poll")
        repo.close()
    finally:
        engine.dispose()


# -- venue ----------------------------------------------------------------------------------------

async def test_venues_are_part_of_the_trade_identity(db_url, tmp_path):
    day = date(2026, 3, 5)
    krx = varied_ticks("005930", day, 400, seed=1, venue="krx")
    total = varied_ticks("005930", day, 400, seed=1, venue="total")          # same cum volumes
    w = await store(db_url, tmp_path / "j", krx[:200], total, krx[150:], krx[:10])
    assert (w.stats().stored, w.stats().duplicates) == (800, 60)
    repo = Repository(db_url)
    try:
        assert repo.count_ticks("005930", day, venue="krx") == 400
        assert repo.count_ticks("005930", day, venue="total") == 400
        assert repo.count_ticks("005930", day, venue="nxt") == 0
        assert [t.venue for t in all_ticks(repo, "005930", "total")] == ["total"] * 400
        assert repo.last_trade("005930", day, "total").cum_volume == total[-1].cum_volume
        assert repo.first_trade("005930", day, "krx").cum_volume == krx[0].cum_volume
        assert repo.last_trade("005930", day, "nxt") is None
        assert repo.codes_on(day) == ["005930"]
    finally:
        repo.close()
    # the chain check is per venue: a hole on one venue is not hidden by the other's trades
    hole = varied_ticks("000660", day, 50, seed=3, venue="nxt")
    other = varied_ticks("000660", day, 50, seed=3, venue="total")
    await store(db_url, tmp_path / "j2", hole[:20] + hole[25:], other)
    repo = Repository(db_url)
    try:
        assert repo.last_before_first_gap("000660", day, "nxt").cum_volume == hole[19].cum_volume
        assert repo.last_before_first_gap("000660", day, "total") is None
    finally:
        repo.close()


def test_journal_lines_carry_the_venue():
    t = varied_ticks("005930", date(2026, 3, 5), 1, seed=1, venue="total")[0]
    assert decode_tick(encode_tick(t)) == t
    old_line = encode_tick(t).rsplit("\t", 1)[0] + "\n"                      # written before venues
    assert decode_tick(old_line) == t._replace(venue="krx")


async def test_unknown_venue_is_rejected_alone(db_url, tmp_path):
    good = varied_ticks("005930", date(2026, 3, 5), 30, seed=2)
    bad = good[5]._replace(venue="mars", cum_volume=10**9)
    w = await store(db_url, tmp_path / "j", good[:10] + [bad] + good[10:])
    assert w.stats().stored == 30 and w.stats().failed == 1


async def test_out_of_range_values_are_rejected_never_truncated(db_url, tmp_path):
    day = date(2026, 3, 5)
    good = varied_ticks("005930", day, 20, seed=4)
    big = good[3]._replace(volume=2**31 + 7, cum_volume=10**8)          # beyond PostgreSQL int4
    huge = good[4]._replace(volume=2**63 + 1, cum_volume=10**8 + 1)      # beyond any integer column
    w = await store(db_url, tmp_path / "j", good[:10] + [big, huge] + good[10:])
    repo = Repository(db_url)
    try:
        stored_big = repo.last_trade("005930", day)
    finally:
        repo.close()
    if engine_name(db_url) == "sqlite":
        assert w.stats().stored == 21 and w.stats().failed == 1
        assert stored_big.volume == 2**31 + 7
    else:
        assert w.stats().stored == 20 and w.stats().failed == 2
        assert stored_big.cum_volume == good[-1].cum_volume


# -- bars -----------------------------------------------------------------------------------------

async def test_bars_1m_match_a_brute_force_reference(db_url, tmp_path):
    day = date(2026, 3, 5)
    a = varied_ticks("005930", day, 3000, seed=5)
    b = varied_ticks("000660", day, 1500, seed=6, venue="total")
    # out of order (a back-fill arriving after later trades) and with duplicates
    await store(db_url, tmp_path / "j", a[1000:2000], b[:700], a[:1200], b[500:], a[1900:], a[100:300])
    assert stored_bars(db_url) == brute_bars(a + b)
    repo = Repository(db_url)
    try:
        start = datetime(2026, 3, 5, 0, 0, tzinfo=KST)
        got = repo.bars("005930", start, start + timedelta(days=1))
        ref = sorted((k[2], v) for k, v in brute_bars(a).items())
        assert [(int(m.timestamp()), o, h, lo, c, v) for m, o, h, lo, c, v in got] == \
            [(m, *v[:5]) for m, v in ref]
    finally:
        repo.close()


# -- retention ------------------------------------------------------------------------------------

async def test_retention_removes_old_days_and_keeps_bars(db_url, tmp_path):
    today = datetime.now(KST).date()
    old_days = [today - timedelta(days=120), today - timedelta(days=45)]
    new_days = [today - timedelta(days=29), today]
    data = {d: varied_ticks(code, d, 1200, seed=i) for i, d in enumerate(old_days + new_days)
            for code in ("005930",)}
    data.update({(d, "total"): varied_ticks("000660", d, 800, seed=9 + i, venue="total")
                 for i, d in enumerate(old_days + new_days)})
    everything = [t for ts in data.values() for t in ts]
    await store(db_url, tmp_path / "j", everything)                       # retention off
    bars_before = stored_bars(db_url)

    w = TickWriter(db_url, journal_dir=tmp_path / "j2",
                   retention=RetentionPolicy(days=30, check_every=3600, chunk_rows=500))
    await w.start()
    fresh = varied_ticks("035720", today, 300, seed=42)
    w.submit(fresh)                                                        # ingest goes on meanwhile
    await wait_until(lambda: w.stats().purged == 2 * 2000, "old days removed")
    await w.flush()
    await w.stop()
    s = w.stats()
    assert s.retention_days == 30 and s.database_bytes > 0 and s.stored == 300

    repo = Repository(db_url)
    try:
        for d in old_days:
            assert repo.count_ticks(business_date=d) == 0
        for d in new_days:
            assert repo.count_ticks("005930", d) == 1200
            assert repo.count_ticks("000660", d, venue="total") == 800
        assert repo.count_ticks("035720", today) == 300
        kept = [t for t in everything if t.business_date in new_days]
        got = all_ticks(repo, "005930") + all_ticks(repo, "000660", "total")
        assert len(got) == len(kept)
        info = repo.storage_info()
        assert info.retention_days == 30 and info.size_bytes > 0
        assert info.oldest_trade_day == new_days[0] and info.newest_trade_day == today
        assert info.backend == engine_name(db_url)
    finally:
        repo.close()
    bars_after = stored_bars(db_url)
    assert {k: v for k, v in bars_after.items() if k in bars_before} == bars_before   # bars stay


def engine_name(url: str) -> str:
    return sa.make_url(url).get_backend_name()


def test_storage_info_of_an_empty_database(db_url):
    repo = Repository(db_url)
    try:
        info = repo.storage_info()
        assert info.oldest_trade_day is None and info.newest_trade_day is None
        assert info.retention_days == 90 and info.size_bytes >= 0
        assert info.database == redact_url(db_url)
    finally:
        repo.close()


# -- size -----------------------------------------------------------------------------------------

async def test_a_trade_takes_at_most_60_bytes_in_sqlite(tmp_path):
    path = tmp_path / "size.sqlite3"
    n = int(os.environ.get("KIS_DESK_SIZE_TRADES", "200000"))
    ticks = realistic_day(n)
    w = TickWriter(f"sqlite:///{path}", journal_dir=tmp_path / "j")
    await w.start()
    for i in range(0, n, 2000):                     # network-read-sized chunks, as live
        w.submit(ticks[i:i + 2000])
    await w.stop()
    assert w.stats().stored == n
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    per_trade = path.stat().st_size / n             # the whole file: trades, bars_1m, everything
    print(f"bytes per trade: {per_trade:.1f}")
    assert per_trade <= 60, per_trade
