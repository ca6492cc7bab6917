"""Market-phase reporting shared by the collector and a remote-attached desktop engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ..core.events import ErrorEvent, EventBus, MarketPhaseEvent
from ..protocol.records import KST

if TYPE_CHECKING:
    from ..market.calendar import TradingCalendar

log = logging.getLogger(__name__)


def phase_detail(wall: datetime, venue: str = "krx", calendar: TradingCalendar | None = None) -> str:
    """Plain words for a quiet market: it stays connected, and when trading resumes.

    KRX says when the regular session opens; NXT and ``total`` trade before the regular
    session (pre-market from 08:00), so they say when the next session starts and name it.
    """
    from ..market.calendar import default_calendar

    cal = calendar or default_calendar()
    phase = cal.phase_at(wall, venue)
    text = f"market {phase.value}: staying connected quietly (PINGPONG only); "
    if venue == "krx":
        return text + f"next open {cal.next_open(wall, venue):%a %Y-%m-%d %H:%M} KST"
    start = cal.next_trading_start(wall, venue)
    sessions = cal.session_at(start, venue)
    kinds = "/".join(sorted({f"{s.venue} {s.kind.replace('_', '-')}" for s in sessions}))
    return (text + f"next session {start:%a %Y-%m-%d %H:%M} KST ({kinds}); "
            f"regular open {cal.next_open(wall, venue):%H:%M:%S}")


class PhaseWatcher:
    """Publishes a :class:`MarketPhaseEvent` whenever the venue's phase changes; call ``check()``
    periodically. The phases come from the session table (``venue`` krx, nxt or total; default
    krx). Outside trading hours the detail says the feed stays connected quietly and when the
    market next opens; with a simulator it says the market is simulated."""

    def __init__(self, bus: EventBus, *, simulated: bool = False, venue: str = "krx",
                 calendar: TradingCalendar | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``clock``: KST wall time (injectable: tests run across midnight)."""
        from ..market.sessions import check_venue

        self.bus = bus
        self.simulated = simulated
        self.venue = check_venue(venue)
        self.calendar = calendar
        self.clock = clock or (lambda: datetime.now(KST))
        self._last: object = None

    def check(self, wall: datetime | None = None) -> None:
        from ..market.calendar import default_calendar

        try:
            cal = self.calendar or default_calendar()
            wall = wall or self.clock()
            phase = cal.phase_at(wall, self.venue)
            seen = (phase, self.venue, self.simulated)     # a venue switch says its own phase
            if seen == self._last:
                return
            self._last = seen
            detail = "simulator: always open" if self.simulated else ""
            if not self.simulated and not phase.trading:
                detail = phase_detail(wall, self.venue, cal)
            change_at, _next_phase = cal.next_phase_change(wall, self.venue)
            log.info("market phase %s (%s)%s", phase.value, self.venue, f" — {detail}" if detail else "")
            self.bus.publish(MarketPhaseEvent(phase.value, detail, change_at))
        except Exception as exc:  # calendar trouble must never stop the caller's loop
            self.bus.publish(ErrorEvent("calendar", f"{type(exc).__name__}: {exc}"))
