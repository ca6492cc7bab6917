"""Which venue trades how right now: the session table read for the simulated market.

With market hours on, :class:`Hours` follows ``kis_desk.market.calendar.phase_at(now, venue)``
for ``krx`` and ``nxt``: continuous trading in pre-market / regular / after-market sessions,
nothing during KRX call auctions (their end is ONE print per symbol), and in KRX's
closing-price and after-hours single-price sessions one print per symbol every 10 minutes.
In always-open (demo) mode both venues trade continuously around the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from .tape import (
    KIND_AFTER_MARKET, KIND_CLOSING_PRICE, KIND_NORMAL, KIND_PRE_MARKET, KIND_SINGLE_PRICE,
)

OFF = -1
#: KRX single-price sessions print every this many minutes (16:00–18:00 every 10 minutes; the
#: closing-price session 15:30–16:00 trades 15:40–16:00 — sessions.toml notes)
PRINT_EVERY_MINUTES = 10


class HoursState(NamedTuple):
    """What trades at one moment. ``krx``/``nxt``: the trade kind of continuous trading there,
    or OFF; ``krx_auction``: a KRX call auction is collecting orders; ``krx_slot``: id of the
    current 10-minute print slot of a KRX single-price session (None outside them)."""

    krx: int
    nxt: int
    krx_auction: bool = False
    krx_slot: str | None = None
    krx_slot_kind: int = KIND_SINGLE_PRICE

    @property
    def continuous(self) -> bool:
        return self.krx != OFF or self.nxt != OFF


ALWAYS_OPEN = HoursState(KIND_NORMAL, KIND_NORMAL)
ALWAYS_OPEN_KRX_ONLY = HoursState(KIND_NORMAL, OFF)


class Hours:
    """The venues' state at a KST time (computed once per second)."""

    def __init__(self, always_open: bool, nxt: bool) -> None:
        self.always_open = always_open
        self.nxt = nxt
        self._key: tuple[int, ...] | None = None
        self._state = ALWAYS_OPEN if nxt else ALWAYS_OPEN_KRX_ONLY

    def at(self, now_kst: datetime) -> HoursState:
        if self.always_open:
            return self._state
        key = (now_kst.year, now_kst.month, now_kst.day, now_kst.hour, now_kst.minute, now_kst.second)
        if key != self._key:
            self._key = key
            self._state = self._compute(now_kst)
        return self._state

    def _compute(self, now_kst: datetime) -> HoursState:
        from ..market.calendar import default_calendar
        from ..market.sessions import MarketPhase as P

        cal = default_calendar()
        continuous = {P.PRE_MARKET: KIND_PRE_MARKET, P.OPEN: KIND_NORMAL, P.AFTER_MARKET: KIND_AFTER_MARKET}
        krx_phase = cal.phase_at(now_kst, "krx")
        krx = continuous.get(krx_phase, OFF)
        nxt = continuous.get(cal.phase_at(now_kst, "nxt"), OFF) if self.nxt else OFF
        auction = krx_phase in (P.PRE_OPEN, P.CLOSING_AUCTION)
        slot, slot_kind = None, KIND_SINGLE_PRICE
        if krx_phase is P.AFTER_HOURS:
            for s in cal.session_at(now_kst, "krx"):
                if s.kind not in ("closing_price", "single_price"):
                    continue
                start = datetime.combine(now_kst.date(), s.start, now_kst.tzinfo)
                n = int((now_kst - start) / timedelta(minutes=PRINT_EVERY_MINUTES))
                if n >= 1:
                    slot = f"{s.kind}:{s.start.isoformat()}:{n}"
                    slot_kind = KIND_CLOSING_PRICE if s.kind == "closing_price" else KIND_SINGLE_PRICE
        return HoursState(krx, nxt, auction, slot, slot_kind)


__all__ = ["ALWAYS_OPEN", "Hours", "HoursState", "OFF", "PRINT_EVERY_MINUTES"]
