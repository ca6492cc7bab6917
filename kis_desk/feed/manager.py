"""FeedManager: the collector's view of the feed — every trade of the watchlist, once or more.

It owns one REST client and one WebSocket session per app key, spreads the watchlist over the
sessions (``plan_shards``), polls what fits nowhere, and back-fills every gap:

* after every (re)subscription of a symbol, from the last cumulative volume we hold (or from the
  caller's ``last_seen`` at start-up);
* whenever a live trade's ``acml_vol - cntg_vol`` is ahead of the last cumulative volume (a
  trade was missed without a reconnect, e.g. a garbage frame replaced it).

Delivery: ``on_ticks(ticks, source)`` is called synchronously on the loop with the trades of ONE
network read, ONE back-fill run (chunked) or ONE poll — never per tick (ib_async's "one event
per read"). Duplicates between sources are expected and harmless: storage dedupes on
(code, business date, cum_volume).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime

import aiohttp

from ..aio import cancel_and_wait
from ..config import AppCredential, Environment
from ..core.events import ErrorEvent, EventBus, SessionStateEvent, SubscriptionPlanEvent
from ..core.ticks import SOURCE_BACKFILL, SOURCE_POLL, SOURCE_WS, Tick
from ..protocol.messages import ControlReply
from .backfill import Backfiller
from ..core.backoff import Backoff, BackoffPolicy
from .poller import Poller
from .rest import CredentialError, KisError, KisRestClient, kst_now
from .session import FeedSession, SessionConfig, SessionListener
from .sharding import PER_SESSION, ShardPlan, plan_shards

log = logging.getLogger(__name__)

OnTicks = Callable[[Sequence[Tick], str], None]
LastSeen = Callable[[str], "tuple[date, int, str] | None"]

LIVE, POLLED, STALE, PENDING = "live", "polled", "stale", "pending"


def _merge_jobs(a: tuple[int | None, str | None],
                b: tuple[int | None, str | None]) -> tuple[int | None, str | None]:
    """One back-fill job that covers both: from the oldest known cumulative volume (it bounds
    everything after our last trade), else from the earliest time, else one page."""
    afters = [j[0] for j in (a, b) if j[0] is not None]
    if afters:
        return min(afters), None
    sinces = [j[1] for j in (a, b) if j[1] is not None]
    return None, min(sinces) if sinces else None


class _Listener(SessionListener):
    def __init__(self, manager: FeedManager) -> None:
        self.m = manager

    def on_ticks(self, session: FeedSession, ticks: list[Tick]) -> None:
        self.m._on_ws_ticks(ticks)

    def on_subscribed(self, session: FeedSession, code: str) -> None:
        self.m._on_subscribed(session, code)

    def on_rejected(self, session: FeedSession, code: str, reply: ControlReply) -> None:
        self.m._on_rejected(session, code, reply)

    def on_state(self, session: FeedSession, state: str, detail: str,
                 retry_in: float | None) -> None:
        self.m._publish(SessionStateEvent(session.label, state, tuple(sorted(session.acked)),
                                          detail, retry_in))

    def on_protocol_error(self, session: FeedSession, reason: str, excerpt: str) -> None:
        self.m._on_protocol_error(session, reason, excerpt)

    def on_problem(self, session: FeedSession, message: str, fatal: bool) -> None:
        self.m._error(session.label, message, fatal)


class FeedManager:
    def __init__(self, env: Environment, credentials: Sequence[AppCredential], on_ticks: OnTicks,
                 *, bus: EventBus | None = None, last_seen: LastSeen | None = None,
                 tr_id: str = "H0STCNT0", silence_timeout: float = 90.0,
                 backoff: BackoffPolicy | None = None, in_use_wait: float = 20.0,
                 credential_wait: float = 300.0, per_session: int = PER_SESSION,
                 subscribe_spacing: float = 0.02, max_size: int | None = 16 * 2**20,
                 poll_mode: str = "trades", poll_share: float = 0.7,
                 poll_min_interval: float = 0.5, backfill_workers: int = 4,
                 backfill_retries: int = 3, backfill_retry_later: float = 30.0,
                 gap_cooldown: float = 2.0, always_open: bool = True,
                 is_market_open: Callable[[datetime], bool] | None = None,
                 clock: Callable[[], datetime] = kst_now,
                 http: aiohttp.ClientSession | None = None,
                 rest_options: dict[str, float | int] | None = None,
                 seed: int | None = None) -> None:
        if not credentials:
            raise ValueError("at least one app key is needed")
        self.env = env
        self.credentials = list(credentials)
        self.on_ticks = on_ticks
        self.bus = bus
        self.last_seen = last_seen
        self.per_session = per_session
        self.clock = clock
        # calendar hook: polling pauses while it says closed (sessions stay connected quietly;
        # PINGPONG keeps them alive). always_open=True ignores it (simulator, tests).
        self.is_market_open = None if always_open else is_market_open
        self.gap_cooldown = gap_cooldown
        self.backfill_retry_later = backfill_retry_later
        self._http = http
        self._own_http = http is None
        self._rest_options = dict(rest_options or {})
        self._rng = random.Random(seed)
        self.session_config = SessionConfig(
            tr_id=tr_id, silence_timeout=silence_timeout, backoff=backoff or BackoffPolicy(),
            in_use_wait=in_use_wait, credential_wait=credential_wait,
            subscribe_spacing=subscribe_spacing, max_size=max_size)
        self.poll_mode = poll_mode
        self.poll_share = poll_share
        self.poll_min_interval = poll_min_interval
        self.backfill_workers = backfill_workers
        self.backfill_retries = backfill_retries
        # REST market division matching the real-time TR: KRX "J", integrated "UN", NXT "NX"
        self.market = {"H0UNCNT0": "UN", "H0NXCNT0": "NX"}.get(tr_id, "J")
        self.backfiller = Backfiller(clock=clock, market=self.market)
        self.rest: list[KisRestClient] = []
        self.sessions: list[FeedSession] = []
        self.pollers: list[Poller] = []
        self.codes: list[str] = []
        self._codes_set: set[str] = set()
        self.plan = ShardPlan(tuple(() for _ in self.credentials), (), 0)
        self._capacity: dict[int, int] = {}
        self._exclude: dict[int, set[str]] = {}
        self._last_cum: dict[str, int] = {}
        self._resync: set[str] = set()
        self._ever_acked: set[str] = set()
        self._live_since: dict[str, str] = {}
        self._live_from: dict[str, int] = {}     # code -> cum_volume where the live stream resumed
        self._business_date: date | None = None
        self._bf_queues: list[asyncio.Queue[str]] = []
        self._bf_pending: dict[str, tuple[int | None, str | None]] = {}
        self._bf_running: set[str] = set()
        self._bf_again: dict[str, tuple[int | None, str | None]] = {}
        self._bf_tasks: list[asyncio.Task[None]] = []
        self._bf_last_done: dict[str, float] = {}
        self._bf_deferred: dict[str, int] = {}
        self._bf_waiting: set[str] = set()       # failed; a retry is scheduled
        self._err_last: dict[str, float] = {}
        self._err_suppressed: dict[str, int] = {}
        self._started = False
        # counters
        self.backfilled = 0
        self.backfill_runs = 0
        self.backfill_failures = 0
        self.gaps_unrecovered = 0
        self.gap_volume_unrecovered = 0
        self.polled = 0
        self.gaps_detected_live = 0
        self.rejections = 0

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, codes: Iterable[str]) -> None:
        if self._started:
            await self.set_symbols(codes)
            return
        self._started = True
        if self._http is None:
            self._http = aiohttp.ClientSession()
        listener = _Listener(self)
        for i, cred in enumerate(self.credentials):
            rest = KisRestClient(self.env, cred, self._http, **self._rest_options)  # type: ignore[arg-type]
            self.rest.append(rest)
            self.sessions.append(FeedSession(self.env, rest, label=cred.label,
                                             config=self.session_config, listener=listener,
                                             rng=random.Random(self._rng.random())))
            self.pollers.append(Poller(
                rest, self.backfiller, emit=self._on_poll, last_cum=self._last_cum.get,
                business_date=self.business_date, mode=self.poll_mode, share=self.poll_share,
                min_interval=self.poll_min_interval, is_open=self.is_market_open,
                clock=self.clock, on_problem=lambda m, lbl=cred.label: self._error(lbl, m)))
            q: asyncio.Queue[str] = asyncio.Queue()
            self._bf_queues.append(q)
            for _ in range(self.backfill_workers):
                self._bf_tasks.append(asyncio.get_running_loop().create_task(self._bf_worker(i, q)))
        codes = list(dict.fromkeys(codes))
        if self.last_seen is not None:
            for c in codes:
                self._seed_last_seen(c)
        self._apply(codes)
        for s in self.sessions:
            await s.start()
        for p in self.pollers:
            p.start()

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop streaming; give back-fills already under way up to ``drain_timeout`` seconds to
        finish, so a clean shutdown does not leave the gap of a recent drop unfilled (a restart
        back-fills only from the newest stored trade onwards)."""
        for p in self.pollers:
            await p.stop()
        await asyncio.gather(*(s.stop() for s in self.sessions), return_exceptions=True)
        deadline = time.monotonic() + drain_timeout
        while (self._bf_pending or self._bf_running or self._bf_again) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await cancel_and_wait(self._bf_tasks)
        self._bf_tasks.clear()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None
        self._started = False

    async def __aenter__(self) -> FeedManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def set_symbols(self, codes: Iterable[str]) -> None:
        """Change the watchlist while running: subscribes/unsubscribes on live sessions and moves
        as few symbols as possible."""
        codes = list(dict.fromkeys(codes))
        for c in codes:
            if c not in self.codes and c not in self._last_cum and self.last_seen is not None:
                self._seed_last_seen(c)
        removed = set(self.codes) - set(codes)
        for c in removed:
            self._last_cum.pop(c, None)
            self._resync.discard(c)
            self._ever_acked.discard(c)
            self._live_since.pop(c, None)
            self._live_from.pop(c, None)
            self._bf_pending.pop(c, None)
            self._bf_deferred.pop(c, None)
            self._bf_last_done.pop(c, None)
            self._bf_waiting.discard(c)
        self._apply(codes)

    # -- public views --------------------------------------------------------------------------
    def stats(self) -> dict[str, int | float | None]:
        s = {k: 0 for k in ("received", "frames", "protocol_errors", "reconnects", "pingpongs",
                            "stalls", "oversized_closes", "in_use_refusals", "invalid_approvals",
                            "credential_failures")}
        for sess in self.sessions:
            st = sess.stats()
            for k in s:
                s[k] += int(st.get(k) or 0)
        resub = [x.last_resubscribe_seconds for x in self.sessions
                 if x.last_resubscribe_seconds is not None]
        out: dict[str, int | float | None] = dict(s)
        out.update(
            backfilled=self.backfilled, backfill_runs=self.backfill_runs,
            backfill_failures=self.backfill_failures,
            polled=self.polled, polls=sum(p.polls for p in self.pollers),
            poll_errors=sum(p.errors for p in self.pollers),
            gaps_unrecovered=self.gaps_unrecovered + sum(p.gaps for p in self.pollers),
            gap_volume_unrecovered=self.gap_volume_unrecovered + sum(p.gap_volume for p in self.pollers),
            gaps_detected_live=self.gaps_detected_live, rejections=self.rejections,
            rest_calls=sum(r.calls for r in self.rest),
            rest_rate_limited=sum(r.rate_limited for r in self.rest),
            last_resubscribe_seconds=max(resub) if resub else None,
        )
        return out

    def symbol_states(self) -> dict[str, str]:
        out: dict[str, str] = {}
        polled = set(self.plan.polled)
        for c in self.codes:
            if c in polled:
                out[c] = POLLED
                continue
            i = self.plan.session_of(c)
            sess = self.sessions[i] if i is not None and i < len(self.sessions) else None
            if sess is None:
                out[c] = PENDING
            elif sess.connected and c in sess.acked:
                out[c] = LIVE
            elif sess.connected or c not in self._ever_acked:
                out[c] = PENDING
            else:
                out[c] = STALE
        return out

    def backfills_pending(self) -> int:
        """Back-fill runs queued or running (0 = every known gap has been worked on)."""
        return (len(self._bf_pending) + len(self._bf_running) + len(self._bf_again)
                + len(self._bf_deferred) + len(self._bf_waiting))

    def all_live(self) -> bool:
        return all(s == LIVE for s in self.symbol_states().values() if s != POLLED)

    def business_date(self) -> date:
        return self._business_date or self.clock().date()

    # -- planning ------------------------------------------------------------------------------
    def _apply(self, codes: list[str]) -> None:
        self.codes = codes
        self._codes_set = set(codes)
        new = plan_shards(codes, len(self.credentials), self.per_session,
                          current=self.plan.sessions, capacity=self._capacity,
                          exclude={i: frozenset(v) for i, v in self._exclude.items()})
        self.plan = new
        for i, sess_codes in enumerate(new.sessions):
            if i < len(self.sessions):
                self.sessions[i].set_codes(sess_codes)
        n = len(self.pollers)
        for i, p in enumerate(self.pollers):
            p.set_codes([c for k, c in enumerate(new.polled) if k % n == i])
        labels = [c.label for c in self.credentials]
        self._publish(SubscriptionPlanEvent(
            live={labels[i]: s for i, s in enumerate(new.sessions)}, polled=new.polled,
            keys_needed=new.keys_needed, keys_configured=len(self.credentials)))

    def _seed_last_seen(self, code: str) -> None:
        assert self.last_seen is not None
        try:
            seen = self.last_seen(code)
        except Exception:
            log.exception("last_seen(%s) failed", code)
            return
        if seen is None:
            return
        d, cum, _hhmmss = seen
        if d == self.business_date():
            self._last_cum[code] = max(self._last_cum.get(code, 0), int(cum))

    # -- session callbacks ---------------------------------------------------------------------
    def _on_ws_ticks(self, ticks: list[Tick]) -> None:
        last_cum = self._last_cum
        resync = self._resync
        wanted = self._codes_set
        for t in ticks:
            code = t.stock_code
            if code not in wanted:
                continue      # unsubscribed a moment ago; keep no state for it
            last = last_cum.get(code)
            if code in resync:
                resync.discard(code)
                self._live_from[code] = t.cum_volume - t.volume
            elif last is not None and t.cum_volume - t.volume > last:
                self.gaps_detected_live += 1
                self._live_from[code] = t.cum_volume - t.volume
                self._request_gap_backfill(code, last)
            if last is None or t.cum_volume > last:
                last_cum[code] = t.cum_volume
        self._business_date = ticks[-1].timestamp.date()
        self._deliver(ticks, SOURCE_WS)

    def _on_subscribed(self, session: FeedSession, code: str) -> None:
        if code not in self._ever_acked:
            self._ever_acked.add(code)
            self._live_since.setdefault(code, self.clock().strftime("%H%M%S"))
        self._resync.add(code)
        self._live_from.pop(code, None)
        last = self._last_cum.get(code)
        if last is not None:
            self._request_backfill(code, last)
        elif session.reconnects and code in self._live_since:
            # live before, but no trade seen yet: fetch what happened since it first went live
            self._request_backfill(code, None, since=self._live_since[code])

    def _on_rejected(self, session: FeedSession, code: str, reply: ControlReply) -> None:
        self.rejections += 1
        i = self.sessions.index(session)
        self._exclude.setdefault(i, set()).add(code)
        self._capacity[i] = len(session.wanted)
        self._error(session.label, f"{code} refused by KIS on {session.label} "
                    f"({reply.msg_cd} {reply.msg1}); moving it to another key or to polling")
        asyncio.get_running_loop().call_soon(self._apply, self.codes)

    def _on_protocol_error(self, session: FeedSession, reason: str, excerpt: str) -> None:
        key = f"proto:{session.label}"
        now = time.monotonic()
        if now - self._err_last.get(key, -1e9) < 1.0:
            self._err_suppressed[key] = self._err_suppressed.get(key, 0) + 1
            return
        self._err_last[key] = now
        more = self._err_suppressed.pop(key, 0)
        msg = f"protocol error on {session.label}: {reason}" + (f" (+{more} more)" if more else "")
        log.warning("%s %s", msg, excerpt[:80])
        self._publish(ErrorEvent(session.label, msg))

    # -- polling -------------------------------------------------------------------------------
    def _on_poll(self, ticks: list[Tick], code: str, newest_cum: int) -> None:
        if code not in self._codes_set:
            return
        if newest_cum and newest_cum > self._last_cum.get(code, -1):
            self._last_cum[code] = newest_cum
        if ticks:
            self.polled += len(ticks)
            self._deliver(ticks, SOURCE_POLL)

    # -- back-fill -----------------------------------------------------------------------------
    def _request_gap_backfill(self, code: str, after_cum: int) -> None:
        """A live chain break: back-fill it, but at most once per ``gap_cooldown`` per symbol so a
        symbol whose stream skips trades all the time cannot eat the REST budget."""
        wait = self._bf_last_done.get(code, -1e9) + self.gap_cooldown - time.monotonic()
        if wait <= 0 and code not in self._bf_deferred:
            self._request_backfill(code, after_cum)
            return
        first = code not in self._bf_deferred
        self._bf_deferred[code] = min(self._bf_deferred.get(code, after_cum), after_cum)
        if first:
            asyncio.get_running_loop().call_later(max(0.0, wait), self._flush_deferred, code)

    def _flush_deferred(self, code: str) -> None:
        after = self._bf_deferred.pop(code, None)
        if after is not None and code in self._codes_set and self._started:
            self._request_backfill(code, after)

    def _request_backfill(self, code: str, after_cum: int | None, since: str | None = None) -> None:
        job = (after_cum, since)
        if code in self._bf_running:         # run again when this run ends
            prev = self._bf_again.get(code)
            self._bf_again[code] = job if prev is None else _merge_jobs(prev, job)
            return
        if code in self._bf_pending:
            self._bf_pending[code] = _merge_jobs(self._bf_pending[code], job)
            return
        i = self.plan.session_of(code)
        if i is None:
            i = abs(hash(code)) % len(self._bf_queues)
        self._bf_pending[code] = (after_cum, since)
        self._bf_queues[i].put_nowait(code)

    async def _bf_worker(self, index: int, queue: asyncio.Queue[str]) -> None:
        rest = self.rest[index]
        while True:
            code = await queue.get()
            job = self._bf_pending.pop(code, None)
            if job is None or code not in self._codes_set:
                continue
            self._bf_running.add(code)
            try:
                await self._backfill(rest, code, *job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("back-fill of %s crashed", code)
            finally:
                self._bf_running.discard(code)
                self._bf_last_done[code] = time.monotonic()
            if code in self._bf_again:
                self._request_backfill(code, *self._bf_again.pop(code))

    def _retry_backfill(self, code: str, after_cum: int | None, since: str | None) -> None:
        self._bf_waiting.discard(code)
        if self._started and code in self._codes_set:
            self._request_backfill(code, after_cum, since)

    async def _backfill(self, rest: KisRestClient, code: str, after_cum: int | None,
                        since: str | None) -> None:
        backoff = Backoff(BackoffPolicy(initial=1.0, cap=10.0, jitter=0.2), self._rng)
        for attempt in range(self.backfill_retries + 1):
            try:
                result = await self.backfiller.fill(rest, code, self.business_date(),
                                                    after_cum=after_cum, since_hhmmss=since)
                break
            except CredentialError as exc:
                self._error(rest.label, str(exc))
                return
            except KisError as exc:
                if attempt == self.backfill_retries:
                    # keep the gap: try again later rather than lose it (bounded: one try per
                    # symbol every backfill_retry_later seconds)
                    self.backfill_failures += 1
                    self._error(rest.label, f"back-fill of {code} failed ({exc}); "
                                f"retrying in {self.backfill_retry_later:.0f} s")
                    self._bf_waiting.add(code)
                    asyncio.get_running_loop().call_later(
                        self.backfill_retry_later, self._retry_backfill, code, after_cum, since)
                    return
                delay = backoff.next_delay()
                log.warning("back-fill of %s failed (%s); retrying in %.1f s", code, exc, delay)
                await asyncio.sleep(delay)
        else:  # pragma: no cover
            return
        self.backfill_runs += 1
        # trades from where the live stream resumed onwards arrived over the socket: a page
        # overflow there is no loss
        live_from = self._live_from.get(code)
        gaps = [(a, b if live_from is None else min(b, live_from)) for a, b in result.gap_ranges
                if live_from is None or a < live_from]
        if gaps:
            volume = sum(b - a for a, b in gaps)
            self.gaps_unrecovered += len(gaps)
            self.gap_volume_unrecovered += volume
            self._error(rest.label, f"{code}: {volume} share(s) of trades could not be "
                        f"recovered ({len(gaps)} gap(s), first after cumulative volume "
                        f"{gaps[0][0]}): more trades in one second than one page of "
                        f"inquire-time-itemconclusion")
        if code not in self._codes_set:
            return
        ticks = result.ticks
        if ticks:
            newest = ticks[-1].cum_volume
            if newest > self._last_cum.get(code, -1):
                self._last_cum[code] = newest
            self.backfilled += len(ticks)
            for k in range(0, len(ticks), 500):
                self._deliver(ticks[k:k + 500], SOURCE_BACKFILL)

    # -- output --------------------------------------------------------------------------------
    def _deliver(self, ticks: Sequence[Tick], source: str) -> None:
        try:
            self.on_ticks(ticks, source)
        except Exception:
            log.exception("on_ticks callback failed (%d %s ticks)", len(ticks), source)

    def _publish(self, event: object) -> None:
        if self.bus is not None:
            self.bus.publish(event)  # type: ignore[arg-type]

    def _error(self, source: str, message: str, fatal: bool = False) -> None:
        message = message.removeprefix(f"{source}: ")   # REST errors already name their key
        log.warning("%s: %s", source, message)
        self._publish(ErrorEvent(source, message, fatal))


__all__ = ["FeedManager", "LIVE", "PENDING", "POLLED", "STALE"]
