"""Small asyncio helpers shared by the engine, the feed and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task | None]) -> None:
    """Cancel tasks and wait until each has finished; their errors are already reported by
    the tasks themselves, so a shutdown never fails on them."""
    pending = [t for t in tasks if t is not None]
    for t in pending:
        t.cancel()
    for t in pending:
        try:
            await t
        except (asyncio.CancelledError, Exception):
            pass
