"""FeedManager: the collector's view of the feed — every trade of the watchlist, once or more.

It owns one REST client, one WebSocket session and one poller per app key, spreads the
watchlist over the sessions (``plan_shards``), polls what fits nowhere, moves a down key's
symbols elsewhere (``failover``), and back-fills every gap (``backfill_queue``):

* after every (re)subscription of a symbol, from the last cumulative volume we hold (or from the
  caller's ``last_seen`` / pending gaps at start-up);
* whenever a live trade's ``acml_vol - cntg_vol`` is ahead of the last cumulative volume (a
  trade was missed without a reconnect, e.g. a garbage frame replaced it).

Delivery: ``on_ticks(ticks, source)`` is called synchronously on the loop with the trades of ONE
network read, ONE back-fill run (chunked) or ONE poll — never per tick (ib_async's "one event
per read"). Duplicates between sources are expected and harmless: storage dedupes on
(venue, code, business date, cum_volume).

Venue (``market.venues``): every session subscribes the venue's trade TR, polling and back-fill
use its REST market code, every tick carries it. When the server refuses the venue's TR (or, the
other reading of "모의투자 미지원", accepts it but refuses its REST market code), the feed falls
back to KRX for the rest of its run (``venue_fallback.py``). The periodic judgement — symbol
states, dark clock, failover — is ``monitor.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime

import aiohttp

from ..aio import cancel_and_wait
from ..config import AppCredential, Environment
from ..core.backoff import Backoff, BackoffPolicy
from ..core.events import (
    Event, EventBus, FeedStats, PendingGap, SessionStateEvent, SubscriptionPlanEvent,
    SymbolFeedState,
)
from ..core.ticks import SOURCE_POLL, SOURCE_WS, Tick
from ..market.venues import venue as venue_named
from ..protocol.messages import ControlReply
from .backfill import Backfiller
from .backfill_queue import BackfillScheduler
from .coalesce import LiveTradeCoalescer
from .config import FeedConfig
from .failover import Failover, Routing, route
from .monitor import FeedMonitor
from .poller import Poller
from .problems import ProblemReporter
from .rest import KisRestClient, kst_now
from .session import FeedSession, SessionListener
from .sharding import ShardPlan, plan_shards
from .stats import feed_stats
from .symbols import SymbolTable
from .venue_fallback import VenueFallback

log = logging.getLogger(__name__)

OnTicks = Callable[[Sequence[Tick], str], None]
#: (code, venue) → (business date, cum_volume or None, HHMMSS) of the trade to resume after: a
#: cumulative volume of that venue's chain, or None = back-fill from HHMMSS (no trade of that
#: venue known, e.g. after a switch of venue)
LastSeen = Callable[[str, str], "tuple[date, int | None, str] | None"]
MarketHook = Callable[[datetime], bool]



class FeedManager(FeedMonitor, VenueFallback, SessionListener):
    def __init__(self, env: Environment, credentials: Sequence[AppCredential], on_ticks: OnTicks,
                 *, config: FeedConfig | None = None, bus: EventBus | None = None,
                 last_seen: LastSeen | None = None, is_market_open: MarketHook | None = None,
                 is_continuous: MarketHook | None = None, clock: Callable[[], datetime] = kst_now,
                 http: aiohttp.ClientSession | None = None) -> None:
        """``is_market_open``: polling pauses while it says closed (sessions stay connected;
        PINGPONG keeps them alive). ``is_continuous``: continuous trading (the watchdog may use
        the observed trade rate). Both should follow :attr:`venue` (it changes on a fallback).
        ``config.always_open`` ignores both (simulator, tests)."""
        if not credentials:
            raise ValueError("at least one app key is needed")
        self.env = env
        self.credentials = list(credentials)
        self.config = config or FeedConfig()
        self._emit = on_ticks
        self._live_trades = LiveTradeCoalescer(self._emit_live)
        self.bus = bus
        self.last_seen = last_seen
        self.clock = clock
        always = self.config.always_open
        self.is_market_open = None if always else is_market_open
        self._is_continuous = (lambda _now: True) if always else is_continuous
        self._http = http
        self._own_http = http is None
        self._rng = random.Random(self.config.seed)
        self.problems = ProblemReporter(self._publish)
        self.venue = venue_named(self.config.venue)   # what the feed streams now
        self.fallback_from: str | None = None         # the venue refused (fallback to KRX)
        self.backfiller = Backfiller(clock=clock, venue=self.venue)
        self.symbols = SymbolTable()
        self.rest: list[KisRestClient] = []
        self.sessions: list[FeedSession] = []
        self.pollers: list[Poller] = []
        self.plan = ShardPlan(tuple(() for _ in self.credentials), (), 0)
        self.routing: Routing | None = None
        self.failover = Failover([c.label for c in self.credentials], self.config.failover)
        self.scheduler = BackfillScheduler(
            self.rest, self.backfiller, self.config.backfill, self.symbols,
            business_date=self.business_date, route=self._rest_index, deliver=self._deliver,
            report=self.problems.report, rng=self._rng)
        self._capacity: dict[int, int] = {}
        self._exclude: dict[int, set[str]] = {}
        self._business_date: date | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self.started_hhmmss = "000000"
        self._started = False
        self._announced_live = False
        self.polled = 0
        self.gaps_detected_live = 0
        self.rejections = 0
        self._unrecoverable_past: list[PendingGap] = []    # pending gaps of past days (reported)
        self.priority: int | None = None    # leading codes placed live first (the shown watchlist)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, codes: Iterable[str], pending_gaps: Sequence[PendingGap] = (),
                    first: int | None = None) -> None:
        """Connect every key and stream ``codes``; ``pending_gaps`` (left by an earlier run) are
        back-filled before anything else."""
        if self._started:
            await self.set_symbols(codes, first)
            return
        self._started = True
        self.started_hhmmss = self.clock().strftime("%H%M%S")
        if self._http is None:
            self._http = aiohttp.ClientSession()
        continuous = self._is_continuous
        busy = None if continuous is None else (lambda: continuous(self.clock()))
        session_config = replace(self.config.session, tr_id=self.venue.tr_id)
        for cred in self.credentials:
            rest = KisRestClient(self.env, cred, self._http, **self.config.rest_options)  # type: ignore[arg-type]
            self.rest.append(rest)
            self.sessions.append(FeedSession(self.env, rest, label=cred.label,
                                             config=session_config, listener=self,
                                             rng=random.Random(self._rng.random()), busy_phase=busy))
            poll = self.config.poll
            self.pollers.append(Poller(
                rest, self.backfiller, emit=self._on_poll, last_cum=self.symbols.last_cum,
                business_date=self.business_date, mode=poll.mode, share=poll.share,
                min_interval=poll.min_interval, is_open=self.is_market_open, clock=self.clock,
                on_problem=lambda m, lbl=cred.label: self.problems.report(lbl, m),
                backoff=Backoff(BackoffPolicy(initial=5.0, cap=60.0, jitter=0.2),
                                random.Random(self._rng.random())),
                request_backfill=self.scheduler.request))
        self.priority = first
        codes = list(dict.fromkeys(codes))
        self.symbols.sync(codes)
        if self.last_seen is not None:
            for c in codes:
                self._seed_last_seen(c)
        self._unrecoverable_past = self.scheduler.submit_pending(pending_gaps)
        self.scheduler.start()
        self._apply()
        self.failover.started(time.monotonic())
        for s in self.sessions:
            await s.start()
        for p in self.pollers:
            p.start()
        loop = asyncio.get_running_loop()
        self._monitor = loop.create_task(self._monitor_loop(), name="feed-monitor")
        if not self.venue.is_fallback and codes:
            self._probe = loop.create_task(self._probe_venue(codes[0]), name="feed-venue-probe")

    @property
    def unrecoverable(self) -> list[PendingGap]:
        """Gaps no back-fill can fetch: past days' pending gaps and today's lost stretches (the
        engine keeps them on record, and its restart chain check skips them)."""
        return self._unrecoverable_past + list(self.scheduler.lost_today)

    async def stop(self, drain_timeout: float | None = None) -> list[PendingGap]:
        """Stop streaming; give back-fills already under way up to ``drain_timeout`` seconds
        (default ``config.backfill.drain_timeout``) to finish. Returns the gaps still unfilled:
        the caller records them and hands them to the next ``start``."""
        await cancel_and_wait([self._monitor, self._probe])
        if self._started:      # the states the stats report are those of now, not of the last look
            self._refresh_states(time.monotonic())
        for p in self.pollers:
            await p.stop()
        await asyncio.gather(*(s.stop() for s in self.sessions), return_exceptions=True)
        self._live_trades.flush()
        left = await self.scheduler.drain(drain_timeout)
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None
        self._started = False
        return left

    async def __aenter__(self) -> FeedManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def set_symbols(self, codes: Iterable[str], first: int | None = None) -> None:
        """Change the watchlist while running: subscribes/unsubscribes on live sessions and moves
        as few symbols as possible. ``first``: the leading codes that get live registrations
        before the rest (``plan_shards``)."""
        codes = list(dict.fromkeys(codes))
        self.priority = first
        removed = set(self.symbols.codes()) - set(codes)
        added = self.symbols.sync(codes)
        for c in removed:
            self.scheduler.forget(c)
        if self.last_seen is not None:
            for c in added:
                self._seed_last_seen(c)
        self._apply()

    # -- public views --------------------------------------------------------------------------
    @property
    def codes(self) -> list[str]:
        return self.symbols.codes()

    def stats(self) -> FeedStats:
        return feed_stats(self.sessions, self.pollers, self.rest, self.scheduler, self.failover,
                          self.symbols, polled=self.polled, rejections=self.rejections,
                          gaps_detected_live=self.gaps_detected_live)

    def symbol_states(self) -> dict[str, SymbolFeedState]:
        """Each symbol's state, computed now (the one rule: ``symbols.feed_state``)."""
        self._refresh_states(time.monotonic())
        return {sym.code: sym.state for sym in self.symbols}

    def backfills_pending(self) -> int:
        """Back-fill runs queued or running (0 = every known gap has been worked on)."""
        return self.scheduler.pending()

    def all_live(self) -> bool:
        """Every symbol that has a registration is live on it (polled ones aside)."""
        polled = set(self.plan.polled)
        return all(self._live(sym.code) for sym in self.symbols if sym.code not in polled)

    def business_date(self) -> date:
        return self._business_date or self.clock().date()

    # -- planning ------------------------------------------------------------------------------
    def _apply(self) -> None:
        codes = self.symbols.codes()
        self.plan = plan_shards(codes, len(self.credentials), self.config.per_session,
                                current=self.plan.sessions, capacity=self._capacity,
                                exclude={i: frozenset(v) for i, v in self._exclude.items()},
                                first=self.priority)
        self._route()

    def _route(self) -> None:
        new = route(self.plan.sessions, self.plan.polled, self.config.per_session, self._capacity,
                    self.failover.down(), self.failover.rejected(), self.routing, self._exclude)
        self.routing = new
        for i, sess_codes in enumerate(new.sessions):
            if i < len(self.sessions):
                self.sessions[i].set_codes(sess_codes)
        for i, p in enumerate(self.pollers):
            p.set_codes(new.pollers[i])
        labels = [c.label for c in self.credentials]
        down = self.failover.down()
        self._publish(SubscriptionPlanEvent(
            live={labels[i]: s for i, s in enumerate(new.sessions) if i not in down},
            polled=new.polled, keys_needed=self.plan.keys_needed,
            keys_configured=len(self.credentials),
            keys_down=tuple(labels[i] for i in sorted(down))))

    def _rest_index(self, code: str) -> int:
        """The app key whose REST budget a symbol's back-fill uses: its carrier's, if usable."""
        usable = [i for i in range(len(self.credentials)) if i not in self.failover.rejected()]
        carriers = self.routing.carriers(code) if self.routing else []
        for i in carriers:
            if i in usable:
                return i
        usable = usable or list(range(len(self.credentials)))
        return usable[abs(hash(code)) % len(usable)]

    def _seed_last_seen(self, code: str) -> None:
        """Where ``code``'s chain on the current venue resumes: a cumulative volume, or a time
        to back-fill from when no trade of this venue is known."""
        assert self.last_seen is not None
        try:
            seen = self.last_seen(code, self.venue.name)
        except Exception:
            log.exception("last_seen(%s) failed", code)
            return
        if seen is not None and seen[0] == self.business_date():
            if seen[1] is None:
                self.symbols[code].backfill_since = seen[2]
            else:
                self.symbols[code].advance(int(seen[1]))

    # -- session callbacks (SessionListener) ---------------------------------------------------
    def on_ticks(self, session: FeedSession, ticks: list[Tick]) -> None:
        for code, last_cum in self.symbols.follow_live(ticks):
            self.gaps_detected_live += 1
            self.scheduler.request_gap(code, last_cum)
        self._business_date = ticks[-1].timestamp.date()
        self._deliver(ticks, SOURCE_WS)

    def on_subscribed(self, session: FeedSession, code: str) -> None:
        sym = self.symbols.get(code)
        if sym is None:
            return
        if not sym.ever_acked:
            sym.ever_acked = True
            sym.live_since = sym.live_since or self.clock().strftime("%H%M%S")
        if self._live(code) and any(code in s.acked for s in self.sessions if s is not session):
            return     # already live on another key (failover overlap): no new gap here
        sym.resync = True
        sym.live_from = None
        if sym.last_cum is not None:
            sym.backfill_since = None
            self.scheduler.request(code, sym.last_cum)
        elif sym.backfill_since:
            # no trade of this venue known: fetch from that time (a switch of venue, a fallback)
            self.scheduler.request(code, None, since=sym.backfill_since)
        elif session.reconnects and sym.live_since:
            # live before, but no trade seen yet: fetch what happened since it first went live
            self.scheduler.request(code, None, since=sym.live_since)

    def on_rejected(self, session: FeedSession, code: str, reply: ControlReply) -> None:
        self.rejections += 1
        i = self.sessions.index(session)
        self._exclude.setdefault(i, set()).add(code)
        self._capacity[i] = len(session.wanted)
        self.problems.report(session.label, f"{code} refused by KIS on {session.label} "
                             f"({reply.msg_cd} {reply.msg1}); moving it to another key or to polling",
                             code="feed.refused", symbol=code, label=session.label)
        asyncio.get_running_loop().call_soon(self._apply)

    def on_state(self, session: FeedSession, state: str, detail: str,
                 retry_in: float | None) -> None:
        if session in self.sessions:
            grace = len(session.wanted) * self.config.session.subscribe_spacing
            self.failover.observe(self.sessions.index(session), state, detail, time.monotonic(),
                                  retry_in, grace)
            asyncio.get_running_loop().call_soon(self._evaluate_failover)
        self._publish(SessionStateEvent(session.label, state, tuple(sorted(session.acked)),
                                        detail, retry_in))

    def on_protocol_error(self, session: FeedSession, reason: str, excerpt: str) -> None:
        self.problems.report(session.label, f"protocol error on {session.label}: {reason}",
                             throttle_key=f"proto:{session.label}", detail=excerpt[:80],
                             code="feed.protocol", label=session.label)

    def on_problem(self, session: FeedSession, message: str, fatal: bool) -> None:
        self.problems.report(session.label, message, fatal)

    # -- polling -------------------------------------------------------------------------------
    def _on_poll(self, ticks: list[Tick], code: str, newest_cum: int) -> None:
        sym = self.symbols.get(code)
        if sym is None:
            return
        if newest_cum:
            sym.advance(newest_cum)
        if ticks:
            self.polled += len(ticks)
            self._deliver(ticks, SOURCE_POLL)

    # -- output --------------------------------------------------------------------------------
    def _deliver(self, ticks: Sequence[Tick], source: str) -> None:
        if ticks and ticks[0].venue != self.venue.name:
            return      # fetched on the venue the feed fell back from: another chain
        if source == SOURCE_WS:
            if ticks:
                self._live_trades.add(ticks)      # one call per event-loop pass (coalesce)
            return
        self._live_trades.flush()             # live trades read before these keep their place
        self._emit_now(ticks, source)

    def _emit_live(self, ticks: list[Tick]) -> None:
        self._emit_now(ticks, SOURCE_WS)

    def _emit_now(self, ticks: Sequence[Tick], source: str) -> None:
        try:
            self._emit(ticks, source)
        except Exception:
            log.exception("on_ticks callback failed (%d %s ticks)", len(ticks), source)

    def _publish(self, event: Event) -> None:
        if self.bus is not None:
            self.bus.publish(event)


__all__ = ["FeedManager"]
