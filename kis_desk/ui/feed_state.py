"""Per-symbol feed state, in one place for the whole UI.

Fed by the engine's events (the subscription plan and the sessions' states); the grid, its
tooltips and colours read :meth:`FeedStates.of` only. When the feed publishes a per-symbol state
value of its own, :meth:`FeedStates.subscribe` is the one place that changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..core.events import EventBus, SessionStateEvent, SubscriptionPlanEvent

WAITING = "waiting"     # not (yet) subscribed anywhere
LIVE = "live"           # streamed on a session that is live
POLLED = "polled"       # over REST (more symbols than the app keys can stream)
STALE = "stale"         # planned on a session that is not live right now
SESSION_LIVE = "live"   # SessionStateEvent.state of a working session


class SymbolFeed(NamedTuple):
    state: str
    session: str = ""
    session_state: str = ""      # the session's own state (for a stale row's tooltip)


class FeedStates:
    """Which feed each symbol is on, from ``SubscriptionPlanEvent`` + ``SessionStateEvent``."""

    def __init__(self) -> None:
        self._live: dict[str, str] = {}        # code -> session label
        self._polled: set[str] = set()
        self._sessions: dict[str, str] = {}    # session label -> state

    def subscribe(self, bus: EventBus, changed: Callable[[set[str] | None], None]) -> Callable[[], None]:
        """Follow the engine's events; ``changed(codes)`` after each (None: every row)."""
        def on_plan(event: SubscriptionPlanEvent) -> None:
            changed(self.on_plan(event))

        def on_session(event: SessionStateEvent) -> None:
            if self.on_session(event):
                changed({c for c, s in self._live.items() if s == event.session})

        offs = [bus.subscribe(SubscriptionPlanEvent, on_plan), bus.subscribe(SessionStateEvent, on_session)]
        return lambda: [off() for off in offs] and None

    def on_plan(self, plan: SubscriptionPlanEvent) -> set[str]:
        """Apply a plan; returns the codes whose state changed."""
        before = {c: self.of(c) for c in set(self._live) | self._polled}
        self._live = {code: session for session, codes in plan.live.items() for code in codes}
        self._polled = set(plan.polled)
        codes = set(before) | set(self._live) | self._polled
        return {c for c in codes if before.get(c) != self.of(c)}

    def on_session(self, event: SessionStateEvent) -> bool:
        """Apply a session state; True when it changed."""
        if self._sessions.get(event.session) == event.state:
            return False
        self._sessions[event.session] = event.state
        return True

    def of(self, code: str) -> SymbolFeed:
        session = self._live.get(code)
        if session is not None:
            state = self._sessions.get(session, SESSION_LIVE)
            return SymbolFeed(LIVE if state == SESSION_LIVE else STALE, session, state)
        return SymbolFeed(POLLED) if code in self._polled else SymbolFeed(WAITING)
