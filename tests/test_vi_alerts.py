"""End to end with the simulator: a move completed by the single print that ends a VI auction
alerts once, marked with the VI; a halted symbol is known to be halted.

The detector's window (2 s) is shorter than the compressed VI pause (6 s), as 60 s is shorter
than KRX's 2 minutes: only the price that stood at the window's start makes the move visible.
The market-state watch probes a symbol quiet for 0.5 s, so it sees the VI while it runs (the
simulator's VI-status endpoint tells its kind, start and standard price)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

from kis_desk.config import UserPaths
from kis_desk.core.events import AlertEvent, MarketStateEvent, TicksEvent
from kis_desk.engine.collector import Collector, CollectorConfig
from kis_desk.market.symbols import default_watchlist
from kis_desk.sim import ViSpec
from kis_desk.sim.embedded import EmbeddedSimulator

VI = ViSpec(static_pct=50.0, dynamic_pct=3.0, dynamic_pct_other=3.0, dynamic_window=10.0,
            seconds=6.0, random_end=0.0)


def _paths(tmp_path: Path) -> UserPaths:
    return UserPaths(tmp_path / "data", tmp_path / "logs", tmp_path / "config")


async def _wait(predicate, what: str, limit: float = 30.0) -> None:
    """Safety net against hangs, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.02)


def _collector(tmp_path: Path, codes: list[str], nxt: bool = True, **kw) -> Collector:
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=200, sim_spikes=False,
                          db_url=f"sqlite:///{tmp_path / 'ticks.sqlite3'}", paths=_paths(tmp_path),
                          **kw)
    return Collector(cfg, exchange=EmbeddedSimulator(cfg.sim_rate, cfg.sim_keys, spikes=False, vi=VI,
                                                     nxt=nxt))


async def test_move_completed_by_a_vi_auction_print_alerts_once_with_vi(tmp_path):
    codes = default_watchlist()[:3]
    hot = codes[1]
    # KRX only: the feed follows H0STCNT0, and the simulator prints a VI that an NXT trade
    # started on NXT. One key: the VI's silence is one symbol's, never a whole socket's (a key
    # carrying only the symbol in VI would look stalled after 5 s and move it)
    collector = _collector(tmp_path, codes, nxt=False, window_seconds=2.0, sim_keys=1)
    alerts: list[AlertEvent] = []
    collector.bus.subscribe(AlertEvent, alerts.append)
    seen = []
    collector.bus.subscribe(TicksEvent, lambda e: seen.extend(t for t in e.ticks if t.stock_code == hot))
    states: list[MarketStateEvent] = []
    collector.bus.subscribe(MarketStateEvent, states.append)
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        watch = collector.market_watch.watch
        watch.config = replace(watch.config, quiet_after=0.5, interval=0.2, recheck=0.5)
        sim = collector.exchange.simulator
        await asyncio.sleep(2.5)                        # a window of calm trades first
        sim.jump(hot, 12.0, 1.0)
        await _wait(lambda: any(e.code == hot and not e.active for e in sim.vi_events()), "VI over")
        (ev,) = [e for e in sim.vi_events() if e.code == hot]
        printed = sim.history(hot)[ev.print_index]
        await _wait(lambda: any(a.stock_code == hot for a in alerts), "the alert")
        await asyncio.sleep(3.0)                        # trading resumed: nothing more to alert
    finally:
        await collector.stop()
    assert ev.kind == "dynamic" and ev.venue == "krx" and ev.end - ev.start >= VI.seconds - 1e-9
    mine = [a for a in alerts if a.stock_code == hot]
    assert len(mine) == 1, mine
    a = mine[0]
    assert a.vi in ("static_vi", "dynamic_vi") and a.direction == "up" and a.change_pct >= 5.0
    assert (a.trigger_price, a.trigger_cum_volume) == (printed.price, printed.cum_volume)
    # the base is the price that stood before the VI, more than a window before the print
    before = sim.history(hot)[ev.print_index - 1]
    assert (a.base_price, a.base_time) == (before.price, a.base_time)
    assert (a.trigger_time - a.base_time).total_seconds() > 2.0
    assert [a.alert_id for a in alerts if a.stock_code != hot] == []
    stored = {s.alert.alert_id: s.alert for s in collector.repository.alerts_on(a.trigger_time.date())}
    assert stored[a.alert_id].vi == a.vi
    # the auction print's Tick said so (HOUR_CLS_CODE C); the protocol's static/dynamic reading
    # is by the print's distance from VI_STND_PRC, so a +12 % print reads "static"
    (tick,) = [t for t in seen if t.cum_volume == printed.cum_volume]
    assert tick.state == a.vi and tick.source == "ws"
    # seen while it ran (inquire-price, then VI-status once), ended by the auction print
    mine = [e for e in states if e.stock_code == hot]
    assert [(e.state, e.source) for e in mine] == [("vi", "probe"), ("", "trade")], mine
    assert (mine[0].kind, mine[0].reference) == (ev.kind, ev.reference)
    assert mine[0].since.strftime("%H%M%S") == ev.start_time
    assert mine[1].since == tick.timestamp and watch.detail_errors == 0
    assert [e for e in states if e.stock_code != hot] == [] and watch.states() == {}


async def test_halted_symbol_is_known_halted_from_a_probe_and_trades_again(tmp_path):
    """During a halt nothing trades; the quiet symbol is asked about with ONE inquire-price
    (temp_stop_yn) per recheck, never with a registration; its next trade ends the state."""
    codes = default_watchlist()[:3]
    halted = codes[0]
    collector = _collector(tmp_path, codes)
    events: list[MarketStateEvent] = []
    collector.bus.subscribe(MarketStateEvent, events.append)
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        watch = collector.market_watch.watch
        watch.config = replace(watch.config, quiet_after=1.0, interval=0.2, recheck=0.5)
        sim = collector.exchange.simulator
        sim.faults.halt(halted, None)                   # until resumed
        await _wait(lambda: watch.states() == {halted: "halted"}, "halt seen")
        assert list(collector.market_states()) == [halted]          # what EngineHandle says
        probes_during_halt = watch.probes
        registrations = {code for s in collector.feed.sessions for code in s.acked}
        sim.faults.resume(halted)
        await _wait(lambda: watch.states() == {}, "trading again")
    finally:
        await collector.stop()
    mine = [(e.state, e.source) for e in events if e.stock_code == halted]
    assert mine == [("halted", "probe"), ("", "trade")]
    assert [e for e in events if e.stock_code != halted] == []      # busy symbols: never asked
    assert registrations == set(codes)                               # no market-status TR
    assert 1 <= probes_during_halt and watch.probe_errors == 0
