"""One symbol's window for the move detector: its parameters, state and rebuilds.

Why a module of its own: the in-order hot path (``detector``), the late-trade merge
(``detector_late``) and the alert bookkeeping (``detector_alerts``) all read and write the
same per-symbol state; it is defined once here, with the two ways a window is rebuilt outside
the hot path (new parameters: :func:`rebuild_window`; an override set or cleared:
:func:`restart_window`).

An entry is ``(timestamp, price, cum_volume, source, market state, cum_volume - volume)``: one
tuple per accepted trade of the day, in exchange (cumulative-volume) order. The last field is the
cumulative volume the trade says came before it: equal to the previous entry's when no trade is
missing between them (KIS's own continuity; see :func:`standing`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

UP = "up"
DOWN = "down"

Entry = tuple[datetime, int, int, str, str, int]
#: (cum_volume, up_level, down_level, up_since, down_since) after a trade that changed them
LogEntry = tuple[int, int, int, int, int]


def ratio(pct: float) -> tuple[int, int]:
    """``pct`` as an exact fraction ``num/den`` of its decimal text (4.99 → 499/100)."""
    d = Decimal(str(pct))
    if not d.is_finite() or d <= 0:
        raise ValueError(f"threshold must be a positive percentage, got {pct!r}")
    num, den = d.as_integer_ratio()
    return num, den


@dataclass(frozen=True, slots=True)
class Params:
    threshold_pct: float
    window_seconds: float
    window: timedelta
    p: int          # threshold % = p / q exactly
    h: int          # 100 * q: a move of price - base ≥ k·threshold ⇔ (price-base)·h ≥ k·p·base

    @classmethod
    def of(cls, pct: float, window_seconds: float) -> Params:
        if not window_seconds > 0:
            raise ValueError(f"window must be positive, got {window_seconds!r}")
        p, q = ratio(pct)
        return cls(float(pct), float(window_seconds), timedelta(seconds=window_seconds), p, 100 * q)


class SymbolState:
    """Window, episode and history state of one symbol for one business date."""

    __slots__ = ("day", "last_ts", "last_cum", "mins", "maxs", "up_level", "down_level",
                 "cut_ts", "cut_prm", "cutoff", "hist", "rejected", "log", "emitted",
                 "up_since", "down_since", "held", "lo", "stand")

    def __init__(self, day: date) -> None:
        self.day = day
        self.last_ts: datetime | None = None
        self.last_cum = -1
        # window cutoff (cut_ts - window of cut_prm), kept while trades share a timestamp
        self.cut_ts: datetime | None = None
        self.cut_prm: Params | None = None
        self.cutoff: datetime | None = None
        # Entries (timestamp, price, cum_volume, source, market state); mins: strictly
        # increasing prices front→back, maxs: strictly decreasing, over the trades *inside* the
        # window. The front is the window extreme (its latest occurrence).
        self.mins: deque[Entry] = deque()
        self.maxs: deque[Entry] = deque()
        # The standing trade: the last trade at or before the window's start (hist[lo - 1]);
        # hist[lo] is the first trade inside the window. None before any trade left the window,
        # or when trades are missing between the two (see standing()).
        self.lo = 0
        self.stand: Entry | None = None
        self.up_level = 0     # highest step alerted in the current up episode (0 = armed)
        self.down_level = 0
        self.up_since = -1    # cum_volume of the trade that opened the current up episode
        self.down_since = -1
        # The day's accepted trades in exchange (cum_volume) order; timestamps non-decreasing.
        self.hist: list[Entry] = []
        self.rejected: set[int] = set()          # cum_volumes of out-of-order trades
        # Level changes: (cum_volume, up_level, down_level, up_since, down_since) after that
        # trade; the state before any trade is the last entry with a lower cum_volume.
        self.log: list[LogEntry] = []
        # Alerts raised for this symbol and day: (direction, trigger cum_volume, step).
        self.emitted: list[tuple[str, int, int]] = []
        # Alerts not raised because an alert of their episode was: decided again when late
        # trades split the episode. (trigger, direction, base, step, since, params)
        self.held: list[tuple[Entry, str, Entry, int, int, Params]] = []


def cum_of(e: Entry) -> int:
    return e[2]


def ts_of(e: Entry) -> datetime:
    return e[0]


def log_cum(e: LogEntry) -> int:
    return e[0]


def standing(hist: list[Entry], lo: int) -> Entry | None:
    """The trade that stood at the start of a window whose first trade is ``hist[lo]``: the one
    before it — only when no trade is missing between them (``hist[lo]`` follows it in the
    cumulative-volume chain). Behind a hole (a stall not back-filled yet) the price that stood
    is unknown, and the move is judged on the trades inside the window until the hole is filled
    (then the window is evaluated again, with the standing trade)."""
    if lo and hist[lo][5] == hist[lo - 1][2]:
        return hist[lo - 1]
    return None


def rebuild_window(st: SymbolState, prm: Params) -> None:
    """The window of the newest trade rebuilt from the day's history over ``prm``'s length,
    and the episodes set to the level the current move already reaches under ``prm``'s
    threshold (``MoveDetector.reconfigure``: the new rule applies to moves from now on)."""
    st.mins.clear()
    st.maxs.clear()
    st.cut_ts = None
    if not st.hist:
        return
    last = st.hist[-1]
    cutoff = last[0] - prm.window
    first = bisect_right(st.hist, cutoff, key=ts_of)
    st.lo, st.stand = first, standing(st.hist, first)
    for e in st.hist[first:]:
        while st.mins and st.mins[-1][1] >= e[1]:
            st.mins.pop()
        st.mins.append(e)
        while st.maxs and st.maxs[-1][1] <= e[1]:
            st.maxs.pop()
        st.maxs.append(e)
    price, cum = last[1], last[2]
    low, high = st.mins[0][1], st.maxs[0][1]
    if st.stand is not None:               # the price that stood at the window's start
        low, high = min(low, st.stand[1]), max(high, st.stand[1])
    st.up_level = (price - low) * prm.h // (prm.p * low)
    st.down_level = (high - price) * prm.h // (prm.p * high)
    st.up_since = cum if st.up_level else -1
    st.down_since = cum if st.down_level else -1
    st.log.append((cum, st.up_level, st.down_level, st.up_since, st.down_since))


def restart_window(st: SymbolState) -> None:
    """Empty window, re-armed episodes: the trades before now never count for the new
    parameters (``MoveDetector.set_override`` / ``clear_override``)."""
    st.mins.clear()
    st.maxs.clear()
    st.up_level = st.down_level = 0
    st.up_since = st.down_since = -1
    st.cut_ts = None
    st.lo = len(st.hist)          # trades before the restart never stand for the window
    st.stand = None
    st.log.append((st.last_cum, 0, 0, -1, -1))


__all__ = ["DOWN", "Entry", "LogEntry", "Params", "SymbolState", "UP", "cum_of", "log_cum",
           "rebuild_window", "restart_window", "standing", "ts_of"]
