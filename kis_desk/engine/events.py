"""Engine events: plain, immutable, JSON-serialisable values.

Everything the engine tells the outside world (the desktop UI, the headless CLI, a remote
desktop attached over Redis) is one of these. The UI adapts them to Qt and does not care
whether they came from an in-process collector or from another host.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timezone
from typing import Any, ClassVar, NamedTuple

from ..protocol.records import _TIMESTAMPS, KST, TradeRecord, kst_timestamp

log = logging.getLogger(__name__)

SOURCE_WS = "ws"
SOURCE_BACKFILL = "backfill"
SOURCE_POLL = "poll"


class Tick(NamedTuple):
    """One trade as the engine stores and analyses it, whatever its source.

    (stock_code, business_date, cum_volume) identifies a trade: KIS's cumulative volume grows
    with every trade, so a trade seen twice (socket and back-fill) is recognised.
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
                   float(d.get("received_at", 0.0)), d.get("source", SOURCE_WS))


_tuple_new = tuple.__new__


def ticks_from_records(records: Sequence[TradeRecord], received_at: float,
                       source: str = SOURCE_WS) -> list[Tick]:
    """Ticks of one network read (hot path: every trade goes through here).

    Same values as converting each record through its properties, without their per-field
    call overhead: the core fields were validated when the record was parsed; the secondary
    ones (change, change rate, strength) become ``None`` when KIS sends something odd.
    """
    out = []
    append = out.append
    stamps = _TIMESTAMPS
    for record in records:
        f = record[1]
        ts = stamps.get(f[33] + f[1])
        if ts is None:
            ts = kst_timestamp(f[33], f[1])
        try:
            change = int(f[4])
        except ValueError:
            change = None
        try:
            rate = float(f[5])
        except ValueError:
            rate = None
        try:
            strength = float(f[18])
        except ValueError:
            strength = None
        append(_tuple_new(Tick, (f[0], ts, int(f[2]), int(f[12]), int(f[13]), change, rate,
                                 strength, received_at, source)))
    return out


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
            step=int(d.get("step", 1)),
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
    """A problem the user should see in plain words. ``fatal`` means the engine stopped."""

    type_name: ClassVar[str] = "error"
    source: str
    message: str
    fatal: bool = False
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


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


Listener = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out on the event loop thread.

    Listeners must be quick (append to a queue, mark a row dirty); a listener that raises is
    logged and does not stop the others.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener, event.type_name)


__all__ = [
    "AlertEvent", "ErrorEvent", "Event", "EventBus", "MarketPhaseEvent", "PublisherStatsEvent",
    "RateEvent", "SOURCE_BACKFILL", "SOURCE_POLL", "SOURCE_WS", "SessionStateEvent",
    "StorageStatsEvent", "SubscriptionPlanEvent", "Tick", "TicksEvent", "asdict",
    "ticks_from_records",
    "event_from_dict", "event_from_json",
]
