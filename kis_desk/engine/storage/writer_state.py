"""The writer thread's state, in a few small objects: queues and the batch being written
(``Work``), counters (``Counters``), database/journal health (``Health``) and ``flush()``
waiters (``Waiters``)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...core.backoff import Backoff, BackoffPolicy
from ...core.events import AlertEvent
from ...core.ticks import Tick

#: Database retries: first after 0.1 s, doubling to 2 s (a lock or a restart is usually short).
RETRY_POLICY = BackoffPolicy(initial=0.1, factor=2.0, cap=2.0, jitter=0.1, floor=0.05)


@dataclass
class Counters:
    """``received*`` are written by the loop thread, everything else by the writer thread."""

    received: int = 0
    alerts_received: int = 0
    settled: int = 0             # received ticks now committed, duplicate, journaled or failed
    alerts_settled: int = 0
    stored: int = 0
    duplicates: int = 0
    journaled: int = 0
    failed: int = 0
    recovered: int = 0
    alerts_stored: int = 0
    bad_journal_lines: int = 0


@dataclass
class Health:
    """Database and journal availability as the writer thread sees it."""

    database_ok: bool = False
    last_error: str = ""
    migrated: bool = False
    fail_since: float | None = None
    next_retry: float = 0.0
    retry: Backoff = field(default_factory=lambda: Backoff(RETRY_POLICY))
    journal_error: bool = False
    next_journal_try: float = 0.0


@dataclass
class Work:
    """Submitted items (queues, filled by the loop thread) and the batch being written.

    The loop thread queues whole batches (one ``append`` a batch, not one a trade) and counts
    them in ``submitted``; the writer thread moves trades into ``pending`` and counts them in
    ``taken``: each counter has one writer, so neither needs a lock."""

    queue: deque[Sequence[Tick]] = field(default_factory=deque)
    alert_queue: deque[AlertEvent] = field(default_factory=deque)
    pending: list[Tick] = field(default_factory=list)
    pending_alerts: list[AlertEvent] = field(default_factory=list)
    submitted: int = 0                # trades queued so far (loop thread)
    taken: int = 0                    # trades moved into ``pending`` so far (writer thread)
    head: int = 0                     # trades of ``queue[0]`` already taken

    def put(self, ticks: Sequence[Tick]) -> None:
        """Queue a batch (loop thread; the batch is kept, not copied: pass a tuple)."""
        self.queue.append(ticks)
        self.submitted += len(ticks)

    @property
    def queued(self) -> int:
        """Trades queued and not yet taken (may lag a batch being queued right now)."""
        return max(0, self.submitted - self.taken)

    def take(self, limit: int) -> None:
        """Move up to ``limit`` queued ticks (and every queued alert) into the batch (FIFO)."""
        q, pending = self.queue, self.pending
        room = limit - len(pending)
        while room > 0 and q:
            batch, head = q[0], self.head
            rest = len(batch) - head
            if rest <= room:
                pending.extend(batch[head:] if head else batch)
                q.popleft()
                self.head = 0
                moved = rest
            else:
                pending.extend(batch[head:head + room])
                self.head = head + room
                moved = room
            self.taken += moved
            room -= moved
        aq = self.alert_queue
        while aq:
            self.pending_alerts.append(aq.popleft())

    def drop_queued(self) -> None:
        """Forget every queued trade and alert (shutdown with nowhere to put them)."""
        while self.queue:
            batch = self.queue.popleft()
            self.taken += len(batch) - self.head
            self.head = 0
        self.alert_queue.clear()

    @property
    def has_pending(self) -> bool:
        return bool(self.pending or self.pending_alerts)

    @property
    def empty(self) -> bool:
        return not (self.queue or self.pending or self.pending_alerts or self.alert_queue)

    def clear_batch(self) -> None:
        self.pending, self.pending_alerts = [], []


class Waiters:
    """``flush()`` futures, resolved once everything submitted before them is settled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[int, int, asyncio.Future]] = []

    def __bool__(self) -> bool:
        return bool(self._items)

    def add(self, ticks: int, alerts: int, fut: asyncio.Future) -> None:
        with self._lock:
            self._items.append((ticks, alerts, fut))

    def pop_done(self, ticks: int, alerts: int) -> list[asyncio.Future]:
        if not self._items:
            return []
        with self._lock:
            done = [w for w in self._items if w[0] <= ticks and w[1] <= alerts]
            if done:
                self._items = [w for w in self._items if w not in done]
        return [fut for _, _, fut in done]
