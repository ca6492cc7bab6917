"""REST polling for symbols that fit on no WebSocket session (honest fallback).

Two modes:

* ``"trades"`` (default): each poll runs an incremental back-fill from the last cumulative
  volume we hold (``inquire-time-itemconclusion``), so a polled symbol still gets **every
  trade**, just late by up to one poll interval. It costs one call per poll while the symbol
  trades less than a page per interval, more (bounded by ``max_pages_per_poll``) when busy.
  When that bound stops a poll before it reaches the last trade held (a busy symbol polled
  after seconds without data), the rest is still on the server: it is handed to the back-fill
  (``request_backfill``), never counted lost. Only breaks inside the rows fetched are gaps.
* ``"price"``: one ``inquire-price`` per poll; when ``acml_vol`` grew we emit ONE synthetic,
  aggregated tick (volume = the growth, price = current price, time = now KST rounded to the
  second). Cheaper but it does not see individual trades.

Interval: the symbols of one app key are polled round-robin using ``share`` of that key's REST
budget (the rest stays free for back-fills): 19/s real and 9 symbols → each symbol about every
0.7 s; 1.8/s mock → about every 7 s. Calls use the REST market code of the feed's venue (the
back-filler's, ``market.venues``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime

from ..aio import cancel_and_wait
from ..core.backoff import Backoff, BackoffPolicy
from ..core.ticks import SOURCE_POLL, Tick
from .backfill import Backfiller
from .rest import CredentialError, KisError, KisRestClient, kst_now

log = logging.getLogger(__name__)


class Poller:
    def __init__(self, rest: KisRestClient, backfiller: Backfiller, *,
                 emit: Callable[[list[Tick], str, int], None],
                 last_cum: Callable[[str], int | None],
                 business_date: Callable[[], date],
                 mode: str = "trades", share: float = 0.7, min_interval: float = 0.5,
                 max_pages_per_poll: int = 5,
                 is_open: Callable[[datetime], bool] | None = None,
                 clock: Callable[[], datetime] = kst_now,
                 on_problem: Callable[[str], None] | None = None,
                 backoff: Backoff | None = None,
                 request_backfill: Callable[[str, int], None] | None = None) -> None:
        if mode not in ("trades", "price"):
            raise ValueError("mode must be 'trades' or 'price'")
        self.rest = rest
        self.backfiller = backfiller
        self.emit = emit
        self.last_cum = last_cum
        self.business_date = business_date
        self.mode = mode
        self.share = share
        self.min_interval = min_interval
        self.max_pages_per_poll = max_pages_per_poll
        self.is_open = is_open
        self.clock = clock
        self.on_problem = on_problem
        self.request_backfill = request_backfill
        self.codes: list[str] = []
        self.polls = 0
        self.errors = 0
        self.gaps = 0
        self.gap_volume = 0
        self.ok: set[str] = set()         # polled successfully at least once
        self.ok_at: dict[str, float] = {}  # code -> monotonic time of the last successful poll
        # a refused key/secret: retry rarely (the user must fix it), with the shared Backoff
        self.backoff = backoff or Backoff(BackoffPolicy(initial=5.0, cap=60.0, jitter=0.2))
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def set_codes(self, codes: Sequence[str]) -> None:
        self.codes = list(dict.fromkeys(codes))
        self.ok &= set(self.codes)
        self.ok_at = {c: t for c, t in self.ok_at.items() if c in self.ok}
        self._wake.set()

    def interval(self) -> float:
        """Seconds between two polls of the same symbol."""
        n = max(1, len(self.codes))
        return max(self.min_interval, n / (self.rest.limiter.rate * self.share))

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"poll-{self.rest.label}")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.codes:
                await self._sleep(3600)
                continue
            if self.is_open is not None and not self.is_open(self.clock()):
                await self._sleep(30)
                continue
            started = loop.time()
            for code in list(self.codes):
                if code not in self.codes:
                    continue
                try:
                    await self.poll_once(code)
                except asyncio.CancelledError:
                    raise
                except CredentialError as exc:
                    self.errors += 1
                    if self.on_problem:
                        self.on_problem(str(exc))
                    await self._sleep(self.backoff.next_delay())
                    break
                except KisError as exc:
                    self.errors += 1
                    log.warning("poll of %s failed: %s", code, exc)
                except Exception:
                    self.errors += 1
                    log.exception("poll of %s failed", code)
            rest_of_round = self.interval() - (loop.time() - started)
            if rest_of_round > 0:
                await self._sleep(rest_of_round)

    def _polled_ok(self, code: str) -> None:
        self.ok.add(code)
        self.ok_at[code] = time.monotonic()
        self.backoff.reset()

    async def poll_once(self, code: str) -> list[Tick]:
        self.polls += 1
        last = self.last_cum(code)
        if self.mode == "price":
            venue = self.backfiller.venue
            q = await self.rest.inquire_price(code, venue.market_code)
            ticks: list[Tick] = []
            if last is not None and q.cum_volume > last and venue is self.backfiller.venue:
                now = self.clock().replace(microsecond=0)
                ticks = [Tick(code, now, q.price, q.cum_volume - last, q.cum_volume, q.change,
                              q.change_rate, None, now.timestamp(), SOURCE_POLL, venue.name)]
            self._polled_ok(code)
            # first poll: establishes the baseline only (we cannot say how the volume split)
            self.emit(ticks, code, q.cum_volume)
            return ticks
        result = await self.backfiller.fill(self.rest, code, self.business_date(), after_cum=last,
                                            max_pages=self.max_pages_per_poll, source=SOURCE_POLL)
        self._polled_ok(code)
        if result.venue != self.backfiller.venue.name:
            return []       # the feed fell back to KRX during the poll: another venue's chain
        ranges = result.gap_ranges
        if (last is not None and not result.reached and self.request_backfill is not None
                and ranges and ranges[0][0] == last):
            # the page bound stopped short of what we hold: the trades before the oldest page
            # are still on the server — the back-fill pages them (dedupe makes overlap harmless)
            self.request_backfill(code, last)
            ranges = ranges[1:]
        if ranges:
            self.gaps += len(ranges)
            self.gap_volume += sum(b - a for a, b in ranges)
        newest = result.ticks[-1].cum_volume if result.ticks else (last or 0)
        self.emit(result.ticks, code, newest)
        return result.ticks


__all__ = ["Poller"]
