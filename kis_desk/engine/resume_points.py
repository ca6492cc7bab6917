"""Where each symbol's feed resumes: after a restart, a crash mid back-fill, a feed switch.

Why its own module: the feed back-fills every symbol from one trade — the newest stored one of
today, or the one before a hole a crash left in the cumulative-volume chain, or (when a feed
is replaced live) the newest one received — and choosing that trade without ever skipping a
hole is its own job. A mixin of :class:`~.collector.Collector` (its repository, detector,
codes and business date); the database is read in a worker thread, never on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

from ..core.ticks import Tick

log = logging.getLogger("kis_desk.engine.collector")


class ResumePoints:
    """The last stored trades and each symbol's resume point (see the module docstring)."""

    def _load_last_ticks(self, codes: Sequence[str]) -> dict[str, Tick | None]:
        """Last stored trade of today per code; also notes where each code's back-fill must
        resume (before a hole a crash left, if any). Runs in a worker thread, never on the loop."""
        today = self.business_date
        last: dict[str, Tick | None] = {}
        for code in codes:
            last[code] = self.repository.last_trade(code, today)
            hole = self.repository.last_before_first_gap(code, today) if last[code] else None
            if hole is not None:
                log.warning("%s: stored trades have a gap after cumulative volume %d (an earlier "
                            "run stopped mid back-fill); back-filling from there", code, hole.cum_volume)
            point = hole or last[code]
            self._resume_from[code] = None if point is None else _resume_point(point)
        return last

    def _last_seen(self, code: str) -> tuple[date, int, str] | None:
        """(date, cum_volume, HHMMSS) of the trade the feed back-fills from after a restart: the
        newest stored one, or the one before a hole. Served from the cache loaded off the loop
        (or set by a feed restart: :meth:`_resume_points_from_detector`)."""
        return self._resume_from.get(code)

    def _resume_points_from_detector(self) -> None:
        """Where a feed started now resumes: the newest trade of today received per symbol;
        a symbol without one resumes from the start of the day (cumulative volume 0), so the
        new feed back-fills everything it has not delivered yet (storage and the detector
        drop what they have already)."""
        for code in self.codes:
            seen = self.detector.last_trade(code) if self.detector is not None else None
            if seen is not None and seen[0] == self.business_date:
                self._resume_from[code] = (seen[0], seen[1], seen[2].strftime("%H%M%S"))
            else:
                self._resume_from[code] = (self.business_date, 0, "000000")


def _resume_point(tick: Tick) -> tuple[date, int, str]:
    return tick.timestamp.date(), tick.cum_volume, tick.timestamp.strftime("%H%M%S")


__all__ = ["ResumePoints"]
