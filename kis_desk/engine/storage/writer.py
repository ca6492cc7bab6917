"""TickWriter: every trade stored exactly once, off the event loop, with nothing lost.

Threads
    The event loop thread only appends to a deque (``submit``); one dedicated writer thread does
    all database and journal I/O through a backend (:mod:`.sqlite_backend`,
    :mod:`.postgres_backend`). Results come back to the loop with ``call_soon_threadsafe``.

Batching
    The writer wakes every ``flush_interval`` (or at once when ``max_batch`` ticks are queued or
    a ``flush()`` is waiting) and writes everything queued in one transaction per ``max_batch``.
    Duplicates (the same trade identity) = batch size − inserted.

Nothing lost
    While the database fails, ticks wait in memory; once it has failed for ``spill_after`` seconds,
    or the backlog passes ``queue_limit``, or a ``flush()``/``stop()`` is waiting, they are
    spilled to the journal (fsync per batch) and replayed when the database is back (retry with
    :class:`~kis_desk.core.backoff.Backoff`, reconnecting by itself) or at the next start. If the
    journal cannot be written either, the ticks stay in memory and the writer says so
    (``last_error``, an ``ErrorEvent``) and keeps retrying; ``failed`` counts only ticks really
    lost — at ``stop()`` with both the database and the disk unavailable — and that is logged at
    CRITICAL and published as a fatal ErrorEvent.

Counters
    ``stats()`` returns one frozen :class:`~.stats.WriterStats`; the status event and the
    collector's summary are made from it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ...config import redact_url
from ...core.events import AlertEvent, ErrorEvent, EventBus, StorageStatsEvent
from ...core.ticks import Tick
from .db_link import DatabaseLink, describe, open_backend
from .journal import Journal
from .retention import Housekeeping, RetentionPolicy
from .stats import WriterStats
from .writer_state import Counters, Health, Waiters, Work

log = logging.getLogger(__name__)

CommittedHook = Callable[[Sequence[Tick] | int, float], None]

#: The interpreter's thread switch interval while a writer runs (seconds; CPython's default is
#: 0.005). The writer thread gives up the GIL inside every SQLite step and the journal's fsync;
#: taking it back, it waits until the busy event loop thread is made to yield — up to a whole
#: interval each time, so at 5 ms a burst's batches queued behind those waits (measured: ingest
#: 60k → 71–80k trades/s with 1 ms). Only ever lowered, never raised.
WRITER_SWITCH_INTERVAL = 0.001


class TickWriter:
    """Batching, journaling trade writer. See the module docstring for the guarantees.

    ``retention_days`` > 0 removes raw trades older than that between batches (see
    :mod:`.retention`); the default keeps everything — the application passes
    ``defaults.RETENTION_DAYS`` (through ``CollectorConfig.retention_days``). ``today``: the
    KST business date retention counts back from (the collector's clock; None: wall time).
    """

    def __init__(self, url: str, *, journal_dir: Path, flush_interval: float = 0.05,
                 max_batch: int = 20000, queue_limit: int = 200_000, bus: EventBus | None = None,
                 spill_after: float = 3.0, busy_timeout: float = 1.0, connect_timeout: float = 3.0,
                 stats_interval: float = 1.0, retention_days: int = 0,
                 retention: RetentionPolicy | None = None,
                 today: Callable[[], date] | None = None) -> None:
        self.url = url
        self._sa_url = sa.make_url(url)
        self._backend = open_backend(self._sa_url, busy_timeout, connect_timeout)
        self.backend_name = self._backend.name
        self.journal = Journal(Path(journal_dir))
        self.flush_interval = min(max(flush_interval, 0.001), 0.1)
        self.max_batch = max_batch
        self.queue_limit = queue_limit
        self.spill_after = spill_after
        self.stats_interval = stats_interval
        self.bus = bus
        self.on_committed: list[CommittedHook] = []

        self._work = Work()
        self._count = Counters()
        self._health = Health()
        self._waiters = Waiters()
        self._house = Housekeeping(retention or RetentionPolicy(days=retention_days), today=today)
        self._db = DatabaseLink(url, self._backend, self._health,
                                on_error=lambda m: self._to_loop(self._publish_error, m, False),
                                on_change=lambda: self._to_loop(self._publish_stats))
        self._wake = threading.Event()
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stats_task: asyncio.Task | None = None
        self._started = False
        self._closed = False

    # -- public API (loop thread) ------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, migrate, replay a journal left by a previous run, start the writer thread.

        A database that is unreachable now is not an error: the writer journals and retries.
        """
        if self._started:
            raise RuntimeError("TickWriter already started")
        self._loop = asyncio.get_running_loop()
        if sys.getswitchinterval() > WRITER_SWITCH_INTERVAL:
            sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
        await asyncio.to_thread(self.journal.open)
        self._count.recovered = self.journal.pending
        self._started = True
        await asyncio.to_thread(self._startup)
        self._thread = threading.Thread(target=self._run, name="kis-desk-tick-writer", daemon=True)
        self._thread.start()
        if self.bus is not None and self.stats_interval > 0:
            self._stats_task = asyncio.create_task(self._stats_loop(), name="tick-writer-stats")
        self._publish_stats()

    def submit(self, ticks: Sequence[Tick]) -> None:
        """Queue trades; never blocks, never drops (the writer spills to disk past the bound)."""
        if self._closed or not self._started:
            raise RuntimeError("TickWriter is not running")
        n = len(ticks)
        if not n:
            return
        self._work.put(ticks if type(ticks) is tuple else tuple(ticks))
        self._count.received += n
        if self._work.queued >= self.max_batch:
            self._wake.set()

    def submit_alert(self, alert: AlertEvent) -> None:
        if self._closed or not self._started:
            raise RuntimeError("TickWriter is not running")
        self._work.alert_queue.append(alert)
        self._count.alerts_received += 1

    async def flush(self, timeout: float | None = None) -> None:
        """Return once everything submitted so far is committed or journaled.

        If neither the database nor the journal can take the ticks this waits (they stay in
        memory) — pass ``timeout`` to get ``TimeoutError`` instead.
        """
        if not self._started or self._thread is None:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.add(self._count.received, self._count.alerts_received, fut)
        self._wake.set()
        await asyncio.wait_for(fut, timeout)

    async def stop(self) -> None:
        """Write (or journal) everything, replay what the database can take, close."""
        if not self._started or self._closed:
            return
        self._closed = True
        self._stop_requested = True
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._stats_task is not None:
            self._stats_task.cancel()
            try:
                await self._stats_task
            except asyncio.CancelledError:
                pass
        s = self.stats()
        log.info("tick writer stopped: %d received, %d stored, %d duplicates, %d journaled, %d failed, "
                 "%d purged by retention (%s days), database %s, %d bytes", s.received, s.stored,
                 s.duplicates, s.journaled, s.failed, s.purged, s.retention_days or "all", s.database,
                 s.database_bytes)
        if self.bus is not None:
            self.bus.publish(s.to_event())

    def set_retention_days(self, days: int) -> None:
        """Keep raw trades ``days`` days from now on (0: forever); applied between batches."""
        self._house.set_days(int(days))
        self._wake.set()

    def stats(self) -> WriterStats:
        c, h = self._count, self._health
        return WriterStats(
            received=c.received, stored=c.stored, duplicates=c.duplicates, journaled=c.journaled,
            failed=c.failed, backlog=c.received - c.settled, journal_pending=self.journal.pending,
            recovered=c.recovered, alerts_received=c.alerts_received, alerts_stored=c.alerts_stored,
            bad_journal_lines=c.bad_journal_lines, purged=self._house.retention.removed,
            retention_days=self._house.retention_days, database_bytes=self._house.database_bytes,
            database_ok=h.database_ok,
            database=redact_url(self.url), last_error=h.last_error)

    def stats_event(self) -> StorageStatsEvent:
        return self.stats().to_event()

    # -- loop-thread helpers -----------------------------------------------------------------------
    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            self._publish_stats()

    def _publish_stats(self) -> None:
        if self.bus is not None:
            self.bus.publish(self.stats().to_event())

    def _publish_error(self, message: str, fatal: bool) -> None:
        if self.bus is not None:
            self.bus.publish(ErrorEvent("storage", message, fatal))
        self._publish_stats()

    def _dispatch_committed(self, what: Sequence[Tick] | int, wall: float) -> None:
        for hook in tuple(self.on_committed):
            try:
                hook(what, wall)
            except Exception:
                log.exception("on_committed hook %r failed", hook)

    def _to_loop(self, fn: Callable, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed (interpreter shutting down)
            pass

    # -- writer thread: database -------------------------------------------------------------------
    def _startup(self) -> None:
        if self._db.try_connect():
            self._replay_journal(budget=None)
            self._house.after_connect(self._backend)

    def _write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> bool:
        """One transaction, counted. True on commit; False (database down) on failure."""
        done = self._db.write(ticks, alerts)
        if done is None:
            return False
        c = self._count
        c.stored += done.inserted
        c.duplicates += done.duplicates
        c.alerts_stored += done.alerts_inserted
        c.failed += done.rejected
        return True

    # -- writer thread: journal --------------------------------------------------------------------
    def _spill(self, ticks: list[Tick], alerts: list[AlertEvent]) -> bool:
        h = self._health
        try:
            self.journal.append(ticks, alerts)
        except OSError as exc:
            msg = (f"Cannot write the tick journal in {self.journal.dir} ({describe(exc)}); "
                   f"{len(ticks)} trades are held in memory, retrying")
            if not h.journal_error:
                log.error(msg)
                self._to_loop(self._publish_error, msg, False)
            h.journal_error = True
            h.last_error = msg
            h.next_journal_try = time.monotonic() + 1.0
            return False
        if h.journal_error:
            log.info("tick journal writable again")
            h.journal_error = False
            self._to_loop(self._publish_stats)
        self._count.journaled += len(ticks)
        return True

    def _settle(self, n_ticks: int, n_alerts: int) -> None:
        self._count.settled += n_ticks
        self._count.alerts_settled += n_alerts
        self._check_waiters()

    def _check_waiters(self) -> None:
        for fut in self._waiters.pop_done(self._count.settled, self._count.alerts_settled):
            self._to_loop(_resolve, fut)

    def _commit_pending(self) -> bool:
        w = self._work
        ticks, alerts = w.pending, w.pending_alerts
        if not self._write(ticks, alerts):
            return False
        wall = time.time()
        w.clear_batch()
        self._settle(len(ticks), len(alerts))
        if self.on_committed and ticks:
            self._to_loop(self._dispatch_committed, ticks, wall)
        return True

    def _spill_everything(self) -> bool:
        """Pending batch + the whole queue to the journal."""
        w = self._work
        w.take(self.max_batch)
        while w.has_pending:
            ticks, alerts = w.pending, w.pending_alerts
            if not self._spill(ticks, alerts):
                return False
            w.clear_batch()
            self._settle(len(ticks), len(alerts))
            w.take(self.max_batch)
        return True

    def _replay_journal(self, budget: int | None) -> None:
        """Replay closed segments (all of them, or about ``budget`` ticks) into the database."""
        if self.journal.pending == 0 and not self.journal.has_data():
            return
        self.journal.rotate()
        done = 0
        for path in self.journal.segments():
            try:
                for chunk in Journal.read(path, self.max_batch):
                    self._count.bad_journal_lines += chunk.bad_lines
                    if (chunk.ticks or chunk.alerts) and not self._write(chunk.ticks, chunk.alerts):
                        return
                    if chunk.ticks and self.on_committed:
                        self._to_loop(self._dispatch_committed, len(chunk.ticks), time.time())
                    done += len(chunk.ticks)
            except OSError as exc:
                log.error("cannot read journal segment %s: %s", path, exc)
                return
            self.journal.remove(path)
            log.info("replayed journal segment %s", path.name)
            if budget is not None and done >= budget:
                return

    # -- writer thread: the loop -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop_body()
        except BaseException:  # pragma: no cover - last resort: say so loudly
            log.critical("tick writer thread crashed", exc_info=True)
            self._health.last_error = "tick writer thread crashed (see log)"
            self._to_loop(self._publish_error, self._health.last_error, True)
            raise
        finally:
            self._backend.close()
            self.journal.close()

    def _loop_body(self) -> None:
        w, h = self._work, self._health
        stop_deadline: float | None = None
        while True:
            stopping = self._stop_requested
            urgent = stopping or bool(self._waiters)
            if not urgent and not w.pending and w.queued < self.max_batch:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                stopping = self._stop_requested
                urgent = stopping or bool(self._waiters)
            now = time.monotonic()
            if stopping and stop_deadline is None:
                stop_deadline = now + max(self.spill_after, 2.0)

            w.take(self.max_batch)

            # 1. the database
            if w.has_pending:
                if h.database_ok or now >= h.next_retry:
                    while w.has_pending and self._commit_pending():
                        w.take(self.max_batch)
            elif not h.database_ok and now >= h.next_retry:
                self._db.try_connect()

            # 2. spill to the journal when waiting any longer is not acceptable
            backlog = self._count.received - self._count.settled
            failing_long = h.fail_since is not None and now - h.fail_since >= self.spill_after
            if w.has_pending and not h.database_ok and (
                    failing_long or backlog > self.queue_limit or urgent):
                if not h.journal_error or now >= h.next_journal_try or stopping:
                    self._spill_everything()

            # 3. replay journaled ticks while the database is up (one budget per cycle)
            if h.database_ok and not w.pending and self.journal.pending:
                self._replay_journal(budget=self.max_batch)

            # 4. retention: one bounded piece between batches, never while a batch waits
            elif h.database_ok and not stopping and not w.pending and not w.queue \
                    and self._backend.connected:
                self._house.between_batches(self._backend)

            self._check_waiters()
            if stopping and w.empty:
                if self.journal.pending and (h.database_ok or self._db.try_connect()):
                    self._replay_journal(budget=None)
                if h.database_ok and self._backend.connected:
                    self._house.measure(self._backend)
                return
            if stopping and stop_deadline is not None and time.monotonic() >= stop_deadline:
                if self._spill_everything():
                    continue
                self._declare_lost()
                return
            if not h.database_ok and not urgent:
                # don't spin while the database is down; wake for new work or the next retry
                self._wake.wait(min(self.flush_interval, max(0.0, h.next_retry - time.monotonic())))
                self._wake.clear()
            elif not h.database_ok and urgent and not stopping and h.journal_error:
                time.sleep(0.05)
            elif stopping and not h.database_ok:
                time.sleep(0.02)

    def _declare_lost(self) -> None:
        w = self._work
        w.take(w.queued + len(w.pending) + 1)
        n = len(w.pending) + w.queued
        na = len(w.pending_alerts) + len(w.alert_queue)
        self._count.failed += n
        msg = (f"LOST {n} trades and {na} alerts at shutdown: neither the database "
               f"({self._health.last_error or 'unavailable'}) nor the journal in {self.journal.dir} "
               "could take them")
        log.critical(msg)
        self._health.last_error = msg
        self._settle(n, na)
        w.clear_batch()
        w.drop_queued()
        self._to_loop(self._publish_error, msg, True)


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
