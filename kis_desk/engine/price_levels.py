"""Price-level alerts (목표가): "tell me once when 005930 trades at or above 75,000 / at or
below 68,000".

On the hot path the cost is one dict lookup per trade, and two integer comparisons for a
symbol with levels. A level fires once and is then removed (the collector persists the removal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from ..core.events import AlertEvent
from ..core.ticks import Tick

_CENT = Decimal("0.01")


class PriceLevelWatcher:
    """Per symbol two thresholds: ``above`` (fires when price ≥ above, direction "up") and
    ``below`` (price ≤ below, "down"). Not thread-safe: the engine's loop only."""

    def __init__(self, names: Callable[[str], str] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        from .detector import now_utc

        self._levels: dict[str, list[int | None]] = {}
        self._names = names
        self._clock = clock or now_utc
        self.fired = 0

    def set_levels(self, levels: Mapping[str, tuple[int | None, int | None]]) -> None:
        self._levels = {c: [a, b] for c, (a, b) in levels.items() if a is not None or b is not None}

    def levels(self) -> dict[str, tuple[int | None, int | None]]:
        return {c: (a, b) for c, (a, b) in self._levels.items()}

    def process(self, ticks: Iterable[Tick]) -> list[AlertEvent]:
        levels = self._levels
        if not levels:
            return []
        out: list[AlertEvent] = []
        for t in ticks:
            lv = levels.get(t.stock_code)
            if lv is None:
                continue
            above, below = lv
            price = t.price
            if above is not None and price >= above > 0:
                lv[0] = None
                out.append(self._alert(t, "up", above))
            if below is not None and 0 < price <= below:
                lv[1] = None
                out.append(self._alert(t, "down", below))
            if lv[0] is None and lv[1] is None:
                del levels[t.stock_code]
        return out

    def _alert(self, t: Tick, direction: str, level: int) -> AlertEvent:
        self.fired += 1
        change = (Decimal(t.price - level) * 100 / Decimal(level)).quantize(_CENT, rounding=ROUND_HALF_UP)
        name = ""
        if self._names is not None:
            try:
                name = self._names(t.stock_code) or ""
            except Exception:      # a name lookup must never cost an alert
                name = ""
        detected = self._clock()
        return AlertEvent(
            # "L<level>" in the step field: distinct from move ids, never parsed as one (seed)
            alert_id=f"{t.stock_code}:{t.timestamp:%Y%m%d}:{direction}:L{level}:{t.cum_volume}",
            stock_code=t.stock_code, stock_name=name, direction=direction,
            change_pct=float(change), base_price=level, base_time=t.timestamp,
            trigger_price=t.price, trigger_time=t.timestamp, trigger_cum_volume=t.cum_volume,
            detected_at=detected, window_seconds=0.0, threshold_pct=0.0, step=1,
            delay_s=max(0.0, round((detected - t.timestamp).total_seconds(), 1)),
            source=t.source, kind="level")


__all__ = ["PriceLevelWatcher"]
