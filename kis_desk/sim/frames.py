"""The simulator's frames: the H0STCNT0 / H0NXCNT0 / H0UNCNT0 trade records, the expected-price
frames of a symbol in VI or halted, and the H0STASP0 book.

Why its own module: building the 46 fields of a record from a symbol's tape (signs, rates,
times of the day's open/high/low) is the wire format, not the market; the generator
(:mod:`.trading`) calls :func:`trade_record` for each trade someone wants and :func:`emit`
packs them into frames, and the REST quotations share :func:`sign_code` and :func:`pct2`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..market.ticks import next_tick_down, next_tick_up, round_to_tick
from .symbol import Symbol
from .tape import VENUE_KRX, VENUE_NXT, VENUE_TOTAL, Tape

#: the trade TRs and the tape each streams (kis-protocol.md §6, §6.1)
TR_TRADES = "H0STCNT0"      # KRX
TR_NXT = "H0NXCNT0"         # Nextrade
TR_TOTAL = "H0UNCNT0"       # integrated KRX + NXT
VENUE_TR = {VENUE_KRX: TR_TRADES, VENUE_NXT: TR_NXT, VENUE_TOTAL: TR_TOTAL}


def sign_code(price: int, prev_close: int, upper: int, lower: int) -> str:
    """PRDY_VRSS_SIGN: 1 limit up, 2 up, 3 flat, 4 limit down, 5 down."""
    if price > prev_close:
        return "1" if price >= upper else "2"
    if price < prev_close:
        return "4" if price <= lower else "5"
    return "3"


def _diff_sign(d: int) -> str:
    return "2" if d > 0 else ("5" if d < 0 else "3")


def pct2(num: int, den: int) -> str:
    """num/den×100 with two decimals, exact integer rounding (half away from zero), no '-0.00'."""
    if den == 0:
        return "0.00"
    q = (abs(num) * 20_000 // den + 1) // 2
    return f"{'-' if num < 0 and q else ''}{q // 100}.{q % 100:02d}"


def _hms_seconds(t: str) -> int:
    return int(t[0:2]) * 3600 + int(t[2:4]) * 60 + int(t[4:6])


@dataclass
class Generated:
    """The trades one symbol made on one tape in one generator call, and the frames to send to
    that tape's TR (empty if nobody wants them)."""

    code: str
    start: int            # tape history index of the first trade
    count: int
    frames: list[tuple[str, int, int]]   # (frame text, first index, records) — empty if unwanted
    tr_id: str = TR_TRADES
    venue: str = VENUE_KRX


class Batch:
    """What one symbol prints during one generator call, per tape (krx, nxt, total)."""

    __slots__ = ("starts", "counts", "records", "build")

    def __init__(self, sym: Symbol, build: tuple[bool, bool, bool]) -> None:
        self.starts = (sym.krx.count, sym.nxt.count, sym.total.count)
        self.counts = [0, 0, 0]
        self.records: tuple[list[str], list[str], list[str]] = ([], [], [])
        self.build = build


def emit(sym: Symbol, batch: Batch, step: int, out: list[Generated]) -> None:
    """Append ``batch``'s trades per tape to ``out``, their records in frames of ``step`` records."""
    for i, (tr_id, venue) in enumerate(((TR_TRADES, VENUE_KRX), (TR_NXT, VENUE_NXT), (TR_TOTAL, VENUE_TOTAL))):
        k = batch.counts[i]
        if not k:
            continue
        start = batch.starts[i]
        records = batch.records[i]
        frames: list[tuple[str, int, int]] = []
        for j in range(0, len(records), step):
            chunk = records[j:j + step]
            frames.append((f"0|{tr_id}|{len(chunk):03d}|{'^'.join(chunk)}", start + j, len(chunk)))
        out.append(Generated(sym.code, start, k, frames, tr_id, venue))


def trade_record(sym: Symbol, tape: Tape, t: str, price: int, vol: int, side: str, ask: int,
                 bid: int, cttr: int, mkop: str = "20", hour: str = "0", vi_ref: int = 0,
                 halted: str = "N", extra: str = "") -> str:
    """The 46 H0STCNT0 fields of the trade just applied to ``tape`` (kis-protocol.md §6),
    then ``extra`` (the configured extra fields, each after a ``^``)."""
    prev = sym.prev_close
    change = price - prev
    cum_vol = tape.cum_vol
    od, hd, ld = price - tape.open, price - tape.high, price - tape.low
    tot_ask = sym.tot_ask + sym.ask_q * 20
    tot_bid = sym.tot_bid + sym.bid_q * 20
    frac = min(1.0, max(0.01, (_hms_seconds(t) - 32_400) / 23_400))
    smns = max(1, int(sym.prev_day_vol * frac))
    avg = f"{tape.cum_value / cum_vol:.2f}" if cum_vol else f"{price}.00"
    buy_ratio = f"{tape.buy_vol / cum_vol:.2f}" if cum_vol else "0.00"
    return (
        f"{sym.code}^{t}^{price}^{sign_code(price, prev, sym.upper, sym.lower)}^{change}^"
        f"{pct2(change, prev)}^{avg}^{tape.open}^{tape.high}^{tape.low}^"
        f"{ask}^{bid}^{vol}^{cum_vol}^{tape.cum_value}^{tape.sell_cnt}^{tape.buy_cnt}^"
        f"{tape.buy_cnt - tape.sell_cnt}^{cttr // 100}.{cttr % 100:02d}^{tape.sell_vol}^{tape.buy_vol}^"
        f"{side}^{buy_ratio}^{pct2(cum_vol, sym.prev_day_vol)}^"
        f"{tape.open_time}^{_diff_sign(od)}^{od}^{tape.high_time}^{_diff_sign(hd)}^{hd}^"
        f"{tape.low_time}^{_diff_sign(ld)}^{ld}^{sym.business_date}^{mkop}^{halted}^{sym.ask_q}^{sym.bid_q}^"
        f"{tot_ask}^{tot_bid}^{pct2(cum_vol, sym.listed_shares)}^{smns}^{pct2(cum_vol, smns)}^"
        f"{hour}^^{vi_ref or tape.open}{extra}"
    )


def expected_frame(sym: Symbol, tr_id: str, t: str, extra: str = "") -> str:
    """An expected-price frame (H0STANC0: the first 45 H0STCNT0 fields; H0NXANC0 /
    H0UNANC0: 46 [V DOC field counts]) at ``t`` (HHMMSS) for a symbol in VI (HOUR_CLS_CODE C)
    or halted (TRHT_YN Y). The expected price is the current fair value."""
    tape = sym.krx if tr_id == "H0STANC0" else sym.nxt if tr_id == "H0NXANC0" else sym.total
    price = min(sym.upper, max(sym.lower, round_to_tick(sym.fair)))
    cttr = tape.buy_vol * 10_000 // tape.sell_vol if tape.sell_vol else 0
    side_open = tape.open or price
    saved = (tape.open, tape.high, tape.low)
    if not tape.open:                 # nothing traded yet: the expected price stands for all
        tape.open = tape.high = tape.low = side_open
    try:
        vi_ref = sym.vi.static_reference if sym.vi is not None else sym.static_ref
        text = trade_record(sym, tape, t, price, 0, "3", next_tick_up(price), price, cttr,
                            "20", "C" if sym.vi is not None else "0", vi_ref,
                            "Y" if sym.halt is not None else "N", extra)
    finally:
        tape.open, tape.high, tape.low = saved
    fields = text.split("^")[:46]
    if tr_id == "H0STANC0":
        fields = fields[:45]
    return f"0|{tr_id}|001|{'^'.join(fields)}"


def book_frame(sym: Symbol, rng: random.Random) -> str | None:
    """An ``H0STASP0`` frame (10-level book) around the last KRX trade of ``sym`` (None before
    its first); ``rng`` is a stream of its own: book subscriptions must not change trades.

    62 fields like real 2026 frames: the 59 documented ones plus KMID_PRC / KMID_TOTAL_RSQN /
    KMID_CLS_CODE (kis-protocol.md §6.2). Quantities are plausible, not a matching engine.
    """
    tape = sym.krx
    if not tape.h_price:
        return None
    ask, bid = tape.h_ask[-1], tape.h_bid[-1]
    asks, bids = [ask], [bid]
    for _ in range(9):
        asks.append(min(sym.upper, next_tick_up(asks[-1])) if asks[-1] < sym.upper else 0)
        bids.append(max(sym.lower, next_tick_down(bids[-1])) if bids[-1] > sym.lower else 0)
    base = max(1, sym.ask_q)
    ask_q = [int(base * (0.5 + rng.random())) if p else 0 for p in asks]
    bid_q = [int(base * (0.5 + rng.random())) if p else 0 for p in bids]
    t = f"{tape.h_time[-1]:06d}"
    fields = [sym.code, t, "0", *map(str, asks), *map(str, bids), *map(str, ask_q), *map(str, bid_q),
              str(sum(ask_q)), str(sum(bid_q)), "0", "0", "0", "0", "0", "0", "3", "0.00",
              str(tape.cum_vol), "0", "0", "0", "0", "0",
              str((ask + bid) // 2), "0", "0"]
    return f"0|H0STASP0|001|{'^'.join(fields)}"


__all__ = ["Batch", "Generated", "TR_NXT", "TR_TOTAL", "TR_TRADES", "VENUE_TR", "book_frame", "emit",
           "expected_frame", "pct2", "sign_code", "trade_record"]
