"""Frame → Ticks (kis_desk.core.frame_ticks): the compiled kernel and the Python path give
exactly what ``decode_message`` → ``ticks_from_records`` gives, or None (decode it that way).

Every test runs against both implementations; the compiled one is skipped only where it is
not built (a machine without a C compiler), and ``test_compiled_is_built_here`` says so.
"""

from __future__ import annotations

import asyncio
import os
import time as time_mod
from datetime import date, time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_desk.core import frame_ticks as ft
from kis_desk.core.ticks import ticks_from_records
from kis_desk.protocol.codec import build_control_reply, build_data_frame, build_pingpong, decode_message
from kis_desk.protocol.messages import DataFrame

from benchmarks.burst_server import TEMPLATE, make_frames

TR = "H0STCNT0"
IMPLS = ["python", "compiled"]


def _compiled():
    if ft.FRAME_TICKS is not None:
        return ft.FRAME_TICKS
    try:
        from kis_desk.core import _frame_ticks  # type: ignore[attr-defined]
    except ImportError:
        return None
    ft_mod = ft._load_compiled.__globals__      # configure it even under KIS_DESK_PURE_PYTHON=1
    _frame_ticks.configure(ft_mod["Tick"], ft_mod["KST_TIMESTAMP_CACHE"], ft_mod["kst_timestamp"],
                           ft_mod["_state_of"], ft_mod["SOURCE_WS"], ft_mod["TRADE_TR_IDS"])
    return _frame_ticks.frame_ticks


COMPILED = _compiled()


@pytest.fixture(params=IMPLS)
def impl(request):
    if request.param == "python":
        return ft.frame_ticks_python
    if COMPILED is None:
        pytest.skip("compiled kernel not built (no C compiler when installed)")
    return COMPILED


def reference(raw, tr_id=TR, received_at=1.5, venue="krx"):
    msg = decode_message(raw)
    if msg.__class__ is not DataFrame or msg.encrypted or msg.errors or msg.tr_id != tr_id \
            or not msg.records:
        return None
    return ticks_from_records(msg.records, received_at, venue=venue)


def same(a, b) -> bool:
    """Equal ticks, value by value and type by type (repr: NaN equals NaN, 5 is not 5.0)."""
    if a is None or b is None:
        return a is b
    return [tuple(map(repr, t)) for t in a] == [tuple(map(repr, t)) for t in b]


def record(**changes: str) -> list[str]:
    f = list(TEMPLATE)
    f[33] = "20261202"
    for k, v in changes.items():
        f[int(k[1:])] = v
    return f


def frame(*records: list[str], tr_id: str = TR) -> bytes:
    return build_data_frame(tr_id, records).encode()


def check(impl, raw, *, handled: bool | None = None, tr_id=TR) -> None:
    got = impl(raw, tr_id, 1.5, "krx")
    ref = reference(raw, tr_id)
    if got is not None:
        assert same(got, ref), (raw[:80], got, ref)
    if handled is True:
        assert got is not None and ref is not None
    if handled is False:
        assert got is None


def test_compiled_is_built_here():
    if os.environ.get("KIS_DESK_EXPECT_PURE") == "1":
        pytest.skip("pure-Python install")
    assert COMPILED is not None, "the Cython kernel was not built: pip install -e . with a C compiler"


def test_burst_stream_frames(impl):
    for raw, k in make_frames(["005930", "000660", "Q500010"], 3000, max_batch=20):
        check(impl, raw.encode(), handled=True)
        check(impl, raw, handled=True)            # text as well as bytes


def test_each_venue_and_extra_fields(impl):
    for tr in ("H0STCNT0", "H0UNCNT0", "H0NXCNT0"):
        check(impl, frame(record(), record(f0="000660"), tr_id=tr), handled=True, tr_id=tr)
    wide = [record() + ["extra1", "extra2"], record(f0="000660") + ["e3", ""]]
    check(impl, frame(*wide), handled=True)


@pytest.mark.parametrize("value", ["", "abc", "+5", "-0", " 5", "5 ", "1_000", "٣", "1.5", "-",
                                   "99999999999999999999", "-12345678901234567890", "007"])
def test_secondary_integer_forms(impl, value):
    check(impl, frame(record(f4=value)))


@pytest.mark.parametrize("value", ["", "abc", "0.64", "-0.00", "+1.5", "5", "5.", ".5", "1e3", "nan",
                                   "-inf", "1_0.5", " 1.5", "123456789012345.6", "1.2345678901234567",
                                   "99999999999999999999.5", "0.1", "179.99", "-33.33", "1." + "0" * 30])
def test_secondary_float_forms(impl, value):
    check(impl, frame(record(f5=value, f18=value)))


@pytest.mark.parametrize("changes", [
    {"f35": "Y"}, {"f43": "C", "f45": "62000"}, {"f43": "C", "f45": ""}, {"f43": "A"}, {"f43": "D"},
    {"f34": "10"}, {"f34": "30"}, {"f34": "40"}, {"f34": "21"}, {"f34": ""},
])
def test_market_states(impl, changes):
    check(impl, frame(record(), record(**changes)), handled=True)


@pytest.mark.parametrize("changes", [
    {"f0": "00593"}, {"f0": "A05930"}, {"f0": "Q12345"}, {"f1": "240000"}, {"f1": "126000"},
    {"f1": "12000"}, {"f2": ""}, {"f2": "-5"}, {"f12": "1.0"}, {"f13": ""}, {"f33": "20231301"},
    {"f33": "20230230"}, {"f33": "00000101"}, {"f33": "2023121"},
])
def test_invalid_record_is_not_handled(impl, changes):
    # one bad record: the Python path reports it and keeps the good one
    check(impl, frame(record(), record(**changes)), handled=False)


def test_other_messages_are_not_handled(impl):
    key, iv = "abcdefghijklmnopqrstuvwxyzabcdef", "0123456789abcdef"
    others = [
        build_data_frame(TR, [record()], encrypt_with=(key, iv)).encode(),
        build_control_reply(TR, "005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS").encode(),
        build_pingpong("20261202090000").encode(),
        b"", b"0", b"0|", b"0|H0STCNT0|001", b"0|H0STCNT0|000|" + "^".join(record()).encode(),
        b"0|H0STCNT0|002|" + "^".join(record()).encode(),       # 46 fields do not make 2 records
        b"0|H0STCNT0|001|" + "^".join(record()[:45]).encode(),   # too narrow
        b"0|H0STCNTX|001|" + "^".join(record()).encode(),
        b"1|H0STCNT0|001|" + "^".join(record()).encode(),
        b"0|H0STASP0|001|" + "^".join(record() + ["0"] * 13).encode(),
    ]
    for raw in others:
        check(impl, raw, handled=False)
    check(impl, frame(record()), tr_id="H0STASP0", handled=False)     # not a trade TR
    check(impl, frame(record(), tr_id="H0UNCNT0"), handled=False)      # another venue's TR


def test_non_ascii_bytes(impl):
    good = frame(record(f44="한"))          # valid UTF-8 in a free field
    bad = frame(record()).replace(b"^N^", b"^\xff^", 1)
    for raw in (good, bad, good.decode()):
        check(impl, raw)


def test_timestamps_are_the_shared_objects(impl):
    a = impl(frame(record(), record(f1="090001")), TR, 1.0, "krx")
    b = impl(frame(record()), TR, 2.0, "nxt")
    assert a[0].timestamp is b[0].timestamp            # the detector's same-second shortcut
    assert a[1].timestamp != a[0].timestamp
    assert (b[0].received_at, b[0].venue, b[0].source) == (2.0, "nxt", "ws")


def test_compiled_ticks_are_kept_out_of_the_cyclic_gc():
    """Every value of a Tick is atomic, so it can be in no cycle: the compiled decoder untracks
    it (CPython would never untrack a tuple subclass by itself), and collections triggered by
    the trade stream no longer re-visit every trade waiting in the writer's queue."""
    import gc

    if COMPILED is None:
        pytest.skip("compiled kernel not built (no C compiler when installed)")
    ticks = COMPILED(frame(record(), record(f1="090001")), TR, 1.0, "krx")
    assert ticks and not any(gc.is_tracked(t) for t in ticks)
    assert same(ticks, reference(frame(record(), record(f1="090001")), received_at=1.0))


# -- properties -------------------------------------------------------------------------------

digits = st.integers(min_value=0, max_value=10**20).map(str)
codes = st.one_of(st.integers(0, 999_999).map(lambda n: f"{n:06d}"),
                  st.integers(0, 999_999).map(lambda n: f"Q{n:06d}"))
times = st.times(min_value=time(0, 0), max_value=time(23, 59, 59)).map(lambda t: t.strftime("%H%M%S"))
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
numbers = st.one_of(st.integers(-10**16, 10**16).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
                    st.from_regex(r"[+-]?[0-9]{0,17}(\.[0-9]{0,17})?", fullmatch=True))
free_text = st.one_of(numbers, st.text(st.characters(exclude_characters="^", exclude_categories=("Cs",)),
                                       max_size=8))


@st.composite
def trade_record(draw, width: int) -> list[str]:
    f = record()
    for i in (3, 4, 5, 18, 34, 35, 43, 44, 45):
        if draw(st.booleans()):
            f[i] = draw(free_text)
    f[0], f[1], f[33] = draw(codes), draw(times), draw(dates)
    f[2], f[12], f[13] = draw(digits), draw(digits), draw(digits)
    if draw(st.integers(0, 30)) == 0:
        f[draw(st.sampled_from((0, 1, 2, 12, 13, 33)))] = draw(free_text)     # sometimes invalid
    return f + ["x"] * (width - len(f))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(46, 49).flatmap(lambda w: st.lists(trade_record(w), min_size=1, max_size=4)))
def test_property_same_as_decode_message(records):
    raw = frame(*records)
    ref = reference(raw)
    for impl in (ft.frame_ticks_python, COMPILED):
        if impl is None:
            continue
        got = impl(raw, TR, 1.5, "krx")
        assert got is None or same(got, ref)
        # ASCII and valid: the fast path must take it (else it would be no faster)
        if ref is not None and raw.isascii() and impl is COMPILED:
            assert got is not None


# -- the feed with each implementation ---------------------------------------------------------

async def _feed_ticks(frames, monkeypatch, fast):
    from benchmarks.burst_server import BurstServer
    from kis_desk.config import AppCredential, Secret, custom_environment
    from kis_desk.feed import session as session_mod
    from kis_desk.feed.manager import FeedManager

    monkeypatch.setattr(session_mod, "FRAME_TICKS", fast)
    codes = ["005930", "000660"]
    n = sum(k for _, k in frames)
    server = BurstServer(frames, expected_subscriptions=len(codes))
    await server.start()
    got: list = []
    done = asyncio.Event()

    def on_ticks(ticks, source):
        got.extend(ticks)
        if len(got) >= n:
            done.set()

    feed = FeedManager(custom_environment(server.ws_url, server.rest_url),
                       [AppCredential("key1", Secret("K"), Secret("S"))], on_ticks)
    try:
        await feed.start(codes)
        await asyncio.wait_for(done.wait(), 20)
        stats = feed.stats()
    finally:
        await feed.stop(drain_timeout=0)
        await server.stop()
    return got, stats


async def test_feed_delivers_the_same_with_either_path(monkeypatch):
    frames = make_frames(["005930", "000660"], 600, max_batch=7)
    bad = build_data_frame(TR, [record(f0="005930", f1="996000", f13="1"), record(f0="005930")])
    frames.insert(5, (bad, 1))                          # one bad record, one good: python path
    pure, s1 = await _feed_ticks(frames, monkeypatch, None)
    fast, s2 = await _feed_ticks(frames, monkeypatch, COMPILED)
    key = lambda t: (t.stock_code, t.cum_volume, t.price, t.timestamp, t.change, t.change_rate)
    assert [key(t) for t in fast] == [key(t) for t in pure]
    assert len(pure) == 601
    assert s1.protocol_errors == s2.protocol_errors == 1
    assert s1.received == s2.received == 601
