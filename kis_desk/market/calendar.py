"""KRX trading calendar and session phases (KST).

Trading days = weekdays that are not KRX holidays (``holidays.financial_holidays("XKRX")``,
which includes the year-end closure on 31 December). Regular schedule (kis-protocol.md §10):
opening call auction 08:30–09:00, continuous 09:00–15:20, closing call auction 15:20–15:30,
after-hours trading 15:30–18:00.

Late-opening days:
* the first trading day of the year opens at 10:00 (close unchanged at 15:30);
* the college-entrance-exam day (수능/CSAT, usually the third Thursday of November) shifts the
  session one hour (10:00–16:30). ``holidays`` does not know this date and KRX announces it
  each year, so it is **not** derived here (known gap): pass the dates to
  :class:`TradingCalendar` (``exam_days=``) when known.
Assumption: on late-opening days the opening auction still accepts orders from 08:30, and
after-hours trading still ends at 18:00.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import holidays

from kis_desk.protocol.records import KST


class MarketPhase(enum.Enum):
    PRE_OPEN = "pre_open"                # opening call auction (08:30–open)
    OPEN = "open"                        # continuous trading
    CLOSING_AUCTION = "closing_auction"  # closing call auction (10 minutes before the close)
    AFTER_HOURS = "after_hours"          # close–18:00 (closing-price and single-price sessions)
    CLOSED = "closed"                    # trading day, outside every session
    HOLIDAY = "holiday"                  # weekend or KRX holiday

    @property
    def trading(self) -> bool:
        """True while trades can print (auctions included)."""
        return self in (MarketPhase.PRE_OPEN, MarketPhase.OPEN, MarketPhase.CLOSING_AUCTION,
                        MarketPhase.AFTER_HOURS)


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """Phase boundaries of one trading day (KST wall-clock times)."""

    pre_open: time
    open: time
    closing_auction: time
    close: time
    after_hours_end: time

    def boundaries(self) -> tuple[tuple[time, MarketPhase], ...]:
        return (
            (time(0, 0), MarketPhase.CLOSED),
            (self.pre_open, MarketPhase.PRE_OPEN),
            (self.open, MarketPhase.OPEN),
            (self.closing_auction, MarketPhase.CLOSING_AUCTION),
            (self.close, MarketPhase.AFTER_HOURS),
            (self.after_hours_end, MarketPhase.CLOSED),
        )


REGULAR = SessionTimes(time(8, 30), time(9, 0), time(15, 20), time(15, 30), time(18, 0))
FIRST_DAY_OF_YEAR = SessionTimes(time(8, 30), time(10, 0), time(15, 20), time(15, 30), time(18, 0))
EXAM_DAY = SessionTimes(time(8, 30), time(10, 0), time(16, 20), time(16, 30), time(18, 0))

_MAX_SCAN_DAYS = 60  # longer than any KRX closure


def _kst(dt: datetime) -> datetime:
    """Aware → KST; naive datetimes are taken to be KST already."""
    return dt.replace(tzinfo=KST) if dt.tzinfo is None else dt.astimezone(KST)


class TradingCalendar:
    """KRX calendar; ``exam_days`` = known CSAT dates (late open, late close)."""

    def __init__(self, exam_days: Iterable[date] = ()) -> None:
        self._holidays = holidays.financial_holidays("XKRX")
        self._exam_days = frozenset(exam_days)

    def is_trading_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = _kst(d).date()
        return d.weekday() < 5 and d not in self._holidays

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after ``d``."""
        if isinstance(d, datetime):
            d = _kst(d).date()
        for _ in range(_MAX_SCAN_DAYS):
            d += timedelta(days=1)
            if self.is_trading_day(d):
                return d
        raise RuntimeError(f"no trading day within {_MAX_SCAN_DAYS} days after {d}")

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before ``d``."""
        if isinstance(d, datetime):
            d = _kst(d).date()
        for _ in range(_MAX_SCAN_DAYS):
            d -= timedelta(days=1)
            if self.is_trading_day(d):
                return d
        raise RuntimeError(f"no trading day within {_MAX_SCAN_DAYS} days before {d}")

    def is_first_trading_day_of_year(self, d: date) -> bool:
        return self.is_trading_day(d) and self.next_trading_day(date(d.year - 1, 12, 31)) == d

    def session_times(self, d: date) -> SessionTimes | None:
        """The day's schedule, or None when the market does not trade that day."""
        if not self.is_trading_day(d):
            return None
        if d in self._exam_days:
            return EXAM_DAY
        if d.month == 1 and d.day <= 15 and self.is_first_trading_day_of_year(d):
            return FIRST_DAY_OF_YEAR
        return REGULAR

    def _day_boundaries(self, d: date) -> tuple[tuple[datetime, MarketPhase], ...]:
        times = self.session_times(d)
        if times is None:
            return ((datetime(d.year, d.month, d.day, tzinfo=KST), MarketPhase.HOLIDAY),)
        return tuple((datetime.combine(d, t, KST), p) for t, p in times.boundaries())

    def phase_at(self, dt: datetime) -> MarketPhase:
        """The phase in force at ``dt`` (boundaries belong to the phase they start)."""
        dt = _kst(dt)
        phase = MarketPhase.HOLIDAY
        for start, p in self._day_boundaries(dt.date()):
            if start <= dt:
                phase = p
            else:
                break
        return phase

    def next_phase_change(self, dt: datetime) -> tuple[datetime, MarketPhase]:
        """The first instant after ``dt`` where the phase differs, and that new phase.

        Midnight counts: Friday 18:00 CLOSED → Saturday 00:00 HOLIDAY → Monday 00:00 CLOSED.
        """
        dt = _kst(dt)
        current = self.phase_at(dt)
        d = dt.date()
        for _ in range(_MAX_SCAN_DAYS):
            for start, p in self._day_boundaries(d):
                if start > dt and p is not current:
                    return start, p
            d += timedelta(days=1)
        raise RuntimeError(f"no phase change within {_MAX_SCAN_DAYS} days after {dt}")

    def next_open(self, dt: datetime) -> datetime:
        """Start of the next continuous session strictly after ``dt`` (KST-aware)."""
        dt = _kst(dt)
        d = dt.date()
        for _ in range(_MAX_SCAN_DAYS):
            times = self.session_times(d)
            if times is not None:
                start = datetime.combine(d, times.open, KST)
                if start > dt:
                    return start
            d += timedelta(days=1)
        raise RuntimeError(f"no market open within {_MAX_SCAN_DAYS} days after {dt}")


@functools.cache
def default_calendar() -> TradingCalendar:
    """Shared calendar without CSAT dates (see the module docstring)."""
    return TradingCalendar()


def is_trading_day(d: date) -> bool:
    return default_calendar().is_trading_day(d)


def next_trading_day(d: date) -> date:
    return default_calendar().next_trading_day(d)


def previous_trading_day(d: date) -> date:
    return default_calendar().previous_trading_day(d)


def session_times(d: date) -> SessionTimes | None:
    return default_calendar().session_times(d)


def phase_at(dt: datetime) -> MarketPhase:
    return default_calendar().phase_at(dt)


def next_phase_change(dt: datetime) -> tuple[datetime, MarketPhase]:
    return default_calendar().next_phase_change(dt)


def next_open(dt: datetime) -> datetime:
    return default_calendar().next_open(dt)


def now_kst() -> datetime:
    return datetime.now(KST)


__all__ = [
    "EXAM_DAY", "FIRST_DAY_OF_YEAR", "REGULAR", "MarketPhase", "SessionTimes", "TradingCalendar",
    "default_calendar", "is_trading_day", "next_open", "next_phase_change", "next_trading_day",
    "now_kst", "phase_at", "previous_trading_day", "session_times",
]
