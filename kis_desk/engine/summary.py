"""The collector's closing summary: one place that reads every component's stats value.

Components replaced during a run (live settings, a new business day) count with their run
totals, so the summary of a long run is the run's, not the last component's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def collector_summary(self: Any) -> dict[str, Any]:
    """Counters for the CLI's closing JSON line, the exit code and the self-check.

    One place that reads each component's stats value.
    """
    feed = _Fields(self.feed.stats() if self.feed is not None else None,
                   [_Fields(s) for s in self._retired_feeds])
    storage = _Fields(self.writer.stats() if self.writer is not None else None,
                      [_Fields(s) for s in self._retired_storage])
    publisher: Any = _Fields(self.publisher.stats() if self.publisher is not None else None,
                             [_Fields(s) for s in self._retired_publishers])
    if self.publisher is None and not self._retired_publishers:
        publisher = None
    dark = self.symbols_never_collected()
    return {
        "received": self.ticks_total,
        "received_ws": self._ticks_by_source.get("ws", 0),
        "stored": storage["stored"],
        "duplicates": storage["duplicates"],
        "journaled": storage["journaled"],
        "failed": storage["failed"],
        "database_bytes": storage["database_bytes"],
        "retention_days": storage["retention_days"],
        "purged": storage["purged"],
        "backfilled": feed["backfilled"],
        "polled": feed["polled"],
        "reconnects": feed["reconnects"],
        "protocol_errors": feed["protocol_errors"],
        "gaps_unrecovered": feed["gaps_unrecovered"],
        "gaps_pending": self.gaps_left if self._stopping else feed["gaps_pending"],
        "worst_gap_s": feed["worst_gap_s"],
        "symbols_dark": max(len(dark), feed["symbols_dark"]),
        "symbols_never_collected": dark,
        "keys_down": list(self.feed.stats().keys_down) if self.feed is not None else [],
        "alerts": self.alerts,
        "alerts_late": self.alerts_late,
        "alerts_delivered": publisher["delivered"] if publisher else 0,
        "alerts_dropped": publisher["dropped"] if publisher else 0,
        "alerts_undelivered": (publisher["pending"] + publisher["dropped"]) if publisher else 0,
        "trades_streamed": publisher["trades_streamed"] if publisher else 0,
        "trades_stream_dropped": publisher["trades_dropped"] if publisher else 0,
        "symbols": len(self.codes),
        "venue": self.venue,
        "venue_fallback_from": self.feed.fallback_from if self.feed is not None else None,
        "alerts_quieted": self.alerts_quieted,
    }


_RUN_TOTALS = frozenset({"stored", "duplicates", "journaled", "failed", "backfilled", "polled",
                         "reconnects", "protocol_errors", "gaps_unrecovered", "delivered",
                         "dropped", "trades_streamed", "trades_dropped"})


class _Fields:
    """Reads a component's frozen stats value by field name (no component yet: 0), adding the
    run totals of the components it replaced during this run (``retired``). A misspelt field
    raises: every name read here exists on WriterStats, FeedStats and PublisherStats."""

    def __init__(self, stats: Any, retired: Sequence[_Fields] = ()) -> None:
        self._stats = stats
        self._retired = retired

    def __getitem__(self, name: str) -> Any:
        value = 0 if self._stats is None else getattr(self._stats, name)
        value = 0 if value is None else value
        if name in _RUN_TOTALS:
            return value + sum(r[name] for r in self._retired)
        if name == "worst_gap_s":
            return max([value, *(r[name] for r in self._retired)])
        return value
