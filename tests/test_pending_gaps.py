"""A clean stop mid back-fill: what is left is recorded as pending gaps, and the next run
back-fills them first; a pending gap of a past business day is recorded as unrecoverable (KIS's
time-itemconclusion only serves today's trades) and said loudly."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from kis_desk.core.events import ErrorEvent, PendingGap
from kis_desk.engine.collector import CollectorConfig, today_kst
from kis_desk.engine.storage import Repository
from kis_desk.market.symbols import default_watchlist
from kis_desk.sim import SimConfig, Simulator
from kis_desk.wiring import build_collector
from test_collector import _assert_no_gaps, _paths, _stored_rows, _wait
from test_storage import db_url, pg_schema  # noqa: F401  (fixtures)


def test_repository_pending_gaps_round_trip(db_url):
    repo = Repository(db_url)
    try:
        day = today_kst()
        gaps = [PendingGap("005930", day, 1200, None, 1500), PendingGap("000660", day, None, "090001")]
        assert repo.add_pending_gaps(gaps) == 2
        assert repo.list_pending_gaps() == gaps
        old = PendingGap("035420", day - timedelta(days=1), 10)
        repo.replace_pending_gaps(gaps[:1], unrecoverable=[old])
        assert repo.list_pending_gaps() == gaps[:1]
        assert repo.list_pending_gaps("unrecoverable") == [old]
        assert repo.clear_pending_gaps() == 1 and repo.list_pending_gaps() == []
    finally:
        repo.close()


async def test_clean_stop_mid_backfill_records_pending_gaps_and_the_next_run_fills_them(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="kis_desk")
    codes = default_watchlist()[:4]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    async with Simulator(SimConfig(codes=codes, rate=200, page_size=400)) as sim:
        def config() -> CollectorConfig:
            return CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, codes=codes,
                                   db_url=db, paths=_paths(tmp_path))

        first = build_collector(config())
        await first.start()
        try:
            await _wait(lambda: first.feed.all_live(), "live")
            await asyncio.sleep(1.0)
            sim.faults.fail_rest(None)            # every back-fill fails from now on
            sim.faults.drop_all()
            await asyncio.sleep(1.0)              # trades the socket will never deliver
            await _wait(lambda: first.feed.all_live(), "reconnected")
            await _wait(lambda: first.feed.backfills_pending() >= len(codes), "back-fills under way")
        finally:
            await first.stop()                    # bounded drain, then the rest is recorded
        summary = first.summary()
        sim.faults.clear()
        repo = Repository(db)
        left = repo.list_pending_gaps()
        repo.close()
        assert summary["gaps_pending"] == len(left) == len(codes)
        assert {g.code for g in left} == set(codes) and all(g.business_date == today_kst() for g in left)
        assert all(g.after_cum is not None and g.until_cum is not None for g in left)
        assert "stop cut" in caplog.text and "recorded as pending" in caplog.text
        with pytest.raises(AssertionError, match="gap"):
            _assert_no_gaps(_stored_rows(db))     # the hole is really there

        second = build_collector(config())
        await second.start()
        try:
            await _wait(lambda: second.feed.all_live(), "live")
            await _wait(lambda: second.feed.backfills_pending() == 0
                        and second.feed.stats().backfilled > 0, "pending gaps filled")
        finally:
            await second.stop()
        assert second.summary()["gaps_pending"] == 0
    rows = _stored_rows(db)
    _assert_no_gaps(rows)
    made = {c: [t.cum_volume for t in sim.history(c)] for c in codes}
    for c in codes:                               # stored == the simulator's history in the span
        have = [cum for cum, _, _ in rows[c]]
        assert [m for m in made[c] if have[0] <= m <= have[-1]] == have
    repo = Repository(db)
    assert repo.list_pending_gaps() == []
    repo.close()


async def test_pending_gap_of_a_past_business_day_is_recorded_unrecoverable(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="kis_desk")
    codes = default_watchlist()[:2]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    yesterday = today_kst() - timedelta(days=1)
    repo = Repository(db)
    repo.add_pending_gaps([PendingGap(codes[0], yesterday, 1000, None, 5000)])
    repo.close()
    async with Simulator(SimConfig(codes=codes, rate=100)) as sim:
        cfg = CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, codes=codes,
                              db_url=db, paths=_paths(tmp_path))
        collector = build_collector(cfg)
        errors: list[ErrorEvent] = []
        collector.bus.subscribe(ErrorEvent, errors.append)
        await collector.start()
        try:
            await _wait(lambda: collector.feed.all_live(), "live")
        finally:
            await collector.stop()
    summary = collector.summary()
    assert summary["gaps_unrecovered"] >= 1 and summary["gaps_pending"] == 0
    assert any("past business day" in e.message for e in errors)
    assert "cannot be back-filled" in caplog.text
    repo = Repository(db)
    assert repo.list_pending_gaps() == []
    assert repo.list_pending_gaps("unrecoverable") == [PendingGap(codes[0], yesterday, 1000, None, 5000)]
    repo.close()


async def test_a_pending_gap_waits_for_a_run_on_its_own_venue(tmp_path):
    """Each venue has its own cumulative-volume chain: a KRX gap is not chased on the integrated
    stream (its numbers mean nothing there) and stays pending; the next KRX run fills it."""
    codes = default_watchlist()[:2]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    krx_gap = PendingGap(codes[0], today_kst(), 0, None, None, "krx")
    repo = Repository(db)
    repo.add_pending_gaps([krx_gap])
    repo.close()
    async with Simulator(SimConfig(codes=codes, rate=100, always_open=True)) as sim:
        await asyncio.sleep(0.5)                  # KRX trades the gap stands for
        for venue in ("total", "krx"):
            collector = build_collector(CollectorConfig(
                env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, codes=codes, db_url=db,
                venue=venue, paths=_paths(tmp_path)))
            await collector.start()
            try:
                await _wait(lambda: collector.feed.all_live(), "live")
                await _wait(lambda: collector.feed.backfills_pending() == 0, "back-fills done")
                await asyncio.sleep(0.3)
            finally:
                await collector.stop()
            repo = Repository(db)
            left = repo.list_pending_gaps()
            first_krx = repo.first_trade(codes[0], today_kst(), "krx")
            repo.close()
            if venue == "total":
                assert left == [krx_gap]              # kept, not chased, not marked lost
                assert collector.summary()["gaps_unrecovered"] == 0
            else:
                assert left == []
                assert first_krx is not None and first_krx.cum_volume == first_krx.volume   # from the day's first trade
