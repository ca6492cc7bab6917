"""A session's registrations: which codes it wants, which KIS acknowledged, which were refused,
on which trade TR — and what each control reply means for them.

A mixin of :class:`~kis_desk.feed.session.FeedSession`, kept apart from the connection loop
(connect, read, watchdog, back-off) because it is bookkeeping over KIS's replies (kis-protocol.md
§3.2): ALREADY IN SUBSCRIBE counts as subscribed, OPSP0008 reports the symbol as not live here,
OPSP0007/9993 retry the registration, a reply refusing the venue's whole TR (``refuses_tr``:
"invalid tr_id") is handed to the listener once (the feed falls back to KRX), and after a TR
switch (:meth:`Subscriptions.use_tr`) replies and frames of the TR left behind are ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from ..market.venues import FALLBACK_VENUE, VENUE_TABLE, venue_of_tr
from ..protocol.codec import build_subscription
from ..protocol.fields import TRADE_TR_IDS
from ..protocol.messages import AckKind, ControlReply, refuses_tr
from .rest_replies import CredentialError
from .session_types import CONNECTING, LIVE, AppKeyInUse, InvalidApproval

log = logging.getLogger("kis_desk.feed.session")

FALLBACK_TR = VENUE_TABLE[FALLBACK_VENUE].tr_id
_NO_TR = ("", "(null)")     # error replies whose header names no TR (OPSP8996 sends "(null)")


class Subscriptions:
    """wanted / acked / rejected codes of one session on its trade TR (``self.tr_id``)."""

    # provided by FeedSession
    label: str
    config: Any
    listener: Any
    state: str
    _ws: Any
    _outbox: asyncio.Queue[tuple[str, bool, str]]
    _keys: dict[str, tuple[str, str]]
    _timers: set[asyncio.TimerHandle]
    _approval_refreshed: bool
    _connected_at: float | None

    def _init_subscriptions(self, codes: Iterable[str]) -> None:
        self.wanted: dict[str, None] = dict.fromkeys(codes)   # ordered set
        self.acked: set[str] = set()
        self.rejected: dict[str, str] = {}                    # code -> msg_cd
        self.tr_id: str = self.config.tr_id
        self.venue: str = venue_of_tr(self.tr_id).name if venue_of_tr(self.tr_id) else FALLBACK_VENUE
        self._left_trs: set[str] = set()                      # trade TRs switched away from

    @property
    def pending(self) -> set[str]:
        return set(self.wanted) - self.acked

    def add(self, codes: Iterable[str]) -> None:
        """Want these codes too; subscribes at once when connected."""
        for c in codes:
            if c in self.wanted:
                continue
            self.wanted[c] = None
            self.rejected.pop(c, None)
            if self._ws is not None:
                self._outbox.put_nowait((c, True, self.tr_id))

    def remove(self, codes: Iterable[str]) -> None:
        """Stop wanting these codes; unsubscribes (tr_type "2") when connected."""
        for c in codes:
            if c not in self.wanted:
                continue
            del self.wanted[c]
            self.rejected.pop(c, None)
            if self._ws is not None and c in self.acked:
                self._outbox.put_nowait((c, False, self.tr_id))
            self.acked.discard(c)

    def set_codes(self, codes: Iterable[str]) -> None:
        codes = list(dict.fromkeys(codes))
        self.remove([c for c in self.wanted if c not in set(codes)])
        self.add(codes)

    def use_tr(self, tr_id: str) -> None:
        """Stream ``tr_id`` from now on, on the same connection (no reconnect: KIS may keep a
        dropped app key's slot busy for minutes): what was acknowledged on the old TR is
        unsubscribed there, every wanted code is registered on the new one."""
        old = self.tr_id
        if tr_id == old:
            return
        self.tr_id = tr_id
        v = venue_of_tr(tr_id)
        self.venue = v.name if v is not None else FALLBACK_VENUE
        self._left_trs.add(old)
        self._left_trs.discard(tr_id)
        acked, self.acked = list(self.acked), set()
        if self._ws is None:
            return
        for c in acked:
            self._outbox.put_nowait((c, False, old))
        for c in self.wanted:
            self._outbox.put_nowait((c, True, tr_id))
        if self.wanted:
            self._set_state(CONNECTING, f"subscribing {len(self.wanted)} symbols on {tr_id}")

    def _queue_all(self) -> None:
        """A new connection: every wanted code is registered again."""
        self.acked.clear()
        self._outbox = asyncio.Queue()
        for c in self.wanted:
            self._outbox.put_nowait((c, True, self.tr_id))

    async def _send_loop(self, ws: Any, approval: str) -> None:
        cfg = self.config
        while True:
            code, subscribe, tr_id = await self._outbox.get()
            current = tr_id == self.tr_id
            if subscribe and (not current or code not in self.wanted or code in self.acked):
                continue
            if not subscribe and current and code in self.wanted:
                continue
            await ws.send(build_subscription(approval, tr_id, code, subscribe=subscribe,
                                             custtype=cfg.custtype))
            if cfg.subscribe_spacing > 0:
                await asyncio.sleep(cfg.subscribe_spacing)

    def _on_control(self, ws: Any, reply: ControlReply) -> None:
        kind = reply.kind
        code = reply.tr_key
        if reply.tr_id != self.tr_id and reply.tr_id in TRADE_TR_IDS:
            # about a trade TR this session left (a venue fallback crossed the reply)
            if (kind is AckKind.SUBSCRIBED or kind is AckKind.ALREADY_SUBSCRIBED) and code:
                self._outbox.put_nowait((code, False, reply.tr_id))
            return
        if refuses_tr(reply):
            if self.tr_id != FALLBACK_TR and reply.tr_id in (self.tr_id, *_NO_TR):
                log.info("%s: %s refused (%s %s)", self.label, self.tr_id, reply.msg_cd, reply.msg1)
                self.listener.on_tr_refused(self, self.tr_id, reply)
                return
            if self._left_trs and reply.tr_id in _NO_TR:
                return      # a late refusal of the TR left already
        if kind is AckKind.SUBSCRIBED or kind is AckKind.ALREADY_SUBSCRIBED:
            if reply.key and reply.iv:
                self._keys[reply.tr_id] = (reply.key, reply.iv)
            self._approval_refreshed = False
            if code in self.wanted:
                if code not in self.acked:
                    self.acked.add(code)
                    self.listener.on_subscribed(self, code)
                self._check_live()
            elif code:
                self._outbox.put_nowait((code, False, self.tr_id))   # removed while the ack was in flight
        elif kind is AckKind.UNSUBSCRIBED or kind is AckKind.NOT_SUBSCRIBED:
            self.acked.discard(code)
            self.listener.on_unsubscribed(self, code)
            self._check_live()
        elif kind is AckKind.MAX_SUBSCRIPTIONS:
            self._reject(code, reply, "more registrations than this session allows (OPSP0008)")
        elif kind is AckKind.APPKEY_IN_USE:
            raise AppKeyInUse()
        elif kind is AckKind.INVALID_APPROVAL:
            raise InvalidApproval()
        elif kind is AckKind.INVALID_APPKEY:
            raise CredentialError(f"{self.label}: app key/secret rejected by KIS ({reply.msg_cd})",
                                  msg_cd=reply.msg_cd)
        elif kind is AckKind.INTERNAL_ERROR and code in self.wanted:
            log.warning("%s: %s for %s; retrying the registration", self.label, reply.msg_cd, code)
            loop = asyncio.get_running_loop()
            handle = loop.call_later(self.config.internal_error_retry,
                                     self._outbox.put_nowait, (code, True, self.tr_id))
            self._timers.add(handle)
        elif code in self.wanted:
            self._reject(code, reply, f"registration refused ({reply.msg_cd} {reply.msg1})")
        else:
            self._protocol_error(f"unexpected control reply {reply.msg_cd} {reply.msg1}"[:200], "")

    def _reject(self, code: str, reply: ControlReply, why: str) -> None:
        if code not in self.wanted:
            return
        del self.wanted[code]
        self.acked.discard(code)
        self.rejected[code] = reply.msg_cd
        log.warning("%s: %s not live on this session: %s", self.label, code, why)
        self.listener.on_rejected(self, code, reply)
        self._check_live()

    def _check_live(self) -> None:
        """Announce LIVE (with the acknowledged symbols) whenever nothing is pending any more."""
        if self._ws is None or self.pending:
            return
        if self.state != LIVE and self._connected_at is not None:
            self.last_resubscribe_seconds = time.monotonic() - self._connected_at
        self._set_state(LIVE, f"{len(self.acked)} symbols live")



__all__ = ["FALLBACK_TR", "Subscriptions"]
