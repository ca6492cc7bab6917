"""Redis publisher for alerts (and, optionally, ticks) — never blocks the tick path.

``publish_alert`` / ``publish_ticks`` only append to bounded in-memory outboxes and wake a
drain task; the drain tasks send everything pending in batches, reconnecting with backoff.
This module owns the connection, the drain tasks' life cycle, health (``connected``,
``last_error``, the ``ErrorEvent`` when Redis is unreachable) and the one stats value; what
each outbox guarantees is in its own module:

* alerts: in order, none twice, none lost while Redis is down — :mod:`.alert_outbox`;
* trades on a stream, exactly once per ``(src, seq)``, and best-effort ticks on pub/sub —
  :mod:`.trade_outbox`. Ticks use their own drain task, so a tick backlog never delays an alert.

URLs: ``redis://[:password@]host:port/db`` and ``rediss://…`` (TLS; CA/verification options as
redis-py URL query arguments, e.g. ``?ssl_ca_certs=/path/ca.pem``). The password never reaches
a log, an event or ``stats()``: everything shows :func:`kis_desk.config.redact_url`.

Call ``publish_alert``/``publish_ticks`` from the event loop's thread (they touch an
``asyncio.Event``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import redact_url
from ..core.backoff import BackoffPolicy
from ..core.errors import describe
from ..core.events import ErrorEvent, EventBus, PublisherStatsEvent
from ..defaults import (
    ALERT_STREAM_MAXLEN, TRADE_STREAM_BATCH, TRADE_STREAM_LINGER_S, TRADE_STREAM_MAXLEN,
)
from .alert_outbox import DELIVER_LUA, AlertOutbox
from .redis_link import redis_client
from .trade_outbox import TradeOutbox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PublisherStats:
    """One snapshot of the publisher's counters: what the collect summary, the status bar
    event (``PublisherStatsEvent``) and the log all read."""

    delivered: int
    pending: int
    dropped: int
    duplicates: int
    batches: int
    reconnects: int
    connected: bool
    ticks_sent: int
    ticks_pending: int
    ticks_dropped: int
    target: str
    last_error: str
    mode: str                 # "script" | "multi"
    trades_streamed: int = 0  # trades confirmed on the trade stream
    trades_pending: int = 0
    trades_dropped: int = 0   # outbox overflow (a seq hole tells readers to reload them)
    trade_batches: int = 0    # stream entries written

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def event(self) -> PublisherStatsEvent:
        return PublisherStatsEvent(self.delivered, self.pending, self.dropped, self.connected,
                                   self.target, self.last_error)


class RedisPublisher(AlertOutbox, TradeOutbox):
    """Publishes :class:`AlertEvent` s (and optionally ticks) to Redis from a background task."""

    def __init__(
        self,
        url: str,
        *,
        channel: str = "kis:alerts",
        stream: str | None = None,
        stream_maxlen: int = ALERT_STREAM_MAXLEN,
        max_pending: int = 10_000,
        bus: EventBus | None = None,
        tick_channel: str | None = None,
        tick_max_pending: int = 50_000,
        tick_batch: int = TRADE_STREAM_BATCH,
        trade_stream: str | None = None,
        trade_stream_maxlen: int = TRADE_STREAM_MAXLEN,
        trade_max_pending: int = 200_000,
        trade_linger: float = TRADE_STREAM_LINGER_S,
        alert_batch: int = 200,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        connect_timeout: float = 3.0,
        stats_interval: float = 1.0,
    ) -> None:
        self._init_alerts(channel, stream, stream_maxlen, max_pending, alert_batch)
        self._init_trades(tick_channel, tick_max_pending, tick_batch, trade_stream,
                          trade_stream_maxlen, trade_max_pending, trade_linger)
        self._url = url
        self.target = redact_url(url)
        self._bus = bus
        self._backoff_policy = BackoffPolicy(initial=backoff_initial, cap=backoff_max,
                                             floor=min(0.05, backoff_initial), jitter=0.25,
                                             healthy_after=0.0)
        self._connect_timeout = connect_timeout
        self._stats_interval = stats_interval
        self._stopping = False
        self._client: aioredis.Redis | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.reconnects = 0
        self.connected = False
        self.last_error = ""
        self._last_stats_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Start the drain task(s). Returns whether Redis answered a first PING; when it did
        not, alerts are queued and delivered once it does (an ErrorEvent says so)."""
        if self._tasks:
            return self.connected
        self._stopping = False
        # our drain loops retry, with their own backoff
        self._client = redis_client(self._url, connect_timeout=self._connect_timeout,
                                    socket_timeout=max(self._connect_timeout, 5.0),
                                    client_name="kis-desk-publisher")
        self._script = self._client.register_script(DELIVER_LUA)
        try:
            await asyncio.wait_for(self._client.ping(), self._connect_timeout + 1.0)
            self._set_connected(True)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            self._set_connected(False, exc)
        self._tasks.append(asyncio.create_task(self._drain_alerts(), name="redis-alerts"))
        if self.tick_channel is not None:
            self._tasks.append(asyncio.create_task(self._drain_ticks(), name="redis-ticks"))
        if self.trade_stream is not None:
            self._tasks.append(asyncio.create_task(self._drain_trades(), name="redis-trades"))
        return self.connected

    async def stop(self, flush_timeout: float = 5.0) -> PublisherStats:
        """Try for up to ``flush_timeout`` s to deliver what is pending, then close.
        Alerts still pending afterwards stay counted in ``pending`` (not ``dropped``)."""
        self._stopping = True
        self._wake.set()
        self._tick_wake.set()
        self._trade_wake.set()
        if self._tasks:
            done, running = await asyncio.wait(self._tasks, timeout=max(0.0, flush_timeout))
            for t in running:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
        self._requeue_inflight()      # cancelled mid-batch: keep them, in order, as pending
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception:   # closing a dead connection may raise; nothing to do about it
                pass
            self._client = None
        if self.pending:
            log.warning("redis publisher stopped with %d alert(s) undelivered (%s)",
                        self.pending, self.target)
        self._emit_stats(force=True)
        return self.stats()

    def stats(self) -> PublisherStats:
        return PublisherStats(
            delivered=self.delivered, pending=self.pending, dropped=self.dropped,
            duplicates=self.duplicates, batches=self.batches, reconnects=self.reconnects,
            connected=self.connected, ticks_sent=self.ticks_sent,
            ticks_pending=len(self._ticks), ticks_dropped=self.ticks_dropped,
            target=self.target, last_error=self.last_error,
            mode="script" if self._use_script else "multi",
            trades_streamed=self.trades_streamed, trades_pending=self.trades_pending,
            trades_dropped=self.trades_dropped, trade_batches=self.trade_batches)

    def stats_event(self) -> PublisherStatsEvent:
        return self.stats().event()

    # -- health and events -------------------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        return describe(exc, self._url)

    def _set_connected(self, ok: bool, exc: BaseException | None = None) -> None:
        was = self.connected
        self.connected = ok
        if exc is not None:
            self.last_error = self._scrub(exc)
        if ok and not was:
            if self.last_error:
                self.reconnects += 1
                log.info("redis publisher reconnected to %s", self.target)
            self._emit_stats(force=True)
        elif not ok and (was or exc is not None and not self._tasks):
            log.warning("redis publisher: %s unreachable (%s); %d alert(s) waiting",
                        self.target, self.last_error, self.pending)
            if self._bus is not None:
                self._bus.publish(ErrorEvent(
                    "redis", f"Redis at {self.target} is unreachable ({self.last_error}); "
                    "alerts are queued and will be sent when it returns", code="redis.down",
                    params={"pending": self.pending}))
            self._emit_stats(force=True)

    def _emit_stats(self, force: bool = False) -> None:
        if self._bus is None:
            return
        now = time.monotonic()
        if not force and now - self._last_stats_at < self._stats_interval:
            return
        self._last_stats_at = now
        self._bus.publish(self.stats_event())


__all__ = ["PublisherStats", "RedisPublisher"]
