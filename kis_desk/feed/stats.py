"""The feed's one stats value (``FeedStats``), assembled from its parts' counters."""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..core.events import FeedStats, SymbolFeedState
from .backfill_queue import BackfillScheduler
from .failover import Failover
from .poller import Poller
from .rest import KisRestClient
from .session import FeedSession
from .symbols import SymbolTable

_SESSION_KEYS = ("received", "frames", "protocol_errors", "reconnects", "pingpongs", "stalls",
                 "oversized_closes", "in_use_refusals", "invalid_approvals", "credential_failures")
_NO_SOURCE = (SymbolFeedState.DARK, SymbolFeedState.WAITING)


def feed_stats(sessions: Sequence[FeedSession], pollers: Sequence[Poller],
               rests: Sequence[KisRestClient], bf: BackfillScheduler, failover: Failover,
               symbols: SymbolTable, *, polled: int, rejections: int,
               gaps_detected_live: int) -> FeedStats:
    s = dict.fromkeys(_SESSION_KEYS, 0)
    for sess in sessions:
        st = sess.stats()
        for k in s:
            s[k] += int(st.get(k) or 0)
    resub = [x.last_resubscribe_seconds for x in sessions if x.last_resubscribe_seconds is not None]
    detect = [x.stall_detect_seconds for x in sessions if x.stall_detect_seconds is not None]
    now = time.monotonic()
    return FeedStats(
        **s, backfilled=bf.backfilled, backfill_runs=bf.runs, backfill_failures=bf.failures,
        polled=polled, polls=sum(p.polls for p in pollers),
        poll_errors=sum(p.errors for p in pollers),
        gaps_unrecovered=bf.gaps_unrecovered + sum(p.gaps for p in pollers),
        gap_volume_unrecovered=bf.gap_volume_unrecovered + sum(p.gap_volume for p in pollers),
        gaps_detected_live=gaps_detected_live, gaps_pending=bf.pending(),
        rejections=rejections, rest_calls=sum(r.calls for r in rests),
        rest_rate_limited=sum(r.rate_limited for r in rests),
        failovers=failover.failovers,
        keys_down=tuple(failover.keys[i].label for i in sorted(failover.down())),
        symbols_dark=sum(1 for sym in symbols if sym.state in _NO_SOURCE),
        worst_gap_s=round(max([0.0, *(max(sym.worst_dark, sym.dark_for(now)) for sym in symbols)]), 3),
        stall_detect_s=max(detect) if detect else None,
        last_resubscribe_seconds=max(resub) if resub else None)


__all__ = ["feed_stats"]
