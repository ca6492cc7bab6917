"""The session table: which phases a venue's trading day has, as data (``resources/sessions.toml``).

Why data: trading hours change (NXT opened in 2025, KRX announced extended hours for 2026, the
CSAT day shifts everything by an hour) and a user must be able to follow such a change without a
new release. The bundled table is layered with a user copy (``<config>/sessions.toml``); see the
comment block at the top of the bundled file for the format.

Venues: ``krx``, ``nxt`` and ``total`` (the union of both: a trade on either venue counts).
Holidays are not in the table: :class:`kis_desk.market.calendar.TradingCalendar` decides whether
a day trades at all and asks this module what the day looks like.
"""

from __future__ import annotations

import enum
import functools
import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from kis_desk.paths import resource

log = logging.getLogger(__name__)

VENUES = ("krx", "nxt", "total")
#: Venues that have sessions of their own (``total`` is derived).
BASE_VENUES = ("krx", "nxt")
DEFAULT_VENUE = "krx"
SESSIONS_FILE = "sessions.toml"


class MarketPhase(enum.Enum):
    PRE_MARKET = "pre_market"            # continuous pre-market trading (NXT 08:00–08:50)
    PRE_OPEN = "pre_open"                # opening call auction (08:30–open)
    OPEN = "open"                        # continuous main session
    CLOSING_AUCTION = "closing_auction"  # closing call auction (10 minutes before the close)
    AFTER_HOURS = "after_hours"          # KRX closing-price and single-price sessions
    AFTER_MARKET = "after_market"        # continuous after-market trading (NXT 15:30–20:00)
    CLOSED = "closed"                    # trading day, outside every session
    HOLIDAY = "holiday"                  # weekend or KRX holiday

    @property
    def trading(self) -> bool:
        """True while trades can print (auctions included)."""
        return self not in (MarketPhase.CLOSED, MarketPhase.HOLIDAY)


#: Session kind → the coarse phase shown to the user and used by callers.
KIND_PHASE: dict[str, MarketPhase] = {
    "pre_market": MarketPhase.PRE_MARKET,
    "opening_auction": MarketPhase.PRE_OPEN,
    "regular": MarketPhase.OPEN,
    "closing_auction": MarketPhase.CLOSING_AUCTION,
    "closing_price": MarketPhase.AFTER_HOURS,
    "single_price": MarketPhase.AFTER_HOURS,
    "after_market": MarketPhase.AFTER_MARKET,
}

#: When sessions of several venues overlap (venue ``total``), the phase shown is the first of
#: these that is active: continuous trading says more than an auction on the other venue.
PHASE_PRIORITY = (MarketPhase.OPEN, MarketPhase.PRE_MARKET, MarketPhase.AFTER_MARKET,
                  MarketPhase.CLOSING_AUCTION, MarketPhase.PRE_OPEN, MarketPhase.AFTER_HOURS)


class SessionTableError(ValueError):
    """A session table that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Session:
    """One session of one venue: ``start`` inclusive, ``end`` exclusive (KST wall clock)."""

    venue: str
    kind: str
    start: time
    end: time
    note: str = ""

    @property
    def phase(self) -> MarketPhase:
        return KIND_PHASE[self.kind]

    def contains(self, t: time) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Schedule:
    """A venue's sessions from ``effective_from`` on (None = announced, not in force)."""

    venue: str
    effective_from: date | None
    label: str
    sessions: tuple[Session, ...]
    variants: Mapping[str, tuple[str, tuple[Session, ...]]] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Override:
    """A per-date exception: a variant, a full session list, or an extra holiday."""

    day: date
    venue: str | None          # None = every venue
    variant: str = ""
    sessions: tuple[Session, ...] | None = None
    closed: bool = False
    note: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class DayPlan:
    """What a venue's day looks like: its sessions (sorted) and where they came from."""

    day: date
    venue: str
    sessions: tuple[Session, ...]
    description: str
    trading_day: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(), "venue": self.venue, "trading_day": self.trading_day,
            "description": self.description,
            "sessions": [{"venue": s.venue, "kind": s.kind, "phase": s.phase.value,
                          "start": s.start.isoformat(), "end": s.end.isoformat(),
                          **({"note": s.note} if s.note else {})} for s in self.sessions],
        }


# -- parsing -------------------------------------------------------------------------------

def _sessions(raw: Any, venue: str, where: str) -> tuple[Session, ...]:
    if not isinstance(raw, list) or not raw:
        raise SessionTableError(f"{where}: 'sessions' must be a non-empty list")
    out: list[Session] = []
    for i, item in enumerate(raw, start=1):
        at = f"{where}, session {i}"
        if not isinstance(item, dict):
            raise SessionTableError(f"{at}: expected a table like {{ kind = ..., start = ..., end = ... }}")
        kind = item.get("kind")
        if kind not in KIND_PHASE:
            raise SessionTableError(f"{at}: kind {kind!r} is not one of {', '.join(KIND_PHASE)}")
        start, end = item.get("start"), item.get("end")
        if not isinstance(start, time) or not isinstance(end, time):
            raise SessionTableError(f"{at}: start and end must be times like 09:00:00 (no quotes)")
        if not start < end:
            raise SessionTableError(f"{at}: start {start} is not before end {end}")
        out.append(Session(venue, kind, start, end, str(item.get("note", ""))))
    out.sort(key=lambda s: s.start)
    for a, b in zip(out, out[1:]):
        if b.start < a.end:
            raise SessionTableError(f"{where}: {a.kind} {a.start}–{a.end} overlaps {b.kind} {b.start}–{b.end}")
    return tuple(out)


def _venue(raw: Any, where: str, allow_none: bool = False) -> str | None:
    if raw is None and allow_none:
        return None
    if raw not in BASE_VENUES:
        raise SessionTableError(f"{where}: venue {raw!r} is not one of {', '.join(BASE_VENUES)}")
    return raw


def parse_table(data: Mapping[str, Any], source: str) -> tuple[list[Schedule], list[Override]]:
    """Schedules and overrides of one parsed TOML document (``source`` names it in errors)."""
    schedules: list[Schedule] = []
    for i, raw in enumerate(data.get("schedule", []), start=1):
        where = f"{source}: [[schedule]] {i}"
        venue = _venue(raw.get("venue"), where)
        eff = raw.get("effective_from")
        if eff is not None and (not isinstance(eff, date) or hasattr(eff, "hour")):
            raise SessionTableError(f"{where}: effective_from must be a date like 2025-03-04 (no quotes)")
        variants: dict[str, tuple[str, tuple[Session, ...]]] = {}
        for name, v in (raw.get("variants") or {}).items():
            variants[name] = (str(v.get("label", name)), _sessions(v.get("sessions"), venue, f"{where}, variant {name}"))
        schedules.append(Schedule(venue, eff, str(raw.get("label", venue)),
                                  _sessions(raw.get("sessions"), venue, where), variants, source))
    overrides: list[Override] = []
    for i, raw in enumerate(data.get("override", []), start=1):
        where = f"{source}: [[override]] {i}"
        day = raw.get("date")
        if not isinstance(day, date) or hasattr(day, "hour"):
            raise SessionTableError(f"{where}: date must be a date like 2025-11-13 (no quotes)")
        venue = _venue(raw.get("venue"), where, allow_none=True)
        variant = str(raw.get("variant", ""))
        closed = bool(raw.get("closed", False))
        sessions = None
        if "sessions" in raw:
            if venue is None:
                raise SessionTableError(f"{where}: an override with sessions needs a venue")
            sessions = _sessions(raw["sessions"], venue, where)
        if sum((bool(variant), sessions is not None, closed)) != 1:
            raise SessionTableError(f"{where}: give exactly one of variant, sessions or closed = true")
        overrides.append(Override(day, venue, variant, sessions, closed, str(raw.get("note", "")), source))
    return schedules, overrides


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise SessionTableError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SessionTableError(f"{path}: not valid TOML: {exc}") from exc


# -- the table -----------------------------------------------------------------------------

class SessionTable:
    """Schedules by venue and effective date, plus per-date overrides."""

    def __init__(self, schedules: Iterable[Schedule] = (), overrides: Iterable[Override] = ()) -> None:
        by_key: dict[tuple[str, date | None, str], Schedule] = {}
        for s in schedules:   # later entries (the user's) replace earlier ones with the same key
            by_key[(s.venue, s.effective_from, s.label if s.effective_from is None else "")] = s
        self.schedules = tuple(by_key.values())
        self.announced = tuple(s for s in self.schedules if s.effective_from is None)
        self._in_force: dict[str, list[Schedule]] = {
            v: sorted((s for s in self.schedules if s.venue == v and s.effective_from is not None),
                      key=lambda s: s.effective_from)   # type: ignore[arg-type,return-value]
            for v in BASE_VENUES}
        by_day: dict[tuple[date, str | None], Override] = {}
        for o in overrides:
            by_day[(o.day, o.venue)] = o
        self.overrides = tuple(by_day.values())
        self._overrides: dict[date, list[Override]] = {}
        for o in self.overrides:
            self._overrides.setdefault(o.day, []).append(o)

    @classmethod
    def from_files(cls, *paths: Path) -> SessionTable:
        """Layer the files in order; a file with ``replace = true`` drops everything before it."""
        schedules: list[Schedule] = []
        overrides: list[Override] = []
        for path in paths:
            data = read_toml(path)
            s, o = parse_table(data, str(path))
            if data.get("replace"):
                schedules, overrides = [], []
            schedules += s
            overrides += o
        return cls(schedules, overrides)

    def with_overrides(self, extra: Iterable[Override]) -> SessionTable:
        return SessionTable(self.schedules, [*self.overrides, *extra])

    def schedule_for(self, venue: str, day: date) -> Schedule | None:
        """The schedule in force on ``day`` (the latest effective_from not after it)."""
        current = None
        for s in self._in_force.get(venue, ()):
            if s.effective_from is not None and s.effective_from <= day:
                current = s
        return current

    def overrides_on(self, day: date) -> list[Override]:
        return self._overrides.get(day, [])

    def closed_by_override(self, day: date) -> Override | None:
        """An override closing every venue that day (an extra market holiday)."""
        return next((o for o in self.overrides_on(day) if o.closed and o.venue is None), None)

    def venue_sessions(self, venue: str, day: date, first_trading_day: bool) -> tuple[tuple[Session, ...], str]:
        """(sessions, description) of a base venue on a day that trades."""
        schedule = self.schedule_for(venue, day)
        if schedule is None:
            return (), "no schedule in force"
        sessions, text = schedule.sessions, schedule.label
        if first_trading_day and "first_trading_day" in schedule.variants:
            text, sessions = schedule.variants["first_trading_day"]
        overrides = self.overrides_on(day)
        chosen = (next((o for o in overrides if o.venue == venue), None)
                  or next((o for o in overrides if o.venue is None), None))
        if chosen is not None:
            note = f" ({chosen.note})" if chosen.note else ""
            if chosen.closed:
                return (), f"closed by override{note}"
            if chosen.sessions is not None:
                return chosen.sessions, f"override{note}"
            if chosen.variant in schedule.variants:
                label, sessions = schedule.variants[chosen.variant]
                return sessions, f"{label}{note}"
        return sessions, text


def user_sessions_path() -> Path:
    from kis_desk.config import UserPaths
    return UserPaths.default().config / SESSIONS_FILE


def load_session_table(user_path: Path | None = None) -> SessionTable:
    """The bundled table layered with the user's copy (when it exists).

    A broken user file is reported in one log line and ignored: the bundled table still works.
    """
    bundled = resource(SESSIONS_FILE)
    user = user_sessions_path() if user_path is None else user_path
    if user.is_file():
        try:
            return SessionTable.from_files(bundled, user)
        except SessionTableError as exc:
            log.warning("session table: ignoring your file: %s", exc)
    return SessionTable.from_files(bundled)


@functools.cache
def default_session_table() -> SessionTable:
    return load_session_table()


def check_venue(venue: str) -> str:
    v = (venue or DEFAULT_VENUE).lower()
    if v not in VENUES:
        raise ValueError(f"venue must be one of {', '.join(VENUES)}, not {venue!r}")
    return v


__all__ = ["BASE_VENUES", "DEFAULT_VENUE", "KIND_PHASE", "VENUES", "DayPlan", "MarketPhase", "Override",
           "Schedule", "Session", "SessionTable", "SessionTableError", "check_venue",
           "default_session_table", "load_session_table", "parse_table", "user_sessions_path"]
