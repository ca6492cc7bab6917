"""Recover trades missed while the socket was down, from ``inquire-time-itemconclusion``.

KIS offers no ``tr_cont`` paging for this API (kis-protocol.md §8.1): a call returns one page of
trades at or before ``FID_INPUT_HOUR_1``, newest first. We page backwards by time: the next
query asks for the earliest second seen on the previous page. Rows of that same second come
again and are deduplicated by ``acml_vol`` (cumulative volume grows with every trade, so it
identifies a trade). We stop once a row reaches the last cumulative volume we already hold.

If one second holds more trades than a page, the rows of that second beyond the page cannot be
reached (there is no finer time key): we step back one second and carry on. Whatever is missing
shows up as a break in the cumulative-volume chain (``acml_vol - cnqn`` of each row must equal
the previous row's ``acml_vol``) and is reported — counted, never silently dropped, and never
retried forever: every query asks for a strictly earlier time. A page without rows while the
day's ``acml_vol`` (output1) is beyond what we hold is such a break too: it used to read as
"nothing missed", which hid a restart's unfillable hole whenever the back-fill ran before the
server's first trade of the run (the restart-quiet race).

Venue: the pages come from the venue's REST market code (J / NX / UN, ``market.venues``) and
the trades carry that venue; one run keeps the venue it started with (a feed that falls back to
KRX meanwhile drops a run of the venue it left: ``BackfillResult.venue``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from ..core.ticks import SOURCE_BACKFILL, Tick
from ..market.venues import VENUE_KRX, Venue, venue as venue_named
from ..protocol.records import kst_timestamp
from .rest import ConclusionRow, KisRestClient, hhmmss_minus, kst_now

log = logging.getLogger(__name__)


@dataclass
class BackfillResult:
    code: str
    ticks: list[Tick]
    pages: int = 0
    reached: bool = False          # a row at or before ``after_cum`` was reached
    gaps: int = 0                  # breaks in the cumulative-volume chain
    gap_volume: int = 0            # shares in those breaks (unrecoverable trades' volume)
    gap_ranges: list[tuple[int, int]] = field(default_factory=list)  # (after_cum, before_cum)
    venue: str = VENUE_KRX         # the venue the pages came from


def row_to_tick(code: str, business_date: date, row: ConclusionRow, received_at: float,
                source: str = SOURCE_BACKFILL, venue: str = VENUE_KRX) -> Tick:
    assert row.cum_volume is not None
    return Tick(code, kst_timestamp(business_date.strftime("%Y%m%d"), row.hhmmss), row.price,
                row.volume, row.cum_volume, row.change, row.change_rate, row.strength,
                received_at, source, venue)


def chain_gaps(rows: list[ConclusionRow], after_cum: int | None) -> list[tuple[int, int]]:
    """Missing cumulative-volume ranges (exclusive start, inclusive end) in ascending ``rows``."""
    gaps: list[tuple[int, int]] = []
    prev = after_cum
    for r in rows:
        assert r.cum_volume is not None
        start = r.cum_volume - r.volume
        if prev is not None and start > prev:
            gaps.append((prev, start))
        prev = r.cum_volume if prev is None else max(prev, r.cum_volume)
    return gaps


class Backfiller:
    """Pages one symbol's trades back to a known cumulative volume. Stateless between calls."""

    def __init__(self, *, max_pages: int = 2000, clock: Callable[[], datetime] = kst_now,
                 venue: str | Venue = VENUE_KRX, lookahead: float = 60.0) -> None:
        self.max_pages = max_pages
        self.clock = clock
        self.venue: Venue = venue_named(venue)   # the feed changes it when it falls back to KRX
        self.lookahead = lookahead   # query a little past "now": clocks differ

    @property
    def market(self) -> str:
        """The REST market code of the venue (FID_COND_MRKT_DIV_CODE)."""
        return self.venue.market_code

    def start_hour(self) -> str:
        t = self.clock() + timedelta(seconds=self.lookahead)
        if t.date() != self.clock().date():
            return "235959"
        return t.strftime("%H%M%S")

    async def fill(self, rest: KisRestClient, code: str, business_date: date, *,
                   after_cum: int | None, since_hhmmss: str | None = None,
                   until_hhmmss: str | None = None, max_pages: int | None = None,
                   source: str = SOURCE_BACKFILL) -> BackfillResult:
        """Trades of ``code`` with cum_volume > ``after_cum`` (and time ≥ ``since_hhmmss`` when
        given), in ascending order. ``after_cum=None`` with no ``since_hhmmss`` fetches one page.
        """
        limit = max_pages or self.max_pages
        venue = self.venue
        hour: str | None = until_hhmmss or self.start_hour()
        found: dict[int, ConclusionRow] = {}
        result = BackfillResult(code, [], venue=venue.name)
        day_cum: int | None = None          # the day's cumulative volume when the first page came
        while hour is not None and result.pages < limit:
            page = await rest.inquire_time_itemconclusion(code, hour, venue.market_code)
            result.pages += 1
            if day_cum is None:
                day_cum = page.cum_volume
            rows = page.rows
            if not rows:
                break
            oldest = rows[0]
            earliest = rows[0].hhmmss
            for r in rows:
                cum = r.cum_volume
                assert cum is not None
                if r.hhmmss < earliest:
                    earliest = r.hhmmss
                if cum < (oldest.cum_volume or 0):
                    oldest = r
                if after_cum is not None and cum <= after_cum:
                    continue
                if since_hhmmss is not None and r.hhmmss < since_hhmmss:
                    continue
                found.setdefault(cum, r)
            assert oldest.cum_volume is not None
            if after_cum is not None and oldest.cum_volume - oldest.volume <= after_cum:
                result.reached = True
                break
            if since_hhmmss is not None and earliest < since_hhmmss:
                result.reached = True
                break
            if after_cum is None and since_hhmmss is None:
                break
            if earliest < hour:
                hour = earliest                 # rows of that second come again: deduped
            else:
                hour = hhmmss_minus(hour, 1)    # a whole page inside one second: step back
        rows_sorted = [found[k] for k in sorted(found)]
        if after_cum is not None:
            result.gap_ranges = chain_gaps(rows_sorted, after_cum)
            if not rows_sorted and not result.reached and day_cum is not None and day_cum > after_cum:
                # the server counts trades after ``after_cum`` but lists none of them: as lost as
                # a break before the first row (a resumed day whose earlier trades it never had)
                result.gap_ranges = [(after_cum, day_cum)]
        elif since_hhmmss is not None:
            result.gap_ranges = chain_gaps(rows_sorted, None)
        result.gaps = len(result.gap_ranges)
        result.gap_volume = sum(b - a for a, b in result.gap_ranges)
        now = time.time()
        result.ticks = [row_to_tick(code, business_date, r, now, source, venue.name)
                        for r in rows_sorted]
        if result.gaps:
            log.debug("%s: back-fill could not recover %d share(s) in %d gap(s) %s",
                        code, result.gap_volume, result.gaps, result.gap_ranges[:3])
        return result
