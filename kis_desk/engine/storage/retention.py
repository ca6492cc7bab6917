"""Retention: raw trades are kept for ``days`` days, 1-minute bars forever.

The writer thread calls :meth:`Retention.step` between its batches while a pass is due. Each
step removes one bounded piece (SQLite: a chunk of one symbol's oldest day, PostgreSQL: one
daily partition), so ingest never waits behind a long delete, during market hours or not.
A pass that finds nothing left waits ``check_every`` seconds before looking again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from ...defaults import RETENTION_DAYS
from ...protocol.records import KST
from .backend import WriterBackend

log = logging.getLogger(__name__)

#: The ``settings`` row where the writer records the retention in effect (Settings shows it).
RETENTION_SETTING = "storage.retention_days"


@dataclass(frozen=True)
class RetentionPolicy:
    days: int = RETENTION_DAYS          # <= 0: keep raw trades forever
    check_every: float = 600.0          # seconds between passes once nothing is left
    chunk_rows: int = 5_000             # SQLite: rows per delete (a few ms of write lock)

    @property
    def enabled(self) -> bool:
        return self.days > 0


class Retention:
    """Owned by the writer thread."""

    def __init__(self, policy: RetentionPolicy, *, clock: Callable[[], float] = time.monotonic,
                 today: Callable[[], date] = lambda: datetime.now(KST).date()) -> None:
        self.policy = policy
        self._clock = clock
        self._today = today
        self._next_pass = 0.0
        self.removed = 0

    def cutoff(self) -> date:
        """The first business date kept."""
        return self._today() - timedelta(days=self.policy.days)

    def due(self) -> bool:
        return self.policy.enabled and self._clock() >= self._next_pass

    def step(self, backend: WriterBackend) -> bool:
        """One bounded piece of work; True when the pass is over (nothing older left)."""
        try:
            n, done = backend.purge_step(self.cutoff(), self.policy.chunk_rows)
        except Exception as exc:  # noqa: BLE001 - a busy database: try again at the next pass
            log.warning("retention pass postponed: %s: %s", type(exc).__name__, exc)
            n, done = 0, True
        self.removed += n
        if done:
            self._next_pass = self._clock() + self.policy.check_every
        return done


class Housekeeping:
    """The writer thread's work between batches: retention, the size, the retention record."""

    def __init__(self, policy: RetentionPolicy, today: Callable[[], date] | None = None) -> None:
        self.retention = Retention(policy) if today is None else Retention(policy, today=today)
        self.database_bytes = 0
        self._recorded = False

    @property
    def retention_days(self) -> int:
        return max(self.retention.policy.days, 0)

    def set_days(self, days: int) -> None:
        """A new retention, from the loop thread (Settings): the writer thread records it and
        starts a pass at its next idle moment (plain attribute writes: nothing to lock)."""
        self.retention.policy = replace(self.retention.policy, days=days)
        self.retention._next_pass = 0.0
        self._recorded = False

    def after_connect(self, backend: WriterBackend) -> None:
        """Record the retention in effect (Settings reads it) and measure the database."""
        self._recorded = True
        try:
            backend.record_setting(RETENTION_SETTING, str(self.retention_days))
        except Exception as exc:  # noqa: BLE001 - informational only
            log.warning("cannot record the retention setting: %s: %s", type(exc).__name__, exc)
        self.measure(backend)

    def measure(self, backend: WriterBackend) -> None:
        try:
            self.database_bytes = backend.database_bytes()
        except Exception as exc:  # noqa: BLE001 - informational only
            log.debug("database size unavailable: %s: %s", type(exc).__name__, exc)

    def between_batches(self, backend: WriterBackend) -> None:
        """One bounded piece of housekeeping (called only while no batch waits)."""
        if not self._recorded:
            self.after_connect(backend)
        if self.retention.due() and self.retention.step(backend):
            self.measure(backend)
            if self.retention.removed:
                log.info("retention: %d trades older than %s removed so far (bars_1m kept)",
                         self.retention.removed, self.retention.cutoff())
