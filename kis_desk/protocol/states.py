"""Market-state fields of KIS trade and expected-price records, decoded (kis-protocol.md §6, §10).

Positions 34/35/43/44/45 of the H0STCNT0 layout (shared by H0UNCNT0/H0NXCNT0, and for 34–44 by
the expected-price TRs H0STANC0/H0NXANC0/H0UNANC0, whose first 45 fields are H0STCNT0's):

- ``NEW_MKOP_CLS_CODE`` (34), two characters [V DOC]: 1st = session (1 장개시전, 2 장중,
  3 장종료후, 4 시간외단일가, 7 일반 Buy-in, 8 당일 Buy-in), 2nd = trade kind (0 보통, 1 종가,
  2 대량, 3 바스켓, 7 정리매매, 8 Buy-in). Only ``20`` has been seen in real frames.
- ``TRHT_YN`` (35): Y 거래정지 / N 정상.
- ``HOUR_CLS_CODE`` (43) [V DOC]: 0 장중, A 장후예상, B 장전예상, C 9시이후 예상가·VI발동,
  D 시간외 단일가 예상. Only ``0`` has been seen in real trade frames.
- ``MRKT_TRTM_CLS_CODE`` (44, 임의종료구분코드): empty in every real frame; its codes are not
  documented. Non-empty is read as "an auction with a random end is running" [I].
- ``VI_STND_PRC`` (45, 정적VI발동기준가): the static-VI reference price (the real 2023-03-24 frame
  carries the day's open there).

Two readings are possible and both are handled [I]: (a) trade records say VI/auction through
HOUR_CLS_CODE / NEW_MKOP_CLS_CODE (the simulator writes them so); (b) the real server always
sends ``0``/``20`` in trade records and VI is visible only in the expected-price TR or the
VI-status REST endpoint (:func:`vi_status_rows`). :func:`market_state` reads whichever record it
is given; a caller on reading (b) combines it with :func:`vi_status_rows`.

Pure functions on the raw field tuple; nothing here runs on the decode hot path.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

IDX_MKOP, IDX_HALT, IDX_HOUR_CLS, IDX_TRTM, IDX_VI_STND = 34, 35, 43, 44, 45

#: the static VI band in percent (KRX: ±10 % from the static reference, all stocks) [C]
STATIC_VI_BAND_PCT = 10.0


class HourClass(enum.Enum):
    """HOUR_CLS_CODE (시간 구분 코드)."""

    REGULAR = "0"                  # 장중
    AFTER_CLOSE_EXPECTED = "A"     # 장후예상 (closing auction)
    PRE_OPEN_EXPECTED = "B"        # 장전예상 (opening auction)
    VI = "C"                       # 9시 이후의 예상가, VI 발동
    AFTER_HOURS_EXPECTED = "D"     # 시간외 단일가 예상
    UNKNOWN = "?"                  # anything else (kept raw by the record)

    @classmethod
    def decode(cls, code: str) -> HourClass:
        try:
            return cls(code)
        except ValueError:
            return cls.UNKNOWN


class SessionClass(enum.Enum):
    """First character of NEW_MKOP_CLS_CODE."""

    PRE_OPEN = "1"          # 장개시전
    REGULAR = "2"           # 장중
    AFTER_CLOSE = "3"       # 장종료후
    AFTER_HOURS_SINGLE = "4"  # 시간외단일가
    BUY_IN = "7"            # 일반 Buy-in
    SAME_DAY_BUY_IN = "8"   # 당일 Buy-in
    UNKNOWN = "?"


class TradeKind(enum.Enum):
    """Second character of NEW_MKOP_CLS_CODE."""

    NORMAL = "0"            # 보통
    CLOSING_PRICE = "1"     # 종가
    BLOCK = "2"             # 대량
    BASKET = "3"            # 바스켓
    LIQUIDATION = "7"       # 정리매매
    BUY_IN = "8"            # Buy-in
    UNKNOWN = "?"


class MarketOperation(NamedTuple):
    """NEW_MKOP_CLS_CODE decoded; ``raw`` keeps the two characters as sent."""

    session: SessionClass
    kind: TradeKind
    raw: str

    @classmethod
    def decode(cls, code: str) -> MarketOperation:
        first, second = (code + "??")[0], (code + "??")[1]
        try:
            session = SessionClass(first)
        except ValueError:
            session = SessionClass.UNKNOWN
        try:
            kind = TradeKind(second)
        except ValueError:
            kind = TradeKind.UNKNOWN
        return cls(session, kind, code)


class MarketState(enum.Enum):
    """What a record says about the symbol's trading state (one value per record)."""

    NORMAL = "normal"                # continuous trading
    HALTED = "halted"                # TRHT_YN = Y
    STATIC_VI = "static_vi"          # VI auction, price ≥ the static band from VI_STND_PRC
    DYNAMIC_VI = "dynamic_vi"        # VI auction inside the static band
    AUCTION = "auction"              # opening / closing call auction (expected prices A/B)
    PRE_OPEN = "pre_open"            # 장개시전 session (pre-market trading)
    AFTER_HOURS = "after_hours"      # 장종료후 session (after-market, closing-price trading)
    SINGLE_PRICE = "single_price"    # 시간외 단일가

    @property
    def vi(self) -> bool:
        return self in (MarketState.STATIC_VI, MarketState.DYNAMIC_VI)


def _field(fields: Sequence[str], i: int) -> str:
    return fields[i] if len(fields) > i else ""


def vi_kind(price: int | None, static_reference: int | None,
            static_band_pct: float = STATIC_VI_BAND_PCT) -> MarketState:
    """Static VI when ``price`` is at least the static band away from the static reference
    (VI_STND_PRC), else dynamic [I: the record has no VI-kind field; the VI-status endpoint's
    ``vi_kind_code`` says it exactly]."""
    if price and static_reference and static_reference > 0:
        if abs(price - static_reference) * 100.0 >= static_band_pct * static_reference - 1e-9:
            return MarketState.STATIC_VI
    return MarketState.DYNAMIC_VI


def market_state_of_fields(fields: Sequence[str],
                           static_band_pct: float = STATIC_VI_BAND_PCT) -> MarketState:
    """:func:`market_state` on a raw field tuple of the H0STCNT0 / H0STANC0 layout."""
    if _field(fields, IDX_HALT) == "Y":
        return MarketState.HALTED
    hour = _field(fields, IDX_HOUR_CLS)
    if hour == "C":
        ref = _field(fields, IDX_VI_STND)
        try:
            price = int(fields[2])
            reference = int(ref) if ref else None
        except (ValueError, IndexError):
            return MarketState.DYNAMIC_VI
        return vi_kind(price, reference, static_band_pct)
    if hour in ("A", "B"):
        return MarketState.AUCTION
    if hour == "D":
        return MarketState.SINGLE_PRICE
    first = _field(fields, IDX_MKOP)[:1]
    if first == "1":
        return MarketState.PRE_OPEN
    if first == "3":
        return MarketState.AFTER_HOURS
    if first == "4":
        return MarketState.SINGLE_PRICE
    return MarketState.NORMAL


def market_state(record: Any, static_band_pct: float = STATIC_VI_BAND_PCT) -> MarketState:
    """The market state a trade (``TradeRecord``) or expected-price (``GenericRecord`` of
    H0STANC0/H0NXANC0/H0UNANC0) record reports. Order: halt, VI (HOUR_CLS_CODE C), auction
    (A/B), single price (D or session 4), pre-open (session 1), after hours (session 3), normal.
    """
    return market_state_of_fields(record.fields, static_band_pct)


# -- VI-status REST endpoint ------------------------------------------------------------------
#: 변동성완화장치(VI) 현황 [v1_국내주식-055]: real accounts only (모의투자 미지원), the 30 most
#: recent VI events [V OFF examples_llm/domestic_stock/inquire_vi_status; not in kis-protocol.md].
VI_STATUS_PATH = "/uapi/domestic-stock/v1/quotations/inquire-vi-status"
VI_STATUS_TR_ID = "FHPST01390000"
VI_KIND_CODES = {"1": "static", "2": "dynamic", "3": "static+dynamic"}


class ViStatus(NamedTuple):
    """One row of inquire-vi-status (``output``)."""

    code: str
    name: str
    active: bool            # vi_cls_code Y (N once released)
    kind: str               # static / dynamic / static+dynamic / raw code
    business_date: str
    start_hhmmss: str       # cntg_vi_hour
    end_hhmmss: str         # vi_cncl_hour (empty while active)
    price: int | None       # vi_prc (the price that triggered)
    static_reference: int | None   # vi_stnd_prc
    dynamic_reference: int | None  # vi_dmc_stnd_prc
    count: int | None       # vi_count (VI events of the day)


def _int(v: Any) -> int | None:
    try:
        return int(str(v).strip())
    except ValueError:
        return None


def vi_status_rows(body: Mapping[str, Any]) -> list[ViStatus]:
    """The rows of an inquire-vi-status response (rows that are not objects are skipped)."""
    rows = body.get("output")
    out: list[ViStatus] = []
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping):
            continue
        kind = str(row.get("vi_kind_code", "")).strip()
        out.append(ViStatus(
            str(row.get("mksc_shrn_iscd", "")).strip(), str(row.get("hts_kor_isnm", "")).strip(),
            str(row.get("vi_cls_code", "")).strip() == "Y", VI_KIND_CODES.get(kind, kind),
            str(row.get("bsop_date", "")).strip(), str(row.get("cntg_vi_hour", "")).strip(),
            str(row.get("vi_cncl_hour", "")).strip(), _int(row.get("vi_prc", "")),
            _int(row.get("vi_stnd_prc", "")), _int(row.get("vi_dmc_stnd_prc", "")),
            _int(row.get("vi_count", "")),
        ))
    return out


__all__ = ["HourClass", "MarketOperation", "MarketState", "STATIC_VI_BAND_PCT", "SessionClass",
           "TradeKind", "VI_STATUS_PATH", "VI_STATUS_TR_ID", "ViStatus", "market_state",
           "market_state_of_fields", "vi_kind", "vi_status_rows"]
