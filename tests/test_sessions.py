"""The session table (resources/sessions.toml): phases per venue, overrides, user copy, boundaries."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from kis_desk.core.events import EventBus, MarketPhaseEvent
from kis_desk.engine.phase import PhaseWatcher
from kis_desk.market import calendar as cal
from kis_desk.market.calendar import MarketPhase, TradingCalendar
from kis_desk.market.sessions import (
    SessionTable,
    SessionTableError,
    default_session_table,
    load_session_table,
)
from kis_desk.paths import resource
from kis_desk.protocol.records import KST

P = MarketPhase
TUESDAY = date(2025, 3, 4)


def kst(y, mo, d, h=0, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=KST)


def at(d: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, ss, tzinfo=KST)


def phases(c: TradingCalendar, d: date, venue: str) -> list[tuple[str, MarketPhase]]:
    return [(t.strftime("%H:%M:%S"), p) for t, p in c.phases(d, venue)]


# -- a normal day per venue --------------------------------------------------------------------

def test_normal_day_krx():
    assert phases(cal.default_calendar(), TUESDAY, "krx") == [
        ("00:00:00", P.CLOSED), ("08:30:00", P.PRE_OPEN), ("09:00:00", P.OPEN),
        ("15:20:00", P.CLOSING_AUCTION), ("15:30:00", P.AFTER_HOURS), ("18:00:00", P.CLOSED)]
    kinds = [s.kind for s in cal.day_plan(TUESDAY, "krx").sessions]
    assert kinds == ["opening_auction", "regular", "closing_auction", "closing_price", "single_price"]


def test_normal_day_nxt():
    assert phases(cal.default_calendar(), TUESDAY, "nxt") == [
        ("00:00:00", P.CLOSED), ("08:00:00", P.PRE_MARKET), ("08:50:00", P.CLOSED),
        ("09:00:30", P.OPEN), ("15:20:00", P.CLOSED), ("15:30:00", P.AFTER_MARKET), ("20:00:00", P.CLOSED)]


def test_normal_day_total_trades_from_8_to_20():
    assert phases(cal.default_calendar(), TUESDAY, "total") == [
        ("00:00:00", P.CLOSED), ("08:00:00", P.PRE_MARKET), ("08:50:00", P.PRE_OPEN),
        ("09:00:00", P.OPEN), ("15:20:00", P.CLOSING_AUCTION), ("15:30:00", P.AFTER_MARKET),
        ("20:00:00", P.CLOSED)]
    t = at(TUESDAY, 8)
    while t < at(TUESDAY, 20):           # every minute from 08:00 to 19:59 is "trading"
        assert cal.phase_at(t, "total").trading, t
        t += timedelta(minutes=1)
    assert not cal.phase_at(at(TUESDAY, 7, 59, 59), "total").trading
    assert not cal.phase_at(at(TUESDAY, 20), "total").trading
    # both venues' sessions are visible at an instant where both trade
    assert {(s.venue, s.kind) for s in cal.default_calendar().session_at(at(TUESDAY, 15, 45), "total")} == {
        ("krx", "closing_price"), ("nxt", "after_market")}


def test_default_venue_is_krx_and_bad_venue_refused():
    assert cal.phase_at(at(TUESDAY, 19)) is P.CLOSED
    assert cal.phase_at(at(TUESDAY, 19), "nxt") is P.AFTER_MARKET
    with pytest.raises(ValueError, match="venue must be one of krx, nxt, total"):
        cal.phase_at(at(TUESDAY, 19), "nyse")


def test_before_nxt_launch_nxt_does_not_trade():
    d = date(2025, 2, 28)
    assert cal.day_plan(d, "nxt").sessions == ()
    assert cal.phase_at(at(d, 10), "nxt") is P.CLOSED
    assert phases(cal.default_calendar(), d, "total") == phases(cal.default_calendar(), d, "krx")


# -- holidays, first trading day, CSAT ------------------------------------------------------------

@pytest.mark.parametrize("venue", ["krx", "nxt", "total"])
def test_holiday_every_venue(venue):
    for d in (date(2025, 10, 6), date(2025, 3, 8), date(2025, 5, 1)):   # Chuseok, Saturday, Workers' Day
        plan = cal.day_plan(d, venue)
        assert not plan.trading_day and plan.sessions == ()
        assert "holiday" in plan.description
        assert cal.phase_at(at(d, 10), venue) is P.HOLIDAY


def test_first_trading_day_of_year():
    d = date(2026, 1, 2)
    assert cal.session_times(d) == cal.FIRST_DAY_OF_YEAR
    assert cal.phase_at(at(d, 9, 59, 59)) is P.PRE_OPEN and cal.phase_at(at(d, 10)) is P.OPEN
    assert cal.phase_at(at(d, 8, 30), "nxt") is P.CLOSED          # NXT skips its pre-market
    assert cal.phase_at(at(d, 10, 0, 30), "nxt") is P.OPEN
    assert cal.next_open(at(d, 9), "total") == at(d, 10)
    assert cal.session_times(date(2026, 1, 5)) == cal.REGULAR


def test_csat_day_from_the_bundled_overrides():
    d = date(2025, 11, 13)
    assert cal.session_times(d) == cal.EXAM_DAY
    assert cal.phase_at(at(d, 8, 10), "nxt") is P.CLOSED          # no NXT pre-market
    assert cal.phase_at(at(d, 10, 0, 29), "nxt") is P.CLOSED
    assert cal.phase_at(at(d, 10, 0, 30), "nxt") is P.OPEN
    assert cal.phase_at(at(d, 16, 25), "nxt") is P.CLOSED
    assert cal.phase_at(at(d, 16, 30), "nxt") is P.AFTER_MARKET
    assert "CSAT" in cal.day_plan(d, "krx").description


# -- boundaries at the exact second -------------------------------------------------------------

@pytest.mark.parametrize("venue,hms,before,after", [
    ("nxt", (8, 0, 0), P.CLOSED, P.PRE_MARKET),
    ("nxt", (8, 50, 0), P.PRE_MARKET, P.CLOSED),
    ("nxt", (9, 0, 30), P.CLOSED, P.OPEN),
    ("nxt", (15, 20, 0), P.OPEN, P.CLOSED),
    ("nxt", (15, 30, 0), P.CLOSED, P.AFTER_MARKET),
    ("nxt", (20, 0, 0), P.AFTER_MARKET, P.CLOSED),
    ("krx", (8, 30, 0), P.CLOSED, P.PRE_OPEN),
    ("krx", (9, 0, 0), P.PRE_OPEN, P.OPEN),
    ("krx", (15, 30, 0), P.CLOSING_AUCTION, P.AFTER_HOURS),
    ("krx", (18, 0, 0), P.AFTER_HOURS, P.CLOSED),
    ("total", (8, 0, 0), P.CLOSED, P.PRE_MARKET),
    ("total", (8, 50, 0), P.PRE_MARKET, P.PRE_OPEN),
    ("total", (20, 0, 0), P.AFTER_MARKET, P.CLOSED),
])
def test_boundaries_at_exact_seconds(venue, hms, before, after):
    t = at(TUESDAY, *hms)
    assert cal.phase_at(t - timedelta(seconds=1), venue) is before
    assert cal.phase_at(t - timedelta(microseconds=1), venue) is before
    assert cal.phase_at(t, venue) is after


@pytest.mark.parametrize("venue", ["krx", "nxt", "total"])
def test_next_phase_change_agrees_with_phase_at(venue):
    t = at(TUESDAY, 0)
    for _ in range(40):
        nt, p = cal.next_phase_change(t, venue)
        assert nt > t and cal.phase_at(nt, venue) is p
        assert cal.phase_at(nt - timedelta(microseconds=1), venue) is cal.phase_at(t, venue)
        t = nt


# -- next open across weekends and holidays -------------------------------------------------------

def test_next_open_and_next_trading_start_across_weekend_and_holiday():
    fri = date(2025, 3, 7)
    assert cal.next_open(at(fri, 16), "nxt") == kst(2025, 3, 10, 9, 0, 30)
    assert cal.next_open(at(fri, 16), "total") == kst(2025, 3, 10, 9)
    assert cal.next_trading_start(at(fri, 20), "total") == kst(2025, 3, 10, 8)
    assert cal.next_trading_start(at(fri, 20), "krx") == kst(2025, 3, 10, 8, 30)
    assert cal.next_trading_start(at(fri, 19), "total") == kst(2025, 3, 10, 8)   # still trading at 19:00
    # Chuseok 2025: Fri 3 Oct (National Foundation Day) … Thu 9 Oct (Hangul Day); trades again Fri 10 Oct
    assert cal.next_open(kst(2025, 10, 2, 21), "nxt") == kst(2025, 10, 10, 9, 0, 30)
    assert cal.next_trading_start(kst(2025, 10, 2, 21), "total") == kst(2025, 10, 10, 8)
    # the year-end closure and the late first day
    assert cal.next_trading_start(kst(2025, 12, 30, 21), "krx") == kst(2026, 1, 2, 8, 30)
    assert cal.next_open(kst(2025, 12, 30, 21), "krx") == kst(2026, 1, 2, 10)


# -- user copy and per-date overrides -----------------------------------------------------------

USER_FILE = """
[[override]]
date = 2025-03-04
venue = "krx"
note = "special close"
sessions = [
  { kind = "opening_auction", start = 08:30:00, end = 09:00:00 },
  { kind = "regular",         start = 09:00:00, end = 13:50:00 },
  { kind = "closing_auction", start = 13:50:00, end = 14:00:00 },
]

[[override]]
date = 2025-03-05
closed = true
note = "unexpected closure"

[[override]]
date = 2025-03-06
variant = "exam_day"
note = "CSAT moved"
"""


def test_user_file_overrides(isolated_home):
    user = isolated_home / "config" / "sessions.toml"
    user.parent.mkdir(parents=True)
    user.write_text(USER_FILE, encoding="utf-8")
    c = TradingCalendar(table=load_session_table())    # finds the user copy in the config folder
    assert c.phase_at(at(TUESDAY, 13, 49, 59)) is P.OPEN
    assert c.phase_at(at(TUESDAY, 13, 50)) is P.CLOSING_AUCTION
    assert c.phase_at(at(TUESDAY, 14)) is P.CLOSED
    assert "special close" in c.day_plan(TUESDAY, "krx").description
    assert c.phase_at(at(TUESDAY, 16), "nxt") is P.AFTER_MARKET       # NXT keeps its day
    assert c.phase_at(at(TUESDAY, 16), "total") is P.AFTER_MARKET
    wed = date(2025, 3, 5)
    assert not c.is_trading_day(wed) and c.phase_at(at(wed, 10), "total") is P.HOLIDAY
    assert c.next_trading_day(TUESDAY) == date(2025, 3, 6)
    assert c.session_times(date(2025, 3, 6)) == cal.EXAM_DAY
    assert c.phase_at(at(date(2025, 3, 6), 10, 0, 30), "nxt") is P.OPEN
    # the bundled data is still underneath
    assert c.session_times(date(2025, 11, 13)) == cal.EXAM_DAY
    assert c.session_times(date(2025, 3, 7)) == cal.REGULAR


def test_user_file_switches_on_the_announced_krx_schedule(tmp_path):
    user = tmp_path / "sessions.toml"
    user.write_text("""
[[schedule]]
venue = "krx"
effective_from = 2026-07-01
label = "KRX extended hours"
sessions = [
  { kind = "pre_market",      start = 07:00:00, end = 08:00:00 },
  { kind = "opening_auction", start = 08:30:00, end = 09:00:00 },
  { kind = "regular",         start = 09:00:00, end = 15:20:00 },
  { kind = "closing_auction", start = 15:20:00, end = 15:30:00 },
  { kind = "closing_price",   start = 15:30:00, end = 16:00:00 },
  { kind = "after_market",    start = 16:00:00, end = 20:00:00 },
]
""", encoding="utf-8")
    c = TradingCalendar(table=load_session_table(user))
    before, after = date(2026, 6, 30), date(2026, 7, 1)
    assert c.phase_at(at(before, 7, 30)) is P.CLOSED and c.phase_at(at(before, 17)) is P.AFTER_HOURS
    assert c.phase_at(at(after, 7, 30)) is P.PRE_MARKET and c.phase_at(at(after, 19, 59)) is P.AFTER_MARKET
    assert c.phase_at(at(after, 7, 30), "total") is P.PRE_MARKET
    assert c.next_trading_start(at(before, 21), "total") == at(after, 7)


def test_bundled_announced_schedule_is_not_in_force():
    table = default_session_table()
    assert [s.venue for s in table.announced] == ["krx"]
    assert table.schedule_for("krx", date(2026, 12, 1)).label == "KRX regular schedule"


def test_broken_user_file_is_reported_and_ignored(tmp_path, caplog):
    user = tmp_path / "sessions.toml"
    user.write_text("[[override]]\ndate = 2025-03-04\nvariant = \"exam_day\"\nclosed = true\n", encoding="utf-8")
    table = load_session_table(user)
    assert "give exactly one of variant, sessions or closed" in caplog.text
    assert TradingCalendar(table=table).session_times(TUESDAY) == cal.REGULAR


@pytest.mark.parametrize("text,message", [
    ('[[schedule]]\nvenue = "nyse"\neffective_from = 2025-01-01\nsessions = []\n', "venue 'nyse'"),
    ('[[schedule]]\nvenue = "krx"\neffective_from = 2025-01-01\n'
     'sessions = [{ kind = "lunch", start = 09:00:00, end = 10:00:00 }]\n', "kind 'lunch'"),
    ('[[schedule]]\nvenue = "krx"\neffective_from = 2025-01-01\n'
     'sessions = [{ kind = "regular", start = "09:00", end = 10:00:00 }]\n', "must be times"),
    ('[[schedule]]\nvenue = "krx"\neffective_from = 2025-01-01\nsessions = ['
     '{ kind = "regular", start = 09:00:00, end = 10:00:00 },'
     '{ kind = "closing_auction", start = 09:30:00, end = 10:30:00 }]\n', "overlaps"),
    ('[[override]]\ndate = "2025-03-04"\nclosed = true\n', "date must be a date"),
    ("not toml = = =", "not valid TOML"),
])
def test_table_errors_name_the_entry(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SessionTableError, match=message):
        SessionTable.from_files(p)


def test_bundled_file_parses_and_replace_drops_it(tmp_path):
    SessionTable.from_files(resource("sessions.toml"))
    user = tmp_path / "sessions.toml"
    user.write_text('replace = true\n[[schedule]]\nvenue = "krx"\neffective_from = 2000-01-01\nsessions = ['
                    '{ kind = "regular", start = 10:00:00, end = 11:00:00 }]\n', encoding="utf-8")
    c = TradingCalendar(table=load_session_table(user))
    assert c.phase_at(at(TUESDAY, 10, 30)) is P.OPEN and c.phase_at(at(TUESDAY, 11)) is P.CLOSED
    assert c.day_plan(TUESDAY, "nxt").sessions == ()


# -- the phase watcher follows the venue ----------------------------------------------------------

def _watch(venue: str, wall: datetime) -> MarketPhaseEvent:
    bus = EventBus()
    got: list[MarketPhaseEvent] = []
    bus.subscribe(MarketPhaseEvent, got.append)
    PhaseWatcher(bus, venue=venue).check(wall)
    assert len(got) == 1
    return got[0]


def test_phase_watcher_per_venue():
    ev = _watch("krx", at(TUESDAY, 19))
    assert ev.phase == "closed" and "next open Wed 2025-03-05 09:00 KST" in ev.detail
    assert ev.next_change == at(date(2025, 3, 5), 8, 30)   # closed → closed at midnight is no change
    ev = _watch("total", at(TUESDAY, 19))
    assert ev.phase == "after_market" and ev.detail == ""
    ev = _watch("total", kst(2025, 3, 7, 20, 30))
    assert ev.phase == "closed"
    assert "next session Mon 2025-03-10 08:00 KST (nxt pre-market)" in ev.detail
    assert "regular open 09:00:00" in ev.detail
    ev = _watch("nxt", at(TUESDAY, 15, 25))
    assert ev.phase == "closed" and "next session Tue 2025-03-04 15:30 KST (nxt after-market)" in ev.detail
    with pytest.raises(ValueError):
        PhaseWatcher(EventBus(), venue="nyse")
