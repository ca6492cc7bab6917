"""The simulated market: prices on the KRX grid, trades on KRX and Nextrade, each venue's and
the integrated day history, H0STCNT0 / H0NXCNT0 / H0UNCNT0 records, VI auctions and halts.

No I/O. The server drives :meth:`Market.generate` once per scheduler tick; everything it
produces is stored (columnar ``array`` history, ~70 bytes per trade) so the REST back-fill
endpoints serve exactly the trades the socket carried.

Determinism: trades are generated in fixed virtual steps of ``tick_interval`` from a seeded
``random.Random``; the sequence of symbols, prices and volumes depends only on the seed, the
configuration and the calls made (jumps, new symbols), not on wall-clock jitter. Only the
HHMMSS stamps come from the (KST) clock.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import is_valid_stock_code
from ..protocol.records import KST
from ..market.ticks import (
    ceil_to_tick, floor_to_tick, next_tick_down, next_tick_up, price_limits, round_to_tick, tick_size,
)
from .config import JumpSpec, SimConfig
from .hours import OFF, Hours, HoursState
from .spikes import Move, SpikeScheduler
from .tape import (
    KIND_AUCTION, KIND_CLOSING_PRICE, KIND_CODES, KIND_DYNAMIC_VI, KIND_SINGLE_PRICE, KIND_STATIC_VI,
    VENUE_KRX, VENUE_NXT, VENUE_TOTAL, SimTrade, Tape,
)
from .universe import DEFAULT_SYMBOLS, _directory, code_unit, reference_for
from .vi import STATIC, HaltEvent, PriceWindow, ViEvent, vi_trigger

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


class _Jump:
    __slots__ = ("start", "over", "log_ratio", "done")

    def __init__(self, start: float, over: float, pct: float) -> None:
        self.start = start
        self.over = max(0.0, over)
        self.log_ratio = math.log(max(0.01, 1.0 + pct / 100.0))
        self.done = 0.0


class Symbol:
    """State of one symbol for the current business day: the price process, its three tapes
    (``krx``, ``nxt``, ``total``) and its VI / halt state. The KRX tape's counters and history
    are also reachable directly (``cum_vol``, ``trades()`` …: what H0STCNT0 and ``J`` show)."""

    __slots__ = (
        "code", "name", "base_close", "prev_close", "upper", "lower", "fair", "weight", "price",
        "prev_day_vol", "listed_shares", "vol_mu", "last_update", "jumps", "ask_q", "bid_q",
        "tot_ask", "tot_bid", "business_date", "krx", "nxt", "total", "nxt_eligible", "kospi200",
        "static_ref", "window", "vi", "halt", "expected_sent",
    )

    def __init__(self, code: str, weight: float, now: float, business_date: str,
                 nxt_eligible: bool = False, kospi200: bool = False, vi_window: float = 10.0) -> None:
        name, prev_close = reference_for(code)
        self.code = code
        self.name = name
        self.base_close = prev_close
        self.weight = weight
        self.last_update = now
        self.jumps: list[_Jump] = []
        self.nxt_eligible = nxt_eligible
        self.kospi200 = kospi200
        self.window = PriceWindow(vi_window)
        self.vi: ViEvent | None = None
        self.halt: HaltEvent | None = None
        self.expected_sent = -math.inf
        u = code_unit(code, "shares")
        self.listed_shares = int(10 ** (7 + 2.2 * u))                    # 10M .. 1.6B shares
        self.vol_mu = math.log(max(1.0, 3_000_000 / prev_close))          # ~3M won per trade
        self.prev_day_vol = max(10_000, int(60e9 / prev_close * (0.3 + code_unit(code, "pv"))))
        self.krx = Tape(code, VENUE_KRX, business_date, prev_close)
        self.nxt = Tape(code, VENUE_NXT, business_date, prev_close)
        self.total = Tape(code, VENUE_TOTAL, business_date, prev_close)
        self.start_day(prev_close, business_date)

    def start_day(self, prev_close: int, business_date: str) -> None:
        self.business_date = business_date
        self.prev_close = prev_close
        self.upper, self.lower = price_limits(prev_close)
        self.fair = float(prev_close)
        self.price = prev_close
        base_q = max(10, int(math.exp(self.vol_mu) * 20))
        self.ask_q = base_q
        self.bid_q = base_q
        self.tot_ask = base_q * 25
        self.tot_bid = base_q * 25
        self.static_ref = 0
        self.window.reset()
        for tape in (self.krx, self.nxt, self.total):
            tape.start_day(business_date, prev_close)

    def resume(self, price: int, cum_volume: int, cum_value: int) -> None:
        """Continue today's KRX session from a stored state (the trades before are not in
        history); the integrated tape starts from the same totals (NXT had none)."""
        if cum_volume <= 0 or price <= 0:
            return
        self.price = price
        self.fair = float(price)
        self.static_ref = price
        self.krx.resume(price, cum_volume, cum_value)
        self.total.resume(price, cum_volume, cum_value)

    def tape(self, venue: str) -> Tape:
        """The ``krx``, ``nxt`` or ``total`` tape (ValueError for anything else)."""
        if venue == VENUE_KRX:
            return self.krx
        if venue == VENUE_NXT:
            return self.nxt
        if venue == VENUE_TOTAL:
            return self.total
        raise ValueError(f"venue must be krx, nxt or total, not {venue!r}")

    @property
    def halted(self) -> bool:
        return self.halt is not None

    @property
    def in_vi(self) -> bool:
        return self.vi is not None

    # -- the KRX tape, as before the venues existed ------------------------------------------------
    @property
    def cum_vol(self) -> int:
        return self.krx.cum_vol

    @property
    def cum_value(self) -> int:
        return self.krx.cum_value

    @property
    def open(self) -> int:
        return self.krx.open

    @property
    def high(self) -> int:
        return self.krx.high

    @property
    def low(self) -> int:
        return self.krx.low

    @property
    def offset(self) -> int:
        return self.krx.offset

    @property
    def count(self) -> int:
        """KRX trades today (including any trimmed from the stored history)."""
        return self.krx.count

    def trade(self, index: int) -> SimTrade:
        return self.krx.trade(index)

    def trades(self, start: int = 0, stop: int | None = None) -> list[SimTrade]:
        return self.krx.trades(start, stop)

    def index_at_or_before(self, hhmmss: int) -> int:
        return self.krx.index_at_or_before(hhmmss)

    def trim(self, limit: int) -> None:
        for tape in (self.krx, self.nxt, self.total):
            tape.trim(limit)


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


class _Batch:
    """What one symbol prints during one generator call, per tape (krx, nxt, total)."""

    __slots__ = ("starts", "counts", "records", "build")

    def __init__(self, sym: Symbol, build: tuple[bool, bool, bool]) -> None:
        self.starts = (sym.krx.count, sym.nxt.count, sym.total.count)
        self.counts = [0, 0, 0]
        self.records: tuple[list[str], list[str], list[str]] = ([], [], [])
        self.build = build


class _AnyOf:
    """Codes wanted by any TR (spikes prefer symbols someone watches, on whichever venue)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Iterable[Container[str]]) -> None:
        self._parts = tuple(parts)

    def __contains__(self, code: object) -> bool:
        return any(code in p for p in self._parts)


class Market:
    """All symbols, the trade generator and the KST market clock."""

    def __init__(self, config: SimConfig, now: float = 0.0) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self._book_rng = random.Random(config.seed + 1)
        self._venue_rng = random.Random(config.seed * 31 + 5)   # venue picks: trades stay as they were
        self._vi_rng = random.Random(config.seed * 17 + 3)
        self._clock: Callable[[], datetime] = config.clock or (lambda: datetime.now(KST))
        self._hours = Hours(config.always_open, config.nxt)
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
        self._vi_events: list[ViEvent] = []
        self._halts: list[HaltEvent] = []
        self._in_vi: list[Symbol] = []
        self._halted: list[Symbol] = []
        self._krx_auction = False
        self._krx_slot: str | None = None
        self._spikes = SpikeScheduler(config.spikes, config.seed, now) if config.spikes else None
        self._explicit = set(config.codes) | set(config.resume)
        for i, code in enumerate(config.codes):
            self.add_symbol(code, weight=1.0 / (i + 1) ** 0.7, now=now)

    # -- symbols ------------------------------------------------------------------------------
    def add_symbol(self, code: str, weight: float | None = None, now: float = 0.0) -> Symbol:
        """Start trading ``code`` (idempotent; an explicit request: any valid code gets a
        market). Raises ValueError on a malformed code."""
        sym = self.symbols.get(code)
        if sym is not None:
            return sym
        if not is_valid_stock_code(code):
            raise ValueError(f"invalid stock code {code!r}")
        if weight is None:
            weight = 0.1 + 0.4 * code_unit(code, "weight")
        vi = self.config.vi
        sym = Symbol(code, weight, now, self.business_date, nxt_eligible=nxt_eligible(code),
                     kospi200=code in DEFAULT_SYMBOLS, vi_window=vi.dynamic_window if vi else 10.0)
        state = self.config.resume.get(code)
        if state is not None and state[0] == self.business_date:
            sym.resume(state[1], state[2], state[3])
        self.symbols[code] = sym
        self._order.append(sym)
        total = self._cum_weights[-1] if self._cum_weights else 0.0
        self._cum_weights.append(total + weight)
        return sym

    def symbol_for(self, code: str, now: float = 0.0) -> Symbol | None:
        """The symbol a subscription or query names, started if it is listed (or configured,
        or ``invent_unknown_codes``); None for a code no symbol list knows: no market is
        invented for it. Raises ValueError on a malformed code."""
        sym = self.symbols.get(code)
        if sym is not None:
            return sym
        if not is_valid_stock_code(code):
            raise ValueError(f"invalid stock code {code!r}")
        if self.config.invent_unknown_codes or code in self._explicit or is_listed(code):
            return self.add_symbol(code, now=now)
        return None

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

    # -- halts and VI -------------------------------------------------------------------------
    def halt(self, code: str, seconds: float | None, now: float) -> HaltEvent:
        """Halt ``code`` (거래정지) on every venue for ``seconds`` (None = until :meth:`resume`)."""
        sym = self.add_symbol(code, now=now)
        if sym.halt is not None:
            sym.halt.until = math.inf if seconds is None else now + seconds
            return sym.halt
        ev = HaltEvent(code, now, self._hhmmss(), math.inf if seconds is None else now + seconds)
        sym.halt = ev
        self._halts.append(ev)
        self._halted.append(sym)
        return ev

    def resume(self, code: str, now: float) -> None:
        """End ``code``'s halt now (continuous trading resumes at the next tick)."""
        sym = self.symbols.get(code)
        if sym is not None and sym.halt is not None:
            sym.halt.until = now
            self._end_halts(now)

    def _end_halts(self, now: float) -> None:
        for sym in [s for s in self._halted if s.halt is not None and s.halt.until <= now]:
            assert sym.halt is not None
            sym.halt.end, sym.halt.end_time = now, self._hhmmss()
            sym.halt = None
            sym.last_update = max(sym.last_update, now)
            self._halted.remove(sym)

    def vi_events(self) -> list[ViEvent]:
        return list(self._vi_events)

    def halts(self) -> list[HaltEvent]:
        return list(self._halts)

    # -- clock --------------------------------------------------------------------------------
    def now_kst(self) -> datetime:
        return self._clock()

    def _hhmmss(self) -> str:
        return f"{self._last_hms:06d}" if self._last_hms else self._clock().strftime("%H%M%S")

    def is_open(self, now_kst: datetime) -> bool:
        """Some venue trades continuously at ``now_kst`` (market hours on: the session table)."""
        return self._hours.at(now_kst).continuous

    def _roll_day(self, business_date: str) -> None:
        """New KST date: yesterday's last KRX price becomes the previous close; history restarts."""
        self.business_date = business_date
        self._last_hms = 0
        for sym in self._order:
            sym.start_day(sym.krx.price, business_date)

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

    def generate(self, steps: int, now: float, wanted: Container[str],
                 wanted_by_tr: Mapping[str, Container[str]] | None = None) -> list[Generated]:
        """Run ``steps`` scheduler ticks worth of trades at loop time ``now``.

        Trades of one symbol made in this call share a frame per TR (split at
        ``max_records_per_frame``); frames are built only for the codes each TR wants
        (``wanted_by_tr``: TR id -> codes; default ``{H0STCNT0: wanted}``).
        """
        now_kst = self._clock()
        bdate = f"{now_kst.year:04d}{now_kst.month:02d}{now_kst.day:02d}"
        if bdate != self.business_date:
            self._roll_day(bdate)
        if steps <= 0 or not self._order:
            return []
        hours = self._hours.at(now_kst)
        if self._halted:
            self._end_halts(now)
        prints = self._scheduled_prints(hours, now)
        if not hours.continuous and not prints:
            return []
        if self._spikes is not None and hours.continuous:
            self._maybe_spike(now, wanted if wanted_by_tr is None else _AnyOf(wanted_by_tr.values()))
        hms = now_kst.hour * 10_000 + now_kst.minute * 100 + now_kst.second
        if hms < self._last_hms:      # wall clock stepped back: keep history times monotonic
            hms = self._last_hms
        self._last_hms = hms
        counts: dict[Symbol, int] = {}
        if hours.continuous:
            activity = 1.0 if hours.krx != OFF else self.config.nxt_only_activity
            n = self._poisson(self.rate * self.config.tick_interval * steps * activity)
            if n:
                for s in self.rng.choices(self._order, cum_weights=self._cum_weights, k=n):
                    counts[s] = counts.get(s, 0) + 1
        if not counts and not prints:
            return []
        by_tr = wanted_by_tr if wanted_by_tr is not None else {TR_TRADES: wanted}
        krx_w, nxt_w, tot_w = (by_tr.get(TR_TRADES, ()), by_tr.get(TR_NXT, ()), by_tr.get(TR_TOTAL, ()))
        t = f"{hms:06d}"
        out: list[Generated] = []
        limit = self.config.history_limit
        for sym in self._order:          # fixed order: deterministic
            k = counts.get(sym, 0)
            scheduled = prints.get(sym)
            if not k and scheduled is None:
                continue
            if sym.halt is not None:
                continue
            code = sym.code
            batch = _Batch(sym, (code in krx_w, code in nxt_w, code in tot_w))
            if scheduled is not None:
                self._single_print(sym, batch, scheduled[0], scheduled[1], now, t, hms)
            elif sym.vi is None:
                self._trade(sym, batch, k, now, t, hms, hours)
            if not any(batch.counts):
                continue
            self._emit(sym, batch, out)
            if limit is not None and len(sym.total.h_price) > limit:
                sym.trim(limit)
        return out

    def _scheduled_prints(self, hours: HoursState, now: float) -> dict[Symbol, tuple[int, int]]:
        """Single prints due now: (venue number, kind) per symbol — VI auctions ending, the end
        of a KRX call auction, a KRX single-price slot."""
        prints: dict[Symbol, tuple[int, int]] = {}
        if self._krx_auction and not hours.krx_auction:
            for sym in self._order:
                if sym.vi is None:
                    prints[sym] = (0, KIND_AUCTION)
        self._krx_auction = hours.krx_auction
        if hours.krx_slot != self._krx_slot:
            if hours.krx_slot is not None:
                for sym in self._order:
                    if sym.krx.count and sym.vi is None:
                        prints[sym] = (0, hours.krx_slot_kind)
            self._krx_slot = hours.krx_slot
        for sym in self._in_vi:
            ev = sym.vi
            if ev is not None and now >= ev.planned_end:
                prints[sym] = (1 if ev.venue == VENUE_NXT else 0,
                               KIND_STATIC_VI if ev.kind == STATIC else KIND_DYNAMIC_VI)
        return prints

    def _emit(self, sym: Symbol, batch: _Batch, out: list[Generated]) -> None:
        step = max(1, min(999, self.config.max_records_per_frame))
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
        self.generated_total += batch.counts[0] + batch.counts[1]

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

    def _print(self, sym: Symbol, batch: _Batch, venue_no: int, t: str, hms: int, price: int,
               vol: int, buy: bool, ask: int, bid: int, kind: int, vi_ref: int) -> None:
        """Apply one trade to its venue's tape and the integrated tape; build the records wanted."""
        venue_tape = sym.nxt if venue_no else sym.krx
        sym.price = price
        if not sym.static_ref:
            sym.static_ref = price
        side = "1" if buy else "5"
        mkop, hour = KIND_CODES[kind]
        build = batch.build
        i = 1 if venue_no else 0
        cttr = venue_tape.add(t, hms, price, vol, buy, ask, bid, kind, venue_no)
        batch.counts[i] += 1
        if build[i]:
            batch.records[i].append(self._record(sym, venue_tape, t, price, vol, side, ask, bid,
                                                 cttr, mkop, hour, vi_ref))
        cttr = sym.total.add(t, hms, price, vol, buy, ask, bid, kind, venue_no)
        batch.counts[2] += 1
        if build[2]:
            batch.records[2].append(self._record(sym, sym.total, t, price, vol, side, ask, bid,
                                                 cttr, mkop, hour, vi_ref))

    def _single_print(self, sym: Symbol, batch: _Batch, venue_no: int, kind: int, now: float,
                      t: str, hms: int) -> None:
        """ONE print: the end of a call auction, a single-price slot or a VI auction."""
        drift = self._advance_fair(sym, now)
        if kind == KIND_CLOSING_PRICE:
            price = sym.krx.price                           # closing-price trading
        else:
            price = min(sym.upper, max(sym.lower, round_to_tick(sym.fair)))
            if kind == KIND_SINGLE_PRICE:                   # ±10 % of the close at most
                close = sym.krx.price
                price = min(price, floor_to_tick(close * 1.1), sym.upper)
                price = max(price, ceil_to_tick(close * 0.9), sym.lower)
        ask = price if price >= sym.upper else next_tick_up(price)
        bid = next_tick_down(price) if price >= sym.upper else price
        vol = int(self.rng.lognormvariate(sym.vol_mu, 1.1) * (20 if kind != KIND_CLOSING_PRICE else 2)) + 1
        vi_ref = sym.static_ref or price
        ev = sym.vi
        if ev is not None and kind in (KIND_STATIC_VI, KIND_DYNAMIC_VI):
            vi_ref = ev.static_reference
        self._print(sym, batch, venue_no, t, hms, price, vol, drift >= 0, ask, bid, kind, vi_ref)
        if kind in (KIND_AUCTION, KIND_STATIC_VI, KIND_DYNAMIC_VI, KIND_SINGLE_PRICE):
            sym.static_ref = price          # the static reference: the last single-price auction
            sym.window.reset()
        if self.config.vi is not None:
            sym.window.note(now, price)
        if ev is not None and kind in (KIND_STATIC_VI, KIND_DYNAMIC_VI):
            tape = sym.nxt if venue_no else sym.krx
            ev.end, ev.end_time, ev.print_price = now, t, price
            ev.print_index, ev.total_index = tape.count - 1, sym.total.count - 1
            sym.vi = None
            self._in_vi.remove(sym)

    def _start_vi(self, sym: Symbol, kind: str, reference: int, price: int, venue_no: int,
                  now: float, t: str) -> None:
        spec = self.config.vi
        assert spec is not None
        end = now + spec.seconds + (self._vi_rng.uniform(0.0, spec.random_end) if spec.random_end > 0 else 0.0)
        ev = ViEvent(sym.code, kind, VENUE_NXT if venue_no else VENUE_KRX, now, t, price, reference,
                     sym.static_ref or reference, end)
        sym.vi = ev
        self._vi_events.append(ev)
        self._in_vi.append(sym)

    def _trade(self, sym: Symbol, batch: _Batch, k: int, now: float, t: str, hms: int,
               hours: HoursState) -> None:
        krx_kind = hours.krx
        nxt_kind = hours.nxt if sym.nxt_eligible else OFF
        if krx_kind == OFF and nxt_kind == OFF:
            return
        rng = self.rng
        vrng = self._venue_rng
        share = self.config.nxt_share
        vi = self.config.vi
        drift = self._advance_fair(sym, now)
        p_buy = 0.5 + (0.3 if drift > 0 else -0.3 if drift < 0 else 0.0)
        upper, lower = sym.upper, sym.lower
        fair = sym.fair
        # fields that do not change within a tick
        vol_mu = sym.vol_mu
        window = sym.window
        # the fair value may sit beyond a limit (a stock "locked" at 상한가); trades cannot
        if fair > upper:
            fair = float(upper)
        elif fair < lower:
            fair = float(lower)
        tick = tick_size(int(fair))
        for _ in range(k):
            if krx_kind != OFF and nxt_kind != OFF:
                venue_no = 1 if vrng.random() < share else 0
            else:
                venue_no = 0 if krx_kind != OFF else 1
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
            if vi is not None:
                hit = vi_trigger(vi, price, sym.static_ref, window.range(now), sym.kospi200)
                if hit is not None:
                    self._start_vi(sym, hit[0], hit[1], price, venue_no, now, t)
                    return
                window.note(now, price)
            # book quantities wander a little
            sym.ask_q = max(1, sym.ask_q + int(rng.gauss(0.0, 0.1) * sym.ask_q))
            sym.bid_q = max(1, sym.bid_q + int(rng.gauss(0.0, 0.1) * sym.bid_q))
            kind = nxt_kind if venue_no else krx_kind
            self._print(sym, batch, venue_no, t, hms, price, vol, buy, ask, bid, kind,
                        sym.static_ref or price)

    def _record(self, sym: Symbol, tape: Tape, t: str, price: int, vol: int, side: str, ask: int,
                bid: int, cttr: int, mkop: str = "20", hour: str = "0", vi_ref: int = 0,
                halted: str = "N") -> str:
        """The 46 H0STCNT0 fields of the trade just applied to ``tape`` (kis-protocol.md §6)."""
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
            f"{hour}^^{vi_ref or tape.open}{self.extra_suffix}"
        )

    def expected_frame(self, code: str, tr_id: str) -> str | None:
        """An expected-price frame (H0STANC0: the first 45 H0STCNT0 fields; H0NXANC0 /
        H0UNANC0: 46 [V DOC field counts]) for a symbol in VI (HOUR_CLS_CODE C) or halted
        (TRHT_YN Y); None otherwise. The expected price is the current fair value."""
        sym = self.symbols.get(code)
        if sym is None or (sym.vi is None and sym.halt is None):
            return None
        tape = sym.krx if tr_id == "H0STANC0" else sym.nxt if tr_id == "H0NXANC0" else sym.total
        price = min(sym.upper, max(sym.lower, round_to_tick(sym.fair)))
        t = f"{self._last_hms:06d}" if self._last_hms else self._clock().strftime("%H%M%S")
        cttr = tape.buy_vol * 10_000 // tape.sell_vol if tape.sell_vol else 0
        side_open = tape.open or price
        saved = (tape.open, tape.high, tape.low)
        if not tape.open:                 # nothing traded yet: the expected price stands for all
            tape.open = tape.high = tape.low = side_open
        try:
            vi_ref = sym.vi.static_reference if sym.vi is not None else sym.static_ref
            text = self._record(sym, tape, t, price, 0, "3", next_tick_up(price), price, cttr,
                                "20", "C" if sym.vi is not None else "0", vi_ref,
                                "Y" if sym.halt is not None else "N")
        finally:
            tape.open, tape.high, tape.low = saved
        fields = text.split("^")[:46]
        if tr_id == "H0STANC0":
            fields = fields[:45]
        return f"0|{tr_id}|001|{'^'.join(fields)}"

    def book_frame(self, code: str) -> str | None:
        """An ``H0STASP0`` frame (10-level book) around the last KRX trade of ``code``.

        62 fields like real 2026 frames: the 59 documented ones plus KMID_PRC / KMID_TOTAL_RSQN /
        KMID_CLS_CODE (kis-protocol.md §6.2). Quantities are plausible, not a matching engine.
        """
        sym = self.symbols.get(code)
        tape = sym.krx if sym is not None else None
        if sym is None or tape is None or not tape.h_price:
            return None
        ask, bid = tape.h_ask[-1], tape.h_bid[-1]
        asks, bids = [ask], [bid]
        for _ in range(9):
            asks.append(min(sym.upper, next_tick_up(asks[-1])) if asks[-1] < sym.upper else 0)
            bids.append(max(sym.lower, next_tick_down(bids[-1])) if bids[-1] > sym.lower else 0)
        rng = self._book_rng      # separate stream: book subscriptions must not change trades
        base = max(1, sym.ask_q)
        ask_q = [int(base * (0.5 + rng.random())) if p else 0 for p in asks]
        bid_q = [int(base * (0.5 + rng.random())) if p else 0 for p in bids]
        t = f"{tape.h_time[-1]:06d}"
        fields = [code, t, "0", *map(str, asks), *map(str, bids), *map(str, ask_q), *map(str, bid_q),
                  str(sum(ask_q)), str(sum(bid_q)), "0", "0", "0", "0", "0", "0", "3", "0.00",
                  str(tape.cum_vol), "0", "0", "0", "0", "0",
                  str((ask + bid) // 2), "0", "0"]
        return f"0|H0STASP0|001|{'^'.join(fields)}"

    # -- queries ------------------------------------------------------------------------------
    def codes(self) -> list[str]:
        return [s.code for s in self._order]

    def history(self, code: str, venue: str = VENUE_KRX) -> list[SimTrade]:
        sym = self.symbols.get(code)
        return sym.tape(venue).trades() if sym is not None else []

    def latest(self, code: str, n: int, venue: str = VENUE_KRX) -> list[SimTrade]:
        """The ``n`` newest trades, newest first."""
        sym = self.symbols.get(code)
        if sym is None:
            return []
        tape = sym.tape(venue)
        stop = tape.count
        return list(reversed(tape.trades(max(tape.offset, stop - n), stop)))

    def at_or_before(self, code: str, hhmmss: int, n: int, venue: str = VENUE_KRX) -> list[SimTrade]:
        """Up to ``n`` trades with time ≤ hhmmss, newest first (inquire-time-itemconclusion)."""
        sym = self.symbols.get(code)
        if sym is None:
            return []
        tape = sym.tape(venue)
        last = tape.index_at_or_before(hhmmss)
        first = max(tape.offset, last - n + 1)
        return list(reversed(tape.trades(first, last + 1)))


@functools.cache
def _directory_info(code: str) -> Any:
    directory = _directory()
    return directory.get(code) if directory is not None else None


def is_listed(code: str) -> bool:
    """The symbol directory in use (``default_directory().knows``) or the built-in table knows ``code``."""
    directory = _directory()
    return code in DEFAULT_SYMBOLS or (directory is not None and directory.knows(code))


def nxt_eligible(code: str) -> bool:
    """Traded on Nextrade: the directory's NXT flag when known, else the built-in large caps."""
    info = _directory_info(code)
    flag = getattr(info, "nxt", None)
    if flag is not None:
        return bool(flag)
    return code in DEFAULT_SYMBOLS


__all__ = ["Generated", "Market", "Move", "SimTrade", "Symbol", "TR_NXT", "TR_TOTAL", "TR_TRADES",
           "VENUE_TR", "is_listed", "nxt_eligible", "pct2", "sign_code"]
