"""An attached desktop's repair of a stream gap: the trades it hid, reloaded from the database.

Why its own module: :mod:`.stream_reader` follows the Redis streams and says *when* entries
may be missing (trimmed, a Redis restart, a ``seq`` hole); finding *which* trades per symbol
(the cumulative-volume chain: ``cum_volume - volume`` of a trade is the previous trade's
``cum_volume``), waiting for the collectors' writers to commit them and delivering them once,
in order, without repeating live ones, is a job of its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from ..core.ticks import Tick
from .stream_reader import ReaderStats

log = logging.getLogger("kis_desk.engine.stream_reader")


class GapFiller:
    """Finds and fills, per symbol, the trades a stream gap hid, from the shared database.

    ``filter(ticks)`` sits between the reader and the desktop: it remembers each symbol's last
    trade, drops trades already delivered from the database, and after :meth:`gap` compares each
    symbol's next trade with the last one delivered; a break in the cumulative-volume chain is a
    hole, reloaded by ``load(code, start, end)`` (a repository's ``ticks_between``, run in a
    worker thread) and delivered through ``deliver`` once the database has all of it.
    Symbols that stay quiet for ``settle`` s after the gap are reloaded up to now (and their next
    trade is checked again). A symbol first seen after a gap has no baseline: its earlier trades
    are the database's (the desktop's history), not the reader's.
    """

    def __init__(self, load: Callable[[str, datetime, datetime], list[Tick]],
                 deliver: Callable[[Sequence[Tick]], None], stats: ReaderStats, *,
                 gap_wait: float = 15.0, settle: float = 2.0, retry_every: float = 0.25,
                 on_hole: Callable[[str], None] = lambda message: None) -> None:
        self._load, self._deliver, self.stats = load, deliver, stats
        self._gap_wait, self._settle, self._retry = gap_wait, settle, retry_every
        self._on_hole = on_hole
        self._last: dict[str, Tick] = {}             # last trade delivered per symbol (max cum)
        self._suspect: dict[str, Tick] = {}          # symbol → its last trade before the gap
        self._reloaded: dict[str, set[int]] = {}     # cum volumes delivered from the database
        self._live_since: dict[str, set[int]] = {}   # cum volumes delivered live while reloading
        self._tasks: set[asyncio.Task[None]] = set()
        self._settle_task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """A gap is being reloaded, or quiet symbols are still to be reloaded."""
        settling = self._settle_task is not None and not self._settle_task.done()
        return bool(self._tasks) or settling

    def gap(self) -> None:
        """Entries may be missing: check every symbol's next trade against its chain."""
        for code, last in self._last.items():
            self._suspect.setdefault(code, last)
        if self._settle_task is None or self._settle_task.done():
            self._settle_task = asyncio.create_task(self._settle_quiet(), name="gap-settle")

    def filter(self, ticks: Sequence[Tick]) -> list[Tick]:
        out: list[Tick] = []
        for t in ticks:
            code = t.stock_code
            done = self._reloaded.get(code)
            if done is not None and t.cum_volume in done:
                continue                     # already delivered from the database
            live = self._live_since.get(code)
            if live is not None:
                live.add(t.cum_volume)
            before = self._suspect.get(code)
            if before is not None and t.cum_volume > before.cum_volume:
                del self._suspect[code]
                if t.cum_volume - t.volume > before.cum_volume:     # a hole in the chain
                    self._reload(code, before, t)
            last = self._last.get(code)
            if last is None or t.cum_volume > last.cum_volume:
                self._last[code] = t
            out.append(t)
        return out

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._settle_task] if self._settle_task else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _reload(self, code: str, before: Tick, after: Tick | None) -> None:
        self._live_since.setdefault(code, set())
        task = asyncio.create_task(self._fill(code, before, after), name=f"gap-{code}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_quiet(self) -> None:
        await asyncio.sleep(self._settle)
        for code, before in list(self._suspect.items()):
            del self._suspect[code]
            self._reload(code, before, None)

    async def _fill(self, code: str, before: Tick, after: Tick | None) -> None:
        """Load (before, after) from the database until the chain is whole or gap_wait ends."""
        start = before.timestamp
        end = (after.timestamp if after is not None else datetime.now(start.tzinfo)
               + timedelta(days=1)) + timedelta(microseconds=1)
        upto = after.cum_volume - after.volume if after is not None else None
        deadline = time.monotonic() + self._gap_wait
        rows: list[Tick] = []
        while True:
            try:
                found = await asyncio.to_thread(self._load, code, start, end)
            except Exception as exc:      # a database hiccup: retry within gap_wait
                log.warning("reloading %s from the database failed: %s", code, exc)
                found = []
            rows = _chain(found, before.cum_volume, upto)
            whole = upto is None or (rows and rows[-1].cum_volume == upto)
            if whole or time.monotonic() > deadline:
                break
            await asyncio.sleep(self._retry)
        live = self._live_since.pop(code, set())
        rows = [t for t in rows if t.cum_volume not in live]
        if rows:
            self._reloaded.setdefault(code, set()).update(t.cum_volume for t in rows)
            self.stats.reloaded += len(rows)
            last = self._last.get(code)
            if last is None or rows[-1].cum_volume > last.cum_volume:
                self._last[code] = rows[-1]
            self._deliver(rows)
        if upto is None:
            # reloaded "up to now": the symbol's next live trade is still checked against what
            # the database had, so trades it had not committed yet are not skipped silently
            self._suspect.setdefault(code, self._last.get(code) or before)
        elif not whole:
            self.stats.holes_left += 1
            have = rows[-1].cum_volume if rows else before.cum_volume
            self._on_hole(f"{code}: trades after cumulative volume {have} up to {upto} are not "
                          f"in the database after {self._gap_wait:.0f} s; the chart shows a gap")


def _chain(found: list[Tick], after_cum: int, upto: int | None) -> list[Tick]:
    """The trades continuing the chain from ``after_cum`` (up to ``upto``), in chain order."""
    by_start = {t.cum_volume - t.volume: t for t in found
                if t.cum_volume > after_cum and (upto is None or t.cum_volume <= upto)}
    out: list[Tick] = []
    cum = after_cum
    while (t := by_start.get(cum)) is not None:
        out.append(t)
        cum = t.cum_volume
    return out


__all__ = ["GapFiller"]
