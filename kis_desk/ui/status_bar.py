"""Status bar: sessions, live/polled split, ticks/s, storage, Redis, market phase, last error."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from typing import Any

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStatusBar

from ..core.events import (
    ErrorEvent, Event, EventBus, MarketPhaseEvent, PublisherStatsEvent, RateEvent, SessionStateEvent,
    StorageStatsEvent, SubscriptionPlanEvent,
)
from ..protocol.records import KST
from .appearance import text_colour
from .elided_label import ElidedLabel
from .i18n import error_text, tr

log = logging.getLogger(__name__)

_CELL = "padding: 0 6px; border-left: 1px solid palette(mid);"
_GAP = "&nbsp;" * 3        # between the sessions (rich text would collapse plain spaces)
_KEY_DOWN, _KEY_SLOW, _KEY_BACK = "feed.key_down", "feed.key_slow", "ui.key_back"
#: a session's dot by its state, as a kind of appearance.text_colour (light and dark)
_STATE_KINDS = {"live": "good", "connecting": "pending", "backoff": "warn", "stalled": "warn",
                "failed": "error", "stopped": "muted"}


def _colour(kind: str) -> str:
    return f"color: {text_colour(kind)};"


class EngineStatusBar(QStatusBar):
    """Labels updated straight from engine events (all are low-rate: ≤ a few per second)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("engineStatus")
        self.sessions = QLabel()
        self.plan = QLabel()
        self.rate = QLabel()
        self.storage = QLabel()
        self.redis = QLabel()
        self.phase = QLabel()
        self.error = ElidedLabel()     # never widens the window: elided, full text in the tooltip
        self.error.setStyleSheet(_colour("error"))
        for w in (self.sessions, self.plan, self.rate, self.storage, self.redis, self.phase):
            w.setStyleSheet(_CELL)
            w.setTextFormat(Qt.TextFormat.RichText if w is self.sessions else Qt.TextFormat.PlainText)
            self.addPermanentWidget(w)
        self.addWidget(self.error, 1)
        self._sessions: dict[str, SessionStateEvent] = {}
        self._ever_live: set[str] = set()     # sessions seen live in this run
        self.always_open = False      # the built-in simulator: trades whatever the KRX calendar says
        self._last: dict[type, Event] = {}
        self._logged: tuple[Any, str] | None = None
        self._renderers: dict[type, Callable[[Any], None]] = {
            SubscriptionPlanEvent: self._render_plan, RateEvent: self._render_rate,
            StorageStatsEvent: self._render_storage, PublisherStatsEvent: self._render_redis,
            MarketPhaseEvent: self._render_phase, ErrorEvent: self._render_error}
        self.retranslate()

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """Follow the engine's state events (one typed subscription each); returns the unsubscriber."""
        offs = [bus.subscribe(SessionStateEvent, self.on_session)]
        offs += [bus.subscribe(kind, self.on_event) for kind in self._renderers]
        return lambda: [off() for off in offs] and None

    def on_session(self, event: SessionStateEvent) -> None:
        self._sessions[event.session] = event
        if event.state == "live":
            self._ever_live.add(event.session)
            shown = self._last.get(ErrorEvent)
            if isinstance(shown, ErrorEvent) and shown.code in (_KEY_DOWN, _KEY_SLOW) \
                    and shown.source == event.session:      # that warning is over: say so
                self.on_event(ErrorEvent(event.session, f"{event.session} live again",
                                         at=datetime.now(timezone.utc), code=_KEY_BACK,
                                         params={"source": event.session}))
        self._render_sessions()

    def on_event(self, event: Event) -> None:
        """One of the ``_renderers`` event types (the last of each is kept for retranslate)."""
        self._last[type(event)] = event
        self._render(event)

    def retranslate(self) -> None:
        """Texts in the UI's language and colours of the current theme (the window calls it
        after a language or theme change)."""
        self.error.setStyleSheet(_colour("error"))
        self._render_sessions()
        if PublisherStatsEvent not in self._last:
            self.redis.setText(tr("status.redis.off"))
        for event in self._last.values():
            self._render(event)

    def _render_sessions(self) -> None:
        parts, tips = [], []
        for label in sorted(self._sessions):
            ev = self._sessions[label]
            colour = text_colour(_STATE_KINDS.get(ev.state, "muted"))
            text = tr("status.session", session=label, state=tr(f"state.{ev.state}"))
            parts.append(f'<span style="color:{colour}">●</span>&nbsp;{text}')
            tip = f"{label}: {ev.state} ({len(ev.symbols)})"
            if ev.detail:
                tip += f" — {ev.detail}"
            if ev.retry_in:
                tip += f" (retry in {ev.retry_in:.0f}s)"
            tips.append(tip)
        self.sessions.setText(_GAP.join(parts))
        self.sessions.setToolTip("\n".join(tips))

    def phase_text(self, event: MarketPhaseEvent, now: datetime | None = None) -> tuple[str, str]:
        """What the phase cell says, in plain words, and its colour ("" = default).

        The simulator trades around the clock whatever KRX does; outside KRX hours a real or
        mock connection is quiet, so the cell says the market is closed and when it reopens
        (a trader who sees no prices must not wonder whether the app is broken).
        """
        if self.always_open or event.detail.startswith("simulator"):
            return tr("status.phase.sim"), text_colour("good")
        if event.phase in ("closed", "holiday"):
            from ..market.calendar import next_open

            try:
                at = next_open(now or datetime.now(KST)).astimezone(KST)
            except RuntimeError:
                return tr("status.phase", phase=tr(f"phase.{event.phase}")), text_colour("muted")
            when = tr("status.when", date=at.strftime("%m/%d"), weekday=tr(f"weekday.{at.weekday()}"),
                      time=at.strftime("%H:%M"))
            return tr(f"status.phase.{event.phase}", when=when), text_colour("muted")
        return tr("status.phase", phase=tr(f"phase.{event.phase}")), ""

    def _render(self, event: Event) -> None:
        self._renderers[type(event)](event)

    def _render_plan(self, event: SubscriptionPlanEvent) -> None:
        live = sum(len(c) for c in event.live.values())
        self.plan.setText(tr("status.plan", live=live, polled=len(event.polled)))
        self.plan.setToolTip(tr("status.plan.tip", needed=event.keys_needed,
                                configured=event.keys_configured))
        self.plan.setStyleSheet(_CELL + (_colour("warn") if event.polled else ""))

    def _render_rate(self, event: RateEvent) -> None:
        self.rate.setText(tr("status.rate", rate=event.ticks_per_second))
        self.rate.setToolTip(f"{event.total_ticks:,}")

    def _render_storage(self, event: StorageStatsEvent) -> None:
        state = tr("status.ok") if event.database_ok else tr("status.down")
        self.storage.setText(tr("status.storage", state=state, backlog=event.backlog))
        self.storage.setStyleSheet(_CELL + ("" if event.database_ok else _colour("error")))
        self.storage.setToolTip(tr("status.storage.tip", database=event.database, stored=event.stored,
                                   duplicates=event.duplicates, journaled=event.journaled,
                                   failed=event.failed,
                                   error=f"\n{event.last_error}" if event.last_error else ""))

    def _render_redis(self, event: PublisherStatsEvent) -> None:
        state = tr("status.ok") if event.connected else tr("status.down")
        self.redis.setText(tr("status.redis", state=state, delivered=event.delivered))
        self.redis.setStyleSheet(_CELL + ("" if event.connected else _colour("error")))
        self.redis.setToolTip(tr("status.redis.tip", target=event.target, pending=event.pending,
                                 dropped=event.dropped,
                                 error=f"\n{event.last_error}" if event.last_error else ""))

    def _render_phase(self, event: MarketPhaseEvent) -> None:
        text, colour = self.phase_text(event)
        self.phase.setText(text)
        self.phase.setStyleSheet(_CELL + (f"color: {colour};" if colour else ""))
        tip = event.detail
        nxt = event.next_change
        if isinstance(nxt, tuple | list):   # (when, phase) as calendar.next_phase_change returns
            nxt = nxt[0] if nxt else None
        if isinstance(nxt, str):
            nxt = datetime.fromisoformat(nxt)
        if isinstance(nxt, datetime):
            tip += ("\n" if tip else "") + nxt.astimezone(KST).strftime("→ %Y-%m-%d %H:%M")
        self.phase.setToolTip(tip)

    def _render_error(self, event: ErrorEvent) -> None:
        """A short text in the UI's language (``i18n.error_text``), elided to the room there is;
        the tooltip has it whole plus the engine's own words, and so does the log."""
        at = event.at.astimezone(KST).strftime("%H:%M:%S")
        if event.code == _KEY_DOWN and event.source not in self._ever_live:
            # a key still on its first connection (never live yet) is not "lost"
            event = dataclasses.replace(event, code=_KEY_SLOW)
        text = error_text(event)
        back = event.code == _KEY_BACK
        self.error.setStyleSheet("" if back else _colour("error"))
        self.error.setText(f"{at} " + (text if back else tr("status.error", source=event.source,
                                                              message=text)))
        self.error.setToolTip(f"{at} {event.source}: {text}" + (f"\n{event.message}" if event.message != text else ""))
        if self._logged != (event.at, event.message):     # once per event (retranslate re-renders)
            self._logged = (event.at, event.message)
            log.info("status bar: %s: %s [%s]", event.source, event.message, event.code or "-")
