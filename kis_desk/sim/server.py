"""The simulator's servers: KIS-like WebSocket (``websockets``) and REST (``aiohttp.web``) on loopback.

One asyncio loop runs everything: a market task generating trades every ``tick_interval``,
a housekeeping task (PINGPONG, pong timeouts, stall expiry, scheduled jumps), one sender task
per WebSocket session draining a bounded queue (so a slow client back-pressures only itself and
is dropped, counted, when its queue overflows), and the REST handlers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import secrets
import string
import time
import uuid
from collections import deque
from datetime import datetime
from typing import Any

from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..aio import cancel_and_wait
from ..config import is_valid_stock_code
from ..market.ticks import tick_size
from ..protocol.codec import build_control_reply, build_pingpong
from ..protocol.records import KST
from .config import SimConfig
from .market import TR_TRADES, Market, SimTrade, pct2, sign_code

log = logging.getLogger(__name__)

#: TRs the simulator accepts registrations for. H0STCNT0 streams trades and H0STASP0 a 62-field
#: book after each tick with trades; the others are acknowledged (counting against the 41) and
#: stay silent.
TR_BOOK = "H0STASP0"
ENCRYPTED_TRS = frozenset({"H0STCNI0", "H0STCNI9"})
KNOWN_TRS = frozenset({"H0STCNT0", "H0STASP0", "H0UNCNT0", "H0NXCNT0", "H0STANC0", "H0UNASP0",
                       "H0NXASP0", "H0STMBC0", "H0STOUP0"}) | ENCRYPTED_TRS

OK_MSG = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다."}
_LOWER = string.ascii_lowercase
_HEX = "0123456789abcdef"

# queue item kinds
_TEXT, _RAW_TEXT, _DATA = 0, 1, 2


class SimConnection(ServerConnection):
    """Records unsolicited PONG control frames: KIS clients may answer PINGPONG that way."""

    sim_session: _Session | None = None

    def acknowledge_pings(self, data: bytes) -> None:
        session = self.sim_session
        if session is not None:
            session.on_pong()
        super().acknowledge_pings(data)


class _Session:
    """One WebSocket connection and its registrations."""

    def __init__(self, sim: Simulator, ws: SimConnection, number: int) -> None:
        self.sim = sim
        self.ws = ws
        self.label = f"s{number}"
        self.app_key: str | None = None
        self.subs: dict[tuple[str, str], None] = {}
        self.queue: deque[tuple] = deque()
        self.wake = asyncio.Event()
        self.last_send = sim.loop_time()
        self.ping_sent_at: float | None = None
        self.pings_sent = 0
        self.pongs = 0
        self.closed = False
        self.aborted_reason = ""
        self.sent: dict[str, int] = {}
        self.sent_ranges: dict[str, list[tuple[int, int]]] = {}
        self.frames_sent = 0

    # -- queue --------------------------------------------------------------------------------
    def enqueue(self, item: tuple) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.sim.config.send_queue_limit:
            self.sim.stats["overflow_drops"] += 1
            self.abort("send queue overflow (slow client)")
            return
        self.queue.append(item)
        self.wake.set()

    def send_text(self, text: str) -> None:
        self.enqueue((_TEXT, text))

    def on_pong(self) -> None:
        self.pongs += 1
        self.ping_sent_at = None

    def abort(self, reason: str) -> None:
        """Drop the TCP connection without a close frame (what KIS does)."""
        if self.closed:
            return
        self.closed = True
        self.aborted_reason = reason
        self.sim.stats["aborted"] += 1
        self.queue.clear()
        self.wake.set()
        transport = self.ws.transport
        if transport is not None:
            transport.abort()
        self.sim._forget(self, abrupt=True)


class Faults:
    """Run-time fault switches (demo menu, tests). All methods are synchronous and immediate."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self.stalled_until: float | None = None
        self.reject_until: float | None = None
        self.reject_keys: dict[str, float] = {}      # app key -> until (per-key OPSP8996)
        self.rest_slow_until: float | None = None
        self.rest_delay = 0.0
        self.rest_fail_until: float | None = None
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self.counts: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    @staticmethod
    def _until(now: float, seconds: float | None) -> float:
        return math.inf if seconds is None else now + seconds

    # -- WebSocket ------------------------------------------------------------------------------
    def drop_all(self) -> int:
        """Abort every socket abruptly (no close frame). Returns how many were dropped."""
        self._count("drop_all")
        sessions = list(self._sim._sessions)
        for s in sessions:
            s.abort("fault: drop_all")
        return len(sessions)

    def stall(self, seconds: float | None = None) -> None:
        """Keep sockets open but send nothing (no data, no acks, no PINGPONG) for ``seconds``
        (None = until :meth:`clear_stall`). Trades made meanwhile are not sent (back-fill finds them)."""
        self._count("stall")
        self.stalled_until = self._until(self._sim.loop_time(), seconds)
        self._unstalled.clear()

    def clear_stall(self) -> None:
        if self.stalled_until is not None:
            self.stalled_until = None
            now = self._sim.loop_time()
            for s in self._sim._sessions:      # the idle clock restarts after a stall
                s.last_send = now
                if s.ping_sent_at is not None:
                    s.ping_sent_at = now
        self._unstalled.set()

    @property
    def stalled(self) -> bool:
        return self.stalled_until is not None and self._sim.loop_time() < self.stalled_until

    def send_garbage(self, text: str = "GARBAGE\x00~#not-a-kis-frame#~") -> int:
        """One garbage text frame to every session."""
        self._count("garbage")
        return self._broadcast((_TEXT, text))

    def send_invalid_utf8(self, data: bytes = b'{"header":{"tr_id":"H0STCNT0"},"x":"\xb0\xa1\xff\xfe"}') -> int:
        """One *text* frame whose bytes are not valid UTF-8 (strict clients fail with 1007)."""
        self._count("invalid_utf8")
        return self._broadcast((_RAW_TEXT, data))

    def send_oversized(self, size: int = 2 * 1024 * 1024) -> int:
        """One text frame of ``size`` bytes (clients with a small max_size fail with 1009)."""
        self._count("oversized")
        pad = "x" * max(0, size - 40)
        return self._broadcast((_TEXT, '{"header":{"tr_id":"OVERSIZE"},"p":"' + pad + '"}'))

    def reject_sessions(self, seconds: float | None = None, app_key: str | None = None) -> None:
        """New sessions get OPSP8996 ALREADY IN USE appkey (then a drop) for ``seconds`` — every
        app key, or only ``app_key``."""
        self._count("reject_sessions")
        until = self._until(self._sim.loop_time(), seconds)
        if app_key is None:
            self.reject_until = until
        else:
            self.reject_keys[app_key] = until

    @property
    def rejecting(self) -> bool:
        return self.reject_until is not None and self._sim.loop_time() < self.reject_until

    def rejects(self, app_key: str) -> bool:
        """Would a new session of ``app_key`` be refused with OPSP8996 now?"""
        return self.rejecting or self._sim.loop_time() < self.reject_keys.get(app_key, -math.inf)

    def _broadcast(self, item: tuple) -> int:
        sessions = list(self._sim._sessions)
        for s in sessions:
            s.enqueue(item)
        return len(sessions)

    # -- REST ---------------------------------------------------------------------------------
    def slow_rest(self, delay: float, seconds: float | None = None) -> None:
        """Delay every REST response by ``delay`` seconds, for ``seconds`` (None = until cleared)."""
        self._count("slow_rest")
        self.rest_delay = delay
        self.rest_slow_until = self._until(self._sim.loop_time(), seconds)

    def fail_rest(self, seconds: float | None = None) -> None:
        """Answer every REST call with HTTP 500, for ``seconds`` (None = until cleared)."""
        self._count("fail_rest")
        self.rest_fail_until = self._until(self._sim.loop_time(), seconds)

    def forget_approvals(self) -> None:
        """The server forgets every approval key it issued (next subscribe → OPSP0011)."""
        self._count("forget_approvals")
        self._sim._approvals.clear()

    def clear(self) -> None:
        """Switch every fault off."""
        self.clear_stall()
        self.reject_until = None
        self.reject_keys.clear()
        self.rest_slow_until = None
        self.rest_delay = 0.0
        self.rest_fail_until = None

    async def _wait_unstalled(self) -> None:
        while self.stalled:
            remaining = self.stalled_until - self._sim.loop_time()  # type: ignore[operator]
            try:
                await asyncio.wait_for(self._unstalled.wait(), timeout=min(remaining, 3600.0))
            except TimeoutError:
                pass
        if self.stalled_until is not None:
            self.clear_stall()


def _rest_error(status: int, rt_cd: str, msg_cd: str, msg1: str) -> web.Response:
    return web.json_response({"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}, status=status,
                             dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class Simulator:
    """A KIS-compatible market simulator on loopback. See :class:`SimConfig`.

    ``async with Simulator(SimConfig()) as sim: ...`` or ``await sim.start()`` / ``await sim.stop()``.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.market: Market | None = None
        self.faults = Faults(self)     # switchable before and after start()
        self.stats: dict[str, int] = {
            "sessions_total": 0, "aborted": 0, "overflow_drops": 0, "pings_sent": 0,
            "pong_timeouts": 0, "frames_sent": 0, "records_sent": 0, "rejected_8996": 0,
            "rest_requests": 0, "rest_rate_limited": 0, "steps_skipped": 0,
        }
        self._sessions: set[_Session] = set()
        self._all_sessions: list[_Session] = []
        self._slots: dict[str, _Session] = {}          # app key -> live session
        self._slot_hold: dict[str, float] = {}        # app key -> loop time the slot frees
        self._subscribers: dict[str, set[_Session]] = {}   # code -> sessions registered for trades
        self._book_subscribers: dict[str, set[_Session]] = {}   # code -> sessions registered for H0STASP0
        self._approvals: dict[str, str] = {}          # approval key -> app key
        self._tokens: dict[str, tuple[str, float]] = {}    # token -> (app key, expiry epoch)
        self._token_issued: dict[str, tuple[float, str]] = {}  # app key -> (epoch, token)
        self._rest_hits: dict[str, deque[float]] = {}
        self._ws_server: Server | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._pending_jumps: list[tuple[float, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = 0.0
        self._session_numbers = 0
        self.ws_url = ""
        self.rest_url = ""
        self.ws_port = 0
        self.rest_port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def loop_time(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    async def start(self) -> Simulator:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        now = self.loop_time()
        self._started_at = now
        self.market = Market(cfg, now)
        self._pending_jumps = sorted(((now + j.after_seconds, j) for j in cfg.jumps),
                                     key=lambda x: x[0])
        try:
            await self._start_servers()
        except BaseException:
            await self.stop()      # e.g. the REST port is taken: release the WebSocket port
            raise
        self._tasks = [asyncio.create_task(self._market_loop(), name="sim-market"),
                       asyncio.create_task(self._housekeeping(), name="sim-housekeeping")]
        log.info("simulator on %s and %s", self.ws_url, self.rest_url)
        return self

    async def _start_servers(self) -> None:
        cfg = self.config
        self._ws_server = await serve(
            self._handle_ws, cfg.host, cfg.ws_port, ping_interval=None, compression=None,
            max_size=cfg.max_client_message, create_connection=SimConnection,
        )
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://{cfg.host}:{self.ws_port}"
        app = web.Application(middlewares=[self._fault_middleware])
        app.router.add_post("/oauth2/Approval", self._approval)
        app.router.add_post("/oauth2/tokenP", self._token)
        app.router.add_post("/oauth2/revokeP", self._revoke)
        q = "/uapi/domestic-stock/v1/quotations/"
        app.router.add_get(q + "inquire-price", self._inquire_price)
        app.router.add_get(q + "inquire-ccnl", self._inquire_ccnl)
        app.router.add_get(q + "inquire-time-itemconclusion", self._inquire_time_itemconclusion)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.rest_port)
        await site.start()
        self.rest_port = self._runner.addresses[0][1]
        self.rest_url = f"http://{cfg.host}:{self.rest_port}"

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        for s in list(self._sessions):
            s.abort("simulator stopped")
        if self._ws_server is not None:
            self._ws_server.close()
            try:
                await asyncio.wait_for(self._ws_server.wait_closed(), 5)
            except TimeoutError:
                pass
            self._ws_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- public helpers -----------------------------------------------------------------------
    def jump(self, code: str, pct: float = 6.0, over_seconds: float = 20.0) -> None:
        """Move ``code``'s price by ``pct`` percent within ``over_seconds`` (starts now)."""
        assert self.market is not None, "start the simulator first"
        self.market.jump(code, pct, over_seconds, self.loop_time())

    def set_rate(self, trades_per_second: float) -> None:
        assert self.market is not None
        self.market.rate = max(0.0, float(trades_per_second))

    def add_code(self, code: str) -> None:
        """Start trading ``code`` (it also starts when first subscribed or queried)."""
        assert self.market is not None
        self.market.add_symbol(code, now=self.loop_time())

    def codes(self) -> list[str]:
        return self.market.codes() if self.market else []

    def history(self, code: str) -> list[SimTrade]:
        """Today's trades of ``code`` in order (what the socket carried and REST serves)."""
        return self.market.history(code) if self.market else []

    def sent_counts(self) -> dict[str, dict[str, int]]:
        """Records handed to each session's socket, by session label then code."""
        return {s.label: dict(s.sent) for s in self._all_sessions}

    def sent_trades(self, code: str, session: str | None = None) -> list[SimTrade]:
        """The trades of ``code`` sent (to ``session``, or to any session, in send order)."""
        if self.market is None:
            return []
        sym = self.market.get(code)
        if sym is None:
            return []
        out: list[SimTrade] = []
        for s in self._all_sessions:
            if session is not None and s.label != session:
                continue
            for start, n in s.sent_ranges.get(code, ()):
                out.extend(sym.trades(start, start + n))
        return out

    def sessions(self) -> list[dict[str, Any]]:
        """Live sessions: label, app key, registrations (for tests and the demo UI)."""
        return [{"label": s.label, "app_key": s.app_key, "subscriptions": list(s.subs),
                 "queued": len(s.queue), "pings_sent": s.pings_sent, "pongs": s.pongs}
                for s in self._sessions]

    def session_labels(self) -> list[str]:
        return [s.label for s in self._all_sessions]

    def issue_approval_key(self, app_key: str) -> str:
        """Register an approval key directly (tests that skip the REST call)."""
        key = str(uuid.uuid4())
        self._approvals[key] = app_key
        return key

    # -- market loop --------------------------------------------------------------------------
    async def _market_loop(self) -> None:
        interval = self.config.tick_interval
        market = self.market
        assert market is not None and self.faults is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        steps_done = 0
        max_catchup = max(1, int(0.25 / interval))  # overloaded: skip (and count) rather than burst
        subscribers = self._subscribers
        book_subscribers = self._book_subscribers
        stats = self.stats
        while True:
            now = loop.time()
            due = int((now - start) / interval) - steps_done
            if due > 0:
                steps_done += due
                if due > max_catchup:
                    stats["steps_skipped"] += due - max_catchup
                    due = max_catchup
                try:
                    generated = market.generate(due, now, subscribers)
                except Exception:       # never let one bad step kill the market
                    log.exception("simulator market step failed")
                    generated = []
                if generated and not self.faults.stalled:
                    for g in generated:
                        if g.frames:
                            targets = subscribers.get(g.code)
                            if targets:
                                for sess in tuple(targets):
                                    for frame, first, n in g.frames:
                                        sess.enqueue((_DATA, frame, g.code, first, n))
                        readers = book_subscribers.get(g.code)
                        if readers:
                            book = market.book_frame(g.code)
                            if book is not None:
                                for sess in tuple(readers):
                                    sess.enqueue((_TEXT, book))
            delay = start + (steps_done + 1) * interval - loop.time()
            await asyncio.sleep(max(0.0, delay))

    async def _housekeeping(self) -> None:
        cfg = self.config
        period = max(0.01, min(0.25, cfg.ping_interval / 5, cfg.pong_timeout / 5))
        faults = self.faults
        assert faults is not None and self.market is not None
        while True:
            await asyncio.sleep(period)
            now = self.loop_time()
            while self._pending_jumps and self._pending_jumps[0][0] <= now:
                _, spec = self._pending_jumps.pop(0)
                self.market.apply_jump_spec(spec, now)
            if faults.stalled_until is not None:
                if now >= faults.stalled_until:
                    faults.clear_stall()
                else:
                    for s in self._sessions:
                        s.last_send = now
                        if s.ping_sent_at is not None:
                            s.ping_sent_at = now
                    continue
            for s in list(self._sessions):
                if s.ping_sent_at is not None:
                    if now - s.ping_sent_at >= cfg.pong_timeout:
                        self.stats["pong_timeouts"] += 1
                        s.abort("no answer to PINGPONG")
                elif now - s.last_send >= cfg.ping_interval and not s.queue:
                    dt = self.market.now_kst().strftime("%Y%m%d%H%M%S")
                    s.ping_sent_at = now
                    s.pings_sent += 1
                    self.stats["pings_sent"] += 1
                    s.send_text(build_pingpong(dt))

    # -- WebSocket ----------------------------------------------------------------------------
    async def _handle_ws(self, ws: SimConnection) -> None:
        self._session_numbers += 1
        session = _Session(self, ws, self._session_numbers)
        ws.sim_session = session
        self._sessions.add(session)
        self._all_sessions.append(session)
        self.stats["sessions_total"] += 1
        sender = asyncio.create_task(self._sender(session))
        clean = False
        try:
            async for message in ws:
                if session.closed:
                    break
                await self._on_message(session, message)
            clean = True
        except ConnectionClosed:
            pass
        finally:
            sender.cancel()
            if not session.closed:
                session.closed = True
                self._forget(session, abrupt=not clean)

    async def _sender(self, session: _Session) -> None:
        ws = session.ws
        faults = self.faults
        assert faults is not None
        stats = self.stats
        queue = session.queue
        try:
            while not session.closed:
                if not queue:
                    session.wake.clear()
                    await session.wake.wait()
                    continue
                if faults.stalled_until is not None:
                    await faults._wait_unstalled()
                    continue
                item = queue.popleft()
                kind = item[0]
                if kind == _RAW_TEXT:
                    await ws.send(item[1], text=True)
                else:
                    await ws.send(item[1])
                session.last_send = self.loop_time()
                session.frames_sent += 1
                stats["frames_sent"] += 1
                if kind == _DATA:
                    code, first, n = item[2], item[3], item[4]
                    session.sent[code] = session.sent.get(code, 0) + n
                    ranges = session.sent_ranges.setdefault(code, [])
                    if ranges and ranges[-1][0] + ranges[-1][1] == first:
                        ranges[-1] = (ranges[-1][0], ranges[-1][1] + n)
                    else:
                        ranges.append((first, n))
                    stats["records_sent"] += n
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("simulator sender failed")
            session.abort("sender failure")

    def _forget(self, session: _Session, abrupt: bool) -> None:
        self._sessions.discard(session)
        session.queue.clear()
        for (tr_id, tr_key) in session.subs:
            self._unindex(session, tr_id, tr_key)
        if session.app_key is not None and self._slots.get(session.app_key) is session:
            del self._slots[session.app_key]
            if abrupt and self.config.slot_hold_seconds > 0:
                self._slot_hold[session.app_key] = self.loop_time() + self.config.slot_hold_seconds

    def _index_for(self, tr_id: str) -> dict[str, set[_Session]] | None:
        if tr_id == TR_TRADES:
            return self._subscribers
        if tr_id == TR_BOOK:
            return self._book_subscribers
        return None

    def _unindex(self, session: _Session, tr_id: str, tr_key: str) -> None:
        index = self._index_for(tr_id)
        subs = index.get(tr_key) if index is not None else None
        if subs is not None:
            subs.discard(session)
            if not subs:
                del index[tr_key]

    async def _reject_in_use(self, session: _Session) -> None:
        """OPSP8996 (header tr_id "(null)", rt_cd "9"), then an abrupt drop."""
        self.stats["rejected_8996"] += 1
        text = build_control_reply("(null)", "", "9", "OPSP8996", "ALREADY IN USE appkey")
        session.closed = True   # stop the sender; this reply goes out directly
        self._forget(session, abrupt=False)
        try:
            await asyncio.wait_for(session.ws.send(text), 2.0)
        except (ConnectionClosed, TimeoutError):
            pass
        transport = session.ws.transport
        if transport is not None:
            transport.abort()
        self.stats["aborted"] += 1
        session.aborted_reason = "OPSP8996"

    async def _on_message(self, session: _Session, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            session.send_text(build_control_reply("(null)", "", "9", "OPSP9999",
                                                  "JSON PARSING ERROR : invalid json format"))
            return
        header = obj.get("header")
        if isinstance(header, dict) and header.get("tr_id") == "PINGPONG":
            session.on_pong()
            return
        if not isinstance(header, dict):
            session.send_text(build_control_reply("(null)", "", "9", "OPSP9998",
                                                  "JSON PARSING ERROR : header not found"))
            return
        body = obj.get("body")
        inp = body.get("input") if isinstance(body, dict) else None
        tr_id = str(inp.get("tr_id", "")) if isinstance(inp, dict) else ""
        tr_key = str(inp.get("tr_key", "")) if isinstance(inp, dict) else ""

        def reply(rt_cd: str, msg_cd: str, msg1: str) -> None:
            session.send_text(build_control_reply(tr_id or "(null)", tr_key, rt_cd, msg_cd, msg1))

        approval = header.get("approval_key")
        app_key = self._approvals.get(approval) if isinstance(approval, str) else None
        if app_key is None:
            reply("1", "OPSP0011", "invalid approval : NOT FOUND")
            return
        if session.app_key is None:
            now = self.loop_time()
            holder = self._slots.get(app_key)
            held = self._slot_hold.get(app_key, 0.0) > now
            assert self.faults is not None
            if (holder is not None and holder is not session) or held or self.faults.rejects(app_key):
                await self._reject_in_use(session)
                return
            session.app_key = app_key
            self._slots[app_key] = session
        if not isinstance(body, dict):
            reply("9", "OPSP9992", "JSON PARSING ERROR : body not found")
            return
        if not isinstance(inp, dict):
            reply("9", "OPSP9991", "JSON PARSING ERROR : input not found")
            return
        tr_type = header.get("tr_type")
        if tr_type not in ("1", "2"):
            reply("9", "OPSP8997", "JSON PARSING ERROR : invalid tr_type")
            return
        if header.get("custtype", "P") not in ("P", "B"):
            reply("9", "OPSP8998", "JSON PARSING ERROR : invalid custtype")
            return
        if not tr_key:
            reply("9", "OPSP9990", "JSON PARSING ERROR : tr_key not found")
            return
        if tr_id not in KNOWN_TRS:
            reply("9", "OPSP8991", "SUBSCRIBE ERROR : invalid tr_id")
            return
        encrypted = tr_id in ENCRYPTED_TRS
        if not encrypted and not is_valid_stock_code(tr_key):
            reply("9", "OPSP8992", "SUBSCRIBE ERROR : invalid tr_key")
            return
        key = (tr_id, tr_key)
        if tr_type == "1":
            if key in session.subs:
                reply("1", "OPSP0002", "ALREADY IN SUBSCRIBE")
                return
            if len(session.subs) >= self.config.max_subscriptions:
                reply("1", "OPSP0008", "MAX SUBSCRIBE OVER")
                return
            session.subs[key] = None
            iv = "".join(secrets.choice(_HEX) for _ in range(16))
            aes_key = "".join(secrets.choice(_LOWER) for _ in range(32))
            session.send_text(build_control_reply(
                tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS",
                encrypt="Y" if encrypted else "N", iv=iv, key=aes_key))
            index = self._index_for(tr_id)
            if index is not None:
                assert self.market is not None
                self.market.add_symbol(tr_key, now=self.loop_time())
                index.setdefault(tr_key, set()).add(session)
        else:
            if key not in session.subs:
                reply("1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)")
                return
            del session.subs[key]
            self._unindex(session, tr_id, tr_key)
            session.send_text(build_control_reply(tr_id, tr_key, "0", "OPSP0001",
                                                  "UNSUBSCRIBE SUCCESS"))

    # -- REST ---------------------------------------------------------------------------------
    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.stats["rest_requests"] += 1
        faults = self.faults
        now = self.loop_time()
        if faults is not None:
            if faults.rest_slow_until is not None and now < faults.rest_slow_until and faults.rest_delay > 0:
                await asyncio.sleep(faults.rest_delay)
            if faults.rest_fail_until is not None and self.loop_time() < faults.rest_fail_until:
                return _rest_error(500, "1", "EGW00500", "시스템 오류가 발생하였습니다. (simulated)")
        return await handler(request)

    def _check_credentials(self, app_key: Any, secret: Any) -> web.Response | None:
        if not isinstance(app_key, str) or not app_key:
            return web.json_response({"error_code": "EGW00103",
                                      "error_description": "유효하지 않은 AppKey입니다."},
                                     status=403, dumps=_dumps)
        if not isinstance(secret, str) or not secret:
            return web.json_response({"error_code": "EGW00105",
                                      "error_description": "유효하지 않은 AppSecret입니다."},
                                     status=403, dumps=_dumps)
        keys = self.config.app_keys
        if keys is not None:
            if app_key not in keys:
                return web.json_response({"error_code": "EGW00103",
                                          "error_description": "유효하지 않은 AppKey입니다."},
                                         status=403, dumps=_dumps)
            if keys[app_key] != secret:
                return web.json_response({"error_code": "EGW00105",
                                          "error_description": "유효하지 않은 AppSecret입니다."},
                                         status=403, dumps=_dumps)
        return None

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json(loads=json.loads)
        except Exception:
            return {}
        return body if isinstance(body, dict) else {}

    async def _approval(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        problem = self._check_credentials(body.get("appkey"), body.get("secretkey"))
        if problem is not None:
            return problem
        return web.json_response({"approval_key": self.issue_approval_key(body["appkey"])})

    async def _token(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        app_key, secret = body.get("appkey"), body.get("appsecret")
        problem = self._check_credentials(app_key, secret)
        if problem is not None:
            return problem
        now = time.time()
        last = self._token_issued.get(app_key)
        cfg = self.config
        if last is not None and now - last[0] < cfg.token_min_interval:
            return web.json_response(
                {"error_code": "EGW00133",
                 "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"},
                status=403, dumps=_dumps)
        token = None
        if last is not None and now - last[0] < 6 * 3600 and last[1] in self._tokens:
            token = last[1]            # KIS returns the same token within 6 h
            expiry = self._tokens[token][1]
        else:
            claims = base64.urlsafe_b64encode(
                json.dumps({"sub": "sim", "jti": str(uuid.uuid4()), "iat": int(now)}).encode()
            ).decode().rstrip("=")
            token = f"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.{claims}.{secrets.token_urlsafe(32)}"
            expiry = now + cfg.token_expires_in
            self._tokens[token] = (app_key, expiry)
        self._token_issued[app_key] = (now, token)
        expired_text = datetime.fromtimestamp(expiry, KST).strftime("%Y-%m-%d %H:%M:%S")
        return web.json_response({
            "access_token": token, "access_token_token_expired": expired_text,
            "token_type": "Bearer", "expires_in": max(0, int(expiry - now)),
        })

    async def _revoke(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        token = body.get("token")
        if not isinstance(token, str) or token not in self._tokens:
            return web.json_response({"error_description": "유효하지 않은 token 입니다.",
                                      "error_code": "EGW00121"}, status=403, dumps=_dumps)
        del self._tokens[token]
        return web.json_response({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"},
                                 dumps=_dumps)

    def _authorize(self, request: web.Request, tr_id: str) -> web.Response | str:
        """Token, app key/secret, rate limit and tr_id checks; the app key when all pass."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        entry = self._tokens.get(token)
        if entry is None:
            return _rest_error(500, "1", "EGW00121", "유효하지 않은 token 입니다.")
        app_key, expiry = entry
        if time.time() >= expiry:
            return _rest_error(500, "1", "EGW00123", "기간이 만료된 token 입니다.")
        if request.headers.get("appkey") != app_key:
            return _rest_error(500, "1", "EGW00103", "유효하지 않은 AppKey입니다.")
        keys = self.config.app_keys
        secret = request.headers.get("appsecret", "")
        if not secret or (keys is not None and keys.get(app_key) != secret):
            return _rest_error(500, "1", "EGW00105", "유효하지 않은 AppSecret입니다.")
        now = self.loop_time()
        hits = self._rest_hits.setdefault(app_key, deque())
        while hits and now - hits[0] >= 1.0:
            hits.popleft()
        if len(hits) >= self.config.effective_rest_rate:
            self.stats["rest_rate_limited"] += 1
            return _rest_error(500, "1", "EGW00201", "초당 거래건수를 초과하였습니다.")
        hits.append(now)
        if request.headers.get("tr_id") != tr_id:
            return _rest_error(500, "1", "OPSQ0002", "없는 서비스 코드 입니다")
        return app_key

    def _quote_target(self, request: web.Request, tr_id: str) -> Any:
        """The symbol a quotation call asks for, or the error response (auth first, like KIS)."""
        auth = self._authorize(request, tr_id)
        if isinstance(auth, web.Response):
            return auth
        return self._symbol_for(request)

    def _symbol_for(self, request: web.Request) -> Any:
        code = request.query.get("FID_INPUT_ISCD", "").strip().upper()
        if not is_valid_stock_code(code):
            return web.json_response({"rt_cd": "1", "msg_cd": "OPSQ2001",
                                      "msg1": "ERROR : INPUT INVALID_CHECK_ISCD"}, dumps=_dumps)
        assert self.market is not None
        return self.market.add_symbol(code, now=self.loop_time())

    async def _inquire_price(self, request: web.Request) -> web.Response:
        sym = self._quote_target(request, "FHKST01010100")
        if isinstance(sym, web.Response):
            return sym
        price = sym.price
        change = price - sym.prev_close
        avg = f"{sym.cum_value / sym.cum_vol:.2f}" if sym.cum_vol else "0.00"
        out = {
            "iscd_stat_cls_code": "55", "marg_rate": "20.00", "rprs_mrkt_kor_name": "KOSPI200",
            "bstp_kor_isnm": "시뮬레이션", "temp_stop_yn": "N", "oprc_rang_cont_yn": "N",
            "clpr_rang_cont_yn": "N", "crdt_able_yn": "Y", "grmn_rate_cls_code": "40",
            "elw_pblc_yn": "N", "stck_prpr": str(price), "prdy_vrss": str(change),
            "prdy_vrss_sign": sign_code(price, sym.prev_close, sym.upper, sym.lower),
            "prdy_ctrt": pct2(change, sym.prev_close), "acml_tr_pbmn": str(sym.cum_value),
            "acml_vol": str(sym.cum_vol), "prdy_vrss_vol_rate": pct2(sym.cum_vol, sym.prev_day_vol),
            "stck_oprc": str(sym.open or price), "stck_hgpr": str(sym.high or price),
            "stck_lwpr": str(sym.low or price), "stck_mxpr": str(sym.upper),
            "stck_llam": str(sym.lower), "stck_sdpr": str(sym.prev_close),
            "wghn_avrg_stck_prc": avg, "hts_frgn_ehrt": "50.00", "frgn_ntby_qty": "0",
            "pgtr_ntby_qty": "0", "pvt_scnd_dmrs_prc": "0", "pvt_frst_dmrs_prc": "0",
            "pvt_pont_val": "0", "pvt_frst_dmsp_prc": "0", "pvt_scnd_dmsp_prc": "0",
            "dmrs_val": "0", "dmsp_val": "0", "cpfn": "0", "rstc_wdth_prc": str(sym.upper - sym.prev_close),
            "stck_fcam": "100", "stck_sspr": str(int(price * 0.7)), "aspr_unit": str(tick_size(price)),
            "hts_deal_qty_unit_val": "1", "lstn_stcn": str(sym.listed_shares),
            "hts_avls": str(price * sym.listed_shares // 100_000_000), "per": "10.00",
            "pbr": "1.00", "stac_month": "12", "vol_tnrt": pct2(sym.cum_vol, sym.listed_shares),
            "eps": "0.00", "bps": "0.00", "d250_hgpr": str(sym.upper), "d250_lwpr": str(sym.lower),
            "w52_hgpr": str(sym.upper), "w52_lwpr": str(sym.lower), "vi_cls_code": "N",
            "ovtm_vi_cls_code": "N", "last_ssts_cntg_qty": "0", "invt_caful_yn": "N",
            "mrkt_warn_cls_code": "00", "short_over_yn": "N", "sltr_yn": "N",
            "stck_shrn_iscd": sym.code,
        }
        return web.json_response({"output": out, **OK_MSG}, dumps=_dumps)

    @staticmethod
    def _change_fields(t: SimTrade, sym: Any) -> tuple[str, str, str]:
        return (str(t.change), sign_code(t.price, sym.prev_close, sym.upper, sym.lower),
                pct2(t.change, sym.prev_close))

    async def _inquire_ccnl(self, request: web.Request) -> web.Response:
        sym = self._quote_target(request, "FHKST01010300")
        if isinstance(sym, web.Response):
            return sym
        assert self.market is not None
        rows = []
        for t in self.market.latest(sym.code, self.config.ccnl_rows):
            change, sign, ctrt = self._change_fields(t, sym)
            rows.append({"stck_cntg_hour": t.time, "stck_prpr": str(t.price), "prdy_vrss": change,
                         "prdy_vrss_sign": sign, "cntg_vol": str(t.volume),
                         "tday_rltv": f"{t.strength:.2f}", "prdy_ctrt": ctrt})
        return web.json_response({"output": rows, **OK_MSG}, dumps=_dumps)

    async def _inquire_time_itemconclusion(self, request: web.Request) -> web.Response:
        sym = self._quote_target(request, "FHPST01060000")
        if isinstance(sym, web.Response):
            return sym
        assert self.market is not None
        hour = request.query.get("FID_INPUT_HOUR_1", "").strip()
        if not hour:
            hhmmss = 999_999
        elif len(hour) == 6 and hour.isdigit():
            hhmmss = int(hour)
        else:
            return web.json_response({"rt_cd": "1", "msg_cd": "OPSQ2001",
                                      "msg1": "ERROR : INPUT INVALID_CHECK_HOUR"}, dumps=_dumps)
        price = sym.price
        change = price - sym.prev_close
        output1 = {
            "stck_prpr": str(price), "prdy_vrss": str(change),
            "prdy_vrss_sign": sign_code(price, sym.prev_close, sym.upper, sym.lower),
            "prdy_ctrt": pct2(change, sym.prev_close), "acml_vol": str(sym.cum_vol),
            "prdy_vol": str(sym.prev_day_vol), "rprs_mrkt_kor_name": "KOSPI200",
        }
        rows = []
        for t in self.market.at_or_before(sym.code, hhmmss, self.config.page_size):
            change_s, sign, ctrt = self._change_fields(t, sym)
            rows.append({"stck_cntg_hour": t.time, "stck_prpr": str(t.price),
                         "prdy_vrss": change_s, "prdy_vrss_sign": sign, "prdy_ctrt": ctrt,
                         "askp": str(t.ask), "bidp": str(t.bid), "tday_rltv": f"{t.strength:.2f}",
                         "acml_vol": str(t.cum_volume), "cnqn": str(t.volume)})
        return web.json_response({"output1": output1, "output2": rows, **OK_MSG}, dumps=_dumps)


__all__ = ["ENCRYPTED_TRS", "Faults", "KNOWN_TRS", "Simulator"]
