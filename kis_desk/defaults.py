"""Defaults every layer shares, in one place (settings, the feed, the detector, the collector
and the CLI read them from here instead of repeating the numbers). Base layer: no imports."""

from __future__ import annotations

DEFAULT_THRESHOLD_PCT = 5.0       # alert when the price moves this many percent …
DEFAULT_WINDOW_SECONDS = 60.0     # … within this many seconds of exchange time
DEFAULT_SILENCE_TIMEOUT = 90.0    # no frame of any kind on a socket for this long → reconnect
RETENTION_DAYS = 90               # days of raw trades kept (1-minute bars forever); 0 keeps all
#: The venue the entry points (``collect``, the app, Settings) stream: KIS's integrated KRX + NXT
#: trades (kis_desk.market.venues). A collector built in code streams KRX unless told.
DEFAULT_VENUE = "total"

# Redis Streams for attached desktops (engine.publisher writes them, engine.stream_reader reads).
DEFAULT_ALERT_STREAM = "kis:alerts:stream"
DEFAULT_TRADE_STREAM = "kis:trades:stream"
ALERT_STREAM_MAXLEN = 10_000      # alerts kept (XADD MAXLEN ~): days of alerts
# One trade-stream entry is one packed batch; a collector writes at most one entry per
# TRADE_STREAM_LINGER_S (batches ≤ TRADE_STREAM_BATCH trades), i.e. ≤ 20 entries/s up to
# 10,000 trades/s. 6,000 entries therefore keep ≥ 5 minutes of one collector's trades
# (≈ 600,000 trades, ~65 MB of Redis memory at 2,000 trades/s); divide by the number of
# collectors sharing the stream.
TRADE_STREAM_MAXLEN = 6_000
TRADE_STREAM_LINGER_S = 0.05
TRADE_STREAM_BATCH = 500

__all__ = ["ALERT_STREAM_MAXLEN", "DEFAULT_ALERT_STREAM", "DEFAULT_SILENCE_TIMEOUT",
           "DEFAULT_THRESHOLD_PCT", "DEFAULT_TRADE_STREAM", "DEFAULT_VENUE", "DEFAULT_WINDOW_SECONDS", "RETENTION_DAYS",
           "TRADE_STREAM_BATCH", "TRADE_STREAM_LINGER_S", "TRADE_STREAM_MAXLEN"]
