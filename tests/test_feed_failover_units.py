"""The failover rule, the routing overlay, per-symbol state and back-fill job merging — pure
logic, no network."""

from __future__ import annotations

from collections import deque

from kis_desk.core.events import SymbolFeedState
from kis_desk.feed.backfill_queue import Job
from kis_desk.feed.config import FailoverConfig
from kis_desk.feed.failover import Failover, route
from kis_desk.feed.session import FeedSession
from kis_desk.feed.session_types import SessionConfig
from kis_desk.feed.symbols import SymbolFeed, SymbolTable, feed_state

A = [f"A{i:02d}" for i in range(25)]
B = [f"B{i:02d}" for i in range(25)]


def test_route_moves_a_down_keys_symbols_to_free_registrations_then_polling():
    r = route([A, B], (), 41, {}, down=frozenset({1}), no_rest=frozenset())
    assert r.sessions[1] == tuple(B)                  # the down key keeps asking for its own
    assert r.borrowed[0] == tuple(B[:16]) and r.sessions[0] == tuple(A + B[:16])
    assert r.polled == tuple(B[16:])                   # 9 polled, shared over both keys' REST
    assert sorted(c for p in r.pollers for c in p) == sorted(B[16:])
    assert r.carriers(B[0]) == [0, 1]


def test_route_keeps_last_placement_and_avoids_a_rejected_keys_rest():
    first = route([A, B], (), 41, {}, down=frozenset({1}), no_rest=frozenset({1}))
    assert first.pollers[1] == () and first.pollers[0] == tuple(B[16:])
    again = route([A, B], (), 41, {}, down=frozenset({1}), no_rest=frozenset({1}), previous=first)
    assert again == first                               # re-evaluation shuffles nothing
    back = route([A, B], (), 41, {}, down=frozenset(), no_rest=frozenset(), previous=first)
    assert back.sessions == (tuple(A), tuple(B)) and back.polled == ()


def test_route_never_borrows_a_registration_kis_refused_before():
    r = route([A, B], (), 41, {}, down=frozenset({1}), no_rest=frozenset(),
              exclude={0: {B[0], B[1]}})
    assert B[0] not in r.borrowed[0] and B[1] not in r.borrowed[0]
    assert {B[0], B[1]} <= set(r.polled) and len(r.borrowed[0]) == 16


def test_route_with_every_key_down_polls_everything_on_every_key():
    r = route([A, B], ("C",), 41, {}, down=frozenset({0, 1}), no_rest=frozenset())
    assert set(r.polled) == set(A + B + ["C"]) and sorted(len(p) for p in r.pollers) == [25, 26]
    assert r.borrowed == ((), ())


def test_failover_rule_waits_for_after_plus_grace_and_recovers_after_hold():
    f = Failover(["key1", "key2"], FailoverConfig(after=3.0, recover_hold=5.0))
    f.started(0.0)
    f.observe(0, "live", "", 0.5)
    f.observe(1, "connecting", "subscribing", 0.5, grace=1.0)
    assert f.evaluate(3.9) == [] and f.down() == frozenset()
    changes = f.evaluate(4.0)                            # 3 s + 1 s resubscribe grace
    assert [(k.label, d) for k, d in changes] == [("key2", True)] and f.failovers == 1
    f.observe(1, "live", "", 10.0)
    assert f.evaluate(14.9) == []
    assert [(k.label, d) for k, d in f.evaluate(15.0)] == [("key2", False)]


def test_a_first_connection_is_judged_by_its_progress_a_dropped_key_by_the_clock():
    f = Failover(["key1", "key2"], FailoverConfig(after=3.0, recover_hold=5.0))
    f.started(0.0)
    f.observe(0, "connecting", "connecting", 0.0, grace=0.5)
    f.observe(1, "connecting", "connecting", 0.0, grace=0.5)
    f.observe_progress(0, False, 0, 0.0)
    f.observe_progress(1, False, 0, 0.0)
    f.observe(0, "connecting", "subscribing 25 symbols", 2.0, grace=0.5)
    f.observe(1, "connecting", "subscribing 25 symbols", 2.0, grace=0.5)
    for step in range(10):                  # a busy start: one acknowledgement every 0.5 s
        now = 2.0 + 0.5 * step
        f.observe_progress(0, True, step, now)
        f.observe_progress(1, True, step if step < 4 else 3, now)    # key2 gets stuck at 3
        assert f.evaluate(now) == [], now
    assert [(k.label, d) for k, d in f.evaluate(3.5 + 3.5)] == [("key2", True)]   # 3 s + grace
    f.observe(0, "live", "25 symbols live", 7.5)
    assert f.down() == frozenset({1})
    # once live, the clock rules: a drop and a slow resubscribe are down after 3 s + grace,
    # however busy its acknowledgements are
    f.observe(0, "backoff", "connection lost", 20.0, retry_in=0.2)
    f.observe(0, "connecting", "reconnecting", 20.2, grace=0.5)
    for step in range(8):
        now = 20.2 + 0.5 * step
        f.observe_progress(0, True, step, now)
        changes = f.evaluate(now)
        assert (changes == []) == (now < 23.5), (now, changes)
    # a failed first attempt is not progress: the clock counts from the start
    g = Failover(["k"], FailoverConfig(after=3.0))
    g.started(0.0)
    g.observe(0, "connecting", "connecting", 0.0)
    g.observe_progress(0, True, 0, 1.0)
    g.observe(0, "backoff", "cannot connect", 2.0, retry_in=0.5)
    g.observe(0, "connecting", "connecting", 2.5)
    assert g.evaluate(2.9) == [] and g.evaluate(3.0) != []


def test_failover_acts_at_once_on_the_keys_own_long_wait_a_rejection_or_a_stall():
    f = Failover(["k1", "k2", "k3"], FailoverConfig(after=3.0))
    for i in range(3):
        f.observe(i, "live", "", 0.0)
    f.observe(0, "backoff", "OPSP8996", 1.0, retry_in=20.0)
    f.observe(1, "failed", "app key rejected", 1.0)
    f.observe(2, "stalled", "no data for 10 s", 1.0)
    assert f.evaluate(1.0) and f.down() == frozenset({0, 1, 2}) and f.rejected() == frozenset({1})
    f.observe(2, "backoff", "reconnecting", 1.1, retry_in=0.5)
    assert 2 in f.down()                                 # stays down until live for the hold


def test_a_silent_live_socket_is_suspect_and_recovers_once_data_flows_again():
    f = Failover(["k1"], FailoverConfig(after=3.0, recover_hold=5.0))
    f.observe(0, "live", "", 0.0)
    f.observe_silence(0, True, 6.0)
    assert [(k.label, d) for k, d in f.evaluate(6.0)] == [("k1", True)]
    f.observe_silence(0, False, 7.0)                     # data again: the hold restarts
    assert f.evaluate(11.9) == [] and f.down() == frozenset({0})
    assert [(k.label, d) for k, d in f.evaluate(12.0)] == [("k1", False)]


def test_feed_state_rule():
    s = SymbolFeed("X")
    assert feed_state(s, live=False, polled_ok=False, backfilling=False, carrier_down=False) \
        is SymbolFeedState.WAITING
    assert feed_state(s, live=False, polled_ok=False, backfilling=False, carrier_down=True) \
        is SymbolFeedState.DARK
    assert feed_state(s, live=True, polled_ok=False, backfilling=True, carrier_down=False) \
        is SymbolFeedState.BACKFILLING
    assert feed_state(s, live=False, polled_ok=True, backfilling=False, carrier_down=True) \
        is SymbolFeedState.POLLED
    s.ever_acked = True
    assert feed_state(s, live=False, polled_ok=False, backfilling=False, carrier_down=False) \
        is SymbolFeedState.DARK


def test_dark_clock_measures_the_longest_time_without_a_source():
    s = SymbolFeed("X")
    s.set_state(SymbolFeedState.WAITING, 0.0)
    s.set_state(SymbolFeedState.LIVE, 1.0)
    s.set_state(SymbolFeedState.DARK, 5.0)
    s.set_state(SymbolFeedState.DARK, 8.5)
    assert s.dark_for(9.0) == 4.0 and s.worst_dark == 3.5
    s.set_state(SymbolFeedState.POLLED, 9.0)
    assert s.dark_for(10.0) == 0.0 and s.worst_dark == 3.5


def test_symbol_table_keeps_state_of_kept_symbols():
    t = SymbolTable()
    assert t.sync(["a", "b"]) == ["a", "b"]
    t["a"].advance(100)
    assert t.sync(["b", "a", "c"]) == ["c"] and t.last_cum("a") == 100 and t.codes() == ["b", "a", "c"]
    t.sync(["c"])
    assert "a" not in t and t.last_cum("a") is None


def test_backfill_jobs_merge_to_the_oldest_start():
    assert Job(100).merge(Job(50)) == Job(50)
    assert Job(None, "090010").merge(Job(None, "090005")) == Job(None, "090005")
    assert Job(100).merge(Job(None, "090005")) == Job(100)    # a cum bound beats a time bound
    assert Job().merge(Job()) == Job()


def test_stall_limit_follows_the_trade_rate_within_floor_and_silence_timeout():
    cfg = SessionConfig(silence_timeout=90.0, stall_floor=10.0, stall_factor=8.0, stall_min_frames=20)
    busy = [True]
    s = FeedSession.__new__(FeedSession)                 # only the watchdog's arithmetic
    s.config, s.busy_phase, s._data_times = cfg, (lambda: busy[0]), deque(maxlen=64)
    assert s.stall_limit() == 90.0                      # too few frames to trust a rate
    s._data_times.extend(i * 0.1 for i in range(64))     # a frame every 0.1 s: the floor
    assert s.stall_limit() == 10.0
    s._data_times.clear()
    s._data_times.extend(i * 3.0 for i in range(30))     # a frame every 3 s: 8 × 3 s
    assert abs(s.stall_limit() - 24.0) < 1e-9
    s._data_times.clear()
    s._data_times.extend(i * 20.0 for i in range(30))    # quiet: capped by silence_timeout
    assert s.stall_limit() == 90.0
    busy[0] = False                                      # auction / closed: only the cap
    s._data_times.extend(i * 0.1 for i in range(64))
    assert s.stall_limit() == 90.0
