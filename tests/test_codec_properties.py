"""Property tests: valid records round-trip; garbage never raises (kis-protocol.md §5, §13)."""

from __future__ import annotations

import json
from datetime import date, time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_desk.protocol.codec import build_control_reply, build_data_frame, decode_message
from kis_desk.protocol.messages import ControlReply, DataFrame, PingPong, ProtocolError
from kis_desk.protocol.records import GenericRecord, TradeRecord

MESSAGE_TYPES = (ControlReply, PingPong, DataFrame, ProtocolError)
TRADE_TRS = ("H0STCNT0", "H0UNCNT0", "H0NXCNT0")

digits = st.integers(min_value=0, max_value=10**13).map(str)
codes = st.one_of(
    st.integers(0, 999_999).map(lambda n: f"{n:06d}"),
    st.integers(0, 999_999).map(lambda n: f"Q{n:06d}"),
)
times = st.times(min_value=time(0, 0), max_value=time(23, 59, 59)).map(lambda t: t.strftime("%H%M%S"))
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
# any text for the unvalidated fields, except the field separator
free_text = st.text(st.characters(exclude_characters="^", exclude_categories=("Cs",)), max_size=12)


@st.composite
def trade_record(draw, width: int) -> list[str]:
    fields = draw(st.lists(free_text, min_size=width, max_size=width))
    fields[0] = draw(codes)
    fields[1] = draw(times)
    fields[2] = draw(digits)
    fields[12] = draw(digits)
    fields[13] = draw(digits)
    fields[33] = draw(dates)
    return fields


@st.composite
def trade_frame(draw) -> tuple[str, list[list[str]]]:
    tr_id = draw(st.sampled_from(TRADE_TRS))
    width = draw(st.integers(46, 50))
    n = draw(st.integers(1, 25))
    return tr_id, [draw(trade_record(width)) for _ in range(n)]


def _check_usable(msg) -> None:
    """Every record the codec hands out must be fully usable (its to_dict never raises)."""
    if isinstance(msg, DataFrame):
        for r in msg.records:
            json.dumps(r.to_dict(), ensure_ascii=False)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(trade_frame(), st.booleans())
def test_valid_records_round_trip(frame, as_bytes):
    tr_id, records = frame
    text = build_data_frame(tr_id, records)
    msg = decode_message(text.encode("utf-8") if as_bytes else text)
    assert isinstance(msg, DataFrame), msg
    assert msg.tr_id == tr_id and msg.declared_count == len(records) and msg.errors == ()
    assert [list(r.fields) for r in msg.records] == records
    for r, f in zip(msg.records, records):
        assert isinstance(r, TradeRecord)
        assert (r.stock_code, r.price, r.volume, r.cum_volume) == (f[0], int(f[2]), int(f[12]), int(f[13]))
        assert r.timestamp.strftime("%Y%m%d%H%M%S") == f[33] + f[1]
        assert len(r.extras) == len(f) - 46
    _check_usable(msg)


@settings(max_examples=200)
@given(trade_frame(), st.data())
def test_bad_records_yield_errors_good_ones_survive(frame, data):
    tr_id, records = frame
    bad = data.draw(st.sets(st.integers(0, len(records) - 1)))
    breakers = [(2, "x1"), (12, "-5"), (13, ""), (1, "246000"), (33, "20230230"), (0, "12345")]
    for i in bad:
        pos, value = data.draw(st.sampled_from(breakers))
        records[i][pos] = value
    msg = decode_message(build_data_frame(tr_id, records))
    assert isinstance(msg, DataFrame)
    good = [r for i, r in enumerate(records) if i not in bad]
    assert [list(r.fields) for r in msg.records] == good
    assert len(msg.errors) == len(bad)
    assert [int(e.split()[1].split("/")[0]) - 1 for e in msg.errors] == sorted(bad)
    _check_usable(msg)


def _never_raises(raw) -> None:
    msg = decode_message(raw)
    assert isinstance(msg, MESSAGE_TYPES)
    _check_usable(msg)


REAL = ("0|H0STCNT0|001|005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^"
        "9694968^607878273600^25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^5^"
        "-300^100741^2^400^20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^^62700")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["header", "body", "tr_id", "tr_key", "rt_cd", "msg_cd", "msg1", "output",
                         "iv", "key", "encrypt", "datetime", "x"]), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=500)
@given(st.text(max_size=400))
def test_random_text(text):
    _never_raises(text)


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_random_bytes(raw):
    _never_raises(raw)


@settings(max_examples=300)
@given(st.integers(0, len(REAL)), st.binary(max_size=8))
def test_truncated_and_corrupted_real_frame(cut, junk):
    _never_raises(REAL[:cut])
    _never_raises(REAL[:cut].encode() + junk)              # including invalid UTF-8 tails
    _never_raises(junk + REAL[cut:].encode())


@settings(max_examples=300)
@given(st.sampled_from(["0", "1", "9", ""]), st.sampled_from(list(TRADE_TRS) + ["H0STASP0", "H0STCNI0", "", "X|Y"]),
       st.one_of(st.integers(-5, 10**30).map(str), st.sampled_from(["", "001", "0x1", " 1", "١", "²", "1e3"])),
       st.text(max_size=300))
def test_bad_headers_and_counts(enc, tr_id, count, payload):
    _never_raises(f"{enc}|{tr_id}|{count}|{payload}")
    _never_raises(f"{enc}|{tr_id}|{count}|" + REAL.split("|", 3)[3] * 3)


def test_huge_counts():
    payload = REAL.split("|", 3)[3]
    for count in ("999", "1000000", "9" * 400, "0" * 50 + "1"):
        _never_raises(f"0|H0STCNT0|{count}|{payload}")
    _never_raises("0|H0STCNT0|999|" + "^" * 1_000_000)


@settings(max_examples=400)
@given(json_values)
def test_json_junk(value):
    _never_raises(json.dumps(value))
    _never_raises(json.dumps({"header": value, "body": value}))
    _never_raises(json.dumps({"header": {"tr_id": "PINGPONG", "datetime": value}}))
    _never_raises(json.dumps({"header": {"tr_id": value}, "body": {"msg_cd": "OPSP0000", "rt_cd": value,
                                                                   "msg1": value, "output": value}}))


def test_deeply_nested_json():
    for depth in (100, 10_000, 200_000):
        _never_raises("[" * depth + "]" * depth)
        _never_raises('{"a":' * depth + "1" + "}" * depth)
        _never_raises('{"header":' * depth + "{}" + "}" * depth)


@settings(max_examples=200)
@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=10), st.text(max_size=10), st.text(max_size=40))
def test_control_builder_round_trip(tr_id, tr_key, rt_cd, msg_cd, msg1):
    msg = decode_message(build_control_reply(tr_id, tr_key, rt_cd, msg_cd, msg1))
    if tr_id == "PINGPONG":
        return
    assert isinstance(msg, ControlReply)
    assert (msg.tr_id, msg.tr_key, msg.rt_cd, msg.msg_cd, msg.msg1) == (tr_id, tr_key, rt_cd, msg_cd, msg1)


@settings(max_examples=100)
@given(st.lists(st.lists(free_text, min_size=3, max_size=3), min_size=1, max_size=25))
def test_generic_records_round_trip(records):
    msg = decode_message(build_data_frame("H0ZZZZ0", records))
    assert isinstance(msg, DataFrame)
    assert all(isinstance(r, GenericRecord) for r in msg.records)
    assert [list(r.fields) for r in msg.records] == records


@settings(max_examples=400)
@given(trade_record(46), st.lists(st.tuples(st.sampled_from([0, 1, 2, 12, 13, 33]),
                                            st.text("0123456789²³¹٣０-+. Q", max_size=9)), max_size=4))
def test_validated_fields_with_digit_lookalikes(fields, edits):
    """'²' is ``isdigit()`` but not ``int()``-able: such records must be rejected, not handed out."""
    for pos, value in edits:
        fields[pos] = value
    _never_raises(build_data_frame("H0STCNT0", [fields]))
    _never_raises(build_data_frame("H0STCNT0", [fields, fields]))
