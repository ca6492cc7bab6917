"""The engine events that change a grid row outside the trade path: alerts and their
acknowledgement, where each symbol's data comes from, and halts / VI.

Why a module of its own: :class:`~kis_desk.ui.watchlist_model.WatchlistModel` is the Qt model
(rows, sorting, the coalesced repaint); these inputs only update a row's plain state and mark
it for a whole-row repaint (``_touch``). Mixed into the model, which holds the rows, the signals
and ``feeds``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..core.events import AlertEvent, MarketStateEvent, SessionStateEvent, SubscriptionPlanEvent
from .feed_state import FeedStates, SymbolFeed
from .row_state import RowState


class RowInputs:
    """Alerts, feed states and market states (halts, VI) of the model's rows."""

    _rows: list[RowState]
    _index: dict[str, int]
    feeds: FeedStates
    _market: dict[str, MarketStateEvent]        # code → not-normal state (rows or not)
    alertRaised: object
    alertsAcknowledged: object

    _touch: Callable[[int], None]              # the model's: repaint row i whole, next flush

    # -- halts and VI (the engine's MarketStateEvent) ---------------------------------------
    def on_market_state(self, event: MarketStateEvent) -> None:
        """A symbol halted, in VI, or trading normally again: its badge follows. Kept for codes
        without a row too (a watchlist switch shows them at once)."""
        code = event.stock_code
        if event.state:
            self._market[code] = event
        else:
            self._market.pop(code, None)
        i = self._index.get(code)
        if i is not None:
            self._rows[i].market = self._market.get(code)
            self._touch(i)

    def set_market_states(self, states: Mapping[str, MarketStateEvent]) -> None:
        """The engine's current states (``EngineHandle.market_states()``), e.g. at start-up."""
        for event in states.values():
            self.on_market_state(event)

    def market_of(self, code: str) -> MarketStateEvent | None:
        return self._market.get(code)

    def on_alert(self, alert: AlertEvent) -> None:
        i = self._index.get(alert.stock_code)
        if i is not None:
            row = self._rows[i]
            if all(a.alert_id != alert.alert_id for a in row.alerts):
                row.alerts.append(alert)
                self._touch(i)
        self.alertRaised.emit(alert)

    def on_plan(self, plan: SubscriptionPlanEvent) -> None:
        self._feeds_changed(self.feeds.on_plan(plan))

    def on_session(self, event: SessionStateEvent) -> None:
        if self.feeds.on_session(event):
            self._feeds_changed(None)

    def _feeds_changed(self, codes: set[str] | None) -> None:
        for i, r in enumerate(self._rows):
            if codes is None or r.code in codes:
                feed = self.feeds.of(r.code)
                if feed != r.feed:
                    r.feed = feed
                    self._touch(i)

    def feed(self, row: RowState) -> SymbolFeed:
        return row.feed

    def feed_state(self, row: RowState) -> str:
        return row.feed.state

    # -- alerts -------------------------------------------------------------------------------
    def pending_alerts(self, code: str) -> list[AlertEvent]:
        i = self._index.get(code)
        return list(self._rows[i].alerts) if i is not None else []

    def acknowledge(self, alert_ids: Iterable[str]) -> list[str]:
        """Clear these alerts' highlight; returns the ids that were pending."""
        wanted = set(alert_ids)
        done: list[str] = []
        for i, r in enumerate(self._rows):
            keep = [a for a in r.alerts if a.alert_id not in wanted]
            if len(keep) != len(r.alerts):
                done += [a.alert_id for a in r.alerts if a.alert_id in wanted]
                r.alerts = keep
                self._touch(i)
        if done:
            self.alertsAcknowledged.emit(done)
        return done

    def acknowledge_code(self, code: str) -> list[str]:
        return self.acknowledge(a.alert_id for a in self.pending_alerts(code))


__all__ = ["RowInputs"]
