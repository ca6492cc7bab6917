"""KIS feed: REST client, WebSocket sessions per app key, sharding, polling and back-fill."""

from .backfill import Backfiller, BackfillResult
from .backfill_queue import BackfillScheduler
from .config import BackfillConfig, FailoverConfig, FeedConfig, PollConfig
from .manager import FeedManager
from .poller import Poller
from .ratelimit import RateLimiter
from .rest import (
    ConclusionPage, ConclusionRow, CredentialError, KisApiError, KisError, KisRestClient,
    KisTransportError, PriceQuote, RateLimitedError, TokenRateLimitedError,
)
from .session import FeedSession, SessionConfig, SessionListener
from .sharding import PER_SESSION, ShardPlan, keys_needed, plan_shards

__all__ = [
    "PER_SESSION", "BackfillConfig", "BackfillScheduler", "Backfiller", "BackfillResult",
    "ConclusionPage", "FailoverConfig", "FeedConfig", "PollConfig",
    "ConclusionRow", "CredentialError", "FeedManager", "FeedSession", "KisApiError", "KisError",
    "KisRestClient", "KisTransportError", "Poller", "PriceQuote", "RateLimitedError",
    "RateLimiter", "SessionConfig", "SessionListener", "ShardPlan", "TokenRateLimitedError",
    "keys_needed", "plan_shards",
]
