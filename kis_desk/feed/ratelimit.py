"""Client-side REST rate limiter, one per app key (KIS: 20/s real, 2/s mock, §7.2).

Requests are spaced evenly at 1/rate seconds (FIFO, no bursts): KIS counts per second and
answers EGW00201 when a burst crosses the line, and an even spacing never does. After an
EGW00201 the caller ``penalize``s the limiter so every waiter backs off, not only the one that
was refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate_per_second: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate_per_second
        self.interval = 1.0 / rate_per_second
        self._clock = clock
        self._next = 0.0
        self.acquired = 0
        self.penalties = 0

    async def acquire(self) -> None:
        """Wait for this request's slot (slots are handed out in call order)."""
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        self.acquired += 1
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)

    def penalize(self, seconds: float) -> None:
        """Push every future slot at least ``seconds`` into the future (after EGW00201)."""
        self.penalties += 1
        self._next = max(self._next, self._clock() + seconds)

    def backlog_seconds(self) -> float:
        """How far ahead slots are already handed out (lets pollers yield to back-fill)."""
        return max(0.0, self._next - self._clock())
