"""The simulator facade: a KIS-like WebSocket server, a REST server and a market on one loop.

``Simulator`` composes the parts, each with one job: :mod:`.ws` (sessions, registrations,
PINGPONG), :mod:`.rest` (OAuth and quotations), :mod:`.state` (slots, registrations, credentials
issued, what was sent), :mod:`.faults` (fault switches as data) and :mod:`.market` (prices,
trades, history). It runs a market task generating trades every ``tick_interval`` and a
housekeeping task (scheduled jumps, PINGPONG, pong timeouts, fault expiry).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..aio import cancel_and_wait
from .config import HaltSpec, SimConfig
from .faults import Faults
from .market import Market
from .spikes import Move
from .tape import SimTrade
from .vi import HaltEvent, ViEvent
from .rest import RestServer
from .state import SimState
from .ws import ENCRYPTED_TRS, KNOWN_TRS, WsServer

log = logging.getLogger(__name__)


class Simulator:
    """A KIS-compatible market simulator on loopback. See :class:`SimConfig`.

    ``async with Simulator(SimConfig()) as sim: ...`` or ``await sim.start()`` / ``await sim.stop()``.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        self.market: Market | None = None
        self._state = SimState(cfg.send_queue_limit, cfg.slot_hold_seconds)
        self.stats = self._state.stats
        self.faults = Faults(self._state, cfg.rejected_app_keys)   # switchable before and after start()
        self._ws = WsServer(cfg, self._state, self.faults)
        self._rest = RestServer(cfg, self._state, self.faults)
        self._tasks: list[asyncio.Task] = []
        self._pending_jumps: list[tuple[float, Any]] = []
        self.ws_url = ""
        self.rest_url = ""
        self.ws_port = 0
        self.rest_port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def loop_time(self) -> float:
        return self._state.loop_time()

    async def start(self) -> Simulator:
        cfg = self.config
        self._state.loop = asyncio.get_running_loop()
        now = self.loop_time()
        self.market = self._state.market = Market(cfg, now)
        for h in cfg.halts:              # halted from the start: before the first trade
            if h.after_seconds <= 0:
                self.market.halt(h.code, h.seconds, now)
        self._pending_jumps = sorted([(now + j.after_seconds, j) for j in cfg.jumps] +
                                     [(now + h.after_seconds, h) for h in cfg.halts if h.after_seconds > 0],
                                     key=lambda x: x[0])
        try:
            self.ws_url = await self._ws.start()
            self.rest_url = await self._rest.start()
        except BaseException:
            await self.stop()      # e.g. the REST port is taken: release the WebSocket port
            raise
        self.ws_port, self.rest_port = self._ws.port, self._rest.port
        self._tasks = [asyncio.create_task(self._market_loop(), name="sim-market"),
                       asyncio.create_task(self._housekeeping(), name="sim-housekeeping")]
        log.info("simulator on %s and %s", self.ws_url, self.rest_url)
        return self

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []
        await self._ws.stop()
        await self._rest.stop()

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
        """Start trading ``code``, listed or not (a listed code also starts when first
        subscribed or queried; an unlisted one only with ``SimConfig.invent_unknown_codes``)."""
        assert self.market is not None
        self.market.add_symbol(code, now=self.loop_time())

    def codes(self) -> list[str]:
        return self.market.codes() if self.market else []

    def history(self, code: str, venue: str = "krx") -> list[SimTrade]:
        """Today's trades of ``code`` on ``venue`` in order (what its TR carried and REST with
        its market code serves): ``krx`` (H0STCNT0 / J), ``nxt`` (H0NXCNT0 / NX) or ``total``
        (H0UNCNT0 / UN: both venues, integrated cumulative volume)."""
        return self.market.history(code, venue) if self.market else []

    def vi_events(self) -> list[ViEvent]:
        """Every VI so far (running ones have ``end`` None), in start order."""
        return self.market.vi_events() if self.market else []

    def halts(self) -> list[HaltEvent]:
        """Every trading halt so far (running ones have ``end`` None), in start order."""
        return self.market.halts() if self.market else []

    def moves(self) -> list[Move]:
        """Every large move started so far — scripted jumps and news spikes — in start order."""
        return self.market.moves() if self.market else []

    def sent_counts(self) -> dict[str, dict[str, int]]:
        """Records handed to each session's socket, by session label then code."""
        return self._state.sent_counts()

    def sent_trades(self, code: str, session: str | None = None, venue: str = "krx") -> list[SimTrade]:
        """The trades of ``code`` sent on ``venue``'s TR (to ``session``, or to any session, in
        send order)."""
        return self._state.sent_trades(code, session, venue)

    def sessions(self) -> list[dict[str, Any]]:
        """Live sessions: label, app key, registrations (for tests and the demo UI)."""
        return self._state.describe_sessions()

    def session_labels(self) -> list[str]:
        return [s.label for s in self._state.all_sessions]

    def issue_approval_key(self, app_key: str) -> str:
        """Register an approval key directly (tests that skip the REST call)."""
        return self._state.issue_approval_key(app_key)

    def approval_keys(self) -> list[str]:
        """The approval keys currently valid (tests check none of them reaches a log)."""
        return list(self._state.approvals)

    # -- market loop --------------------------------------------------------------------------
    async def _market_loop(self) -> None:
        interval = self.config.tick_interval
        market = self.market
        assert market is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        steps_done = 0
        max_catchup = max(1, int(0.25 / interval))  # overloaded: skip (and count) rather than burst
        subscribers = self._state.trade_subscribers
        by_tr = self._state.trade_index
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
                    generated = market.generate(due, now, subscribers, by_tr)
                except Exception:       # never let one bad step kill the market
                    log.exception("simulator market step failed")
                    generated = []
                if generated:
                    self._ws.deliver(generated)
            delay = start + (steps_done + 1) * interval - loop.time()
            await asyncio.sleep(max(0.0, delay))

    async def _housekeeping(self) -> None:
        cfg = self.config
        period = max(0.01, min(0.25, cfg.ping_interval / 5, cfg.pong_timeout / 5))
        assert self.market is not None
        while True:
            await asyncio.sleep(period)
            now = self.loop_time()
            while self._pending_jumps and self._pending_jumps[0][0] <= now:
                _, spec = self._pending_jumps.pop(0)
                if isinstance(spec, HaltSpec):
                    self.market.halt(spec.code, spec.seconds, now)
                else:
                    self.market.apply_jump_spec(spec, now)
            self._ws.send_expected(now)
            self._ws.keep_alive(now)


__all__ = ["ENCRYPTED_TRS", "Faults", "KNOWN_TRS", "Simulator"]
