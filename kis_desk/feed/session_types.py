"""What a WebSocket session is told and reports: its config, its states, its refusals.

Kept apart from the connection loop (``session.py``) so failover and the feed's config can
name them without the loop's imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.backoff import BackoffPolicy
from ..defaults import DEFAULT_SILENCE_TIMEOUT
from ..protocol.fields import TR_TRADES_KRX

# session states (SessionStateEvent.state); "connecting" covers the subscribe phase too
CONNECTING, LIVE, BACKOFF, STALLED, STOPPED, FAILED = (
    "connecting", "live", "backoff", "stalled", "stopped", "failed")


@dataclass
class SessionConfig:
    tr_id: str = TR_TRADES_KRX          # the FeedManager sets its venue's (FeedConfig.venue)
    silence_timeout: float = DEFAULT_SILENCE_TIMEOUT   # no frame of any kind for this long → reconnect (upper bound)
    # market-aware watchdog: while the market is in continuous trading and this socket's data
    # frames normally come every few seconds, silence of stall_factor × the usual gap (at least
    # stall_floor) is a stall. Outside sessions / in quiet auctions only silence_timeout applies.
    stall_floor: float = 10.0
    stall_factor: float = 8.0
    stall_min_frames: int = 20           # frames on this connection before the rate is trusted
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    in_use_wait: float = 20.0            # OPSP8996: the slot stays busy for tens of seconds
    credential_wait: float = 300.0       # wrong app key: retry rarely (the user must fix it)
    subscribe_spacing: float = 0.02      # 41 registrations in < 1 s, still not a burst
    max_size: int | None = 16 * 2**20
    max_queue: int = 4096                # frames buffered by the library before flow control
    open_timeout: float = 10.0
    close_timeout: float = 1.0
    custtype: str = "P"
    internal_error_retry: float = 1.0    # OPSP0007/9993: resend that registration after this


class AppKeyInUse(Exception):
    pass


class InvalidApproval(Exception):
    pass


__all__ = ["BACKOFF", "CONNECTING", "FAILED", "LIVE", "STALLED", "STOPPED", "AppKeyInUse",
           "InvalidApproval", "SessionConfig"]
