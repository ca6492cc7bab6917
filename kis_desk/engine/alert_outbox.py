"""The publisher's alert outbox: every alert to Redis in order, none twice, none lost while it is down.

Why its own module: exactly-once delivery is the publisher's one hard guarantee and has its
own state (the outbox, the batch in flight, the overflow episode) and its own Lua script; the
trades (:mod:`.trade_outbox`) and the connection (:mod:`.publisher`) are separate jobs.

* **In order, none twice.** Each batch goes to Redis as one Lua script (atomic on the server).
  For each alert the script first does ``SET <channel>:sent:<alert_id> 1 NX EX 259200``; only
  when that key is new does it ``PUBLISH`` the JSON to the channel and (when ``stream`` is set)
  ``XADD`` it to the stream (``MAXLEN ~ stream_maxlen``, field ``alert``). A batch is therefore
  all-or-nothing, and a batch retried after an ambiguous failure (connection lost after the
  script ran, before the reply arrived) is skipped by the server instead of being delivered
  twice (counted as ``duplicates``; ``delivered`` counts alerts confirmed on the server either
  way). Not-yet-sent alerts wait in the outbox and go out, in order, when Redis returns.
  Pub/sub subscribers that were themselves disconnected miss messages (Redis pub/sub
  semantics); consumers that must not miss any should read the stream.
  If the server refuses scripts (``EVAL`` disabled/ACL), the publisher falls back to
  ``MULTI``/``EXEC`` batches, which are at-least-once under that ambiguous failure (consumers
  dedupe by ``alert_id``); ``stats().mode`` says which is in use.
* **Overflow.** At most ``max_pending`` alerts wait; past that the **oldest** pending alert is
  dropped (a live desk cares most about the newest moves; every alert is also in the UI/log),
  counted in ``dropped`` and reported once per overflow episode with an ``ErrorEvent`` and a
  ``PublisherStatsEvent``.

A mixin of :class:`~.publisher.RedisPublisher`: it uses the publisher's client, script,
backoff policy, ``_stopping`` and health reporting (``_set_connected``, ``_emit_stats``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..core.backoff import Backoff
from ..core.events import AlertEvent, ErrorEvent
from .redis_link import scripts_refused

log = logging.getLogger("kis_desk.engine.publisher")

DEDUPE_TTL_SECONDS = 3 * 24 * 3600   # alert ids embed the business date; 3 days covers weekends

# KEYS[1..n]: dedupe keys; KEYS[n+1]: stream ('' = none).
# ARGV[1]: channel, ARGV[2]: stream maxlen, ARGV[3]: ttl, ARGV[4..n+3]: payloads.
DELIVER_LUA = """
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


class AlertOutbox:
    """publish_alert → the outbox → batches of the script (see the module docstring)."""

    def _init_alerts(self, channel: str, stream: str | None, stream_maxlen: int, max_pending: int,
                     alert_batch: int) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be ≥ 1")
        self.channel = channel
        self.stream = stream
        self.stream_maxlen = int(stream_maxlen)
        self.max_pending = int(max_pending)
        self._alert_batch = max(1, int(alert_batch))
        self._outbox: deque[tuple[str, str]] = deque()      # (alert_id, json)
        self._inflight: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        self._script: Any = None
        self._use_script = True
        self.delivered = 0
        self.dropped = 0
        self.duplicates = 0
        self.batches = 0
        self._overflowing = False
        self._overflow_reported = False

    def publish_alert(self, alert: AlertEvent) -> None:
        """Queue an alert; returns at once. Oldest pending alert dropped past ``max_pending``."""
        self._outbox.append((alert.alert_id, alert.to_json()))
        self._trim_outbox()
        self._wake.set()

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
                self._requeue_inflight()
                self._trim_outbox()
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
                if not scripts_refused(exc):
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

    def _requeue_inflight(self) -> None:
        """The batch in flight goes back to the front of the outbox, in order."""
        self._outbox.extendleft(reversed(self._inflight))
        self._inflight = []

    def _trim_outbox(self) -> None:
        over = len(self._outbox) + len(self._inflight) - self.max_pending
        while over > 0 and self._outbox:
            self._outbox.popleft()
            self.dropped += 1
            self._overflowing = True
            over -= 1

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


__all__ = ["AlertOutbox", "DEDUPE_TTL_SECONDS", "DELIVER_LUA"]
