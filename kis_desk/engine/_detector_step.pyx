# cython: language_level=3
"""Compiled in-order step of the move detector (see kis_desk/engine/detector_kernel.py).

``one`` is ``MoveDetector._one_python`` line for line, on a ``SymbolState`` whose attributes
are C fields (the Python one keeps them in slots): the per-trade window update costs the event
loop ≈ 2 µs in Python, mostly attribute and tuple access. Values stay Python objects (ints
of any size, the same comparisons and arithmetic), so results are identical; a state that is
not this class (a pure-Python one) is stepped by the Python method.
"""

from collections import deque

from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void *op)

# deque's own methods, called with the deque as first argument: no attribute look-up and no
# bound method per call (≈ a third of the step's time went to those on the window's deques)
cdef object _append = deque.append
cdef object _pop = deque.pop
cdef object _popleft = deque.popleft

cdef object _UP = None
cdef object _DOWN = None
cdef object _python_one = None


def configure(up, down, python_one):
    """Direction constants and the Python step (for states of the pure-Python class)."""
    global _UP, _DOWN, _python_one
    _UP, _DOWN, _python_one = up, down, python_one


cdef class SymbolState:
    """detector_window.SymbolState with C fields (same names, same initial values)."""

    cdef public object day, last_ts, last_cum, mins, maxs, up_level, down_level
    cdef public object cut_ts, cut_prm, cutoff, hist, rejected, log, emitted
    cdef public object up_since, down_since, held, lo, stand

    def __init__(self, day):
        self.day = day
        self.last_ts = None
        self.last_cum = -1
        self.cut_ts = None
        self.cut_prm = None
        self.cutoff = None
        self.mins = deque()
        self.maxs = deque()
        self.lo = 0
        self.stand = None
        self.up_level = 0
        self.down_level = 0
        self.up_since = -1
        self.down_since = -1
        self.hist = []
        self.rejected = set()
        self.log = []
        self.emitted = []
        self.held = []


def one(self, tick):
    """MoveDetector._one: one trade in exchange order; the alerts it raises, or None."""
    cdef long processed = 0
    try:
        return _step(self, tick, self._states, &processed)
    finally:
        self.processed += processed


def process(self, ticks):
    """MoveDetector.process line for line (late trades of a symbol wait for its next in-order
    trade or the batch's end, then are merged), with the per-trade loop and the step's call
    in C: the Python loop around the compiled step cost about a fifth of the detector's time.
    A detector whose ``_one`` is not the compiled step (the pure-Python twin) is stepped by it."""
    cdef list out = []
    cdef long processed = 0           # added to self.processed once, not per trade
    step = type(self)._one
    compiled = step is one
    pending = self._pending
    cdef dict states = self._states
    try:
        for t in ticks:
            if pending and t.stock_code in pending:
                found = states.get(t.stock_code)
                if (found is None or t.cum_volume > found.last_cum
                        or t.timestamp.date() != found.day):
                    self._merge(t.stock_code, out)
            r = _step(self, t, states, &processed) if compiled else step(self, t)
            if r:
                out.extend(r)
    finally:
        self.processed += processed
    if pending:
        for code in list(pending):
            self._merge(code, out)
    return out


cdef object _step(self, tick, dict states, long* processed):
    cdef SymbolState st
    cdef bint same_ts
    if not PyTuple_Check(tick) or PyTuple_GET_SIZE(tick) < 12:
        return _python_one(self, tick)
    code = <object>PyTuple_GET_ITEM(tick, 0)
    ts = <object>PyTuple_GET_ITEM(tick, 1)
    found = states.get(code)
    if found is not None and type(found) is not SymbolState:
        return _python_one(self, tick)
    if found is None:
        same_ts = False
    else:
        st = <SymbolState>found
        same_ts = ts is st.last_ts
    if not same_ts and (found is None or (st.last_ts is not None and ts.date() != st.day)):
        day = ts.date()
        floor = self._floor
        if (found is not None and day < st.day) or (floor is not None and day < floor):
            self.out_of_order += 1
            return None
        fresh = self._new_state(code, day)
        states[code] = fresh
        if type(fresh) is not SymbolState:
            return _python_one(self, tick)
        st = <SymbolState>fresh
    cum = <object>PyTuple_GET_ITEM(tick, 4)
    if cum <= st.last_cum:             # seen already, or late: merged after this trade
        self._pending.setdefault(code, []).append(tick)
        return None
    if not same_ts and st.last_ts is not None and ts < st.last_ts:
        self.out_of_order += 1
        st.rejected.add(cum)
        return None
    price = <object>PyTuple_GET_ITEM(tick, 2)
    if price <= 0:                     # not a trade price; never a base
        self.invalid += 1
        return None
    st.last_ts = ts
    st.last_cum = cum
    processed[0] += 1

    entry = (ts, price, cum, <object>PyTuple_GET_ITEM(tick, 9), <object>PyTuple_GET_ITEM(tick, 11),
             cum - <object>PyTuple_GET_ITEM(tick, 3))
    # atomic values only (datetime, int, str): in no cycle, so kept out of the cyclic GC at
    # once: the day's window history holds one per trade, and each would otherwise be
    # visited by the next young-generation collection before CPython untracked it
    PyObject_GC_UnTrack(<void *>entry)
    cdef list hist = st.hist
    hist.append(entry)
    mins, maxs = st.mins, st.maxs
    while mins and mins[-1][1] >= price:
        _pop(mins)
    _append(mins, entry)
    while maxs and maxs[-1][1] <= price:
        _pop(maxs)
    _append(maxs, entry)

    overrides = self._overrides
    prm = overrides.get(code, self._default) if overrides else self._default
    if ts is st.cut_ts and prm is st.cut_prm:
        cutoff = st.cutoff
    else:
        cutoff = st.cutoff = ts - prm.window
        st.cut_ts = ts
        st.cut_prm = prm
        lo = st.lo
        if hist[lo][0] <= cutoff:      # never runs off: the newest entry is at ts > cutoff
            lo += 1
            while hist[lo][0] <= cutoff:
                lo += 1
            st.lo = lo
            prev = hist[lo - 1]          # stands only with no trade missing up to the window
            st.stand = prev if hist[lo][5] == prev[2] else None
    while mins[0][0] <= cutoff:        # never empties: the newest entry is at ts > cutoff
        _popleft(mins)
    while maxs[0][0] <= cutoff:
        _popleft(maxs)

    h, p = prm.h, prm.p
    alerts = None
    stand = st.stand

    low = mins[0]
    if stand is not None and stand[1] < low[1]:
        low = stand                    # the price that stood at the window's start
    base = low[1]
    rise = (price - base) * h          # compare with k·p·base
    if st.up_level and 2 * rise < p * base:
        st.up_level = 0
        st.up_since = -1
        st.log.append((cum, 0, st.down_level, -1, st.down_since))
    if rise >= (st.up_level + 1) * p * base:
        if not st.up_level:
            st.up_since = cum
        level = rise // (p * base)
        st.up_level = level
        st.log.append((cum, level, st.down_level, st.up_since, st.down_since))
        a = self._raise(st, code, entry, _UP, low, level, st.up_since, prm)
        if a is not None:
            alerts = [a]

    high = maxs[0]
    if stand is not None and stand[1] > high[1]:
        high = stand
    base = high[1]
    fall = (base - price) * h
    if st.down_level and 2 * fall < p * base:
        st.down_level = 0
        st.down_since = -1
        st.log.append((cum, st.up_level, 0, st.up_since, -1))
    if fall >= (st.down_level + 1) * p * base:
        if not st.down_level:
            st.down_since = cum
        level = fall // (p * base)
        st.down_level = level
        st.log.append((cum, st.up_level, level, st.up_since, st.down_since))
        a = self._raise(st, code, entry, _DOWN, high, level, st.down_since, prm)
        if a is not None:
            if alerts is None:
                alerts = [a]
            else:
                alerts.append(a)
    return alerts
