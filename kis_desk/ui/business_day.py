"""The window's part of the business day: the day's stored alerts, and midnight.

The grid model follows the engine's ``DayRolloverEvent`` itself (its rows start empty); here
the alert dock and the detail chart start over too, and the dock then shows the new day's
stored alerts (any raised since midnight, read through ``EngineHandle.alerts_on``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from typing import Any

from ..core.events import DayRolloverEvent, EventBus
from ..engine.handle import EngineHandle, StoredAlertView
from .alerts_view import AlertDock
from .chart import DetailChart
from .i18n import tr
from .watchlist_model import WatchlistModel


class BusinessDay:
    """Stored alerts into the dock (highlighting their rows) and the rollover of dock and chart."""

    def __init__(self, engine: EngineHandle, model: WatchlistModel, dock: AlertDock, chart: DetailChart,
                 say: Callable[[str, int], None], spawn: Callable[[Awaitable[Any]], Any],
                 load_chart: Callable[[str], Awaitable[None]]) -> None:
        self.engine, self.model, self.dock, self.chart = engine, model, dock, chart
        self._say, self._spawn, self._load_chart = say, spawn, load_chart

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """Subscribe after the model, so its rows have rolled over first."""
        return bus.subscribe(DayRolloverEvent, self.on_rollover)

    def show_stored(self, stored: Sequence[StoredAlertView]) -> None:
        for item in stored:
            self.dock.model.add(item.alert, acknowledged=item.acknowledged)
            if not item.acknowledged:
                self.model.on_alert(item.alert)   # highlight only: no popup for history

    def on_rollover(self, event: DayRolloverEvent) -> None:
        self.dock.model.clear()
        chart = self.chart
        chart.set_day(event.current)
        if chart.code is not None:
            chart.show_symbol(chart.code, chart.name)
            if self.engine.has_storage:
                self._spawn(self._load_chart(chart.code))
        self._say(tr("day.rolled", day=event.current.isoformat()), 15000)
        if self.engine.has_storage:
            self._spawn(self._reload(event.current))

    async def _reload(self, day: date) -> None:
        stored = await self.engine.alerts_on(day)
        if day == self.model.business_date:       # not overtaken by yet another day
            self.show_stored(stored)
