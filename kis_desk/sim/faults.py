"""Run-time fault switches of the simulator (demo menu, tests), kept as data.

The servers read these settings (``stalled_for``, ``rejecting_for``, ``key_rejected``, the REST
windows); the one-shot actions (drop, garbage frames, forgetting approvals) act on the shared
:class:`~kis_desk.sim.state.SimState`. Every switch may name one app key (the KIS app key string
a session bound with its approval key; ``Simulator.sessions()`` shows it) or ``None`` for all.
All methods are synchronous and take effect immediately.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable

from .state import RAW_TEXT, TEXT, SimState
from .vi import HaltEvent

#: key of the windows that apply to every app key
ALL_KEYS = None


class Faults:
    """Fault settings plus the one-shot actions. Windows are loop times (``math.inf`` = until cleared)."""

    def __init__(self, state: SimState, rejected_app_keys: Iterable[str] = ()) -> None:
        self._state = state
        self.stall_until: dict[str | None, float] = {}     # app key (None = all) -> loop time
        self.reject_until: dict[str | None, float] = {}    # app key (None = all) -> loop time
        self._configured_rejects = frozenset(rejected_app_keys)   # SimConfig: never valid
        self.rejected_keys: set[str] = set()                      # reject_key(): until accepted
        self.rest_slow_until: float | None = None
        self.rest_delay = 0.0
        self.rest_fail_until: float | None = None
        # trade TRs the server does not offer: tr_id -> app keys (None = every key)
        self.refused_trs: dict[str, set[str | None]] = {}
        self.muted_trs: dict[str, set[str | None]] = {}
        self._unstalled = asyncio.Event()     # replaced (after being set) whenever a stall ends
        self.counts: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def _until(self, seconds: float | None) -> float:
        return math.inf if seconds is None else self._state.loop_time() + seconds

    @staticmethod
    def _active(windows: dict[str | None, float], app_key: str | None, now: float) -> bool:
        return windows.get(ALL_KEYS, -math.inf) > now or \
            (app_key is not None and windows.get(app_key, -math.inf) > now)

    # -- WebSocket: stall -----------------------------------------------------------------------
    def stall(self, seconds: float | None = None, app_key: str | None = None) -> None:
        """Keep the sockets (of ``app_key``'s sessions; None = all) open but send nothing — no
        data, no acks, no PINGPONG — for ``seconds`` (None = until :meth:`clear_stall`). Trades
        made meanwhile are not sent to them (back-fill finds them); other keys are unaffected."""
        self._count("stall")
        self.stall_until[app_key] = self._until(seconds)

    def clear_stall(self, app_key: str | None = None) -> None:
        """End the stall of ``app_key`` (None = every stall); the idle clocks restart."""
        self._end_stalls(list(self.stall_until) if app_key is None else [app_key])

    def _end_stalls(self, keys: list[str | None]) -> None:
        now = self._state.loop_time()
        for key in keys:
            if self.stall_until.pop(key, None) is not None:
                for s in self._state.sessions_of(key):
                    s.restart_idle_clock(now)
        self._unstalled.set()
        self._unstalled = asyncio.Event()

    def expire(self, now: float) -> None:
        """Remove the windows that have run out (the housekeeping task calls this)."""
        ended = [k for k, until in self.stall_until.items() if until <= now]
        if ended:
            self._end_stalls(ended)
        for key in [k for k, until in self.reject_until.items() if until <= now]:
            del self.reject_until[key]

    @property
    def stalled(self) -> bool:
        """A stall of every key is on."""
        return self._active(self.stall_until, ALL_KEYS, self._state.loop_time())

    def stalled_for(self, app_key: str | None) -> bool:
        """Sessions of ``app_key`` (None = not bound yet) send nothing now."""
        return bool(self.stall_until) and self._active(self.stall_until, app_key, self._state.loop_time())

    async def wait_unstalled(self, app_key: str | None) -> None:
        """Return once ``app_key``'s sessions may send again."""
        while self.stalled_for(app_key):
            now = self._state.loop_time()
            ends = [u for k, u in self.stall_until.items() if k is ALL_KEYS or k == app_key]
            remaining = max(0.0, min([u - now for u in ends] or [0.0]))
            try:
                await asyncio.wait_for(self._unstalled.wait(), timeout=min(remaining, 3600.0))
            except TimeoutError:
                self.expire(self._state.loop_time())

    # -- WebSocket: sessions ---------------------------------------------------------------------
    def reject_sessions(self, seconds: float | None = None, app_key: str | None = None) -> None:
        """New sessions (of ``app_key``; None = all keys) get OPSP8996 ALREADY IN USE appkey and a
        drop for ``seconds`` (None = until cleared). Sessions already running stay up."""
        self._count("reject_sessions")
        self.reject_until[app_key] = self._until(seconds)

    @property
    def rejecting(self) -> bool:
        """New sessions of every key are refused now."""
        return self._active(self.reject_until, ALL_KEYS, self._state.loop_time())

    def rejecting_for(self, app_key: str) -> bool:
        return bool(self.reject_until) and self._active(self.reject_until, app_key, self._state.loop_time())

    def drop(self, app_key: str | None = None) -> int:
        """Abort ``app_key``'s sockets (None = every socket) abruptly, no close frame. Returns how many."""
        self._count("drop" if app_key is not None else "drop_all")
        sessions = self._state.sessions_of(app_key)
        for s in sessions:
            s.abort(f"fault: drop {app_key}" if app_key is not None else "fault: drop_all")
        return len(sessions)

    def drop_all(self) -> int:
        """Abort every socket abruptly (no close frame). Returns how many were dropped."""
        return self.drop(None)

    def send_garbage(self, text: str = "GARBAGE\x00~#not-a-kis-frame#~", app_key: str | None = None) -> int:
        """One garbage text frame to every session (of ``app_key``)."""
        self._count("garbage")
        return self._broadcast((TEXT, text), app_key)

    def send_invalid_utf8(self, data: bytes = b'{"header":{"tr_id":"H0STCNT0"},"x":"\xb0\xa1\xff\xfe"}',
                          app_key: str | None = None) -> int:
        """One *text* frame whose bytes are not valid UTF-8 (strict clients fail with 1007)."""
        self._count("invalid_utf8")
        return self._broadcast((RAW_TEXT, data), app_key)

    def send_oversized(self, size: int = 2 * 1024 * 1024, app_key: str | None = None) -> int:
        """One text frame of ``size`` bytes (clients with a small max_size fail with 1009)."""
        self._count("oversized")
        pad = "x" * max(0, size - 40)
        return self._broadcast((TEXT, '{"header":{"tr_id":"OVERSIZE"},"p":"' + pad + '"}'), app_key)

    def _broadcast(self, item: tuple, app_key: str | None) -> int:
        sessions = self._state.sessions_of(app_key)
        for s in sessions:
            s.enqueue(item)
        return len(sessions)

    # -- TRs not offered ("모의투자 미지원", kis-protocol.md §1.1, §6.1) --------------------------------
    def refuse_tr(self, tr_id: str, app_key: str | None = None) -> None:
        """From now on registrations of ``tr_id`` (by ``app_key``'s sessions; None = every key)
        are answered ``OPSP8991 SUBSCRIBE ERROR : invalid tr_id`` (rt_cd 9), as the mock mode
        answers the TRs the mock server does not offer. Registrations made before stay."""
        self._count("refuse_tr")
        self.refused_trs.setdefault(tr_id, set()).add(app_key)

    def mute_tr(self, tr_id: str, app_key: str | None = None) -> None:
        """The other reading of "not offered": registrations of ``tr_id`` are acknowledged but
        nothing is ever streamed on it, and REST quotations with its market code (NX / UN) are
        refused (OPSQ2001 INVALID_CHECK_MRKT_DIV_CODE, as the mock mode answers)."""
        self._count("mute_tr")
        self.muted_trs.setdefault(tr_id, set()).add(app_key)

    def offer_tr(self, tr_id: str) -> None:
        """Undo :meth:`refuse_tr` / :meth:`mute_tr` of ``tr_id`` for every key."""
        self.refused_trs.pop(tr_id, None)
        self.muted_trs.pop(tr_id, None)

    @staticmethod
    def _for(table: dict[str, set[str | None]], tr_id: str, app_key: str | None) -> bool:
        keys = table.get(tr_id)
        return bool(keys) and (ALL_KEYS in keys or app_key in keys)

    def tr_refused_for(self, tr_id: str, app_key: str | None) -> bool:
        return bool(self.refused_trs) and self._for(self.refused_trs, tr_id, app_key)

    def tr_muted_for(self, tr_id: str, app_key: str | None) -> bool:
        return bool(self.muted_trs) and self._for(self.muted_trs, tr_id, app_key)

    # -- market ----------------------------------------------------------------------------------
    def halt(self, code: str, seconds: float | None = None) -> HaltEvent:
        """Halt trading of ``code`` (거래정지) on every venue for ``seconds`` (None = until
        :meth:`resume`): no trades, TRHT_YN = Y in its expected-price frames and
        ``temp_stop_yn`` = Y in inquire-price, then continuous trading resumes."""
        self._count("halt")
        market = self._state.market
        if market is None:
            raise RuntimeError("start the simulator before halting a symbol")
        return market.halt(code, seconds, self._state.loop_time())

    def resume(self, code: str) -> None:
        """End ``code``'s halt now."""
        market = self._state.market
        if market is not None:
            market.resume(code, self._state.loop_time())

    # -- credentials -----------------------------------------------------------------------------
    def reject_key(self, app_key: str) -> None:
        """From now on ``app_key`` is invalid: approval and token requests and REST calls get
        KIS's wrong-app-key answer (EGW00103), its approval keys are forgotten (a new session's
        subscribe gets OPSP0011). Sessions already set up keep streaming (KIS checks the approval
        key only at set-up). Other keys are unaffected."""
        self._count("reject_key")
        self.rejected_keys.add(app_key)
        self._state.forget_approvals(app_key)

    def accept_key(self, app_key: str) -> None:
        """Undo :meth:`reject_key`."""
        self.rejected_keys.discard(app_key)

    def key_rejected(self, app_key: str) -> bool:
        return app_key in self.rejected_keys or app_key in self._configured_rejects

    def forget_approvals(self) -> None:
        """The server forgets every approval key it issued (next subscribe → OPSP0011)."""
        self._count("forget_approvals")
        self._state.forget_approvals()

    # -- REST -------------------------------------------------------------------------------------
    def slow_rest(self, delay: float, seconds: float | None = None) -> None:
        """Delay every REST response by ``delay`` seconds, for ``seconds`` (None = until cleared)."""
        self._count("slow_rest")
        self.rest_delay = delay
        self.rest_slow_until = self._until(seconds)

    def fail_rest(self, seconds: float | None = None) -> None:
        """Answer every REST call with HTTP 500, for ``seconds`` (None = until cleared)."""
        self._count("fail_rest")
        self.rest_fail_until = self._until(seconds)

    def rest_delay_now(self) -> float:
        now = self._state.loop_time()
        return self.rest_delay if self.rest_slow_until is not None and now < self.rest_slow_until else 0.0

    def rest_failing(self) -> bool:
        return self.rest_fail_until is not None and self._state.loop_time() < self.rest_fail_until

    def clear(self) -> None:
        """Switch every fault off (keys rejected with :meth:`reject_key` are accepted again;
        ``SimConfig.rejected_app_keys`` stays in force)."""
        self.clear_stall()
        self.reject_until.clear()
        self.rejected_keys.clear()
        self.rest_slow_until = None
        self.rest_delay = 0.0
        self.rest_fail_until = None
        self.refused_trs.clear()
        self.muted_trs.clear()


__all__ = ["ALL_KEYS", "Faults"]
