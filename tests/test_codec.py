"""Codec against the real/literal vectors of kis-protocol.md §11."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from kis_desk.protocol.codec import (
    build_approval_request,
    build_control_reply,
    build_data_frame,
    build_pingpong,
    build_subscription,
    build_token_request,
    decode_message,
    decrypt_payload,
    encrypt_payload,
)
from kis_desk.protocol.fields import H0STCNT0_FIELDS
from kis_desk.protocol.messages import AckKind, ControlReply, DataFrame, PingPong, ProtocolError
from kis_desk.protocol.records import KST, GenericRecord, TradeRecord

# §11.1 — copied verbatim
FRAME_1 = "0|H0STCNT0|001|005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^607878273600^25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^5^-300^100741^2^400^20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^^62700"
FRAME_2 = "0|H0STCNT0|001|005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"

# §6 table, "Example" column (the 2023-03-24 frame), field by field
SPEC_EXAMPLE_1 = [
    ("MKSC_SHRN_ISCD", "005930"), ("STCK_CNTG_HOUR", "112616"), ("STCK_PRPR", "62700"),
    ("PRDY_VRSS_SIGN", "2"), ("PRDY_VRSS", "400"), ("PRDY_CTRT", "0.64"),
    ("WGHN_AVRG_STCK_PRC", "62700.41"), ("STCK_OPRC", "62700"), ("STCK_HGPR", "63000"),
    ("STCK_LWPR", "62300"), ("ASKP1", "62700"), ("BIDP1", "62600"), ("CNTG_VOL", "125"),
    ("ACML_VOL", "9694968"), ("ACML_TR_PBMN", "607878273600"), ("SELN_CNTG_CSNU", "25807"),
    ("SHNU_CNTG_CSNU", "15918"), ("NTBY_CNTG_CSNU", "-9889"), ("CTTR", "93.01"),
    ("SELN_CNTG_SMTN", "4614191"), ("SHNU_CNTG_SMTN", "4291558"), ("CCLD_DVSN", "1"),
    ("SHNU_RATE", "0.45"), ("PRDY_VOL_VRSS_ACML_VOL_RATE", "63.03"), ("OPRC_HOUR", "090013"),
    ("OPRC_VRSS_PRPR_SIGN", "3"), ("OPRC_VRSS_PRPR", "0"), ("HGPR_HOUR", "090646"),
    ("HGPR_VRSS_PRPR_SIGN", "5"), ("HGPR_VRSS_PRPR", "-300"), ("LWPR_HOUR", "100741"),
    ("LWPR_VRSS_PRPR_SIGN", "2"), ("LWPR_VRSS_PRPR", "400"), ("BSOP_DATE", "20230324"),
    ("NEW_MKOP_CLS_CODE", "20"), ("TRHT_YN", "N"), ("ASKP_RSQN1", "71292"), ("BIDP_RSQN1", "244009"),
    ("TOTAL_ASKP_RSQN", "2795345"), ("TOTAL_BIDP_RSQN", "2044512"), ("VOL_TNRT", "0.16"),
    ("PRDY_SMNS_HOUR_ACML_VOL", "5367918"), ("PRDY_SMNS_HOUR_ACML_VOL_RATE", "180.61"),
    ("HOUR_CLS_CODE", "0"), ("MRKT_TRTM_CLS_CODE", ""), ("VI_STND_PRC", "62700"),
]

# the 2023-06-12 frame, position by position (the spec gives the frame, the table names the positions)
SPEC_EXAMPLE_2 = [
    ("MKSC_SHRN_ISCD", "005930"), ("STCK_CNTG_HOUR", "093354"), ("STCK_PRPR", "71900"),
    ("PRDY_VRSS_SIGN", "5"), ("PRDY_VRSS", "-100"), ("PRDY_CTRT", "-0.14"),
    ("WGHN_AVRG_STCK_PRC", "72023.83"), ("STCK_OPRC", "72100"), ("STCK_HGPR", "72400"),
    ("STCK_LWPR", "71700"), ("ASKP1", "71900"), ("BIDP1", "71800"), ("CNTG_VOL", "1"),
    ("ACML_VOL", "3052507"), ("ACML_TR_PBMN", "219853241700"), ("SELN_CNTG_CSNU", "5105"),
    ("SHNU_CNTG_CSNU", "6937"), ("NTBY_CNTG_CSNU", "1832"), ("CTTR", "84.90"),
    ("SELN_CNTG_SMTN", "1366314"), ("SHNU_CNTG_SMTN", "1159996"), ("CCLD_DVSN", "1"),
    ("SHNU_RATE", "0.39"), ("PRDY_VOL_VRSS_ACML_VOL_RATE", "20.28"), ("OPRC_HOUR", "090020"),
    ("OPRC_VRSS_PRPR_SIGN", "5"), ("OPRC_VRSS_PRPR", "-200"), ("HGPR_HOUR", "090820"),
    ("HGPR_VRSS_PRPR_SIGN", "5"), ("HGPR_VRSS_PRPR", "-500"), ("LWPR_HOUR", "092619"),
    ("LWPR_VRSS_PRPR_SIGN", "2"), ("LWPR_VRSS_PRPR", "200"), ("BSOP_DATE", "20230612"),
    ("NEW_MKOP_CLS_CODE", "20"), ("TRHT_YN", "N"), ("ASKP_RSQN1", "65945"), ("BIDP_RSQN1", "216924"),
    ("TOTAL_ASKP_RSQN", "1118750"), ("TOTAL_BIDP_RSQN", "2199206"), ("VOL_TNRT", "0.05"),
    ("PRDY_SMNS_HOUR_ACML_VOL", "2424142"), ("PRDY_SMNS_HOUR_ACML_VOL_RATE", "125.92"),
    ("HOUR_CLS_CODE", "0"), ("MRKT_TRTM_CLS_CODE", ""), ("VI_STND_PRC", "72100"),
]


def fields_of(frame: str) -> list[str]:
    return frame.split("|", 3)[3].split("^")


def single(frame: str) -> TradeRecord:
    msg = decode_message(frame)
    assert isinstance(msg, DataFrame), msg
    assert msg.errors == () and len(msg.records) == 1
    return msg.records[0]


# -- §11.1 single-record frames ----------------------------------------------------------------

@pytest.mark.parametrize("frame,expected", [(FRAME_1, SPEC_EXAMPLE_1), (FRAME_2, SPEC_EXAMPLE_2)])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_real_frame_every_field(frame, expected, as_bytes):
    msg = decode_message(frame.encode() if as_bytes else frame)
    assert isinstance(msg, DataFrame)
    assert (msg.tr_id, msg.declared_count, msg.encrypted, msg.errors) == ("H0STCNT0", 1, False, ())
    rec = msg.records[0]
    assert isinstance(rec, TradeRecord)
    assert len(rec.fields) == 46 and rec.extras == ()
    assert [name for name, _ in expected] == list(H0STCNT0_FIELDS)
    by_name = rec.raw_by_name()
    for i, (name, value) in enumerate(expected):
        assert rec.fields[i] == value, name
        assert by_name[name] == value, name


def test_real_frame_1_typed_accessors():
    r = single(FRAME_1)
    assert r.stock_code == "005930"
    assert r.timestamp == datetime(2023, 3, 24, 11, 26, 16, tzinfo=KST)
    assert r.timestamp.isoformat() == "2023-03-24T11:26:16+09:00"
    assert (r.price, r.volume, r.cum_volume) == (62700, 125, 9694968)
    assert (r.sign, r.change, r.change_rate) == ("2", 400, 0.64)
    assert r.weighted_avg_price == 62700.41
    assert (r.open, r.high, r.low) == (62700, 63000, 62300)
    assert (r.best_ask, r.best_bid) == (62700, 62600)
    assert r.cum_value == 607878273600
    assert (r.sell_trade_count, r.buy_trade_count, r.net_buy_trade_count) == (25807, 15918, -9889)
    assert r.strength == 93.01
    assert (r.sell_volume_total, r.buy_volume_total) == (4614191, 4291558)
    assert (r.side, r.buy_ratio, r.volume_rate_vs_prev_day) == ("1", 0.45, 63.03)
    assert (r.open_time, r.high_time, r.low_time) == ("090013", "090646", "100741")
    assert r.business_date_text == "20230324"
    assert (r.market_operation_code, r.halted) == ("20", False)
    assert (r.ask_quantity1, r.bid_quantity1) == (71292, 244009)
    assert (r.total_ask_quantity, r.total_bid_quantity) == (2795345, 2044512)
    assert (r.turnover_rate, r.hour_class_code, r.vi_standard_price) == (0.16, "0", 62700)


def test_real_frame_2_typed_accessors_and_to_dict():
    r = single(FRAME_2)
    assert (r.price, r.change, r.change_rate, r.sign) == (71900, -100, -0.14, "5")
    d = r.to_dict()
    assert d["timestamp"] == "2023-06-12T09:33:54+09:00"
    assert {k: d[k] for k in ("tr_id", "stock_code", "price", "volume", "cum_volume", "change",
                              "change_rate")} == {
        "tr_id": "H0STCNT0", "stock_code": "005930", "price": 71900, "volume": 1,
        "cum_volume": 3052507, "change": -100, "change_rate": -0.14}
    json.dumps(d)


@pytest.mark.parametrize("tr_id", ["H0UNCNT0", "H0NXCNT0"])
def test_same_layout_trs(tr_id):
    msg = decode_message(FRAME_1.replace("H0STCNT0", tr_id))
    assert isinstance(msg, DataFrame) and msg.records[0].tr_id == tr_id
    assert isinstance(msg.records[0], TradeRecord)


# -- §11.2 multi-record frames -----------------------------------------------------------------

def chained_records(n: int) -> list[list[str]]:
    """n records alternating the two real layouts; ACML_VOL(k) = ACML_VOL(k-1) + CNTG_VOL(k)."""
    base = [fields_of(FRAME_1), fields_of(FRAME_2)]
    out: list[list[str]] = []
    cum = 9_694_968
    for k in range(n):
        f = list(base[k % 2])
        f[1] = "1126%02d" % (16 + k % 40)
        f[33] = "20230324"
        vol = 100 + k
        cum += vol
        f[12], f[13] = str(vol), str(cum)
        out.append(f)
    return out


@pytest.mark.parametrize("n", [2, 3, 20])
def test_multi_record_frame(n):
    records = chained_records(n)
    frame = build_data_frame("H0STCNT0", records)
    assert frame.startswith(f"0|H0STCNT0|{n:03d}|")
    msg = decode_message(frame)
    assert isinstance(msg, DataFrame) and msg.declared_count == n and msg.errors == ()
    assert [list(r.fields) for r in msg.records] == records
    for prev, cur in zip(msg.records, msg.records[1:]):
        assert cur.cum_volume == prev.cum_volume + cur.volume


def test_real_frames_concatenated():
    frame = "0|H0STCNT0|002|" + FRAME_1.split("|", 3)[3] + "^" + FRAME_2.split("|", 3)[3]
    msg = decode_message(frame)
    assert isinstance(msg, DataFrame)
    assert [r.price for r in msg.records] == [62700, 71900]
    assert msg.records[1].fields[-1] == "72100"


def test_47_field_frame_keeps_extras():
    rec = single(FRAME_1 + "^2")
    assert len(rec.fields) == 47 and rec.extras == ("2",) and rec.price == 62700
    assert rec.vi_standard_price == 62700  # documented positions unshifted
    assert rec.to_dict()["extras"] == ["2"]
    # three 47-field records
    rows = [f + ["2"] for f in chained_records(3)]
    msg = decode_message(build_data_frame("H0STCNT0", rows))
    assert isinstance(msg, DataFrame) and len(msg.records) == 3
    assert all(r.extras == ("2",) for r in msg.records)


def test_bad_record_does_not_cost_its_neighbours():
    rows = chained_records(5)
    rows[1][2] = "abc"           # bad price
    rows[3][33] = "20231345"     # bad date
    msg = decode_message(build_data_frame("H0STCNT0", rows))
    assert isinstance(msg, DataFrame) and msg.declared_count == 5
    assert [r.cum_volume for r in msg.records] == [int(rows[i][13]) for i in (0, 2, 4)]
    assert len(msg.errors) == 2
    assert msg.errors[0].startswith("record 2/5") and "price" in msg.errors[0]
    assert msg.errors[1].startswith("record 4/5") and "date" in msg.errors[1]


@pytest.mark.parametrize("frame,reason", [
    ("0|H0STCNT0|003|" + FRAME_1.split("|", 3)[3], "divide"),        # count says 3, 46 fields
    ("0|H0STCNT0|002|" + FRAME_1.split("|", 3)[3], "at least 46"),   # count says 2: 23 per record
    ("0|H0STCNT0|000|" + FRAME_1.split("|", 3)[3], "count"),
    ("0|H0STCNT0|abc|" + FRAME_1.split("|", 3)[3], "count"),
    ("0|H0STCNT0|001", "four"),
    ("0|H0STCNT0|001|1^2^3", "at least 46"),
    ("2|H0STCNT0|001|x", "neither"),
    ("", "empty"),
])
def test_malformed_frames(frame, reason):
    msg = decode_message(frame)
    assert isinstance(msg, ProtocolError) and reason in msg.reason


def test_generic_tr_keeps_raw_fields():
    fields = [str(i) for i in range(62)]
    msg = decode_message(build_data_frame("H0STASP0", [fields]))
    assert isinstance(msg, DataFrame) and isinstance(msg.records[0], GenericRecord)
    assert list(msg.records[0].fields) == fields
    msg = decode_message("0|H0XXXX0|002|a^b^c^d")
    assert isinstance(msg, DataFrame) and [r.fields for r in msg.records] == [("a", "b"), ("c", "d")]


# -- §11.4 control frames ----------------------------------------------------------------------

ACKS = [
    ('{"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{"iv":"55ce3d099479ce11","key":"tvldhmfplvgcovaqrspclzhdotfzzequ"}}}',
     "H0STCNT0", "005930", "55ce3d099479ce11", "tvldhmfplvgcovaqrspclzhdotfzzequ"),
    ('{"header":{"tr_id":"H0STASP0","tr_key":"066570","encrypt":"N"},"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{"iv":"ca513e8bf725c575","key":"uvbpznjqabrxhowcftgehxghhhsxtwro"}}}',
     "H0STASP0", "066570", "ca513e8bf725c575", "uvbpznjqabrxhowcftgehxghhhsxtwro"),
    ('{"header":{"tr_id":"H0STASP0","tr_key":"005930","encrypt":"N"},"body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS","output":{"iv":"4060f9fcb7b4e2ef","key":"tesnaipyhhcpfrnupdybjhvuabognuch"}}}',
     "H0STASP0", "005930", "4060f9fcb7b4e2ef", "tesnaipyhhcpfrnupdybjhvuabognuch"),
]


@pytest.mark.parametrize("text,tr_id,tr_key,iv,key", ACKS)
def test_subscribe_acks(text, tr_id, tr_key, iv, key):
    msg = decode_message(text)
    assert isinstance(msg, ControlReply)
    assert msg.kind is AckKind.SUBSCRIBED and msg.ok
    assert (msg.tr_id, msg.tr_key, msg.rt_cd, msg.msg_cd, msg.msg1) == (
        tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS")
    assert (msg.iv, msg.key, msg.encrypt) == (iv, key, False)


ERRORS = [
    ('{"header":{"tr_id":"(null)","tr_key":"","encrypt":"N"},"body":{"rt_cd":"9","msg_cd":"OPSP8996","msg1":"ALREADY IN USE appkey"}}',
     AckKind.APPKEY_IN_USE, "(null)", "", "9", "OPSP8996", "ALREADY IN USE appkey"),
    ('{"body":{"rt_cd":"1","msg_cd":"OPSP0011","msg1":"invalid approval : 062f61cb-c756-4b8f-9fab-92113c6fbea4"}}',
     AckKind.INVALID_APPROVAL, "", "", "1", "OPSP0011", "invalid approval : 062f61cb-c756-4b8f-9fab-92113c6fbea4"),
    ('{"body":{"rt_cd":"1","msg_cd":"OPSP0003","msg1":"UNSUBSCRIBE ERROR(not found!)"}}',
     AckKind.NOT_SUBSCRIBED, "", "", "1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)"),
    ('{"header":{"tr_id":"","tr_key":""},"body":{"rt_cd":"1","msg_cd":"OPSP0011","msg1":"invalid approval : NOT FOUND"}}',
     AckKind.INVALID_APPROVAL, "", "", "1", "OPSP0011", "invalid approval : NOT FOUND"),
    ('{"header":{"tr_id":"H0STCNT0","tr_key":"005930"},"body":{"rt_cd":"1","msg_cd":"OPSP0002","msg1":"ALREADY IN SUBSCRIBE"}}',
     AckKind.ALREADY_SUBSCRIBED, "H0STCNT0", "005930", "1", "OPSP0002", "ALREADY IN SUBSCRIBE"),
    ('{"header":{"tr_id":"H0STASP0","tr_key":"000660"},"body":{"rt_cd":"1","msg_cd":"OPSP0008","msg1":"MAX SUBSCRIBE OVER"}}',
     AckKind.MAX_SUBSCRIPTIONS, "H0STASP0", "000660", "1", "OPSP0008", "MAX SUBSCRIBE OVER"),
    ('{"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},"body":{"rt_cd":"0","msg_cd":"OPSP0001","msg1":"UNSUBSCRIBE SUCCESS"}}',
     AckKind.UNSUBSCRIBED, "H0STCNT0", "005930", "0", "OPSP0001", "UNSUBSCRIBE SUCCESS"),
]


@pytest.mark.parametrize("text,kind,tr_id,tr_key,rt_cd,msg_cd,msg1", ERRORS)
def test_error_and_unsubscribe_replies(text, kind, tr_id, tr_key, rt_cd, msg_cd, msg1):
    msg = decode_message(text)
    assert isinstance(msg, ControlReply)
    assert (msg.kind, msg.tr_id, msg.tr_key, msg.rt_cd, msg.msg_cd, msg.msg1) == (
        kind, tr_id, tr_key, rt_cd, msg_cd, msg1)
    assert msg.iv is None and msg.key is None


@pytest.mark.parametrize("msg_cd,kind", [
    ("OPSP0007", AckKind.INTERNAL_ERROR), ("OPSP0009", AckKind.FEED_UNAVAILABLE),
    ("OPSP0010", AckKind.INVALID_APPKEY), ("OPSP8991", AckKind.INVALID_REQUEST),
    ("OPSP8992", AckKind.INVALID_REQUEST), ("OPSP8993", AckKind.INVALID_REQUEST),
    ("OPSP8997", AckKind.INVALID_REQUEST), ("OPSP8998", AckKind.INVALID_REQUEST),
    ("OPSP9990", AckKind.INVALID_REQUEST), ("OPSP9993", AckKind.INTERNAL_ERROR),
    ("OPSP9994", AckKind.INVALID_APPKEY), ("OPSP9999", AckKind.INVALID_REQUEST),
    ("XXXX0000", AckKind.UNKNOWN),
])
def test_msg_code_table(msg_cd, kind):
    text = build_control_reply("H0STCNT0", "005930", "1", msg_cd, "whatever")
    msg = decode_message(text)
    assert isinstance(msg, ControlReply) and msg.kind is kind and not msg.ok


def test_unknown_code_falls_back_on_msg1():
    assert decode_message(build_control_reply("H0STCNT0", "1", "0", "OPSPXXXX", "SUBSCRIBE SUCCESS")).kind \
        is AckKind.SUBSCRIBED
    assert decode_message(build_control_reply("H0STCNT0", "1", "0", "OPSPXXXX", "UNSUBSCRIBE SUCCESS")).kind \
        is AckKind.UNSUBSCRIBED


def test_encrypted_ack_flag():
    msg = decode_message(build_control_reply("H0STCNI0", "testuser", "0", "OPSP0000", "SUBSCRIBE SUCCESS",
                                             encrypt="Y", iv="0123456789abcdef",
                                             key="abcdefghijklmnopqrstuvwxyzabcdef"))
    assert isinstance(msg, ControlReply) and msg.encrypt and msg.key == "abcdefghijklmnopqrstuvwxyzabcdef"


def test_build_control_reply_round_trips_spec_ack():
    text = build_control_reply("H0STCNT0", "005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS",
                               iv="55ce3d099479ce11", key="tvldhmfplvgcovaqrspclzhdotfzzequ")
    assert text == ACKS[0][0]
    assert build_control_reply("(null)", "", "9", "OPSP8996", "ALREADY IN USE appkey") == ERRORS[0][0]


PING = '{"header":{"tr_id":"PINGPONG","datetime":"20241011121818"}}'


@pytest.mark.parametrize("raw", [PING, PING.encode()])
def test_pingpong(raw):
    msg = decode_message(raw)
    assert isinstance(msg, PingPong)
    assert msg.raw == PING and msg.datetime_text == "20241011121818"
    assert build_pingpong("20241011121818") == PING


def test_pingpong_raw_is_exact_text_even_with_spacing():
    text = '{ "header" : { "tr_id" : "PINGPONG" , "datetime" : "20241011121818" } }'
    msg = decode_message(text)
    assert isinstance(msg, PingPong) and msg.raw == text


@pytest.mark.parametrize("text", [
    "{", "[]", '{"header":[]}', '{"header":{"tr_id":"H0STCNT0"}}', '{"body":{"rt_cd":"0"}}',
    '{"header":{"tr_id":"PINGPONG"},"body":[1]}', "null", "{}" * 3, "[" * 5000 + "]" * 5000,
])
def test_bad_json_is_protocol_error(text):
    assert isinstance(decode_message(text), ProtocolError)


# -- §11.5 encryption ---------------------------------------------------------------------------

ENC_KEY = "abcdefghijklmnopqrstuvwxyzabcdef"
ENC_IV = "0123456789abcdef"
ENC_PLAIN = "testuser^1234567801^0000012345^0000000000^02^0^00^0^005930^10^70000^093015^0^2^2^00950^10^HONG^0^1^N^^^^삼성전자^70000"
ENC_FRAME = "1|H0STCNI0|001|FsbHybulDXiWWAE++Rw1a5v8o2FVJ97PqND+aeJ/3oNb3Dxy7BjIXen0EeLQw+JI7UY5k379qvA5j/y1TE0JIGsJr12fLafcTYtXt7E6wLEFkgftVXwVUYxCon1bY4lRZdFvdKlV8cAX82umpVVwDRSnXDO2XpTes13p5xLvu4I="


def test_encrypted_frame_decrypts():
    msg = decode_message(ENC_FRAME, {"H0STCNI0": (ENC_KEY, ENC_IV)})
    assert isinstance(msg, DataFrame) and msg.encrypted and msg.tr_id == "H0STCNI0"
    (rec,) = msg.records
    assert isinstance(rec, GenericRecord) and len(rec.fields) == 26
    assert "^".join(rec.fields) == ENC_PLAIN
    assert rec.fields[8] == "005930" and rec.fields[13] == "2" and rec.fields[24] == "삼성전자"


def test_encrypt_payload_reproduces_spec_vector():
    assert "1|H0STCNI0|001|" + encrypt_payload(ENC_PLAIN, ENC_KEY, ENC_IV) == ENC_FRAME
    assert build_data_frame("H0STCNI0", [ENC_PLAIN.split("^")], encrypt_with=(ENC_KEY, ENC_IV)) == ENC_FRAME
    assert decrypt_payload(ENC_FRAME.split("|", 3)[3], ENC_KEY, ENC_IV) == ENC_PLAIN


@pytest.mark.parametrize("keys", [None, {}, {"H0STCNT0": (ENC_KEY, ENC_IV)}])
def test_encrypted_frame_without_key(keys):
    msg = decode_message(ENC_FRAME, keys)
    assert isinstance(msg, ProtocolError) and "no key" in msg.reason


@pytest.mark.parametrize("key,iv", [
    ("bbcdefghijklmnopqrstuvwxyzabcdef", ENC_IV),
    (ENC_KEY, "1123456789abcdef"),   # wrong IV: the first block garbles but padding may survive
    ("short", ENC_IV),
])
def test_encrypted_frame_wrong_key(key, iv):
    msg = decode_message(ENC_FRAME, {"H0STCNI0": (key, iv)})
    if isinstance(msg, DataFrame):
        # a wrong IV only garbles block 1: the codec cannot tell, the text differs
        assert "^".join(msg.records[0].fields) != ENC_PLAIN
        assert iv != ENC_IV
    else:
        assert isinstance(msg, ProtocolError) and "undecodable" in msg.reason


def test_encrypted_frame_bad_base64():
    msg = decode_message("1|H0STCNI0|001|not*base64", {"H0STCNI0": (ENC_KEY, ENC_IV)})
    assert isinstance(msg, ProtocolError)


# -- builders (§1.2, §1.3, §2) ------------------------------------------------------------------

def test_subscribe_builder_exact_json():
    assert build_subscription("KEY", "H0STCNT0", "005930") == (
        '{"header":{"approval_key":"KEY","custtype":"P","tr_type":"1","content-type":"utf-8"},'
        '"body":{"input":{"tr_id":"H0STCNT0","tr_key":"005930"}}}')
    assert json.loads(build_subscription("KEY", "H0STCNT0", "005930")) == {
        "header": {"approval_key": "KEY", "custtype": "P", "tr_type": "1", "content-type": "utf-8"},
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": "005930"}},
    }


def test_unsubscribe_builder():
    obj = json.loads(build_subscription("KEY", "H0STASP0", "000660", subscribe=False, custtype="B"))
    assert obj["header"]["tr_type"] == "2" and obj["header"]["custtype"] == "B"
    assert obj["body"]["input"] == {"tr_id": "H0STASP0", "tr_key": "000660"}


def test_auth_bodies():
    assert build_approval_request("AK", "SK") == {"grant_type": "client_credentials", "appkey": "AK",
                                                  "secretkey": "SK"}
    assert build_token_request("AK", "SK") == {"grant_type": "client_credentials", "appkey": "AK",
                                               "appsecret": "SK"}


def test_build_data_frame_round_trips_real_frame():
    assert build_data_frame("H0STCNT0", [fields_of(FRAME_1)]) == FRAME_1
    assert build_data_frame("H0STCNT0", [fields_of(FRAME_2)]) == FRAME_2


@pytest.mark.parametrize("old,new,reason", [
    ("^62700^2^", "^627²0^2^", "price"),
    ("^112616^", "^11261²^", "time"),
    ("^125^9694968^", "^1²5^9694968^", "trade volume"),
    ("^20230324^", "^2023032²^", "date"),
])
def test_superscript_digits_are_rejected(old, new, reason):
    """Regression: str.isdigit() accepts '²', which int() refuses; the record must not be handed out."""
    msg = decode_message(FRAME_1.replace(old, new, 1))
    assert isinstance(msg, DataFrame) and msg.records == ()
    assert reason in msg.errors[0]
    msg = decode_message(FRAME_1.replace("|001|", "|00²|"))
    assert isinstance(msg, ProtocolError) and "count" in msg.reason
