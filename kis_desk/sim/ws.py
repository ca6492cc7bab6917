"""The simulator's KIS-like WebSocket server (``websockets``).

One sender task per session drains a bounded queue (a slow client back-pressures only itself and
is dropped, counted, when its queue overflows). Registrations: 41 per session (the 42nd gets
OPSP0008), one session per app key (a second one gets OPSP8996 and a drop), PINGPONG after
``ping_interval`` of silence and an abort when it stays unanswered for ``pong_timeout``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import string
from collections.abc import Callable, Iterable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ..config import is_valid_stock_code
from ..protocol.codec import build_control_reply, build_pingpong
from .config import SimConfig
from .faults import Faults
from .frames import TR_TRADES, Generated
from .state import DATA, RAW_TEXT, TEXT, Session, SimState

log = logging.getLogger(__name__)

#: TRs the simulator accepts registrations for. H0STCNT0 / H0NXCNT0 / H0UNCNT0 stream KRX / NXT /
#: integrated trades, H0STASP0 a 62-field book after each tick with KRX trades, H0STANC0 /
#: H0NXANC0 / H0UNANC0 expected prices while a symbol is in VI or halted; the others are
#: acknowledged (counting against the 41) and stay silent.
ENCRYPTED_TRS = frozenset({"H0STCNI0", "H0STCNI9"})
KNOWN_TRS = frozenset({"H0STCNT0", "H0STASP0", "H0UNCNT0", "H0NXCNT0", "H0STANC0", "H0UNASP0",
                       "H0NXASP0", "H0STMBC0", "H0STOUP0", "H0NXANC0", "H0UNANC0"}) | ENCRYPTED_TRS
#: what the mock (paper-trading) server offers (kis-protocol.md §1.1)
MOCK_TRS = frozenset({"H0STCNT0", "H0STASP0"}) | ENCRYPTED_TRS

#: answers a registration request: (rt_cd, msg_cd, msg1)
Reply = Callable[[str, str, str], None]

_LOWER = string.ascii_lowercase
_HEX = "0123456789abcdef"


class SimConnection(ServerConnection):
    """Records unsolicited PONG control frames: KIS clients may answer PINGPONG that way."""

    sim_session: Session | None = None

    def acknowledge_pings(self, data: bytes) -> None:
        session = self.sim_session
        if session is not None:
            session.on_pong()
        super().acknowledge_pings(data)


class WsServer:
    """Sessions, registrations, the trade fan-out and keep-alive of the WebSocket side."""

    def __init__(self, config: SimConfig, state: SimState, faults: Faults) -> None:
        self.config = config
        self.state = state
        self.faults = faults
        self._server: Server | None = None
        self.port = 0

    async def start(self) -> str:
        cfg = self.config
        self._server = await serve(
            self._handle, cfg.host, cfg.ws_port, ping_interval=None, compression=None,
            max_size=cfg.max_client_message, create_connection=SimConnection,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return f"ws://{cfg.host}:{self.port}"

    async def stop(self) -> None:
        for s in list(self.state.live):
            s.abort("simulator stopped")
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except TimeoutError:
                pass
            self._server = None

    # -- market fan-out and keep-alive ---------------------------------------------------------
    def deliver(self, generated: Iterable[Generated]) -> None:
        """Queue the frames just generated for the sessions registered (stalled ones get nothing)."""
        state, faults, market = self.state, self.faults, self.state.market
        assert market is not None
        any_stall = bool(faults.stall_until)
        if any_stall and faults.stalled:
            return
        muted = faults.muted_trs
        index = state.trade_index
        for g in generated:
            if g.frames:
                targets = index[g.tr_id].get(g.code)
                if targets:
                    for sess in tuple(targets):
                        if any_stall and faults.stalled_for(sess.app_key):
                            continue
                        if muted and faults.tr_muted_for(g.tr_id, sess.app_key):
                            continue
                        for frame, first, n in g.frames:
                            sess.enqueue((DATA, frame, g.code, first, n, g.tr_id))
            if g.tr_id != TR_TRADES:
                continue
            readers = state.book_subscribers.get(g.code)
            if readers:
                book = market.book_frame(g.code)
                if book is not None:
                    for sess in tuple(readers):
                        if not (any_stall and faults.stalled_for(sess.app_key)):
                            sess.enqueue((TEXT, book))

    def send_expected(self, now: float) -> None:
        """Once a second, an expected-price frame for each symbol in VI or halted to the
        sessions registered for its expected-price TRs (TRHT_YN Y / HOUR_CLS_CODE C)."""
        state, faults, market = self.state, self.faults, self.state.market
        assert market is not None
        due: dict[str, bool] = {}
        for tr_id, index in state.expected_index.items():
            for code, sessions in index.items():
                sym = market.get(code)
                if sym is None or not (sym.in_vi or sym.halted):
                    continue
                if code not in due:
                    due[code] = now - sym.expected_sent >= 1.0
                frame = market.expected_frame(code, tr_id) if due[code] else None
                if frame is None:
                    continue
                for sess in tuple(sessions):
                    if not faults.stalled_for(sess.app_key):
                        sess.enqueue((TEXT, frame))
        for code, sent in due.items():
            if sent:
                market.symbols[code].expected_sent = now

    def keep_alive(self, now: float) -> None:
        """PINGPONG idle sessions, abort those that never answered; stalled sessions are silent."""
        cfg, state, faults = self.config, self.state, self.faults
        faults.expire(now)
        market = state.market
        assert market is not None
        for s in list(state.live):
            if faults.stalled_for(s.app_key):
                s.restart_idle_clock(now)
            elif s.ping_sent_at is not None:
                if now - s.ping_sent_at >= cfg.pong_timeout:
                    state.stats["pong_timeouts"] += 1
                    s.abort("no answer to PINGPONG")
            elif now - s.last_send >= cfg.ping_interval and not s.queue:
                s.ping_sent_at = now
                s.pings_sent += 1
                state.stats["pings_sent"] += 1
                s.send_text(build_pingpong(market.now_kst().strftime("%Y%m%d%H%M%S")))

    # -- connections ---------------------------------------------------------------------------
    async def _handle(self, ws: SimConnection) -> None:
        session = self.state.open_session(ws)
        ws.sim_session = session
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
                self.state.forget(session, abrupt=not clean)

    async def _sender(self, session: Session) -> None:
        ws, faults, stats, queue = session.ws, self.faults, self.state.stats, session.queue
        assert isinstance(ws, ServerConnection)
        try:
            while not session.closed:
                if not queue:
                    session.wake.clear()
                    await session.wake.wait()
                    continue
                if faults.stall_until and faults.stalled_for(session.app_key):
                    await faults.wait_unstalled(session.app_key)
                    continue
                item = queue.popleft()
                kind = item[0]
                if kind == RAW_TEXT:
                    await ws.send(item[1], text=True)
                else:
                    await ws.send(item[1])
                session.last_send = self.state.loop_time()
                session.frames_sent += 1
                stats["frames_sent"] += 1
                if kind == DATA:
                    session.record_sent(item[2], item[3], item[4], item[5])
                    stats["records_sent"] += item[4]
        except (ConnectionClosed, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("simulator sender failed")
            session.abort("sender failure")

    async def _reject_in_use(self, session: Session) -> None:
        """OPSP8996 (header tr_id "(null)", rt_cd "9"), then an abrupt drop."""
        state = self.state
        state.stats["rejected_8996"] += 1
        text = build_control_reply("(null)", "", "9", "OPSP8996", "ALREADY IN USE appkey")
        session.closed = True   # stop the sender; this reply goes out directly
        state.forget(session, abrupt=False)
        ws = session.ws
        assert isinstance(ws, ServerConnection)
        try:
            await asyncio.wait_for(ws.send(text), 2.0)
        except (ConnectionClosed, TimeoutError):
            pass
        session.close_transport()
        state.stats["aborted"] += 1
        session.aborted_reason = "OPSP8996"

    # -- subscribe / unsubscribe ---------------------------------------------------------------
    async def _on_message(self, session: Session, message: str | bytes) -> None:
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

        state = self.state
        approval = header.get("approval_key")
        app_key = state.approvals.get(approval) if isinstance(approval, str) else None
        if app_key is None:
            reply("1", "OPSP0011", "invalid approval : NOT FOUND")
            return
        if session.app_key is None:
            if state.slot_busy(app_key, session) or self.faults.rejecting_for(app_key):
                await self._reject_in_use(session)
                return
            state.bind(session, app_key)
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
        if tr_id not in KNOWN_TRS or (self.config.mode == "mock" and tr_id not in MOCK_TRS) \
                or self.faults.tr_refused_for(tr_id, app_key):
            # the mock server offers only H0STCNT0, H0STASP0 and the order notices ("모의투자
            # 미지원", kis-protocol.md §1.1); its exact refusal is not documented [I]
            reply("9", "OPSP8991", "SUBSCRIBE ERROR : invalid tr_id")
            return
        encrypted = tr_id in ENCRYPTED_TRS
        if not encrypted and not is_valid_stock_code(tr_key):
            reply("9", "OPSP8992", "SUBSCRIBE ERROR : invalid tr_key")
            return
        if tr_type == "1":
            self._subscribe(session, tr_id, tr_key, encrypted, reply)
        else:
            self._unsubscribe(session, tr_id, tr_key, reply)

    def _subscribe(self, session: Session, tr_id: str, tr_key: str, encrypted: bool, reply: Reply) -> None:
        key = (tr_id, tr_key)
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
        index = self.state.index_for(tr_id)
        if index is not None:
            market = self.state.market
            assert market is not None
            # a code no symbol list knows is acknowledged but gets no invented market
            market.symbol_for(tr_key, now=self.state.loop_time())
            index.setdefault(tr_key, set()).add(session)

    def _unsubscribe(self, session: Session, tr_id: str, tr_key: str, reply: Reply) -> None:
        if (tr_id, tr_key) not in session.subs:
            reply("1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)")
            return
        del session.subs[(tr_id, tr_key)]
        self.state.unindex(session, tr_id, tr_key)
        session.send_text(build_control_reply(tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS"))


__all__ = ["ENCRYPTED_TRS", "KNOWN_TRS", "MOCK_TRS", "SimConnection", "WsServer"]
