"""Reconnect back-off with jitter that resets after a healthy period (cryptofeed-style).

Why these numbers: the first retry comes within ~1 s (most drops are transient and every second
offline is lost trades that must be back-filled), the delay doubles up to a cap of 10 s (so once
the server accepts again every symbol is back well within 30 s), and a connection that stayed up
for ``healthy_after`` seconds resets the sequence, so one drop a day never inherits yesterday's
long waits. Jitter spreads several app keys' reconnects apart; a floor keeps any loop from being
tight.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class BackoffPolicy:
    initial: float = 0.5          # first delay (before jitter)
    factor: float = 2.0
    cap: float = 10.0             # no delay exceeds this (after jitter)
    jitter: float = 0.25          # ± fraction applied to every delay
    floor: float = 0.1            # never retry faster than this
    healthy_after: float = 60.0   # connected this long → the next failure starts from `initial`

    def __post_init__(self) -> None:
        if not (0 < self.floor <= self.initial <= self.cap):
            raise ValueError("need 0 < floor <= initial <= cap")
        if self.factor < 1 or not (0 <= self.jitter < 1):
            raise ValueError("need factor >= 1 and 0 <= jitter < 1")


@dataclass
class Backoff:
    """Stateful delay sequence; not thread-safe (one per session, on the loop)."""

    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0
    _connected_at: float | None = None

    def connected(self, now: float) -> None:
        """A connection was established (the server accepted us) at monotonic time ``now``."""
        self._connected_at = now

    def disconnected(self, now: float) -> None:
        """The connection ended at ``now``: reset when it had been healthy long enough."""
        if self._connected_at is not None and now - self._connected_at >= self.policy.healthy_after:
            self.attempts = 0
        self._connected_at = None

    def reset(self) -> None:
        self.attempts = 0

    def base_delay(self, attempt: int) -> float:
        p = self.policy
        return min(p.cap, p.initial * p.factor ** min(attempt, 64))

    def next_delay(self) -> float:
        """Delay before the next attempt; advances the sequence."""
        p = self.policy
        base = self.base_delay(self.attempts)
        self.attempts += 1
        jittered = base * self.rng.uniform(1.0 - p.jitter, 1.0 + p.jitter)
        return max(p.floor, min(p.cap, jittered))

    def bounds(self, attempt: int) -> tuple[float, float]:
        """(min, max) delay the ``attempt``-th retry (0-based) can return — for tests and docs."""
        p = self.policy
        base = self.base_delay(attempt)
        return (max(p.floor, min(p.cap, base * (1 - p.jitter))),
                max(p.floor, min(p.cap, base * (1 + p.jitter))))


def jittered(seconds: float, rng: random.Random, jitter: float = 0.2) -> float:
    """``seconds`` ± ``jitter`` fraction (used for the long app-key-in-use wait)."""
    return max(0.0, seconds * rng.uniform(1.0 - jitter, 1.0 + jitter))
