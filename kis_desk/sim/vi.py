"""VI auctions and trading halts of the simulated market, as data the tests can read.

The rule itself (:class:`~kis_desk.sim.config.ViSpec`) is applied by the market's trade loop:
:func:`vi_trigger` says whether a would-be trade breaks a band, :class:`PriceWindow` keeps the
recent price range the dynamic band is measured from.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .config import ViSpec

STATIC, DYNAMIC = "static", "dynamic"


@dataclass
class ViEvent:
    """One VI: when and why it started, and the single auction print that ended it."""

    code: str
    kind: str                   # "static" or "dynamic"
    venue: str                  # where the auction prints ("krx", or "nxt" outside KRX hours)
    start: float                # loop time
    start_time: str             # HHMMSS (KST)
    trigger_price: int          # the trade that would have broken the band (not printed)
    reference: int              # the price the band was measured from
    static_reference: int       # VI_STND_PRC while it ran (the static reference at the trigger)
    planned_end: float          # loop time of the auction print (2 minutes + random end)
    end: float | None = None
    end_time: str = ""
    print_price: int | None = None
    print_index: int | None = None       # index of the print in the venue's tape
    total_index: int | None = None       # and in the integrated tape

    @property
    def active(self) -> bool:
        return self.end is None


@dataclass
class HaltEvent:
    """One trading halt (거래정지): no trades on any venue until it ends."""

    code: str
    start: float
    start_time: str
    until: float                # planned end (math.inf = until resumed)
    end: float | None = None
    end_time: str = ""

    @property
    def active(self) -> bool:
        return self.end is None


class PriceWindow:
    """Low and high of the trades of the last ``seconds`` (one bucket per second)."""

    __slots__ = ("seconds", "_buckets")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._buckets: deque[list[float]] = deque()

    def note(self, now: float, price: int) -> None:
        sec = math.floor(now)
        b = self._buckets
        if b and b[-1][0] == sec:
            last = b[-1]
            if price < last[1]:
                last[1] = price
            elif price > last[2]:
                last[2] = price
        else:
            b.append([sec, price, price])

    def range(self, now: float) -> tuple[float, float] | None:
        b = self._buckets
        horizon = math.floor(now - self.seconds)
        while b and b[0][0] < horizon:
            b.popleft()
        if not b:
            return None
        return min(x[1] for x in b), max(x[2] for x in b)

    def reset(self) -> None:
        self._buckets.clear()


def vi_trigger(spec: ViSpec, price: int, static_reference: int, window: tuple[float, float] | None,
               kospi200: bool) -> tuple[str, int] | None:
    """(kind, reference) when a trade at ``price`` would break the static or dynamic band."""
    if static_reference > 0 and abs(price - static_reference) * 100.0 >= spec.static_pct * static_reference:
        return STATIC, static_reference
    if window is not None:
        band = spec.dynamic_pct if kospi200 else spec.dynamic_pct_other
        lo, hi = window
        if price * 100.0 >= lo * (100.0 + band):
            return DYNAMIC, int(lo)
        if price * 100.0 <= hi * (100.0 - band):
            return DYNAMIC, int(hi)
    return None


__all__ = ["DYNAMIC", "HaltEvent", "PriceWindow", "STATIC", "ViEvent", "vi_trigger"]
