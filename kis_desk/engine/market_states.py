"""Halts and VI as the engine knows them: the feed's watcher wired to a collector, and Redis.

Why a module of its own: ``feed.market_state.MarketStateWatch`` decides which symbol is halted
or in a VI auction; something has to give it the collector's trades (live and polled ones from
the bus: a back-filled trade is old news), its watchlist, the feed's REST clients for its
probes (each probe goes through the rate limiter of one key, the same key for a code every
time) and the calendar, and carry its :class:`MarketStateEvent` s to where they are shown:
the bus (this desktop) and Redis (attached desktops, ``RemoteEngine``).

Redis, per alert channel ``C``: the hash ``C:market_state`` holds each symbol's current
not-normal state (code → the event's JSON) and every change is also ``PUBLISH``-ed on the
channel ``C:market_state``. An attached desktop subscribes, then reads the hash (so a halt that
began before it attached shows too) and follows the messages (:func:`follow_market_states`).
The hash expires ``STATE_TTL_S`` after the last collector refreshed it (every
``REFRESH_S``), so a collector that died leaves no state behind for long. Best effort: a lost
message is corrected by the next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..core.backoff import Backoff, BackoffPolicy
from ..core.events import MarketStateEvent, TicksEvent, event_from_json
from ..core.ticks import SOURCE_POLL, SOURCE_WS
from ..protocol.records import KST

log = logging.getLogger(__name__)

REFRESH_S = 30.0
STATE_TTL_S = 120
_LIVE = frozenset({SOURCE_WS, SOURCE_POLL})


def state_key(channel: str) -> str:
    """The Redis hash and pub/sub channel of the market states next to alert channel ``channel``."""
    return f"{channel}:market_state"


class MarketStates:
    """A collector's market-state service (see module). ``current()`` is what EngineHandle's
    ``market_states()`` returns."""

    def __init__(self, collector: Any) -> None:
        from ..feed.market_state import MarketStateWatch

        from .collector_config import _calendar_continuous

        self._c = collector
        clock = collector.clock
        self.watch = MarketStateWatch(
            self._probe, self._publish, clock=clock, details=self._details,
            active=lambda: self._always_open() or _calendar_continuous(clock(), collector.venue))
        self.relay: MarketStateRelay | None = None
        self._off: Callable[[], None] | None = None

    def start(self, codes: list[str]) -> None:
        cfg = self._c.config
        if cfg.redis_url:
            self.relay = MarketStateRelay(cfg.redis_url, cfg.redis_channel, self.watch.events,
                                          forget=codes)
            self.relay.start()
        self.watch.set_codes(codes)
        self._off = self._c.bus.subscribe(TicksEvent, self._on_ticks)
        self.watch.start()

    async def stop(self) -> None:
        if self._off is not None:
            self._off()
            self._off = None
        await self.watch.stop()
        if self.relay is not None:
            await self.relay.stop()

    def set_codes(self, codes: list[str]) -> None:
        self.watch.set_codes(codes)

    async def use_redis(self, url: str | None, channel: str) -> None:
        """Settings changed Redis while running: the states go to the new one (or nowhere)."""
        old = self.relay
        if old is not None and (old.url, old.channel) == (url, channel):
            return
        self.relay = None
        if old is not None:
            await old.stop()
        if url:
            self.relay = MarketStateRelay(url, channel, self.watch.events)
            self.relay.start()

    def current(self) -> dict[str, MarketStateEvent]:
        return self.watch.events()

    def _always_open(self) -> bool:
        feed = self._c.feed
        return feed is None or bool(feed.config.always_open)

    def _on_ticks(self, event: TicksEvent) -> None:
        ticks = event.ticks          # one read, poll or back-fill page: one source per event
        if ticks and ticks[0].source in _LIVE:
            self.watch.on_ticks(ticks)

    def _rest(self) -> tuple[Any, Any]:
        feed = self._c.feed
        if feed is None or not feed.rest:
            raise RuntimeError("no feed running")
        return feed, feed.rest

    async def _probe(self, code: str) -> Any:
        feed, rest = self._rest()
        return await rest[zlib.crc32(code.encode()) % len(rest)].inquire_price(code, feed.config.market)

    async def _details(self, code: str) -> Any:
        _, rest = self._rest()
        day = self._c.clock().strftime("%Y%m%d")
        return await rest[zlib.crc32(code.encode()) % len(rest)].inquire_vi_status(code, day)

    def _publish(self, event: MarketStateEvent) -> None:
        self._c.bus.publish(event)
        if self.relay is not None:
            self.relay.publish(event)


class MarketStateRelay:
    """Collector → Redis: the hash of current states and one message per change (see module).
    ``current`` gives the states to refresh; ``forget`` are codes whose old entries (an earlier
    run's) are removed at start."""

    def __init__(self, url: str, channel: str, current: Callable[[], dict[str, MarketStateEvent]],
                 forget: list[str] | None = None) -> None:
        self.url = url
        self.channel = channel
        self.key = state_key(channel)
        self._current = current
        self._forget = list(forget or ())
        self._queue: list[MarketStateEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    def publish(self, event: MarketStateEvent) -> None:
        self._queue.append(event)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="market-state-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        backoff = Backoff(BackoffPolicy(initial=0.5, cap=15.0))
        client = aioredis.from_url(self.url, socket_connect_timeout=3.0, socket_timeout=5.0)
        try:
            while True:
                try:
                    await self._send(client)
                    backoff.reset()
                    try:
                        await asyncio.wait_for(self._wake.wait(), REFRESH_S)
                    except asyncio.TimeoutError:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:          # Redis away: the refresh catches up later
                    log.debug("market-state relay: %s", exc)
                    await asyncio.sleep(backoff.next_delay())
        finally:
            await client.aclose()

    async def _send(self, client: Any) -> None:
        self._wake.clear()
        changes, self._queue = self._queue, []
        try:
            async with client.pipeline(transaction=False) as pipe:
                if self._forget:
                    pipe.hdel(self.key, *self._forget)
                for code, event in self._current().items():       # the refresh
                    pipe.hset(self.key, code, event.to_json())
                for event in changes:
                    if not event.state:
                        pipe.hdel(self.key, event.stock_code)
                    pipe.publish(self.key, event.to_json())
                pipe.expire(self.key, STATE_TTL_S)
                await pipe.execute()
        except BaseException:
            self._queue[:0] = changes                # sent again with the next try
            raise
        self._forget = []
        self.sent += len(changes)


async def follow_market_states(url: str, channel: str,
                               deliver: Callable[[MarketStateEvent], None]) -> None:
    """Attached desktop: subscribe to ``channel``'s market-state messages, read the current
    states, then deliver every change; reconnects (and reads the states again) with backoff.
    Only changes are delivered; a state that ended while the connection was down ends with
    the next reading of the hash."""
    import redis.asyncio as aioredis

    key = state_key(channel)
    known: dict[str, str] = {}

    def take(event: MarketStateEvent) -> None:
        if known.get(event.stock_code, "") == event.state:
            return
        if event.state:
            known[event.stock_code] = event.state
        else:
            known.pop(event.stock_code, None)
        deliver(event)

    backoff = Backoff(BackoffPolicy(initial=0.5, cap=15.0))
    while True:
        client = aioredis.from_url(url, socket_connect_timeout=3.0)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(key)
            current = [e for e in map(_decode, (await client.hgetall(key)).values()) if e is not None]
            held = {e.stock_code for e in current}
            for code in [c for c in known if c not in held]:
                take(MarketStateEvent(code, "", datetime.now(KST), "probe"))
            for event in current:
                take(event)
            backoff.reset()
            async for message in pubsub.listen():
                if message.get("type") == "message" and (event := _decode(message["data"])) is not None:
                    take(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("market states from Redis: %s", exc)
            await asyncio.sleep(backoff.next_delay())
        finally:
            try:
                await pubsub.aclose()
                await client.aclose()
            except Exception:
                pass


def _decode(data: bytes | str) -> MarketStateEvent | None:
    try:
        event = event_from_json(data if isinstance(data, str) else data.decode())
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        log.warning("ignoring an undecodable market-state message: %s", exc)
        return None
    return event if isinstance(event, MarketStateEvent) else None


__all__ = ["MarketStateRelay", "MarketStates", "follow_market_states", "state_key"]
