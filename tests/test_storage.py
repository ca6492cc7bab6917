"""Storage correctness on real SQLite and real PostgreSQL: exactly-once, duplicates counted,
batching, COPY path, alerts, watchlists, settings (no secrets), migrations."""

from __future__ import annotations

import dataclasses
import asyncio
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from kis_desk.config import Secret, redact_url
from kis_desk.core.events import AlertEvent, EventBus, StorageStatsEvent
from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import (LATEST_VERSION, MIGRATIONS, Repository, SecretSettingError, TickWriter,
                                     current_version, migrate)
from kis_desk.engine.storage.schema import MIGRATIONS
from kis_desk.engine.storage.repository import create_engine
from kis_desk.protocol.records import KST

DAY = date(2026, 3, 5)


def make_ticks(n: int, code: str = "005930", start_cum: int = 0, day: date = DAY,
               source: str = "ws") -> list[Tick]:
    """n distinct trades of one symbol, several per second (KIS time has 1-s resolution)."""
    base = datetime(day.year, day.month, day.day, 9, 0, 0, tzinfo=KST)
    now = time.time()
    out = []
    for i in range(n):
        cum = start_cum + 10 * (i + 1)
        out.append(Tick(code, base + timedelta(seconds=(start_cum // 10 + i) // 7), 70000 + (i % 40) * 100,
                        10, cum, -300 + i % 7, round(-0.42 + (i % 7) / 100, 2),
                        None if i % 5 == 0 else 101.25, now + i * 1e-4, source))
    return out


def pg_schema_url(pg_url: str, schema_name: str, app: str | None = None) -> str:
    url = sa.make_url(pg_url)
    q = dict(url.query)
    q["options"] = f"-csearch_path={schema_name}"
    if app:
        q["application_name"] = app
    return url.set(query=q).render_as_string(hide_password=False)


@pytest.fixture
def pg_schema(pg_url):
    """A fresh PostgreSQL schema for one test (dropped afterwards). Yields (url, name)."""
    name = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    try:
        yield pg_schema_url(pg_url, name), name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'ticks.sqlite3').as_posix()}"
    return request.getfixturevalue("pg_schema")[0]


async def wait_until(predicate, what: str, limit: float = 30.0) -> None:
    """Poll for a condition (a safety net against hangs, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.02)


def same_trade(a: Tick, b: Tick) -> bool:
    return (a.stock_code, a.timestamp, a.price, a.volume, a.cum_volume, a.change, a.change_rate,
            a.strength, a.source) == (b.stock_code, b.timestamp, b.price, b.volume, b.cum_volume,
                                      b.change, b.change_rate, b.strength, b.source) \
        and abs(a.received_at - b.received_at) < 1e-5


# -- exactly once -----------------------------------------------------------------------------------

async def test_every_tick_stored_once_and_duplicates_counted(db_url, tmp_path):
    w = TickWriter(db_url, journal_dir=tmp_path / "journal")
    await w.start()
    a = make_ticks(5000, "005930")
    b = make_ticks(3000, "000660")
    for i in range(0, 5000, 250):
        w.submit(a[i:i + 250])
        if i < 3000:
            w.submit(b[i:i + 250])
    w.submit(a[100:400])                 # seen again (e.g. socket + back-fill)
    w.submit([b[7], b[7], b[8]])          # duplicates inside one batch
    await w.flush()
    s = w.stats()
    assert s.received == 8000 + 300 + 3
    assert s.stored == 8000
    assert s.duplicates == 303
    assert s.backlog == 0 and s.failed == 0 and s.journaled == 0
    assert s.stored == 8000 and s.duplicates == 303        # attribute access too (collector)
    await w.stop()

    repo = Repository(db_url)
    try:
        assert repo.count_ticks() == 8000
        assert repo.count_ticks("000660") == 3000
        assert repo.count_ticks("005930", DAY) == 5000
        got = repo.ticks_between("005930", a[0].timestamp, a[-1].timestamp + timedelta(seconds=1))
        assert len(got) == 5000
        assert all(same_trade(x, y) for x, y in zip(got, a, strict=True))
        assert got[0].timestamp.utcoffset() == timedelta(hours=9)
    finally:
        repo.close()


async def test_second_writer_run_counts_everything_as_duplicate(db_url, tmp_path):
    ticks = make_ticks(1200)
    for run in range(2):
        w = TickWriter(db_url, journal_dir=tmp_path / "journal")
        await w.start()
        w.submit(ticks)
        await w.stop()
        assert (w.stats().stored, w.stats().duplicates) == ((1200, 0) if run == 0 else (0, 1200))


async def test_batches_flush_without_explicit_flush(db_url, tmp_path):
    w = TickWriter(db_url, journal_dir=tmp_path / "journal", flush_interval=0.05)
    batches: list = []
    w.on_committed.append(lambda what, wall: batches.append((what, wall)))
    await w.start()
    ticks = make_ticks(30)
    for t in ticks:                       # 30 single-tick submits …
        w.submit([t])
    await wait_until(lambda: w.stats().stored == 30, "periodic flush")
    # … are committed in few batches (not one transaction each), on the loop thread
    assert sum(len(b) for b, _ in batches) == 30
    assert len(batches) < 30
    assert all(isinstance(wall, float) for _, wall in batches)
    await w.stop()


async def test_stop_is_lossless(db_url, tmp_path):
    w = TickWriter(db_url, journal_dir=tmp_path / "journal", flush_interval=0.1)
    await w.start()
    w.submit(make_ticks(25_000))
    await w.stop()                         # no flush(): stop writes everything
    assert w.stats().stored == 25_000 and w.stats().backlog == 0
    repo = Repository(db_url)
    assert repo.count_ticks() == 25_000
    repo.close()


async def test_first_gap_in_the_cumulative_volume_chain_is_found(db_url, tmp_path):
    w = TickWriter(db_url, journal_dir=tmp_path / "journal")
    await w.start()
    day = make_ticks(100)                                   # cum 10, 20, … 1000; volume 10
    w.submit(day[:30] + day[40:70] + day[80:])              # holes after cum 300 and 700
    w.submit(make_ticks(20, code="000660"))                 # a complete chain
    await w.stop()
    repo = Repository(db_url)
    try:
        before = repo.last_before_first_gap("005930", DAY)
        assert before is not None and before.cum_volume == 300
        assert repo.last_before_first_gap("000660", DAY) is None
        assert repo.last_before_first_gap("005930", DAY + timedelta(days=1)) is None
    finally:
        repo.close()


async def test_stats_events_published(db_url, tmp_path):
    bus = EventBus()
    seen: list[StorageStatsEvent] = []
    bus.subscribe(StorageStatsEvent, seen.append)
    w = TickWriter(db_url, journal_dir=tmp_path / "journal", bus=bus, stats_interval=0.05)
    await w.start()
    w.submit(make_ticks(10))
    await w.flush()
    await wait_until(lambda: any(e.stored == 10 for e in seen), "a stats event with stored=10")
    await w.stop()
    assert seen[-1].database_ok and seen[-1].received == 10
    assert seen[-1].database == redact_url(db_url)


@pytest.mark.postgres
async def test_pg_copy_path_large_batches(pg_schema, tmp_path):
    url, name = pg_schema
    w = TickWriter(url, journal_dir=tmp_path / "journal", max_batch=20_000)
    assert w.backend_name == "postgresql"
    await w.start()
    ticks = make_ticks(60_000)
    w.submit(ticks)
    w.submit(ticks[59_000:])               # 1,000 duplicates against committed rows
    w.submit(ticks[:10] + ticks[:10])      # duplicates inside one COPY batch
    await w.flush()
    s = w.stats()
    assert (s.stored, s.duplicates) == (60_000, 1_020)
    # the staging table is a per-session temp table, never a row in the user's schema
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names(schema=name))
        n = conn.execute(sa.text("SELECT count(*) FROM stock_prices_realtime")).scalar_one()
        kinds = dict(conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = 'stock_prices_realtime'"), {"s": name}).all())
        # v5 stores integer times; the readable view shows them as timestamptz
        kinds.update({k: v for k, v in conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = 'stock_prices_view'"), {"s": name}).all()
            if k in ("timestamp", "received_at")})
    engine.dispose()
    await w.stop()
    assert n == 60_000
    assert "_kis_tick_stage" not in tables
    assert kinds["price"] == "bigint"
    assert kinds["timestamp"] == "timestamp with time zone"
    assert kinds["received_at"] == "timestamp with time zone"


# -- alerts ---------------------------------------------------------------------------------------

def make_alert(i: int = 1, code: str = "005930") -> AlertEvent:
    t0 = datetime(2026, 3, 5, 10, 0, 0, tzinfo=KST)
    return AlertEvent(alert_id=f"{code}:20260305:up:1:{1000 + i}", stock_code=code, stock_name="삼성전자",
                      direction="up", change_pct=5.2, base_price=70000, base_time=t0,
                      trigger_price=73640, trigger_time=t0 + timedelta(seconds=40),
                      trigger_cum_volume=1000 + i, detected_at=datetime.now(timezone.utc),
                      window_seconds=60.0, threshold_pct=5.0, step=1)


async def test_alerts_stored_once_and_acknowledged(db_url, tmp_path):
    w = TickWriter(db_url, journal_dir=tmp_path / "journal")
    await w.start()
    w.submit_alert(make_alert(1))
    w.submit_alert(make_alert(1))          # same alert_id again
    w.submit_alert(dataclasses.replace(make_alert(2), vi="static_vi"))
    await w.flush()
    await w.stop()
    assert w.stats().alerts_stored == 2
    repo = Repository(db_url)
    try:
        stored = repo.alerts_on(DAY)
        assert [s.alert.alert_id for s in stored] == [make_alert(1).alert_id, make_alert(2).alert_id]
        assert [s.alert.vi for s in stored] == ["", "static_vi"]      # the writer's backends store it
        first = stored[0].alert
        assert first.stock_name == "삼성전자" and first.trigger_price == 73640
        assert first.trigger_time == make_alert(1).trigger_time
        assert not stored[0].acknowledged
        assert repo.acknowledge(first.alert_id) is True
        assert repo.acknowledge(first.alert_id) is False
        assert repo.acknowledge("nope") is False
        after = {s.alert.alert_id: s for s in repo.alerts_on(DAY)}
        assert after[first.alert_id].acknowledged and after[first.alert_id].acknowledged_at is not None
        assert repo.alerts_on(DAY + timedelta(days=1)) == []
        assert repo.save_alert(make_alert(3)) is True and repo.save_alert(make_alert(3)) is False
    finally:
        repo.close()


# -- repository ------------------------------------------------------------------------------------

def test_ticks_between_and_last_trade(db_url, tmp_path):
    async def fill():
        w = TickWriter(db_url, journal_dir=tmp_path / "journal")
        await w.start()
        w.submit(make_ticks(700, "005930") + make_ticks(50, "000660")
                 + make_ticks(20, "005930", day=DAY - timedelta(days=1)))
        await w.stop()
    asyncio.run(fill())
    repo = Repository(db_url)
    try:
        t0 = datetime(2026, 3, 5, 9, 0, 10, tzinfo=KST)
        got = repo.ticks_between("005930", t0, t0 + timedelta(seconds=10))
        assert got and all(t0 <= t.timestamp < t0 + timedelta(seconds=10) for t in got)
        assert len(got) == 70
        # the same instant written in UTC selects the same rows
        got_utc = repo.ticks_between("005930", t0.astimezone(timezone.utc),
                                     (t0 + timedelta(seconds=10)).astimezone(timezone.utc))
        assert got_utc == got
        last = repo.last_trade("005930", DAY)
        assert last is not None and last.cum_volume == 7000
        assert repo.last_trade("005930", DAY - timedelta(days=1)).cum_volume == 200
        assert repo.last_trade("035720", DAY) is None
        assert repo.count_ticks(business_date=DAY) == 750
        assert repo.codes_on(DAY) == ["000660", "005930"]
    finally:
        repo.close()


def test_watchlists_crud(db_url):
    repo = Repository(db_url)
    try:
        assert repo.list_watchlists() == []
        repo.create_watchlist("Semis", ["005930", "000660"])
        repo.create_watchlist("Bio")
        with pytest.raises(ValueError):
            repo.create_watchlist("Bio")
        assert repo.list_watchlists() == ["Semis", "Bio"]
        repo.set_watchlist_codes("Bio", ["207940", "068270", "207940", "q500001"])
        assert repo.watchlist_codes("Bio") == ["207940", "068270", "Q500001"]
        repo.set_watchlist_codes("Bio", ["068270", "207940"])
        assert repo.watchlist_codes("Bio") == ["068270", "207940"]
        repo.rename_watchlist("Semis", "Chips")
        assert repo.watchlist_codes("Chips") == ["005930", "000660"]
        repo.set_watchlist_order(["Bio"])
        assert repo.list_watchlists() == ["Bio", "Chips"]
        repo.delete_watchlist("Bio")
        assert repo.list_watchlists() == ["Chips"]
        with pytest.raises(KeyError):
            repo.watchlist_codes("Bio")
        repo.create_watchlist("Bio")            # name is free again; no stale items
        assert repo.watchlist_codes("Bio") == []
    finally:
        repo.close()


def test_settings_never_store_secrets(db_url, tmp_path):
    repo = Repository(db_url)
    try:
        repo.set_setting("ui.theme", "dark")
        repo.set_setting("ui.theme", "light")
        assert repo.get_setting("ui.theme") == "light"
        assert repo.get_setting("missing", "x") == "x"
        for key in ("kis.app_key", "KIS_APP_SECRET", "appkey", "db.password", "access_token",
                    "redis.Password", "approval_key"):
            with pytest.raises(SecretSettingError):
                repo.set_setting(key, "PSabcdef-very-secret")
        with pytest.raises(SecretSettingError):
            repo.set_setting("ui.note", Secret("PSabcdef-very-secret"))  # type: ignore[arg-type]
        assert "PSabcdef-very-secret" not in repr(repo.all_settings())
        assert set(repo.all_settings()) == {"ui.theme"}
        repo.delete_setting("ui.theme")
        assert repo.get_setting("ui.theme") is None
    finally:
        repo.close()
    if db_url.startswith("sqlite"):
        for f in tmp_path.glob("ticks.sqlite3*"):
            assert b"PSabcdef-very-secret" not in f.read_bytes()


# -- migrations ------------------------------------------------------------------------------------

def test_migration_from_v1_keeps_data(db_url):
    engine = create_engine(db_url)
    try:
        assert migrate(engine, target=1) == (0, 1)
        from kis_desk.engine.storage.legacy_rows import pg_rows, sqlite_rows
        ticks = make_ticks(100)
        with engine.begin() as conn:
            assert current_version(conn) == 1
            assert not sa.inspect(conn).has_table("alerts")
            cols = ["stock_code", "business_date", "timestamp", "price", "volume", "cum_volume",
                    "change", "change_rate", "strength", "received_at", "source"]
            rows = sqlite_rows(ticks) if engine.dialect.name == "sqlite" else pg_rows(ticks)
            raw = conn.connection.driver_connection if engine.dialect.name != "sqlite" else None
            if raw is None:
                conn.exec_driver_sql(
                    f"INSERT INTO stock_prices_realtime ({', '.join(chr(34) + c + chr(34) for c in cols)}) "
                    f"VALUES ({', '.join('?' * 11)})", rows)
            else:
                conn.exec_driver_sql(
                    f"INSERT INTO stock_prices_realtime ({', '.join(chr(34) + c + chr(34) for c in cols)}) "
                    f"VALUES ({', '.join(['%s'] * 11)})", rows)
            conn.execute(sa.text("INSERT INTO settings (key, value) VALUES ('ui.theme', 'dark')"))
        repo_v1 = Repository(db_url, migrate=False, engine=engine)
        repo_v1.create_watchlist("Mine", ["005930"])

        assert migrate(engine) == (1, LATEST_VERSION)
        assert migrate(engine) == (LATEST_VERSION, LATEST_VERSION)     # idempotent
        repo = Repository(db_url, engine=engine)
        assert repo.count_ticks() == 100
        assert repo.last_trade("005930", DAY).cum_volume == 1000
        assert repo.get_setting("ui.theme") == "dark"
        assert repo.watchlist_codes("Mine") == ["005930"]
        assert repo.alerts_on(DAY) == []                                 # new table usable
        with engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
        # every migration applied once, in order (numbers are pre-assigned per branch: gaps allowed)
        assert versions == [number for number, _, _ in MIGRATIONS] and versions[-1] == LATEST_VERSION
    finally:
        engine.dispose()


def test_sqlite_pragmas(tmp_path):
    url = f"sqlite:///{(tmp_path / 'p.sqlite3').as_posix()}"
    repo = Repository(url)
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1        # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    repo.close()


def test_default_url_is_user_data_sqlite(isolated_home):
    from kis_desk.config import UserPaths
    paths = UserPaths.default().ensure()
    repo = Repository(paths.default_database_url)
    repo.set_setting("ui.theme", "dark")
    repo.close()
    assert (Path(isolated_home) / "data" / "kis-desk.sqlite3").exists()


def test_migration_3_adds_alert_lateness_and_keeps_alerts(db_url):
    from kis_desk.engine.storage.schema import ALERT_COLUMNS
    engine = create_engine(db_url)
    try:
        assert migrate(engine, target=2) == (0, 2)
        a = make_alert(1)
        old_cols = [c for c in ALERT_COLUMNS if c not in ("late", "delay_s", "source", "kind", "vi")]
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO alerts ({', '.join(old_cols)}) VALUES "
                                 f"({', '.join(':' + c for c in old_cols)})"),
                         {c: getattr(a, c, None) for c in old_cols} | {"business_date": DAY})
        assert migrate(engine) == (2, LATEST_VERSION)
        repo = Repository(db_url, engine=engine)
        [stored] = repo.alerts_on(DAY)
        assert (stored.alert.late, stored.alert.delay_s, stored.alert.source) == (False, 0.0, "ws")
        late = dataclasses.replace(make_alert(2), late=True, delay_s=38.4, source="backfill")
        assert repo.save_alert(late)
        again = {s.alert.alert_id: s.alert for s in repo.alerts_on(DAY)}[late.alert_id]
        assert (again.late, again.delay_s, again.source) == (True, 38.4, "backfill")
        assert sorted(repo.alert_ids_on(DAY)) == sorted([a.alert_id, late.alert_id])
    finally:
        engine.dispose()


def test_migration_7_adds_alert_kind_and_keeps_alerts(db_url):
    from kis_desk.engine.storage.schema import ALERT_COLUMNS
    engine = create_engine(db_url)
    try:
        assert migrate(engine, target=4) == (0, 4)
        a = make_alert(1)
        old_cols = [c for c in ALERT_COLUMNS if c not in ("kind", "vi")]
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO alerts ({', '.join(old_cols)}) VALUES "
                                 f"({', '.join(':' + c for c in old_cols)})"),
                         {c: getattr(a, c, None) for c in old_cols} | {"business_date": DAY})
        assert migrate(engine) == (4, LATEST_VERSION)
        repo = Repository(db_url, engine=engine)
        [stored] = repo.alerts_on(DAY)
        assert stored.alert.kind == "move"
        level = dataclasses.replace(make_alert(2), kind="level")
        assert repo.save_alert(level)
        kinds = {s.alert.alert_id: s.alert.kind for s in repo.alerts_between(DAY, DAY)}
        assert kinds == {a.alert_id: "move", level.alert_id: "level"}
    finally:
        engine.dispose()


def test_migration_9_gives_pending_gaps_their_venue_and_keeps_them(db_url):
    from kis_desk.core.events import PendingGap
    assert LATEST_VERSION == 9
    engine = create_engine(db_url)
    try:
        assert migrate(engine, target=8) == (0, 8)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO pending_gaps (stock_code, business_date, after_cum, "
                                 "until_cum, status, recorded_at) VALUES ('005930', :d, 100, 200, "
                                 "'pending', :now)"), {"d": DAY, "now": datetime.now(timezone.utc)})
        assert migrate(engine) == (8, 9)
        repo = Repository(db_url, engine=engine)
        assert repo.list_pending_gaps() == [PendingGap("005930", DAY, 100, None, 200, "krx")]
        nxt = PendingGap("000660", DAY, 5, None, None, "nxt")
        repo.add_pending_gaps([nxt])
        assert repo.list_pending_gaps()[1] == nxt
    finally:
        engine.dispose()


def test_migration_8_adds_alert_vi_and_keeps_alerts(db_url):
    from kis_desk.engine.storage.schema import ALERT_COLUMNS, MIGRATIONS
    assert [n for n, _, _ in MIGRATIONS][-3:-1] == [7, 8] and LATEST_VERSION >= 8   # 6 stays unused
    engine = create_engine(db_url)
    try:
        assert migrate(engine, target=7) == (0, 7)
        a = make_alert(1)
        old_cols = [c for c in ALERT_COLUMNS if c != "vi"]
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO alerts ({', '.join(old_cols)}) VALUES "
                                 f"({', '.join(':' + c for c in old_cols)})"),
                         {c: getattr(a, c, None) for c in old_cols} | {"business_date": DAY})
        assert migrate(engine) == (7, LATEST_VERSION)
        repo = Repository(db_url, engine=engine)
        [stored] = repo.alerts_on(DAY)
        assert stored.alert == a and stored.alert.vi == ""
        vi = dataclasses.replace(make_alert(2), vi="dynamic_vi")
        assert repo.save_alert(vi)
        again = {s.alert.alert_id: s.alert for s in repo.alerts_on(DAY)}[vi.alert_id]
        assert again == vi and again.vi == "dynamic_vi"
        history = {s.alert.alert_id: s.alert.vi for s in repo.alerts_between(DAY, DAY)}
        assert history == {a.alert_id: "", vi.alert_id: "dynamic_vi"}
    finally:
        engine.dispose()
