"""KRX price grid: tick sizes (호가가격단위, 2023-01-25 table) and ±30 % daily price limits.

Pure integer arithmetic: prices are whole won, and float rounding near a tick boundary would
put a price off the grid.
"""

from __future__ import annotations

#: (upper bound exclusive, tick) — KRX unified table for stocks since 2023-01-25.
TICK_TABLE: tuple[tuple[int, int], ...] = (
    (2_000, 1),
    (5_000, 5),
    (20_000, 10),
    (50_000, 50),
    (200_000, 100),
    (500_000, 500),
)
TOP_TICK = 1_000
LIMIT_PCT = 30


def tick_size(price: int) -> int:
    """Tick size for a price level (the tick of the band ``price`` lies in)."""
    for bound, tick in TICK_TABLE:
        if price < bound:
            return tick
    return TOP_TICK


def is_on_tick(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def floor_to_tick(price: float | int) -> int:
    """Largest grid price ≤ ``price`` (at least 1)."""
    p = int(price)
    if p < 1:
        return 1
    return p - p % tick_size(p)


def ceil_to_tick(price: float | int) -> int:
    """Smallest grid price ≥ ``price``."""
    f = floor_to_tick(price)
    return f if f >= price else next_tick_up(f)


def round_to_tick(price: float | int) -> int:
    """Nearest grid price (ties go up)."""
    lo = floor_to_tick(price)
    if lo >= price:
        return lo
    hi = next_tick_up(lo)
    return hi if (hi - price) <= (price - lo) else lo


def next_tick_up(price: int) -> int:
    """The grid price one tick above a grid price (band boundaries are multiples of the next tick)."""
    return price + tick_size(price)


def next_tick_down(price: int) -> int:
    """The grid price one tick below a grid price (never below 1)."""
    if price <= 1:
        return 1
    return price - tick_size(price - 1)


def price_limits(prev_close: int, pct: int = LIMIT_PCT) -> tuple[int, int]:
    """(upper, lower) daily limits: prev_close ± pct %, truncated inward to the grid (상한가/하한가)."""
    upper = floor_to_tick(prev_close * (100 + pct) // 100)
    lower_raw = -(-prev_close * (100 - pct) // 100)  # ceil
    lower = ceil_to_tick(max(1, lower_raw))
    return upper, lower


__all__ = [
    "LIMIT_PCT", "TICK_TABLE", "ceil_to_tick", "floor_to_tick", "is_on_tick",
    "next_tick_down", "next_tick_up", "price_limits", "round_to_tick", "tick_size",
]
