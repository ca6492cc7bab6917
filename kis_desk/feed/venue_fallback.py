"""When the server does not offer the venue's trades: say so plainly and stream KRX instead.

KIS documents the NXT and integrated TRs (``H0NXCNT0`` / ``H0UNCNT0``, REST market codes NX /
UN) as "모의투자 미지원" (not offered on paper trading, kis-protocol.md §1.1, §6.1) without saying
how a mock server answers them. Both readings are handled:

* the subscription is refused ("invalid tr_id", OPSP8991, or another reply that refuses the TR
  as such: ``protocol.messages.refuses_tr``) — a session hands it over (``on_tr_refused``);
* the subscription is accepted but nothing ever streams, while the REST market code is refused —
  one ``inquire-price`` with the venue's market code at start (``_probe_venue``) finds it.

Either way, once per run: one WARNING line and one ``ErrorEvent`` (code ``feed.venue_fallback``,
translated by the UI), then every session moves to ``H0STCNT0`` on its open connection, polling
and back-fill use ``J``, and every symbol resumes on the KRX chain — from its last stored KRX trade
of the day, else from the time the feed started — so the interval is back-filled, not lost.

A mixin of :class:`~kis_desk.feed.manager.FeedManager` (it works on its sessions, symbols and
back-fill scheduler).
"""

from __future__ import annotations

import logging
from typing import Any

from ..market.venues import FALLBACK_VENUE, Venue, venue as venue_named
from ..protocol.messages import ControlReply
from .rest_replies import KisError, market_code_refused

log = logging.getLogger("kis_desk.feed.manager")


class VenueFallback:
    """``on_tr_refused`` / ``_probe_venue`` → :meth:`fall_back` (see the module docstring)."""

    # provided by FeedManager
    venue: Venue
    fallback_from: str | None
    sessions: list[Any]
    rest: list[Any]
    symbols: Any
    scheduler: Any
    backfiller: Any
    problems: Any
    last_seen: Any
    started_hhmmss: str

    def on_tr_refused(self, session: Any, tr_id: str, reply: ControlReply) -> None:
        """A session's registration on the venue's TR was refused as a TR (SessionListener)."""
        if tr_id == self.venue.tr_id:
            self.fall_back(f"{session.label}: {reply.msg_cd} {reply.msg1}".strip(), reply.msg_cd)

    async def _probe_venue(self, code: str) -> None:
        """One quotation with the venue's REST market code: a server that accepts the TR but
        refuses the market code does not offer the venue either."""
        market = self.venue.market_code
        try:
            await self.rest[0].inquire_price(code, market)
        except KisError as exc:
            if market_code_refused(exc) and self.venue.market_code == market:
                self.fall_back(f"REST market code {market} refused: {exc}", exc.msg_cd)
        except Exception as exc:       # never fatal: the sessions decide then
            log.debug("venue probe failed: %s", exc)

    def fall_back(self, why: str, msg_cd: str = "") -> None:
        """Stream KRX for the rest of this run (idempotent)."""
        if self.venue.is_fallback:
            return
        left, krx = self.venue, venue_named(FALLBACK_VENUE)
        self.venue = krx
        self.fallback_from = left.name
        self.backfiller.venue = krx
        self.problems.report(
            "feed", f"{left.name} trades ({left.tr_id}, REST {left.market_code}) are not offered "
            f"by this server ({why}); falling back to {krx.name} ({krx.tr_id}, REST "
            f"{krx.market_code}) for this run", code="feed.venue_fallback", venue=left.name,
            tr_id=left.tr_id, msg_cd=msg_cd)
        for sym in self.symbols:
            code = sym.code
            self.scheduler.forget(code)          # jobs of the other chain
            sym.last_cum = sym.live_from = sym.backfill_since = None
            sym.resync = False
            if self.last_seen is not None:
                self._seed_last_seen(code)        # the last stored KRX trade of today, if any
            if sym.last_cum is None and sym.backfill_since is None:
                sym.backfill_since = self.started_hhmmss
            # polled symbols too: back-fill the interval now, the acks add the rest
            self.scheduler.request(code, sym.last_cum,
                                   None if sym.last_cum is not None else sym.backfill_since)
        for s in self.sessions:
            s.use_tr(krx.tr_id)



__all__ = ["VenueFallback"]
