"""Where each symbol's feed resumes — per venue — after a restart, a crash mid back-fill, a feed
switch or a switch of venue, and what a change of venue means for the detector.

Why its own module: the feed back-fills every symbol from one trade of one venue's chain, and
choosing it without ever skipping a hole is its own job. A mixin of
:class:`~.collector.Collector` (its repository, detector, codes and business date); the
database is read in a worker thread, never on the loop. Per (venue, symbol):

* the venue streamed before: from its newest stored trade of today, or from the trade before the
  first hole a crash left in that venue's chain (or, when a feed is replaced live, the newest
  one received);
* a venue with nothing stored today while another venue has (a switch of venue, by Settings or
  by a restart with another ``--venue``): from ``window`` seconds before the other venue's newest
  trade — a *time*, because the cumulative volumes of two venues are different chains — so the
  stretch of the switch is back-filled and the detector's window is primed;
* KRX is always loaded too: the feed falls back to it when the venue's TR is refused.

Each venue has its own chain, so the detector starts over when the venue of the trades changes
(``_venue_changed``). What the old venue judged is not alerted again (``_quieted``): an alert
whose trigger trade is not newer than the last trade judged before the change, and an alert of
a move that began before the change when the old venue already alerted that move (same
direction, a step at least as high, triggered after the new alert's base) — the new venue's live
trades may reach the detector before its back-fill of the stretch does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from ..core.events import AlertEvent
from ..core.ticks import Tick
from ..market.venues import FALLBACK_VENUE, VENUE_TABLE

log = logging.getLogger("kis_desk.engine.collector")

#: (business date, cum_volume or None = back-fill from the time, HHMMSS)
ResumePoint = tuple[date, "int | None", str]


def resume_point(tick: Tick) -> ResumePoint:
    return tick.timestamp.date(), tick.cum_volume, tick.timestamp.strftime("%H%M%S")


def since_point(anchor: datetime, seconds: float) -> ResumePoint:
    """Back-fill from ``seconds`` before ``anchor`` (not before midnight of its day)."""
    start = anchor - timedelta(seconds=seconds)
    hhmmss = start.strftime("%H%M%S") if start.date() == anchor.date() else "000000"
    return anchor.date(), None, hhmmss


class ResumePoints:
    """Resume points per (venue, code) and the venue-change rule of a Collector."""

    # provided by Collector
    config: Any
    repository: Any
    detector: Any
    business_date: date
    codes: list[str]
    _resume_from: dict[tuple[str, str], ResumePoint | None]
    _quiet_until: dict[str, datetime]
    _moves_raised: dict[str, list[tuple[str, int, datetime]]]
    _detector_venue: str
    alerts_quieted: int

    def _load_last_ticks(self, codes: Sequence[str]) -> dict[str, Tick | None]:
        """Last stored trade of today per code on the configured venue; also notes where each
        code's back-fill resumes on that venue and on KRX (see the module docstring). Runs in a
        worker thread, never on the loop."""
        today = self.business_date
        venue = self.config.venue
        resumed = dict.fromkeys((venue, FALLBACK_VENUE))
        last: dict[str, Tick | None] = {}
        for code in codes:
            newest_other: Tick | None = None
            for v in VENUE_TABLE:
                tick = self.repository.last_trade(code, today, v)
                if v in resumed:
                    hole = self.repository.last_before_first_gap(code, today, v) if tick else None
                    if hole is not None:
                        log.warning("%s: stored %s trades have a gap after cumulative volume %d (an "
                                    "earlier run stopped mid back-fill); back-filling from there",
                                    code, v, hole.cum_volume)
                    point = hole or tick
                    self._resume_from[(v, code)] = None if point is None else resume_point(point)
                if v == venue:
                    last[code] = tick
                elif tick is not None and (newest_other is None
                                           or tick.timestamp > newest_other.timestamp):
                    newest_other = tick
            if last[code] is None and newest_other is not None:
                self._resume_from[(venue, code)] = since_point(newest_other.timestamp,
                                                              self.config.window_seconds)
                self._quiet(code, newest_other.timestamp)
        if self._quiet_until:       # another venue judged part of today: its alerts count
            for stored in self.repository.alerts_on(today):
                if stored.alert.stock_code in self._quiet_until:
                    self._note_raised(stored.alert)
        return last

    def _last_seen(self, code: str, venue: str) -> ResumePoint | None:
        """Where the feed resumes ``code`` on ``venue`` (FeedManager's ``last_seen``). Served from
        the cache loaded off the loop or set by a feed restart."""
        return self._resume_from.get((venue, code))

    def _resume_points_from_detector(self) -> None:
        """Where a feed started now on the same venue resumes: the newest trade of today received
        per symbol; a symbol without one resumes from the start of the day (cumulative volume 0),
        so the new feed back-fills everything it has not delivered yet (storage and the detector
        drop what they have already)."""
        venue = self._detector_venue
        for code in self.codes:
            seen = self.detector.last_trade(code) if self.detector is not None else None
            if seen is not None and seen[0] == self.business_date:
                self._resume_from[(venue, code)] = (seen[0], seen[1], seen[2].strftime("%H%M%S"))
            else:
                self._resume_from[(venue, code)] = (self.business_date, 0, "000000")

    def _resume_on_new_venue(self, venue: str) -> None:
        """After ``_load_last_ticks`` for ``venue`` (a switch of venue): a symbol with no trade of
        ``venue`` stored today resumes from the window before the newest trade received (the
        detector has what the database may not have yet)."""
        for code in self.codes:
            seen = self.detector.last_trade(code) if self.detector is not None else None
            if seen is None or seen[0] != self.business_date:
                continue
            point = self._resume_from.get((venue, code))
            if point is None or point[1] is None:
                self._resume_from[(venue, code)] = since_point(seen[2], self.config.window_seconds)
            self._quiet(code, seen[2])

    def _quiet(self, code: str, until: datetime) -> None:
        if code not in self._quiet_until or until > self._quiet_until[code]:
            self._quiet_until[code] = until

    def _venue_changed(self, venue: str) -> None:
        """The trades now come from ``venue`` (a switch, a fallback to KRX): each symbol's chain
        starts over in the detector; what it judged on the old venue is not alerted again."""
        for code in list(self.detector.codes()):
            seen = self.detector.last_trade(code)
            if seen is not None:
                self._quiet(code, seen[2])
            self.detector.reset(code)
        log.info("trades now from venue %s (were %s): the detector starts each symbol's chain "
                 "over", venue, self._detector_venue)
        self._detector_venue = venue

    def _note_raised(self, alert: AlertEvent) -> None:
        if alert.kind == "move":
            self._moves_raised.setdefault(alert.stock_code, []).append(
                (alert.direction, alert.step, alert.trigger_time))

    def _quieted(self, alert: AlertEvent) -> bool:
        """An alert of what the previous venue judged already (see the module docstring)."""
        until = self._quiet_until.get(alert.stock_code)
        if until is None or alert.base_time > until:
            return False
        if alert.trigger_time > until and not any(
                d == alert.direction and step >= alert.step and t >= alert.base_time
                for d, step, t in self._moves_raised.get(alert.stock_code, ())):
            return False
        self.alerts_quieted += 1
        log.info("alert %s not raised: the venue before judged its move already (trigger %s, "
                 "judged until %s)", alert.alert_id, alert.trigger_time.strftime("%H:%M:%S"),
                 until.strftime("%H:%M:%S"))
        return True


__all__ = ["ResumePoint", "ResumePoints", "resume_point", "since_point"]
