"""A desktop's engine when the collector runs on another host.

The collectors write to a shared database and ``XADD`` alerts and (with ``--redis-trades``)
every trade to Redis streams; ``RemoteEngine`` follows those streams with a
:class:`.stream_reader.StreamReader` (resumes from its last id after a reconnect or a Redis
restart; holes beyond the retention are reloaded from the database). Given only pub/sub
channels (``trade_stream=alert_stream=None``) it subscribes to them instead, best effort, as
before. ``RemoteEngine`` turns those Redis messages back into the same engine events
on a local :class:`EventBus` and reads history from the shared database, so the desktop UI works
unchanged (it depends only on ``engine.handle.EngineHandle``). It never subscribes to KIS
itself: which symbols stream is the remote collector's watchlist; rows the remote does not
trade stay "waiting".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..aio import cancel_and_wait
from ..config import redact_url
from ..core.backoff import Backoff, BackoffPolicy
from ..core.ticks import Tick
from ..core.events import (
    AlertEvent, DayRolloverEvent, ErrorEvent, EventBus, MarketStateEvent, SessionStateEvent,
    SubscriptionPlanEvent, TicksEvent, event_from_json,
)
from ..market.venues import VENUE_KRX
from ..protocol.records import KST
from .alert_rules import SETTING_KEY as RULES_KEY
from .alert_rules import AlertRules
from .alert_probe import is_test_message
from .handle import EngineReads

log = logging.getLogger(__name__)

LABEL = "remote"

#: What Settings can change on an attached desktop; the alert rule, environment and keys are
#: the remote collector's (the UI says so).
REMOTE_SETTINGS = ("db_url", "redis_url", "redis_channel")


class RemoteEngine(EngineReads):
    """EngineHandle over Redis (live events) + the shared database (history, alerts, lists)."""

    def __init__(self, redis_url: str, db_url: str, *, alert_channel: str = "kis:alerts",
                 tick_channel: str | None = "kis:ticks", codes: Sequence[str] = (),
                 bus: EventBus | None = None, trade_stream: str | None = None,
                 alert_stream: str | None = None, stream_start: str = "$", venue: str = VENUE_KRX,
                 clock: Callable[[], datetime] = lambda: datetime.now(KST)) -> None:
        """``venue``: the phase shown until trades arrive; then the venue the collectors'
        trades carry (they, not this desktop, choose it)."""
        from ..market.symbols import default_directory

        self.redis_url = redis_url
        self.db_url = db_url
        self.alert_channel = alert_channel
        self.tick_channel = tick_channel
        self.trade_stream = trade_stream
        self.alert_stream = alert_stream
        self._stream_start = stream_start
        self.reader: Any = None         # StreamReader when reading streams
        self._gaps: Any = None          # GapFiller next to it
        self.bus = bus or EventBus()
        self.symbols = default_directory()
        self.repository: Any = None
        self.simulated = False          # whatever feeds the remote collector, this host trades nothing
        self.always_open = False        # the session table decides what the status bar says
        self.attached = True            # the alert rule, environment and keys are the remote's
        self.venue = venue
        self.codes: list[str] = list(dict.fromkeys(codes))
        self.received = 0
        self._seen: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._states: dict[str, MarketStateEvent] = {}    # halts / VI, from the collectors
        self._states_task: asyncio.Task[None] | None = None
        self._crossing = {TicksEvent: self._note_ticks, AlertEvent: lambda _event: None}
        self.clock = clock
        self.business_date = clock().date()
        from .detector import DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS

        self.alert_rules = AlertRules(DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS)
        self.owns_alert_rules = False     # the remote collector's rules: shown read only

    async def start(self) -> None:
        from .storage import Repository

        self.repository = await asyncio.to_thread(Repository, self.db_url)
        stored = await asyncio.to_thread(self.repository.get_setting, RULES_KEY)
        if stored:      # the remote collector's rules, shown read-only (it marks muted alerts)
            self.alert_rules = AlertRules.from_json(stored)
        streams = bool(self.trade_stream or self.alert_stream)
        if streams:
            self._make_reader()
        listen = self.reader.run() if streams else self._listen()
        self._tasks = [asyncio.create_task(listen, name="remote-engine"),
                       asyncio.create_task(self._report_phases(), name="remote-phases")]
        self._follow_states()

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks + [self._states_task])
        self._tasks, self._states_task = [], None
        if self._gaps is not None:
            await self._gaps.stop()
        if self.repository is not None:
            self.repository.close()
        self._state("stopped", "detached")

    async def set_watchlist(self, codes: Sequence[str]) -> None:
        """Local only: the remote collector decides what streams; we show what arrives."""
        self.codes = list(dict.fromkeys(codes))
        self._publish_plan()

    def market_states(self) -> dict[str, MarketStateEvent]:
        """Halts and VI as the collectors publish them (engine.market_states, Redis)."""
        return dict(self._states)

    def _follow_states(self) -> None:
        from .market_states import follow_market_states

        if self._states_task is not None:
            self._states_task.cancel()
        if not self.redis_url:
            return
        self._states_task = asyncio.create_task(
            follow_market_states(self.redis_url, self.alert_channel, self._market_state),
            name="remote-market-states")

    def _market_state(self, event: MarketStateEvent) -> None:
        if event.state:
            self._states[event.stock_code] = event
        else:
            self._states.pop(event.stock_code, None)
        self.bus.publish(event)

    async def set_alert_rules(self, rules: AlertRules) -> None:
        """Not supported: the remote collector owns its rules (set them on its host; its alerts
        arrive here already marked ``muted``)."""
        raise NotImplementedError("alert rules are set on the collector's host, not on an attached desktop")

    # -- the test alert (same contract as Collector) ---------------------------------------------------
    async def send_test_alert(self, alert: AlertEvent) -> tuple[str, int] | None:
        """A test message on the alert channel this desktop listens to (it ignores it itself)."""
        from .alert_probe import publish_test_alert

        return self.alert_channel, await publish_test_alert(self.redis_url, self.alert_channel, alert)

    async def apply_settings(self, settings: Any, store: Any, previous: Any = None) -> list[str]:
        """Settings on an attached desktop: the shared database and the Redis it listens to
        (reattached at once). Threshold, window, environment and keys belong to the remote
        collector and are not changed from here. Returns what changed."""
        from .storage import Repository

        changed: list[str] = []
        db = store.database_url(settings) or self.db_url
        if db != self.db_url:
            repository = await asyncio.to_thread(Repository, db)
            old, self.repository, self.db_url = self.repository, repository, db
            if old is not None:
                old.close()
            changed.append("db_url")
        redis_url = store.redis_url(settings) or self.redis_url
        channel = settings.redis_channel or self.alert_channel
        if (redis_url, channel) != (self.redis_url, self.alert_channel):
            self.redis_url, self.alert_channel = redis_url, channel
            listener = self._tasks[0] if self._tasks else None
            if listener is not None:
                await cancel_and_wait([listener])
                self._tasks[0] = asyncio.create_task(self._listen(), name="remote-engine")
            if self._states_task is not None:
                self._follow_states()
            changed.append("redis_url")
        return changed

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"received": self.received, "symbols": len(self.codes),
                               "streaming": len(self._seen)}
        if self.reader is not None:
            s = self.reader.stats
            out.update(stream_gaps=s.gaps, reloaded=s.reloaded, holes_left=s.holes_left,
                       stream_duplicates=s.duplicates)
        return out

    async def _report_phases(self) -> None:
        from .phase import PhaseWatcher

        phases = PhaseWatcher(self.bus, venue=self.venue, clock=self.clock)   # the exchange's phase
        while True:
            phases.venue = self.venue
            phases.check()
            today = self.clock().date()
            if today != self.business_date:     # the remote collector rolls over at the same time
                previous, self.business_date = self.business_date, today
                self.bus.publish(DayRolloverEvent(previous, today))
            await asyncio.sleep(1.0)

    # -- Redis streams (durable) --------------------------------------------------------------------
    def _make_reader(self) -> None:
        from .gap_filler import GapFiller
        from .stream_reader import StreamReader

        self.reader = StreamReader(
            self.redis_url, trade_stream=self.trade_stream, alert_stream=self.alert_stream,
            on_trades=self._stream_trades, on_alert=self.bus.publish, on_gap=self._stream_gap,
            on_state=lambda state, detail, retry_in: self._state(state, detail, retry_in),
            start=self._stream_start)
        self._gaps = GapFiller(self.repository.ticks_between, self._deliver_ticks,
                               self.reader.stats, on_hole=self._report_hole)

    def _stream_trades(self, ticks: Sequence[Tick]) -> None:
        fresh = self._gaps.filter(ticks)
        if fresh:
            self._deliver_ticks(fresh)

    def _stream_gap(self, reason: str) -> None:
        self.bus.publish(ErrorEvent("remote", reason))
        self._gaps.gap()
        if self.alert_stream:
            asyncio.create_task(self._reload_alerts(), name="remote-alert-reload")

    async def _reload_alerts(self) -> None:
        from datetime import datetime

        from ..protocol.records import KST

        stored = await asyncio.to_thread(self.repository.alerts_on, datetime.now(KST).date())
        for s in stored:
            if self.reader.deliver_alert(s.alert):
                self.reader.stats.alerts_reloaded += 1

    def _report_hole(self, message: str) -> None:
        self.bus.publish(ErrorEvent("remote", message))

    def _deliver_ticks(self, ticks: Sequence[Tick]) -> None:
        self._deliver_event(TicksEvent(tuple(ticks)))

    # -- Redis pub/sub (best effort, for existing channel setups) ---------------------------------
    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        channels = [c for c in (self.alert_channel, self.tick_channel) if c]
        backoff = Backoff(BackoffPolicy(initial=0.5, cap=15.0))
        while True:
            client = aioredis.from_url(self.redis_url, socket_connect_timeout=3.0)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(*channels)
                self._state("live", f"attached to {redact_url(self.redis_url)} ({', '.join(channels)})")
                backoff.reset()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next_delay()
                self._state("backoff", f"Redis {redact_url(self.redis_url)}: {exc}", retry_in=delay)
                self.bus.publish(ErrorEvent("remote", f"lost Redis ({exc}); retrying in {delay:.1f} s"))
                await asyncio.sleep(delay)
            finally:
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass

    def _deliver(self, data: bytes | str) -> None:
        if is_test_message(data):
            log.info("test alert received on Redis (wiring check; not shown as an alert)")
            return
        try:
            event = event_from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring an undecodable message from Redis: %s", exc)
            return
        self._deliver_event(event)

    def _deliver_event(self, event: Any) -> None:
        handler = self._crossing.get(type(event))
        if handler is not None:     # only trades and alerts cross hosts; local state stays local
            handler(event)
            self.bus.publish(event)

    def _note_ticks(self, event: TicksEvent) -> None:
        self.received += len(event.ticks)
        if event.ticks:
            self.venue = event.ticks[-1].venue
        new = {t.stock_code for t in event.ticks} - self._seen
        if new:
            self._seen |= new
            if new & set(self.codes):
                self._publish_plan()

    def _publish_plan(self) -> None:
        live = tuple(c for c in self.codes if c in self._seen)
        self.bus.publish(SubscriptionPlanEvent({LABEL: live}, (), 0, 0))

    def _state(self, state: str, detail: str, retry_in: float | None = None) -> None:
        self.bus.publish(SessionStateEvent(LABEL, state, (), detail, retry_in))
