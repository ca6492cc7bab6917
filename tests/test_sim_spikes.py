"""News-like spikes: at the demo settings a newcomer sees a ≥5 %-within-60 s move in the first two
minutes; off by default for simulators built in code (so alert counts stay exact). The market is
driven directly on simulated time (no sleeping)."""

from __future__ import annotations

import argparse
from collections import deque
from datetime import datetime, timedelta

import pytest

from kis_desk.engine.collector import CollectorConfig
from kis_desk.protocol.records import KST
from kis_desk.sim import DEMO_SPIKES, Move, SimConfig, Simulator, add_sim_arguments
from kis_desk.sim.market import Market
from kis_desk.sim.tape import SimTrade

START = datetime(2026, 3, 3, 10, 0, 0, tzinfo=KST)     # a Tuesday, mid-session
STEP = 0.1                                             # simulated seconds per generate call


def run_market(cfg: SimConfig, seconds: float) -> Market:
    """Generate ``seconds`` of trading on a simulated clock starting at loop time 0."""
    clock = {"t": 0.0}
    cfg.clock = lambda: START + timedelta(seconds=clock["t"])
    market = Market(cfg, now=0.0)
    steps = round(STEP / cfg.tick_interval)
    while clock["t"] < seconds:
        clock["t"] = round(clock["t"] + STEP, 6)
        market.generate(steps, clock["t"], ())
    return market


def largest_move_within(trades: list[SimTrade], window: float = 60.0) -> float:
    """Largest |move| in percent from the window's extreme to a later trade, over trade time
    (the detector's rule: the window holds trades with T - window < t <= T)."""
    best = 0.0
    lows: deque[SimTrade] = deque()      # increasing prices: window minimum at the left
    highs: deque[SimTrade] = deque()     # decreasing prices: window maximum at the left
    for t in trades:
        ts = t.timestamp
        for dq, worse in ((lows, lambda a, b: a.price >= b.price), (highs, lambda a, b: a.price <= b.price)):
            while dq and worse(dq[-1], t):
                dq.pop()
            dq.append(t)
            while (ts - dq[0].timestamp).total_seconds() >= window:
                dq.popleft()
        best = max(best, (t.price / lows[0].price - 1) * 100, (1 - t.price / highs[0].price) * 100)
    return best


def demo_config(seed: int) -> SimConfig:
    """What the demo paths run: default symbols and rate, demo spikes."""
    return SimConfig(seed=seed, spikes=DEMO_SPIKES)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_demo_settings_show_a_five_percent_move_within_the_first_two_minutes(seed):
    market = run_market(demo_config(seed), 120.0)
    spikes = [m for m in market.moves() if m.kind == "spike"]
    assert len(spikes) == 1                               # one in the first two minutes, no storm
    spike = spikes[0]
    first_lo, first_hi = DEMO_SPIKES.first_after
    assert first_lo <= spike.start <= first_hi
    assert 5.5 <= abs(spike.pct) <= 9.0 and 10.0 <= spike.over_seconds <= 40.0
    assert spike.retrace_pct * spike.pct < 0 and abs(spike.retrace_pct) < abs(spike.pct)   # partly retraced
    moved = {code: largest_move_within(market.history(code)) for code in market.codes()}
    assert moved[spike.code] >= 5.0, moved[spike.code]
    others = max(v for c, v in moved.items() if c != spike.code)
    assert others < 5.0                                   # the rest of the market stays believable


def test_spikes_come_every_few_minutes_and_retrace_partly():
    market = run_market(demo_config(5), 900.0)
    spikes = [m for m in market.moves() if m.kind == "spike"]
    gaps = [b.start - a.start for a, b in zip(spikes, spikes[1:])]
    assert 3 <= len(spikes) <= 6 and all(DEMO_SPIKES.every[0] - STEP <= g <= DEMO_SPIKES.every[1] + STEP
                                         for g in gaps)
    first = spikes[0]
    sym = market.get(first.code)
    assert sym is not None
    hist = market.history(first.code)
    at = lambda t: min(hist, key=lambda h: abs((h.timestamp - START).total_seconds() - t)).price  # noqa: E731
    before = at(first.start - 1)
    peak = at(first.start + first.over_seconds)
    after = at(first.retrace_start + first.retrace_over + 1)
    if first.pct > 0:
        assert before < after < peak
    else:
        assert peak < after < before


def test_spikes_off_by_default_and_they_change_prices_only():
    quiet = run_market(SimConfig(seed=1), 400.0)
    assert quiet.moves() == []
    assert max(largest_move_within(quiet.history(c)) for c in quiet.codes()) < 5.0
    spiky = run_market(demo_config(1), 400.0)
    assert spiky.moves()
    for code in quiet.codes():                            # same trades, volumes and times
        a, b = quiet.history(code), spiky.history(code)
        assert [(t.time, t.volume) for t in a] == [(t.time, t.volume) for t in b]


def test_spikes_prefer_watched_symbols():
    cfg = demo_config(4)
    clock = {"t": 0.0}
    cfg.clock = lambda: START + timedelta(seconds=clock["t"])
    market = Market(cfg, now=0.0)
    watched = {"000660", "035420"}
    while clock["t"] < 700:
        clock["t"] = round(clock["t"] + 1.0, 6)
        market.generate(100, clock["t"], watched)
    spikes = [m for m in market.moves() if m.kind == "spike"]
    assert spikes and {m.code for m in spikes} <= watched


async def test_simulator_moves_lists_scripted_jumps():
    async with Simulator(SimConfig(rate=100)) as sim:
        assert sim.moves() == []
        sim.jump("000660", -7.0, 2.0)
        (move,) = sim.moves()
        assert isinstance(move, Move)
        assert (move.code, move.pct, move.over_seconds, move.kind) == ("000660", -7.0, 2.0, "jump")
        assert move.start <= sim.loop_time()


def test_demo_paths_switch_spikes_on():
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    assert parser.parse_args([]).no_spikes is False       # kis-desk sim: on unless --no-spikes
    assert parser.parse_args(["--no-spikes"]).no_spikes is True
    assert CollectorConfig().sim_spikes is True           # the app's demo mode
    assert SimConfig().spikes is None                     # built in code: off
