"""KRX trading calendar and session phases (KST), per venue.

Trading days = weekdays that are not KRX holidays (``holidays.financial_holidays("XKRX")``,
which includes the year-end closure on 31 December); NXT follows the KRX calendar. What a trading
day looks like comes from the session table (``resources/sessions.toml`` plus the user's copy,
see :mod:`kis_desk.market.sessions`): per venue (``krx``, ``nxt``, ``total`` = either) the
pre-market, opening auction, regular session, closing auction, closing-price and single-price or
after-market sessions, with the dates they take effect and per-date overrides (the CSAT day).

The default venue is ``krx``: 08:30 opening auction, 09:00–15:20 continuous, 15:20 closing
auction, 15:30–18:00 after hours; the first trading day of the year opens at 10:00.
``TradingCalendar(exam_days=...)`` still adds CSAT dates to those the table knows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import holidays

from kis_desk.market.sessions import (
    BASE_VENUES,
    DEFAULT_VENUE,
    PHASE_PRIORITY,
    DayPlan,
    MarketPhase,
    Override,
    Session,
    SessionTable,
    check_venue,
    default_session_table,
)
from kis_desk.protocol.records import KST


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """Phase boundaries of one trading day (KST wall-clock times), the KRX shape."""

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


def _day(d: date) -> date:
    return _kst(d).date() if isinstance(d, datetime) else d


def _phase_of(sessions: Iterable[Session], t: time) -> MarketPhase:
    active = {s.phase for s in sessions if s.contains(t)}
    return next((p for p in PHASE_PRIORITY if p in active), MarketPhase.CLOSED)


class TradingCalendar:
    """KRX holidays + the session table; ``exam_days`` = extra CSAT dates (late open, late close)."""

    def __init__(self, exam_days: Iterable[date] = (), table: SessionTable | None = None) -> None:
        self._holidays = holidays.financial_holidays("XKRX")
        table = default_session_table() if table is None else table
        self._exam_days = frozenset(exam_days)
        extra = [Override(d, None, variant="exam_day", note="CSAT") for d in self._exam_days]
        self.table = table.with_overrides(extra) if extra else table
        self._plans: dict[tuple[date, str], DayPlan] = {}
        self._timelines: dict[tuple[date, str], tuple[tuple[datetime, MarketPhase], ...]] = {}

    # -- days ------------------------------------------------------------------------------
    def is_trading_day(self, d: date) -> bool:
        d = _day(d)
        return d.weekday() < 5 and d not in self._holidays and self.table.closed_by_override(d) is None

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after ``d``."""
        d = _day(d)
        for _ in range(_MAX_SCAN_DAYS):
            d += timedelta(days=1)
            if self.is_trading_day(d):
                return d
        raise RuntimeError(f"no trading day within {_MAX_SCAN_DAYS} days after {d}")

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before ``d``."""
        d = _day(d)
        for _ in range(_MAX_SCAN_DAYS):
            d -= timedelta(days=1)
            if self.is_trading_day(d):
                return d
        raise RuntimeError(f"no trading day within {_MAX_SCAN_DAYS} days before {d}")

    def is_first_trading_day_of_year(self, d: date) -> bool:
        d = _day(d)
        return self.is_trading_day(d) and self.next_trading_day(date(d.year - 1, 12, 31)) == d

    def holiday_name(self, d: date) -> str:
        d = _day(d)
        if d.weekday() >= 5:
            return "weekend"
        closed = self.table.closed_by_override(d)
        if closed is not None:
            return f"closed by override{f' ({closed.note})' if closed.note else ''}"
        return str(self._holidays.get(d) or "")

    # -- the day's sessions ----------------------------------------------------------------
    def day_plan(self, d: date, venue: str = DEFAULT_VENUE) -> DayPlan:
        """The venue's sessions on ``d`` (none on a holiday), with where they came from."""
        d, venue = _day(d), check_venue(venue)
        key = (d, venue)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        if not self.is_trading_day(d):
            plan = DayPlan(d, venue, (), f"holiday: {self.holiday_name(d)}", trading_day=False)
        else:
            first = d.month == 1 and d.day <= 15 and self.is_first_trading_day_of_year(d)
            parts = [self.table.venue_sessions(v, d, first)
                     for v in (BASE_VENUES if venue == "total" else (venue,))]
            sessions = tuple(sorted((s for ss, _ in parts for s in ss), key=lambda s: (s.start, s.venue)))
            text = "; ".join(t for _, t in parts) if venue != "total" else \
                "; ".join(f"{v}: {t}" for v, (_, t) in zip(BASE_VENUES, parts))
            plan = DayPlan(d, venue, sessions, text)
        self._plans[key] = plan
        return plan

    def session_times(self, d: date, venue: str = DEFAULT_VENUE) -> SessionTimes | None:
        """The day's schedule in the KRX shape, or None when the venue does not trade that day."""
        sessions = self.day_plan(d, venue).sessions
        regular = [s for s in sessions if s.kind == "regular"]
        if not regular:
            return None
        auctions = [s for s in sessions if s.kind == "closing_auction"]
        close_start = auctions[0].start if auctions else regular[-1].end
        close = auctions[-1].end if auctions else regular[-1].end
        return SessionTimes(sessions[0].start, regular[0].start, close_start, close,
                            max(s.end for s in sessions))

    def _timeline(self, d: date, venue: str) -> tuple[tuple[datetime, MarketPhase], ...]:
        key = (d, venue)
        line = self._timelines.get(key)
        if line is not None:
            return line
        plan = self.day_plan(d, venue)
        midnight = datetime(d.year, d.month, d.day, tzinfo=KST)
        if not plan.trading_day:
            line = ((midnight, MarketPhase.HOLIDAY),)
        else:
            points = sorted({time(0, 0), *(s.start for s in plan.sessions), *(s.end for s in plan.sessions)})
            out: list[tuple[datetime, MarketPhase]] = []
            for t in points:
                p = _phase_of(plan.sessions, t)
                if not out or out[-1][1] is not p:
                    out.append((datetime.combine(d, t, KST), p))
            line = tuple(out)
        self._timelines[key] = line
        return line

    # -- phases ----------------------------------------------------------------------------
    def phases(self, d: date, venue: str = DEFAULT_VENUE) -> tuple[tuple[datetime, MarketPhase], ...]:
        """The day's phase changes from midnight on: ``((start, phase), ...)``."""
        return self._timeline(_day(d), check_venue(venue))

    def phase_at(self, dt: datetime, venue: str = DEFAULT_VENUE) -> MarketPhase:
        """The phase in force at ``dt`` (boundaries belong to the phase they start)."""
        dt, venue = _kst(dt), check_venue(venue)
        phase = MarketPhase.HOLIDAY
        for start, p in self._timeline(dt.date(), venue):
            if start <= dt:
                phase = p
            else:
                break
        return phase

    def session_at(self, dt: datetime, venue: str = DEFAULT_VENUE) -> list[Session]:
        """The sessions active at ``dt`` (two on venue ``total`` when both venues trade)."""
        dt = _kst(dt)
        return [s for s in self.day_plan(dt.date(), venue).sessions if s.contains(dt.time())]

    def next_phase_change(self, dt: datetime, venue: str = DEFAULT_VENUE) -> tuple[datetime, MarketPhase]:
        """The first instant after ``dt`` where the phase differs, and that new phase.

        Midnight counts: Friday 18:00 CLOSED → Saturday 00:00 HOLIDAY → Monday 00:00 CLOSED.
        """
        dt, venue = _kst(dt), check_venue(venue)
        current = self.phase_at(dt, venue)
        d = dt.date()
        for _ in range(_MAX_SCAN_DAYS):
            for start, p in self._timeline(d, venue):
                if start > dt and p is not current:
                    return start, p
            d += timedelta(days=1)
        raise RuntimeError(f"no phase change within {_MAX_SCAN_DAYS} days after {dt}")

    def next_open(self, dt: datetime, venue: str = DEFAULT_VENUE) -> datetime:
        """Start of the next continuous main session strictly after ``dt`` (KST-aware)."""
        dt, venue = _kst(dt), check_venue(venue)
        d = dt.date()
        for _ in range(_MAX_SCAN_DAYS):
            for s in self.day_plan(d, venue).sessions:
                if s.kind == "regular":
                    start = datetime.combine(d, s.start, KST)
                    if start > dt:
                        return start
            d += timedelta(days=1)
        raise RuntimeError(f"no market open within {_MAX_SCAN_DAYS} days after {dt}")

    def next_trading_start(self, dt: datetime, venue: str = DEFAULT_VENUE) -> datetime:
        """The next instant strictly after ``dt`` where trading starts after a pause (the first
        session of the venue's next trading stretch: NXT's 08:00 pre-market, KRX's 08:30 auction)."""
        dt, venue = _kst(dt), check_venue(venue)
        trading = self.phase_at(dt, venue).trading
        d = dt.date()
        for _ in range(_MAX_SCAN_DAYS):
            for start, p in self._timeline(d, venue):
                if start > dt:
                    if p.trading and not trading:
                        return start
                    trading = p.trading
            d += timedelta(days=1)
        raise RuntimeError(f"no trading session within {_MAX_SCAN_DAYS} days after {dt}")


@functools.cache
def default_calendar() -> TradingCalendar:
    """Shared calendar: the bundled session table layered with the user's copy."""
    return TradingCalendar()


def is_trading_day(d: date) -> bool:
    return default_calendar().is_trading_day(d)


def next_trading_day(d: date) -> date:
    return default_calendar().next_trading_day(d)


def previous_trading_day(d: date) -> date:
    return default_calendar().previous_trading_day(d)


def session_times(d: date, venue: str = DEFAULT_VENUE) -> SessionTimes | None:
    return default_calendar().session_times(d, venue)


def day_plan(d: date, venue: str = DEFAULT_VENUE) -> DayPlan:
    return default_calendar().day_plan(d, venue)


def phase_at(dt: datetime, venue: str = DEFAULT_VENUE) -> MarketPhase:
    return default_calendar().phase_at(dt, venue)


def next_phase_change(dt: datetime, venue: str = DEFAULT_VENUE) -> tuple[datetime, MarketPhase]:
    return default_calendar().next_phase_change(dt, venue)


def next_open(dt: datetime, venue: str = DEFAULT_VENUE) -> datetime:
    return default_calendar().next_open(dt, venue)


def next_trading_start(dt: datetime, venue: str = DEFAULT_VENUE) -> datetime:
    return default_calendar().next_trading_start(dt, venue)


def now_kst() -> datetime:
    return datetime.now(KST)


__all__ = [
    "EXAM_DAY", "FIRST_DAY_OF_YEAR", "REGULAR", "DayPlan", "MarketPhase", "SessionTimes",
    "TradingCalendar", "day_plan", "default_calendar", "is_trading_day", "next_open",
    "next_phase_change", "next_trading_day", "next_trading_start", "now_kst", "phase_at",
    "previous_trading_day", "session_times",
]
