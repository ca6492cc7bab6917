"""The simulator's shared bookkeeping: WebSocket sessions and their app-key slots, who is
registered for which code, the approval keys and tokens issued, and what each session was sent.

No I/O and no servers: the WebSocket and REST servers and the fault switches all read and change
this one object, so none of them needs a reference to another (or to the facade).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import Any, Protocol

from .frames import TR_NXT, TR_TOTAL, TR_TRADES, VENUE_TR
from .market import Market
from .tape import SimTrade

#: expected-price TRs: a frame per second for a symbol in VI (HOUR_CLS_CODE C) or halted (TRHT_YN Y)
EXPECTED_TRS = ("H0STANC0", "H0NXANC0", "H0UNANC0")

#: the order-book TR (a 62-field book after each tick with trades)
TR_BOOK = "H0STASP0"

# send-queue item kinds: (kind, payload, ...) — DATA items carry (code, first index, records, tr_id)
TEXT, RAW_TEXT, DATA = 0, 1, 2


class _Transport(Protocol):
    def abort(self) -> None: ...


class _Connection(Protocol):
    @property
    def transport(self) -> _Transport | None: ...


class Session:
    """One WebSocket connection: its app key (bound at the first subscribe), registrations,
    bounded send queue and what it was sent."""

    def __init__(self, state: SimState, ws: _Connection, number: int) -> None:
        self.state = state
        self.ws = ws
        self.label = f"s{number}"
        self.app_key: str | None = None
        self.subs: dict[tuple[str, str], None] = {}
        self.queue: deque[tuple] = deque()
        self.wake = asyncio.Event()
        self.last_send = state.loop_time()
        self.ping_sent_at: float | None = None
        self.pings_sent = 0
        self.pongs = 0
        self.closed = False
        self.aborted_reason = ""
        self.sent: dict[str, int] = {}
        self.sent_ranges: dict[str, list[tuple[int, int]]] = {}
        self.venue_ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.frames_sent = 0

    def enqueue(self, item: tuple) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.state.send_queue_limit:
            self.state.stats["overflow_drops"] += 1
            self.abort("send queue overflow (slow client)")
            return
        self.queue.append(item)
        self.wake.set()

    def send_text(self, text: str) -> None:
        self.enqueue((TEXT, text))

    def on_pong(self) -> None:
        self.pongs += 1
        self.ping_sent_at = None

    def record_sent(self, code: str, first: int, n: int, tr_id: str = TR_TRADES) -> None:
        """Account ``n`` records of ``code`` from ``tr_id``'s tape index ``first`` as handed to
        the socket (``sent``/``sent_ranges``: H0STCNT0; ``venue_ranges``: every trade TR)."""
        if tr_id == TR_TRADES:
            self.sent[code] = self.sent.get(code, 0) + n
        ranges = self.venue_ranges.setdefault((tr_id, code), [])
        if tr_id == TR_TRADES:
            self.sent_ranges[code] = ranges
        if ranges and ranges[-1][0] + ranges[-1][1] == first:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + n)
        else:
            ranges.append((first, n))

    def restart_idle_clock(self, now: float) -> None:
        """After (or during) a stall the PINGPONG and pong-timeout clocks start again."""
        self.last_send = now
        if self.ping_sent_at is not None:
            self.ping_sent_at = now

    def close_transport(self) -> None:
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    def abort(self, reason: str) -> None:
        """Drop the TCP connection without a close frame (what KIS does)."""
        if self.closed:
            return
        self.closed = True
        self.aborted_reason = reason
        self.state.stats["aborted"] += 1
        self.queue.clear()
        self.wake.set()
        self.close_transport()
        self.state.forget(self, abrupt=True)


class SimState:
    """Sessions, slots, registrations, credentials issued and counters of one simulator."""

    def __init__(self, send_queue_limit: int, slot_hold_seconds: float) -> None:
        self.send_queue_limit = send_queue_limit
        self.slot_hold_seconds = slot_hold_seconds
        self.loop: asyncio.AbstractEventLoop | None = None
        self.market: Market | None = None
        self.stats: dict[str, int] = {
            "sessions_total": 0, "aborted": 0, "overflow_drops": 0, "pings_sent": 0,
            "pong_timeouts": 0, "frames_sent": 0, "records_sent": 0, "rejected_8996": 0,
            "rest_requests": 0, "rest_rate_limited": 0, "steps_skipped": 0,
            "tokens_issued": 0, "token_requests": 0,
        }
        self.live: set[Session] = set()
        self.all_sessions: list[Session] = []
        self.slots: dict[str, Session] = {}            # app key -> live session
        self.slot_hold: dict[str, float] = {}          # app key -> loop time the slot frees
        self.trade_subscribers: dict[str, set[Session]] = {}   # code -> sessions on H0STCNT0
        self.book_subscribers: dict[str, set[Session]] = {}    # code -> sessions on H0STASP0
        #: trade TR -> code -> sessions (H0STCNT0 is ``trade_subscribers``)
        self.trade_index: dict[str, dict[str, set[Session]]] = {
            TR_TRADES: self.trade_subscribers, TR_NXT: {}, TR_TOTAL: {}}
        #: expected-price TR -> code -> sessions
        self.expected_index: dict[str, dict[str, set[Session]]] = {tr: {} for tr in EXPECTED_TRS}
        self.approvals: dict[str, str] = {}            # approval key -> app key
        self.tokens: dict[str, tuple[str, float]] = {}     # token -> (app key, expiry epoch)
        self.token_issued: dict[str, tuple[float, str]] = {}   # app key -> (epoch, token)
        self._numbers = 0

    def loop_time(self) -> float:
        return self.loop.time() if self.loop is not None else time.monotonic()

    # -- sessions -----------------------------------------------------------------------------
    def open_session(self, ws: _Connection) -> Session:
        self._numbers += 1
        session = Session(self, ws, self._numbers)
        self.live.add(session)
        self.all_sessions.append(session)
        self.stats["sessions_total"] += 1
        return session

    def sessions_of(self, app_key: str | None) -> list[Session]:
        """Live sessions bound to ``app_key`` (None = every live session)."""
        return [s for s in self.live if app_key is None or s.app_key == app_key]

    def slot_busy(self, app_key: str, session: Session) -> bool:
        """Another live session holds ``app_key``, or its slot is still held after a drop."""
        holder = self.slots.get(app_key)
        return (holder is not None and holder is not session) or \
            self.slot_hold.get(app_key, 0.0) > self.loop_time()

    def bind(self, session: Session, app_key: str) -> None:
        session.app_key = app_key
        self.slots[app_key] = session

    def forget(self, session: Session, abrupt: bool) -> None:
        """The session ended: its registrations and slot are released (held a while if abrupt)."""
        self.live.discard(session)
        session.queue.clear()
        for tr_id, tr_key in session.subs:
            self.unindex(session, tr_id, tr_key)
        key = session.app_key
        if key is not None and self.slots.get(key) is session:
            del self.slots[key]
            if abrupt and self.slot_hold_seconds > 0:
                self.slot_hold[key] = self.loop_time() + self.slot_hold_seconds

    # -- registrations ------------------------------------------------------------------------
    def index_for(self, tr_id: str) -> dict[str, set[Session]] | None:
        if tr_id == TR_BOOK:
            return self.book_subscribers
        index = self.trade_index.get(tr_id)
        return index if index is not None else self.expected_index.get(tr_id)

    def unindex(self, session: Session, tr_id: str, tr_key: str) -> None:
        index = self.index_for(tr_id)
        subs = index.get(tr_key) if index is not None else None
        if subs is not None:
            subs.discard(session)
            if not subs:
                del index[tr_key]  # type: ignore[union-attr]

    # -- credentials --------------------------------------------------------------------------
    def issue_approval_key(self, app_key: str) -> str:
        key = str(uuid.uuid4())
        self.approvals[key] = app_key
        return key

    def forget_approvals(self, app_key: str | None = None) -> None:
        """Forget the approval keys issued (to ``app_key`` only, if given)."""
        if app_key is None:
            self.approvals.clear()
            return
        for approval in [a for a, k in self.approvals.items() if k == app_key]:
            del self.approvals[approval]

    # -- reports ------------------------------------------------------------------------------
    def sent_counts(self) -> dict[str, dict[str, int]]:
        return {s.label: dict(s.sent) for s in self.all_sessions}

    def sent_trades(self, code: str, session: str | None = None, venue: str = "krx") -> list[SimTrade]:
        sym = self.market.get(code) if self.market is not None else None
        if sym is None:
            return []
        tape, tr_id = sym.tape(venue), VENUE_TR[venue]
        out: list[SimTrade] = []
        for s in self.all_sessions:
            if session is not None and s.label != session:
                continue
            for start, n in s.venue_ranges.get((tr_id, code), ()):
                out.extend(tape.trades(start, start + n))
        return out

    def describe_sessions(self) -> list[dict[str, Any]]:
        return [{"label": s.label, "app_key": s.app_key, "subscriptions": list(s.subs),
                 "queued": len(s.queue), "pings_sent": s.pings_sent, "pongs": s.pongs}
                for s in self.live]


__all__ = ["DATA", "EXPECTED_TRS", "RAW_TEXT", "TEXT", "TR_BOOK", "Session", "SimState"]
