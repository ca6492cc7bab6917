"""Tick.venue / Tick.state: the market state a trade record reports, carried onto the Tick
(empty for normal trading), through to_dict/from_dict and the packed Redis-stream batches."""

from __future__ import annotations

import pytest

from kis_desk.core.ticks import Tick, ticks_from_records
from kis_desk.engine.trade_batch import pack_trades, unpack_trades
from kis_desk.protocol.states import MarketState
from tests.test_protocol_states import REAL_1, REAL_2, record, variant


@pytest.mark.parametrize("frame", [REAL_1, REAL_2])
def test_normal_trade_has_empty_state_and_krx_venue(frame):
    (t,) = ticks_from_records([record(frame)], 1.0)
    assert (t.state, t.venue) == ("", "krx")
    assert t == Tick.from_record(record(frame), 1.0)


@pytest.mark.parametrize(("changes", "state"), [
    ({"f43": "C", "f45": "57000"}, "static_vi"),
    ({"f43": "C", "f45": "61000"}, "dynamic_vi"),
    ({"f35": "Y"}, "halted"),
    ({"f35": "Y", "f43": "C"}, "halted"),
    ({"f43": "B"}, "auction"),
    ({"f43": "D"}, "single_price"),
    ({"f34": "10"}, "pre_open"),
    ({"f34": "30"}, "after_hours"),
    ({"f34": "21"}, ""),                 # regular session, closing-price kind: still normal
])
def test_state_from_the_record_fields(changes, state):
    rec = variant(REAL_1, **changes)
    (t,) = ticks_from_records([rec], 1.0)
    assert t.state == state
    assert t.state == ("" if rec.market_state is MarketState.NORMAL else rec.market_state.value)


def test_state_and_venue_round_trip_and_old_dicts_read_with_defaults():
    (t,) = ticks_from_records([variant(REAL_1, f43="C", f45="61000")], 2.5)
    t = t._replace(venue="total")
    d = t.to_dict()
    assert (d["state"], d["venue"]) == ("dynamic_vi", "total")
    assert Tick.from_dict(d) == t
    del d["state"], d["venue"]
    assert Tick.from_dict(d) == t._replace(state="", venue="krx")


def test_packed_batches_carry_the_state():
    ticks = ticks_from_records([record(REAL_1), variant(REAL_2, f35="Y")], 3.0)
    assert unpack_trades(pack_trades(ticks)) == tuple(ticks)
    assert [t.state for t in unpack_trades(pack_trades(ticks))] == ["", "halted"]
    # a batch of an older writer (ten fields per row) still reads
    old = b'[["005930",1679624776000000,62700,125,9694968,400,0.64,93.01,1.0,"ws"]]'
    (t,) = unpack_trades(old)
    assert (t.venue, t.state, t.price) == ("krx", "", 62700)
