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
* **Trade order.** Feed trades in time order (live, back-filled and polled alike). For one
  symbol and business date, a trade is ignored (no window update, no alert) when it is a
  *replay* (``cum_volume`` ≤ the highest cumulative volume processed — this covers the exact
  ``(code, date, cum_volume)`` duplicate) or *out of order* (timestamp older than the latest
  processed trade). Equal timestamps are in order (several trades per second). A trade of an
  earlier business date than the symbol's current one is out of order; a later one resets the
  symbol's state (new day, new window, re-armed).

Alert JSON (``AlertEvent.to_json()``; what ``RedisPublisher`` publishes and ``kis-desk alerts``
prints, one object per line)::

    {"type":"alert","alert_id":"005930:20240102:up:1:20","stock_code":"005930",
     "stock_name":"삼성전자","direction":"up","change_pct":5.07,"base_price":71000,
     "base_time":"2024-01-02T09:00:00+09:00","trigger_price":74600,
     "trigger_time":"2024-01-02T09:00:30+09:00","trigger_cum_volume":20,
     "detected_at":"2024-01-02T00:00:05+00:00","window_seconds":60.0,"threshold_pct":5.0,"step":1}

``alert_id`` = ``<code>:<YYYYMMDD>:<up|down>:<step>:<trigger cum_volume>`` is deterministic, so
a consumer can dedupe on it; ``change_pct`` is signed (negative for "down"), exact move rounded
half-up to 2 dp; base = window minimum (up) / maximum (down); times are ISO 8601 (trade times in
KST, ``detected_at`` wall clock in UTC).

Cost: amortised O(1) per trade (monotonic min/max deques; integer comparisons only on the hot
path; exact ``Decimal`` only for the ``change_pct`` of an alert).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from ..core.events import AlertEvent
from ..core.ticks import Tick

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
    """Window and alert state of one symbol for one business date."""

    __slots__ = ("day", "last_ts", "last_cum", "mins", "maxs", "up_level", "down_level",
                 "cut_ts", "cut_prm", "cutoff")

    def __init__(self, day: date) -> None:
        self.day = day
        self.last_ts: datetime | None = None
        self.last_cum = -1
        # window cutoff (cut_ts - window of cut_prm), kept while trades share a timestamp
        self.cut_ts: datetime | None = None
        self.cut_prm: _Params | None = None
        self.cutoff: datetime | None = None
        # (timestamp, price, cum_volume); mins: strictly increasing prices front→back,
        # maxs: strictly decreasing. The front is the window extreme (its latest occurrence).
        self.mins: deque[tuple[datetime, int, int]] = deque()
        self.maxs: deque[tuple[datetime, int, int]] = deque()
        self.up_level = 0     # highest step alerted in the current up episode (0 = armed)
        self.down_level = 0


class MoveDetector:
    """Turns time-ordered trades into :class:`AlertEvent` s (see the module docstring).

    Not thread-safe; call it from one thread (the engine's event loop).
    """

    def __init__(
        self,
        threshold_pct: float = 5.0,
        window_seconds: float = 60.0,
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
        self.processed = 0
        self.replayed = 0
        self.out_of_order = 0
        self.alerts = 0
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

    def _restart_window(self, code: str) -> None:
        st = self._states.get(code)
        if st is not None:
            st.mins.clear()
            st.maxs.clear()
            st.up_level = st.down_level = 0

    def reset(self, code: str | None = None) -> None:
        """Forget everything about ``code`` (or every symbol), including replay marks."""
        if code is None:
            self._states.clear()
        else:
            self._states.pop(code, None)

    def stats(self) -> dict[str, int]:
        return {"processed": self.processed, "replayed": self.replayed,
                "out_of_order": self.out_of_order, "invalid": self.invalid,
                "alerts": self.alerts,
                "symbols": len(self._states)}

    # -- hot path --------------------------------------------------------------------------------

    def process(self, ticks: Iterable[Tick]) -> list[AlertEvent]:
        """Feed trades in time order; returns the alerts they raised, in order."""
        out: list[AlertEvent] = []
        on_tick = self.on_tick
        for t in ticks:
            r = on_tick(t)
            if r:
                out.extend(r)
        return out

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        code = tick.stock_code
        ts = tick.timestamp
        st = self._states.get(code)
        # Hot path: KIS stamps trades to the second and timestamps are shared objects
        # (records.kst_timestamp), so most trades carry the very object of the previous one:
        # same day, not older, same window cutoff; skip the datetime arithmetic then.
        same_ts = st is not None and ts is st.last_ts
        if not same_ts and (st is None or (st.last_ts is not None and ts.date() != st.day)):
            day = ts.date()
            if st is not None and day < st.day:
                self.out_of_order += 1
                return []
            st = self._states[code] = _SymbolState(day)
        cum = tick.cum_volume
        if cum <= st.last_cum:             # seen already (socket/back-fill overlap) or stale
            self.replayed += 1
            return []
        if not same_ts and st.last_ts is not None and ts < st.last_ts:
            self.out_of_order += 1
            return []
        price = tick.price
        if price <= 0:                     # not a trade price; never a base
            self.invalid += 1
            return []
        st.last_ts = ts
        st.last_cum = cum
        self.processed += 1

        entry = (ts, price, cum)
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
        if rise >= (st.up_level + 1) * p * base:
            level = rise // (p * base)
            st.up_level = level
            alerts = [self._alert(tick, UP, mins[0], level, prm)]

        base = maxs[0][1]
        fall = (base - price) * h
        if st.down_level and 2 * fall < p * base:
            st.down_level = 0
        if fall >= (st.down_level + 1) * p * base:
            level = fall // (p * base)
            st.down_level = level
            a = self._alert(tick, DOWN, maxs[0], level, prm)
            if alerts is None:
                alerts = [a]
            else:
                alerts.append(a)
        return alerts or []

    def _alert(self, tick: Tick, direction: str, base: tuple[datetime, int, int], step: int,
               prm: _Params) -> AlertEvent:
        self.alerts += 1
        base_time, base_price, _ = base
        code = tick.stock_code
        change = (Decimal(tick.price - base_price) * 100 / Decimal(base_price)).quantize(
            _CENT, rounding=ROUND_HALF_UP)
        name = ""
        if self._names is not None:
            try:
                name = self._names(code) or ""
            except Exception:   # a name lookup must never cost an alert
                name = ""
        return AlertEvent(
            alert_id=f"{code}:{tick.timestamp:%Y%m%d}:{direction}:{step}:{tick.cum_volume}",
            stock_code=code,
            stock_name=name,
            direction=direction,
            change_pct=float(change),
            base_price=base_price,
            base_time=base_time,
            trigger_price=tick.price,
            trigger_time=tick.timestamp,
            trigger_cum_volume=tick.cum_volume,
            detected_at=self._clock(),
            window_seconds=prm.window_seconds,
            threshold_pct=prm.threshold_pct,
            step=int(step),
        )


__all__ = ["DOWN", "UP", "MoveDetector", "now_utc"]
