"""One symbol of the simulated market for the current business day.

Why its own module: the per-symbol state (reference prices and limits, the fair value and its
scripted jumps, the book quantities, the three tapes, VI and halt) is what every other part of
the simulator reads — the generator (:mod:`.trading`), the record builder (:mod:`.frames`) and
the REST quotations (:mod:`.rest`) — while :mod:`.market` only keeps the set of symbols.
"""

from __future__ import annotations

import math

from ..market.ticks import price_limits
from .tape import VENUE_KRX, VENUE_NXT, VENUE_TOTAL, SimTrade, Tape
from .universe import code_unit, reference_for
from .vi import HaltEvent, PriceWindow, ViEvent


class Jump:
    """A scripted move of the fair value: ``pct`` percent over ``over`` seconds from ``start``."""

    __slots__ = ("start", "over", "log_ratio", "done")

    def __init__(self, start: float, over: float, pct: float) -> None:
        self.start = start
        self.over = max(0.0, over)
        self.log_ratio = math.log(max(0.01, 1.0 + pct / 100.0))
        self.done = 0.0


class Symbol:
    """State of one symbol for the current business day: the price process, its three tapes
    (``krx``, ``nxt``, ``total``) and its VI / halt state. The KRX tape's counters and history
    are also reachable directly (``cum_vol``, ``trades()`` …: what H0STCNT0 and ``J`` show)."""

    __slots__ = (
        "code", "name", "base_close", "prev_close", "upper", "lower", "fair", "weight", "price",
        "prev_day_vol", "listed_shares", "vol_mu", "last_update", "jumps", "ask_q", "bid_q",
        "tot_ask", "tot_bid", "business_date", "krx", "nxt", "total", "nxt_eligible", "kospi200",
        "static_ref", "window", "vi", "halt", "expected_sent",
    )

    def __init__(self, code: str, weight: float, now: float, business_date: str,
                 nxt_eligible: bool = False, kospi200: bool = False, vi_window: float = 10.0) -> None:
        name, prev_close = reference_for(code)
        self.code = code
        self.name = name
        self.base_close = prev_close
        self.weight = weight
        self.last_update = now
        self.jumps: list[Jump] = []
        self.nxt_eligible = nxt_eligible
        self.kospi200 = kospi200
        self.window = PriceWindow(vi_window)
        self.vi: ViEvent | None = None
        self.halt: HaltEvent | None = None
        self.expected_sent = -math.inf
        u = code_unit(code, "shares")
        self.listed_shares = int(10 ** (7 + 2.2 * u))                    # 10M .. 1.6B shares
        self.vol_mu = math.log(max(1.0, 3_000_000 / prev_close))          # ~3M won per trade
        self.prev_day_vol = max(10_000, int(60e9 / prev_close * (0.3 + code_unit(code, "pv"))))
        self.krx = Tape(code, VENUE_KRX, business_date, prev_close)
        self.nxt = Tape(code, VENUE_NXT, business_date, prev_close)
        self.total = Tape(code, VENUE_TOTAL, business_date, prev_close)
        self.start_day(prev_close, business_date)

    def start_day(self, prev_close: int, business_date: str) -> None:
        self.business_date = business_date
        self.prev_close = prev_close
        self.upper, self.lower = price_limits(prev_close)
        self.fair = float(prev_close)
        self.price = prev_close
        base_q = max(10, int(math.exp(self.vol_mu) * 20))
        self.ask_q = base_q
        self.bid_q = base_q
        self.tot_ask = base_q * 25
        self.tot_bid = base_q * 25
        self.static_ref = 0
        self.window.reset()
        for tape in (self.krx, self.nxt, self.total):
            tape.start_day(business_date, prev_close)

    def resume(self, price: int, cum_volume: int, cum_value: int) -> None:
        """Continue today's KRX session from a stored state (the trades before are not in
        history); the integrated tape starts from the same totals (NXT had none)."""
        if cum_volume <= 0 or price <= 0:
            return
        self.price = price
        self.fair = float(price)
        self.static_ref = price
        self.krx.resume(price, cum_volume, cum_value)
        self.total.resume(price, cum_volume, cum_value)

    def tape(self, venue: str) -> Tape:
        """The ``krx``, ``nxt`` or ``total`` tape (ValueError for anything else)."""
        if venue == VENUE_KRX:
            return self.krx
        if venue == VENUE_NXT:
            return self.nxt
        if venue == VENUE_TOTAL:
            return self.total
        raise ValueError(f"venue must be krx, nxt or total, not {venue!r}")

    @property
    def halted(self) -> bool:
        return self.halt is not None

    @property
    def in_vi(self) -> bool:
        return self.vi is not None

    # -- the KRX tape, as before the venues existed ------------------------------------------------
    @property
    def cum_vol(self) -> int:
        return self.krx.cum_vol

    @property
    def cum_value(self) -> int:
        return self.krx.cum_value

    @property
    def open(self) -> int:
        return self.krx.open

    @property
    def high(self) -> int:
        return self.krx.high

    @property
    def low(self) -> int:
        return self.krx.low

    @property
    def offset(self) -> int:
        return self.krx.offset

    @property
    def count(self) -> int:
        """KRX trades today (including any trimmed from the stored history)."""
        return self.krx.count

    def trade(self, index: int) -> SimTrade:
        return self.krx.trade(index)

    def trades(self, start: int = 0, stop: int | None = None) -> list[SimTrade]:
        return self.krx.trades(start, stop)

    def index_at_or_before(self, hhmmss: int) -> int:
        return self.krx.index_at_or_before(hhmmss)

    def trim(self, limit: int) -> None:
        for tape in (self.krx, self.nxt, self.total):
            tape.trim(limit)


__all__ = ["Jump", "Symbol"]
