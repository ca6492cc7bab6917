"""The publisher's trades: the packed trade stream attached desktops read, and the tick channel.

Why its own module: trades have their own guarantees, separate from the alerts'
(:mod:`.alert_outbox`): far more of them, packed, and durable only within the stream's
retention — a trade that misses Redis is in the database anyway.

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
* **Ticks** (``tick_channel``, pub/sub for existing subscribers): best effort. Each drain
  publishes one ``TicksEvent`` JSON per batch (≤ ``tick_batch`` ticks) with a plain pipeline.
  When the queue is full or a batch fails, ticks are dropped and counted (``ticks_dropped``) —
  they are in the database anyway.

A mixin of :class:`~.publisher.RedisPublisher` (its client, backoff policy, ``_stopping``,
``last_error`` and ``_scrub``).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Iterable

from redis.exceptions import RedisError

from ..core.backoff import Backoff
from ..core.events import TicksEvent
from ..core.ticks import Tick
from .trade_batch import pack_trades


class TradeOutbox:
    """publish_ticks → the trade stream and/or the tick channel (see the module docstring)."""

    def _init_trades(self, tick_channel: str | None, tick_max_pending: int, tick_batch: int,
                     trade_stream: str | None, trade_stream_maxlen: int, trade_max_pending: int,
                     trade_linger: float) -> None:
        self.tick_channel = tick_channel
        self.tick_max_pending = int(tick_max_pending)
        self._tick_batch = max(1, int(tick_batch))
        self.trade_stream = trade_stream
        self.trade_stream_maxlen = int(trade_stream_maxlen)
        self.trade_max_pending = int(trade_max_pending)
        self._trade_linger = max(0.0, float(trade_linger))
        self.source_id = os.urandom(6).hex()      # this publisher's id in every trade entry
        self._ticks: deque[Tick] = deque()
        self._trades: deque[Tick] = deque()
        self._trade_inflight: list[tuple[int, int, bytes]] = []     # (count, seq, packed)
        self._trade_seq = 0
        self._trade_hole = False          # trades dropped since the last batch: skip a seq
        self._trade_wake = asyncio.Event()
        self._tick_wake = asyncio.Event()
        self.ticks_sent = 0
        self.ticks_dropped = 0
        self.trades_streamed = 0
        self.trades_dropped = 0
        self.trade_batches = 0

    def publish_ticks(self, ticks: Iterable[Tick]) -> None:
        """Queue ticks for ``trade_stream`` and/or ``tick_channel`` (no-op without either);
        oldest dropped past each queue's bound."""
        if self.trade_stream is not None:
            ticks = tuple(ticks)
            over = _extend_bounded(self._trades, ticks, self.trade_max_pending)
            if over:
                self.trades_dropped += over
                self._trade_hole = True
            self._trade_wake.set()
        if self.tick_channel is None:
            return
        self.ticks_dropped += _extend_bounded(self._ticks, ticks, self.tick_max_pending)
        self._tick_wake.set()

    @property
    def trades_pending(self) -> int:
        return len(self._trades) + sum(n for n, _, _ in self._trade_inflight)

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


def _extend_bounded(q: deque[Tick], items: Iterable[Tick], bound: int) -> int:
    """Append ``items`` to ``q``, then drop its oldest past ``bound``; returns how many went."""
    q.extend(items)
    over = len(q) - bound
    for _ in range(over):
        q.popleft()
    return max(0, over)


__all__ = ["TradeOutbox"]
