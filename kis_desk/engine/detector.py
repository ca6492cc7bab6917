"""Sudden-move detector: a price move of ≥ threshold % within a sliding window of trade time.

Rules (the tests in ``tests/test_detector*.py`` pin every one of them):

* **Window.** Per symbol, over *exchange* trade time (``Tick.timestamp``), never wall clock, so
  back-filled and replayed sessions alert exactly like live ones. With the latest accepted trade
  at time ``T``, the window holds the accepted trades with ``T - window < timestamp <= T``: the
  lower bound is **exclusive**. KIS stamps trades to the second, so a 60 s window ending at
  09:01:00 holds 09:00:01 … 09:01:00 (60 distinct seconds) and not 09:00:00.
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
     "late":false,"delay_s":0.0,"source":"ws","kind":"move","muted":false}

``kind`` is "level" for price-level alerts (engine.price_levels); ``muted`` is true for an alert
raised while its symbol (or everything) was muted (engine.alert_rules): stored and published as
any other, not sounded or bannered by the desktop.

``alert_id`` = ``<code>:<YYYYMMDD>:<up|down>:<step>:<trigger cum_volume>`` is deterministic, so
a consumer can dedupe on it; ``change_pct`` is signed (negative for "down"), exact move rounded
half-up to 2 dp; base = window minimum (up) / maximum (down); times are ISO 8601 (trade times in
KST, ``detected_at`` wall clock in UTC).

Cost: amortised O(1) per in-order trade (monotonic min/max deques; integer comparisons only on
the hot path; exact ``Decimal`` only for the ``change_pct`` of an alert) plus one list append
(the day's history). Late trades cost O(log n) to place plus the re-evaluated stretch
(typically the late trades and one window after them). Memory: one ``(ts, price, cum, source)``
tuple per accepted trade of the day (about 130 bytes), freed at the next business date.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from ..defaults import DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS
from ..core.events import AlertEvent
from ..core.ticks import SOURCE_BACKFILL, Tick

SOURCE_JOURNAL = "journal"      # trades replayed from the writer's journal

UP = "up"
DOWN = "down"
_CENT = Decimal("0.01")


def now_utc() -> datetime:
    """Wall clock, UTC-aware (``AlertEvent.detected_at``)."""
    return datetime.now(timezone.utc)


def _ratio(pct: float) -> tuple[int, int]:
    """``pct`` as an exact fraction ``num/den`` of its decimal text (4.99 → 499/100)."""
    d = Decimal(str(pct))
    if not d.is_finite() or d <= 0:
        raise ValueError(f"threshold must be a positive percentage, got {pct!r}")
    num, den = d.as_integer_ratio()
    return num, den


@dataclass(frozen=True, slots=True)
class _Params:
    threshold_pct: float
    window_seconds: float
    window: timedelta
    p: int          # threshold % = p / q exactly
    h: int          # 100 * q: a move of price - base ≥ k·threshold ⇔ (price-base)·h ≥ k·p·base

    @classmethod
    def of(cls, pct: float, window_seconds: float) -> _Params:
        if not window_seconds > 0:
            raise ValueError(f"window must be positive, got {window_seconds!r}")
        p, q = _ratio(pct)
        return cls(float(pct), float(window_seconds), timedelta(seconds=window_seconds), p, 100 * q)


class _SymbolState:
    """Window, episode and history state of one symbol for one business date."""

    __slots__ = ("day", "last_ts", "last_cum", "mins", "maxs", "up_level", "down_level",
                 "cut_ts", "cut_prm", "cutoff", "hist", "rejected", "log", "emitted",
                 "up_since", "down_since", "held")

    def __init__(self, day: date) -> None:
        self.day = day
        self.last_ts: datetime | None = None
        self.last_cum = -1
        # window cutoff (cut_ts - window of cut_prm), kept while trades share a timestamp
        self.cut_ts: datetime | None = None
        self.cut_prm: _Params | None = None
        self.cutoff: datetime | None = None
        # Entries (timestamp, price, cum_volume, source); mins: strictly increasing prices
        # front→back, maxs: strictly decreasing. The front is the window extreme (its latest
        # occurrence).
        self.mins: deque[_Entry] = deque()
        self.maxs: deque[_Entry] = deque()
        self.up_level = 0     # highest step alerted in the current up episode (0 = armed)
        self.down_level = 0
        self.up_since = -1    # cum_volume of the trade that opened the current up episode
        self.down_since = -1
        # The day's accepted trades in exchange (cum_volume) order; timestamps non-decreasing.
        self.hist: list[_Entry] = []
        self.rejected: set[int] = set()          # cum_volumes of out-of-order trades
        # Level changes: (cum_volume, up_level, down_level, up_since, down_since) after that
        # trade; the state before any trade is the last entry with a lower cum_volume.
        self.log: list[tuple[int, int, int, int, int]] = []
        # Alerts raised for this symbol and day: (direction, trigger cum_volume, step).
        self.emitted: list[tuple[str, int, int]] = []
        # Alerts not raised because an alert of their episode was: decided again when late
        # trades split the episode. (trigger, direction, base, step, since, params)
        self.held: list[tuple[_Entry, str, _Entry, int, int, _Params]] = []


_Entry = tuple[datetime, int, int, str]
_LATE_SOURCES = frozenset({SOURCE_BACKFILL, SOURCE_JOURNAL})
LATE_AFTER_S = 5.0


def _cum_of(e: _Entry) -> int:
    return e[2]


def _ts_of(e: _Entry) -> datetime:
    return e[0]


def _log_cum(e: tuple[int, int, int, int, int]) -> int:
    return e[0]


class MoveDetector:
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
        self._default = _Params.of(threshold_pct, window_seconds)
        self._overrides: dict[str, _Params] = {
            code: _Params.of(pct, win) for code, (pct, win) in (overrides or {}).items()
        }
        self._names = names
        self._clock = clock
        self._states: dict[str, _SymbolState] = {}
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
        self._overrides[code] = _Params.of(pct, window)
        self._restart_window(code)

    def clear_override(self, code: str) -> None:
        if self._overrides.pop(code, None) is not None:
            self._restart_window(code)

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
        new_default = _Params.of(threshold_pct, window_seconds)
        new_overrides = {code: _Params.of(pct, win) for code, (pct, win) in (overrides or {}).items()}
        old = {code: self._overrides.get(code, self._default) for code in self._states}
        self._default, self._overrides = new_default, new_overrides
        for code, before in old.items():
            after = self._overrides.get(code, self._default)
            if after != before:
                self._rearm_from_history(code, after)

    def _rearm_from_history(self, code: str, prm: _Params) -> None:
        st = self._states[code]
        st.mins.clear()
        st.maxs.clear()
        st.cut_ts = None
        if not st.hist:
            return
        last = st.hist[-1]
        cutoff = last[0] - prm.window
        first = bisect_right(st.hist, cutoff, key=_ts_of)
        for e in st.hist[first:]:
            while st.mins and st.mins[-1][1] >= e[1]:
                st.mins.pop()
            st.mins.append(e)
            while st.maxs and st.maxs[-1][1] <= e[1]:
                st.maxs.pop()
            st.maxs.append(e)
        price, cum = last[1], last[2]
        low, high = st.mins[0][1], st.maxs[0][1]
        st.up_level = (price - low) * prm.h // (prm.p * low)
        st.down_level = (high - price) * prm.h // (prm.p * high)
        st.up_since = cum if st.up_level else -1
        st.down_since = cum if st.down_level else -1
        st.log.append((cum, st.up_level, st.down_level, st.up_since, st.down_since))

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

    def _restart_window(self, code: str) -> None:
        st = self._states.get(code)
        if st is not None:
            st.mins.clear()
            st.maxs.clear()
            st.up_level = st.down_level = 0
            st.up_since = st.down_since = -1
            st.cut_ts = None
            st.log.append((st.last_cum, 0, 0, -1, -1))

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

    def seed(self, alert_ids: Iterable[str]) -> int:
        """Alerts already raised (an earlier run's rows in the alerts table): never raised
        again, and they count for the episode rule. Returns how many ids were understood."""
        n = 0
        for aid in alert_ids:
            try:
                code, day_text, direction, step, cum = aid.split(":")
                day = datetime.strptime(day_text, "%Y%m%d").date()
                record = (direction, int(cum), int(step))
            except ValueError:
                continue
            if aid in self._ids:
                continue
            self._ids.add(aid)
            st = self._states.get(code)
            if st is not None and st.day == day:
                st.emitted.append(record)
            else:
                self._seeded.setdefault((code, day), []).append(record)
            n += 1
        return n

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

    def process(self, ticks: Iterable[Tick]) -> list[AlertEvent]:
        """Feed trades (any order); returns the alerts they raised, in order of detection."""
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

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        return self.process((tick,))

    def _one(self, tick: Tick) -> list[AlertEvent] | None:
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

        entry = (ts, price, cum, tick.source)
        st.hist.append(entry)
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
        while mins[0][0] <= cutoff:        # never empties: the newest entry is at ts > cutoff
            mins.popleft()
        while maxs[0][0] <= cutoff:
            maxs.popleft()

        h, p = prm.h, prm.p
        alerts: list[AlertEvent] | None = None

        base = mins[0][1]
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
            a = self._raise(st, code, entry, UP, mins[0], level, st.up_since, prm)
            if a is not None:
                alerts = [a]

        base = maxs[0][1]
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
            a = self._raise(st, code, entry, DOWN, maxs[0], level, st.down_since, prm)
            if a is not None:
                if alerts is None:
                    alerts = [a]
                else:
                    alerts.append(a)
        return alerts

    def _new_state(self, code: str, day: date) -> _SymbolState:
        st = _SymbolState(day)
        seeded = self._seeded.pop((code, day), None)
        if seeded:
            st.emitted.extend(seeded)
        return st

    # -- late trades -----------------------------------------------------------------------------

    def _merge(self, code: str, out: list[AlertEvent]) -> None:
        """Merge the pending late trades of ``code`` into its history and evaluate again the
        stretch they change; appends the alerts found that were not raised before to ``out``."""
        late = self._pending.pop(code)
        st = self._states[code]
        hist = st.hist
        late.sort(key=_tick_cum)
        fresh: list[Tick] = []
        for t in late:
            if t.timestamp.date() != st.day:    # an earlier day (a later one resets the state)
                self.out_of_order += 1
                continue
            cum = t.cum_volume
            if cum in st.rejected or (fresh and fresh[-1].cum_volume == cum):
                self.replayed += 1
                continue
            i = bisect_left(hist, cum, key=_cum_of)
            if i < len(hist) and hist[i][2] == cum:
                self.replayed += 1
                continue
            if t.price <= 0:
                self.invalid += 1
                continue
            fresh.append(t)
        if not fresh:
            return
        # Merge the late trades with the tail of the history from the first one on; keep only
        # trades not older than their predecessor (exchange order; see "Trade order").
        start = bisect_left(hist, fresh[0].cum_volume, key=_cum_of)
        tail = hist[start:]
        merged: list[_Entry] = []
        newest = hist[start - 1][0] if start else None
        last_new = -1
        ti = 0
        for t in fresh:
            cum = t.cum_volume
            while ti < len(tail) and tail[ti][2] < cum:
                e = tail[ti]
                ti += 1
                if newest is not None and e[0] < newest:
                    st.rejected.add(e[2])      # an old trade now known to be out of order
                    self.out_of_order += 1
                    continue
                merged.append(e)
                newest = e[0]
            if newest is not None and t.timestamp < newest:
                st.rejected.add(cum)
                self.out_of_order += 1
                continue
            merged.append((t.timestamp, t.price, cum, t.source))
            newest = t.timestamp
            last_new = start + len(merged) - 1
            self.late += 1
            self.processed += 1
        for e in tail[ti:]:
            if newest is not None and e[0] < newest:
                st.rejected.add(e[2])
                self.out_of_order += 1
                continue
            merged.append(e)
            newest = e[0]
        hist[start:] = merged
        if last_new >= 0:
            c0 = hist[start][2]
            held, st.held = st.held, []
            reached = self._evaluate(st, code, start, last_new, out)
            # the held alerts inside the evaluated stretch were found (or not) again there
            held = [x for x in held if not c0 <= x[0][2] <= reached]
            for trigger, direction, base_e, step, since, prm in held:
                until = self._episode_end(st.log, direction, since)
                a = self._raise(st, code, trigger, direction, base_e, step, since, prm, until)
                if a is not None:
                    out.append(a)
        if hist:
            st.last_ts, st.last_cum = hist[-1][0], hist[-1][2]
        st.cut_ts = None

    def _evaluate(self, st: _SymbolState, code: str, i0: int, last_new: int,
                  out: list[AlertEvent]) -> int:
        """Evaluate trades ``hist[i0:]`` again (the history changed at ``i0``) until the state
        equals the earlier evaluation with no changed trade left in the window. Returns the
        cum_volume of the last trade evaluated."""
        hist, log = st.hist, st.log
        prm = self._overrides.get(code, self._default) if self._overrides else self._default
        h, p, window = prm.h, prm.p, prm.window
        c0 = hist[i0][2]
        j = bisect_left(log, c0, key=_log_cum)
        up, down, up_since, down_since = log[j - 1][1:] if j else (0, 0, -1, -1)
        old = log[j:]
        del log[j:]
        o_up, o_down, o_us, o_ds = up, down, up_since, down_since
        oi = 0
        first = bisect_right(hist, hist[i0][0] - window, 0, i0, key=_ts_of)
        mins: deque[_Entry] = deque()
        maxs: deque[_Entry] = deque()
        for e in hist[first:i0]:
            price = e[1]
            while mins and mins[-1][1] >= price:
                mins.pop()
            mins.append(e)
            while maxs and maxs[-1][1] <= price:
                maxs.pop()
            maxs.append(e)
        newest_changed = hist[last_new][0]
        found: list[tuple[str, int, _Entry, _Entry, int]] = []    # (dir, since, trigger, base, step)
        converged_at = -1
        for idx in range(i0, len(hist)):
            e = hist[idx]
            ts, price, cum, _ = e
            while oi < len(old) and old[oi][0] <= cum:
                _, o_up, o_down, o_us, o_ds = old[oi]
                oi += 1
            while mins and mins[-1][1] >= price:
                mins.pop()
            mins.append(e)
            while maxs and maxs[-1][1] <= price:
                maxs.pop()
            maxs.append(e)
            cutoff = ts - window
            while mins[0][0] <= cutoff:
                mins.popleft()
            while maxs[0][0] <= cutoff:
                maxs.popleft()
            changed = False
            base = mins[0][1]
            rise = (price - base) * h
            if up and 2 * rise < p * base:
                up, up_since, changed = 0, -1, True
            if rise >= (up + 1) * p * base:
                if not up:
                    up_since = cum
                up = rise // (p * base)
                changed = True
                found.append((UP, up_since, e, mins[0], up))
            base = maxs[0][1]
            fall = (base - price) * h
            if down and 2 * fall < p * base:
                down, down_since, changed = 0, -1, True
            if fall >= (down + 1) * p * base:
                if not down:
                    down_since = cum
                down = fall // (p * base)
                changed = True
                found.append((DOWN, down_since, e, maxs[0], down))
            if changed:
                log.append((cum, up, down, up_since, down_since))
            if (idx > last_new and cutoff >= newest_changed
                    and (up, down, up_since, down_since) == (o_up, o_down, o_us, o_ds)):
                converged_at = idx
                break
        if converged_at >= 0:
            log.extend(x for x in old if x[0] > hist[converged_at][2])
        else:
            st.mins, st.maxs = mins, maxs
            st.up_level, st.down_level, st.up_since, st.down_since = up, down, up_since, down_since
        for direction, since, trigger, base_e, step in found:
            until = self._episode_end(log, direction, since)
            a = self._raise(st, code, trigger, direction, base_e, step, since, prm, until)
            if a is not None:
                out.append(a)
        return hist[converged_at][2] if converged_at >= 0 else hist[-1][2]

    @staticmethod
    def _episode_end(log: list[tuple[int, int, int, int, int]], direction: str,
                     since: int) -> int | None:
        """cum_volume of the trade that re-armed the episode opened at ``since`` (None: open)."""
        k = 1 if direction == UP else 2
        j = bisect_right(log, since, key=_log_cum)
        for entry in log[j:]:
            if entry[k] == 0:
                return entry[0]
        return None

    # -- alerts ----------------------------------------------------------------------------------

    def _raise(self, st: _SymbolState, code: str, trigger: _Entry, direction: str,
               base: _Entry, step: int, since: int, prm: _Params,
               until: int | None = None) -> AlertEvent | None:
        """The alert, unless raised already: same id, or same direction and episode with a
        step at least as high (``since`` ≤ trigger < ``until``)."""
        ts, price, cum, source = trigger
        alert_id = f"{code}:{ts:%Y%m%d}:{direction}:{step}:{cum}"
        if alert_id in self._ids:
            self.suppressed += 1
            return None
        for d, c, s in st.emitted:
            if d == direction and s >= step and c >= since and (until is None or c < until):
                self.suppressed += 1
                st.held.append((trigger, direction, base, step, since, prm))
                return None
        self._ids.add(alert_id)
        st.emitted.append((direction, cum, step))
        self.alerts += 1
        base_time, base_price = base[0], base[1]
        change = (Decimal(price - base_price) * 100 / Decimal(base_price)).quantize(
            _CENT, rounding=ROUND_HALF_UP)
        name = ""
        if self._names is not None:
            try:
                name = self._names(code) or ""
            except Exception:   # a name lookup must never cost an alert
                name = ""
        detected = self._clock()
        delay = max(0.0, round((detected - ts).total_seconds(), 1))
        late = source in _LATE_SOURCES or delay > LATE_AFTER_S
        if late:
            self.alerts_late += 1
        return AlertEvent(
            alert_id=alert_id,
            stock_code=code,
            stock_name=name,
            direction=direction,
            change_pct=float(change),
            base_price=base_price,
            base_time=base_time,
            trigger_price=price,
            trigger_time=ts,
            trigger_cum_volume=cum,
            detected_at=detected,
            window_seconds=prm.window_seconds,
            threshold_pct=prm.threshold_pct,
            step=int(step),
            late=late,
            delay_s=delay,
            source=source,
        )


def _tick_cum(t: Tick) -> int:
    return t.cum_volume


__all__ = ["DOWN", "LATE_AFTER_S", "UP", "MoveDetector", "now_utc"]
