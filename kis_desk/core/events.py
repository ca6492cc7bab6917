"""Events: plain, immutable, JSON-serialisable values, and the bus that carries them.

Everything the engine tells the outside world (the desktop UI, the headless CLI, a remote
desktop attached over Redis) is one of these. The UI adapts them to Qt and does not care
whether they came from an in-process collector or from another host.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import date, datetime, timezone
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from ..market.venues import VENUE_KRX
from .ticks import Tick

log = logging.getLogger(__name__)

# -- events ------------------------------------------------------------------------------------

_EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True)
class Event:
    """Base of all engine events; ``type`` names the concrete class on the wire."""

    type_name: ClassVar[str] = "event"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _EVENT_TYPES[cls.type_name] = cls

    def to_dict(self) -> dict[str, Any]:
        d = {"type": self.type_name}
        for f in fields(self):
            d[f.name] = _jsonable(getattr(self, f.name))
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


def _jsonable(v: Any) -> Any:
    if isinstance(v, Tick):
        return v.to_dict()
    if is_dataclass(v) and not isinstance(v, type):
        return {k: _jsonable(x) for k, x in asdict(v).items()}
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


@dataclass(frozen=True)
class TicksEvent(Event):
    """Trades that arrived in one network read (one event per read, not per tick)."""

    type_name: ClassVar[str] = "ticks"
    ticks: tuple[Tick, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TicksEvent:
        return cls(tuple(Tick.from_dict(t) for t in d["ticks"]))


@dataclass(frozen=True)
class AlertEvent(Event):
    """A sudden move: price moved ≥ threshold within the window (see engine.detector)."""

    type_name: ClassVar[str] = "alert"
    alert_id: str            # stable: "<code>:<YYYYMMDD>:<up|down>:<step>:<trigger cum_volume>"
    stock_code: str
    stock_name: str
    direction: str           # "up" | "down"
    change_pct: float        # signed, from base to trigger
    base_price: int
    base_time: datetime
    trigger_price: int
    trigger_time: datetime
    trigger_cum_volume: int
    detected_at: datetime    # wall clock, UTC-aware
    window_seconds: float
    threshold_pct: float
    step: int = 1            # 1 for the first threshold crossing, 2 for 2×threshold, …
    late: bool = False       # detected late (trigger from back-fill/journal or delay_s > 5 s)
    delay_s: float = 0.0     # detected_at minus trigger_time, seconds (≥ 0)
    source: str = "ws"       # source of the trigger trade: ws | poll | backfill | journal
    kind: str = "move"       # "move" (sudden move, engine.detector) | "level" (price level, 목표가)
    muted: bool = False      # raised while muted (engine.alert_rules): stored/published, not sounded
    vi: str = ""             # "static_vi" | "dynamic_vi" when the move went through a VI auction

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertEvent:
        return cls(
            alert_id=d["alert_id"], stock_code=d["stock_code"], stock_name=d.get("stock_name", ""),
            direction=d["direction"], change_pct=float(d["change_pct"]),
            base_price=int(d["base_price"]), base_time=datetime.fromisoformat(d["base_time"]),
            trigger_price=int(d["trigger_price"]),
            trigger_time=datetime.fromisoformat(d["trigger_time"]),
            trigger_cum_volume=int(d.get("trigger_cum_volume", 0)),
            detected_at=datetime.fromisoformat(d["detected_at"]),
            window_seconds=float(d["window_seconds"]), threshold_pct=float(d["threshold_pct"]),
            step=int(d.get("step", 1)), late=bool(d.get("late", False)),
            delay_s=float(d.get("delay_s", 0.0)), source=str(d.get("source", "ws")),
            kind=str(d.get("kind", "move")), muted=bool(d.get("muted", False)),
            vi=str(d.get("vi", "")),
        )


@dataclass(frozen=True)
class SessionStateEvent(Event):
    """State of one WebSocket session (one per app key)."""

    type_name: ClassVar[str] = "session"
    session: str             # label of the app key, never the key itself ("key1", "key2")
    state: str               # "connecting" | "live" | "backoff" | "stalled" | "stopped" | "failed"
    symbols: tuple[str, ...] = ()     # acknowledged subscriptions
    detail: str = ""                  # plain words for the status bar
    retry_in: float | None = None


@dataclass(frozen=True)
class SubscriptionPlanEvent(Event):
    """How the watchlist is spread over sessions, and which symbols fall back to polling."""

    type_name: ClassVar[str] = "plan"
    live: dict[str, tuple[str, ...]]   # session label -> codes
    polled: tuple[str, ...]
    keys_needed: int                   # app keys needed to make every symbol live
    keys_configured: int
    keys_down: tuple[str, ...] = ()    # keys that cannot carry their symbols now (moved away)


class SymbolFeedState(StrEnum):
    """Where one symbol's data comes from right now — computed once, in the feed.

    ``live``: acknowledged on a connected WebSocket session; ``polled``: carried by REST polling
    (no free registration, or its key is down) and polled successfully; ``backfilling``: live
    again and a back-fill of its gap is queued or running; ``dark``: no working source now (its
    session is down and nothing else carries it yet); ``waiting``: not yet live for the first
    time (start-up, subscribe in flight)."""

    LIVE = "live"
    POLLED = "polled"
    BACKFILLING = "backfilling"
    DARK = "dark"
    WAITING = "waiting"


@dataclass(frozen=True)
class MarketStateEvent(Event):
    """A symbol's market state changed: ``state`` "" (normal again), "halted" or "vi" (a VI
    auction runs), from its trades or, while it was quiet, an inquire-price probe
    (feed.market_state). ``since``: when it began as far as known (KST; for "": when trading
    resumed); ``kind`` ("static" | "dynamic" | "static+dynamic") and ``reference`` (the VI
    standard price) when known ("" / None: mock accounts have no VI-status endpoint)."""

    type_name: ClassVar[str] = "market_state"
    stock_code: str
    state: str
    since: datetime
    source: str = "probe"    # "probe" (inquire-price) | "trade" (a trade's market-state fields)
    kind: str = ""
    reference: int | None = None


@dataclass(frozen=True)
class FeedStats:
    """The feed's counters (cumulative since start) and health, one frozen value: the collect
    summary, the status bar and the log all read this."""

    received: int = 0                 # trades received over WebSocket
    frames: int = 0
    protocol_errors: int = 0
    reconnects: int = 0
    pingpongs: int = 0
    stalls: int = 0                   # sockets declared stalled by the watchdog
    oversized_closes: int = 0
    in_use_refusals: int = 0          # OPSP8996
    invalid_approvals: int = 0        # OPSP0011
    credential_failures: int = 0      # app key/secret rejected
    backfilled: int = 0
    backfill_runs: int = 0
    backfill_failures: int = 0
    polled: int = 0                   # trades delivered by polling
    polls: int = 0
    poll_errors: int = 0
    gaps_unrecovered: int = 0         # gaps no back-fill could fill (incl. past business days)
    gap_volume_unrecovered: int = 0
    gaps_detected_live: int = 0
    gaps_pending: int = 0             # back-fills queued, running or waiting for a retry
    rejections: int = 0               # registrations refused (OPSP0008 …)
    rest_calls: int = 0
    rest_rate_limited: int = 0
    failovers: int = 0                # times a key's symbols were moved elsewhere
    keys_down: tuple[str, ...] = ()   # labels of keys that cannot carry their symbols now
    symbols_dark: int = 0             # symbols with no data source now, or never collected
    worst_gap_s: float = 0.0          # longest time any symbol had no data source (this run)
    stall_detect_s: float | None = None   # longest silence before a stall was declared
    last_resubscribe_seconds: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeedStats:
        known = {f.name for f in fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}
        return cls(**kw)


@dataclass(frozen=True)
class PendingGap:
    """A stretch of one symbol's trades still to back-fill (left by a stop mid back-fill): from
    after ``after_cum`` (or from ``since_hhmmss``) up to ``until_cum`` (None = up to the live
    stream). The engine stores these and hands them to the next run, which back-fills them first.
    ``venue``: whose cumulative-volume chain the numbers belong to (each venue has its own); a
    run on another venue keeps the gap for a run on its own venue."""

    code: str
    business_date: date
    after_cum: int | None = None
    since_hhmmss: str | None = None
    until_cum: int | None = None
    venue: str = VENUE_KRX


@dataclass(frozen=True)
class FeedStateEvent(Event):
    """Per-symbol feed state (code → SymbolFeedState) and the feed's stats; published when a
    state changes and about once a second."""

    type_name: ClassVar[str] = "feed_state"
    states: dict[str, SymbolFeedState]
    stats: FeedStats = field(default_factory=FeedStats)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeedStateEvent:
        return cls({k: SymbolFeedState(v) for k, v in d["states"].items()},
                   FeedStats.from_dict(d.get("stats") or {}))


@dataclass(frozen=True)
class StorageStatsEvent(Event):
    """Writer counters (cumulative) and health."""

    type_name: ClassVar[str] = "storage"
    received: int
    stored: int
    duplicates: int
    journaled: int
    failed: int
    backlog: int
    database_ok: bool
    database: str = ""          # redacted URL
    last_error: str = ""


@dataclass(frozen=True)
class PublisherStatsEvent(Event):
    """Redis publisher counters (cumulative) and health."""

    type_name: ClassVar[str] = "publisher"
    delivered: int
    pending: int
    dropped: int
    connected: bool
    target: str = ""            # redacted URL
    last_error: str = ""


@dataclass(frozen=True)
class MarketPhaseEvent(Event):
    """KRX market phase (pre_open, open, closing_auction, after_hours, closed, holiday)."""

    type_name: ClassVar[str] = "phase"
    phase: str
    detail: str = ""
    next_change: datetime | None = None


@dataclass(frozen=True)
class ErrorEvent(Event):
    """A problem the user should see in plain words. ``fatal`` means the engine stopped.

    ``message`` is the engine's English text (logs, headless output). ``code`` names the kind
    of condition and ``params`` its values, so a UI can say it in its own language
    (``kis_desk.ui.i18n.error_text``); "" = no mapping, the UI shows ``message``.
    """

    type_name: ClassVar[str] = "error"
    source: str
    message: str
    fatal: bool = False
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    code: str = ""
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class DayRolloverEvent(Event):
    """The KST business date changed (the engine runs through midnight). Every per-day value
    (change vs previous close, day high/low, volume, sparklines, 1-minute windows, the alert
    log) belongs to ``current`` from now on; trades of ``previous`` arriving later are stored
    but shown nowhere."""

    type_name: ClassVar[str] = "day"
    previous: date
    current: date

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DayRolloverEvent:
        return cls(date.fromisoformat(d["previous"]), date.fromisoformat(d["current"]))


@dataclass(frozen=True)
class RateEvent(Event):
    """Periodic throughput summary (ticks/s over the last interval)."""

    type_name: ClassVar[str] = "rate"
    ticks_per_second: float
    total_ticks: int


def event_from_dict(d: dict[str, Any]) -> Event:
    """Inverse of ``Event.to_dict`` for every event type (remote desktops, tests)."""
    cls = _EVENT_TYPES.get(d.get("type", ""))
    if cls is None:
        raise ValueError(f"unknown event type {d.get('type')!r}")
    custom = cls.__dict__.get("from_dict")
    if custom is not None:
        return custom.__get__(None, cls)(d)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        if isinstance(v, list):
            v = tuple(v)
        elif isinstance(v, dict):
            v = {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()}
        elif isinstance(v, str) and f.type in ("datetime", "datetime | None"):
            v = datetime.fromisoformat(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def event_from_json(text: str) -> Event:
    return event_from_dict(json.loads(text))


E = TypeVar("E", bound=Event)


class EventBus:
    """Synchronous, typed fan-out on the event loop thread.

    ``subscribe(TicksEvent, fn)`` calls ``fn`` for that type and its subclasses only, so a
    listener never sorts events itself; ``subscribe(Event, fn)`` receives everything (forwarders
    such as the Redis fan-out). Listeners must be quick (append to a queue, mark a row dirty); a
    listener that raises is logged and does not stop the others.
    """

    def __init__(self) -> None:
        self._listeners: dict[type[Event], list[Callable[[Any], None]]] = {}
        self._dispatch: dict[type[Event], tuple[Callable[[Any], None], ...]] = {}

    def subscribe(self, event_type: type[E], listener: Callable[[E], None]) -> Callable[[], None]:
        """Call ``listener`` for every published ``event_type``; returns the unsubscriber."""
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise TypeError(f"subscribe needs an Event type, not {event_type!r}")
        self._listeners.setdefault(event_type, []).append(listener)
        self._dispatch.clear()

        def unsubscribe() -> None:
            bucket = self._listeners.get(event_type, [])
            if listener in bucket:
                bucket.remove(listener)
                self._dispatch.clear()

        return unsubscribe

    def _targets(self, cls: type[Event]) -> tuple[Callable[[Any], None], ...]:
        targets = self._dispatch.get(cls)
        if targets is None:
            targets = tuple(fn for base in cls.__mro__ for fn in self._listeners.get(base, ()))
            self._dispatch[cls] = targets
        return targets

    def publish(self, event: Event) -> None:
        for listener in self._targets(type(event)):
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, event.type_name)


__all__ = [
    "AlertEvent", "DayRolloverEvent", "ErrorEvent", "Event", "EventBus", "FeedStateEvent",
    "FeedStats", "MarketPhaseEvent", "MarketStateEvent", "PendingGap", "PublisherStatsEvent",
    "SymbolFeedState", "RateEvent", "SessionStateEvent", "StorageStatsEvent", "SubscriptionPlanEvent", "TicksEvent",
    "event_from_dict", "event_from_json",
]
