"""The detector's compiled step (kis_desk/engine/_detector_step.pyx) and its Python step give the
same alerts, counters and window state on the same arrivals (in order, late, duplicated,
out of order, across business dates, with overrides changed mid-stream).

test_detector.py checks the detector against a brute-force reference with whichever step is
built; ``KIS_DESK_PURE_PYTHON=1`` runs it (and everything else) on the Python one.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_desk.engine import detector_kernel
from kis_desk.engine.detector import MoveDetector
from kis_desk.engine.detector_window import SymbolState

from test_detector import _state, late_arrivals


NOW = datetime(2030, 1, 2, tzinfo=timezone.utc)


class PythonDetector(MoveDetector):
    """The pure-Python step, whatever is built."""

    _one = MoveDetector._one_python
    _state_class = SymbolState
    process = MoveDetector._process_python


class CompiledLoopPythonStep(MoveDetector):
    """The compiled batch loop around the Python step (a detector whose step is not the
    compiled one keeps its own step)."""

    _one = MoveDetector._one_python
    _state_class = SymbolState


def test_compiled_step_is_built_here():
    if os.environ.get("KIS_DESK_EXPECT_PURE") == "1" or os.environ.get("KIS_DESK_PURE_PYTHON") == "1":
        pytest.skip("pure-Python run")
    assert detector_kernel.IMPLEMENTATION == "compiled", "pip install -e . with a C compiler"
    assert MoveDetector._state_class is not SymbolState


def _run(cls, batches, pct, window, override_at):
    d = cls(pct, window, clock=lambda: NOW)
    out = []
    for i, b in enumerate(batches):
        if i == override_at and b:
            d.set_override(b[0].stock_code, pct / 2, window * 2)
        out += [(a.alert_id, a.change_pct, a.base_price, a.trigger_cum_volume, a.late, a.vi)
                for a in d.process(b)]
    return out, d.stats(), _state(d)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=late_arrivals(consistent=False), pct=st.sampled_from([5.0, 2.5, 1.0, 7.25]),
       window=st.sampled_from([1.0, 30.0, 60.0]), override_at=st.integers(-1, 6))
def test_compiled_and_python_steps_agree(case, pct, window, override_at):
    _trades, batches = case
    python = _run(PythonDetector, batches, pct, window, override_at)
    assert _run(MoveDetector, batches, pct, window, override_at) == python
    assert _run(CompiledLoopPythonStep, batches, pct, window, override_at) == python


def test_a_python_state_is_stepped_by_python():
    """A state of the Python class (however it got there) is never read as the compiled one."""
    from kis_desk.core.ticks import Tick
    from kis_desk.protocol.records import KST

    d = MoveDetector(5.0, 60.0)
    t0 = datetime(2026, 12, 2, 9, 0, tzinfo=KST)
    d._states["005930"] = SymbolState(t0.date())
    ticks = [Tick("005930", t0.replace(second=i), p, 1, i + 1, None, None, None, 0.0, "ws")
             for i, p in enumerate([1000, 1010, 1060])]
    alerts = d.process(ticks)
    assert [a.direction for a in alerts] == ["up"] and d.processed == 3


def test_compiled_window_entries_are_kept_out_of_the_cyclic_gc():
    """The day's window history holds an entry per trade, of atomic values only: the compiled
    step untracks each at once instead of leaving it to the next young collection."""
    import gc

    from kis_desk.core.ticks import Tick
    from kis_desk.protocol.records import KST

    if detector_kernel.IMPLEMENTATION != "compiled":
        pytest.skip("compiled step not built")
    d = MoveDetector(5.0, 60.0)
    t0 = datetime(2026, 12, 2, 9, 0, tzinfo=KST)
    d.process([Tick("005930", t0.replace(second=i), 1000 + i, 1, i + 1, None, None, None, 0.0, "ws")
               for i in range(5)])
    hist = d._states["005930"].hist
    assert len(hist) == 5 and not any(gc.is_tracked(e) for e in hist)
