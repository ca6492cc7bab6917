"""What KIS's REST side answers: its error classes and the quotation values, parsed.

Kept apart from the client (``rest.py``: HTTP, approval key, token, rate budget) because these
are pure functions of KIS's JSON: the feed's back-fill and polling, the tests and the
simulator's checks read them without a client. Every numeric value is parsed from KIS's strings
(KIS sends numbers as decimal strings, kis-protocol.md §8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CODE_RATE_LIMIT = "EGW00201"        # 초당 거래건수를 초과하였습니다 (HTTP 500)
CODE_TOKEN_RATE = "EGW00133"        # 접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회) (HTTP 403)
TOKEN_INVALID_CODES = frozenset({"EGW00121", "EGW00123"})  # invalid / expired token → re-issue once
#: Codes KIS uses for a wrong app key / secret (EGW00102–EGW00105 family, and the OAuth ones).
CREDENTIAL_CODES = frozenset({"EGW00102", "EGW00103", "EGW00104", "EGW00105", "EGW00106",
                              "EGW00002", "EGW00003"})


# -- errors --------------------------------------------------------------------------------------

class KisError(Exception):
    """A KIS call failed. ``msg_cd`` is KIS's code when there is one."""

    def __init__(self, message: str, *, msg_cd: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.msg_cd = msg_cd
        self.status = status


class CredentialError(KisError):
    """KIS rejected the app key or secret. Retrying soon will not help."""


class RateLimitedError(KisError):
    """EGW00201 persisted through every retry."""


class TokenRateLimitedError(KisError):
    """EGW00133: an access token was issued less than a minute ago (by us or another process)."""


class KisTransportError(KisError):
    """Network failure, timeout, or a reply that is not KIS-shaped JSON."""


class KisApiError(KisError):
    """Any other ``rt_cd != "0"`` reply."""


# -- parsed values -------------------------------------------------------------------------------

def _int(value: Any, default: int | None = None) -> int | None:
    if value is None:
        return default
    text = str(value).strip().replace(",", "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return default


def _float(value: Any) -> float | None:
    if value is None:
        return None
    text = str(value).strip().replace(",", "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _req_int(row: Mapping[str, Any], key: str) -> int:
    v = _int(row.get(key))
    if v is None:
        raise KisApiError(f"KIS reply field {key!r} is missing or not a number: {str(row.get(key))[:20]!r}")
    return v


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """``inquire-price`` output (the fields the feed uses)."""

    code: str
    price: int
    change: int | None
    change_rate: float | None
    sign: str
    cum_volume: int
    open: int | None = None
    high: int | None = None
    low: int | None = None
    halted: bool = False        # temp_stop_yn Y (거래정지)
    vi: bool = False            # vi_cls_code Y (a VI auction is running)


@dataclass(frozen=True, slots=True)
class ConclusionRow:
    """One trade row of ``inquire-time-itemconclusion`` output2 (or ``inquire-ccnl`` output)."""

    hhmmss: str
    price: int
    volume: int
    cum_volume: int | None      # inquire-ccnl rows carry no acml_vol
    change: int | None
    change_rate: float | None
    sign: str
    strength: float | None


@dataclass(frozen=True, slots=True)
class ConclusionPage:
    """One call of ``inquire-time-itemconclusion``: summary + rows, newest first as KIS sends."""

    code: str
    hour: str
    price: int | None
    cum_volume: int | None
    rows: tuple[ConclusionRow, ...]


def _valid_hhmmss(t: str) -> bool:
    return len(t) == 6 and t.isdigit() and t[:2] <= "23" and t[2:4] <= "59" and t[4:] <= "59"


def parse_price(code: str, body: Mapping[str, Any]) -> PriceQuote:
    out = body.get("output")
    if not isinstance(out, Mapping):
        raise KisApiError("inquire-price reply without an 'output' object")
    return PriceQuote(
        code=str(out.get("stck_shrn_iscd") or code),
        price=_req_int(out, "stck_prpr"),
        change=_int(out.get("prdy_vrss")),
        change_rate=_float(out.get("prdy_ctrt")),
        sign=str(out.get("prdy_vrss_sign", "")),
        cum_volume=_req_int(out, "acml_vol"),
        open=_int(out.get("stck_oprc")),
        high=_int(out.get("stck_hgpr")),
        low=_int(out.get("stck_lwpr")),
        halted=str(out.get("temp_stop_yn", "")).strip() == "Y",
        vi=str(out.get("vi_cls_code", "")).strip() == "Y",
    )


def parse_conclusion_row(row: Mapping[str, Any], *, volume_key: str = "cnqn") -> ConclusionRow:
    hhmmss = str(row.get("stck_cntg_hour", "")).strip()
    if not _valid_hhmmss(hhmmss):
        raise KisApiError(f"trade row with a bad time {hhmmss[:12]!r}")
    price = _int(row.get("stck_prpr"))
    if price is None:  # the doc's name; the real server says stck_prpr (CLUEFIN erratum)
        price = _int(row.get("stck_pbpr"))
    if price is None:
        raise KisApiError("trade row without a price (stck_prpr)")
    volume = _int(row.get(volume_key))
    if volume is None:
        volume = _int(row.get("cntg_vol" if volume_key == "cnqn" else "cnqn"))
    if volume is None:
        raise KisApiError(f"trade row without a volume ({volume_key})")
    return ConclusionRow(
        hhmmss=hhmmss, price=price, volume=volume, cum_volume=_int(row.get("acml_vol")),
        change=_int(row.get("prdy_vrss")), change_rate=_float(row.get("prdy_ctrt")),
        sign=str(row.get("prdy_vrss_sign", "")), strength=_float(row.get("tday_rltv")),
    )


def parse_time_conclusion(code: str, hour: str, body: Mapping[str, Any]) -> ConclusionPage:
    out1 = body.get("output1") if isinstance(body.get("output1"), Mapping) else {}
    out2 = body.get("output2")
    if out2 is None:
        out2 = []
    if isinstance(out2, Mapping):  # the doc types it as an object; the server sends an array
        out2 = [out2]
    if not isinstance(out2, list):
        raise KisApiError("inquire-time-itemconclusion reply: output2 is not a list")
    rows = []
    for r in out2:
        if not isinstance(r, Mapping) or not r.get("stck_cntg_hour"):
            continue  # KIS pads short pages with empty rows
        row = parse_conclusion_row(r)
        if row.cum_volume is None:
            raise KisApiError("inquire-time-itemconclusion row without acml_vol")
        rows.append(row)
    return ConclusionPage(code, hour, _int(out1.get("stck_prpr")), _int(out1.get("acml_vol")),
                          tuple(rows))


def parse_ccnl(body: Mapping[str, Any]) -> list[ConclusionRow]:
    out = body.get("output")
    if not isinstance(out, list):
        raise KisApiError("inquire-ccnl reply: output is not a list")
    return [parse_conclusion_row(r, volume_key="cntg_vol") for r in out
            if isinstance(r, Mapping) and r.get("stck_cntg_hour")]


def describe_reply(body: Any) -> tuple[str, str]:
    """(code, message) from either KIS error shape."""
    if isinstance(body, Mapping):
        code = str(body.get("msg_cd") or body.get("error_code") or "")
        msg = str(body.get("msg1") or body.get("error_description") or "")
        return code, msg.strip()
    return "", ""


#: The REST market code (FID_COND_MRKT_DIV_CODE) a server refuses: the simulator's mock mode
#: answers OPSQ2001 "ERROR : INPUT INVALID_CHECK_MRKT_DIV_CODE" for NX / UN (KIS's own mock answer is
#: not documented); the text is what is checked (OPSQ2001 also names a bad stock code).
MARKET_CODE_REFUSED_TEXT = "MRKT_DIV"


def market_code_refused(exc: BaseException) -> bool:
    """True when ``exc`` (a failed quotation call) refuses the REST market code itself."""
    return isinstance(exc, KisApiError) and MARKET_CODE_REFUSED_TEXT in str(exc).upper()


def hhmmss_minus(hhmmss: str, seconds: int) -> str | None:
    """``HHMMSS`` minus ``seconds``; None before midnight."""
    total = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:]) - seconds
    if total < 0:
        return None
    return f"{total // 3600:02d}{total % 3600 // 60:02d}{total % 60:02d}"


__all__ = [
    "CODE_RATE_LIMIT", "CODE_TOKEN_RATE", "CREDENTIAL_CODES", "ConclusionPage", "ConclusionRow",
    "CredentialError", "KisApiError", "KisError", "KisTransportError", "PriceQuote",
    "RateLimitedError", "TOKEN_INVALID_CODES", "TokenRateLimitedError", "describe_reply",
    "hhmmss_minus", "market_code_refused", "parse_ccnl", "parse_conclusion_row", "parse_price",
    "parse_time_conclusion",
]
