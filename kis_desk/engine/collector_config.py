"""What a collector is told: its configuration, the clock it reads, and the errors it raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..config import AppCredential, UserPaths
from ..defaults import (
    DEFAULT_SILENCE_TIMEOUT, DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS, RETENTION_DAYS,
    TRADE_STREAM_MAXLEN,
)
from ..market.venues import VENUE_KRX
from ..protocol.records import KST


class ConfigError(ValueError):
    """A configuration the collector cannot start with; the message is for the user."""


@dataclass
class CollectorConfig:
    env: str = "sim"                               # sim | mock | real | custom
    codes: list[str] = field(default_factory=list)  # empty → the default 50-symbol watchlist
    ws_url: str | None = None
    rest_url: str | None = None
    credentials: list[AppCredential] | None = None  # None → environment variables (mock/real)
    db_url: str | None = None                       # None → SQLite in the user data directory
    redis_url: str | None = None
    redis_channel: str = "kis:alerts"
    redis_stream: str | None = None                  # alerts also XADDed here (attached desktops)
    redis_tick_channel: str | None = None            # also publish every tick on pub/sub (best effort)
    redis_trade_stream: str | None = None            # XADD every trade here (attached desktops)
    redis_trade_maxlen: int = TRADE_STREAM_MAXLEN    # trade stream retention, entries (≈ batches)
    #: krx | nxt | total (kis_desk.market.venues). The entry points (collect, the app, Settings)
    #: default to ``defaults.DEFAULT_VENUE`` (total); a collector built in code streams KRX, like
    #: a simulator built in code trades KRX only, so the tests that count KRX tapes stay exact
    venue: str = VENUE_KRX
    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    overrides: dict[str, tuple[float, float]] = field(default_factory=dict)
    sim_rate: float = 200.0
    sim_keys: int = 2                               # simulated app keys (2 → 50 symbols all live)
    sim_jumps: list[tuple[str, float, float]] = field(default_factory=list)  # (code, pct, seconds)
    sim_spikes: bool = True                         # demo realism: news-like spikes every few minutes
    #: also collect every other stored watchlist (the desktop: a list not on screen keeps
    #: recording); the shown list gets live registrations first, the rest what is left or polling
    collect_all_watchlists: bool = False
    silence_timeout: float = DEFAULT_SILENCE_TIMEOUT
    retention_days: int = RETENTION_DAYS            # raw trades kept; bars_1m kept forever
    always_open: bool | None = None                 # None → True for sim, calendar otherwise
    # The feed's own settings (failover delays, stall watchdog, back-fill drain): None → the
    # production defaults with ``silence_timeout`` above. Tests and benchmarks pass a FeedConfig
    # to run fault scenarios on compressed time; ``always_open`` above still applies.
    feed: Any = None                                # kis_desk.feed.config.FeedConfig | None
    attach: bool = False                            # desktop only: show a remote collector
    paths: UserPaths | None = None

    @property
    def embedded_sim(self) -> bool:
        """The built-in simulator (not a KIS-compatible server at explicit URLs)."""
        return self.env == "sim" and not (self.ws_url or self.rest_url)

    def database_url(self) -> str:
        """--db, else the user's SQLite database; simulated trades get their own file so they
        never mix with real market data."""
        if self.db_url:
            return self.db_url
        paths = self.paths or UserPaths.default()
        return paths.default_demo_database_url if self.embedded_sim else paths.default_database_url


def _calendar_open(now: datetime, venue: str = VENUE_KRX) -> bool:
    """The venue trades now (the session table: with ``total`` 08:00–20:00 on a trading day)."""
    from ..market.calendar import phase_at

    return phase_at(now, venue).trading


def _calendar_continuous(now: datetime, venue: str = VENUE_KRX) -> bool:
    """The venue is in continuous trading now (regular, pre- or after-market; not auctions)."""
    from ..market.calendar import MarketPhase, phase_at

    return phase_at(now, venue) in (MarketPhase.OPEN, MarketPhase.PRE_MARKET,
                                    MarketPhase.AFTER_MARKET)


def kst_now() -> datetime:
    """Wall clock in KST (the collector's default clock)."""
    return datetime.now(KST)


def today_kst(clock: Callable[[], datetime] = kst_now) -> date:
    """The KST business date by ``clock`` (KIS stamps trades with the KST calendar date)."""
    return clock().date()


#: CollectorConfig fields that need a new feed (new sessions, new credentials) when changed.
_FEED_FIELDS = ("env", "ws_url", "rest_url", "credentials", "silence_timeout", "always_open",
                "venue")
#: … a new Redis publisher.
_REDIS_FIELDS = ("redis_url", "redis_channel", "redis_stream", "redis_tick_channel")
#: … a reconfigured detector.
_DETECTOR_FIELDS = ("threshold_pct", "window_seconds", "overrides")
