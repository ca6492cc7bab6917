"""Alert rules applied live: overrides (symbol, watchlist), price levels (once), mutes.

Engine side: MoveDetector.reconfigure, PriceLevelWatcher, AlertRules (JSON round trip), and the
real collector on the built-in simulator (Collector.set_alert_rules, no restart).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta

from kis_desk.core.events import AlertEvent
from kis_desk.core.ticks import Tick
from kis_desk.engine.alert_rules import SETTING_KEY, AlertRules
from kis_desk.engine.detector import MoveDetector
from kis_desk.engine.price_levels import PriceLevelWatcher
from kis_desk.market.symbols import default_watchlist
from kis_desk.protocol.records import KST
from kis_desk.wiring import build_collector
from kis_desk.engine.collector import CollectorConfig
from test_collector import _paths, _wait

T0 = datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)


def tick(code: str, seconds: float, price: int, cum: int) -> Tick:
    return Tick(code, T0 + timedelta(seconds=seconds), price, 1, cum, None, None, None, 0.0, "ws")


def test_reconfigure_applies_an_override_live_and_keeps_other_symbols_windows():
    d = MoveDetector(5.0, 60.0)
    assert d.process([tick("A", 0, 10_000, 1), tick("B", 0, 10_000, 1), tick("A", 1, 10_150, 2)]) == []
    d.reconfigure(5.0, 60.0, {"A": (1.0, 60.0)})
    assert d.params_for("A") == (1.0, 60.0) and d.params_for("B") == (5.0, 60.0)
    # A's window is rebuilt from its history under the new rule (the move under way when the
    # rule changed does not alert): the fall 10,150 → 10,000 after the change and the rise back
    # are each ≥ 1 % and alert at the override
    down, up = d.process([tick("A", 2, 10_000, 3), tick("A", 3, 10_150, 4)])
    assert (down.stock_code, down.direction, down.threshold_pct) == ("A", "down", 1.0)
    assert (up.stock_code, up.change_pct, up.threshold_pct, up.step) == ("A", 1.5, 1.0, 1)
    # B kept its window (base 10,000 from before the change): +5 % alerts at the default
    [b] = d.process([tick("B", 4, 10_500, 2)])
    assert (b.stock_code, b.base_price, b.threshold_pct) == ("B", 10_000, 5.0)
    # a new default applies to every symbol without an override
    d.reconfigure(2.0, 30.0, {"A": (1.0, 60.0)})
    assert d.params_for("B") == (2.0, 30.0) and d.params_for("A") == (1.0, 60.0)


def test_price_level_fires_once_and_is_removed():
    w = PriceLevelWatcher(names=lambda c: "삼성전자")
    w.set_levels({"005930": (75_000, 68_000), "000660": (None, 100_000)})
    assert w.process([tick("005930", 0, 74_900, 1)]) == []
    [up] = w.process([tick("005930", 1, 75_000, 2), tick("005930", 2, 75_100, 3)])
    assert (up.kind, up.direction, up.base_price, up.trigger_price, up.trigger_cum_volume) == (
        "level", "up", 75_000, 75_000, 2)
    assert up.alert_id == "005930:20240102:up:L75000:2" and up.stock_name == "삼성전자"
    assert w.levels() == {"005930": (None, 68_000), "000660": (None, 100_000)}
    assert w.process([tick("005930", 3, 76_000, 4)]) == []       # once
    [down] = w.process([tick("005930", 4, 67_900, 5)])
    assert (down.direction, down.change_pct) == ("down", -0.15)
    assert "005930" not in w.levels()
    # the JSON carries the kind; a move detector's seed does not mistake it for a move
    assert json.loads(down.to_json())["kind"] == "level"
    assert MoveDetector().seed([down.alert_id]) == 0


def test_rules_json_round_trip_precedence_and_mutes():
    rules = AlertRules(5.0, 60.0, symbols={"005930": (1.0, 30.0)},
                       watchlists={"반도체": (2.0, 60.0), "가": (3.0, 60.0)},
                       levels={"000660": (200_000, None)}, muted_codes=frozenset({"373220"}))
    again = AlertRules.from_json(rules.to_json(), 5.0, 60.0)
    assert again == rules
    assert AlertRules.from_json(rules.to_json()).threshold_pct == 5.0
    lists = {"반도체": ["005930", "000660"], "가": ["000660", "035420"]}
    assert rules.effective_overrides(lambda n: lists[n]) == {
        "005930": (1.0, 30.0), "000660": (3.0, 60.0), "035420": (3.0, 60.0)}
    assert rules.is_muted("373220") and not rules.is_muted("005930")
    now = time.time()
    muted = rules.mute_all(10, now=now)
    assert muted.is_muted("005930", now=now + 599) and not muted.is_muted("005930", now=now + 601)
    assert not muted.mute_all(0).is_muted("005930")
    assert rules.without_level("000660", "up").levels == {}
    # a bad entry is dropped, the others kept
    bad = json.dumps({"symbols": {"A": [1, 60], "B": ["x", 1], "C": [0, 60]}, "levels": {"D": [None, None]}})
    assert AlertRules.from_json(bad, 5.0, 60.0).symbols == {"A": (1.0, 60.0)}
    assert AlertRules.from_json("not json", 5.0, 60.0) == AlertRules(5.0, 60.0)


async def test_collector_applies_rules_live_levels_once_and_mutes(tmp_path, redis_url):
    import uuid

    import redis.asyncio as aioredis

    codes = default_watchlist()[:5]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    key = f"kis:test:rules:{uuid.uuid4().hex[:8]}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=200, db_url=db, paths=_paths(tmp_path),
                          redis_url=redis_url, redis_channel=key, redis_stream=key + ":stream",
                          sim_spikes=False)           # no demo spikes: only the scripted moves
    collector = build_collector(cfg)
    alerts: list[AlertEvent] = []
    last: dict[str, int] = {}
    collector.bus.subscribe(AlertEvent, alerts.append)
    from kis_desk.core.events import TicksEvent
    collector.bus.subscribe(TicksEvent, lambda e: last.update({t.stock_code: t.price for t in e.ticks}))
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live() and all(c in last for c in codes), "all live")
        over, level_code, muted = codes[1], codes[2], codes[3]
        target = int(last[level_code] * 1.02)
        rules = AlertRules(cfg.threshold_pct, cfg.window_seconds,
                           symbols={over: (1.0, 60.0), muted: (1.0, 60.0)},
                           levels={level_code: (target, None)}, muted_codes=frozenset({muted}))
        await collector.set_alert_rules(rules)        # live: no restart
        sim = collector.exchange.simulator
        sim.jump(over, 1.5, 1.0)
        sim.jump(level_code, 4.0, 1.0)
        sim.jump(muted, 1.5, 1.0)
        await _wait(lambda: {over, muted} <= {a.stock_code for a in alerts if a.kind == "move"}
                    and any(a.kind == "level" for a in alerts), "override, level and muted alerts")
        await asyncio.sleep(1.0)                      # more trades above the level: still once
    finally:
        await collector.stop()
    moved = [a for a in alerts if a.stock_code == over and a.kind == "move"]
    assert moved and moved[0].threshold_pct == 1.0 and moved[0].change_pct >= 1.0 and not moved[0].muted
    levels = [a for a in alerts if a.kind == "level"]
    assert len(levels) == 1 and levels[0].stock_code == level_code and levels[0].trigger_price >= target
    quiet = [a for a in alerts if a.stock_code == muted]
    assert quiet and all(a.muted for a in quiet)
    # stored (muted ones too), the level with its kind; the fired level left the stored rules
    stored = {s.alert.alert_id: s.alert for s in collector.repository.alerts_between(
        levels[0].trigger_time.date(), levels[0].trigger_time.date())}
    assert {a.alert_id for a in alerts} <= set(stored)
    assert stored[levels[0].alert_id].kind == "level"
    from kis_desk.engine.storage import Repository
    repo = Repository(db)
    try:
        kept = AlertRules.from_json(repo.get_setting(SETTING_KEY), 5.0, 60.0)
    finally:
        repo.close()
    assert kept.levels == {} and kept.symbols == rules.symbols and kept.muted_codes == {muted}
    assert replace(kept, levels=rules.levels) == rules
    # the Redis stream is exact: one message per alert id, muted ones included (and marked)
    client = aioredis.from_url(redis_url)
    try:
        entries = await client.xrange(key + ":stream")
        await client.delete(key + ":stream")
    finally:
        await client.aclose()
    streamed = [AlertEvent.from_dict(json.loads(fields[b"alert"])) for _, fields in entries]
    assert [a.alert_id for a in streamed] == [a.alert_id for a in alerts]
    assert {a.alert_id for a in streamed if a.muted} == {a.alert_id for a in quiet}


def test_a_symbol_muted_for_minutes_runs_out_on_time_and_its_end_is_kept_in_json():
    now = 1_800_000_000.0
    rules = AlertRules(5.0, 60.0).mute_code("005930", minutes=30, now=now).mute_code("000660", now=now)
    assert rules.muted_for == {"005930": now + 1800} and rules.muted_codes == {"000660"}
    assert rules.is_muted("005930", now=now + 1799) and not rules.is_muted("005930", now=now + 1801)
    assert rules.code_muted_until("000660", now=now) == float("inf")
    assert rules.code_muted_until("035420", now=now) is None
    again = AlertRules.from_json(rules.to_json(), 5.0, 60.0, now=now + 60)
    assert again == rules
    # read again after the end: the ended mutes are gone, the one until unmuted stays
    later = AlertRules.from_json(rules.mute_all(10, now=now).to_json(), 5.0, 60.0, now=now + 3600)
    assert later.muted_for == {} and later.muted_until == 0.0 and later.muted_codes == {"000660"}
    # muting again replaces the kind; unmuting ends either
    assert rules.mute_code("005930", now=now).muted_for == {}
    assert "005930" in rules.mute_code("005930", now=now).muted_codes
    off = rules.mute_code("005930", False, now=now).mute_code("000660", False, now=now)
    assert off.muted_for == {} and off.muted_codes == frozenset()
    bad = json.dumps({"muted_for": {"A": "x", "B": None, "C": now + 10, "D": "inf"}})
    assert AlertRules.from_json(bad, 5.0, 60.0, now=now).muted_for == {"C": now + 10}


def _quiet_config(tmp_path, n: int) -> tuple[list[str], CollectorConfig, str]:
    """``n`` symbols on a slow simulator without spikes, one SQLite file: (codes, config, url)."""
    codes = default_watchlist()[:n]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    return codes, CollectorConfig(env="sim", codes=codes, sim_rate=50, db_url=db,
                                  paths=_paths(tmp_path), sim_spikes=False), db


async def test_mutes_survive_a_restart_with_their_ends(tmp_path):
    """Set through the running collector (as the desktop does), read back by the next start
    on the same database: the symbol muted for 30 minutes, the one until unmuted and the mute
    of everything are all in force again, with the same ends."""
    codes, cfg, db = _quiet_config(tmp_path, 3)
    first = build_collector(cfg)
    await first.start()
    try:
        rules = first.alert_rules.mute_code(codes[0], minutes=30).mute_code(codes[1]).mute_all(5)
        await first.set_alert_rules(rules)
    finally:
        await first.stop()
    second = build_collector(cfg)
    await second.start()
    try:
        kept = second.alert_rules
        assert kept.muted_for == rules.muted_for and kept.muted_codes == {codes[1]}
        assert kept.muted_until == rules.muted_until
        assert all(kept.is_muted(c) for c in codes)
        assert not kept.is_muted(codes[0], now=rules.muted_for[codes[0]] + 1)
        assert kept.is_muted(codes[1], now=rules.muted_for[codes[0]] + 1)
    finally:
        await second.stop()


async def test_rules_set_before_the_start_are_applied_and_stored_by_it(tmp_path):
    codes, cfg, db = _quiet_config(tmp_path, 2)
    first = build_collector(cfg)
    await first.start()
    await first.set_alert_rules(first.alert_rules.mute_code(codes[0]))
    await first.stop()
    second = build_collector(cfg)
    early = second.alert_rules.mute_code(codes[1], minutes=30)      # e.g. from a menu while starting
    await second.set_alert_rules(early)
    await second.start()
    await second.stop()
    from kis_desk.engine.storage import Repository
    repo = Repository(db)
    try:
        assert AlertRules.from_json(repo.get_setting(SETTING_KEY), 5.0, 60.0) == early
    finally:
        repo.close()
