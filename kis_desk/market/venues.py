"""Where trades come from: the venue table, the one place a venue becomes a TR id and a REST
market code (kis-protocol.md §6.1, §8: ``FID_COND_MRKT_DIV_CODE`` J / NX / UN).

* ``krx``   — KRX only: ``H0STCNT0``, REST ``J`` (the only one KIS's mock server offers, §1.1);
* ``nxt``   — Nextrade only: ``H0NXCNT0``, ``NX`` (NXT trades 08:00–20:00, part of the listings);
* ``total`` — KIS's integrated KRX + NXT stream: ``H0UNCNT0``, ``UN``, with its own integrated
  cumulative volume (not KRX's: a trade is identified per venue).

The feed subscribes the venue's TR and polls / back-fills with its market code; the session
table (``sessions.py``) says when each venue trades. When a venue's TR is refused the feed falls
back to :data:`FALLBACK_VENUE`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol.fields import TR_TRADES_KRX, TR_TRADES_NXT, TR_TRADES_TOTAL
from .sessions import VENUES

VENUE_KRX, VENUE_NXT, VENUE_TOTAL = VENUES
#: what a refused NXT / integrated TR falls back to (the TR every KIS server offers)
FALLBACK_VENUE = VENUE_KRX


@dataclass(frozen=True, slots=True)
class Venue:
    name: str           # krx | nxt | total (Tick.venue, the storage's venue column)
    tr_id: str          # the real-time trade TR
    market_code: str    # REST FID_COND_MRKT_DIV_CODE

    @property
    def is_fallback(self) -> bool:
        return self.name == FALLBACK_VENUE


VENUE_TABLE: dict[str, Venue] = {
    VENUE_KRX: Venue(VENUE_KRX, TR_TRADES_KRX, "J"),
    VENUE_NXT: Venue(VENUE_NXT, TR_TRADES_NXT, "NX"),
    VENUE_TOTAL: Venue(VENUE_TOTAL, TR_TRADES_TOTAL, "UN"),
}
_BY_TR = {v.tr_id: v for v in VENUE_TABLE.values()}
_BY_MARKET = {v.market_code: v for v in VENUE_TABLE.values()}


def venue(name: str | Venue) -> Venue:
    """The venue called ``name`` (case-insensitive); ValueError with a one-line reason."""
    if isinstance(name, Venue):
        return name
    v = VENUE_TABLE.get(str(name).strip().lower())
    if v is None:
        raise ValueError(f"venue must be one of {', '.join(VENUE_TABLE)}, not {name!r}")
    return v


def venue_of_tr(tr_id: str) -> Venue | None:
    """The venue whose trade TR is ``tr_id`` (None: not a trade TR)."""
    return _BY_TR.get(tr_id)


def venue_of_market_code(code: str) -> Venue | None:
    """The venue of a REST market code (J / NX / UN; None: unknown)."""
    return _BY_MARKET.get(code.strip().upper())


__all__ = ["FALLBACK_VENUE", "VENUE_KRX", "VENUE_NXT", "VENUE_TABLE", "VENUE_TOTAL", "Venue",
           "venue", "venue_of_market_code", "venue_of_tr"]
