"""Market-phase reporting shared by the collector and a remote-attached desktop engine."""

from __future__ import annotations

import logging
from datetime import datetime

from ..protocol.records import KST
from ..core.events import ErrorEvent, EventBus, MarketPhaseEvent

log = logging.getLogger(__name__)


class PhaseWatcher:
    """Publishes a :class:`MarketPhaseEvent` whenever the KRX phase changes; call ``check()``
    periodically. Outside trading hours the detail says the feed stays connected quietly and
    when the market next opens; with a simulator it says the market is simulated."""

    def __init__(self, bus: EventBus, *, simulated: bool = False) -> None:
        self.bus = bus
        self.simulated = simulated
        self._last: object = None

    def check(self, wall: datetime | None = None) -> None:
        from ..market.calendar import next_open, next_phase_change, phase_at

        try:
            wall = wall or datetime.now(KST)
            phase = phase_at(wall)
            if phase == self._last:
                return
            self._last = phase
            detail = "simulator: always open" if self.simulated else ""
            if not self.simulated and not phase.trading:
                detail = (f"market {phase.value}: staying connected quietly (PINGPONG only); "
                          f"next open {next_open(wall):%a %Y-%m-%d %H:%M} KST")
            change_at, _next_phase = next_phase_change(wall)
            log.info("market phase %s%s", phase.value, f" — {detail}" if detail else "")
            self.bus.publish(MarketPhaseEvent(phase.value, detail, change_at))
        except Exception as exc:  # calendar trouble must never stop the caller's loop
            self.bus.publish(ErrorEvent("calendar", f"{type(exc).__name__}: {exc}"))
