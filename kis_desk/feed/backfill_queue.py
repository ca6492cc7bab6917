"""Back-fill scheduling: which symbol's gap is fetched when, by whom, and what a stop leaves.

One job per symbol at a time (a second request for a symbol being filled is merged and run once
the first ends), a live chain break at most once per ``gap_cooldown``, quick retries with the
shared ``Backoff`` then one retry every ``retry_later`` seconds, never lost. ``drain`` gives the
runs under way a bounded time on a clean stop and returns what remains as ``PendingGap`` values
(the engine stores them; the next run submits them first).

``inquire-time-itemconclusion`` only reaches the current business day (kis-protocol.md §8.1,
"당일"): a pending gap of an earlier day cannot be fetched and is reported as unrecoverable.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from ..aio import cancel_and_wait
from ..core.backoff import Backoff, BackoffPolicy
from ..core.events import PendingGap
from ..core.ticks import SOURCE_BACKFILL, Tick
from .backfill import Backfiller
from .config import BackfillConfig
from .rest import CredentialError, KisError, KisRestClient
from .symbols import SymbolTable

log = logging.getLogger(__name__)

QUICK_RETRY = BackoffPolicy(initial=1.0, cap=10.0, jitter=0.2)


@dataclass(frozen=True)
class Job:
    after_cum: int | None = None
    since: str | None = None

    def merge(self, other: Job) -> Job:
        """One job that covers both: from the oldest known cumulative volume (it bounds
        everything after our last trade), else from the earliest time, else one page."""
        afters = [j.after_cum for j in (self, other) if j.after_cum is not None]
        if afters:
            return Job(min(afters), None)
        sinces = [j.since for j in (self, other) if j.since is not None]
        return Job(None, min(sinces) if sinces else None)


def _merge(a: Job | None, b: Job) -> Job:
    return b if a is None else a.merge(b)


class BackfillScheduler:
    def __init__(self, rests: Sequence[KisRestClient], backfiller: Backfiller,
                 config: BackfillConfig, symbols: SymbolTable, *,
                 business_date: Callable[[], date], route: Callable[[str], int],
                 deliver: Callable[[Sequence[Tick], str], None],
                 report: Callable[[str, str], None], rng: random.Random) -> None:
        self.rests = rests
        self.backfiller = backfiller
        self.config = config
        self.symbols = symbols
        self.business_date = business_date
        self.route = route                # code -> index of the app key whose REST budget it uses
        self.deliver = deliver
        self.report = report              # (source label, message): WARNING + ErrorEvent
        self.rng = rng
        self._queues: list[asyncio.Queue[str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: dict[str, Job] = {}
        self._running: dict[str, Job] = {}
        self._again: dict[str, Job] = {}
        self._deferred: dict[str, int] = {}
        self._waiting: dict[str, Job] = {}        # failed; a retry is scheduled
        self._last_done: dict[str, float] = {}
        self._later_backoff: dict[str, Backoff] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._open = False
        # counters
        self.backfilled = 0
        self.runs = 0
        self.failures = 0
        self.gaps_unrecovered = 0
        self.gap_volume_unrecovered = 0
        #: today's stretches no back-fill could fetch (page overflow, or before what the server
        #: still holds): recorded as "unrecoverable" so the next start does not chase them again
        self.lost_today: list[PendingGap] = []

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._open = True
        for i in range(len(self.rests)):
            q: asyncio.Queue[str] = asyncio.Queue()
            self._queues.append(q)
            for _ in range(self.config.workers):
                self._tasks.append(loop.create_task(self._worker(i, q), name=f"backfill-{i}"))
        for code in list(self._pending):          # submitted before start (pending gaps) go first
            self._queues[self.route(code) % len(self._queues)].put_nowait(code)

    async def drain(self, timeout: float | None = None) -> list[PendingGap]:
        """Let runs under way finish for up to ``timeout`` s, then stop; returns what is left."""
        timeout = self.config.drain_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while self.busy() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._open = False
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        self._queues.clear()
        left: dict[str, Job | None] = {}
        for jobs in (self._running, self._pending, self._again, self._waiting):
            for code, job in jobs.items():
                left[code] = _merge(left.get(code), job)
        for code, after in self._deferred.items():
            left[code] = _merge(left.get(code), Job(after))
        for d in (self._running, self._pending, self._again, self._waiting, self._deferred):
            d.clear()
        day = self.business_date()
        venue = self.backfiller.venue.name
        gaps = []
        for code, job in left.items():
            assert job is not None
            sym = self.symbols.get(code)
            gaps.append(PendingGap(code, day, job.after_cum, job.since,
                                   sym.live_from if sym is not None else None, venue))
        if gaps:
            self.report("backfill", f"stop cut {len(gaps)} back-fill(s) short "
                        f"({', '.join(g.code for g in gaps[:8])}{' …' if len(gaps) > 8 else ''}); "
                        "recorded as pending gaps for the next run", code="backfill.stop_cut", count=len(gaps))
        return gaps

    def busy(self) -> bool:
        return bool(self._pending or self._running or self._again)

    def pending(self) -> int:
        """Back-fill runs queued, running, deferred or waiting for a retry."""
        return (len(self._pending) + len(self._running) + len(self._again)
                + len(self._deferred) + len(self._waiting))

    def is_filling(self, code: str) -> bool:
        return code in self._pending or code in self._running or code in self._again

    def forget(self, code: str) -> None:
        for d in (self._pending, self._deferred, self._last_done, self._waiting, self._again):
            d.pop(code, None)

    # -- requests --------------------------------------------------------------------------------
    def submit_pending(self, gaps: Sequence[PendingGap]) -> list[PendingGap]:
        """Gaps a previous run left: queued before anything else. Returns those of an earlier
        business day, which the REST API cannot reach on any venue (reported, counted as
        unrecoverable). Gaps in another venue's chain are left alone (its cumulative volumes are
        not this venue's): the engine keeps them for a run on that venue."""
        today = self.business_date()
        venue = self.backfiller.venue.name
        lost: list[PendingGap] = []
        for g in gaps:
            if g.code not in self.symbols:
                continue
            if g.business_date != today:
                lost.append(g)
                continue
            if g.venue != venue:
                continue
            self.request(g.code, g.after_cum, g.since_hhmmss)
        if lost:
            self.gaps_unrecovered += len(lost)
            self.report("backfill", f"{len(lost)} gap(s) left by an earlier run on a past business "
                        f"day ({', '.join(sorted({f'{g.code} {g.business_date}' for g in lost})[:6])}) "
                        "cannot be back-filled: KIS's time-itemconclusion only serves today's trades",
                        code="backfill.past_day", count=len(lost))
        return lost

    def request_gap(self, code: str, after_cum: int) -> None:
        """A live chain break: back-fill it, but at most once per ``gap_cooldown`` per symbol so a
        symbol whose stream skips trades all the time cannot eat the REST budget."""
        wait = self._last_done.get(code, -1e9) + self.config.gap_cooldown - time.monotonic()
        if wait <= 0 and code not in self._deferred:
            self.request(code, after_cum)
            return
        first = code not in self._deferred
        self._deferred[code] = min(self._deferred.get(code, after_cum), after_cum)
        if first:
            self._later(max(0.0, wait), self._flush_deferred, code)

    def request(self, code: str, after_cum: int | None, since: str | None = None) -> None:
        job = Job(after_cum, since)
        if code in self._running:                 # run again when this run ends
            self._again[code] = _merge(self._again.get(code), job)
            return
        if code in self._pending:
            self._pending[code] = self._pending[code].merge(job)
            return
        if not self._queues:
            self._pending[code] = job             # before start: queued first once workers run
            return
        self._pending[code] = job
        self._queues[self.route(code) % len(self._queues)].put_nowait(code)

    # -- internals -------------------------------------------------------------------------------
    def _later(self, delay: float, fn: Callable[..., None], *args: object) -> None:
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(asyncio.get_running_loop().call_later(delay, fn, *args))

    def _flush_deferred(self, code: str) -> None:
        after = self._deferred.pop(code, None)
        if after is not None and code in self.symbols and self._open:
            self.request(code, after)

    def _retry(self, code: str) -> None:
        job = self._waiting.pop(code, None)
        if job is not None and self._open and code in self.symbols:
            self.request(code, job.after_cum, job.since)

    async def _worker(self, index: int, queue: asyncio.Queue[str]) -> None:
        rest = self.rests[index]
        while True:
            code = await queue.get()
            job = self._pending.pop(code, None)
            if job is None or code not in self.symbols:
                continue
            self._running[code] = job
            try:
                await self._run(rest, code, job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("back-fill of %s crashed", code)
            self._running.pop(code, None)
            self._last_done[code] = time.monotonic()
            if code in self._again:
                again = self._again.pop(code)
                self.request(code, again.after_cum, again.since)

    async def _run(self, rest: KisRestClient, code: str, job: Job) -> None:
        backoff = Backoff(QUICK_RETRY, self.rng)
        for attempt in range(self.config.retries + 1):
            try:
                result = await self.backfiller.fill(rest, code, self.business_date(),
                                                    after_cum=job.after_cum, since_hhmmss=job.since)
                break
            except CredentialError as exc:
                self.report(rest.label, str(exc))
                return
            except KisError as exc:
                if attempt == self.config.retries:
                    # keep the gap: try again later rather than lose it (bounded: one try per
                    # symbol every retry_later seconds)
                    self.failures += 1
                    later = self._later_backoff.setdefault(code, Backoff(BackoffPolicy(
                        initial=self.config.retry_later, cap=4 * self.config.retry_later,
                        jitter=0.2, floor=min(0.1, self.config.retry_later)), self.rng))
                    delay = later.next_delay()
                    self.report(rest.label, f"back-fill of {code} failed ({exc}); "
                                f"retrying in {delay:.0f} s", code="backfill.failed", symbol=code,
                                seconds=round(delay))
                    self._waiting[code] = job
                    self._later(delay, self._retry, code)
                    return
                delay = backoff.next_delay()
                log.warning("back-fill of %s failed (%s); retrying in %.1f s", code, exc, delay)
                await asyncio.sleep(delay)
        self.runs += 1
        self._later_backoff.pop(code, None)
        if result.venue != self.backfiller.venue.name:
            log.info("back-fill of %s on %s dropped: the feed moved to %s meanwhile", code,
                     result.venue, self.backfiller.venue.name)
            return
        sym = self.symbols.get(code)
        # trades from where the live stream resumed onwards arrived over the socket: a page
        # overflow there is no loss
        live_from = sym.live_from if sym is not None else None
        gaps = [(a, b if live_from is None else min(b, live_from)) for a, b in result.gap_ranges
                if live_from is None or a < live_from]
        if gaps:
            volume = sum(b - a for a, b in gaps)
            self.gaps_unrecovered += len(gaps)
            day = self.business_date()
            self.lost_today += [PendingGap(code, day, a, None, b, result.venue) for a, b in gaps]
            self.gap_volume_unrecovered += volume
            self.report(rest.label, f"{code}: {volume} share(s) of trades could not be "
                        f"recovered ({len(gaps)} gap(s), first after cumulative volume "
                        f"{gaps[0][0]}): more trades in one second than one page of "
                        f"inquire-time-itemconclusion", code="backfill.unrecovered", symbol=code,
                        volume=volume)
        if sym is None:
            return
        ticks = result.ticks
        if ticks:
            sym.advance(ticks[-1].cum_volume)
            self.backfilled += len(ticks)
            # one delivery: the detector must see the stretch whole (split in pieces, a piece
            # holding a move's base but not its start made it alert the move again later on)
            self.deliver(ticks, SOURCE_BACKFILL)


__all__ = ["BackfillScheduler", "Job"]
