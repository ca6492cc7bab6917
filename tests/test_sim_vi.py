"""VI auctions and halts in the simulator: a large move pauses the symbol (compressed "2 minutes"),
then ONE auction print with HOUR_CLS_CODE C and VI_STND_PRC set, then continuous trading; a halt
stops every venue with TRHT_YN Y in the expected-price frames and temp_stop_yn Y in inquire-price.
The market-level tests drive simulated time directly (no sleeping)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timedelta

import aiohttp
import pytest

from kis_desk.protocol.codec import decode_message
from kis_desk.protocol.messages import AckKind, DataFrame
from kis_desk.protocol.records import KST, GenericRecord
from kis_desk.protocol.states import HourClass, MarketState, market_state, vi_status_rows
from kis_desk.sim import DEMO_SPIKES, DEMO_VI, HaltSpec, SimConfig, Simulator, ViSpec, add_sim_arguments
from kis_desk.sim.frames import TR_TOTAL, TR_TRADES
from kis_desk.sim.market import Market
from tests.test_sim_spikes import largest_move_within, run_market
from tests.test_sim_support import access_token, approval_key, connect, rest_get, subscribe

HOT = "005930"
START = datetime(2026, 3, 3, 10, 0, 0, tzinfo=KST)
STATIC_ONLY = ViSpec(dynamic_pct=50.0, dynamic_pct_other=50.0, seconds=2.0, random_end=0.0)
DYNAMIC = ViSpec(static_pct=50.0, dynamic_pct=3.0, dynamic_window=10.0, seconds=2.0, random_end=0.0)


class Driven:
    """A market on a simulated clock: ``advance(seconds)`` runs it forward in 0.1-s steps."""

    def __init__(self, vi: ViSpec | None, **kw) -> None:
        self.t = 0.0
        kw.setdefault("codes", (HOT, "000660"))
        cfg = SimConfig(rate=kw.pop("rate", 1_000), seed=kw.pop("seed", 3), vi=vi, **kw)
        cfg.clock = lambda: START + timedelta(seconds=self.t)
        self.market = Market(cfg, now=0.0)
        self.wanted = {TR_TRADES: self.market.symbols, TR_TOTAL: self.market.symbols}
        self.records: list = []

    def advance(self, seconds: float, step: float = 0.1) -> None:
        end = self.t + seconds
        while self.t < end - 1e-9:
            self.t = round(self.t + step, 6)
            for g in self.market.generate(round(step / 0.01), self.t, (), self.wanted):
                if g.tr_id == TR_TRADES:
                    for f, _i, _n in g.frames:
                        self.records.extend(decode_message(f).records)


def check_vi_cycle(d: Driven, kind: str, seconds: float) -> None:
    (ev,) = [e for e in d.market.vi_events() if e.code == HOT]
    assert ev.kind == kind and not ev.active and ev.venue == "krx"
    assert ev.end - ev.start >= seconds - 1e-9                          # the (compressed) 2 minutes
    hist = d.market.history(HOT)
    auction = hist[ev.print_index]
    before = hist[ev.print_index - 1]
    # nothing printed between the trigger and the auction: the print follows the last trade before
    assert before.kind == "normal" and auction.kind == f"{kind}_vi" and auction.price == ev.print_price
    assert auction.time == ev.end_time and before.time <= ev.start_time <= auction.time
    after = hist[ev.print_index + 1:]
    assert after and {t.kind for t in after} == {"normal"}              # continuous trading resumes
    assert abs(ev.trigger_price - ev.reference) * 100 >= \
        (DYNAMIC.dynamic_pct if kind == "dynamic" else STATIC_ONLY.static_pct) * ev.reference * 0.999
    # the records: the auction print carries HOUR_CLS_CODE C and the static reference
    recs = {r.cum_volume: r for r in d.records if r.stock_code == HOT}
    rec = recs[auction.cum_volume]
    assert rec.hour_class is HourClass.VI and rec.hour_class_code == "C"
    assert rec.market_operation_code == "20" and not rec.halted
    assert rec.vi_standard_price == ev.static_reference
    assert rec.market_state is (MarketState.STATIC_VI if kind == "static" else MarketState.DYNAMIC_VI)
    nxt_rec = recs[after[0].cum_volume]
    assert nxt_rec.market_state is MarketState.NORMAL and nxt_rec.hour_class_code == "0"
    assert nxt_rec.vi_standard_price == auction.price                   # the new static reference
    # the integrated tape has the same single print
    total = d.market.history(HOT, "total")
    assert total[ev.total_index].kind == f"{kind}_vi" and total[ev.total_index].price == auction.price


def test_static_vi_pauses_then_one_auction_print():
    d = Driven(STATIC_ONLY)
    d.advance(3.0)
    d.market.jump(HOT, 14.0, 3.0, d.t)          # through the +10 % band from the day's first print
    d.advance(8.0)
    check_vi_cycle(d, "static", STATIC_ONLY.seconds)
    assert not d.market.symbols[HOT].in_vi


def test_dynamic_vi_from_a_fast_move():
    d = Driven(DYNAMIC)
    d.advance(3.0)
    d.market.jump(HOT, -6.0, 2.0, d.t)          # 3 % within the 10-s window long before -6 %
    d.advance(8.0)
    check_vi_cycle(d, "dynamic", DYNAMIC.seconds)
    assert d.market.vi_events()[0].trigger_price < d.market.vi_events()[0].reference


def test_slow_drift_triggers_no_vi_and_off_means_off():
    d = Driven(DYNAMIC)
    d.market.jump(HOT, 2.5, 20.0, 0.0)
    d.advance(25.0)
    assert d.market.vi_events() == []
    off = Driven(None)
    off.market.jump(HOT, 14.0, 2.0, 0.0)
    off.advance(5.0)
    assert off.market.vi_events() == [] and {t.kind for t in off.market.history(HOT)} == {"normal"}


def test_vi_on_nxt_stops_both_venues():
    d = Driven(STATIC_ONLY, nxt=True, codes=(HOT,))
    d.advance(2.0)
    d.market.jump(HOT, 14.0, 2.0, d.t)
    d.advance(8.0)
    (ev,) = d.market.vi_events()
    total = d.market.history(HOT, "total")
    assert total[ev.total_index - 1].kind == "normal" and total[ev.total_index].kind == "static_vi"
    # neither venue printed between the last trade before the trigger and the auction print
    # (consecutive on the integrated tape), the print is KRX's, then both venues trade again
    assert total[ev.total_index].venue == "krx"
    assert {t.venue for t in total[:ev.total_index]} == {"krx", "nxt"}
    assert {t.venue for t in total[ev.total_index + 1:]} == {"krx", "nxt"}
    assert all(t.kind == "normal" for t in d.market.history(HOT, "nxt"))


def test_demo_spikes_trigger_vi():
    """At the demo settings (spikes + DEMO_VI) some spikes are fast enough for a dynamic VI."""
    cfg = SimConfig(seed=2, spikes=DEMO_SPIKES, vi=DEMO_VI)
    t = {"t": 0.0}
    cfg.clock = lambda: START + timedelta(seconds=t["t"])
    market = Market(cfg, now=0.0)
    while t["t"] < 1_800 and not [e for e in market.vi_events() if not e.active]:
        t["t"] = round(t["t"] + 0.5, 6)
        market.generate(50, t["t"], ())
    done = [e for e in market.vi_events() if not e.active]
    assert done, "no VI within 30 simulated minutes of demo spikes"
    ev = done[0]
    assert any(m.code == ev.code and m.start <= ev.start for m in market.moves())
    assert 120.0 <= ev.end - ev.start <= 150.0 + 0.5                     # 2 minutes + random end ≤ 30 s
    assert market.history(ev.code)[ev.print_index].kind == f"{ev.kind}_vi"


def test_scripted_and_faulted_halts_in_the_market():
    d = Driven(None, halts=())
    d.advance(1.0)
    ev = d.market.halt(HOT, 2.0, d.t)
    n = d.market.symbols[HOT].total.count
    other = d.market.symbols["000660"].krx.count
    d.advance(1.5)
    assert d.market.symbols[HOT].total.count == n and d.market.symbols[HOT].halted   # nothing prints
    assert d.market.symbols["000660"].krx.count > other                            # others trade
    frame = d.market.expected_frame(HOT, "H0STANC0")
    rec = decode_message(frame).records[0]
    assert isinstance(rec, GenericRecord) and len(rec.fields) == 45 and rec.fields[35] == "Y"
    assert market_state(rec) is MarketState.HALTED
    d.advance(1.0)
    assert not ev.active and d.market.symbols[HOT].total.count > n and d.market.halts() == [ev]
    assert d.market.expected_frame(HOT, "H0STANC0") is None


async def test_vi_over_the_socket_expected_frames_rest_and_vi_status():
    vi = ViSpec(dynamic_pct=50.0, dynamic_pct_other=50.0, seconds=1.5, random_end=0.0)
    async with Simulator(SimConfig(rate=1_000, seed=4, vi=vi)) as sim, aiohttp.ClientSession() as http:
        key = await approval_key(sim.rest_url)
        token = await access_token(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        assert (await subscribe(ws, key, HOT, tr_id="H0STANC0")).kind is AckKind.SUBSCRIBED
        await asyncio.sleep(0.3)
        sim.jump(HOT, 15.0, 0.5)
        frames: list[DataFrame] = []
        seen_vi_rest = False

        async def until_print() -> None:
            nonlocal seen_vi_rest
            while True:
                m = decode_message(await ws.recv())
                if not isinstance(m, DataFrame):
                    continue
                frames.append(m)
                if m.tr_id == "H0STANC0" and not seen_vi_rest:
                    _, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                             {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": HOT})
                    seen_vi_rest = body["output"]["vi_cls_code"] == "Y"
                    _, body = await rest_get(http, sim.rest_url, "inquire-vi-status", token, "FHPST01390000",
                                             {"FID_INPUT_ISCD": HOT})
                    (row,) = vi_status_rows(body)
                    assert row.active and row.kind == "static" and row.code == HOT
                if m.tr_id == TR_TRADES and any(r.hour_class_code == "C" for r in m.records):
                    return
        await asyncio.wait_for(until_print(), 15)
        expected = [r for f in frames if f.tr_id == "H0STANC0" for r in f.records]
        assert expected and all(r.fields[43] == "C" and market_state(r).vi for r in expected)
        assert seen_vi_rest
        (ev,) = sim.vi_events()
        trades = [r for f in frames if f.tr_id == TR_TRADES for r in f.records]
        auction = trades[-1]
        assert auction.hour_class_code == "C" and auction.market_state is MarketState.STATIC_VI
        assert auction.price == ev.print_price and auction.vi_standard_price == ev.static_reference
        _, body = await rest_get(http, sim.rest_url, "inquire-vi-status", token, "FHPST01390000", {})
        (row,) = vi_status_rows(body)
        assert not row.active and row.end_hhmmss == ev.end_time and row.price == ev.trigger_price
        await ws.close()


async def test_halt_over_the_socket_and_rest():
    async with Simulator(SimConfig(rate=1_000, seed=6, halts=[HaltSpec("000660", 0.0, None)])) as sim, \
            aiohttp.ClientSession() as http:
        key = await approval_key(sim.rest_url)
        token = await access_token(sim.rest_url)
        ws = await connect(sim.ws_url)
        for tr in (TR_TRADES, "H0STANC0"):
            assert (await subscribe(ws, key, HOT, tr_id=tr)).kind is AckKind.SUBSCRIBED
        await asyncio.sleep(0.3)
        ev = sim.faults.halt(HOT, 1.0)
        n = len(sim.history(HOT))
        q = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": HOT}
        _, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100", q)
        assert body["output"]["temp_stop_yn"] == "Y"
        frames: list[DataFrame] = []

        async def until_expected() -> None:
            while True:
                m = decode_message(await ws.recv())
                if isinstance(m, DataFrame):
                    frames.append(m)
                    if m.tr_id == "H0STANC0":
                        return
        await asyncio.wait_for(until_expected(), 5)
        assert market_state(frames[-1].records[0]) is MarketState.HALTED
        assert frames[-1].records[0].fields[35] == "Y"
        await asyncio.sleep(1.2)
        assert not ev.active and len(sim.history(HOT)) > n                   # resumed
        assert all(t.kind == "normal" for t in sim.history(HOT)[n:])
        _, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100", q)
        assert body["output"]["temp_stop_yn"] == "N"
        scripted = [h for h in sim.halts() if h.code == "000660"]
        assert len(scripted) == 1 and scripted[0].active and sim.history("000660") == []
        _, body = await rest_get(http, sim.rest_url, "inquire-price", token, "FHKST01010100",
                                 {**q, "FID_INPUT_ISCD": "000660"})
        assert body["output"]["temp_stop_yn"] == "Y"
        sim.faults.resume("000660")
        await asyncio.sleep(0.5)
        assert not scripted[0].active and sim.history("000660")
        await ws.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_demo_first_alert_is_not_held_up_by_a_vi(seed):
    """With the demo's VI on, the first spike (≈0.2 %/s, inside the dynamic band) still shows a
    newcomer a ≥5 % move within two minutes; the later, faster spikes are the ones that VI."""
    market = run_market(SimConfig(seed=seed, spikes=DEMO_SPIKES, vi=DEMO_VI), 120.0)
    assert market.vi_events() == []
    assert max(largest_move_within(market.history(c)) for c in market.codes()) >= 5.0


def test_vi_and_nxt_switches_on_the_demo_paths_only():
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args([])
    assert (args.no_vi, args.krx_only) == (False, False)             # kis-desk sim: both on
    assert parser.parse_args(["--no-vi", "--krx-only"]).no_vi is True
    assert SimConfig().vi is None and SimConfig().nxt is False       # built in code: off


def test_spikes_prefer_symbols_watched_on_any_venue():
    cfg = SimConfig(seed=4, spikes=DEMO_SPIKES, nxt=True)
    t = {"t": 0.0}
    cfg.clock = lambda: START + timedelta(seconds=t["t"])
    market = Market(cfg, now=0.0)
    watched = {"000660": None, "035420": None}
    while t["t"] < 700:
        t["t"] = round(t["t"] + 1.0, 6)
        market.generate(100, t["t"], {}, {TR_TRADES: {}, TR_TOTAL: watched})
    spikes = [m for m in market.moves() if m.kind == "spike"]
    assert spikes and {m.code for m in spikes} <= set(watched)
