"""Issue 10 end to end: every ±5 % move alerted — late if need be, exactly once — through the
real Collector on the built-in simulator while keys are stuck, rejected or stalled, and across
a clean stop mid back-fill.

Every test counts three things: trades the simulator made (its history) vs trades stored,
moves made (``sim.moves()``, scripted jumps, demo spikes off) vs alerts raised (bus
``AlertEvent``s, alerts table, Redis when the ``redis_url`` fixture is used) — the brute-force
reference of tests/test_detector.py run on the simulator's own tape decides how many alerts the
market really called for — and the longest time any symbol had no fresh data.

Compressed time. Failover, REST polling and the stall watchdog run at their production
settings (failover 3 s, stall floor 10 s, 19 REST calls/s per key: the 10 s bounds below are
real-time bounds). What is compressed is the length of the outages and, where the test is about
an outage outlasting the alert window, the window: a 60 s OPSP8996 outage is 12 s here (scale
1/5; long enough for the failover and the polling to have taken over), a 70 s stall against a
60 s window is an 18 s stall against a 15 s window (scale 1/4). The OPSP8996 wait of a refused
session (20 s in production) is scaled with the outage (4 s), so the key comes back within the
test.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest

from kis_desk.core.events import SubscriptionPlanEvent
from kis_desk.engine.collector import Collector, CollectorConfig
from kis_desk.feed.config import FeedConfig
from kis_desk.feed.session import SessionConfig
from kis_desk.market.symbols import default_watchlist
from kis_desk.wiring import build_collector
from support_alerts import (
    CollectorWatch, per_code, redis_stream_alerts, reference_alerts, stored_alert_rows,
)
from test_collector import _assert_no_gaps, _paths, _stored_rows, _wait

OUTAGE_SCALE = 0.2                 # 60 s OPSP8996 outage → 12 s
OUTAGE = 60.0 * OUTAGE_SCALE
STALL_SCALE = 0.25                 # 70 s stall against a 60 s window → 17.5 s against 15 s
STALL = 70.0 * STALL_SCALE
STALL_WINDOW = 60.0 * STALL_SCALE
JUMP_PCT = 8.0
FEED = FeedConfig(session=SessionConfig(in_use_wait=20.0 * OUTAGE_SCALE))


def _config(tmp_path, codes, **kw) -> CollectorConfig:
    kw.setdefault("sim_rate", 400)
    kw.setdefault("feed", FEED)
    return CollectorConfig(env="sim", codes=codes, sim_keys=2, sim_spikes=False,
                           db_url=f"sqlite:///{tmp_path / 'ticks.sqlite3'}", paths=_paths(tmp_path),
                           **kw)


def _assert_stored_is_history(collector: Collector, sim=None) -> tuple[int, int]:
    """Stored trades == the simulator's history in the span held, per symbol; (made, stored)."""
    rows = _stored_rows(collector.config.db_url)
    _assert_no_gaps(rows)
    sim = sim or collector.exchange.simulator
    made = stored = 0
    for code in collector.codes:
        have = [cum for cum, _, _ in rows[code]]
        hist = [t.cum_volume for t in sim.history(code) if have[0] <= t.cum_volume <= have[-1]]
        assert hist == have, code
        made += len(hist)
        stored += len(have)
    return made, stored


def _assert_alerts_complete(collector: Collector, watch: CollectorWatch, jumped: list[str],
                            sim=None) -> list:
    """Moves made vs alerts raised: one alert per jump; the reference on the simulator's tape
    finds the same number per symbol and direction; bus == alerts table. Returns the alerts."""
    sim = sim or collector.exchange.simulator
    moves = [m for m in sim.moves() if m.kind == "jump"]
    assert sorted(m.code for m in moves) == sorted(jumped)
    cfg = collector.config
    candidates = set(jumped) | {a.stock_code for a in watch.alerts}
    expected = reference_alerts(sim, sorted(candidates), cfg.threshold_pct, cfg.window_seconds)
    raised = [a.alert_id for a in watch.alerts]
    assert per_code(raised) == per_code(e[0] for e in expected) == {
        f"{m.code}:{'up' if m.pct > 0 else 'down'}": 1 for m in moves}, (raised, expected)
    rows = stored_alert_rows(cfg.db_url)
    assert sorted(r["alert_id"] for r in rows) == sorted(raised)
    by_id = {r["alert_id"]: r for r in rows}
    for a in watch.alerts:
        r = by_id[a.alert_id]
        assert (bool(r["late"]), r["delay_s"], r["source"]) == (a.late, a.delay_s, a.source)
    return watch.alerts


async def _stop_quietly(collector: Collector) -> None:
    collector.exchange.simulator.faults.stall(None)     # nothing more is sent: counts settle
    await asyncio.sleep(0.5)
    await collector.stop()


async def test_one_key_stuck_60s_no_symbol_dark_over_10s_and_a_jump_is_alerted_within_10s(tmp_path):
    codes = default_watchlist()[:50]
    collector = build_collector(_config(tmp_path, codes))
    watch = CollectorWatch(collector.bus)
    plans: list[SubscriptionPlanEvent] = []
    collector.bus.subscribe(SubscriptionPlanEvent, plans.append)
    await collector.start()
    sim = collector.exchange.simulator
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        key2_codes = list(plans[-1].live["key2"])
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        sim.faults.reject_sessions(OUTAGE, app_key="SIMKEY02")
        sim.faults.drop(app_key="SIMKEY02")
        await asyncio.sleep(OUTAGE / 2)           # failover done: the jump is inside the outage
        target = key2_codes[0]
        jumped_at = time.time()
        sim.jump(target, JUMP_PCT, 1.0)
        await _wait(lambda: watch.alerts_of(target), "the jump's alert", limit=30)
        await asyncio.sleep(OUTAGE - (time.monotonic() - t0))
        t1 = time.monotonic()
        during = collector.feed.stats()
        await _wait(lambda: collector.feed.stats().keys_down == (), "key2 back", limit=60)
        await _wait(lambda: collector.feed.all_live() and collector.feed.backfills_pending() == 0,
                    "caught up", limit=60)
    finally:
        await _stop_quietly(collector)
    worst, who = watch.worst_gap(codes, t0, t1)
    made, stored = _assert_stored_is_history(collector)
    alerts = _assert_alerts_complete(collector, watch, [target])
    alert = alerts[0]
    since_jump = alert.detected_at.timestamp() - jumped_at
    summary = collector.summary()
    print(f"\none key OPSP8996 for {OUTAGE:.0f} s (60 s scaled 1/5): worst per-symbol data gap "
          f"{worst:.2f} s ({who}); jump on {target} (key2's) alerted {alert.delay_s:.1f} s after its "
          f"trigger trade ({since_jump:.1f} s after the jump began), source {alert.source}, "
          f"late {alert.late}; made {made} stored {stored}; moves 1 alerts {len(alerts)}")
    assert during.keys_down == ("key2",) and during.symbols_dark == 0
    assert worst <= 10.0, (worst, who)
    assert alert.delay_s <= 10.0 and since_jump <= 10.0 + 1.0   # +1: the jump's own duration
    assert alert.source in ("ws", "poll")
    assert made == stored == summary["stored"]
    assert summary["symbols_dark"] == 0 and summary["worst_gap_s"] <= 10.0
    assert summary["alerts"] == 1 and summary["alerts_late"] == int(alert.late)


async def test_both_keys_stuck_every_symbol_polled_and_a_jump_is_alerted(tmp_path):
    codes = default_watchlist()[:50]
    collector = build_collector(_config(tmp_path, codes))
    watch = CollectorWatch(collector.bus)
    await collector.start()
    sim = collector.exchange.simulator
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        await asyncio.sleep(1.0)
        t0 = time.monotonic()
        sim.faults.reject_sessions(OUTAGE)
        sim.faults.drop_all()
        await _wait(lambda: len(collector.feed.stats().keys_down) == 2, "both keys down", limit=20)
        polled_before = collector.feed.stats().polled
        target = codes[7]
        jumped_at = time.time()
        sim.jump(target, -JUMP_PCT, 1.0)
        await _wait(lambda: watch.alerts_of(target), "the jump's alert", limit=30)
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - t0)))
        t1 = time.monotonic()
        states = collector.feed.symbol_states()
        polled_during = collector.feed.stats().polled - polled_before
        await _wait(lambda: collector.feed.stats().keys_down == (), "keys back", limit=60)
        await _wait(lambda: collector.feed.all_live() and collector.feed.backfills_pending() == 0,
                    "caught up", limit=60)
    finally:
        await _stop_quietly(collector)
    worst, who = watch.worst_gap(codes, t0, t1)
    made, stored = _assert_stored_is_history(collector)
    alert = _assert_alerts_complete(collector, watch, [target])[0]
    since_jump = alert.detected_at.timestamp() - jumped_at
    print(f"\nboth keys OPSP8996 for {OUTAGE:.0f} s: {list(states.values()).count('polled')} of 50 "
          f"polled ({polled_during} trades polled meanwhile); worst per-symbol data gap {worst:.2f} s "
          f"({who}); jump on {target} alerted {'LATE' if alert.late else 'on time'}: "
          f"{alert.delay_s:.1f} s after its trigger trade ({since_jump:.1f} s after the jump "
          f"began), source {alert.source}; made {made} stored {stored}; moves 1 alerts 1")
    assert set(states.values()) == {"polled"} and polled_during > 0
    assert alert.direction == "down" and alert.source in ("poll", "backfill")
    assert worst <= 10.0, (worst, who)          # REST polling at 19 calls/s per key: 25 symbols each
    assert made == stored


async def test_one_key_rejected_its_symbols_keep_moving_and_a_jump_is_alerted(tmp_path):
    codes = default_watchlist()[:50]
    collector = build_collector(_config(tmp_path, codes))
    watch = CollectorWatch(collector.bus)
    plans: list[SubscriptionPlanEvent] = []
    collector.bus.subscribe(SubscriptionPlanEvent, plans.append)
    await collector.start()
    sim = collector.exchange.simulator
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        key2_codes = list(plans[-1].live["key2"])
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        sim.faults.reject_key("SIMKEY02")             # wrong key from now on: approval, token, REST
        sim.faults.drop(app_key="SIMKEY02")
        await _wait(lambda: collector.feed.stats().keys_down == ("key2",), "key2 down", limit=20)
        target = key2_codes[-1]
        sim.jump(target, JUMP_PCT, 1.0)
        await _wait(lambda: watch.alerts_of(target), "the jump's alert", limit=30)
        await asyncio.sleep(3.0)
        t1 = time.monotonic()
        st = collector.feed.stats()
        states = collector.feed.symbol_states()
        moved = {c: len(watch.fresh.get(c, ())) for c in key2_codes}
        # the drop's missed trades are back-filled with key1's REST budget (key2's is refused);
        # key2 itself retries rarely (credential_wait: the user must fix the key)
        await _wait(lambda: collector.feed.backfills_pending() == 0, "caught up", limit=60)
    finally:
        await _stop_quietly(collector)
    worst, who = watch.worst_gap(codes, t0, t1)
    made, stored = _assert_stored_is_history(collector)
    alert = _assert_alerts_complete(collector, watch, [target])[0]
    live = list(states.values()).count("live")
    polled = list(states.values()).count("polled")
    print(f"\nkey2 rejected: {live} live on key1, {polled} polled; worst per-symbol data gap "
          f"{worst:.2f} s ({who}); jump on {target} alerted {alert.delay_s:.1f} s after its "
          f"trigger trade, source {alert.source}, late {alert.late}; made {made} stored {stored}")
    assert st.keys_down == ("key2",) and st.symbols_dark == 0
    assert live == 41 and polled == 9
    assert all(moved[c] > 0 for c in key2_codes)   # its symbols kept getting fresh data
    assert worst <= 10.0, (worst, who)
    assert made == stored


def _redis_names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return dict(redis_channel=f"kis:test:alerts:{tag}", redis_stream=f"kis:test:alerts-stream:{tag}")


@pytest.mark.redis
async def test_jump_inside_a_stall_longer_than_the_window_is_alerted_once_late(tmp_path, redis_url):
    """The issue's 70 s stall against a 60 s window, scaled 1/4 (17.5 s against 15 s): the
    outage outlasts the window, so the move can only be found in the trades polled or
    back-filled for the silent time — never from the price after the stall. The stall watchdog
    runs at production settings (floor 10 s: declared ~10 s in, polled from ~5 s)."""
    codes = default_watchlist()[:10]
    names = _redis_names()
    # 200 trades/s: the busiest of the 10 symbols then trades ~50 times a second, half a REST
    # page (100). At 400/s it traded ~100/s, so on a loaded machine, where the polls during the
    # stall come further apart, a second could hold more trades than one page can reach: a real
    # KIS limit, reported as unrecoverable (correctly), but not what this test is about.
    collector = build_collector(_config(tmp_path, codes, window_seconds=STALL_WINDOW, sim_rate=200,
                                        redis_url=redis_url, **names))
    watch = CollectorWatch(collector.bus)
    await collector.start()
    sim = collector.exchange.simulator
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        await asyncio.sleep(1.5)
        target = codes[3]
        t0 = time.monotonic()
        sim.faults.stall(STALL)
        # REST answers 1 s slower meanwhile: the poll that finds the jump then lands past the
        # 5 s "late" bound by construction (suspected at half the 10 s stall floor, + 1 s);
        # without it the jump is found ~5-6 s after its trade, right at the bound (benchmark)
        sim.faults.slow_rest(1.0, STALL)
        sim.jump(target, JUMP_PCT, 0.2)
        await _wait(lambda: collector.feed.stats().stalls >= 1, "stall declared", limit=30)
        detected = time.monotonic() - t0
        await _wait(lambda: not sim.faults.stalled, "stall over", limit=30)
        await _wait(lambda: collector.feed.all_live() and collector.feed.backfills_pending() == 0,
                    "caught up", limit=60)
        await asyncio.sleep(2.0)                     # later live trades: still exactly one alert
        t1 = time.monotonic()
    finally:
        await _stop_quietly(collector)
    worst, who = watch.worst_gap(codes, t0, t1)
    summary = collector.summary()
    made, stored = _assert_stored_is_history(collector)
    alert = _assert_alerts_complete(collector, watch, [target])[0]
    on_redis = await redis_stream_alerts(redis_url, names["redis_stream"])
    print(f"\nstall of {STALL:.1f} s, window {STALL_WINDOW:.0f} s (70/60 s scaled 1/4): declared "
          f"{detected:.1f} s after the fault; jump on {target} alerted once, late {alert.late}, "
          f"{alert.delay_s:.1f} s after its trigger trade, source {alert.source}; made {made} "
          f"stored {stored}; Redis got {len(on_redis)}; summary alerts_late {summary['alerts_late']} "
          f"worst_gap_s {summary['worst_gap_s']:.2f} (measured {worst:.2f} s, {who})")
    assert alert.late is True and alert.delay_s > 0 and alert.source in ("backfill", "poll")
    assert [a["alert_id"] for a in on_redis] == [alert.alert_id]
    assert {k: on_redis[0][k] for k in ("late", "delay_s", "source")} == {
        "late": True, "delay_s": alert.delay_s, "source": alert.source}
    assert made == stored == summary["stored"]
    # the summary of such a run (item 6 of the e2e brief)
    assert summary["alerts"] == 1 and summary["alerts_late"] == 1
    assert summary["alerts_delivered"] == len(on_redis) == 1 and summary["alerts_undelivered"] == 0
    assert summary["symbols_dark"] == 0 and summary["gaps_pending"] == 0
    assert summary["gaps_unrecovered"] == 0
    # the feed's worst gap is the measured one (its monitor ticks every 0.5 s; a poll's rows
    # reach the bus a moment after the poll counts as a source)
    assert abs(summary["worst_gap_s"] - worst) <= 1.0, (summary["worst_gap_s"], worst, who)


@pytest.mark.redis
async def test_clean_stop_mid_backfill_pending_gap_filled_next_run_and_its_move_alerted_once(
        tmp_path, redis_url):
    """Run 1 stops while the back-fill of a hole (REST failing) is under way: the hole is
    recorded as a pending gap. A +8 % jump happened inside the hole; run 1 saw the higher price
    live and alerted it. Run 2 (same day, same market: one simulator across both runs)
    back-fills the pending gap first and finds the move's real trigger trade there — the same
    move, already alerted: no second alert. Redis got exactly what the summaries say.

    Was intermittent under load, two causes: (1) run 2's live trades came before the back-fill,
    whose late trades the detector merged one by one (and the back-fill delivered in pieces of
    500), so a piece with the move's base but not its start made a live trade look like a new
    crossing — now late trades of a batch are judged together and a back-fill is one delivery
    (tests/test_detector.py); (2) run 1 stopped right after its symbols came back live and its
    summary said them dark — the feed's states are now refreshed at stop (tests/test_feed_start.py)."""
    from kis_desk.engine.storage import Repository
    from kis_desk.sim import SimConfig, Simulator

    codes = default_watchlist()[:4]
    target = codes[1]
    names = _redis_names()
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    async with Simulator(SimConfig(codes=codes, rate=200, page_size=400)) as sim:
        def config() -> CollectorConfig:
            return CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, codes=codes,
                                   db_url=db, paths=_paths(tmp_path), feed=FEED,
                                   redis_url=redis_url, **names)

        first = build_collector(config())
        watch1 = CollectorWatch(first.bus)
        await first.start()
        try:
            await _wait(lambda: first.feed.all_live(), "live")
            await asyncio.sleep(1.0)
            sim.faults.fail_rest(None)            # every back-fill and poll fails from now on
            sim.faults.drop_all()
            sim.jump(target, JUMP_PCT, 0.1)       # inside the hole the drop leaves
            await asyncio.sleep(1.0)
            await _wait(lambda: first.feed.all_live(), "reconnected")
            await _wait(lambda: first.feed.backfills_pending() >= len(codes), "back-fills under way")
            await _wait(lambda: watch1.alerts_of(target), "the jump's alert from live trades")
        finally:
            await first.stop()                    # bounded drain, then the rest is recorded
        s1 = first.summary()
        sim.faults.clear()
        repo = Repository(db)
        pending = repo.list_pending_gaps()
        repo.close()

        second = build_collector(config())
        watch2 = CollectorWatch(second.bus)
        await second.start()
        try:
            await _wait(lambda: second.feed.all_live(), "live")
            await _wait(lambda: second.feed.backfills_pending() == 0
                        and second.feed.stats().backfilled > 0, "pending gaps filled")
            await asyncio.sleep(1.0)
        finally:
            sim.faults.stall(None)
            await asyncio.sleep(0.3)
            await second.stop()
        s2 = second.summary()
    on_redis = await redis_stream_alerts(redis_url, names["redis_stream"])
    made, stored = _assert_stored_is_history(second, sim)
    expected = reference_alerts(sim, codes, 5.0, 60.0)
    assert [e[0].split(":")[:3] for e in expected] == [[target, expected[0][0].split(":")[1], "up"]]
    trigger_cum = int(expected[0][0].split(":")[-1])
    gap = next(g for g in pending if g.code == target)
    raised = watch1.alerts + watch2.alerts
    rows = stored_alert_rows(db)
    print(f"\nclean stop mid back-fill: {len(pending)} pending gap(s) recorded ({s1['gaps_pending']} "
          f"in the summary), filled by run 2 ({s2['backfilled']} back-filled); the move's trigger "
          f"(cum {trigger_cum}) lay inside {target}'s gap ({gap.after_cum}, {gap.until_cum}]; alerts "
          f"run 1 {len(watch1.alerts)}, run 2 {len(watch2.alerts)}, table {len(rows)}, Redis "
          f"{len(on_redis)}; made {made} stored {stored}")
    assert gap.after_cum < trigger_cum <= (gap.until_cum or trigger_cum)   # the move was in the hole
    assert len(raised) == 1 and raised[0].stock_code == target and raised[0].direction == "up"
    assert [r["alert_id"] for r in rows] == [raised[0].alert_id]
    assert [a["alert_id"] for a in on_redis] == [raised[0].alert_id]
    assert made == stored
    # the two summaries (item 6 of the e2e brief)
    assert s1["gaps_pending"] == len(pending) == len(codes) and s2["gaps_pending"] == 0
    assert s1["alerts"] == 1 and s2["alerts"] == 0
    assert s1["alerts_late"] == int(raised[0].late) and s2["alerts_late"] == 0
    assert s1["alerts_delivered"] + s2["alerts_delivered"] == len(on_redis) == 1
    assert s1["symbols_dark"] == s2["symbols_dark"] == 0 and s2["gaps_unrecovered"] == 0


async def test_database_locked_during_a_jump_alert_is_live_no_symbol_dark_and_everything_stored(
        tmp_path):
    """The SQLite writer's database is locked by another process's write for 8 s (the writer's
    bound in C, off the GIL): the feed and the detector must not notice. The jump inside the
    lock is alerted live, no symbol goes without data, and once the lock is gone every trade
    and the alert are stored (journaled meanwhile), none twice."""
    import sqlite3
    import threading

    codes = default_watchlist()[:50]
    collector = build_collector(_config(tmp_path, codes))
    watch = CollectorWatch(collector.bus)
    await collector.start()
    sim = collector.exchange.simulator
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        other = sqlite3.connect(tmp_path / "ticks.sqlite3", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        other.execute("ROLLBACK")
        other.close()

    holder = threading.Thread(target=hold_lock)
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        await asyncio.sleep(1.0)
        b0 = time.monotonic()
        await asyncio.sleep(8.0)                 # the same span unlocked: the quietest symbol's gaps
        b1 = time.monotonic()
        holder.start()
        assert await asyncio.to_thread(locked.wait, 10)
        t0 = time.monotonic()
        await asyncio.sleep(2.0)
        target = codes[7]
        jumped_at = time.time()
        sim.jump(target, JUMP_PCT, 1.0)
        await _wait(lambda: watch.alerts_of(target), "the jump's alert", limit=30)
        await asyncio.sleep(max(0.0, 8.0 - (time.monotonic() - t0)))
        t1 = time.monotonic()
        during = collector.writer.stats()
        release.set()
        await asyncio.to_thread(holder.join)
        await _wait(lambda: collector.writer.stats().database_ok
                    and collector.writer.stats().journal_pending == 0, "journal replayed", limit=60)
    finally:
        release.set()
        await _stop_quietly(collector)
    worst, who = watch.worst_gap(codes, t0, t1)
    baseline, _ = watch.worst_gap(codes, b0, b1)
    made, stored = _assert_stored_is_history(collector)
    alerts = _assert_alerts_complete(collector, watch, [target])
    alert = alerts[0]
    since_jump = alert.detected_at.timestamp() - jumped_at
    s = collector.writer.stats()
    print(f"\ndatabase locked 8 s: writer {'down' if not during.database_ok else 'up'} "
          f"({during.last_error}), {s.journaled} journaled; worst per-symbol data gap {worst:.2f} s "
          f"({who}; unlocked {baseline:.2f} s); jump on {target} alerted {since_jump:.2f} s after it began, late {alert.late}; "
          f"made {made} stored {stored}; moves 1 alerts {len(alerts)}")
    assert not during.database_ok and "locked" in during.last_error
    assert s.journaled > 0 and s.failed == 0 and s.duplicates == 0
    assert worst <= min(10.0, baseline + 2.0), (worst, who, baseline)   # the lock adds no darkness
    assert not alert.late and alert.source == "ws" and since_jump <= 2.0
    assert made == stored == s.stored
