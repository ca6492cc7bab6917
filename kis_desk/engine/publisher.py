"""Redis publisher for alerts (and, optionally, ticks) — never blocks the tick path.

``publish_alert`` / ``publish_ticks`` only append to bounded in-memory outboxes and wake a
drain task; the drain tasks send everything pending in batches, reconnecting with backoff.

Delivery guarantees
-------------------
* **Alerts: in order, none twice, none lost while Redis is down.** Each batch goes to Redis as
  one Lua script (atomic on the server). For each alert the script first does
  ``SET <channel>:sent:<alert_id> 1 NX EX 259200``; only when that key is new does it
  ``PUBLISH`` the JSON to the channel and (when ``stream`` is set) ``XADD`` it to the stream
  (``MAXLEN ~ stream_maxlen``, field ``alert``). A batch is therefore all-or-nothing, and a batch
  retried after an ambiguous failure (connection lost after the script ran, before the reply
  arrived) is skipped by the server instead of being delivered twice (counted as
  ``duplicates``; ``delivered`` counts alerts confirmed on the server either way). Not-yet-sent alerts wait in the outbox and go out, in order, when Redis
  returns. Pub/sub subscribers that were themselves disconnected miss messages (Redis pub/sub
  semantics); consumers that must not miss any should read the stream.
  If the server refuses scripts (``EVAL`` disabled/ACL), the publisher falls back to
  ``MULTI``/``EXEC`` batches, which are at-least-once under that ambiguous failure (consumers
  dedupe by ``alert_id``); ``stats().mode`` says which is in use.
* **Overflow.** At most ``max_pending`` alerts wait; past that the **oldest** pending alert is
  dropped (a live desk cares most about the newest moves; every alert is also in the UI/log),
  counted in ``dropped`` and reported once per overflow episode with an ``ErrorEvent`` and a
  ``PublisherStatsEvent``.
* **Trades on a stream** (``trade_stream``, what attached desktops read): durable within the
  stream's retention. Trades wait in a bounded outbox (``trade_max_pending``) and go out as
  packed batches (:mod:`.trade_batch`, ≤ ``tick_batch`` trades, after a ``trade_linger`` s
  coalescing pause) in one pipeline of ``XADD <trade_stream> MAXLEN ~ trade_stream_maxlen``
  (one entry per batch, not per trade). Each entry carries this publisher's random ``src`` id
  and a ``seq`` number that grows by one per batch; a pipeline that failed (possibly after
  part of it was applied) is sent again with the same ``seq`` s, so readers drop the
  duplicates by ``(src, seq)`` and see every batch exactly once. Trades dropped from a full
  outbox (counted in ``trades_dropped``; they are in the database) skip a ``seq`` number, so a
  reader sees the hole and reloads it from the database (:mod:`.stream_reader`).
* **Ticks** (``tick_channel``, pub/sub for existing subscribers): best effort. Each drain publishes one
  ``TicksEvent`` JSON per batch (≤ ``tick_batch`` ticks) with a plain pipeline. When the queue
  is full or a batch fails, ticks are dropped and counted (``ticks_dropped``) — they are in the
  database anyway. Ticks use their own connection, so a tick backlog never delays an alert.

URLs: ``redis://[:password@]host:port/db`` and ``rediss://…`` (TLS; CA/verification options as
redis-py URL query arguments, e.g. ``?ssl_ca_certs=/path/ca.pem``). The password never reaches
a log, an event or ``stats()``: everything shows :func:`kis_desk.config.redact_url`.

Call ``publish_alert``/``publish_ticks`` from the event loop's thread (they touch an
``asyncio.Event``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..config import redact_url
from ..core.backoff import Backoff, BackoffPolicy
from ..defaults import (
    ALERT_STREAM_MAXLEN, TRADE_STREAM_BATCH, TRADE_STREAM_LINGER_S, TRADE_STREAM_MAXLEN,
)
from ..core.events import AlertEvent, ErrorEvent, EventBus, PublisherStatsEvent, TicksEvent
from ..core.ticks import Tick
from .trade_batch import pack_trades

log = logging.getLogger(__name__)

DEDUPE_TTL_SECONDS = 3 * 24 * 3600   # alert ids embed the business date; 3 days covers weekends

# KEYS[1..n]: dedupe keys; KEYS[n+1]: stream ('' = none).
# ARGV[1]: channel, ARGV[2]: stream maxlen, ARGV[3]: ttl, ARGV[4..n+3]: payloads.
_DELIVER_LUA = """
local n = #KEYS - 1
local stream = KEYS[n + 1]
local sent = 0
for i = 1, n do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[3]) then
    redis.call('PUBLISH', ARGV[1], ARGV[i + 3])
    if stream ~= '' then
      redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[i + 3])
    end
    sent = sent + 1
  end
end
return sent
"""


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


class RedisPublisher:
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
        if max_pending < 1:
            raise ValueError("max_pending must be ≥ 1")
        self._url = url
        self.target = redact_url(url)
        self._password = _password_of(url)
        self.channel = channel
        self.stream = stream
        self.stream_maxlen = int(stream_maxlen)
        self.max_pending = int(max_pending)
        self.tick_channel = tick_channel
        self.tick_max_pending = int(tick_max_pending)
        self._tick_batch = max(1, int(tick_batch))
        self.trade_stream = trade_stream
        self.trade_stream_maxlen = int(trade_stream_maxlen)
        self.trade_max_pending = int(trade_max_pending)
        self._trade_linger = max(0.0, float(trade_linger))
        self.source_id = os.urandom(6).hex()      # this publisher's id in every trade entry
        self._alert_batch = max(1, int(alert_batch))
        self._bus = bus
        self._backoff_policy = BackoffPolicy(initial=backoff_initial, cap=backoff_max,
                                             floor=min(0.05, backoff_initial), jitter=0.25,
                                             healthy_after=0.0)
        self._connect_timeout = connect_timeout
        self._stats_interval = stats_interval

        self._outbox: deque[tuple[str, str]] = deque()      # (alert_id, json)
        self._inflight: list[tuple[str, str]] = []
        self._ticks: deque[Tick] = deque()
        self._trades: deque[Tick] = deque()
        self._trade_inflight: list[tuple[int, int, bytes]] = []     # (count, seq, packed)
        self._trade_seq = 0
        self._trade_hole = False          # trades dropped since the last batch: skip a seq
        self._trade_wake = asyncio.Event()
        self._wake = asyncio.Event()
        self._tick_wake = asyncio.Event()
        self._stopping = False
        self._client: aioredis.Redis | None = None
        self._script: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._use_script = True

        self.delivered = 0
        self.dropped = 0
        self.duplicates = 0
        self.batches = 0
        self.reconnects = 0
        self.ticks_sent = 0
        self.ticks_dropped = 0
        self.trades_streamed = 0
        self.trades_dropped = 0
        self.trade_batches = 0
        self.connected = False
        self.last_error = ""
        self._overflowing = False
        self._overflow_reported = False
        self._last_stats_at = 0.0

    # -- tick path (synchronous, O(1)) -----------------------------------------------------------

    def publish_alert(self, alert: AlertEvent) -> None:
        """Queue an alert; returns at once. Oldest pending alert dropped past ``max_pending``."""
        self._outbox.append((alert.alert_id, alert.to_json()))
        over = len(self._outbox) + len(self._inflight) - self.max_pending
        while over > 0 and self._outbox:
            self._outbox.popleft()
            self.dropped += 1
            self._overflowing = True
            over -= 1
        self._wake.set()

    def publish_ticks(self, ticks: Iterable[Tick]) -> None:
        """Queue ticks for ``trade_stream`` and/or ``tick_channel`` (no-op without either);
        oldest dropped past each queue's bound."""
        if self.trade_stream is not None:
            ticks = tuple(ticks)
            q = self._trades
            q.extend(ticks)
            over = len(q) - self.trade_max_pending
            if over > 0:
                for _ in range(over):
                    q.popleft()
                self.trades_dropped += over
                self._trade_hole = True
            self._trade_wake.set()
        if self.tick_channel is None:
            return
        q = self._ticks
        q.extend(ticks)
        over = len(q) - self.tick_max_pending
        if over > 0:
            for _ in range(over):
                q.popleft()
            self.ticks_dropped += over
        self._tick_wake.set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> bool:
        """Start the drain task(s). Returns whether Redis answered a first PING; when it did
        not, alerts are queued and delivered once it does (an ErrorEvent says so)."""
        if self._tasks:
            return self.connected
        self._stopping = False
        self._client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=self._connect_timeout,
            socket_timeout=max(self._connect_timeout, 5.0), health_check_interval=0,
            retry=Retry(NoBackoff(), 0),     # our drain loop retries, with its own backoff
            client_name="kis-desk-publisher",
        )
        self._script = self._client.register_script(_DELIVER_LUA)
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
        if self._inflight:      # cancelled mid-batch: keep them, in order, as pending
            self._outbox.extendleft(reversed(self._inflight))
            self._inflight = []
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

    def take_pending(self) -> list[tuple[str, str]]:
        """After :meth:`stop`: the alerts not delivered, oldest first, handed over to the
        publisher that replaces this one (a Redis switch loses none)."""
        if self._tasks:
            raise RuntimeError("take_pending() needs a stopped publisher")
        taken = list(self._outbox)
        self._outbox.clear()
        return taken

    def adopt(self, pending: Iterable[tuple[str, str]]) -> None:
        """Queue alerts (``(alert_id, json)``, from :meth:`take_pending`) ahead of new ones."""
        items = list(pending)
        if items:
            self._outbox.extendleft(reversed(items))
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._outbox) + len(self._inflight)

    def stats(self) -> PublisherStats:
        return PublisherStats(
            delivered=self.delivered, pending=self.pending, dropped=self.dropped,
            duplicates=self.duplicates, batches=self.batches, reconnects=self.reconnects,
            connected=self.connected, ticks_sent=self.ticks_sent,
            ticks_pending=len(self._ticks), ticks_dropped=self.ticks_dropped,
            target=self.target, last_error=self.last_error,
            mode="script" if self._use_script else "multi",
            trades_streamed=self.trades_streamed,
            trades_pending=len(self._trades) + sum(n for n, _, _ in self._trade_inflight),
            trades_dropped=self.trades_dropped, trade_batches=self.trade_batches)

    def stats_event(self) -> PublisherStatsEvent:
        return self.stats().event()

    # -- drain tasks -------------------------------------------------------------------------------

    async def _drain_alerts(self) -> None:
        backoff = Backoff(self._backoff_policy)
        while True:
            if not self._outbox:
                if self._stopping:
                    return
                self._report_overflow()
                self._emit_stats()
                self._wake.clear()
                if not self._outbox:
                    await self._wake.wait()
                continue
            self._report_overflow()
            n = min(self._alert_batch, len(self._outbox))
            self._inflight = [self._outbox.popleft() for _ in range(n)]
            try:
                sent = await self._send_alerts(self._inflight)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                # Nothing of this batch was applied (script/transaction is atomic) or it was
                # applied and a retry will be skipped by the dedupe keys: retry it first.
                self._outbox.extendleft(reversed(self._inflight))
                self._inflight = []
                self._trim_after_requeue()
                self._set_connected(False, exc)
                # Keep retrying while stopping too: stop() bounds that with its flush_timeout.
                await asyncio.sleep(backoff.next_delay())
                continue
            # All n are on the server now: `sent` just now, the rest by an earlier attempt whose
            # reply was lost (or the same alert_id queued twice) and skipped by the dedupe key.
            self.delivered += n
            self.duplicates += n - sent
            self.batches += 1
            self._inflight = []
            backoff.reset()
            if not self.connected:
                self._set_connected(True)

    async def _send_alerts(self, batch: list[tuple[str, str]]) -> int:
        assert self._client is not None
        if self._use_script:
            keys = [f"{self.channel}:sent:{aid}" for aid, _ in batch] + [self.stream or ""]
            args = [self.channel, self.stream_maxlen, DEDUPE_TTL_SECONDS] + [p for _, p in batch]
            try:
                return int(await self._script(keys=keys, args=args))
            except NoScriptError:   # AsyncScript reloads once itself; still missing: retry later
                raise
            except ResponseError as exc:
                if not _scripts_refused(exc):
                    raise
                log.warning("Redis refuses Lua scripts (%s); falling back to MULTI/EXEC "
                            "(at-least-once; dedupe by alert_id)", exc)
                self._use_script = False
        async with self._client.pipeline(transaction=True) as pipe:
            for _, payload in batch:
                pipe.publish(self.channel, payload)
                if self.stream:
                    pipe.xadd(self.stream, {"alert": payload}, maxlen=self.stream_maxlen,
                              approximate=True)
            await pipe.execute()
        return len(batch)

    def _trim_after_requeue(self) -> None:
        over = len(self._outbox) - self.max_pending
        while over > 0:
            self._outbox.popleft()
            self.dropped += 1
            self._overflowing = True
            over -= 1

    async def _drain_ticks(self) -> None:
        assert self.tick_channel is not None
        backoff = Backoff(self._backoff_policy)
        while True:
            if not self._ticks:
                if self._stopping:
                    return
                self._tick_wake.clear()
                if not self._ticks:
                    await self._tick_wake.wait()
                continue
            assert self._client is not None
            messages: list[tuple[int, str]] = []
            q = self._ticks
            while q and len(messages) < 20:
                n = min(self._tick_batch, len(q))
                chunk = tuple(q.popleft() for _ in range(n))
                messages.append((n, TicksEvent(chunk).to_json()))
                await asyncio.sleep(0)   # serialising is CPU work: let socket reads interleave
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for _, payload in messages:
                        pipe.publish(self.tick_channel, payload)
                    await pipe.execute()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                # Best effort: a pipeline may have been partly applied; never resend ticks.
                self.ticks_dropped += sum(n for n, _ in messages)
                self.last_error = self._scrub(exc)
                if self._stopping:
                    return
                await asyncio.sleep(backoff.next_delay())
                continue
            self.ticks_sent += sum(n for n, _ in messages)
            backoff.reset()

    async def _drain_trades(self) -> None:
        """Packed batches to the trade stream; a failed pipeline is resent with the same seqs."""
        assert self.trade_stream is not None
        backoff = Backoff(self._backoff_policy)
        q = self._trades
        while True:
            if not self._trade_inflight:
                if not q:
                    if self._stopping:
                        return
                    self._trade_wake.clear()
                    if not q:
                        await self._trade_wake.wait()
                    continue
                if len(q) < self._tick_batch and self._trade_linger and not self._stopping:
                    await asyncio.sleep(self._trade_linger)    # coalesce: ≤ 1 entry per linger
                while q and len(self._trade_inflight) < 20:
                    n = min(self._tick_batch, len(q))
                    chunk = [q.popleft() for _ in range(n)]
                    self._trade_seq += 2 if self._trade_hole else 1
                    self._trade_hole = False
                    self._trade_inflight.append((n, self._trade_seq, pack_trades(chunk)))
                    await asyncio.sleep(0)   # packing is CPU work: let socket reads interleave
            assert self._client is not None
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for n, seq, packed in self._trade_inflight:
                        pipe.xadd(self.trade_stream,
                                  {"src": self.source_id, "seq": seq, "n": n, "t": packed},
                                  maxlen=self.trade_stream_maxlen, approximate=True)
                    await pipe.execute()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                # Part of the pipeline may be on the server: resend all of it (same seqs), and
                # readers skip what they already have. stop() bounds this with flush_timeout.
                self.last_error = self._scrub(exc)
                await asyncio.sleep(backoff.next_delay())
                continue
            self.trades_streamed += sum(n for n, _, _ in self._trade_inflight)
            self.trade_batches += len(self._trade_inflight)
            self._trade_inflight = []
            backoff.reset()

    # -- health and events -------------------------------------------------------------------------

    def _scrub(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text.replace(self._url, self.target)

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

    def _report_overflow(self) -> None:
        if self._overflowing and not self._overflow_reported:
            self._overflow_reported = True
            log.warning("redis publisher queue full (%d): dropped %d oldest alert(s) so far",
                        self.max_pending, self.dropped)
            if self._bus is not None:
                self._bus.publish(ErrorEvent(
                    "redis", f"Redis alert queue full ({self.max_pending} waiting): oldest "
                    f"alerts dropped, {self.dropped} so far", code="redis.overflow",
                    params={"dropped": self.dropped}))
            self._emit_stats(force=True)
        elif self._overflowing and not self._outbox:
            self._overflowing = self._overflow_reported = False   # episode over

    def _emit_stats(self, force: bool = False) -> None:
        if self._bus is None:
            return
        now = time.monotonic()
        if not force and now - self._last_stats_at < self._stats_interval:
            return
        self._last_stats_at = now
        self._bus.publish(self.stats_event())


def _password_of(url: str) -> str:
    try:
        pw = urlsplit(url).password
    except ValueError:
        return ""
    return unquote(pw) if pw else ""


def _scripts_refused(exc: ResponseError) -> bool:
    text = str(exc).lower()
    return ("unknown command" in text or "noperm" in text or "no permissions" in text
            or "disabled" in text)


__all__ = ["DEDUPE_TTL_SECONDS", "PublisherStats", "RedisPublisher"]
