"""The simulated market: prices on the KRX grid, trades, the day's history, H0STCNT0 records.

No I/O. The server drives :meth:`Market.generate` once per scheduler tick; everything it
produces is stored (columnar ``array`` history, ~70 bytes per trade) so the REST back-fill
endpoints serve exactly the trades the socket carried.

Determinism: trades are generated in fixed virtual steps of ``tick_interval`` from a seeded
``random.Random``; the sequence of symbols, prices and volumes depends only on the seed, the
configuration and the calls made (jumps, new symbols), not on wall-clock jitter. Only the
HHMMSS stamps come from the (KST) clock.
"""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_right
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from ..config import is_valid_stock_code
from ..protocol.records import KST, kst_timestamp
from ..market.ticks import floor_to_tick, next_tick_down, next_tick_up, price_limits, tick_size
from .config import JumpSpec, SimConfig
from .spikes import Move, SpikeScheduler
from .universe import code_unit, reference_for

TR_TRADES = "H0STCNT0"


class SimTrade(NamedTuple):
    """One stored trade (what the socket sent and what the REST back-fill returns)."""

    code: str
    business_date: str      # YYYYMMDD
    time: str               # HHMMSS (KST)
    price: int
    volume: int
    cum_volume: int
    cum_value: int
    side: str               # CCLD_DVSN: "1" buy-initiated, "5" sell-initiated
    ask: int
    bid: int
    strength: float         # CTTR after this trade
    change: int             # price - previous close
    index: int              # position in the day's history (0-based)

    @property
    def timestamp(self) -> datetime:
        return kst_timestamp(self.business_date, self.time)


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


class _Jump:
    __slots__ = ("start", "over", "log_ratio", "done")

    def __init__(self, start: float, over: float, pct: float) -> None:
        self.start = start
        self.over = max(0.0, over)
        self.log_ratio = math.log(max(0.01, 1.0 + pct / 100.0))
        self.done = 0.0


class Symbol:
    """State of one symbol for the current business day."""

    __slots__ = (
        "code", "name", "base_close", "prev_close", "upper", "lower", "fair", "weight", "price",
        "open", "high", "low", "open_time", "high_time", "low_time", "cum_vol", "cum_value",
        "sell_cnt", "buy_cnt", "sell_vol", "buy_vol", "prev_day_vol", "listed_shares", "vol_mu",
        "last_update", "jumps", "ask_q", "bid_q", "tot_ask", "tot_bid", "offset",
        "h_time", "h_price", "h_vol", "h_cum", "h_val", "h_side", "h_ask", "h_bid", "h_cttr",
        "business_date",
    )

    def __init__(self, code: str, weight: float, now: float, business_date: str) -> None:
        name, prev_close = reference_for(code)
        self.code = code
        self.name = name
        self.base_close = prev_close
        self.weight = weight
        self.last_update = now
        self.jumps: list[_Jump] = []
        u = code_unit(code, "shares")
        self.listed_shares = int(10 ** (7 + 2.2 * u))                    # 10M .. 1.6B shares
        self.vol_mu = math.log(max(1.0, 3_000_000 / prev_close))          # ~3M won per trade
        self.prev_day_vol = max(10_000, int(60e9 / prev_close * (0.3 + code_unit(code, "pv"))))
        self.start_day(prev_close, business_date)

    def start_day(self, prev_close: int, business_date: str) -> None:
        self.business_date = business_date
        self.prev_close = prev_close
        self.upper, self.lower = price_limits(prev_close)
        self.fair = float(prev_close)
        self.price = prev_close
        self.open = self.high = self.low = 0
        self.open_time = self.high_time = self.low_time = ""
        self.cum_vol = self.cum_value = 0
        self.sell_cnt = self.buy_cnt = self.sell_vol = self.buy_vol = 0
        base_q = max(10, int(math.exp(self.vol_mu) * 20))
        self.ask_q = base_q
        self.bid_q = base_q
        self.tot_ask = base_q * 25
        self.tot_bid = base_q * 25
        self.offset = 0
        self.h_time = array("l")
        self.h_price = array("q")
        self.h_vol = array("q")
        self.h_cum = array("q")
        self.h_val = array("q")
        self.h_side = array("b")
        self.h_ask = array("q")
        self.h_bid = array("q")
        self.h_cttr = array("q")     # CTTR × 100

    def resume(self, price: int, cum_volume: int, cum_value: int) -> None:
        """Continue today's session from a stored state (the trades before are not in history)."""
        if cum_volume <= 0 or price <= 0:
            return
        self.price = price
        self.fair = float(price)
        self.open = self.high = self.low = price
        self.open_time = self.high_time = self.low_time = "090000"
        self.cum_vol = cum_volume
        self.cum_value = max(cum_value, price)
        self.sell_vol = cum_volume // 2
        self.buy_vol = cum_volume - self.sell_vol
        self.sell_cnt = self.buy_cnt = max(1, cum_volume // 200)

    # -- history ------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Trades today (including any trimmed from the stored history)."""
        return self.offset + len(self.h_price)

    def trade(self, index: int) -> SimTrade:
        i = index - self.offset
        t = self.h_time[i]
        price = self.h_price[i]
        return SimTrade(
            self.code, self.business_date, f"{t:06d}", price, self.h_vol[i], self.h_cum[i],
            self.h_val[i], "1" if self.h_side[i] == 1 else "5", self.h_ask[i], self.h_bid[i],
            self.h_cttr[i] / 100.0, price - self.prev_close, index,
        )

    def trades(self, start: int = 0, stop: int | None = None) -> list[SimTrade]:
        stop = self.count if stop is None else min(stop, self.count)
        start = max(start, self.offset)
        return [self.trade(i) for i in range(start, stop)]

    def index_at_or_before(self, hhmmss: int) -> int:
        """Global index of the last stored trade with time ≤ hhmmss, or offset-1 if none."""
        return self.offset + bisect_right(self.h_time, hhmmss) - 1

    def trim(self, limit: int) -> None:
        excess = len(self.h_price) - limit
        if excess <= 0:
            return
        cut = max(excess, limit // 4)   # trim in chunks: del on arrays is O(n)
        for arr in (self.h_time, self.h_price, self.h_vol, self.h_cum, self.h_val, self.h_side,
                    self.h_ask, self.h_bid, self.h_cttr):
            del arr[:cut]
        self.offset += cut


@dataclass
class Generated:
    """The trades one symbol made in one generator call, and the frames to send (if wanted)."""

    code: str
    start: int            # global history index of the first trade
    count: int
    frames: list[tuple[str, int, int]]   # (frame text, first index, records) — empty if unwanted


class Market:
    """All symbols, the trade generator and the KST market clock."""

    def __init__(self, config: SimConfig, now: float = 0.0) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self._book_rng = random.Random(config.seed + 1)
        self._clock: Callable[[], datetime] = config.clock or (lambda: datetime.now(KST))
        self.symbols: dict[str, Symbol] = {}
        self._order: list[Symbol] = []
        self._cum_weights: list[float] = []
        self.rate = float(config.rate)
        self.business_date = self._clock().strftime("%Y%m%d")
        self._last_hms = 0
        self.generated_total = 0
        self.extra_suffix = "".join("^" + f for f in config.extra_fields)
        self._sigma = config.volatility_pct / 100.0 / 60.0     # per sqrt(second)
        self._moves: list[Move] = []
        self._spikes = SpikeScheduler(config.spikes, config.seed, now) if config.spikes else None
        for i, code in enumerate(config.codes):
            self.add_symbol(code, weight=1.0 / (i + 1) ** 0.7, now=now)

    # -- symbols ------------------------------------------------------------------------------
    def add_symbol(self, code: str, weight: float | None = None, now: float = 0.0) -> Symbol:
        """Start trading ``code`` (idempotent). Raises ValueError on a malformed code."""
        sym = self.symbols.get(code)
        if sym is not None:
            return sym
        if not is_valid_stock_code(code):
            raise ValueError(f"invalid stock code {code!r}")
        if weight is None:
            weight = 0.1 + 0.4 * code_unit(code, "weight")
        sym = Symbol(code, weight, now, self.business_date)
        state = self.config.resume.get(code)
        if state is not None and state[0] == self.business_date:
            sym.resume(state[1], state[2], state[3])
        self.symbols[code] = sym
        self._order.append(sym)
        total = self._cum_weights[-1] if self._cum_weights else 0.0
        self._cum_weights.append(total + weight)
        return sym

    def get(self, code: str) -> Symbol | None:
        return self.symbols.get(code)

    def jump(self, code: str, pct: float, over_seconds: float, now: float) -> None:
        """Move ``code`` by ``pct`` percent over ``over_seconds`` from loop time ``now``."""
        sym = self.add_symbol(code, now=now)
        sym.jumps.append(_Jump(now, over_seconds, pct))
        self._moves.append(Move(code, now, pct, over_seconds, "jump"))

    def moves(self) -> list[Move]:
        """Every scripted jump and news spike started so far, in start order."""
        return list(self._moves)

    def _maybe_spike(self, now: float, wanted: Container[str]) -> None:
        assert self._spikes is not None
        if now < self._spikes.next_at:
            return
        pool = [s for s in self._order if s.code in wanted] or self._order
        move = self._spikes.due(now, [(s.code, (s.fair / s.prev_close - 1.0) * 100.0) for s in pool])
        if move is None:
            return
        sym = self.symbols[move.code]
        sym.jumps.append(_Jump(now, move.over_seconds, move.pct))
        sym.jumps.append(_Jump(move.retrace_start, move.retrace_over, move.retrace_pct))
        self._moves.append(move)

    def apply_jump_spec(self, spec: JumpSpec, now: float) -> None:
        self.jump(spec.code, spec.pct, spec.over_seconds, now)

    # -- clock --------------------------------------------------------------------------------
    def now_kst(self) -> datetime:
        return self._clock()

    def is_open(self, now_kst: datetime) -> bool:
        if self.config.always_open:
            return True
        # the KRX calendar: holidays, late-open days, continuous session + closing auction
        from ..market.calendar import MarketPhase, phase_at

        return phase_at(now_kst) in (MarketPhase.OPEN, MarketPhase.CLOSING_AUCTION)

    def _roll_day(self, business_date: str) -> None:
        """New KST date: yesterday's last price becomes the previous close; history restarts."""
        self.business_date = business_date
        self._last_hms = 0
        for sym in self._order:
            sym.start_day(sym.price, business_date)

    # -- generation ---------------------------------------------------------------------------
    def _poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        rng = self.rng
        if lam > 30:
            return max(0, int(rng.gauss(lam, math.sqrt(lam)) + 0.5))
        limit = math.exp(-lam)
        k, p = 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k

    def generate(self, steps: int, now: float, wanted: Container[str]) -> list[Generated]:
        """Run ``steps`` scheduler ticks worth of trades at loop time ``now``.

        Trades of one symbol made in this call share a frame (split at
        ``max_records_per_frame``); frames are built only for codes in ``wanted``.
        """
        now_kst = self._clock()
        bdate = f"{now_kst.year:04d}{now_kst.month:02d}{now_kst.day:02d}"
        if bdate != self.business_date:
            self._roll_day(bdate)
        if steps <= 0 or not self._order or not self.is_open(now_kst):
            return []
        if self._spikes is not None:
            self._maybe_spike(now, wanted)
        hms = now_kst.hour * 10_000 + now_kst.minute * 100 + now_kst.second
        if hms < self._last_hms:      # wall clock stepped back: keep history times monotonic
            hms = self._last_hms
        self._last_hms = hms
        n = self._poisson(self.rate * self.config.tick_interval * steps)
        if n == 0:
            return []
        picks = self.rng.choices(self._order, cum_weights=self._cum_weights, k=n)
        counts: dict[Symbol, int] = {}
        for s in picks:
            counts[s] = counts.get(s, 0) + 1
        t = f"{hms:06d}"
        out: list[Generated] = []
        limit = self.config.history_limit
        for sym in self._order:          # fixed order: deterministic
            k = counts.get(sym)
            if not k:
                continue
            start = sym.count
            records = self._trade(sym, k, now, t, hms, sym.code in wanted)
            frames: list[tuple[str, int, int]] = []
            if records:
                step = max(1, min(999, self.config.max_records_per_frame))
                for j in range(0, k, step):
                    chunk = records[j:j + step]
                    frames.append((f"0|{TR_TRADES}|{len(chunk):03d}|{'^'.join(chunk)}", start + j, len(chunk)))
            out.append(Generated(sym.code, start, k, frames))
            if limit is not None and len(sym.h_price) > limit:
                sym.trim(limit)
        self.generated_total += n
        return out

    def _advance_fair(self, sym: Symbol, now: float) -> float:
        """Diffuse the fair value for the elapsed time and apply scripted jumps."""
        rng = self.rng
        dt = now - sym.last_update
        sym.last_update = now
        fair = sym.fair
        if dt > 0:
            fair *= math.exp(self._sigma * math.sqrt(dt) * rng.gauss(0.0, 1.0))
            # weak pull back towards the previous close keeps multi-hour demos within bounds
            fair *= math.exp(-min(dt, 60.0) / 7200.0 * math.log(fair / sym.prev_close) * 0.5)
        drift = 0.0
        if sym.jumps:
            keep = []
            for j in sym.jumps:
                if now < j.start:           # planned (a spike's retrace): not moving yet
                    keep.append(j)
                    continue
                progress = 1.0 if j.over <= 0 else min(1.0, (now - j.start) / j.over)
                fair *= math.exp(j.log_ratio * (progress - j.done))
                j.done = progress
                if progress < 1.0:
                    keep.append(j)
                    drift += j.log_ratio
            sym.jumps = keep
        sym.fair = fair
        return drift

    def _trade(self, sym: Symbol, k: int, now: float, t: str, hms: int, build: bool) -> list[str]:
        rng = self.rng
        drift = self._advance_fair(sym, now)
        p_buy = 0.5 + (0.3 if drift > 0 else -0.3 if drift < 0 else 0.0)
        upper, lower = sym.upper, sym.lower
        fair = sym.fair
        records: list[str] = []
        bdate = sym.business_date
        # fields that do not change within a tick
        frac = min(1.0, max(0.01, (_hms_seconds(t) - 32_400) / 23_400))
        smns = max(1, int(sym.prev_day_vol * frac))
        extra = self.extra_suffix
        h_time, h_price, h_vol, h_cum, h_val = sym.h_time, sym.h_price, sym.h_vol, sym.h_cum, sym.h_val
        h_side, h_ask, h_bid, h_cttr = sym.h_side, sym.h_ask, sym.h_bid, sym.h_cttr
        vol_mu = sym.vol_mu
        # the fair value may sit beyond a limit (a stock "locked" at 상한가); trades cannot
        if fair > upper:
            fair = float(upper)
        elif fair < lower:
            fair = float(lower)
        tick = tick_size(int(fair))
        for _ in range(k):
            # micro noise around the fair value (not persisted: a busy symbol must not wander)
            f = fair + rng.gauss(0.0, 0.35) * tick
            if f >= upper or fair >= upper:
                price = ask = upper
                bid = next_tick_down(upper)
                buy = True
            elif f <= lower or fair <= lower:
                price = bid = lower
                ask = next_tick_up(lower)
                buy = False
            else:
                bid = floor_to_tick(f)
                if bid < lower:
                    bid = lower
                ask = next_tick_up(bid)
                buy = rng.random() < p_buy
                price = ask if buy else bid
            vol = int(rng.lognormvariate(vol_mu, 1.1)) + 1
            if vol > 1_000_000:
                vol = 1_000_000
            sym.cum_vol += vol
            sym.cum_value += price * vol
            if buy:
                sym.buy_cnt += 1
                sym.buy_vol += vol
                side = "1"
            else:
                sym.sell_cnt += 1
                sym.sell_vol += vol
                side = "5"
            if not sym.open:
                sym.open = sym.high = sym.low = price
                sym.open_time = sym.high_time = sym.low_time = t
            elif price > sym.high:
                sym.high, sym.high_time = price, t
            elif price < sym.low:
                sym.low, sym.low_time = price, t
            sym.price = price
            cttr = sym.buy_vol * 10_000 // sym.sell_vol if sym.sell_vol else 0
            # book quantities wander a little
            sym.ask_q = max(1, sym.ask_q + int(rng.gauss(0.0, 0.1) * sym.ask_q))
            sym.bid_q = max(1, sym.bid_q + int(rng.gauss(0.0, 0.1) * sym.bid_q))
            h_time.append(hms)
            h_price.append(price)
            h_vol.append(vol)
            h_cum.append(sym.cum_vol)
            h_val.append(sym.cum_value)
            h_side.append(1 if buy else 5)
            h_ask.append(ask)
            h_bid.append(bid)
            h_cttr.append(cttr)
            if build:
                records.append(self._record(sym, t, price, vol, side, ask, bid, cttr, bdate, smns, extra))
        return records

    def _record(self, sym: Symbol, t: str, price: int, vol: int, side: str, ask: int, bid: int,
                cttr: int, bdate: str, smns: int, extra: str) -> str:
        """The 46 H0STCNT0 fields of the trade just applied to ``sym`` (kis-protocol.md §6)."""
        prev = sym.prev_close
        change = price - prev
        cum_vol = sym.cum_vol
        od, hd, ld = price - sym.open, price - sym.high, price - sym.low
        tot_ask = sym.tot_ask + sym.ask_q * 20
        tot_bid = sym.tot_bid + sym.bid_q * 20
        return (
            f"{sym.code}^{t}^{price}^{sign_code(price, prev, sym.upper, sym.lower)}^{change}^"
            f"{pct2(change, prev)}^{sym.cum_value / cum_vol:.2f}^{sym.open}^{sym.high}^{sym.low}^"
            f"{ask}^{bid}^{vol}^{cum_vol}^{sym.cum_value}^{sym.sell_cnt}^{sym.buy_cnt}^"
            f"{sym.buy_cnt - sym.sell_cnt}^{cttr // 100}.{cttr % 100:02d}^{sym.sell_vol}^{sym.buy_vol}^"
            f"{side}^{sym.buy_vol / cum_vol:.2f}^{pct2(cum_vol, sym.prev_day_vol)}^"
            f"{sym.open_time}^{_diff_sign(od)}^{od}^{sym.high_time}^{_diff_sign(hd)}^{hd}^"
            f"{sym.low_time}^{_diff_sign(ld)}^{ld}^{bdate}^20^N^{sym.ask_q}^{sym.bid_q}^"
            f"{tot_ask}^{tot_bid}^{pct2(cum_vol, sym.listed_shares)}^{smns}^{pct2(cum_vol, smns)}^"
            f"0^^{sym.open}{extra}"
        )

    def book_frame(self, code: str) -> str | None:
        """An ``H0STASP0`` frame (10-level book) around the last trade of ``code``.

        62 fields like real 2026 frames: the 59 documented ones plus KMID_PRC / KMID_TOTAL_RSQN /
        KMID_CLS_CODE (kis-protocol.md §6.2). Quantities are plausible, not a matching engine.
        """
        sym = self.symbols.get(code)
        if sym is None or not sym.h_price:
            return None
        ask, bid = sym.h_ask[-1], sym.h_bid[-1]
        asks, bids = [ask], [bid]
        for _ in range(9):
            asks.append(min(sym.upper, next_tick_up(asks[-1])) if asks[-1] < sym.upper else 0)
            bids.append(max(sym.lower, next_tick_down(bids[-1])) if bids[-1] > sym.lower else 0)
        rng = self._book_rng      # separate stream: book subscriptions must not change trades
        base = max(1, sym.ask_q)
        ask_q = [int(base * (0.5 + rng.random())) if p else 0 for p in asks]
        bid_q = [int(base * (0.5 + rng.random())) if p else 0 for p in bids]
        t = f"{sym.h_time[-1]:06d}"
        fields = [code, t, "0", *map(str, asks), *map(str, bids), *map(str, ask_q), *map(str, bid_q),
                  str(sum(ask_q)), str(sum(bid_q)), "0", "0", "0", "0", "0", "0", "3", "0.00",
                  str(sym.cum_vol), "0", "0", "0", "0", "0",
                  str((ask + bid) // 2), "0", "0"]
        return f"0|H0STASP0|001|{'^'.join(fields)}"

    # -- queries ------------------------------------------------------------------------------
    def codes(self) -> list[str]:
        return [s.code for s in self._order]

    def history(self, code: str) -> list[SimTrade]:
        sym = self.symbols.get(code)
        return sym.trades() if sym is not None else []

    def latest(self, code: str, n: int) -> list[SimTrade]:
        """The ``n`` newest trades, newest first."""
        sym = self.symbols.get(code)
        if sym is None:
            return []
        stop = sym.count
        return list(reversed(sym.trades(max(sym.offset, stop - n), stop)))

    def at_or_before(self, code: str, hhmmss: int, n: int) -> list[SimTrade]:
        """Up to ``n`` trades with time ≤ hhmmss, newest first (inquire-time-itemconclusion)."""
        sym = self.symbols.get(code)
        if sym is None:
            return []
        last = sym.index_at_or_before(hhmmss)
        first = max(sym.offset, last - n + 1)
        return list(reversed(sym.trades(first, last + 1)))


__all__ = ["Generated", "Market", "Move", "SimTrade", "Symbol", "TR_TRADES", "pct2", "sign_code"]
