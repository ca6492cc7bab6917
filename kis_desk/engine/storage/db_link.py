"""The writer thread's link to the database: a backend plus availability, retry and migration.

``write`` either commits a batch (and says what was inserted, what was a duplicate and what was
rejected as malformed) or marks the database down and schedules the next attempt with the
shared :class:`~kis_desk.core.backoff.Backoff`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import sqlalchemy as sa

from ...config import redact_url
from ...core.events import AlertEvent
from ...core.ticks import Tick
from . import schema
from .backend import WriterBackend
from .postgres_backend import PostgresBackend
from .sqlite_backend import SQLiteBackend
from .writer_state import Health

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_backend(url: sa.URL, busy_timeout: float, connect_timeout: float) -> WriterBackend:
    name = url.get_backend_name()
    if name == "sqlite":
        return SQLiteBackend(url, busy_timeout, connect_timeout)
    if name == "postgresql":
        return PostgresBackend(url, busy_timeout, connect_timeout)
    raise ValueError(f"unsupported database {name!r} (use sqlite or postgresql)")


class Written(NamedTuple):
    inserted: int
    duplicates: int
    alerts_inserted: int
    rejected: int            # malformed ticks that can never be stored


class DatabaseLink:
    """Owned by the writer thread. ``on_error(message)`` and ``on_change()`` are called from it."""

    def __init__(self, url: str, backend: WriterBackend, health: Health,
                 on_error: Callable[[str], None], on_change: Callable[[], None]) -> None:
        self.url = url
        self.backend = backend
        self.health = health
        self._on_error = on_error
        self._on_change = on_change

    def set_state(self, ok: bool, error: str = "") -> None:
        h = self.health
        changed = ok != h.database_ok
        h.database_ok = ok
        if ok:
            h.fail_since = None
            h.retry.reset()
            if changed:
                log.info("database %s is available", redact_url(self.url))
        else:
            now = time.monotonic()
            if h.fail_since is None:
                h.fail_since = now
            h.next_retry = now + h.retry.next_delay()
            if error and error != h.last_error and not h.journal_error:
                # while the journal fails too, last_error keeps saying so: that is what risks loss
                h.last_error = error
                log.warning("database %s unavailable: %s (ticks wait in memory, then in the journal)",
                            redact_url(self.url), error)
                self._on_error(f"Database unavailable ({error}); trades are kept and written when it returns")
                changed = False
        if changed:
            self._on_change()

    def try_connect(self) -> bool:
        """(Re)connect, migrate once, and prove the database takes writes now."""
        try:
            if not self.backend.connected:
                self.backend.connect()
            if not self.health.migrated:
                engine = sa.create_engine(sa.make_url(self.url), poolclass=sa.NullPool)
                try:
                    schema.migrate(engine)
                finally:
                    engine.dispose()
                self.health.migrated = True
            self.backend.probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available yet"
            self.backend.close()
            self.set_state(False, describe(exc))
            return False
        self.set_state(True)
        return True

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> Written | None:
        """One transaction. The outcome on commit; None (database marked down) on failure."""
        if not self.backend.connected:
            try:
                self.backend.connect()
            except Exception as exc:  # noqa: BLE001
                self.backend.close()
                self.set_state(False, describe(exc))
                return None
            if not self.health.migrated and not self.try_connect():
                return None
        try:
            inserted, alerts_inserted = self.backend.write(ticks, alerts)
        except (ValueError, TypeError, OverflowError) as exc:
            malformed = exc
        except Exception as exc:  # noqa: BLE001 - connection lost, locked, disk full, …
            self.backend.close()
            self.set_state(False, describe(exc))
            return None
        else:
            if not self.health.database_ok:
                self.set_state(True)
            return Written(inserted, len(ticks) - inserted, alerts_inserted, 0)
        try:
            # A malformed tick (e.g. naive timestamp) would block the queue forever: isolate it.
            return self._write_one_by_one(ticks, alerts, malformed)
        except Exception as exc:  # noqa: BLE001 - the database failed meanwhile: retry the batch
            self.backend.close()
            self.set_state(False, describe(exc))
            return None

    def _write_one_by_one(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent],
                          exc: Exception) -> Written:
        inserted = duplicates = alerts_inserted = bad = 0
        for t in ticks:
            try:
                n, _ = self.backend.write([t], ())
                inserted += n
                duplicates += 1 - n
            except (ValueError, TypeError, OverflowError) as e:
                bad += 1
                log.critical("tick rejected as unstorable (%s): %r", e, t)
        if alerts:
            try:
                alerts_inserted = self.backend.write((), alerts)[1]
            except (ValueError, TypeError):
                log.critical("alerts rejected as unstorable: %r", alerts)
        if bad:
            self.health.last_error = f"{bad} malformed tick(s) rejected: {describe(exc)}"
            self._on_error(self.health.last_error)
        return Written(inserted, duplicates, alerts_inserted, bad)
