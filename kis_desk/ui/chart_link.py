"""Which symbol the detail chart shows, and what it draws there: the day's trades, its alerts and
its VI periods.

Why a module of its own: the grid's selection, the alert dock, the business day and the
engine's market states (halts, VI: ``MarketStateEvent`` through ``EngineHandle``) all feed the
one chart; the window only wires them. The VI periods seen this run are kept per symbol
(``market_badges.ViBook``), so a symbol shown later still gets its bands; the chart adds the
ones it finds itself from auction prints and VI alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QItemSelection

from ..core.events import DayRolloverEvent, EventBus, MarketStateEvent, TicksEvent
from .chart import history_from_series
from .market_badges import ViBook
from .watchlist_model import CODE_ROLE


class ChartLink:
    """The chart's side of the window (``window``: grid, model, chart, alert dock, engine)."""

    def __init__(self, window: Any) -> None:
        self.w = window
        self.vi_book = ViBook()

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """Trades and market states to the chart (before the business day's own rollover)."""
        chart = self.w.chart
        offs = [bus.subscribe(TicksEvent, lambda e: chart.on_ticks(e.ticks)),
                bus.subscribe(MarketStateEvent, self.on_market_state),
                bus.subscribe(DayRolloverEvent, lambda _e: self.vi_book.clear())]
        return lambda: [off() for off in offs] and None

    def seed(self, states: Mapping[str, MarketStateEvent]) -> None:
        """The engine's current halts and VI (``EngineHandle.market_states()``) at start-up."""
        self.w.model.set_market_states(states)
        for event in states.values():
            self.on_market_state(event)

    def on_market_state(self, event: MarketStateEvent) -> None:
        chart = self.w.chart
        if self.vi_book.on_event(event) and event.stock_code == chart.code:
            chart.set_vi_periods(self.vi_book.periods(event.stock_code))

    # -- selection ----------------------------------------------------------------------------
    def selected_code(self) -> str | None:
        idx = self.w.grid.currentIndex()
        return idx.data(CODE_ROLE) if idx.isValid() else None

    def select_code(self, code: str) -> None:
        grid = self.w.grid
        row = self.w.model.row_of(code)
        if row is None:
            return
        idx = grid.store.index(row, 0)            # the view's model: same rows as the model
        grid.setCurrentIndex(idx)
        grid.selectRow(row)
        grid.scrollTo(idx)

    def selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = selected.indexes()
        if not rows:
            return
        code = rows[0].data(CODE_ROLE)
        chart, engine = self.w.chart, self.w.engine
        if code and code != chart.code:
            chart.show_symbol(code, engine.symbols.name(code))
            chart.set_vi_periods(self.vi_book.periods(code))
            if engine.has_storage:
                self.w.spawn(self.load(code))

    async def load(self, code: str) -> None:
        """The day's trades and alerts of ``code`` into the chart (history off the GUI thread)."""
        w = self.w
        # the day's bars plus its last minute of trades: the same cost for any day's volume
        history = await w.engine.day_series(code, w.business_date, history_from_series)
        alerts = [a for a in w.alert_dock.model.alerts if a.stock_code == code]
        w.chart.load_history(code, history, alerts)
        if code == w.chart.code:
            w.chart.set_vi_periods(self.vi_book.periods(code))


__all__ = ["ChartLink"]
