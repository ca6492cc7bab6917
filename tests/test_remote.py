"""A desktop attached to a collector on "another host": events over Redis, history from the DB."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kis_desk.config import UserPaths
from kis_desk.engine.collector import Collector, CollectorConfig
from kis_desk.wiring import build_collector
from kis_desk.core.events import AlertEvent, MarketStateEvent, SessionStateEvent, TicksEvent
from kis_desk.engine.remote import RemoteEngine
from kis_desk.market.symbols import default_watchlist
from test_collector import _wait

pytestmark = pytest.mark.redis


async def test_remote_engine_replays_the_collectors_trades_and_alerts(tmp_path, redis_url):
    codes = default_watchlist()[:4]
    db = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    alerts, ticks = f"kis:a:{uuid.uuid4().hex[:8]}", f"kis:t:{uuid.uuid4().hex[:8]}"
    collector = build_collector(CollectorConfig(
        env="sim", codes=codes, sim_rate=300, db_url=db, redis_url=redis_url, redis_channel=alerts,
        redis_tick_channel=ticks, paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c"),
        sim_spikes=False))   # the first alert must be the scripted jump's
    remote = RemoteEngine(redis_url, db, alert_channel=alerts, tick_channel=ticks)
    got_ticks: list = []
    got_alerts: list[AlertEvent] = []
    states: list[SessionStateEvent] = []
    remote.bus.subscribe(TicksEvent, lambda e: got_ticks.extend(e.ticks))
    remote.bus.subscribe(AlertEvent, got_alerts.append)
    remote.bus.subscribe(SessionStateEvent, states.append)
    await remote.start()
    await remote.set_watchlist(codes)
    await _wait(lambda: any(s.state == "live" for s in states), "remote attached")
    await collector.start()
    try:
        await _wait(lambda: len(got_ticks) > 100, "trades over Redis")
        collector.exchange.simulator.jump(codes[2], -8.0, 1.0)
        await _wait(lambda: got_alerts, "an alert over Redis")
    finally:
        await collector.stop()          # flushes the alert into the shared database
        history = await asyncio.to_thread(remote.repository.alerts_on,
                                          got_alerts[0].trigger_time.date()) if got_alerts else []
        await remote.stop()
    assert got_alerts[0].stock_code == codes[2] and got_alerts[0].direction == "down"
    assert got_alerts[0].alert_id in {s.alert.alert_id for s in history}
    assert {t.stock_code for t in got_ticks} <= set(codes)
    stored = collector.summary()["stored"]
    assert len(got_ticks) <= stored


async def test_halts_reach_attached_desktops_over_redis_also_after_they_began(tmp_path, redis_url):
    """A halt the collector's watch finds (inquire-price, no registration) shows on a desktop
    attached before it began (pub/sub) and on one attached during it (the state hash)."""
    from dataclasses import replace

    from kis_desk.sim.embedded import EmbeddedSimulator

    codes = default_watchlist()[:3]
    db = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    channel = f"kis:a:{uuid.uuid4().hex[:8]}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=200, sim_spikes=False, db_url=db,
                          redis_url=redis_url, redis_channel=channel,
                          paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c"))
    collector = Collector(cfg, exchange=EmbeddedSimulator(cfg.sim_rate, cfg.sim_keys, spikes=False))
    early = RemoteEngine(redis_url, db, alert_channel=channel, tick_channel=None)
    late = RemoteEngine(redis_url, db, alert_channel=channel, tick_channel=None)
    sent: list[MarketStateEvent] = []
    got: list[MarketStateEvent] = []
    got_late: list[MarketStateEvent] = []
    collector.bus.subscribe(MarketStateEvent, sent.append)
    early.bus.subscribe(MarketStateEvent, got.append)
    late.bus.subscribe(MarketStateEvent, got_late.append)
    await early.start()
    await collector.start()
    halted = codes[0]
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        watch = collector.market_watch.watch
        watch.config = replace(watch.config, quiet_after=1.0, interval=0.2, recheck=0.5)
        collector.exchange.simulator.faults.halt(halted, None)
        await _wait(lambda: list(early.market_states()) == [halted], "the halt on the desktop")
        await late.start()
        await _wait(lambda: list(late.market_states()) == [halted], "the halt read from the hash")
        collector.exchange.simulator.faults.resume(halted)
        await _wait(lambda: early.market_states() == {} == late.market_states(), "trading again")
    finally:
        await collector.stop()
        await early.stop()
        await late.stop()
    assert [(e.stock_code, e.state, e.source) for e in sent] == [(halted, "halted", "probe"),
                                                                  (halted, "", "trade")]
    assert got == sent                      # the very events, through JSON and Redis
    assert got_late == sent


async def test_remote_engine_survives_an_unreachable_redis(tmp_path):
    remote = RemoteEngine("redis://127.0.0.1:1/0", f"sqlite:///{tmp_path / 'x.sqlite3'}")
    states: list[SessionStateEvent] = []
    remote.bus.subscribe(SessionStateEvent, states.append)
    await remote.start()
    await _wait(lambda: any(s.state == "backoff" for s in states), "backoff reported")
    await remote.stop()
    assert states[-1].state == "stopped"


async def test_attached_desktop_shows_the_phase_of_the_venue_its_trades_come_from():
    """At 19:00 KST on a weekday KRX is closed and Nextrade's after-market trades: the status
    bar follows the venue the collectors' trades carry, not this desktop's own setting."""
    from datetime import datetime

    from kis_desk.core.events import MarketPhaseEvent
    from kis_desk.core.ticks import Tick
    from kis_desk.protocol.records import KST

    evening = datetime(2026, 12, 2, 19, 0, tzinfo=KST)           # a Wednesday
    remote = RemoteEngine("redis://unused", "sqlite://", venue="krx", clock=lambda: evening)
    phases: list[MarketPhaseEvent] = []
    remote.bus.subscribe(MarketPhaseEvent, phases.append)
    task = asyncio.create_task(remote._report_phases())
    try:
        await _wait(lambda: len(phases) == 1, "KRX's phase")
        krx = phases[0].phase
        remote._deliver_event(TicksEvent((Tick("005930", evening, 70000, 1, 1, None, None, None,
                                               0.0, "ws", "nxt"),)))
        await _wait(lambda: len(phases) == 2, "NXT's phase", limit=5)
    finally:
        task.cancel()
    assert krx == "closed" and remote.venue == "nxt"
    assert phases[1].phase != "closed"
