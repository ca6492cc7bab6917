"""OHLCV candles from trades (numpy, no Qt): built once from the day's trades, then kept up to
date from the live trades by rebuilding only the last candle onwards.

Buckets are aligned to the epoch, which for KST (UTC+9, whole hours) is aligned to the wall
clock minute: the 1-minute candle ``09:01`` holds the trades 09:01:00 … 09:01:59.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

ONE_MINUTE = 60
FIVE_MINUTES = 300


class Candles(NamedTuple):
    x: np.ndarray        # bucket start, epoch seconds
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:     # type: ignore[override]
        return len(self.x)


def _empty() -> Candles:
    return Candles(*(np.empty(0) for _ in range(6)))


def build_candles(t: np.ndarray, p: np.ndarray, v: np.ndarray, size: int) -> tuple[Candles, np.ndarray]:
    """Candles of ``size`` seconds from trades in time order; also the index of each candle's
    first trade. O(n), vectorised."""
    n = len(t)
    if n == 0:
        return _empty(), np.empty(0, np.int64)
    buckets = (t // size).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    ends = np.r_[starts[1:] - 1, n - 1]
    return Candles(buckets[starts].astype(float) * size, p[starts], np.maximum.reduceat(p, starts),
                   np.minimum.reduceat(p, starts), p[ends], np.add.reduceat(v, starts)), starts


class CandleSeries:
    """Candles of one size over a growing trade series (``chart._Series``).

    :meth:`update` rebuilds from the first trade of the last candle: a live trade costs the
    trades of the current minute, not the day's.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.reset()

    def reset(self) -> None:
        self.candles = _empty()
        self._from = 0          # series index of the last candle's first trade
        self._seen = 0          # trades taken into account

    def update(self, t: np.ndarray, p: np.ndarray, v: np.ndarray) -> bool:
        """Bring the candles up to ``len(t)`` trades; True when they changed."""
        n = len(t)
        if n < self._seen:      # the series was replaced (history loaded): start again
            self.reset()
        if n == self._seen:
            return False
        i0 = self._from
        new, starts = build_candles(t[i0:n], p[i0:n], v[i0:n], self.size)
        old = self.candles
        keep = max(len(old) - 1, 0) if i0 < self._seen else len(old)
        self.candles = Candles(*(np.concatenate((a[:keep], b)) for a, b in zip(old, new)))
        self._from = i0 + int(starts[-1])
        self._seen = n
        return True


__all__ = ["FIVE_MINUTES", "ONE_MINUTE", "CandleSeries", "Candles", "build_candles"]
