"""The issue's scenario end to end, at the production feed settings (no compressed time):
50 symbols at 400 trades/s on two app keys, one key refused with OPSP8996 for 15 s while the
other has free registrations. Every symbol keeps fresh data (≤ 10 s without any) and the
database ends up holding exactly the simulator's history."""

from __future__ import annotations

import asyncio
import time

from kis_desk.engine.collector import CollectorConfig
from kis_desk.market.symbols import default_watchlist
from kis_desk.wiring import build_collector
from support_alerts import CollectorWatch
from test_collector import _assert_no_gaps, _paths, _stored_rows, _wait

OUTAGE = 15.0


async def test_one_key_stuck_collector_keeps_every_symbol_fed_and_stores_everything(tmp_path):
    codes = default_watchlist()[:50]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    collector = build_collector(CollectorConfig(env="sim", codes=codes, sim_rate=400, sim_keys=2,
                                                db_url=db, paths=_paths(tmp_path)))
    watch = CollectorWatch(collector.bus)
    await collector.start()
    sim = collector.exchange.simulator
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        sim.faults.reject_sessions(OUTAGE, app_key="SIMKEY02")
        sim.faults.drop_all()
        await asyncio.sleep(OUTAGE)
        t1 = time.monotonic()
        during = collector.feed.stats()
        await _wait(lambda: collector.feed.stats().keys_down == (), "key2 back", limit=60)
        await _wait(lambda: collector.feed.all_live() and collector.feed.backfills_pending() == 0,
                    "caught up", limit=60)
        sim.faults.stall(None)                 # quiesce: nothing more is sent
        await asyncio.sleep(0.5)
    finally:
        await collector.stop()
    summary = collector.summary()
    worst, who = watch.worst_gap(codes, t0, t1)
    rows = _stored_rows(db)
    _assert_no_gaps(rows)
    made = stored = 0
    for code in codes:
        have = [cum for cum, _, _ in rows[code]]
        hist = [t.cum_volume for t in sim.history(code) if have[0] <= t.cum_volume <= have[-1]]
        assert hist == have, code
        made += len(hist)
        stored += len(have)
    print(f"\ncollector, one key OPSP8996 for {OUTAGE:.0f} s at production settings: worst per-symbol "
          f"data gap {worst:.2f} s ({who}); feed worst_gap_s {summary['worst_gap_s']:.2f}; "
          f"made {made} stored {stored}; keys down during: {during.keys_down}")
    assert during.keys_down == ("key2",) and during.symbols_dark == 0
    assert worst <= 10.0, (worst, who)
    assert summary["worst_gap_s"] <= 10.0 and summary["symbols_dark"] == 0
    assert summary["gaps_unrecovered"] == 0 and summary["gaps_pending"] == 0
    assert made == stored == summary["stored"]
