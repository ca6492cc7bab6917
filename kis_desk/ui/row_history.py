"""The grid rows' start from storage: today's stored history (last trade, sparkline, 1-minute
change) loaded per row through ``EngineHandle.intraday``, merged with the live trades that
arrive meanwhile.

Apart from :mod:`main_window` because it is a job with its own ordering rule: a row's live
trades are buffered from the moment it is created until its history is in (``begin_seed`` in
the same GUI-thread step as ``set_codes``), so a restart at 11:00 shows the whole morning at
once, without a duplicate and without a hole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any

from .row_state import SPARK_POINTS
from .watchlist_model import WatchlistModel

SEED_CHUNK = 10           # symbols per worker-thread round trip when loading history


class RowHistory:
    """Loads stored history into new rows of ``model``; ``spawn`` runs a coroutine as a window
    task, ``business_date()`` is the day the grid shows."""

    def __init__(self, engine: Any, model: WatchlistModel, spawn: Callable[[Awaitable[Any]], Any],
                 business_date: Callable[[], date]) -> None:
        self.engine = engine
        self.model = model
        self.spawn = spawn
        self.business_date = business_date

    def prepare(self, codes: Sequence[str]) -> None:
        """Create the rows before the engine starts, so trades it delivers while starting
        (back-fill of the time the app was closed) are buffered for the history merge."""
        self.model.set_codes(codes)
        self.model.buffer_live(codes)

    def show_codes(self, codes: Sequence[str]) -> None:
        """Put ``codes`` in the grid; rows new to it start loading today's history at once.

        ``begin_seed`` runs in the same GUI-thread step as ``set_codes``, so every live trade
        for a new row is either in the stored history or in the row's pending buffer.
        """
        self.model.set_codes(codes)
        todo = self.model.begin_seed(codes)
        if todo and self.engine.has_storage:
            self.spawn(self.seed_rows(todo))
        else:
            self.model.end_seed(todo)

    async def seed_rows(self, todo: Sequence[str]) -> None:
        """Fill rows with today's stored history, a few symbols per round trip so the first
        rows appear quickly; live trades arriving meanwhile are buffered per row and merged
        without duplicates (``WatchlistModel.seed``)."""
        today = self.business_date()
        chunks = [list(todo[i:i + SEED_CHUNK]) for i in range(0, len(todo), SEED_CHUNK)]

        async def read(chunk: list[str]) -> tuple[list[str], dict]:
            return chunk, await self.engine.intraday(chunk, today, SPARK_POINTS)

        # every chunk's read is under way at once (no loop round trip between them while the
        # start keeps the loop busy); each is shown as it arrives
        reads = [asyncio.ensure_future(read(c)) for c in chunks]
        try:
            for done in asyncio.as_completed(reads):
                chunk, loaded = await done
                for code in chunk:
                    if code in loaded:
                        self.model.seed(code, *loaded[code])
                    else:
                        self.model.end_seed([code])
        finally:
            for r in reads:
                r.cancel()
            self.model.end_seed(todo)       # failures/cancellation: rows stay live-only


__all__ = ["RowHistory", "SEED_CHUNK"]
