"""Sudden-move detector: a price move of ≥ threshold % within a sliding window of trade time.

This module holds the rules, the configuration and the in-order hot path (:class:`MoveDetector`);
the per-symbol window state is ``detector_window``, late trades (merge and re-evaluation)
``detector_late``, and the alert-id/episode bookkeeping ``detector_alerts`` — one job each.

Rules (the tests in ``tests/test_detector*.py`` pin every one of them):

* **Window.** Per symbol, over *exchange* trade time (``Tick.timestamp``), never wall clock, so
  back-filled and replayed sessions alert exactly like live ones. With the latest accepted trade
  at time ``T``, the window holds the accepted trades with ``T - window < timestamp <= T`` **and
  the standing trade**: the last accepted trade with ``timestamp <= T - window`` (the price that
  stood when the window opened; of several in one second, the last in exchange order). KIS
  stamps trades to the second, so a 60 s window ending at 09:01:00 holds 09:00:01 … 09:01:00 and
  the last trade at or before 09:00:00. Why: a 2-minute VI auction leaves no trade in the minute
  before its single print, and the move that print completes (from the price before the VI) must
  alert. A symbol that trades rarely is judged against its previous price however old (within
  the business date): that price stood until the move. The standing trade counts only when no
  trade is missing between it and the window's first trade (that trade's ``cum_volume -
  volume`` is its ``cum_volume``): behind a hole — a stall not back-filled yet — the price that
  stood is unknown, so the move waits for the back-fill (then it alerts, late).
* **Move.** Up: the latest price against the window *minimum* (base); down: against the window
  *maximum*. So a move from any point in the window counts, not only from its first trade. When
  the extreme price occurs several times, the base is its *latest* occurrence (the moment the
  move really started). Comparisons are exact integer arithmetic on the threshold as a decimal
  fraction (``Decimal(str(pct))``): 10 000 → 10 500 is 5.00 % and fires at 5 %; 10 499 does not.
* **Steps.** The level of a move is ``floor(move / threshold)`` (10 % at a 5 % threshold is level
  2). An alert fires when the level exceeds the highest level already alerted in the current
  episode; it carries ``step`` = the level reached. A gap from 0 to 12 % is *one* alert with
  ``step=2`` (never a burst of alerts for one trade).
* **Re-arm (no storms).** Per symbol and direction, the episode ends — and the next threshold
  move alerts again with ``step=1`` — once the move from the current window extreme falls below
  *half* the threshold (e.g. < 2.5 % above the window minimum for "up"). The re-arm also happens
  naturally when the window slides past the old base: the new minimum is then close to the price.
* **Trade order: exchange order, whatever the arrival order.** Per symbol and business date
  the trades are judged in ``cum_volume`` order (the exchange's own order), however they arrive:
  live, polled, back-filled after a drop or stall, or replayed. A trade whose ``cum_volume`` is
  below the highest seen and that is not known yet is *late*: it is merged into the day's
  ordered trades (``_SymbolState.hist``) — the late trades of one batch together, before the
  symbol's next in-order trade or at the batch's end, so a back-fill is judged as the whole
  stretch it is, never piece by piece — and only the windows it touches are evaluated again
  (from the late trade until the state equals the earlier evaluation again: no late trade in
  the window and the same episode levels). An alert that evaluation finds and that was not
  raised before is raised then (late; see below). A trade seen already (``(code, date,
  cum_volume)``) is a *replay* and ignored. A trade whose timestamp is older than the trade
  before it in exchange order is *out of order* (inconsistent data) and ignored; equal
  timestamps are in order (several trades per second). A trade of an earlier business date than
  the symbol's current one is out of order; a later one resets the symbol's state (new day, new
  window, re-armed).
* **No double alerts.** An alert is identified by ``alert_id`` (below). An alert found by a
  later evaluation is not raised when its id was raised already (this run, or an earlier run of
  the same day: :meth:`MoveDetector.seed` with the ids in the alerts table), nor when an alert of
  the same direction with a step at least as high was already raised within the same episode
  (trigger between the episode's first threshold crossing and its re-arm). Alerts raised
  before late trades arrived are right for the trades known then and are never withdrawn.
* **VI.** ``AlertEvent.vi`` is the VI state (``Tick.state`` ``static_vi`` / ``dynamic_vi``) of
  the trigger trade, else of the latest VI auction print between the base and the trigger, else
  ``""``: the move went through (and usually triggered) that VI.
* **Late alerts.** Every alert carries ``source`` (of its trigger trade), ``delay_s`` (detection
  wall clock minus trigger trade time, ≥ 0, 0.1 s) and ``late``: true when the trigger trade
  came from back-fill or the journal, or ``delay_s`` > :data:`LATE_AFTER_S` (5 s: KIS stamps
  trades to the second and REST polling adds 1–3 s, so a live or polled alert stays below it).

Alert JSON (``AlertEvent.to_json()``; what ``RedisPublisher`` publishes and ``kis-desk alerts``
prints, one object per line)::

    {"type":"alert","alert_id":"005930:20240102:up:1:20","stock_code":"005930",
     "stock_name":"삼성전자","direction":"up","change_pct":5.07,"base_price":71000,
     "base_time":"2024-01-02T09:00:00+09:00","trigger_price":74600,
     "trigger_time":"2024-01-02T09:00:30+09:00","trigger_cum_volume":20,
     "detected_at":"2024-01-02T00:00:05+00:00","window_seconds":60.0,"threshold_pct":5.0,"step":1,
     "late":false,"delay_s":0.0,"source":"ws","kind":"move","muted":false,"vi":""}

``kind`` is "level" for price-level alerts (engine.price_levels); ``muted`` is true for an alert
raised while its symbol (or everything) was muted (engine.alert_rules): stored and published as
any other, not sounded or bannered by the desktop.

``alert_id`` = ``<code>:<YYYYMMDD>:<up|down>:<step>:<trigger cum_volume>`` is deterministic, so
a consumer can dedupe on it; ``change_pct`` is signed (negative for "down"), exact move rounded
half-up to 2 dp; base = window minimum (up) / maximum (down); times are ISO 8601 (trade times in
KST, ``detected_at`` wall clock in UTC).

Cost: amortised O(1) per in-order trade (monotonic min/max deques over the trades inside the
window, plus an index into the day's history that finds the standing trade when the window's
start moves; integer comparisons only on the hot path; exact ``Decimal`` only for the
``change_pct`` of an alert) plus one list append (the day's history). Late trades cost
O(log n) to place plus the re-evaluated stretch (typically the late trades and one window
after them). Memory: one ``(ts, price, cum, source,
state, cum - volume)`` tuple per accepted trade of the day (about 150 bytes), freed at the next
business date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime

from ..defaults import DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS
from ..core.events import AlertEvent
from ..core.ticks import Tick
from .detector_alerts import LATE_AFTER_S, SOURCE_JOURNAL, AlertBook, now_utc
from .detector_late import LateTrades
from .detector_kernel import COMPILED_ONE, COMPILED_PROCESS, STATE, bind
from .detector_window import DOWN, UP, Params, SymbolState, rebuild_window, restart_window


class MoveDetector(AlertBook, LateTrades):
    """Turns trades, in any arrival order, into :class:`AlertEvent` s (see the module docstring).

    Not thread-safe; call it from one thread (the engine's event loop).
    """

    def __init__(
        self,
        threshold_pct: float = DEFAULT_THRESHOLD_PCT,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        overrides: dict[str, tuple[float, float]] | None = None,
        names: Callable[[str], str] | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self._default = Params.of(threshold_pct, window_seconds)
        self._overrides: dict[str, Params] = {
            code: Params.of(pct, win) for code, (pct, win) in (overrides or {}).items()
        }
        self._names = names
        self._clock = clock
        self._states: dict[str, SymbolState] = {}
        self._pending: dict[str, list[Tick]] = {}       # late trades of the current batch
        self._ids: set[str] = set()                     # alert ids raised (or seeded)
        self._seeded: dict[tuple[str, date], list[tuple[str, int, int]]] = {}
        self._floor: date | None = None                 # trades of earlier days are ignored
        self.processed = 0
        self.replayed = 0
        self.out_of_order = 0
        self.late = 0
        self.alerts = 0
        self.alerts_late = 0
        self.suppressed = 0
        self.invalid = 0

    # -- configuration -------------------------------------------------------------------------

    @property
    def threshold_pct(self) -> float:
        return self._default.threshold_pct

    @property
    def window_seconds(self) -> float:
        return self._default.window_seconds

    def params_for(self, code: str) -> tuple[float, float]:
        """(threshold %, window seconds) in force for ``code``."""
        p = self._overrides.get(code, self._default)
        return p.threshold_pct, p.window_seconds

    def set_override(self, code: str, pct: float, window: float) -> None:
        """Own threshold/window for one symbol. Its window and episodes restart (the old
        window was sized and judged for other parameters); replay/out-of-order marks stay."""
        self._overrides[code] = Params.of(pct, window)
        self._restart(code)

    def clear_override(self, code: str) -> None:
        if self._overrides.pop(code, None) is not None:
            self._restart(code)

    def reconfigure(self, threshold_pct: float, window_seconds: float,
                    overrides: dict[str, tuple[float, float]] | None = None) -> None:
        """New default threshold/window (and per-symbol overrides) while running.

        What is kept: the day's trade history, replay marks and every alert raised (ids and
        episode records), so nothing is raised twice. Each symbol whose parameters changed gets
        its window rebuilt from that history over the new window length, and its episodes set
        to the level the current move already reaches under the new threshold: the change
        applies to moves from now on (lowering the threshold does not raise a burst of alerts
        for moves already under way, but the next crossing of the new threshold alerts). Late
        trades merged afterwards are judged with the new parameters.
        """
        new_default = Params.of(threshold_pct, window_seconds)
        new_overrides = {code: Params.of(pct, win) for code, (pct, win) in (overrides or {}).items()}
        old = {code: self._overrides.get(code, self._default) for code in self._states}
        self._default, self._overrides = new_default, new_overrides
        for code, before in old.items():
            after = self._overrides.get(code, self._default)
            if after != before:
                rebuild_window(self._states[code], after)

    def roll_over(self, day: date) -> None:
        """A new business date: forget every symbol's state, alert ids and seeds of earlier
        days (memory stays one day's worth), and ignore trades of earlier days from now on
        (they are stored, but they never alert into the new day)."""
        self._floor = day
        for code in [c for c, st in self._states.items() if st.day < day]:
            del self._states[code]
            self._pending.pop(code, None)
        tag = f"{day:%Y%m%d}"
        self._ids = {i for i in self._ids if i.split(":")[1] >= tag}
        self._seeded = {k: v for k, v in self._seeded.items() if k[1] >= day}

    def last_trade(self, code: str) -> tuple[date, int, datetime] | None:
        """(business date, cumulative volume, time) of the newest trade accepted for ``code``
        (where a restarted feed resumes)."""
        st = self._states.get(code)
        if st is None or st.last_ts is None:
            return None
        return st.day, st.last_cum, st.last_ts

    def _restart(self, code: str) -> None:
        st = self._states.get(code)
        if st is not None:
            restart_window(st)

    def reset(self, code: str | None = None) -> None:
        """Forget everything about ``code`` (or every symbol), including replay marks and the
        alerts raised (seeded ones too)."""
        if code is None:
            self._states.clear()
            self._ids.clear()
            self._seeded.clear()
        else:
            self._states.pop(code, None)
            self._ids = {i for i in self._ids if not i.startswith(code + ":")}
            for key in [k for k in self._seeded if k[0] == code]:
                del self._seeded[key]

    def codes(self) -> set[str]:
        """Symbols that traded (any trade received) since the detector started."""
        return set(self._states)

    def stats(self) -> dict[str, int]:
        return {"processed": self.processed, "replayed": self.replayed,
                "out_of_order": self.out_of_order, "invalid": self.invalid,
                "late": self.late, "alerts": self.alerts, "alerts_late": self.alerts_late,
                "suppressed": self.suppressed,
                "symbols": len(self._states)}

    # -- hot path --------------------------------------------------------------------------------

    def _process_python(self, ticks: Iterable[Tick]) -> list[AlertEvent]:
        """Feed trades (any order); returns the alerts they raised, in order of detection.

        ``process`` is this or its compiled twin (the same loop in C, detector_kernel)."""
        out: list[AlertEvent] = []
        one = self._one
        pending = self._pending
        states = self._states
        for t in ticks:
            # late trades of a symbol wait until its next in-order trade (or the batch's end)
            # and are merged together: merging each as it comes would judge the windows on a
            # part of the stretch they fill and alert a move whose start is still on its way
            # (the same move alerted twice across a restart's back-fill)
            if pending and t.stock_code in pending:
                st = states.get(t.stock_code)
                if st is None or t.cum_volume > st.last_cum or t.timestamp.date() != st.day:
                    self._merge(t.stock_code, out)
            r = one(t)
            if r:
                out.extend(r)
        if pending:
            for code in list(pending):
                self._merge(code, out)
        return out

    process = COMPILED_PROCESS if COMPILED_PROCESS is not None else _process_python

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        return self.process((tick,))

    #: per-symbol state class: SymbolState, or its compiled twin (detector_kernel)
    _state_class: type = STATE

    def _one_python(self, tick: Tick) -> list[AlertEvent] | None:
        """One trade in exchange order (the hot path); ``_one`` is this or its compiled twin."""
        code = tick.stock_code
        ts = tick.timestamp
        st = self._states.get(code)
        # Hot path: KIS stamps trades to the second and timestamps are shared objects
        # (records.kst_timestamp), so most trades carry the very object of the previous one:
        # same day, not older, same window cutoff; skip the datetime arithmetic then.
        same_ts = st is not None and ts is st.last_ts
        if not same_ts and (st is None or (st.last_ts is not None and ts.date() != st.day)):
            day = ts.date()
            if (st is not None and day < st.day) or (self._floor is not None and day < self._floor):
                self.out_of_order += 1
                return None
            st = self._states[code] = self._new_state(code, day)
        cum = tick.cum_volume
        if cum <= st.last_cum:             # seen already, or late: merged after this trade
            self._pending.setdefault(code, []).append(tick)
            return None
        if not same_ts and st.last_ts is not None and ts < st.last_ts:
            self.out_of_order += 1
            st.rejected.add(cum)
            return None
        price = tick.price
        if price <= 0:                     # not a trade price; never a base
            self.invalid += 1
            return None
        st.last_ts = ts
        st.last_cum = cum
        self.processed += 1

        entry = (ts, price, cum, tick.source, tick.state, cum - tick.volume)
        hist = st.hist
        hist.append(entry)
        mins, maxs = st.mins, st.maxs
        while mins and mins[-1][1] >= price:
            mins.pop()
        mins.append(entry)
        while maxs and maxs[-1][1] <= price:
            maxs.pop()
        maxs.append(entry)

        prm = self._overrides.get(code, self._default) if self._overrides else self._default
        if ts is st.cut_ts and prm is st.cut_prm:
            cutoff = st.cutoff
        else:
            cutoff = st.cutoff = ts - prm.window
            st.cut_ts = ts
            st.cut_prm = prm
            lo = st.lo
            if hist[lo][0] <= cutoff:      # never runs off: the newest entry is at ts > cutoff
                lo += 1
                while hist[lo][0] <= cutoff:
                    lo += 1
                st.lo = lo
                prev = hist[lo - 1]          # stands only with no trade missing up to the window
                st.stand = prev if hist[lo][5] == prev[2] else None
        while mins[0][0] <= cutoff:        # never empties: the newest entry is at ts > cutoff
            mins.popleft()
        while maxs[0][0] <= cutoff:
            maxs.popleft()

        h, p = prm.h, prm.p
        alerts: list[AlertEvent] | None = None
        stand = st.stand

        low = mins[0]
        if stand is not None and stand[1] < low[1]:
            low = stand                    # the price that stood at the window's start
        base = low[1]
        rise = (price - base) * h          # compare with k·p·base
        if st.up_level and 2 * rise < p * base:
            st.up_level = 0
            st.up_since = -1
            st.log.append((cum, 0, st.down_level, -1, st.down_since))
        if rise >= (st.up_level + 1) * p * base:
            if not st.up_level:
                st.up_since = cum
            level = rise // (p * base)
            st.up_level = level
            st.log.append((cum, level, st.down_level, st.up_since, st.down_since))
            a = self._raise(st, code, entry, UP, low, level, st.up_since, prm)
            if a is not None:
                alerts = [a]

        high = maxs[0]
        if stand is not None and stand[1] > high[1]:
            high = stand
        base = high[1]
        fall = (base - price) * h
        if st.down_level and 2 * fall < p * base:
            st.down_level = 0
            st.down_since = -1
            st.log.append((cum, st.up_level, 0, st.up_since, -1))
        if fall >= (st.down_level + 1) * p * base:
            if not st.down_level:
                st.down_since = cum
            level = fall // (p * base)
            st.down_level = level
            st.log.append((cum, st.up_level, level, st.up_since, st.down_since))
            a = self._raise(st, code, entry, DOWN, high, level, st.down_since, prm)
            if a is not None:
                if alerts is None:
                    alerts = [a]
                else:
                    alerts.append(a)
        return alerts

    _one = COMPILED_ONE if COMPILED_ONE is not None else _one_python


bind(MoveDetector._one_python)

__all__ = ["DEFAULT_THRESHOLD_PCT", "DEFAULT_WINDOW_SECONDS", "DOWN", "LATE_AFTER_S", "SOURCE_JOURNAL",
           "UP", "MoveDetector", "now_utc"]
