"""News-like spikes for the demo: a believable ±5.5–9 % move on one symbol every few minutes.

A plain random walk at realistic volatility almost never moves 5 % within a minute, so a newcomer
watching the demo would never see an alert. :class:`SpikeScheduler` plans such moves from its own
seeded RNG (trades, volumes and symbol picks do not change when spikes are switched on or off;
only prices do) and hands them to the market as jumps; each one is partly retraced afterwards.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import NamedTuple

from .config import SpikeSpec


class Move(NamedTuple):
    """One large move the market was told to make (a scripted jump or a news spike)."""

    code: str
    start: float            # loop time the move starts
    pct: float              # signed, percent of the price at its start
    over_seconds: float
    kind: str               # "jump" (scripted) or "spike" (news-like)
    retrace_pct: float = 0.0          # signed move that follows (spikes only; 0 = none)
    retrace_start: float = 0.0
    retrace_over: float = 0.0


class SpikeScheduler:
    """Decides when the next spike comes and on which symbol, in which direction, how large."""

    def __init__(self, spec: SpikeSpec, seed: int, start: float) -> None:
        self.spec = spec
        self._rng = random.Random(seed * 7919 + 2)     # its own stream: trades stay as they were
        self.next_at = start + self._draw(spec.first_after)
        self._first = True

    def _draw(self, bounds: tuple[float, float]) -> float:
        lo, hi = bounds
        return self._rng.uniform(lo, hi)

    def due(self, now: float, candidates: Sequence[tuple[str, float]]) -> Move | None:
        """The spike to start now, if one is due. ``candidates``: (code, percent away from its
        previous close) of the symbols that may spike (those watched, preferably)."""
        if now < self.next_at or not candidates:
            return None
        spec = self.spec
        self.next_at = now + self._draw(spec.every)
        code, away = candidates[self._rng.randrange(len(candidates))]
        sign = 1.0 if self._rng.random() < 0.5 else -1.0
        if abs(away) >= spec.turn_back_beyond_pct:
            sign = -1.0 if away > 0 else 1.0            # stay well inside the ±30 % band
        first, self._first = self._first, False
        pct = sign * self._draw(spec.first_pct if first and spec.first_pct else spec.pct)
        over = self._draw(spec.first_over if first and spec.first_over else spec.over)
        give_back = self._draw(spec.retrace)
        retrace_pct = (math.exp(-give_back * math.log1p(pct / 100.0)) - 1.0) * 100.0
        retrace_start = now + over + self._draw(spec.pause)
        return Move(code, now, pct, over, "spike", retrace_pct, retrace_start,
                    self._draw(spec.retrace_over))


__all__ = ["Move", "SpikeScheduler"]
