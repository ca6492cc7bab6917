"""Defaults every layer shares, in one place (the detector, the collector, the CLI, settings
and the feed read them from here instead of repeating the numbers)."""

from __future__ import annotations

DEFAULT_THRESHOLD_PCT = 5.0       # alert when the price moves this many percent …
DEFAULT_WINDOW_SECONDS = 60.0     # … within this many seconds of exchange time
DEFAULT_SILENCE_TIMEOUT = 90.0    # no frame of any kind on a socket for this long → reconnect

__all__ = ["DEFAULT_SILENCE_TIMEOUT", "DEFAULT_THRESHOLD_PCT", "DEFAULT_WINDOW_SECONDS"]
