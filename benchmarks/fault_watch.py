"""What the fault benchmarks and the end-to-end completeness tests measure on a running
collector: when fresh data (socket or poll, not back-fill) arrived per symbol, the longest time
any symbol had none, and every alert raised (tests/support_alerts.py re-exports these)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kis_desk.core.events import AlertEvent, TicksEvent


def worst_gap(fresh: Mapping[str, Sequence[float]], codes: Iterable[str], start: float,
              end: float) -> tuple[float, str]:
    """Longest time in [start, end] any of ``codes`` received no fresh data (arrival times in
    ``fresh``, monotonic seconds) and which symbol it was."""
    worst, who = 0.0, ""
    for code in codes:
        times = [start] + [t for t in fresh.get(code, ()) if start < t < end] + [end]
        gap = max(b - a for a, b in zip(times, times[1:]))
        if gap > worst:
            worst, who = gap, code
    return worst, who


class CollectorWatch:
    """Subscribes to a collector's bus: when fresh data (socket or poll, not back-fill) arrived
    per symbol, and every alert raised."""

    def __init__(self, bus: Any) -> None:
        self.fresh: dict[str, list[float]] = {}
        self.alerts: list[AlertEvent] = []
        bus.subscribe(TicksEvent, self._on_ticks)
        bus.subscribe(AlertEvent, self.alerts.append)

    def _on_ticks(self, event: TicksEvent) -> None:
        now = time.monotonic()
        for t in event.ticks:
            if t.source != "backfill":
                self.fresh.setdefault(t.stock_code, []).append(now)

    def worst_gap(self, codes: Iterable[str], start: float, end: float) -> tuple[float, str]:
        return worst_gap(self.fresh, codes, start, end)

    def alerts_of(self, code: str) -> list[AlertEvent]:
        return [a for a in self.alerts if a.stock_code == code]


__all__ = ["CollectorWatch", "worst_gap"]
