"""A desktop's engine when the collector runs on another host.

The collector publishes alerts (and, with ``--redis-ticks``, every trade) on Redis and writes to
a shared database. ``RemoteEngine`` turns those Redis messages back into the same engine events
on a local :class:`EventBus` and reads history from the shared database, so the desktop UI works
unchanged (it depends only on ``ui.engine_handle.EngineHandle``). It never subscribes to KIS
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
from ..core.events import (
    AlertEvent, DayRolloverEvent, ErrorEvent, EventBus, SessionStateEvent, SubscriptionPlanEvent,
    TicksEvent, event_from_json,
)
from ..protocol.records import KST

log = logging.getLogger(__name__)

LABEL = "remote"

#: What Settings can change on an attached desktop; the alert rule, environment and keys are
#: the remote collector's (the UI says so).
REMOTE_SETTINGS = ("db_url", "redis_url", "redis_channel")


class RemoteEngine:
    """EngineHandle over Redis (live events) + the shared database (history, alerts, lists)."""

    def __init__(self, redis_url: str, db_url: str, *, alert_channel: str = "kis:alerts",
                 tick_channel: str | None = "kis:ticks", codes: Sequence[str] = (),
                 bus: EventBus | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(KST)) -> None:
        from ..market.symbols import default_directory

        self.redis_url = redis_url
        self.db_url = db_url
        self.alert_channel = alert_channel
        self.tick_channel = tick_channel
        self.bus = bus or EventBus()
        self.symbols = default_directory()
        self.repository: Any = None
        self.simulated = False          # whatever feeds the remote collector, this host trades nothing
        self.codes: list[str] = list(dict.fromkeys(codes))
        self.received = 0
        self._seen: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.clock = clock
        self.business_date = clock().date()

    async def start(self) -> None:
        from .storage import Repository

        self.repository = await asyncio.to_thread(Repository, self.db_url)
        self._tasks = [asyncio.create_task(self._listen(), name="remote-engine"),
                       asyncio.create_task(self._report_phases(), name="remote-phases")]

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        if self.repository is not None:
            self.repository.close()
        self._state("stopped", "detached")

    async def set_watchlist(self, codes: Sequence[str]) -> None:
        """Local only: the remote collector decides what streams; we show what arrives."""
        self.codes = list(dict.fromkeys(codes))
        self._publish_plan()

    async def acknowledge_alert(self, alert_id: str) -> None:
        if self.repository is not None:
            await asyncio.to_thread(self.repository.acknowledge, alert_id)

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
            changed.append("redis_url")
        return changed

    def summary(self) -> dict[str, Any]:
        return {"received": self.received, "symbols": len(self.codes), "streaming": len(self._seen)}

    async def _report_phases(self) -> None:
        from .phase import PhaseWatcher

        phases = PhaseWatcher(self.bus, clock=self.clock)   # the exchange's phase
        while True:
            phases.check()
            today = self.clock().date()
            if today != self.business_date:     # the remote collector rolls over at the same time
                previous, self.business_date = self.business_date, today
                self.bus.publish(DayRolloverEvent(previous, today))
            await asyncio.sleep(1.0)

    # -- Redis ------------------------------------------------------------------------------------
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
        try:
            event = event_from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring an undecodable message from Redis: %s", exc)
            return
        if isinstance(event, TicksEvent):
            self.received += len(event.ticks)
            new = {t.stock_code for t in event.ticks} - self._seen
            if new:
                self._seen |= new
                if new & set(self.codes):
                    self._publish_plan()
        elif not isinstance(event, AlertEvent):
            return          # only trades and alerts cross hosts; local state events stay local
        self.bus.publish(event)

    def _publish_plan(self) -> None:
        live = tuple(c for c in self.codes if c in self._seen)
        self.bus.publish(SubscriptionPlanEvent({LABEL: live}, (), 0, 0))

    def _state(self, state: str, detail: str, retry_in: float | None = None) -> None:
        self.bus.publish(SessionStateEvent(LABEL, state, (), detail, retry_in))
