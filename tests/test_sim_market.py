"""KRX tick grid and the simulated market (no sockets)."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from kis_desk.market.ticks import (
    ceil_to_tick,
    floor_to_tick,
    is_on_tick,
    next_tick_down,
    next_tick_up,
    price_limits,
    round_to_tick,
    tick_size,
)
from kis_desk.protocol.codec import decode_message
from kis_desk.protocol.records import KST
from kis_desk.sim import JumpSpec, SimConfig
from kis_desk.sim.frames import pct2
from kis_desk.sim.market import Market
from kis_desk.sim.universe import DEFAULT_SYMBOLS, reference_for

from test_sim_support import check_record_fields


def test_tick_table_2023():
    assert [tick_size(p) for p in (1, 1999, 2000, 4995, 5000, 19990, 20000, 49950, 50000,
                                   199_900, 200_000, 499_500, 500_000, 2_000_000)] == \
        [1, 1, 5, 5, 10, 10, 50, 50, 100, 100, 500, 500, 1000, 1000]


@given(st.integers(min_value=1, max_value=3_000_000))
def test_grid_helpers(p):
    lo, hi = floor_to_tick(p), ceil_to_tick(p)
    assert is_on_tick(lo) and is_on_tick(hi) and lo <= p <= hi
    assert (lo == hi) == is_on_tick(p)
    r = round_to_tick(p)
    assert r in (lo, hi)
    up = next_tick_up(lo)
    assert is_on_tick(up) and up > lo and floor_to_tick(up - 1) == lo
    if lo > 1:
        down = next_tick_down(lo)
        assert is_on_tick(down) and down < lo and next_tick_up(down) == lo


@given(st.integers(min_value=100, max_value=2_000_000))
def test_price_limits(prev):
    upper, lower = price_limits(prev)
    assert is_on_tick(upper) and is_on_tick(lower)
    assert upper <= prev * 1.3 < next_tick_up(upper)
    assert lower >= prev * 0.7 > next_tick_down(lower) - 1e-9 or lower == 1


def test_known_limits():
    assert price_limits(70_000) == (91_000, 49_000)
    assert price_limits(62_300) == (80_900, 43_650)


def test_pct2_exact():
    assert pct2(400, 62_300) == "0.64"
    assert pct2(-100, 72_000) == "-0.14"
    assert pct2(-1, 70_000) == "0.00"
    assert pct2(0, 5) == "0.00"


def test_default_symbols_on_grid_and_unknown_codes_deterministic():
    assert len(DEFAULT_SYMBOLS) >= 50
    for _name, price in DEFAULT_SYMBOLS.values():
        assert is_on_tick(price)
    a, b = reference_for("123456"), reference_for("123456")
    assert a == b and is_on_tick(a[1]) and 1_000 <= a[1] <= 500_000
    assert reference_for("Q500001")[1] > 0


def _run(market: Market, steps: int, wanted=None):
    out = []
    t = 0.0
    for _ in range(steps):
        t += 0.01
        out.extend(market.generate(1, t, wanted if wanted is not None else market.symbols))
    return out


def test_records_consistent_over_large_sample():
    market = Market(SimConfig(rate=20_000, seed=7))
    generated = _run(market, 150)        # ~30,000 trades
    records = []
    counts = set()
    for g in generated:
        for frame, first, n in g.frames:
            m = decode_message(frame)
            assert not m.errors and m.declared_count == n == len(m.records)
            records.extend(m.records)
            counts.add(n)
    assert len(records) == market.generated_total > 20_000
    assert max(counts) > 1                      # multi-record frames happen
    check_record_fields(records)
    # the stored history is exactly what the frames carried
    for code in market.codes():
        hist = market.history(code)
        recs = [r for r in records if r.fields[0] == code]
        assert [(t.time, t.price, t.volume, t.cum_volume) for t in hist] == \
            [(r.fields[1], int(r.fields[2]), int(r.fields[12]), int(r.fields[13])) for r in recs]


def test_deterministic_with_seed():
    def trades(seed):
        m = Market(SimConfig(rate=2_000, seed=seed))
        _run(m, 50)
        return [(c, t.price, t.volume) for c in m.codes() for t in m.history(c)]
    assert trades(3) == trades(3)
    assert trades(3) != trades(4)


def test_some_symbols_busier():
    m = Market(SimConfig(rate=10_000, seed=1))
    _run(m, 100, wanted=())
    counts = sorted(len(m.history(c)) for c in m.codes())
    assert counts[-1] > 5 * counts[0] > 0


def test_extra_field_and_frame_split():
    m = Market(SimConfig(rate=5_000, seed=2, codes=("005930",), extra_fields=("2",),
                         max_records_per_frame=5))
    generated = _run(m, 20)
    frames = [f for g in generated for f in g.frames]
    assert frames and all(n <= 5 for _f, _i, n in frames)
    m0 = decode_message(frames[0][0])
    assert len(m0.records[0].fields) == 47 and m0.records[0].extras == ("2",)


def test_jump_moves_price_and_limits_hold():
    m = Market(SimConfig(rate=500, seed=5, codes=("005930", "000660")))
    start = m.symbols["005930"].prev_close
    m.jump("005930", 6.0, 1.0, now=0.0)
    _run(m, 200)
    last = m.history("005930")[-1].price
    assert last >= start * 1.04
    # a huge jump stops at the upper limit with sign 1
    m.jump("000660", 80.0, 0.0, now=2.0)
    gens = []
    t = 2.0
    for _ in range(50):
        t += 0.01
        gens.extend(m.generate(1, t, m.symbols))
    sym = m.symbols["000660"]
    recs = [r for g in gens if g.code == "000660" for fr, _i, _n in g.frames for r in decode_message(fr).records]
    assert recs and all(int(r.fields[2]) == sym.upper and r.fields[3] == "1" for r in recs[-5:])


def test_market_hours_clock():
    clock_now = [datetime(2026, 11, 24, 8, 59, 59, tzinfo=KST)]
    m = Market(SimConfig(rate=5_000, always_open=False, clock=lambda: clock_now[0]))
    assert _run(m, 10) == []
    clock_now[0] = datetime(2026, 11, 24, 9, 0, 0, tzinfo=KST)
    assert _run(m, 10)
    clock_now[0] = datetime(2026, 11, 24, 15, 30, 0, tzinfo=KST)
    before = m.generated_total
    _run(m, 10)
    assert m.generated_total == before
    clock_now[0] = datetime(2026, 11, 28, 10, 0, 0, tzinfo=KST)   # Saturday
    _run(m, 10)
    assert m.generated_total == before
    clock_now[0] = datetime(2026, 9, 25, 10, 0, 0, tzinfo=KST)    # Chuseok (a KRX holiday)
    _run(m, 10)
    assert m.generated_total == before


def test_day_roll_resets_history_and_previous_close():
    clock_now = [datetime(2026, 11, 24, 23, 59, 59, tzinfo=KST)]
    m = Market(SimConfig(rate=2_000, codes=("005930",), clock=lambda: clock_now[0]))
    _run(m, 20)
    last = m.history("005930")[-1]
    assert last.business_date == "20261124"
    clock_now[0] = datetime(2026, 11, 25, 0, 0, 1, tzinfo=KST)
    _run(m, 20)
    hist = m.history("005930")
    assert hist[0].business_date == "20261125" and hist[0].cum_volume == hist[0].volume
    assert m.symbols["005930"].prev_close == last.price


def test_history_limit_trims():
    m = Market(SimConfig(rate=5_000, codes=("005930",), history_limit=100))
    _run(m, 50)
    sym = m.symbols["005930"]
    hist = m.history("005930")
    assert len(hist) <= 100 and hist[-1].index == sym.count - 1 and sym.offset > 0
    assert hist[-1].cum_volume == sym.cum_vol


def test_scripted_jump_spec_type():
    spec = JumpSpec("005930", 6.0, over_seconds=20)
    assert spec.after_seconds == 0.0


def test_limit_down_sign_and_book():
    m = Market(SimConfig(rate=2_000, seed=9, codes=("035720",)))
    m.jump("035720", -80.0, 0.0, now=0.0)
    gens = _run(m, 30)
    sym = m.symbols["035720"]
    recs = [r for g in gens for fr, _i, _n in g.frames for r in decode_message(fr).records]
    assert recs and all(int(r.fields[2]) == sym.lower and r.fields[3] == "4" for r in recs)
    assert all(int(r.fields[11]) == sym.lower < int(r.fields[10]) for r in recs)
    check_record_fields(recs)
