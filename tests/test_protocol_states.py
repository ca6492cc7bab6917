"""Market-state fields of trade records: typed accessors and market_state() (kis-protocol.md §6, §10)."""

from __future__ import annotations

import json

import pytest

from kis_desk.protocol.codec import build_data_frame, decode_message
from kis_desk.protocol.messages import DataFrame
from kis_desk.protocol.records import GenericRecord, TradeRecord
from kis_desk.protocol.states import (
    HourClass, MarketOperation, MarketState, SessionClass, TradeKind, market_state, vi_kind,
    vi_status_rows,
)

# kis-protocol.md §11.1, verbatim
REAL_1 = "0|H0STCNT0|001|005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^607878273600^25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^5^-300^100741^2^400^20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^^62700"
REAL_2 = "0|H0STCNT0|001|005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"


def record(frame: str) -> TradeRecord:
    msg = decode_message(frame)
    assert isinstance(msg, DataFrame) and len(msg.records) == 1
    rec = msg.records[0]
    assert isinstance(rec, TradeRecord)
    return rec


def variant(frame: str, tr_id: str = "H0STCNT0", **by_index: str) -> TradeRecord:
    fields = frame.split("|", 3)[3].split("^")
    for k, v in by_index.items():
        fields[int(k[1:])] = v
    return record(build_data_frame(tr_id, [fields]))


@pytest.mark.parametrize("frame", [REAL_1, REAL_2])
def test_real_frames_are_normal_regular_trading(frame):
    r = record(frame)
    assert r.market_operation == MarketOperation(SessionClass.REGULAR, TradeKind.NORMAL, "20")
    assert r.trading_halt_code == "N" and not r.halted
    assert r.hour_class is HourClass.REGULAR and r.hour_class_code == "0"
    assert r.market_end_code == ""
    assert r.vi_standard_price == r.open          # the real frames carry the open there
    assert r.market_state is MarketState.NORMAL is market_state(r)
    d = r.to_dict()
    assert (d["market_state"], d["hour_class_code"], d["market_end_code"]) == ("normal", "0", "")
    assert d["vi_standard_price"] == r.open
    json.dumps(d)


def test_halt_wins_over_everything():
    r = variant(REAL_1, f35="Y", f43="C")
    assert r.halted and r.market_state is MarketState.HALTED


def test_vi_static_and_dynamic_by_distance_from_the_static_reference():
    # 62700 vs reference 57000: +10.0 % -> static; vs 61000: +2.8 % -> dynamic
    assert variant(REAL_1, f43="C", f45="57000").market_state is MarketState.STATIC_VI
    assert variant(REAL_1, f43="C", f45="61000").market_state is MarketState.DYNAMIC_VI
    assert variant(REAL_1, f43="C", f45="").market_state is MarketState.DYNAMIC_VI  # no reference
    assert variant(REAL_1, f43="C").hour_class is HourClass.VI
    assert MarketState.STATIC_VI.vi and MarketState.DYNAMIC_VI.vi and not MarketState.HALTED.vi
    assert vi_kind(110, 100) is MarketState.STATIC_VI and vi_kind(90, 100) is MarketState.STATIC_VI
    assert vi_kind(109, 100) is MarketState.DYNAMIC_VI and vi_kind(None, 100) is MarketState.DYNAMIC_VI


@pytest.mark.parametrize(("mkop", "hour", "state"), [
    ("20", "A", MarketState.AUCTION), ("10", "B", MarketState.AUCTION),
    ("40", "D", MarketState.SINGLE_PRICE), ("40", "0", MarketState.SINGLE_PRICE),
    ("10", "0", MarketState.PRE_OPEN), ("30", "0", MarketState.AFTER_HOURS),
    ("31", "0", MarketState.AFTER_HOURS), ("22", "0", MarketState.NORMAL),
    ("70", "0", MarketState.NORMAL), ("", "", MarketState.NORMAL),
])
def test_sessions_and_auctions(mkop, hour, state):
    r = variant(REAL_2, "H0NXCNT0", f34=mkop, f43=hour)
    assert r.tr_id == "H0NXCNT0" and r.market_state is state


def test_unknown_codes_decode_without_raising():
    r = variant(REAL_2, f34="Z", f43="Q", f44="1")
    assert r.hour_class is HourClass.UNKNOWN and r.hour_class_code == "Q"
    assert r.market_operation == MarketOperation(SessionClass.UNKNOWN, TradeKind.UNKNOWN, "Z")
    assert r.market_end_code == "1" and r.market_state is MarketState.NORMAL
    assert MarketOperation.decode("31") == (SessionClass.AFTER_CLOSE, TradeKind.CLOSING_PRICE, "31")


def test_expected_price_record_layout_reads_the_same_positions():
    fields = REAL_1.split("|", 3)[3].split("^")[:45]           # H0STANC0: the first 45 fields
    fields[43] = "C"
    msg = decode_message(build_data_frame("H0STANC0", [fields]))
    assert isinstance(msg, DataFrame) and isinstance(msg.records[0], GenericRecord)
    assert market_state(msg.records[0]) is MarketState.DYNAMIC_VI   # no VI_STND_PRC in this TR
    fields[35] = "Y"
    assert market_state(GenericRecord("H0STANC0", tuple(fields))) is MarketState.HALTED


def test_vi_status_rows():
    body = {"rt_cd": "0", "output": [
        {"hts_kor_isnm": "미래아이앤지", "mksc_shrn_iscd": "007120", "vi_cls_code": "N",
         "bsop_date": "20260527", "cntg_vi_hour": "180030", "vi_cncl_hour": "180238",
         "vi_kind_code": "2", "vi_prc": "1496", "vi_stnd_prc": "0", "vi_dprt": "0.00",
         "vi_dmc_stnd_prc": "1361", "vi_dmc_dprt": "9.92", "vi_count": "4"},
        {"mksc_shrn_iscd": "005930", "vi_cls_code": "Y", "vi_kind_code": "1", "vi_prc": "x"},
        "garbage",
    ]}
    a, b = vi_status_rows(body)
    assert (a.code, a.active, a.kind, a.start_hhmmss, a.end_hhmmss, a.price, a.dynamic_reference,
            a.count) == ("007120", False, "dynamic", "180030", "180238", 1496, 1361, 4)
    assert (b.code, b.active, b.kind, b.price) == ("005930", True, "static", None)
    assert vi_status_rows({}) == [] and vi_status_rows({"output": "x"}) == []
