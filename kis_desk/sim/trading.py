"""How the simulated symbols trade: the price process and the prints of one generator call.

Why its own module: :class:`~.market.Market` keeps the symbols, the clock, halts and the
schedule of a call (which symbols trade, which single prints are due); this is the per-symbol
process it runs — the fair value diffusing with scripted jumps, continuous trades around it
on KRX and Nextrade, the single prints of auctions, price slots and VI ends, and VI starts —
applying each trade to the tapes and building the records someone wants (:mod:`.frames`).

A mixin of ``Market`` (it uses the market's ``config``, random streams ``rng`` /
``_venue_rng`` / ``_vi_rng``, ``_sigma``, ``extra_suffix`` and VI lists ``_vi_events`` /
``_in_vi``): one seeded stream drives both, so the trades stay exactly as they were.
"""

from __future__ import annotations

import math

from ..market.ticks import ceil_to_tick, floor_to_tick, next_tick_down, next_tick_up, round_to_tick, tick_size
from .frames import Batch, trade_record
from .hours import OFF, HoursState
from .symbol import Symbol
from .tape import (
    KIND_AUCTION, KIND_CLOSING_PRICE, KIND_CODES, KIND_DYNAMIC_VI, KIND_SINGLE_PRICE, KIND_STATIC_VI,
    VENUE_KRX, VENUE_NXT,
)
from .vi import ViEvent, vi_trigger


class Trading:
    """The price process and prints of :class:`~.market.Market` (see the module docstring)."""

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

    def _print(self, sym: Symbol, batch: Batch, venue_no: int, t: str, hms: int, price: int,
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
            batch.records[i].append(trade_record(sym, venue_tape, t, price, vol, side, ask, bid,
                                                 cttr, mkop, hour, vi_ref, extra=self.extra_suffix))
        cttr = sym.total.add(t, hms, price, vol, buy, ask, bid, kind, venue_no)
        batch.counts[2] += 1
        if build[2]:
            batch.records[2].append(trade_record(sym, sym.total, t, price, vol, side, ask, bid,
                                                 cttr, mkop, hour, vi_ref, extra=self.extra_suffix))

    def _single_print(self, sym: Symbol, batch: Batch, venue_no: int, kind: int, now: float,
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

    def _trade(self, sym: Symbol, batch: Batch, k: int, now: float, t: str, hms: int,
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


__all__ = ["Trading"]
