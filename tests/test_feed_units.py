"""Unit tests of the feed's pure parts: back-off, sharding, rate limiter, REST parsing, gap chain."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kis_desk.feed.backfill import chain_gaps
from kis_desk.core.backoff import Backoff, BackoffPolicy
from kis_desk.feed.ratelimit import RateLimiter
from kis_desk.feed.rest import (
    ConclusionRow, KisApiError, hhmmss_minus, parse_ccnl, parse_price, parse_time_conclusion,
)
from kis_desk.feed.sharding import keys_needed, moves, plan_shards

# -- back-off -----------------------------------------------------------------------------------

def test_first_retry_within_a_second_and_cap_respected():
    b = Backoff(BackoffPolicy(), random.Random(1))
    lo, hi = b.bounds(0)
    assert 0 < lo and hi <= 1.0
    delays = [b.next_delay() for _ in range(30)]
    assert delays[0] <= 1.0
    assert max(delays) <= b.policy.cap
    assert all(d >= b.policy.floor for d in delays)
    assert delays[-1] >= b.policy.cap * (1 - b.policy.jitter) - 1e-9   # reached the cap


def test_backoff_grows_then_resets_after_healthy_period():
    b = Backoff(BackoffPolicy(initial=0.5, cap=10, healthy_after=60), random.Random(2))
    for _ in range(6):
        b.next_delay()
    assert b.attempts == 6
    b.connected(100.0)
    b.disconnected(130.0)          # only 30 s up: not healthy
    assert b.attempts == 6
    b.connected(200.0)
    b.disconnected(260.0)          # 60 s up: healthy → restart from the first delay
    assert b.attempts == 0
    assert b.next_delay() <= 1.0


@given(seed=st.integers(0, 10_000), attempt=st.integers(0, 40))
@settings(max_examples=200, deadline=None)
def test_jitter_stays_within_bounds(seed, attempt):
    b = Backoff(BackoffPolicy(), random.Random(seed))
    b.attempts = attempt
    lo, hi = b.bounds(attempt)
    d = b.next_delay()
    assert lo - 1e-12 <= d <= hi + 1e-12
    assert d <= b.policy.cap


def test_jitter_actually_spreads():
    delays = {round(Backoff(BackoffPolicy(), random.Random(s)).next_delay(), 6) for s in range(20)}
    assert len(delays) > 10


def test_policy_validation():
    with pytest.raises(ValueError):
        BackoffPolicy(initial=20, cap=10)
    with pytest.raises(ValueError):
        BackoffPolicy(jitter=1.5)


# -- sharding -----------------------------------------------------------------------------------

CODES = [f"{i:06d}" for i in range(1, 51)]


def test_fifty_symbols_two_keys_all_live_balanced():
    plan = plan_shards(CODES, 2)
    assert plan.polled == ()
    assert sorted(plan.live) == sorted(CODES)
    assert [len(s) for s in plan.sessions] == [25, 25]
    assert plan.keys_needed == 2


def test_fifty_symbols_one_key_polls_nine():
    plan = plan_shards(CODES, 1)
    assert len(plan.sessions[0]) == 41
    assert plan.polled == tuple(CODES[41:])
    assert plan.keys_needed == 2 == keys_needed(50)


def test_no_keys_polls_everything():
    plan = plan_shards(CODES[:3], 0)
    assert plan.polled == tuple(CODES[:3]) and plan.sessions == ()


def test_minimal_moves_on_watchlist_change():
    old = plan_shards(CODES[:40], 2)
    new_list = [c for c in CODES[:40] if c != CODES[5]] + ["900001", "900002"]
    new = plan_shards(new_list, 2, current=old.sessions)
    for i in range(2):
        kept = set(old.sessions[i]) - {CODES[5]}
        assert kept <= set(new.sessions[i])          # nobody moved
    diff = moves(old, new)
    subscribed = set().union(*(d[0] for d in diff.values()))
    unsubscribed = set().union(*(d[1] for d in diff.values()))
    assert subscribed == {"900001", "900002"}
    assert unsubscribed == {CODES[5]}


def test_polled_symbol_promoted_when_room_appears():
    old = plan_shards(CODES[:42], 1)
    assert old.polled == (CODES[41],)
    new = plan_shards([c for c in CODES[:42] if c != CODES[0]], 1, current=old.sessions)
    assert new.polled == ()
    assert CODES[41] in new.sessions[0]


def test_capacity_and_exclude_after_opsp0008():
    plan = plan_shards(CODES[:42], 1, per_session=42)
    assert len(plan.sessions[0]) == 42
    # the server refused the 42nd: capacity shrinks to what it accepted and that code is excluded
    again = plan_shards(CODES[:42], 1, per_session=42, current=plan.sessions,
                        capacity={0: 41}, exclude={0: {CODES[41]}})
    assert again.polled == (CODES[41],)
    assert len(again.sessions[0]) == 41
    two = plan_shards(CODES[:42], 2, per_session=42, current=(plan.sessions[0], ()),
                      capacity={0: 41}, exclude={0: {CODES[41]}})
    assert CODES[41] in two.sessions[1] and two.polled == ()


@given(st.lists(st.sampled_from(CODES + ["Q500001"]), max_size=120), st.integers(0, 4),
       st.integers(1, 45))
@settings(max_examples=200, deadline=None)
def test_plan_invariants(codes, n_keys, per):
    plan = plan_shards(codes, n_keys, per)
    wanted = list(dict.fromkeys(codes))
    assert sorted(plan.live + plan.polled) == sorted(wanted)
    assert all(len(s) <= per for s in plan.sessions)
    assert len(plan.sessions) == n_keys
    if len(wanted) <= n_keys * per:
        assert plan.polled == ()
    # re-planning the same list with the plan as current changes nothing
    assert plan_shards(codes, n_keys, per, current=plan.sessions).sessions == plan.sessions


# -- rate limiter -------------------------------------------------------------------------------

async def test_rate_limiter_spaces_slots_evenly():
    now = [100.0]
    lim = RateLimiter(10.0, clock=lambda: now[0])
    await lim.acquire()                       # first slot: immediately
    assert lim._next == pytest.approx(100.1)
    lim.penalize(1.0)
    assert lim._next == pytest.approx(101.0)
    assert lim.backlog_seconds() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        RateLimiter(0)


async def test_rate_limiter_is_fifo():
    lim = RateLimiter(200.0)
    order: list[int] = []

    async def take(i):
        await lim.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(10)))
    assert order == list(range(10))
    assert lim.acquired == 10


# -- REST parsing (shapes from kis-protocol.md §8, §11.4) ---------------------------------------

def test_parse_price_real_shape_omits_optional_fields():
    body = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.",
            "output": {"stck_prpr": "71900", "prdy_vrss": "-100", "prdy_vrss_sign": "5",
                       "prdy_ctrt": "-0.14", "acml_vol": "3052507", "stck_oprc": "72100",
                       "stck_hgpr": "72400", "stck_lwpr": "71700", "stck_shrn_iscd": "005930"}}
    q = parse_price("005930", body)
    assert (q.price, q.change, q.change_rate, q.cum_volume, q.sign) == (71900, -100, -0.14, 3052507, "5")
    assert (q.open, q.high, q.low) == (72100, 72400, 71700)


def test_parse_price_rejects_missing_price():
    with pytest.raises(KisApiError, match="stck_prpr"):
        parse_price("005930", {"rt_cd": "0", "output": {"acml_vol": "1"}})


def test_parse_time_conclusion_real_and_doc_shapes():
    row = {"stck_cntg_hour": "112616", "stck_prpr": "62700", "prdy_vrss": "400",
           "prdy_vrss_sign": "2", "prdy_ctrt": "0.64", "askp": "62700", "bidp": "62600",
           "tday_rltv": "93.01", "acml_vol": "9694968", "cnqn": "125"}
    body = {"rt_cd": "0", "output1": {"stck_prpr": "62700", "acml_vol": "9694968"},
            "output2": [row, {"stck_cntg_hour": ""}]}
    page = parse_time_conclusion("005930", "112616", body)
    assert page.cum_volume == 9694968 and len(page.rows) == 1
    r = page.rows[0]
    assert (r.hhmmss, r.price, r.volume, r.cum_volume, r.change, r.change_rate, r.strength) == (
        "112616", 62700, 125, 9694968, 400, 0.64, 93.01)
    # the doc's variant: object output2 and the price under stck_pbpr
    doc_row = dict(row)
    doc_row["stck_pbpr"] = doc_row.pop("stck_prpr")
    page2 = parse_time_conclusion("005930", "112616", {"rt_cd": "0", "output2": doc_row})
    assert page2.rows[0].price == 62700
    assert parse_time_conclusion("005930", "090000", {"rt_cd": "0", "output2": []}).rows == ()


def test_parse_time_conclusion_bad_row():
    with pytest.raises(KisApiError):
        parse_time_conclusion("005930", "1", {"output2": [{"stck_cntg_hour": "99x"}]})
    with pytest.raises(KisApiError, match="acml_vol"):
        parse_time_conclusion("005930", "1", {"output2": [
            {"stck_cntg_hour": "090000", "stck_prpr": "1", "cnqn": "1"}]})


def test_parse_ccnl():
    rows = parse_ccnl({"rt_cd": "0", "output": [
        {"stck_cntg_hour": "093354", "stck_prpr": "71900", "prdy_vrss": "-100",
         "prdy_vrss_sign": "5", "cntg_vol": "7", "tday_rltv": "84.90", "prdy_ctrt": "-0.14"}]})
    assert rows[0].volume == 7 and rows[0].cum_volume is None and rows[0].strength == 84.90


def test_hhmmss_minus():
    assert hhmmss_minus("090000", 1) == "085959"
    assert hhmmss_minus("000000", 1) is None
    assert hhmmss_minus("235959", 3600) == "225959"


def _row(cum: int, vol: int, t: str = "100000") -> ConclusionRow:
    return ConclusionRow(t, 100, vol, cum, None, None, "3", None)


def test_chain_gaps():
    assert chain_gaps([_row(15, 5), _row(20, 5)], 10) == []
    assert chain_gaps([_row(15, 5), _row(30, 5)], 10) == [(15, 25)]
    assert chain_gaps([_row(15, 2)], 10) == [(10, 13)]
    assert chain_gaps([_row(15, 2), _row(17, 2)], None) == []


# -- session control-reply handling (no network: the replies are decoded from §11.4 shapes) ------

from kis_desk.config import AppCredential, Secret, custom_environment  # noqa: E402
from kis_desk.feed.rest import CredentialError, KisRestClient  # noqa: E402
from kis_desk.feed.session import AppKeyInUse, FeedSession, InvalidApproval, SessionListener  # noqa: E402
from kis_desk.protocol.codec import build_control_reply, decode_message  # noqa: E402


class _Recorder(SessionListener):
    def __init__(self):
        self.subscribed, self.rejected, self.unsubscribed = [], [], []

    def on_subscribed(self, session, code):
        self.subscribed.append(code)

    def on_rejected(self, session, code, reply):
        self.rejected.append((code, reply.msg_cd))

    def on_unsubscribed(self, session, code):
        self.unsubscribed.append(code)


def _session(codes):
    env = custom_environment("ws://127.0.0.1:9", "http://127.0.0.1:9", 19.0)
    rest = KisRestClient(env, AppCredential("key1", Secret("k"), Secret("s")))
    rec = _Recorder()
    return FeedSession(env, rest, listener=rec, codes=codes), rec


def _reply(tr_key, rt_cd, msg_cd, msg1, tr_id="H0STCNT0"):
    return decode_message(build_control_reply(tr_id, tr_key, rt_cd, msg_cd, msg1))


async def test_session_ack_bookkeeping():
    s, rec = _session(["005930", "000660", "035420"])
    s._on_control(None, _reply("005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS"))
    s._on_control(None, _reply("000660", "1", "OPSP0002", "ALREADY IN SUBSCRIBE"))
    assert s.acked == {"005930", "000660"} and rec.subscribed == ["005930", "000660"]
    s._on_control(None, _reply("035420", "1", "OPSP0008", "MAX SUBSCRIBE OVER"))
    assert rec.rejected == [("035420", "OPSP0008")]
    assert "035420" not in s.wanted and s.rejected == {"035420": "OPSP0008"}
    assert s.pending == set()
    s._on_control(None, _reply("005930", "0", "OPSP0001", "UNSUBSCRIBE SUCCESS"))
    assert s.acked == {"000660"} and rec.unsubscribed == ["005930"]
    with pytest.raises(AppKeyInUse):
        s._on_control(None, _reply("", "9", "OPSP8996", "ALREADY IN USE appkey", tr_id="(null)"))
    with pytest.raises(InvalidApproval):
        s._on_control(None, _reply("005930", "1", "OPSP0011", "invalid approval : NOT FOUND"))
    with pytest.raises(CredentialError, match="app key/secret rejected"):
        s._on_control(None, _reply("005930", "1", "OPSP0010", "SUBSCRIBE WARNING : invalid appkey"))
    await s.rest.close()


async def test_session_add_remove_without_connection_only_changes_wanted():
    s, _ = _session(["005930"])
    s.add(["000660", "005930"])
    s.remove(["005930"])
    assert list(s.wanted) == ["000660"] and s._outbox.empty()
    await s.rest.close()
