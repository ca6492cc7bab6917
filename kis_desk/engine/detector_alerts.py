"""Alert bookkeeping for the move detector: alert ids, episodes, seeds, and the alert itself.

Why a module of its own: deciding whether a threshold crossing becomes an alert is a job apart
from finding the crossing. An alert is raised once: not when its id (``<code>:<YYYYMMDD>:
<up|down>:<step>:<trigger cum_volume>``) was raised already — this run, or an earlier run of
the day (:meth:`AlertBook.seed` with the alerts table's ids) — nor when an alert of the same
direction with a step at least as high was raised within the same episode (then it is *held*:
decided again if late trades split the episode, ``detector_late``). Here too: the exact
``change_pct``, lateness (``source``, ``delay_s``, ``late``) and ``vi`` (the move went
through a VI auction print).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from ..core.events import AlertEvent
from ..core.ticks import SOURCE_BACKFILL
from .detector_window import Entry, Params, SymbolState, cum_of

SOURCE_JOURNAL = "journal"      # trades replayed from the writer's journal
LATE_AFTER_S = 5.0
_LATE_SOURCES = frozenset({SOURCE_BACKFILL, SOURCE_JOURNAL})
_VI_STATES = frozenset({"static_vi", "dynamic_vi"})     # Tick.state of a VI auction print
_CENT = Decimal("0.01")


def now_utc() -> datetime:
    """Wall clock, UTC-aware (``AlertEvent.detected_at``)."""
    return datetime.now(timezone.utc)


def vi_between(hist: list[Entry], base_cum: int, trigger_cum: int) -> str:
    """The VI state of the latest VI auction print from the base to the trigger ("" if none):
    the move went through a VI. Runs only for an alert (O(trades in the window))."""
    i = bisect_left(hist, base_cum, key=cum_of)
    j = bisect_left(hist, trigger_cum, key=cum_of)
    for e in reversed(hist[i:j]):
        if e[4] in _VI_STATES:
            return e[4]
    return ""


class AlertBook:
    """Mixed into :class:`~kis_desk.engine.detector.MoveDetector` (its state and counters)."""

    _states: dict[str, SymbolState]
    _state_class: type = SymbolState                        # the detector may use its compiled twin
    _ids: set[str]                                          # alert ids raised (or seeded)
    _seeded: dict[tuple[str, date], list[tuple[str, int, int]]]
    _names: Callable[[str], str] | None
    _clock: Callable[[], datetime]
    alerts: int
    alerts_late: int
    suppressed: int

    def seed(self, alert_ids: Iterable[str]) -> int:
        """Alerts already raised (an earlier run's rows in the alerts table): never raised
        again, and they count for the episode rule. Returns how many ids were understood."""
        n = 0
        for aid in alert_ids:
            try:
                code, day_text, direction, step, cum = aid.split(":")
                day = datetime.strptime(day_text, "%Y%m%d").date()
                record = (direction, int(cum), int(step))
            except ValueError:
                continue
            if aid in self._ids:
                continue
            self._ids.add(aid)
            st = self._states.get(code)
            if st is not None and st.day == day:
                st.emitted.append(record)
            else:
                self._seeded.setdefault((code, day), []).append(record)
            n += 1
        return n

    def _new_state(self, code: str, day: date) -> SymbolState:
        st = self._state_class(day)
        seeded = self._seeded.pop((code, day), None)
        if seeded:
            st.emitted.extend(seeded)
        return st

    def _raise(self, st: SymbolState, code: str, trigger: Entry, direction: str,
               base: Entry, step: int, since: int, prm: Params,
               until: int | None = None) -> AlertEvent | None:
        """The alert, unless raised already: same id, or same direction and episode with a
        step at least as high (``since`` ≤ trigger < ``until``)."""
        ts, price, cum, source, state = trigger[:5]
        alert_id = f"{code}:{ts:%Y%m%d}:{direction}:{step}:{cum}"
        if alert_id in self._ids:
            self.suppressed += 1
            return None
        for d, c, s in st.emitted:
            if d == direction and s >= step and c >= since and (until is None or c < until):
                self.suppressed += 1
                st.held.append((trigger, direction, base, step, since, prm))
                return None
        self._ids.add(alert_id)
        st.emitted.append((direction, cum, step))
        self.alerts += 1
        base_time, base_price = base[0], base[1]
        change = (Decimal(price - base_price) * 100 / Decimal(base_price)).quantize(
            _CENT, rounding=ROUND_HALF_UP)
        name = ""
        if self._names is not None:
            try:
                name = self._names(code) or ""
            except Exception:   # a name lookup must never cost an alert
                name = ""
        vi = state if state in _VI_STATES else vi_between(st.hist, base[2], cum)
        detected = self._clock()
        delay = max(0.0, round((detected - ts).total_seconds(), 1))
        late = source in _LATE_SOURCES or delay > LATE_AFTER_S
        if late:
            self.alerts_late += 1
        return AlertEvent(
            alert_id=alert_id,
            stock_code=code,
            stock_name=name,
            direction=direction,
            change_pct=float(change),
            base_price=base_price,
            base_time=base_time,
            trigger_price=price,
            trigger_time=ts,
            trigger_cum_volume=cum,
            detected_at=detected,
            window_seconds=prm.window_seconds,
            threshold_pct=prm.threshold_pct,
            step=int(step),
            late=late,
            delay_s=delay,
            source=source,
            vi=vi,
        )


__all__ = ["LATE_AFTER_S", "SOURCE_JOURNAL", "AlertBook", "now_utc", "vi_between"]
