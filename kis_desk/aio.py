"""Small asyncio helpers shared by the engine, the feed and the simulator."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterable

# Ctrl-C, `kill`/service stop and, on Windows, Ctrl-Break: each asks for a clean, flushed stop.
STOP_SIGNALS: tuple[int, ...] = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK")
                                      if hasattr(signal, name))


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


def on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> Callable[[], None]:
    """Run ``callback`` on ``loop`` when a stop signal arrives; returns the function that undoes it.

    Why not only ``loop.add_signal_handler``: it is POSIX-only (Windows' Proactor loop and qasync's
    Qt loop raise NotImplementedError), and off the main thread it raises too. The fallback is a
    plain ``signal.signal`` handler that hands over to the loop thread-safely (Windows delivers
    SIGINT/SIGBREAK to the main thread; asyncio's wake-up fd makes the Proactor loop notice).
    """
    on_loop: list[int] = []
    previous: dict[int, object] = {}
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, callback)
            on_loop.append(sig)
            continue
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        try:
            previous[sig] = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(callback))
        except (ValueError, OSError):   # not the main thread: the caller's own stop path remains
            pass

    def undo() -> None:
        for sig in on_loop:
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):
                pass

    return undo
