"""The feed's settings as a few small config objects instead of one long parameter list.

``FeedConfig`` groups what the FeedManager needs; the WebSocket part is ``SessionConfig`` (one
definition, shared by every session), the rest is per job: polling, back-fill, failover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..market.venues import VENUE_KRX, venue
from .session_types import SessionConfig
from .sharding import PER_SESSION


@dataclass(frozen=True)
class PollConfig:
    mode: str = "trades"              # "trades" (every trade, via time paging) | "price"
    share: float = 0.7                # fraction of a key's REST budget polling may use
    min_interval: float = 0.5         # never poll one symbol more often than this


@dataclass(frozen=True)
class BackfillConfig:
    workers: int = 4                  # concurrent back-fills per app key
    retries: int = 3                  # quick retries (Backoff) before "retry later"
    retry_later: float = 30.0         # then one more try per symbol this often
    gap_cooldown: float = 2.0         # a live chain break back-fills at most this often
    drain_timeout: float = 5.0        # a clean stop lets back-fills under way finish this long


@dataclass(frozen=True)
class FailoverConfig:
    """When a key's session cannot carry its symbols, move them (never reconnect faster).

    A session not LIVE for ``after`` seconds (plus the time its resubscribe takes) — OPSP8996,
    failing handshakes — or whose own back-off already says so (OPSP8996's long wait), or
    whose key was rejected, or that the watchdog declared stalled, is *down*: its symbols go to
    free registrations on the other keys, the rest to REST polling. A key's first connection
    counts ``after`` from its last progress (handshake, an acknowledgement) instead. It keeps retrying with its own back-off; once LIVE again for ``recover_hold``
    seconds the borrowed registrations are given back (a short hold, so a key that flaps does
    not move symbols back and forth every second)."""

    after: float = 3.0
    recover_hold: float = 5.0
    monitor_interval: float = 0.5     # how often states, dark time and failover are evaluated
    dark_warning_after: float = 10.0  # a symbol without any data source this long: WARNING


@dataclass(frozen=True)
class FeedConfig:
    #: krx | nxt | total (``market.venues``): the trade TR every session subscribes and the REST
    #: market code of polling and back-fill; ``session.tr_id`` is set from it
    venue: str = VENUE_KRX
    session: SessionConfig = field(default_factory=SessionConfig)
    per_session: int = PER_SESSION
    poll: PollConfig = field(default_factory=PollConfig)
    backfill: BackfillConfig = field(default_factory=BackfillConfig)
    failover: FailoverConfig = field(default_factory=FailoverConfig)
    always_open: bool = True          # True: ignore the calendar hook (simulator, tests)
    rest_options: dict[str, Any] = field(default_factory=dict)   # KisRestClient keywords
    seed: int | None = None

    def __post_init__(self) -> None:
        venue(self.venue)       # ValueError naming the venues for anything else

    @property
    def market(self) -> str:
        """REST market code of the venue: KRX "J", NXT "NX", integrated "UN"."""
        return venue(self.venue).market_code


__all__ = ["BackfillConfig", "FailoverConfig", "FeedConfig", "PollConfig"]
