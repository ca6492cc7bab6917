"""The start-up benchmark's bulk generator (benchmarks/startup_data.py) writes what the live path
would: unbroken cumulative-volume chains, the bars the trigger builds, and a cache the runs
leave as generated."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from benchmarks import startup_data
from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import Repository, TickWriter, create_engine, layout, migrate
from test_storage import pg_schema  # noqa: F401  (fixture)


def _bars(path) -> list[tuple]:
    with sqlite3.connect(path) as c:
        return c.execute(f"SELECT * FROM {layout.BARS} ORDER BY stock_code, venue, minute").fetchall()


def test_generated_days_chain_and_bars_match_the_trigger(tmp_path):
    path, meta = startup_data.sqlite_data_set(tmp_path, 2, 3_000, 5, log=lambda *_: None)
    assert not meta["cached"] and meta["trades"] == 2 * sum(startup_data.plan(2, 3_000, 5)["counts"])
    again, meta2 = startup_data.sqlite_data_set(tmp_path, 2, 3_000, 5, log=lambda *_: None)
    assert again == path and meta2["cached"] and meta2["generation_s"] == meta["generation_s"]
    # the same trades inserted through the trigger give the same bars
    twin = tmp_path / "twin.sqlite3"
    engine = create_engine(f"sqlite:///{twin}")
    migrate(engine)
    engine.dispose()
    with sqlite3.connect(twin) as c:
        c.execute(f"ATTACH DATABASE '{path}' AS gen")
        c.execute(f"INSERT INTO main.{layout.TICKS} SELECT * FROM gen.{layout.TICKS}")
        c.commit()
    assert _bars(twin) == _bars(path) and len(_bars(path)) > 0
    repo = Repository(f"sqlite:///{path}")
    try:
        info = repo.storage_info()
        assert info.trade_days == 2 and str(info.newest_trade_day) == meta["last_day"]
        for code in startup_data.plan(2, 3_000, 5)["codes"]:
            for day in (info.oldest_trade_day, info.newest_trade_day):
                assert repo.last_before_first_gap(code, day) is None            # unbroken chains
                last = repo.last_trade(code, day)
                assert last.timestamp < startup_data.after_session(day) - timedelta(minutes=1)
        assert len(repo.alerts_on(info.newest_trade_day)) == startup_data.ALERTS_PER_DAY
    finally:
        repo.close()


@pytest.mark.postgres
async def test_an_app_runs_additions_are_removed_from_the_cache(tmp_path, pg_url, pg_schema):  # noqa: F811
    path, meta = startup_data.sqlite_data_set(tmp_path, 1, 2_000, 3, log=lambda *_: None)
    url, pg_meta = startup_data.pg_data_set(pg_url, lambda _name: pg_schema[0], path, 1, 2_000, 3,
                                            log=lambda *_: None, name=pg_schema[1])
    assert pg_meta["trades"] == meta["trades"] and url == pg_schema[0]
    codes = startup_data.plan(1, 2_000, 3)["codes"]
    for n, db in enumerate((f"sqlite:///{path}", url)):
        repo = Repository(db)
        try:
            day = repo.storage_info().newest_trade_day
            before = repo.count_ticks(business_date=day)
            bars_before = repo.bars(codes[0], startup_data.after_session(day) - timedelta(hours=7),
                                    startup_data.after_session(day))
            last = repo.last_trade(codes[0], day)
            later = startup_data.after_session(day) + timedelta(seconds=5)
            w = TickWriter(db, journal_dir=tmp_path / f"j{n}")       # what an app run adds
            await w.start()
            w.submit([Tick(codes[0], later, last.price, 3, last.cum_volume + 3, 0, 0.0, 100.0,
                           later.timestamp(), "ws"),
                      Tick(codes[1], later, 999, 1, 1, 0, 0.0, None, later.timestamp(), "ws", "nxt")])
            await w.stop()
            assert repo.count_ticks(business_date=day) == before + 2
            assert startup_data.clean_after_run(db, day, codes) == 2
            assert repo.count_ticks(business_date=day) == before
            assert repo.bars(codes[0], later - timedelta(minutes=1), later + timedelta(minutes=1)) == []
            assert repo.bars(codes[0], startup_data.after_session(day) - timedelta(hours=7),
                             startup_data.after_session(day)) == bars_before != []
            assert repo.last_before_first_gap(codes[0], day) is None
        finally:
            repo.close()
