"""One venue's trade tape of one symbol for the day: cumulative counters and columnar history.

A symbol has three tapes: ``krx`` (what ``H0STCNT0`` and REST market code ``J`` show), ``nxt``
(``H0NXCNT0``, ``NX``) and ``total`` (``H0UNCNT0``, ``UN``: every trade of both venues, so its
cumulative volume is always KRX's plus NXT's). Each keeps its own day counters (volume, value,
open/high/low, buy/sell counts) because each stream's fields are computed from its own trades.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from datetime import datetime
from typing import NamedTuple

from ..protocol.records import kst_timestamp

VENUE_KRX, VENUE_NXT, VENUE_TOTAL = "krx", "nxt", "total"
VENUES = (VENUE_KRX, VENUE_NXT, VENUE_TOTAL)

#: how a trade printed; stored per trade (``h_kind``) and written to the record's
#: NEW_MKOP_CLS_CODE / HOUR_CLS_CODE (kis-protocol.md §6, codes [V DOC], choice per kind [I])
KIND_NORMAL, KIND_AUCTION, KIND_STATIC_VI, KIND_DYNAMIC_VI = 0, 1, 2, 3
KIND_PRE_MARKET, KIND_AFTER_MARKET, KIND_CLOSING_PRICE, KIND_SINGLE_PRICE = 4, 5, 6, 7
KIND_NAMES = ("normal", "auction", "static_vi", "dynamic_vi", "pre_market", "after_market",
              "closing_price", "single_price")
#: kind -> (NEW_MKOP_CLS_CODE, HOUR_CLS_CODE)
KIND_CODES = (("20", "0"), ("20", "0"), ("20", "C"), ("20", "C"), ("10", "0"), ("30", "0"),
              ("31", "0"), ("40", "0"))


class SimTrade(NamedTuple):
    """One stored trade (what the socket sent and what the REST back-fill returns)."""

    code: str
    business_date: str      # YYYYMMDD
    time: str               # HHMMSS (KST)
    price: int
    volume: int
    cum_volume: int         # of this trade's tape (venue, or integrated for ``total``)
    cum_value: int
    side: str               # CCLD_DVSN: "1" buy-initiated, "5" sell-initiated
    ask: int
    bid: int
    strength: float         # CTTR after this trade
    change: int             # price - previous close
    index: int              # position in the tape's day history (0-based)
    venue: str = VENUE_KRX  # where it printed: krx or nxt (also on the ``total`` tape)
    kind: str = "normal"    # one of KIND_NAMES

    @property
    def timestamp(self) -> datetime:
        return kst_timestamp(self.business_date, self.time)


class Tape:
    """Counters and history of one venue (or the integrated view) for one business day."""

    __slots__ = ("code", "venue", "business_date", "prev_close", "price", "open", "high", "low",
                 "open_time", "high_time", "low_time", "cum_vol", "cum_value", "sell_cnt", "buy_cnt",
                 "sell_vol", "buy_vol", "offset", "h_time", "h_price", "h_vol", "h_cum", "h_val",
                 "h_side", "h_ask", "h_bid", "h_cttr", "h_kind", "h_venue")

    def __init__(self, code: str, venue: str, business_date: str, prev_close: int) -> None:
        self.code = code
        self.venue = venue
        self.start_day(business_date, prev_close)

    def start_day(self, business_date: str, prev_close: int) -> None:
        self.business_date = business_date
        self.prev_close = prev_close
        self.price = prev_close
        self.open = self.high = self.low = 0
        self.open_time = self.high_time = self.low_time = ""
        self.cum_vol = self.cum_value = 0
        self.sell_cnt = self.buy_cnt = self.sell_vol = self.buy_vol = 0
        self.offset = 0
        self.h_time = array("l")
        self.h_price = array("q")
        self.h_vol = array("q")
        self.h_cum = array("q")
        self.h_val = array("q")
        self.h_side = array("b")
        self.h_ask = array("q")
        self.h_bid = array("q")
        self.h_cttr = array("q")     # CTTR × 100
        self.h_kind = array("b")
        self.h_venue = array("b")    # 0 krx, 1 nxt

    def resume(self, price: int, cum_volume: int, cum_value: int) -> None:
        """Continue today's session from a stored state (the trades before are not in history)."""
        self.price = price
        self.open = self.high = self.low = price
        self.open_time = self.high_time = self.low_time = "090000"
        self.cum_vol = cum_volume
        self.cum_value = max(cum_value, price)
        self.sell_vol = cum_volume // 2
        self.buy_vol = cum_volume - self.sell_vol
        self.sell_cnt = self.buy_cnt = max(1, cum_volume // 200)

    def add(self, t: str, hms: int, price: int, vol: int, buy: bool, ask: int, bid: int,
            kind: int, venue_no: int) -> int:
        """Apply one trade; returns its CTTR × 100."""
        self.cum_vol += vol
        self.cum_value += price * vol
        if buy:
            self.buy_cnt += 1
            self.buy_vol += vol
        else:
            self.sell_cnt += 1
            self.sell_vol += vol
        if not self.open:
            self.open = self.high = self.low = price
            self.open_time = self.high_time = self.low_time = t
        elif price > self.high:
            self.high, self.high_time = price, t
        elif price < self.low:
            self.low, self.low_time = price, t
        self.price = price
        cttr = self.buy_vol * 10_000 // self.sell_vol if self.sell_vol else 0
        self.h_time.append(hms)
        self.h_price.append(price)
        self.h_vol.append(vol)
        self.h_cum.append(self.cum_vol)
        self.h_val.append(self.cum_value)
        self.h_side.append(1 if buy else 5)
        self.h_ask.append(ask)
        self.h_bid.append(bid)
        self.h_cttr.append(cttr)
        self.h_kind.append(kind)
        self.h_venue.append(venue_no)
        return cttr

    # -- history ------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Trades today (including any trimmed from the stored history)."""
        return self.offset + len(self.h_price)

    def trade(self, index: int) -> SimTrade:
        i = index - self.offset
        t = self.h_time[i]
        price = self.h_price[i]
        return SimTrade(
            self.code, self.business_date, f"{t:06d}", price, self.h_vol[i], self.h_cum[i],
            self.h_val[i], "1" if self.h_side[i] == 1 else "5", self.h_ask[i], self.h_bid[i],
            self.h_cttr[i] / 100.0, price - self.prev_close, index,
            VENUE_NXT if self.h_venue[i] else VENUE_KRX, KIND_NAMES[self.h_kind[i]],
        )

    def trades(self, start: int = 0, stop: int | None = None) -> list[SimTrade]:
        stop = self.count if stop is None else min(stop, self.count)
        start = max(start, self.offset)
        return [self.trade(i) for i in range(start, stop)]

    def index_at_or_before(self, hhmmss: int) -> int:
        """Global index of the last stored trade with time ≤ hhmmss, or offset-1 if none."""
        return self.offset + bisect_right(self.h_time, hhmmss) - 1

    def trim(self, limit: int) -> None:
        excess = len(self.h_price) - limit
        if excess <= 0:
            return
        cut = max(excess, limit // 4)   # trim in chunks: del on arrays is O(n)
        for arr in (self.h_time, self.h_price, self.h_vol, self.h_cum, self.h_val, self.h_side,
                    self.h_ask, self.h_bid, self.h_cttr, self.h_kind, self.h_venue):
            del arr[:cut]
        self.offset += cut


__all__ = ["KIND_CODES", "KIND_NAMES", "SimTrade", "Tape", "VENUES", "VENUE_KRX", "VENUE_NXT",
           "VENUE_TOTAL"]
