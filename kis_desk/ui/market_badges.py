"""VI and halt as the desk shows them: the grid's badge and the chart's VI periods.

Why a module of its own: the grid's badge column (``grid_columns``), its tooltip and the detail
chart's VI markers read the same engine facts and must agree — a
:class:`~kis_desk.core.events.MarketStateEvent` (``engine.market_states``: halted or in a VI
auction since when, of which kind, at which standard price), the single print that ends a VI
auction (``Tick.state`` ``static_vi`` / ``dynamic_vi``) and an alert whose move went through a
VI (``AlertEvent.vi``). Plain Python (no Qt): texts, and periods in epoch seconds.

A VI period is ``(start, end)`` with ``end`` None while the auction runs. From an event: the
VI's start (the VI-status time, else when it was first seen) to the event that ended it. From
a print or an alert alone (the start was not seen, e.g. after a restart): from the last trade
before the print — the VI began with the trade that would have broken the band, which is never
printed — to the print.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import datetime

from ..core.events import MarketStateEvent
from ..protocol.records import KST
from .i18n import tr

HALTED = "halted"
VI = "vi"
VI_PRINTS = frozenset({"static_vi", "dynamic_vi"})
NOMINAL_VI_S = 120.0          # a running VI is drawn this long (KRX: 2 minutes + random end)
LONGEST_VI_S = 150.0          # 2 minutes + at most 30 s random end

Period = tuple[float, float | None]


def _hhmm(when: datetime, seconds: bool = False) -> str:
    return when.astimezone(KST).strftime("%H:%M:%S" if seconds else "%H:%M")


def badge_text(event: MarketStateEvent | None) -> str | None:
    """The grid's word for a symbol's state: "VI 09:31" (with its start), "정지"; None if normal."""
    if event is None or not event.state:
        return None
    if event.state == VI:
        return tr("col.badge.vi_at", time=_hhmm(event.since))
    if event.state == HALTED:
        return tr("col.badge.halt")
    return None


def badge_tooltip(event: MarketStateEvent | None) -> str | None:
    """Kind (static / dynamic when known), start and standard price of a VI; a halt's start."""
    if event is None or not event.state:
        return None
    if event.state == HALTED:
        return tr("col.badge.halt.since", time=_hhmm(event.since, True))
    kind = event.kind.split("+")[0] if event.kind else ""
    text = tr(f"col.badge.vi.{kind}" if kind in ("static", "dynamic") else "col.badge.vi.tip")
    text += " · " + tr("col.badge.since", time=_hhmm(event.since, True))
    if event.reference:
        text += " · " + tr("col.badge.vi.reference", price=f"{event.reference:,}")
    return text


def merge_periods(periods: Iterable[Period]) -> list[Period]:
    """Overlapping or touching periods as one, in time order (an open period stays open)."""
    out: list[list[float | None]] = []
    for start, end in sorted(periods, key=lambda p: p[0]):
        if out:
            last = out[-1]
            if last[1] is None or start <= last[1]:          # type: ignore[operator]
                if last[1] is not None and (end is None or end > last[1]):
                    last[1] = end
                continue
        out.append([start, end])
    return [(float(s), None if e is None else float(e)) for s, e in out]  # type: ignore[arg-type]


def print_period(times: Sequence[float], print_time: float) -> Period:
    """The VI that the print at ``print_time`` ended: from the last trade before it in ``times``
    (ascending epoch seconds), at most the longest VI before it — or a nominal VI when no
    trade before it is known."""
    i = bisect.bisect_left(times, print_time)
    start = times[i - 1] if i else print_time - NOMINAL_VI_S
    return (float(max(start, print_time - LONGEST_VI_S)), float(print_time))


class ViBook:
    """Per symbol: the VI periods seen through MarketStateEvents this run (the chart gets them
    when it shows the symbol), and the current state of each symbol (the grid's badge)."""

    def __init__(self) -> None:
        self._periods: dict[str, list[list[float | None]]] = {}
        self.current: dict[str, MarketStateEvent] = {}

    def on_event(self, event: MarketStateEvent) -> bool:
        """Note one event; True when ``code``'s VI periods changed."""
        code = event.stock_code
        if event.state:
            self.current[code] = event
        else:
            self.current.pop(code, None)
        periods = self._periods.setdefault(code, [])
        open_ = periods[-1] if periods and periods[-1][1] is None else None
        when = event.since.timestamp()
        if event.state == VI and open_ is None:
            periods.append([when, None])
            return True
        if event.state != VI and open_ is not None:
            open_[1] = max(when, open_[0])                  # type: ignore[type-var]
            return True
        return False

    def periods(self, code: str) -> list[Period]:
        return [(s, e) for s, e in self._periods.get(code, [])]  # type: ignore[misc]

    def clear(self) -> None:
        """A new business day: VI periods are the old day's; halts go on."""
        self._periods.clear()
        self.current = {c: e for c, e in self.current.items() if e.state == HALTED}


__all__ = ["HALTED", "LONGEST_VI_S", "NOMINAL_VI_S", "VI", "VI_PRINTS", "Period", "ViBook", "badge_text",
           "badge_tooltip", "merge_periods", "print_period"]
