"""The feed's watch over itself: per-symbol state and dark clock, stalled or refused keys, the
failover that moves a down key's symbols, and the warnings about symbols without data.

A mixin of :class:`~kis_desk.feed.manager.FeedManager`, kept apart from its life cycle and
delivery because it is the periodic judgement (every ``failover.monitor_interval``) over the
sessions', pollers' and back-fills' state, not the data path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..core.events import FeedStateEvent, SymbolFeedState
from .failover import describe_move
from .session import LIVE as SESSION_LIVE
from .session import FeedSession
from .symbols import feed_state

log = logging.getLogger("kis_desk.feed.manager")


class FeedMonitor:
    """State, dark clock and failover of a FeedManager (see the module docstring)."""

    # provided by FeedManager
    sessions: list[FeedSession]
    pollers: list[Any]
    symbols: Any
    failover: Any
    routing: Any
    scheduler: Any
    problems: Any
    config: Any
    credentials: list[Any]
    plan: Any
    _started: bool
    _announced_live: bool

    def _live(self, code: str) -> bool:
        return any(s.connected and code in s.acked for s in self.sessions)

    @staticmethod
    def _suspect_silent(sess: FeedSession) -> bool:
        """A LIVE socket that normally trades every few seconds and has been silent for half its
        stall limit (continuous trading only: outside it the limit is ``silence_timeout``)."""
        limit = sess.stall_limit()      # < silence_timeout only while busy and trading
        return (sess.state == SESSION_LIVE and limit < sess.config.silence_timeout
                and sess.silent_for() >= limit / 2)

    def _refresh_states(self, now: float) -> bool:
        down = self.failover.down()
        ok_since = now - 3.0
        changed = False
        # a socket suspected of a stall is no data source: its symbols have had none since its
        # last frame (the dark clock starts there, so worst_gap_s counts the silent time too)
        silent = {id(s): s.silent_for() for s in self.sessions if self._suspect_silent(s)}
        for sym in self.symbols:
            code = sym.code
            polled_ok = any(p.ok_at.get(code, -1e9) >= ok_since - 2 * p.interval()
                            for p in self.pollers if code in p.codes)
            carriers = self.routing.carriers(code) if self.routing else []
            carrier_down = any(i in down for i in carriers) or (
                not carriers and not any(code in p.codes for p in self.pollers))
            on = [s for s in self.sessions if s.connected and code in s.acked]
            live = any(id(s) not in silent for s in on)
            quiet_since = now - min(silent[id(s)] for s in on) if on and not live else None
            state = feed_state(sym, live=live, polled_ok=polled_ok,
                               backfilling=self.scheduler.is_filling(code),
                               carrier_down=carrier_down)
            changed |= sym.set_state(state, now, quiet_since)
        return changed

    async def _monitor_loop(self) -> None:
        cfg = self.config.failover
        last_publish = 0.0
        while True:
            await asyncio.sleep(cfg.monitor_interval)
            now = time.monotonic()
            self._evaluate_failover()
            changed = self._refresh_states(now)
            self._report_dark(now)
            if changed or now - last_publish >= 1.0:
                last_publish = now
                self._publish(FeedStateEvent({s.code: s.state for s in self.symbols}, self.stats()))

    def _evaluate_failover(self) -> None:
        if not self._started:
            return
        for i, sess in enumerate(self.sessions):
            self.failover.observe_silence(i, self._suspect_silent(sess), time.monotonic())
            self.failover.observe_progress(i, sess.connected, len(sess.acked), time.monotonic())
        changes = self.failover.evaluate(time.monotonic())
        if changes:
            self._route()
            self._report_failover(changes)

    def _report_failover(self, changes: list) -> None:
        r = self.routing
        assert r is not None
        for key, down in changes:
            i = self.failover.keys.index(key)
            if down:
                labels = [c.label for c in self.credentials]
                self.problems.report(key.label, describe_move(key, i, self.plan.sessions[i], r, labels),
                                     code="feed.key_down", label=key.label)
            else:
                log.info("%s: live again for %.0f s; its symbols are back on it",
                            key.label, self.config.failover.recover_hold)

    def _report_dark(self, now: float) -> None:
        limit = self.config.failover.dark_warning_after
        dark = [s for s in self.symbols if not s.warned_dark and s.dark_for(now) >= limit]
        if dark:
            for s in dark:
                s.warned_dark = True
            codes = ", ".join(s.code for s in dark[:10]) + (" …" if len(dark) > 10 else "")
            self.problems.report("feed", f"{len(dark)} symbol(s) without any data source for "
                                 f"{limit:g} s or more: {codes}", code="feed.dark", count=len(dark),
                                 seconds=round(limit))
        if not self._announced_live and self.symbols and all(
                s.state in (SymbolFeedState.LIVE, SymbolFeedState.BACKFILLING) for s in self.symbols):
            self._announced_live = True
            log.info("all %d symbols live on %d app key(s)", len(self.symbols), len(self.sessions))



__all__ = ["FeedMonitor"]
