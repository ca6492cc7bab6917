"""The trade value every layer above the codec shares, and its conversion from a record.

A ``Tick`` is what the feed produces and the engine stores, analyses and publishes: it lives
below both so that neither imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from ..protocol.fields import (
    IDX_BUSINESS_DATE, IDX_CHANGE, IDX_CHANGE_RATE, IDX_CODE, IDX_CUM_VOLUME, IDX_PRICE,
    IDX_STRENGTH, IDX_TIME, IDX_VOLUME,
)
from ..market.venues import VENUE_KRX, VENUE_NXT, VENUE_TOTAL
from ..protocol.records import KST, KST_TIMESTAMP_CACHE, TradeRecord, kst_timestamp
from ..protocol.states import (
    IDX_HALT, IDX_HOUR_CLS, IDX_MKOP, MarketState, market_state_of_fields,
)

SOURCE_WS = "ws"
SOURCE_BACKFILL = "backfill"
SOURCE_POLL = "poll"

#: Where a trade was printed: KRX, Nextrade, or KIS's integrated (KRX + NXT) stream
#: (re-exported from ``market.venues``, the venue table).


class Tick(NamedTuple):
    """One trade as the engine stores and analyses it, whatever its source.

    (venue, stock_code, business_date, cum_volume) identifies a trade: KIS's cumulative volume
    grows with every trade of a venue's stream, so a trade seen twice (socket and back-fill) is
    recognised; the integrated stream's cumulative volume is not KRX's, hence the venue.
    A NamedTuple: built for every trade on the hot path.
    """

    stock_code: str
    timestamp: datetime          # trade time, KST-aware
    price: int
    volume: int                  # this trade's volume
    cum_volume: int              # day's cumulative volume after this trade
    change: int | None           # vs previous close
    change_rate: float | None    # percent vs previous close
    strength: float | None       # 체결강도
    received_at: float           # epoch seconds when our process received it
    source: str                  # "ws" | "backfill" | "poll"
    venue: str = VENUE_KRX       # "krx" | "nxt" | "total" (with a default: old call sites)
    state: str = ""              # market state: "" = normal, else a MarketState value
                                 # ("static_vi", "dynamic_vi", "halted", "auction", …); not stored

    @property
    def business_date(self) -> date:
        return self.timestamp.date()

    @classmethod
    def from_record(cls, record: TradeRecord, received_at: float, source: str = SOURCE_WS) -> Tick:
        return ticks_from_records((record,), received_at, source)[0]

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["timestamp"] = self.timestamp.isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tick:
        ts = datetime.fromisoformat(d["timestamp"])
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=KST)
        return cls(d["stock_code"], ts, int(d["price"]), int(d["volume"]), int(d["cum_volume"]),
                   d.get("change"), d.get("change_rate"), d.get("strength"),
                   float(d.get("received_at", 0.0)), d.get("source", SOURCE_WS), d.get("venue", VENUE_KRX),
                   d.get("state", ""))


_tuple_new = tuple.__new__
_NORMAL = MarketState.NORMAL


def _state_of(f: Sequence[str]) -> str:
    """Tick.state of a record whose market-state fields are not the normal ``20``/``N``/``0``."""
    state = market_state_of_fields(f)
    return "" if state is _NORMAL else state.value


def ticks_from_records(records: Sequence[TradeRecord], received_at: float,
                       source: str = SOURCE_WS, venue: str = VENUE_KRX) -> list[Tick]:
    """Ticks of one network read (hot path: every trade goes through here).

    Same values as converting each record through its properties, without their per-field
    call overhead: the core fields were validated when the record was parsed; the secondary
    ones (change, change rate, strength) become ``None`` when KIS sends something odd.
    ``state`` costs three string compares for a normal trade (NEW_MKOP_CLS_CODE ``20``,
    TRHT_YN ``N``, HOUR_CLS_CODE ``0``); anything else is decoded by
    :func:`~kis_desk.protocol.states.market_state_of_fields`.
    """
    out = []
    append = out.append
    cached = KST_TIMESTAMP_CACHE.get
    for record in records:
        f = record[1]
        ts = cached(f[IDX_BUSINESS_DATE] + f[IDX_TIME])
        if ts is None:
            ts = kst_timestamp(f[IDX_BUSINESS_DATE], f[IDX_TIME])
        try:
            change = int(f[IDX_CHANGE])
        except ValueError:
            change = None
        try:
            rate = float(f[IDX_CHANGE_RATE])
        except ValueError:
            rate = None
        try:
            strength = float(f[IDX_STRENGTH])
        except ValueError:
            strength = None
        if f[IDX_HOUR_CLS] == "0" and f[IDX_HALT] == "N" and f[IDX_MKOP] == "20":
            state = ""
        else:
            state = _state_of(f)
        append(_tuple_new(Tick, (f[IDX_CODE], ts, int(f[IDX_PRICE]), int(f[IDX_VOLUME]),
                                 int(f[IDX_CUM_VOLUME]), change, rate, strength, received_at,
                                 source, venue, state)))
    return out


__all__ = ["SOURCE_BACKFILL", "SOURCE_POLL", "SOURCE_WS", "Tick", "VENUE_KRX", "VENUE_NXT", "VENUE_TOTAL",
           "ticks_from_records"]
