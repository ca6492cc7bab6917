"""Late trades for the move detector: merged in exchange order, the windows they touch judged again.

Why a module of its own: the hot path (``detector``) handles a trade newer than every trade of
its symbol in O(1); everything else — a back-filled, polled or replayed trade with a lower
cumulative volume — is collected per batch and handed here. :meth:`LateTrades._merge` places
those trades into the day's history (dropping replays, rejecting trades whose timestamp is
older than their predecessor's), :meth:`LateTrades._evaluate` walks the windows from the first
changed trade until the state equals the earlier evaluation again (no changed trade inside the
window nor standing for it, same episode levels), and the alerts found there, or held before
because their episode had alerted, go through the alert bookkeeping (``detector_alerts``).
Cost: O(log n) to place plus the re-evaluated stretch.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable

from ..core.events import AlertEvent
from ..core.ticks import Tick
from .detector_window import (
    DOWN, UP, Entry, LogEntry, Params, SymbolState, cum_of, log_cum, standing, ts_of,
)


def _tick_cum(t: Tick) -> int:
    return t.cum_volume


def episode_end(log: list[LogEntry], direction: str, since: int) -> int | None:
    """cum_volume of the trade that re-armed the episode opened at ``since`` (None: open)."""
    k = 1 if direction == UP else 2
    j = bisect_right(log, since, key=log_cum)
    for entry in log[j:]:
        if entry[k] == 0:
            return entry[0]
    return None


class LateTrades:
    """Mixed into :class:`~kis_desk.engine.detector.MoveDetector` (its state and counters)."""

    _states: dict[str, SymbolState]
    _pending: dict[str, list[Tick]]
    _default: Params
    _overrides: dict[str, Params]
    processed: int
    replayed: int
    out_of_order: int
    late: int
    invalid: int
    #: detector_alerts.AlertBook._raise (st, code, trigger, direction, base, step, since, prm, until)
    _raise: Callable[..., AlertEvent | None]

    def _merge(self, code: str, out: list[AlertEvent]) -> None:
        """Merge the pending late trades of ``code`` into its history and evaluate again the
        stretch they change; appends the alerts found that were not raised before to ``out``."""
        late = self._pending.pop(code)
        st = self._states[code]
        hist = st.hist
        late.sort(key=_tick_cum)
        fresh: list[Tick] = []
        for t in late:
            if t.timestamp.date() != st.day:    # an earlier day (a later one resets the state)
                self.out_of_order += 1
                continue
            cum = t.cum_volume
            if cum in st.rejected or (fresh and fresh[-1].cum_volume == cum):
                self.replayed += 1
                continue
            i = bisect_left(hist, cum, key=cum_of)
            if i < len(hist) and hist[i][2] == cum:
                self.replayed += 1
                continue
            if t.price <= 0:
                self.invalid += 1
                continue
            fresh.append(t)
        if not fresh:
            return
        # Merge the late trades with the tail of the history from the first one on; keep only
        # trades not older than their predecessor (exchange order; see "Trade order").
        start = bisect_left(hist, fresh[0].cum_volume, key=cum_of)
        tail = hist[start:]
        merged: list[Entry] = []
        newest = hist[start - 1][0] if start else None
        last_new = -1
        ti = 0
        for t in fresh:
            cum = t.cum_volume
            while ti < len(tail) and tail[ti][2] < cum:
                e = tail[ti]
                ti += 1
                if newest is not None and e[0] < newest:
                    st.rejected.add(e[2])      # an old trade now known to be out of order
                    self.out_of_order += 1
                    continue
                merged.append(e)
                newest = e[0]
            if newest is not None and t.timestamp < newest:
                st.rejected.add(cum)
                self.out_of_order += 1
                continue
            merged.append((t.timestamp, t.price, cum, t.source, t.state, cum - t.volume))
            newest = t.timestamp
            last_new = start + len(merged) - 1
            self.late += 1
            self.processed += 1
        for e in tail[ti:]:
            if newest is not None and e[0] < newest:
                st.rejected.add(e[2])
                self.out_of_order += 1
                continue
            merged.append(e)
            newest = e[0]
        hist[start:] = merged
        if last_new >= 0:
            c0 = hist[start][2]
            held, st.held = st.held, []
            reached = self._evaluate(st, code, start, last_new, out)
            # the held alerts inside the evaluated stretch were found (or not) again there; one
            # whose trigger or base is now known to be out of order is no move at all
            rejected = st.rejected
            held = [x for x in held if not c0 <= x[0][2] <= reached
                    and x[0][2] not in rejected and x[2][2] not in rejected]
            for trigger, direction, base_e, step, since, prm in held:
                until = episode_end(st.log, direction, since)
                a = self._raise(st, code, trigger, direction, base_e, step, since, prm, until)
                if a is not None:
                    out.append(a)
        if hist:
            st.last_ts, st.last_cum = hist[-1][0], hist[-1][2]
            # the history's indices moved: find the standing trade of the last trade's window
            lo = bisect_right(hist, hist[-1][0] - self._overrides.get(code, self._default).window,
                             key=ts_of)
            st.lo, st.stand = lo, standing(hist, lo)
        st.cut_ts = None

    def _evaluate(self, st: SymbolState, code: str, i0: int, last_new: int,
                  out: list[AlertEvent]) -> int:
        """Evaluate trades ``hist[i0:]`` again (the history changed at ``i0``) until the state
        equals the earlier evaluation with no changed trade left in the window. Returns the
        cum_volume of the last trade evaluated."""
        hist, log = st.hist, st.log
        prm = self._overrides.get(code, self._default) if self._overrides else self._default
        h, p, window = prm.h, prm.p, prm.window
        c0 = hist[i0][2]
        j = bisect_left(log, c0, key=log_cum)
        up, down, up_since, down_since = log[j - 1][1:] if j else (0, 0, -1, -1)
        old = log[j:]
        del log[j:]
        o_up, o_down, o_us, o_ds = up, down, up_since, down_since
        oi = 0
        first = bisect_right(hist, hist[i0][0] - window, 0, i0, key=ts_of)
        lo = first                       # hist[lo - 1]: the standing trade (see _one)
        mins: deque[Entry] = deque()
        maxs: deque[Entry] = deque()
        for e in hist[first:i0]:
            price = e[1]
            while mins and mins[-1][1] >= price:
                mins.pop()
            mins.append(e)
            while maxs and maxs[-1][1] <= price:
                maxs.pop()
            maxs.append(e)
        found: list[tuple[str, int, Entry, Entry, int]] = []    # (dir, since, trigger, base, step)
        converged_at = -1
        for idx in range(i0, len(hist)):
            e = hist[idx]
            ts, price, cum = e[0], e[1], e[2]
            while oi < len(old) and old[oi][0] <= cum:
                _, o_up, o_down, o_us, o_ds = old[oi]
                oi += 1
            while mins and mins[-1][1] >= price:
                mins.pop()
            mins.append(e)
            while maxs and maxs[-1][1] <= price:
                maxs.pop()
            maxs.append(e)
            cutoff = ts - window
            while hist[lo][0] <= cutoff:
                lo += 1
            stand = hist[lo - 1] if lo and hist[lo][5] == hist[lo - 1][2] else None
            while mins[0][0] <= cutoff:
                mins.popleft()
            while maxs[0][0] <= cutoff:
                maxs.popleft()
            changed = False
            low = mins[0]
            if stand is not None and stand[1] < low[1]:
                low = stand
            base = low[1]
            rise = (price - base) * h
            if up and 2 * rise < p * base:
                up, up_since, changed = 0, -1, True
            if rise >= (up + 1) * p * base:
                if not up:
                    up_since = cum
                up = rise // (p * base)
                changed = True
                found.append((UP, up_since, e, low, up))
            high = maxs[0]
            if stand is not None and stand[1] > high[1]:
                high = stand
            base = high[1]
            fall = (base - price) * h
            if down and 2 * fall < p * base:
                down, down_since, changed = 0, -1, True
            if fall >= (down + 1) * p * base:
                if not down:
                    down_since = cum
                down = fall // (p * base)
                changed = True
                found.append((DOWN, down_since, e, high, down))
            if changed:
                log.append((cum, up, down, up_since, down_since))
            # converged: no changed trade in the window nor standing for it (lo - 1 > last_new)
            if (idx > last_new and lo - 1 > last_new
                    and (up, down, up_since, down_since) == (o_up, o_down, o_us, o_ds)):
                converged_at = idx
                break
        if converged_at >= 0:
            log.extend(x for x in old if x[0] > hist[converged_at][2])
        else:
            st.mins, st.maxs = mins, maxs
            st.up_level, st.down_level, st.up_since, st.down_since = up, down, up_since, down_since
        for direction, since, trigger, base_e, step in found:
            until = episode_end(log, direction, since)
            a = self._raise(st, code, trigger, direction, base_e, step, since, prm, until)
            if a is not None:
                out.append(a)
        return hist[converged_at][2] if converged_at >= 0 else hist[-1][2]


__all__ = ["LateTrades", "episode_end"]
