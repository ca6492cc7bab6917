"""The writer's one stats value: what ``TickWriter.stats()`` returns and everything else reads.

The storage status event, the collector's summary and the log all read this frozen value, so a
counter has one name and one meaning everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ...core.events import StorageStatsEvent


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer's counters (cumulative for this run) and health.

    ``received`` ticks submitted in this run; ``stored`` rows inserted (live + replayed);
    ``duplicates`` rows ignored by the trade identity (live + replayed); ``journaled`` ticks
    written to the journal in this run; ``failed`` ticks lost; ``backlog`` submitted ticks
    neither committed nor journaled yet; ``journal_pending`` ticks in the journal awaiting
    replay (includes what a previous run left, counted in ``recovered``).
    """

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    journaled: int = 0
    failed: int = 0
    backlog: int = 0
    journal_pending: int = 0
    recovered: int = 0
    alerts_received: int = 0
    alerts_stored: int = 0
    bad_journal_lines: int = 0
    purged: int = 0               # raw trades removed by retention in this run
    retention_days: int = 0       # raw trades kept this many days (0: forever)
    database_bytes: int = 0       # on disk, measured at start and after each retention pass
    database_ok: bool = False
    database: str = ""            # redacted URL
    last_error: str = ""

    def to_event(self) -> StorageStatsEvent:
        return StorageStatsEvent(self.received, self.stored, self.duplicates, self.journaled,
                                 self.failed, self.backlog, self.database_ok, self.database,
                                 self.last_error)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def human_bytes(n: int) -> str:
    """``1,536`` → ``"1.5 KiB"``: a size on disk for people (Settings, ``collect``)."""
    size = float(max(int(n), 0))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TiB"     # unreachable; keeps type checkers calm
