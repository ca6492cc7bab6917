"""KRX, NXT and integrated trades in the simulator: per-venue streams (H0STCNT0 / H0NXCNT0 /
H0UNCNT0) and REST market codes (J / NX / UN), cumulative volumes consistent (integrated = KRX +
NXT at every trade), the session table with market hours on (injected clock), and no invented
market for an unlisted code."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime

import aiohttp
import pytest

from kis_desk.protocol.codec import decode_message
from kis_desk.protocol.messages import AckKind, DataFrame
from kis_desk.protocol.records import KST
from kis_desk.protocol.states import MarketState
from kis_desk.sim import SimConfig, Simulator
from kis_desk.sim.frames import TR_NXT, TR_TOTAL, TR_TRADES
from kis_desk.sim.market import Market
from kis_desk.sim.universe import nxt_eligible
from kis_desk.sim.tape import SimTrade
from tests.test_sim_support import access_token, approval_key, check_record_fields, connect, rest_get, subscribe

HOT = "005930"              # NXT-eligible large cap, the busiest default symbol
KRX_ONLY = "123456"         # in no symbol list: asked for explicitly (SimConfig.codes), KRX only
TRS = (TR_TRADES, TR_NXT, TR_TOTAL)
VENUE_OF = {TR_TRADES: "krx", TR_NXT: "nxt", TR_TOTAL: "total"}
TUESDAY = datetime(2026, 11, 24, tzinfo=KST)


def assert_integrated_consistent(market: Market, code: str) -> tuple[int, int]:
    """Integrated tape == KRX and NXT trades merged in print order, its cum == KRX cum + NXT cum
    after every trade, and each venue's own cum chains. Returns (KRX trades, NXT trades)."""
    krx, nxt, total = (market.history(code, v) for v in ("krx", "nxt", "total"))
    assert len(total) == len(krx) + len(nxt)
    it = {"krx": iter(krx), "nxt": iter(nxt)}
    cum = {"krx": 0, "nxt": 0}
    for i, t in enumerate(total):
        own = next(it[t.venue])
        assert (own.time, own.price, own.volume, own.venue, own.kind) == (t.time, t.price, t.volume, t.venue, t.kind)
        cum[t.venue] += t.volume
        assert own.cum_volume == cum[t.venue]
        assert t.cum_volume == cum["krx"] + cum["nxt"] and t.index == i
    assert all(t.venue == "krx" for t in krx) and all(t.venue == "nxt" for t in nxt)
    return len(krx), len(nxt)


def run(market: Market, seconds: float, t0: float = 0.0, step: float = 0.1,
        wanted_by_tr=None) -> list:
    out = []
    t = t0
    while t < t0 + seconds - 1e-9:
        t = round(t + step, 6)
        out.extend(market.generate(round(step / market.config.tick_interval), t, market.symbols,
                                   wanted_by_tr))
    return out


def test_both_venues_trade_with_consistent_cumulative_volumes():
    market = Market(SimConfig(rate=3_000, seed=5, nxt=True, codes=(HOT, "000660", KRX_ONLY)))
    wanted = {tr: market.symbols for tr in TRS}
    generated = run(market, 20.0, wanted_by_tr=wanted)
    krx_n, nxt_n = assert_integrated_consistent(market, HOT)
    assert krx_n > 1_000 and 0.1 < nxt_n / (krx_n + nxt_n) < 0.3      # nxt_share 0.2
    assert_integrated_consistent(market, "000660")
    assert not nxt_eligible(KRX_ONLY) and nxt_eligible(HOT)
    assert market.history(KRX_ONLY, "nxt") == [] and market.history(KRX_ONLY, "total") == \
        [t for t in market.history(KRX_ONLY)]
    assert market.generated_total == sum(len(market.history(c, "total")) for c in market.codes())
    # every TR's records: consistent fields, and exactly the matching tape, in order
    records: dict[tuple[str, str], list] = {}
    for g in generated:
        for frame, first, n in g.frames:
            msg = decode_message(frame)
            assert isinstance(msg, DataFrame) and msg.tr_id == g.tr_id and not msg.errors
            assert [r.cum_volume for r in msg.records] == \
                [t.cum_volume for t in market.symbols[g.code].tape(g.venue).trades(first, first + n)]
            records.setdefault((g.tr_id, g.code), []).extend(msg.records)
    for (tr_id, code), recs in records.items():
        check_record_fields(recs)
        assert [r.cum_volume for r in recs] == [t.cum_volume for t in market.history(code, VENUE_OF[tr_id])]
    assert (TR_NXT, KRX_ONLY) not in records and (TR_NXT, HOT) in records


def test_krx_only_by_default_in_code_built_simulators():
    market = Market(SimConfig(rate=2_000, seed=5))
    run(market, 5.0)
    assert market.history(HOT, "nxt") == [] and len(market.history(HOT, "total")) == len(market.history(HOT))


async def read_until(ws, frames: list[DataFrame], done, timeout: float = 10.0) -> None:
    async def loop() -> None:
        while not done():
            m = decode_message(await ws.recv())
            if isinstance(m, DataFrame):
                frames.append(m)
    await asyncio.wait_for(loop(), timeout)


async def test_three_trade_trs_on_one_socket_each_its_own_stream():
    async with Simulator(SimConfig(rate=2_000, seed=2, nxt=True)) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        frames: list[DataFrame] = []
        for tr in TRS:
            ack = await subscribe(ws, key, HOT, tr_id=tr, sink=frames)
            assert ack.kind is AckKind.SUBSCRIBED and ack.tr_id == tr
        (session,) = sim.sessions()
        assert sorted(session["subscriptions"]) == sorted((tr, HOT) for tr in TRS)   # 3 of the 41
        by_tr: Counter[str] = Counter()

        def enough() -> bool:
            by_tr.clear()
            by_tr.update(f.tr_id for f in frames)
            return min(by_tr[tr] for tr in TRS) >= 5
        await read_until(ws, frames, enough)
        await ws.close()
        await asyncio.sleep(0.1)
        for tr in TRS:
            received = [r for f in frames if f.tr_id == tr for r in f.records]
            sent = sim.sent_trades(HOT, venue=VENUE_OF[tr])
            assert [r.cum_volume for r in received] == [t.cum_volume for t in sent][:len(received)]
            history = sim.history(HOT, VENUE_OF[tr])
            assert [t.cum_volume for t in sent] == [t.cum_volume for t in history][sent[0].index:sent[-1].index + 1]
            check_record_fields(received)
        assert_integrated_consistent(sim.market, HOT)
        assert sim.sent_counts()[session["label"]][HOT] == len(sim.sent_trades(HOT))   # H0STCNT0 only


async def test_rest_honours_the_market_code():
    async with Simulator(SimConfig(rate=2_000, seed=3, nxt=True)) as sim, aiohttp.ClientSession() as http:
        token = await access_token(sim.rest_url)
        await asyncio.sleep(1.0)
        sim.set_rate(0)                       # freeze: REST answers and history compared exactly
        await asyncio.sleep(0.05)
        for market_code, venue in (("J", "krx"), ("NX", "nxt"), ("UN", "total")):
            q = {"FID_COND_MRKT_DIV_CODE": market_code, "FID_INPUT_ISCD": HOT}
            hist = sim.history(HOT, venue)
            assert hist
            status, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100", q)
            assert status == 200 and body["rt_cd"] == "0"
            assert int(body["output"]["acml_vol"]) == hist[-1].cum_volume
            assert int(body["output"]["stck_prpr"]) == hist[-1].price
            status, body = await rest_get(http, sim.rest_url, "inquire-ccnl", token, "FHKST01010300", q)
            assert [(r["stck_cntg_hour"], int(r["stck_prpr"]), int(r["cntg_vol"])) for r in body["output"]] == \
                [(t.time, t.price, t.volume) for t in hist[::-1][:30]]
            status, body = await rest_get(http, sim.rest_url, "inquire-time-itemconclusion", token,
                                          "FHPST01060000", {**q, "FID_INPUT_HOUR_1": ""})
            assert [int(r["acml_vol"]) for r in body["output2"]] == [t.cum_volume for t in hist[::-1][:100]]
            assert int(body["output1"]["acml_vol"]) == hist[-1].cum_volume
        krx, nxt, total = (sim.history(HOT, v)[-1].cum_volume for v in ("krx", "nxt", "total"))
        assert total == krx + nxt
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                      {"FID_COND_MRKT_DIV_CODE": "X", "FID_INPUT_ISCD": HOT})
        assert body["rt_cd"] == "1"


async def test_mock_server_refuses_nxt_and_integrated():
    async with Simulator(SimConfig(rate=500, mode="mock", nxt=True)) as sim, aiohttp.ClientSession() as http:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        for tr in (TR_NXT, TR_TOTAL):
            ack = await subscribe(ws, key, HOT, tr_id=tr)
            assert (ack.kind, ack.msg_cd, ack.tr_id) == (AckKind.INVALID_REQUEST, "OPSP8991", tr)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        await ws.close()
        token = await access_token(sim.rest_url)
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                      {"FID_COND_MRKT_DIV_CODE": "UN", "FID_INPUT_ISCD": HOT})
        assert body["rt_cd"] == "1"
        await asyncio.sleep(0.6)               # 2 requests/s on mock
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                      {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": HOT})
        assert body["rt_cd"] == "0"


# -- market hours: the session table (kis_desk.market.calendar.phase_at(now, venue)) ----------
def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return TUESDAY.replace(hour=hh, minute=mm, second=ss)


class Clocked:
    """A market on market hours whose KST clock and loop time the test moves."""

    def __init__(self, **kw) -> None:
        self.now = at(7, 59, 0)
        self.loop = 0.0
        kw.setdefault("codes", (HOT, "000660", KRX_ONLY))
        self.market = Market(SimConfig(always_open=False, nxt=True, rate=2_000, seed=9,
                                       clock=lambda: self.now, **kw))
        self.wanted = {tr: self.market.symbols for tr in TRS}

    def run_at(self, when: datetime, seconds: float = 2.0) -> list[SimTrade]:
        """Trades made while the clock stands at ``when`` for ``seconds`` of loop time (total tape)."""
        self.now = when
        before = {c: self.market.symbols[c].total.count for c in self.market.codes()}
        run(self.market, seconds, self.loop, wanted_by_tr=self.wanted)
        self.loop += seconds
        return [t for c in self.market.codes()
                for t in self.market.symbols[c].total.trades(before[c])]


def test_market_hours_follow_the_session_table():
    c = Clocked()
    assert c.run_at(at(7, 59)) == []                                   # nothing before 08:00
    pre = c.run_at(at(8, 10))                                          # NXT pre-market only
    assert pre and {t.venue for t in pre} == {"nxt"} and {t.kind for t in pre} == {"pre_market"}
    assert {t.code for t in pre} == {HOT, "000660"}                    # NXT-eligible names only
    assert c.run_at(at(8, 40)) and c.run_at(at(8, 55)) == []          # 08:50–09:00: NXT paused, KRX auction
    opening = c.run_at(at(9, 0, 0), seconds=0.01)                      # the KRX opening auction print
    assert Counter((t.code, t.venue, t.kind) for t in opening) == \
        {(code, "krx", "auction"): 1 for code in c.market.codes()}
    early = c.run_at(at(9, 0, 10))                                     # NXT main market starts 09:00:30
    assert early and {t.venue for t in early} == {"krx"} and {t.kind for t in early} == {"normal"}
    regular = c.run_at(at(10, 0))
    assert {t.venue for t in regular} == {"krx", "nxt"} and {t.kind for t in regular} == {"normal"}
    assert c.run_at(at(15, 25)) == []                                  # KRX closing auction, NXT closed
    close = c.run_at(at(15, 30, 0), seconds=0.01)                      # closing print + NXT after-market
    krx_close = [t for t in close if t.venue == "krx"]
    assert Counter((t.code, t.kind) for t in krx_close) == {(code, "auction"): 1 for code in c.market.codes()}
    after = c.run_at(at(15, 35))
    assert after and {(t.venue, t.kind) for t in after} == {("nxt", "after_market")}
    closing_price = [t for t in c.run_at(at(15, 41)) if t.venue == "krx"]   # 15:40 slot, at the close
    assert Counter(t.code for t in closing_price) == {code: 1 for code in c.market.codes()}
    assert all(t.kind == "closing_price" and t.price == c.market.symbols[t.code].krx.trades()[-2].price
               for t in closing_price)
    assert [t for t in c.run_at(at(15, 45)) if t.venue == "krx"] == []      # same slot: no second print
    single = [t for t in c.run_at(at(16, 11)) if t.venue == "krx"]
    assert Counter((t.code, t.kind) for t in single) == {(code, "single_price"): 1 for code in c.market.codes()}
    evening = c.run_at(at(19, 59))
    assert evening and {t.venue for t in evening} == {"nxt"}
    assert c.run_at(at(20, 0)) == []
    for code in (HOT, "000660"):
        assert_integrated_consistent(c.market, code)


def test_session_records_carry_the_session_codes():
    c = Clocked(codes=(HOT,))
    c.now = at(8, 10)
    gens = run(c.market, 2.0, wanted_by_tr=c.wanted)
    recs = [r for g in gens if g.tr_id == TR_NXT for f, _i, _n in g.frames for r in decode_message(f).records]
    assert recs and {r.market_operation_code for r in recs} == {"10"}
    assert {r.market_state for r in recs} == {MarketState.PRE_OPEN}
    c.now = at(16, 0)
    gens = run(c.market, 2.0, 2.0, wanted_by_tr=c.wanted)
    recs = [r for g in gens if g.tr_id == TR_TOTAL for f, _i, _n in g.frames for r in decode_message(f).records]
    assert recs and {r.market_state for r in recs} == {MarketState.AFTER_HOURS}


def test_holiday_nothing_trades():
    c = Clocked()
    assert c.run_at(datetime(2026, 11, 28, 10, 0, tzinfo=KST)) == []     # Saturday


# -- codes in no master list ---------------------------------------------------------------------
@pytest.mark.parametrize("invent", [False, True])
async def test_unlisted_code_gets_no_invented_market_unless_asked(invent):
    async with Simulator(SimConfig(rate=2_000, invent_unknown_codes=invent)) as sim, \
            aiohttp.ClientSession() as http:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, KRX_ONLY)).kind is AckKind.SUBSCRIBED     # acked either way
        token = await access_token(sim.rest_url)
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                      {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": KRX_ONLY})
        assert (body["rt_cd"] == "0") is invent and (KRX_ONLY in sim.codes()) is invent
        await asyncio.sleep(0.5)
        assert bool(sim.history(KRX_ONLY)) is invent
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                      {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "000660"})
        assert body["rt_cd"] == "0" and "000660" in sim.codes()            # listed: starts on demand
        sim.add_code("654321")                                             # explicit: always trades
        assert "654321" in sim.codes()
        await ws.close()



async def test_integrated_stream_through_the_krx_close_into_the_nxt_after_market():
    """H0UNCNT0 over a socket from 15:19 (both venues) through the KRX closing auction (nothing),
    its single print at 15:30 and NXT's after-market: every integrated trade arrives once, in
    order, with the integrated cumulative volume."""
    clock = {"now": at(15, 19, 50)}
    codes = (HOT, "000660", "035420")
    cfg = SimConfig(rate=600, seed=8, nxt=True, always_open=False, codes=codes,
                    clock=lambda: clock["now"])
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        frames: list[DataFrame] = []
        for code in codes:
            assert (await subscribe(ws, key, code, tr_id=TR_TOTAL, sink=frames)).kind is AckKind.SUBSCRIBED

        async def collect(seconds: float) -> None:
            try:
                await read_until(ws, frames, lambda: False, timeout=seconds)
            except TimeoutError:
                pass
        for when in (at(15, 19, 55), at(15, 25), at(15, 30, 0), at(15, 35)):
            clock["now"] = when
            await collect(0.6)
        sim.set_rate(0)                  # freeze, then drain what is still queued
        await collect(0.5)
        await ws.close()
        for code in codes:
            received = [r for f in frames for r in f.records if r.stock_code == code]
            sent = sim.sent_trades(code, venue="total")
            history = sim.history(code, "total")
            assert [r.cum_volume for r in received] == [t.cum_volume for t in sent]
            assert sent == history[sent[0].index:]
            assert_integrated_consistent(sim.market, code)
            times = {t.time for t in sent}
            assert not {x for x in times if "152000" <= x < "153000"}       # the closing auction
            assert [t.kind for t in sent if t.venue == "krx" and t.time >= "153000"] == ["auction"]
            assert {t.kind for t in sent if t.venue == "nxt" and t.time >= "153000"} == {"after_market"}
