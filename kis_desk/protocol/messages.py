"""Typed results of decoding one WebSocket message. Every input maps to exactly one of these."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from .records import GenericRecord, TradeRecord


class AckKind(enum.Enum):
    """What a JSON control reply means for the client (kis-protocol.md §3.2, §13.4)."""

    SUBSCRIBED = "subscribed"                  # OPSP0000
    UNSUBSCRIBED = "unsubscribed"              # OPSP0001
    ALREADY_SUBSCRIBED = "already_subscribed"  # OPSP0002: counts as subscribed
    NOT_SUBSCRIBED = "not_subscribed"          # OPSP0003: counts as unsubscribed
    INTERNAL_ERROR = "internal_error"          # OPSP0007, OPSP9993: retry later
    MAX_SUBSCRIPTIONS = "max_subscriptions"    # OPSP0008: over 41, do not retry on this session
    FEED_UNAVAILABLE = "feed_unavailable"      # OPSP0009 (mci send failed)
    INVALID_APPKEY = "invalid_appkey"          # OPSP0010, OPSP9994, OPSP9996
    INVALID_APPROVAL = "invalid_approval"      # OPSP0011: fetch a new approval key once
    APPKEY_IN_USE = "appkey_in_use"            # OPSP8996: another session holds the key
    INVALID_REQUEST = "invalid_request"        # OPSP899x / 999x JSON and field errors
    UNKNOWN = "unknown"


MSG_CODE_KINDS: dict[str, AckKind] = {
    "OPSP0000": AckKind.SUBSCRIBED,
    "OPSP0001": AckKind.UNSUBSCRIBED,
    "OPSP0002": AckKind.ALREADY_SUBSCRIBED,
    "OPSP0003": AckKind.NOT_SUBSCRIBED,
    "OPSP0007": AckKind.INTERNAL_ERROR,
    "OPSP0008": AckKind.MAX_SUBSCRIPTIONS,
    "OPSP0009": AckKind.FEED_UNAVAILABLE,
    "OPSP0010": AckKind.INVALID_APPKEY,
    "OPSP0011": AckKind.INVALID_APPROVAL,
    "OPSP8991": AckKind.INVALID_REQUEST,
    "OPSP8992": AckKind.INVALID_REQUEST,
    "OPSP8993": AckKind.INVALID_REQUEST,
    "OPSP8996": AckKind.APPKEY_IN_USE,
    "OPSP8997": AckKind.INVALID_REQUEST,
    "OPSP8998": AckKind.INVALID_REQUEST,
    "OPSP9990": AckKind.INVALID_REQUEST,
    "OPSP9991": AckKind.INVALID_REQUEST,
    "OPSP9992": AckKind.INVALID_REQUEST,
    "OPSP9993": AckKind.INTERNAL_ERROR,
    "OPSP9994": AckKind.INVALID_APPKEY,
    "OPSP9995": AckKind.INTERNAL_ERROR,
    "OPSP9996": AckKind.INVALID_APPKEY,
    "OPSP9997": AckKind.INVALID_REQUEST,
    "OPSP9998": AckKind.INVALID_REQUEST,
    "OPSP9999": AckKind.INVALID_REQUEST,
}


@dataclass(frozen=True, slots=True)
class ControlReply:
    """A JSON reply to a subscribe/unsubscribe request, or an unsolicited error."""

    kind: AckKind
    tr_id: str
    tr_key: str
    rt_cd: str
    msg_cd: str
    msg1: str
    encrypt: bool = False
    iv: str | None = None
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind in (AckKind.SUBSCRIBED, AckKind.UNSUBSCRIBED, AckKind.ALREADY_SUBSCRIBED,
                             AckKind.NOT_SUBSCRIBED)


@dataclass(frozen=True, slots=True)
class PingPong:
    """Server keep-alive. Answer by sending ``raw`` back unchanged, at once."""

    raw: str
    datetime_text: str | None = None


class DataFrame(NamedTuple):
    """A ``<enc>|<tr_id>|<count>|<payload>`` frame.

    ``records`` holds every record that parsed; ``errors`` names the ones that did not (a bad
    record does not cost its neighbours). ``declared_count`` is the frame's own count.
    A NamedTuple rather than a dataclass: it is built once per frame on the hot path.
    """

    tr_id: str
    declared_count: int
    records: tuple[TradeRecord, ...] | tuple[GenericRecord, ...]
    encrypted: bool = False
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """Input that could not be decoded. Never raised: returned, logged and counted."""

    reason: str
    excerpt: str = ""


Message = ControlReply | PingPong | DataFrame | ProtocolError


#: Replies that say a whole real-time TR is not offered to this client, not that one symbol is
#: refused: OPSP8991 "SUBSCRIBE ERROR : invalid tr_id" (what the simulator's mock mode sends for
#: "모의투자 미지원" TRs; KIS's own answer there is not documented, kis-protocol.md §6.1) and
#: OPSP0009 "mci send failed" (a feed the account has no access to, §3.2).
TR_REFUSED_CODES = frozenset({"OPSP8991", "OPSP0009"})


def refuses_tr(reply: ControlReply) -> bool:
    """True when ``reply`` refuses its TR as such (see :data:`TR_REFUSED_CODES`); a message
    naming ``tr_id`` counts too, whatever its code (the table is not verified)."""
    if reply.ok:
        return False
    text = reply.msg1.lower()
    return reply.msg_cd in TR_REFUSED_CODES or ("tr_id" in text and "tr_key" not in text)
