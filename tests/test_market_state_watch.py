"""MarketStateWatch: which quiet symbols are asked about (and how often), and how trades end a
halt or VI state. Simulated monotonic clock; the probe answers with real PriceQuote values."""

from __future__ import annotations

from datetime import datetime

from kis_desk.core.events import MarketStateEvent, event_from_dict
from kis_desk.core.ticks import Tick
from kis_desk.feed.market_state import MarketStateConfig, MarketStateWatch
from kis_desk.feed.rest import PriceQuote, parse_price
from kis_desk.protocol.records import KST
from kis_desk.protocol.states import ViStatus

NOW = datetime(2026, 3, 3, 10, 0, tzinfo=KST)


class World:
    def __init__(self, details=None, **cfg) -> None:
        self.t = 0.0
        self.answers: dict[str, PriceQuote | Exception] = {}
        self.asked: list[str] = []
        self.events: list[MarketStateEvent] = []
        self.open = True
        self.watch = MarketStateWatch(self.probe, self.events.append,
                                      config=MarketStateConfig(**cfg), active=lambda: self.open,
                                      clock=lambda: NOW, monotonic=lambda: self.t, details=details)

    async def probe(self, code: str) -> PriceQuote:
        self.asked.append(code)
        a = self.answers.get(code, quote(code))
        if isinstance(a, Exception):
            raise a
        return a


def quote(code: str, halted: bool = False, vi: bool = False) -> PriceQuote:
    return PriceQuote(code, 1000, 0, 0.0, "3", 10, halted=halted, vi=vi)


def trade(code: str, state: str = "") -> Tick:
    return Tick(code, NOW, 1000, 1, 1, None, None, None, 0.0, "ws", "krx", state)


async def test_only_quiet_symbols_are_asked_at_most_max_probes_per_round():
    w = World(quiet_after=10.0, quiet_recheck=30.0, max_probes=2)
    w.watch.set_codes(["A", "B", "C", "D"])
    w.t = 9.0
    w.watch.on_ticks([trade("A")])
    assert await w.watch.probe_once() == 0                 # nobody quiet for 10 s yet
    w.t = 12.0
    assert await w.watch.probe_once() == 2 and w.asked == ["B", "C"]
    assert await w.watch.probe_once() == 1 and w.asked[-1] == "D"
    assert await w.watch.probe_once() == 0                 # all normal: again in 30 s
    w.t = 19.5
    assert await w.watch.probe_once() == 1 and w.asked[-1] == "A"   # quiet since 9.0
    w.watch.on_ticks([trade("B")])                          # B trades, then is quiet again:
    w.t = 29.0
    assert await w.watch.probe_once() == 0
    w.t = 29.5                                              # a new quiet stretch, asked at once
    assert await w.watch.probe_once() == 1 and w.asked[-1] == "B"
    assert w.events == [] and w.watch.states() == {}
    w.open = False
    w.t = 100.0
    assert await w.watch.probe_once() == 0                 # a closed market is quiet for all


async def test_halt_found_by_probe_rechecked_and_ended_by_a_trade():
    w = World(quiet_after=10.0, recheck=5.0, max_probes=4)
    w.watch.set_codes(["A", "B"])
    w.answers["A"] = quote("A", halted=True)
    w.t = 11.0
    await w.watch.probe_once()
    assert w.watch.states() == {"A": "halted"}
    assert [(e.stock_code, e.state, e.source, e.since) for e in w.events] == [
        ("A", "halted", "probe", NOW)]
    w.t = 15.0
    assert await w.watch.probe_once() == 0                 # rechecked every 5 s
    w.t = 16.0
    assert await w.watch.probe_once() == 1 and w.asked[-1] == "A"
    w.watch.on_ticks([trade("A")])                          # trading again
    assert w.watch.states() == {} and w.events[-1].state == "" and w.events[-1].source == "trade"


async def test_vi_ends_with_its_auction_print_and_failed_probes_are_counted():
    w = World(quiet_after=1.0, max_probes=4)
    w.watch.set_codes(["A", "B"])
    w.answers["A"] = quote("A", vi=True)
    w.answers["B"] = RuntimeError("EGW00201 rate limit")
    w.t = 2.0
    await w.watch.probe_once()
    assert w.watch.states() == {"A": "vi"} and w.watch.probe_errors == 1
    w.watch.on_ticks([trade("A", "dynamic_vi")])           # the single auction print
    assert w.watch.state_of("A") == ""
    w.watch.on_ticks([trade("B", "halted")])               # a record that says halted
    assert w.watch.states() == {"B": "halted"}
    w.watch.set_codes(["A"])                                # B no longer watched: forgotten
    assert w.watch.states() == {}
    assert [e.state for e in w.events] == ["vi", "", "halted"]
    assert event_from_dict(w.events[0].to_dict()) == w.events[0]      # remote desktops


def test_inquire_price_fields_say_halted_and_vi():
    body = {"output": {"stck_prpr": "1000", "acml_vol": "10", "temp_stop_yn": "Y", "vi_cls_code": "N"}}
    q = parse_price("A", body)
    assert (q.halted, q.vi) == (True, False)
    body["output"].update(temp_stop_yn="N", vi_cls_code="Y")
    assert (parse_price("A", body).halted, parse_price("A", body).vi) == (False, True)
    del body["output"]["temp_stop_yn"], body["output"]["vi_cls_code"]
    assert (parse_price("A", body).halted, parse_price("A", body).vi) == (False, False)


async def test_vi_details_from_the_vi_status_endpoint_once_then_not_after_a_refusal():
    asked: list[str] = []
    rows = {"A": [ViStatus("A", "가", False, "static", "20260303", "093000", "093200", 1100, 1000, None, 1),
                  ViStatus("A", "가", True, "dynamic", "20260303", "095955", "", 1030, 0, 1000, 2)]}

    async def details(code: str) -> list[ViStatus]:
        asked.append(code)
        if code not in rows:
            raise RuntimeError("OPSQ0002 없는 서비스 코드 입니다")     # a mock account
        return rows[code]

    w = World(details=details, quiet_after=1.0, quiet_recheck=10.0, recheck=5.0, max_probes=4)
    w.watch.set_codes(["A", "B"])
    w.answers["A"] = quote("A", vi=True)
    w.t = 2.0
    await w.watch.probe_once()
    (e,) = w.events
    # the running VI's row: its kind, its start (KST) and the dynamic standard price
    assert (e.stock_code, e.state, e.kind, e.reference, e.source) == ("A", "vi", "dynamic", 1000, "probe")
    assert e.since == datetime(2026, 3, 3, 9, 59, 55, tzinfo=KST)
    w.t = 8.0
    await w.watch.probe_once()                      # rechecked: still VI, not looked up again
    assert asked == ["A"] and len(w.events) == 1
    w.answers["B"] = quote("B", vi=True)
    w.watch.on_ticks([trade("A", "dynamic_vi")])    # A's auction print ends its VI
    w.answers["A"] = quote("A")
    assert (w.events[-1].state, w.events[-1].kind) == ("", "dynamic")
    w.t = 20.0
    await w.watch.probe_once()
    assert asked == ["A", "B"] and w.watch.detail_errors == 1
    assert (w.events[-1].stock_code, w.events[-1].state, w.events[-1].kind, w.events[-1].since) == (
        "B", "vi", "", NOW)                         # without details: when it was seen
    w.answers["B"] = quote("B")
    w.t = 30.0
    w.watch.set_codes(["A", "B", "C"])              # C: quiet from now on
    w.answers["C"] = quote("C", vi=True)
    w.t = 32.0
    await w.watch.probe_once()                      # the refusal is not asked again
    assert asked == ["A", "B"] and w.watch.states() == {"C": "vi"}
    assert [e.state for e in w.events if e.stock_code == "B"] == ["vi", ""]
