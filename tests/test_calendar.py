"""KRX calendar and session phases."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from kis_desk.market import calendar as cal
from kis_desk.market.calendar import MarketPhase, TradingCalendar
from kis_desk.market.sessions import SessionTable, default_session_table
from kis_desk.protocol.records import KST


def kst(y, mo, d, h=0, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=KST)


def test_trading_days():
    assert cal.is_trading_day(date(2025, 3, 4))          # a Tuesday
    assert not cal.is_trading_day(date(2025, 3, 8))      # Saturday
    assert not cal.is_trading_day(date(2025, 3, 9))      # Sunday
    assert not cal.is_trading_day(date(2025, 1, 1))      # New Year
    assert not cal.is_trading_day(date(2025, 1, 29))     # Seollal
    assert not cal.is_trading_day(date(2025, 5, 1))      # Workers' Day (KRX closed)
    assert not cal.is_trading_day(date(2024, 12, 31))    # year-end closure
    assert not cal.is_trading_day(date(2025, 10, 6))     # Chuseok


def test_next_and_previous_trading_day():
    assert cal.next_trading_day(date(2025, 3, 7)) == date(2025, 3, 10)   # Fri → Mon
    assert cal.next_trading_day(date(2025, 1, 24)) == date(2025, 1, 31)  # over Seollal 2025
    assert cal.next_trading_day(date(2024, 12, 30)) == date(2025, 1, 2)
    assert cal.previous_trading_day(date(2025, 1, 2)) == date(2024, 12, 30)
    assert cal.next_trading_day(kst(2025, 3, 7, 23)) == date(2025, 3, 10)


@pytest.mark.parametrize("hhmm,phase", [
    ((0, 0), MarketPhase.CLOSED), ((8, 29), MarketPhase.CLOSED), ((8, 30), MarketPhase.PRE_OPEN),
    ((8, 59), MarketPhase.PRE_OPEN), ((9, 0), MarketPhase.OPEN), ((12, 0), MarketPhase.OPEN),
    ((15, 19), MarketPhase.OPEN), ((15, 20), MarketPhase.CLOSING_AUCTION),
    ((15, 29), MarketPhase.CLOSING_AUCTION), ((15, 30), MarketPhase.AFTER_HOURS),
    ((17, 59), MarketPhase.AFTER_HOURS), ((18, 0), MarketPhase.CLOSED), ((23, 59), MarketPhase.CLOSED),
])
def test_regular_day_phases(hhmm, phase):
    assert cal.phase_at(kst(2025, 3, 4, *hhmm)) is phase


def test_holiday_and_weekend_phase():
    assert cal.phase_at(kst(2025, 3, 8, 10)) is MarketPhase.HOLIDAY
    assert cal.phase_at(kst(2025, 1, 29, 10)) is MarketPhase.HOLIDAY


def test_timezones():
    # 00:30 UTC = 09:30 KST
    assert cal.phase_at(datetime(2025, 3, 4, 0, 30, tzinfo=timezone.utc)) is MarketPhase.OPEN
    # Monday 23:30 UTC = Tuesday 08:30 KST
    assert cal.phase_at(datetime(2025, 3, 3, 23, 30, tzinfo=timezone.utc)) is MarketPhase.PRE_OPEN
    assert cal.phase_at(datetime(2025, 3, 4, 9, 30)) is MarketPhase.OPEN  # naive = KST


def test_first_trading_day_of_year_opens_at_ten():
    assert cal.session_times(date(2025, 1, 2)) == cal.FIRST_DAY_OF_YEAR
    assert cal.phase_at(kst(2025, 1, 2, 9, 30)) is MarketPhase.PRE_OPEN
    assert cal.phase_at(kst(2025, 1, 2, 10, 0)) is MarketPhase.OPEN
    assert cal.phase_at(kst(2025, 1, 2, 15, 25)) is MarketPhase.CLOSING_AUCTION
    assert cal.next_open(kst(2025, 1, 1, 12)) == kst(2025, 1, 2, 10)
    assert cal.session_times(date(2025, 1, 3)) == cal.REGULAR
    assert cal.session_times(date(2025, 1, 1)) is None


def test_exam_day_is_configurable():
    exam = date(2025, 11, 13)
    c = TradingCalendar(exam_days=[exam])
    assert c.session_times(exam) == cal.EXAM_DAY
    assert c.phase_at(kst(2025, 11, 13, 9, 30)) is MarketPhase.PRE_OPEN
    assert c.phase_at(kst(2025, 11, 13, 16, 0)) is MarketPhase.OPEN
    assert c.phase_at(kst(2025, 11, 13, 16, 25)) is MarketPhase.CLOSING_AUCTION
    assert c.phase_at(kst(2025, 11, 13, 16, 30)) is MarketPhase.AFTER_HOURS
    # A table without CSAT overrides does not know the date (exam_days= adds it) ...
    bare = SessionTable([s for s in default_session_table().schedules], [])
    assert TradingCalendar(table=bare).session_times(exam) == cal.REGULAR
    assert TradingCalendar(exam_days=[exam], table=bare).session_times(exam) == cal.EXAM_DAY
    # ... and the bundled table now ships the known CSAT dates (the former gap is data)
    assert cal.session_times(exam) == cal.EXAM_DAY


def test_next_phase_change_walks_the_day():
    t = kst(2025, 3, 4, 7, 0)
    seen = []
    for _ in range(6):
        t, p = cal.next_phase_change(t)
        seen.append((t.strftime("%m-%d %H:%M"), p))
    assert seen == [
        ("03-04 08:30", MarketPhase.PRE_OPEN), ("03-04 09:00", MarketPhase.OPEN),
        ("03-04 15:20", MarketPhase.CLOSING_AUCTION), ("03-04 15:30", MarketPhase.AFTER_HOURS),
        ("03-04 18:00", MarketPhase.CLOSED), ("03-05 08:30", MarketPhase.PRE_OPEN),
    ]


def test_next_phase_change_over_weekend():
    t, p = cal.next_phase_change(kst(2025, 3, 7, 19))
    assert (t, p) == (kst(2025, 3, 8), MarketPhase.HOLIDAY)
    t, p = cal.next_phase_change(t)
    assert (t, p) == (kst(2025, 3, 10), MarketPhase.CLOSED)
    assert cal.next_phase_change(t) == (kst(2025, 3, 10, 8, 30), MarketPhase.PRE_OPEN)


def test_next_phase_change_is_consistent_with_phase_at():
    t = kst(2024, 12, 27, 12)
    for _ in range(40):
        nt, p = cal.next_phase_change(t)
        assert nt > t
        assert cal.phase_at(nt) is p
        assert cal.phase_at(nt - timedelta(seconds=1)) is cal.phase_at(t)
        t = nt


def test_next_open():
    assert cal.next_open(kst(2025, 3, 4, 8)) == kst(2025, 3, 4, 9)
    assert cal.next_open(kst(2025, 3, 4, 9)) == kst(2025, 3, 5, 9)  # strictly after
    assert cal.next_open(kst(2025, 3, 7, 16)) == kst(2025, 3, 10, 9)
    assert cal.next_open(datetime(2025, 3, 4, 0, 0, tzinfo=timezone.utc)) == kst(2025, 3, 5, 9)
    assert cal.next_open(kst(2025, 3, 4, 8)).tzinfo is KST


def test_phase_trading_flag():
    assert MarketPhase.OPEN.trading and MarketPhase.PRE_OPEN.trading
    assert not MarketPhase.CLOSED.trading and not MarketPhase.HOLIDAY.trading
