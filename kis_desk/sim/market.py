"""The simulated market: its symbols, the KST market clock and the schedule of each generator
call (which symbols trade, which single prints are due), halts and VI, and the queries the
REST back-fill serves. One symbol's state is :mod:`.symbol`, how it trades :mod:`.trading`,
its tapes :mod:`.tape`, the records and frames :mod:`.frames`.

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
from collections.abc import Callable, Container, Iterable, Mapping
from datetime import datetime

from ..config import is_valid_stock_code
from ..protocol.records import KST
from .config import JumpSpec, SimConfig
from .frames import TR_NXT, TR_TOTAL, TR_TRADES, Batch, Generated, book_frame, emit, expected_frame
from .hours import OFF, Hours, HoursState
from .spikes import Move, SpikeScheduler
from .symbol import Jump, Symbol
from .tape import KIND_AUCTION, KIND_DYNAMIC_VI, KIND_STATIC_VI, VENUE_KRX, VENUE_NXT, SimTrade
from .trading import Trading
from .universe import DEFAULT_SYMBOLS, code_unit, is_listed, nxt_eligible
from .vi import STATIC, HaltEvent, ViEvent


class _AnyOf:
    """Codes wanted by any TR (spikes prefer symbols someone watches, on whichever venue)."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Iterable[Container[str]]) -> None:
        self._parts = tuple(parts)

    def __contains__(self, code: object) -> bool:
        return any(code in p for p in self._parts)


class Market(Trading):
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
        sym = self._existing(code)
        if sym is not None:
            return sym
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
        sym = self._existing(code)
        if sym is None and (self.config.invent_unknown_codes or code in self._explicit
                            or is_listed(code)):
            sym = self.add_symbol(code, now=now)
        return sym

    def _existing(self, code: str) -> Symbol | None:
        """The symbol of ``code`` when it trades already; ValueError for a malformed code."""
        sym = self.symbols.get(code)
        if sym is None and not is_valid_stock_code(code):
            raise ValueError(f"invalid stock code {code!r}")
        return sym

    def get(self, code: str) -> Symbol | None:
        return self.symbols.get(code)

    def jump(self, code: str, pct: float, over_seconds: float, now: float) -> None:
        """Move ``code`` by ``pct`` percent over ``over_seconds`` from loop time ``now``."""
        sym = self.add_symbol(code, now=now)
        sym.jumps.append(Jump(now, over_seconds, pct))
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
        sym.jumps.append(Jump(now, move.over_seconds, move.pct))
        sym.jumps.append(Jump(move.retrace_start, move.retrace_over, move.retrace_pct))
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
        step = max(1, min(999, self.config.max_records_per_frame))
        for sym in self._order:          # fixed order: deterministic
            k = counts.get(sym, 0)
            scheduled = prints.get(sym)
            if not k and scheduled is None:
                continue
            if sym.halt is not None:
                continue
            code = sym.code
            batch = Batch(sym, (code in krx_w, code in nxt_w, code in tot_w))
            if scheduled is not None:
                self._single_print(sym, batch, scheduled[0], scheduled[1], now, t, hms)
            elif sym.vi is None:
                self._trade(sym, batch, k, now, t, hms, hours)
            if not any(batch.counts):
                continue
            emit(sym, batch, step, out)
            self.generated_total += batch.counts[0] + batch.counts[1]
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

    def expected_frame(self, code: str, tr_id: str) -> str | None:
        """An expected-price frame (H0STANC0 / H0NXANC0 / H0UNANC0, :func:`.frames.expected_frame`)
        for a symbol in VI or halted; None otherwise."""
        sym = self.symbols.get(code)
        if sym is None or (sym.vi is None and sym.halt is None):
            return None
        return expected_frame(sym, tr_id, self._hhmmss(), self.extra_suffix)

    def book_frame(self, code: str) -> str | None:
        """An ``H0STASP0`` frame around the last KRX trade of ``code`` (:func:`.frames.book_frame`)."""
        sym = self.symbols.get(code)
        return book_frame(sym, self._book_rng) if sym is not None else None

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


__all__ = ["Market"]
