"""Decode and build KIS real-time messages (kis-protocol.md §2–§6, §13).

Pure functions: text or bytes in, typed values out. ``decode_message`` never raises on any
input; malformed input yields a :class:`ProtocolError`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .fields import H0STCNT0_WIDTH, KNOWN_MIN_WIDTHS, TRADE_TR_IDS
from .messages import (
    MSG_CODE_KINDS,
    AckKind,
    ControlReply,
    DataFrame,
    Message,
    PingPong,
    ProtocolError,
)
from .records import GenericRecord, TradeRecord, kst_timestamp

PINGPONG = "PINGPONG"
SUBSCRIBE = "1"
UNSUBSCRIBE = "2"
_EXCERPT = 120

#: (key, iv) per tr_id, from that TR's SUBSCRIBE SUCCESS ack.
KeyTable = Mapping[str, tuple[str, str]]


def _excerpt(text: str) -> str:
    return text[:_EXCERPT] + ("…" if len(text) > _EXCERPT else "")


def to_text(raw: bytes | str) -> str:
    """Lenient UTF-8: KIS sometimes sends text frames that are not valid UTF-8 (§5.3)."""
    if isinstance(raw, str):
        return raw
    return raw.decode("utf-8", errors="replace")


_tuple_new = tuple.__new__

#: "0|<tr_id>|001|" → tr_id: the head of a plain single-record trade frame (fast path).
_SINGLE_TRADE_HEADS: dict[str, str] = {f"0|{t}|001|": t for t in TRADE_TR_IDS}
_HEAD_LEN = 15
assert all(len(h) == _HEAD_LEN for h in _SINGLE_TRADE_HEADS)


def decode_message(raw: bytes | str, keys: KeyTable | None = None) -> Message:
    """Classify and decode one WebSocket message. Never raises."""
    try:
        text = raw if raw.__class__ is str else to_text(raw)
        # Fast path: the overwhelmingly common plain single-record trade frame. One split of the
        # whole text (the head rides on the first field and is cut off it) instead of two.
        tr_id = _SINGLE_TRADE_HEADS.get(text[:_HEAD_LEN])
        if tr_id is not None:
            items = text.split("^")
            if len(items) >= H0STCNT0_WIDTH:
                items[0] = items[0][_HEAD_LEN:]
                fields = tuple(items)
                if (
                    # validation inlined for the common case; anything unusual takes the full check
                    (fields[1] in _VALID_TIMES and fields[33] in _VALID_DATES and len(fields[0]) == 6
                     and fields[0].isdecimal() and fields[2].isdecimal() and fields[12].isdecimal()
                     and fields[13].isdecimal())
                    or _trade_record_error(fields) is None
                ):
                    return _tuple_new(DataFrame, (
                        tr_id, 1, (_tuple_new(TradeRecord, (tr_id, fields)),), False, ()))
        if not text:
            return ProtocolError("empty message")
        first = text[0]
        if first == "0" or first == "1":
            return decode_data_frame(text, keys)
        if first == "{":
            return decode_control(text)
        return ProtocolError("neither a data frame nor JSON", _excerpt(text))
    except Exception as exc:  # pragma: no cover - defensive: the decoders handle their input
        return ProtocolError(f"decoder failure: {type(exc).__name__}: {exc}")


_VALID_TIMES: set[str] = set()
_VALID_DATES: set[str] = set()


def _valid_time(t: str) -> bool:
    if t in _VALID_TIMES:
        return True
    ok = len(t) == 6 and t.isdecimal() and t[0:2] <= "23" and t[2:4] <= "59" and t[4:6] <= "59"
    if ok and len(_VALID_TIMES) < 100_000:
        _VALID_TIMES.add(t)
    return ok


def _valid_date(d: str) -> bool:
    if d in _VALID_DATES:
        return True
    ok = len(d) == 8 and d.isdecimal()
    if ok:
        try:
            kst_timestamp(d, "000000")
        except ValueError:
            ok = False
    if ok and len(_VALID_DATES) < 10_000:
        _VALID_DATES.add(d)
    return ok


def _trade_record_error(fields: tuple[str, ...]) -> str | None:
    """Validate the fields every consumer relies on; None when usable (cached checks: hot path)."""
    code = fields[0]
    code_ok = len(code) == 6 and code.isdecimal() or len(code) == 7 and code[0] == "Q" and code[1:].isdecimal()
    if (code_ok and fields[2].isdecimal() and fields[12].isdecimal() and fields[13].isdecimal()
            and _valid_time(fields[1]) and _valid_date(fields[33])):
        return None
    if not code_ok:
        return f"bad stock code {code[:12]!r}"
    if not _valid_time(fields[1]):
        return f"bad trade time {fields[1][:12]!r}"
    if not _valid_date(fields[33]):
        return f"bad business date {fields[33][:12]!r}"
    if not fields[2].isdecimal():
        return f"bad price {fields[2][:12]!r}"
    if not fields[12].isdecimal():
        return f"bad trade volume {fields[12][:12]!r}"
    return f"bad cumulative volume {fields[13][:12]!r}"


def decode_data_frame(text: str, keys: KeyTable | None = None) -> DataFrame | ProtocolError:
    """Decode ``<enc>|<tr_id>|<count>|<payload>``; honours the record count."""
    parts = text.split("|", 3)
    if len(parts) != 4:
        return ProtocolError("data frame with fewer than four '|' parts", _excerpt(text))
    enc, tr_id, count_text, payload = parts
    if enc not in ("0", "1"):
        return ProtocolError(f"bad encryption flag {enc[:8]!r}", _excerpt(text))
    if not count_text.isdecimal() or int(count_text) == 0:
        return ProtocolError(f"bad record count {count_text[:8]!r}", _excerpt(text))
    count = int(count_text)
    encrypted = enc == "1"
    if encrypted:
        pair = keys.get(tr_id) if keys else None
        if pair is None:
            return ProtocolError(f"encrypted {tr_id[:16]} frame but no key from its ack", _excerpt(text))
        try:
            payload = decrypt_payload(payload, pair[0], pair[1])
        except ValueError as exc:
            return ProtocolError(f"undecodable encrypted {tr_id[:16]} frame: {exc}", _excerpt(text))
    # keep empty fields: '…^0^^62700' has an empty MRKT_TRTM_CLS_CODE
    items = tuple(payload.split("^"))
    total = len(items)
    if total % count:
        return ProtocolError(
            f"{tr_id[:16]}: {total} fields do not divide into {count} records", _excerpt(text)
        )
    width = total // count
    minimum = KNOWN_MIN_WIDTHS.get(tr_id, 1)
    if width < minimum:
        return ProtocolError(
            f"{tr_id[:16]}: {width} fields per record, at least {minimum} expected", _excerpt(text)
        )
    if tr_id in TRADE_TR_IDS:
        records: list[TradeRecord] = []
        errors: list[str] = []
        for i in range(count):
            fields = items if count == 1 else items[i * width:(i + 1) * width]
            problem = _trade_record_error(fields)
            if problem is None:
                records.append(_tuple_new(TradeRecord, (tr_id, fields)))
            else:
                errors.append(f"record {i + 1}/{count}: {problem}")
        return _tuple_new(DataFrame, (tr_id, count, tuple(records), encrypted, tuple(errors)))
    generic = tuple(GenericRecord(tr_id, items[i * width:(i + 1) * width]) for i in range(count))
    return DataFrame(tr_id, count, generic, encrypted)


def decode_control(text: str) -> ControlReply | PingPong | ProtocolError:
    """Decode a JSON control message: PINGPONG, subscribe/unsubscribe acks and OPSP errors."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return ProtocolError(f"invalid JSON: {exc}", _excerpt(text))
    if not isinstance(obj, dict):
        return ProtocolError("JSON message is not an object", _excerpt(text))
    header = obj.get("header")
    body = obj.get("body")
    if header is not None and not isinstance(header, dict):
        return ProtocolError("JSON header is not an object", _excerpt(text))
    header = header or {}
    tr_id = header.get("tr_id")
    if tr_id == PINGPONG and body is None:
        dt = header.get("datetime")
        return PingPong(text, dt if isinstance(dt, str) else None)
    if not isinstance(body, dict):
        return ProtocolError("JSON message without a body", _excerpt(text))
    msg_cd = body.get("msg_cd")
    if not isinstance(msg_cd, str):
        return ProtocolError("JSON body without msg_cd", _excerpt(text))
    rt_cd = str(body.get("rt_cd", ""))
    msg1 = str(body.get("msg1", ""))
    kind = MSG_CODE_KINDS.get(msg_cd)
    if kind is None:
        kind = AckKind.UNKNOWN
        upper = msg1.upper()
        if upper.startswith("UNSUB") and rt_cd == "0":
            kind = AckKind.UNSUBSCRIBED
        elif upper.startswith("SUBSCRIBE SUCCESS"):
            kind = AckKind.SUBSCRIBED
        elif upper.startswith("ALREADY IN SUBSCRIBE"):
            kind = AckKind.ALREADY_SUBSCRIBED
    output = body.get("output")
    iv = key = None
    if isinstance(output, dict):
        iv = output.get("iv") if isinstance(output.get("iv"), str) else None
        key = output.get("key") if isinstance(output.get("key"), str) else None
    return ControlReply(
        kind=kind,
        tr_id=str(tr_id) if tr_id is not None else "",
        tr_key=str(header.get("tr_key", "")),
        rt_cd=rt_cd,
        msg_cd=msg_cd,
        msg1=msg1,
        encrypt=header.get("encrypt") == "Y",
        iv=iv,
        key=key,
    )


# -- encryption (AES-256-CBC, PKCS#7, base64; §5.2) ------------------------------------------

def decrypt_payload(b64_text: str, key: str, iv: str) -> str:
    """Decrypt an encrypted frame payload; raises ValueError when it cannot."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    try:
        data = base64.b64decode(b64_text, validate=True)
        key_bytes, iv_bytes = key.encode(), iv.encode()
        if len(key_bytes) != 32 or len(iv_bytes) != 16:
            raise ValueError("key must be 32 bytes and iv 16 bytes")
        decryptor = Cipher(algorithms.AES(key_bytes), modes.CBC(iv_bytes)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise
    except Exception as exc:  # binascii.Error is a ValueError; anything else is still bad input
        raise ValueError(str(exc)) from exc
    return plain.decode("utf-8", errors="replace")


def encrypt_payload(plain: str, key: str, iv: str) -> str:
    """Inverse of :func:`decrypt_payload` (the simulator's encrypted TRs, tests)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


# -- client → server builders (§1.2, §1.3, §2) -------------------------------------------------

def build_subscription(approval_key: str, tr_id: str, tr_key: str, *, subscribe: bool = True,
                       custtype: str = "P") -> str:
    """Register (tr_type "1") or unregister (tr_type "2") one (tr_id, tr_key)."""
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": custtype,
                "tr_type": SUBSCRIBE if subscribe else UNSUBSCRIBE,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        },
        separators=(",", ":"),
    )


def build_approval_request(app_key: str, app_secret: str) -> dict[str, str]:
    """Body of ``POST /oauth2/Approval`` (note: the secret goes in ``secretkey``)."""
    return {"grant_type": "client_credentials", "appkey": app_key, "secretkey": app_secret}


def build_token_request(app_key: str, app_secret: str) -> dict[str, str]:
    """Body of ``POST /oauth2/tokenP``."""
    return {"grant_type": "client_credentials", "appkey": app_key, "appsecret": app_secret}


# -- server → client builders (simulator, tests) ----------------------------------------------

def build_data_frame(tr_id: str, records: Sequence[Sequence[str]], *,
                     encrypt_with: tuple[str, str] | None = None) -> str:
    """``0|TR|NNN|f^f^…`` with every record's fields concatenated by ``^``."""
    payload = "^".join("^".join(r) for r in records)
    if encrypt_with is not None:
        return f"1|{tr_id}|{len(records):03d}|{encrypt_payload(payload, *encrypt_with)}"
    return f"0|{tr_id}|{len(records):03d}|{payload}"


def build_control_reply(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str, *,
                        encrypt: str | None = "N", iv: str | None = None,
                        key: str | None = None) -> str:
    """A JSON control reply shaped like the real ones in §11.4."""
    header: dict[str, Any] = {"tr_id": tr_id, "tr_key": tr_key}
    if encrypt is not None:
        header["encrypt"] = encrypt
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if iv is not None and key is not None:
        body["output"] = {"iv": iv, "key": key}
    return json.dumps({"header": header, "body": body}, separators=(",", ":"), ensure_ascii=False)


def build_pingpong(datetime_text: str) -> str:
    """``{"header":{"tr_id":"PINGPONG","datetime":"YYYYMMDDHHMMSS"}}``."""
    return json.dumps({"header": {"tr_id": PINGPONG, "datetime": datetime_text}},
                      separators=(",", ":"))


__all__ = [
    "H0STCNT0_WIDTH", "KeyTable", "PINGPONG", "build_approval_request",
    "build_control_reply", "build_data_frame", "build_pingpong", "build_subscription",
    "build_token_request", "decode_control", "decode_data_frame", "decode_message",
    "decrypt_payload", "encrypt_payload", "to_text",
]
