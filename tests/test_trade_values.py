"""The SQLite writer's compiled row values (kis_desk/engine/storage/_trade_values.pyx) are
``layout.trade_rows`` flattened: same values, same types, same exceptions for a bad tick.

The storage tests run the backend with whichever is built; ``KIS_DESK_PURE_PYTHON=1`` runs them
on the Python rows."""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import layout, sqlite_backend
from kis_desk.protocol.records import KST

try:
    from kis_desk.engine.storage._trade_values import flat_trade_values
except ImportError:          # not built (no C compiler when installed)
    flat_trade_values = None

needs_compiled = pytest.mark.skipif(flat_trade_values is None, reason="compiled rows not built")


def flat(ticks):
    return flat_trade_values(ticks, layout.VENUE_CODES, layout.SOURCE_CODES, layout.epoch_parts,
                             layout.KST_SECONDS)


def python_flat(ticks):
    return [v for row in layout.trade_rows(ticks) for v in row]


def outcome(fn, ticks):
    try:
        return "ok", [(type(v).__name__, repr(v)) for v in fn(ticks)]
    except Exception as exc:  # noqa: BLE001 - the type is what must agree
        return "raised", type(exc).__name__


def test_compiled_rows_are_built_here():
    if os.environ.get("KIS_DESK_EXPECT_PURE") == "1" or os.environ.get("KIS_DESK_PURE_PYTHON") == "1":
        pytest.skip("pure-Python run")
    assert flat_trade_values is not None and sqlite_backend.FLAT_VALUES is not None


T0 = datetime(2026, 12, 2, 9, 0, tzinfo=KST)
rates = st.one_of(st.none(), st.floats(-30, 30).map(lambda x: round(x, 2)), st.integers(-5, 5),
                  st.sampled_from([math.inf, math.nan, -math.inf]))
ticks_st = st.builds(
    Tick,
    stock_code=st.sampled_from(["005930", "000660", "Q500010"]),
    timestamp=st.one_of(st.integers(0, 40_000).map(lambda s: T0 + timedelta(seconds=s)),
                        st.integers(0, 10).map(lambda s: (T0 + timedelta(seconds=s)).replace(tzinfo=None)),
                        st.integers(0, 10**6).map(lambda us: T0 + timedelta(microseconds=us))),
    price=st.integers(1, 10**7), volume=st.integers(1, 10**6), cum_volume=st.integers(1, 10**12),
    change=st.one_of(st.none(), st.integers(-10**5, 10**5)), change_rate=rates, strength=rates,
    received_at=st.one_of(st.floats(1.7e9, 1.8e9), st.just(1.764e9)),
    source=st.sampled_from(["ws", "backfill", "poll", "ws", "nope"]),
    venue=st.sampled_from(["krx", "nxt", "total", "krx", "mars"]),
)


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(st.lists(ticks_st, max_size=12))
def test_same_as_trade_rows(ticks):
    assert outcome(flat, ticks) == outcome(python_flat, ticks)


@needs_compiled
def test_shared_timestamps_and_receipt_times():
    ticks = [Tick("005930", T0, 100 + i, 1, i + 1, 0, 0.5, 101.25, 1.764e9 + 0.123, "ws")
             for i in range(50)]
    assert outcome(flat, ticks) == outcome(python_flat, ticks)
    assert outcome(flat, [(1, 2)]) == ("raised", "TypeError")
