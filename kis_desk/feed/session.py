"""One KIS WebSocket session per app key: approval → connect → subscribe → read, forever.

cryptofeed's connection handler is the model: one ``async with`` per connection, a watcher
that closes the socket when nothing arrives for ``silence_timeout`` seconds, exponential
back-off with jitter that resets after a healthy period. KIS specifics (kis-protocol.md):

* no library pings (KIS drops clients that send unsolicited control frames, §4); PINGPONG is
  answered at once by echoing the exact text;
* frames are received as bytes and decoded leniently: invalid UTF-8 never ends the session
  (§5.3), and ``max_size`` is large (§12: "1009 text message too big");
* ≤41 registrations on the venue's trade TR; wanted, acknowledged and refused codes and what
  each control reply means for them are ``subscriptions.py`` (this module is the loop);
* OPSP8996 (app key in use) waits ``in_use_wait`` (≥ 20 s by default, §3.3) before retrying;
  OPSP0011 (invalid approval) fetches a new approval key once, then backs off;
* closing is abrupt on a stall (KIS does not answer close frames, §4 "Close handshake").
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ..aio import cancel_and_wait
from ..config import Environment
from ..core.frame_ticks import FRAME_TICKS
from ..core.ticks import Tick, ticks_from_records
from ..protocol.codec import decode_message
from ..protocol.messages import ControlReply, DataFrame, PingPong, ProtocolError
from ..core.backoff import Backoff, jittered
from .rest import CredentialError, KisError, KisRestClient
from .session_types import (  # noqa: F401  (re-exported: the session's vocabulary)
    BACKOFF, CONNECTING, FAILED, LIVE, STALLED, STOPPED, AppKeyInUse, InvalidApproval,
    SessionConfig,
)
from .subscriptions import Subscriptions

log = logging.getLogger(__name__)


class SessionListener:
    """Callbacks a session makes, synchronously on the loop. Override what you need."""

    def on_ticks(self, session: FeedSession, ticks: list[Tick]) -> None: ...
    def on_subscribed(self, session: FeedSession, code: str) -> None: ...
    def on_unsubscribed(self, session: FeedSession, code: str) -> None: ...
    def on_rejected(self, session: FeedSession, code: str, reply: ControlReply) -> None: ...
    def on_tr_refused(self, session: FeedSession, tr_id: str, reply: ControlReply) -> None: ...
    def on_state(self, session: FeedSession, state: str, detail: str,
                 retry_in: float | None) -> None: ...
    def on_protocol_error(self, session: FeedSession, reason: str, excerpt: str) -> None: ...
    def on_problem(self, session: FeedSession, message: str, fatal: bool) -> None: ...
    def on_disconnected(self, session: FeedSession) -> None: ...


class FeedSession(Subscriptions):
    """A self-healing WebSocket session for one app key. Start it once; it runs until stopped."""

    def __init__(self, env: Environment, rest: KisRestClient, *, label: str | None = None,
                 config: SessionConfig | None = None, listener: SessionListener | None = None,
                 codes: Iterable[str] = (), rng: random.Random | None = None,
                 busy_phase: Callable[[], bool] | None = None) -> None:
        """``busy_phase``: True while the market is in continuous trading (the watchdog may then
        use the observed trade rate); None = never (only ``silence_timeout`` applies)."""
        self.env = env
        self.busy_phase = busy_phase
        self._data_times: deque[float] = deque(maxlen=64)
        self.rest = rest
        self.label = label or rest.label
        self.config = config or SessionConfig()
        self.listener = listener or SessionListener()
        self._rng = rng or random.Random()
        self.backoff = Backoff(self.config.backoff, self._rng)
        self._init_subscriptions(codes)
        self.state = STOPPED
        self._keys: dict[str, tuple[str, str]] = {}
        self._ws: websockets.ClientConnection | None = None
        self._outbox: asyncio.Queue[tuple[str, bool, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._stopping = False
        self._last_frame = 0.0
        self._stalled = False
        self._stall_limit = self.config.silence_timeout
        self._approval_refreshed = False
        self._approval: str | None = None
        self._connected_at: float | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        # counters
        self.frames = 0
        self.received = 0
        self.protocol_errors = 0
        self.pingpongs = 0
        self.connects = 0
        self.reconnects = 0
        self.stalls = 0
        self.oversized_closes = 0
        self.in_use_refusals = 0
        self.invalid_approvals = 0
        self.credential_failures = 0
        self.last_resubscribe_seconds: float | None = None   # connect → every wanted code acked
        self.stall_detect_seconds: float | None = None       # longest silence before a stall call

    # -- public API ----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None

    def silent_for(self) -> float:
        """Seconds since the last frame of any kind (0 when not connected)."""
        return time.monotonic() - self._last_frame if self._ws is not None else 0.0

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"feed-{self.label}")

    async def stop(self) -> None:
        self._stopping = True
        self._stop.set()
        for t in self._timers:
            t.cancel()
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), self.config.close_timeout + 0.5)
            except Exception:  # KIS may never answer the close frame
                ws.transport.abort()
        await cancel_and_wait([self._task])
        self._task = None
        self._set_state(STOPPED, "stopped")

    def stats(self) -> dict[str, int | float | None]:
        return {
            "frames": self.frames, "received": self.received,
            "protocol_errors": self.protocol_errors, "pingpongs": self.pingpongs,
            "connects": self.connects, "reconnects": self.reconnects, "stalls": self.stalls,
            "oversized_closes": self.oversized_closes, "in_use_refusals": self.in_use_refusals,
            "invalid_approvals": self.invalid_approvals,
            "credential_failures": self.credential_failures,
            "last_resubscribe_seconds": self.last_resubscribe_seconds,
            "stall_detect_seconds": self.stall_detect_seconds,
        }

    def stall_limit(self) -> float:
        """Seconds of silence after which this socket counts as stalled, now."""
        cfg = self.config
        times = self._data_times
        if self.busy_phase is None or len(times) < cfg.stall_min_frames or not self.busy_phase():
            return cfg.silence_timeout
        usual_gap = (times[-1] - times[0]) / (len(times) - 1)
        return min(cfg.silence_timeout, max(cfg.stall_floor, cfg.stall_factor * usual_gap))

    # -- internals -----------------------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "", retry_in: float | None = None) -> None:
        self.state = state
        try:
            self.listener.on_state(self, state, detail, retry_in)
        except Exception:
            log.exception("%s: state listener failed", self.label)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        first = True
        while not self._stopping:
            wait: float | None = None
            detail = ""
            failed = False
            try:
                self._set_state(CONNECTING, "connecting" if first else "reconnecting")
                first = False
                approval = await self.rest.approval_key()
                await self._connect_and_read(approval)
                detail = "connection lost"
            except AppKeyInUse:
                self.in_use_refusals += 1
                wait = jittered(self.config.in_use_wait, self._rng, 0.1)
                detail = "app key in use by another session (OPSP8996); waiting"
            except InvalidApproval:
                self.invalid_approvals += 1
                if not self._approval_refreshed:
                    self._approval_refreshed = True
                    self.rest.invalidate_approval()
                    detail = "approval key refused (OPSP0011); fetching a new one"
                else:
                    detail = "approval key refused again (OPSP0011); backing off"
            except CredentialError as exc:
                self.credential_failures += 1
                wait = self.config.credential_wait
                detail = str(exc)
                failed = True
            except KisError as exc:
                detail = f"approval request failed: {exc}"
            except ConnectionClosed as exc:
                detail = self._describe_close(exc)
            except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
                detail = f"cannot connect: {type(exc).__name__}: {exc}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the session die
                log.exception("%s: unexpected error", self.label)
                detail = f"unexpected error: {type(exc).__name__}: {exc}"
            finally:
                if self._ws is not None or self._connected_at is not None:
                    self._after_disconnect()
            if self._stopping:
                break
            if failed:   # wrong app key/secret: say so once per attempt, retry rarely
                self.listener.on_problem(self, detail, False)
                self._set_state(FAILED, detail, wait)
                await self._sleep(wait or self.config.credential_wait)
                continue
            if wait is None:
                wait = self.backoff.next_delay()
            log.info("%s: %s; retrying in %.1f s", self.label, detail, wait)
            self._set_state(BACKOFF, detail, wait)
            await self._sleep(wait)

    def _describe_close(self, exc: ConnectionClosed) -> str:
        if self._stalled:
            return f"no data for {self._stall_limit:g} s; reconnecting"
        sent = exc.sent.code if exc.sent is not None else None
        if sent == 1009:
            self.oversized_closes += 1
            return "oversized frame closed the connection"
        rcvd = exc.rcvd.code if exc.rcvd is not None else None
        return f"connection closed (received {rcvd}, sent {sent})"

    def _after_disconnect(self) -> None:
        now = time.monotonic()
        self.backoff.disconnected(now)
        self._ws = None
        self._connected_at = None
        self.acked.clear()
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        try:
            self.listener.on_disconnected(self)
        except Exception:
            log.exception("%s: disconnect listener failed", self.label)

    async def _connect_and_read(self, approval: str) -> None:
        cfg = self.config
        self._approval = approval
        async with websockets.connect(
            self.env.ws_url, ping_interval=None, ping_timeout=None, max_size=cfg.max_size,
            max_queue=cfg.max_queue, compression=None, open_timeout=cfg.open_timeout,
            close_timeout=cfg.close_timeout,
        ) as ws:
            now = time.monotonic()
            self._ws = ws
            self._connected_at = now
            self._last_frame = now
            self._stalled = False
            self._data_times.clear()
            self.connects += 1
            if self.connects > 1:
                self.reconnects += 1
            self.backoff.connected(now)
            self._keys.clear()
            self._queue_all()
            if self.wanted:
                self._set_state(CONNECTING, f"subscribing {len(self.wanted)} symbols")
            else:
                self._set_state(LIVE, "connected, no symbols")
            loop = asyncio.get_running_loop()
            sender = loop.create_task(self._send_loop(ws, approval))
            watchdog = loop.create_task(self._watchdog(ws))
            try:
                await self._read_loop(ws)
            finally:
                sender.cancel()
                watchdog.cancel()
                self._ws = None

    async def _watchdog(self, ws: websockets.ClientConnection) -> None:
        cfg = self.config
        step = max(0.05, min(1.0, min(cfg.silence_timeout, cfg.stall_floor) / 8))
        while True:
            await asyncio.sleep(step)
            idle = time.monotonic() - self._last_frame
            limit = self.stall_limit()
            if idle >= limit:
                self.stalls += 1
                self._stalled = True
                self._stall_limit = limit
                self.stall_detect_seconds = max(self.stall_detect_seconds or 0.0, idle)
                log.warning("%s: no frame for %.1f s (limit %.1f s); dropping the connection",
                            self.label, idle, limit)
                self._set_state(STALLED, f"no data for {idle:.0f} s")
                ws.transport.abort()   # abrupt: KIS does not answer close frames
                return

    async def _read_loop(self, ws: websockets.ClientConnection) -> None:
        recv = ws.recv
        keys = self._keys
        monotonic, wall = time.monotonic, time.time
        data_times = self._data_times
        fast = FRAME_TICKS        # compiled frame → ticks (None: not built); None back = not handled
        while True:
            raw = await recv(decode=False)
            self._last_frame = monotonic()
            if fast is not None:
                ticks = fast(raw, self.tr_id, wall(), self.venue)
                if ticks is not None:
                    self.frames += 1
                    data_times.append(self._last_frame)
                    self._deliver(ticks)
                    continue
            msg = decode_message(raw, keys)
            cls = msg.__class__
            if cls is DataFrame:
                self.frames += 1
                data_times.append(self._last_frame)
                if msg.errors:
                    for e in msg.errors:
                        self._protocol_error(e, "")
                if msg.records and msg.tr_id == self.tr_id:    # frames of a TR left: dropped
                    self._deliver(ticks_from_records(msg.records, wall(), venue=self.venue))
            elif cls is PingPong:
                self.pingpongs += 1
                # echo the exact text back at once (§4)
                await ws.send(raw, text=True) if isinstance(raw, bytes) else await ws.send(raw)
            elif cls is ControlReply:
                self._on_control(ws, msg)
            else:
                assert isinstance(msg, ProtocolError)
                self._protocol_error(msg.reason, msg.excerpt)

    def _deliver(self, ticks: list[Tick]) -> None:
        """A data frame's trades to the listener, whichever decoder made them."""
        self.received += len(ticks)
        try:
            self.listener.on_ticks(self, ticks)
        except Exception:   # a consumer bug must not cost the connection
            log.exception("%s: tick listener failed", self.label)

    def _protocol_error(self, reason: str, excerpt: str) -> None:
        self.protocol_errors += 1
        try:
            self.listener.on_protocol_error(self, reason, excerpt)
        except Exception:
            log.exception("%s: protocol-error listener failed", self.label)
