"""Live trades of one event-loop pass delivered together: one consumer call per pass, not per frame.

Why: a busy socket hands the read loop hundreds of frames (1–10 trades each) before it yields;
the consumer (the collector: detector, writer queue, event bus, publishers) has a fixed cost per
call of several microseconds, paid per frame. The frames read in one pass are joined and
delivered once, at the end of the pass (``call_soon``) or as soon as ``max_ticks`` are waiting,
so a long burst is never held back. Order is kept: trades from other sources (back-fill, polls)
first deliver what waits, and a change of venue delivers the older venue's trades first (a
consumer judges a call by its first trade's venue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..core.ticks import Tick

#: trades waiting before they are delivered without waiting for the end of the pass
MAX_TICKS = 1024


class LiveTradeCoalescer:
    """Joins the live trades handed to :meth:`add` until the event loop's current pass ends."""

    def __init__(self, deliver: Callable[[list[Tick]], None], max_ticks: int = MAX_TICKS) -> None:
        self._deliver = deliver
        self.max_ticks = max_ticks
        self._waiting: list[Tick] = []
        self._scheduled = False

    def add(self, ticks: Sequence[Tick]) -> None:
        waiting = self._waiting
        if waiting and waiting[-1].venue != ticks[0].venue:
            self.flush()
            waiting = self._waiting
        waiting.extend(ticks)
        if len(waiting) >= self.max_ticks:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:      # no loop running (a synchronous caller): deliver now
                self.flush()
                return
            self._scheduled = True

    def flush(self) -> None:
        """Deliver what waits now (the scheduled end-of-pass call finds nothing then)."""
        self._scheduled = False
        if self._waiting:
            ticks, self._waiting = self._waiting, []
            self._deliver(ticks)

    def __len__(self) -> int:
        return len(self._waiting)
