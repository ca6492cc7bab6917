"""Typed, immutable views of KIS real-time records.

A TradeRecord keeps the record's raw field strings and converts on access: the hot path
(parse → store → detect) touches a handful of fields, and eager conversion of all 46 would
cost more than the split itself. The fields every consumer needs (code, time, date, price,
volume, cumulative volume) are validated when the record is parsed, so a record that exists
is always usable; secondary numeric fields return ``None`` when KIS sends something odd.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

from .fields import H0STCNT0_FIELDS, H0STCNT0_WIDTH
from .states import HourClass, MarketOperation, MarketState, market_state_of_fields

KST = timezone(timedelta(hours=9), "KST")


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


#: Memo of ``kst_timestamp`` keyed by BSOP_DATE + STCK_CNTG_HOUR; hot loops may ``.get`` from it
#: directly and call ``kst_timestamp`` on a miss (same values, no call per trade).
KST_TIMESTAMP_CACHE: dict[str, datetime] = {}


def kst_timestamp(business_date: str, hhmmss: str) -> datetime:
    """KST datetime from BSOP_DATE (YYYYMMDD) and STCK_CNTG_HOUR (HHMMSS).

    Cached: KIS times have one-second resolution, so a busy stream repeats the same few values
    (datetimes are immutable, sharing them is safe).
    """
    key = business_date + hhmmss
    ts = KST_TIMESTAMP_CACHE.get(key)
    if ts is None:
        ts = datetime(
            int(business_date[0:4]), int(business_date[4:6]), int(business_date[6:8]),
            int(hhmmss[0:2]), int(hhmmss[2:4]), int(hhmmss[4:6]), tzinfo=KST,
        )
        if len(KST_TIMESTAMP_CACHE) >= 200_000:
            KST_TIMESTAMP_CACHE.clear()
        KST_TIMESTAMP_CACHE[key] = ts
    return ts


class TradeRecord(NamedTuple):
    """One trade of H0STCNT0 / H0UNCNT0 / H0NXCNT0 (46 documented fields + any extras)."""

    tr_id: str
    fields: tuple[str, ...]

    # -- core fields (validated at parse time) --------------------------------------------
    @property
    def stock_code(self) -> str:
        return self.fields[0]

    @property
    def time_hhmmss(self) -> str:
        return self.fields[1]

    @property
    def business_date_text(self) -> str:
        return self.fields[33]

    @property
    def business_date(self) -> date:
        d = self.fields[33]
        return date(int(d[0:4]), int(d[4:6]), int(d[6:8]))

    @property
    def timestamp(self) -> datetime:
        """Trade time, timezone-aware KST."""
        return kst_timestamp(self.fields[33], self.fields[1])

    @property
    def price(self) -> int:
        return int(self.fields[2])

    @property
    def volume(self) -> int:
        """Volume of this trade (CNTG_VOL)."""
        return int(self.fields[12])

    @property
    def cum_volume(self) -> int:
        """Day's cumulative volume after this trade (ACML_VOL); identifies the trade."""
        return int(self.fields[13])

    # -- secondary fields -------------------------------------------------------------------
    @property
    def sign(self) -> str:
        """1 limit up, 2 up, 3 unchanged, 4 limit down, 5 down."""
        return self.fields[3]

    @property
    def change(self) -> int | None:
        """Price minus the previous close (signed)."""
        return _int_or_none(self.fields[4])

    @property
    def change_rate(self) -> float | None:
        """Change vs previous close in percent."""
        return _float_or_none(self.fields[5])

    @property
    def weighted_avg_price(self) -> float | None:
        return _float_or_none(self.fields[6])

    @property
    def open(self) -> int | None:
        return _int_or_none(self.fields[7])

    @property
    def high(self) -> int | None:
        return _int_or_none(self.fields[8])

    @property
    def low(self) -> int | None:
        return _int_or_none(self.fields[9])

    @property
    def best_ask(self) -> int | None:
        return _int_or_none(self.fields[10])

    @property
    def best_bid(self) -> int | None:
        return _int_or_none(self.fields[11])

    @property
    def cum_value(self) -> int | None:
        """Day's cumulative traded value in won (ACML_TR_PBMN)."""
        return _int_or_none(self.fields[14])

    @property
    def sell_trade_count(self) -> int | None:
        return _int_or_none(self.fields[15])

    @property
    def buy_trade_count(self) -> int | None:
        return _int_or_none(self.fields[16])

    @property
    def net_buy_trade_count(self) -> int | None:
        return _int_or_none(self.fields[17])

    @property
    def strength(self) -> float | None:
        """Trade strength (CTTR, 체결강도): buy volume / sell volume × 100."""
        return _float_or_none(self.fields[18])

    @property
    def sell_volume_total(self) -> int | None:
        return _int_or_none(self.fields[19])

    @property
    def buy_volume_total(self) -> int | None:
        return _int_or_none(self.fields[20])

    @property
    def side(self) -> str:
        """CCLD_DVSN: 1 buy-initiated, 5 sell-initiated, 3 pre-market."""
        return self.fields[21]

    @property
    def buy_ratio(self) -> float | None:
        return _float_or_none(self.fields[22])

    @property
    def volume_rate_vs_prev_day(self) -> float | None:
        return _float_or_none(self.fields[23])

    @property
    def open_time(self) -> str:
        return self.fields[24]

    @property
    def high_time(self) -> str:
        return self.fields[27]

    @property
    def low_time(self) -> str:
        return self.fields[30]

    @property
    def market_operation_code(self) -> str:
        """NEW_MKOP_CLS_CODE, e.g. ``20`` = regular session, normal trade."""
        return self.fields[34]

    @property
    def market_operation(self) -> MarketOperation:
        """NEW_MKOP_CLS_CODE decoded (session: pre-open / regular / after close / single price …,
        kind: normal / closing price / block …)."""
        return MarketOperation.decode(self.fields[34])

    @property
    def trading_halt_code(self) -> str:
        """TRHT_YN as sent: Y halted, N normal."""
        return self.fields[35]

    @property
    def halted(self) -> bool:
        return self.fields[35] == "Y"

    @property
    def ask_quantity1(self) -> int | None:
        return _int_or_none(self.fields[36])

    @property
    def bid_quantity1(self) -> int | None:
        return _int_or_none(self.fields[37])

    @property
    def total_ask_quantity(self) -> int | None:
        return _int_or_none(self.fields[38])

    @property
    def total_bid_quantity(self) -> int | None:
        return _int_or_none(self.fields[39])

    @property
    def turnover_rate(self) -> float | None:
        return _float_or_none(self.fields[40])

    @property
    def hour_class_code(self) -> str:
        """HOUR_CLS_CODE: 0 regular session, A/B/C/D expected-price phases."""
        return self.fields[43]

    @property
    def hour_class(self) -> HourClass:
        """HOUR_CLS_CODE decoded (REGULAR, VI, the expected-price phases, UNKNOWN)."""
        return HourClass.decode(self.fields[43])

    @property
    def market_end_code(self) -> str:
        """MRKT_TRTM_CLS_CODE (임의종료구분코드) as sent; empty in every real frame seen."""
        return self.fields[44]

    @property
    def vi_standard_price(self) -> int | None:
        """VI_STND_PRC: the static-VI reference price (정적VI발동기준가)."""
        return _int_or_none(self.fields[45])

    @property
    def market_state(self) -> MarketState:
        """Normal, halted, static/dynamic VI, auction, pre-open, after hours or single price
        (see :func:`kis_desk.protocol.states.market_state`)."""
        return market_state_of_fields(self.fields)

    @property
    def extras(self) -> tuple[str, ...]:
        """Trailing fields beyond the documented 46 (KIS appends fields without notice)."""
        return self.fields[H0STCNT0_WIDTH:]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with English keys (used by ``kis-desk decode``)."""
        return {
            "tr_id": self.tr_id,
            "stock_code": self.stock_code,
            "timestamp": self.timestamp.isoformat(),
            "price": self.price,
            "volume": self.volume,
            "cum_volume": self.cum_volume,
            "change": self.change,
            "change_rate": self.change_rate,
            "sign": self.sign,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "best_ask": self.best_ask,
            "best_bid": self.best_bid,
            "cum_value": self.cum_value,
            "strength": self.strength,
            "side": self.side,
            "market_operation_code": self.market_operation_code,
            "halted": self.halted,
            "hour_class_code": self.hour_class_code,
            "market_end_code": self.market_end_code,
            "vi_standard_price": self.vi_standard_price,
            "market_state": self.market_state.value,
            "extras": list(self.extras),
        }

    def raw_by_name(self) -> dict[str, str]:
        """The documented fields keyed by their KIS column codes."""
        return dict(zip(H0STCNT0_FIELDS, self.fields))


class GenericRecord(NamedTuple):
    """A record of a TR we do not model: its raw fields, in order."""

    tr_id: str
    fields: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"tr_id": self.tr_id, "fields": list(self.fields)}
