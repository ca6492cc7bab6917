"""Problems the user must see: one WARNING log line and one ErrorEvent each, throttled per kind
so a flood (a garbage frame every millisecond) becomes one line a second with a count."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..core.events import ErrorEvent, Event

log = logging.getLogger("kis_desk.feed")


class ProblemReporter:
    def __init__(self, publish: Callable[[Event], None], *, every: float = 1.0) -> None:
        self.publish = publish
        self.every = every
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, source: str, message: str, fatal: bool = False, *,
               throttle_key: str | None = None, detail: str = "", code: str = "",
               **params: object) -> None:
        """``code``/``params``: the condition's kind and values for a translated UI text
        (``ErrorEvent.code``); ``message`` stays the English log line."""
        message = message.removeprefix(f"{source}: ")   # REST errors already name their key
        more = 0
        if throttle_key is not None:
            now = time.monotonic()
            if now - self._last.get(throttle_key, -1e9) < self.every:
                self._suppressed[throttle_key] = self._suppressed.get(throttle_key, 0) + 1
                return
            self._last[throttle_key] = now
            more = self._suppressed.pop(throttle_key, 0)
            if more:
                message += f" (+{more} more)"
        if detail:
            log.warning("%s: %s %s", source, message, detail)
        else:
            log.warning("%s: %s", source, message)
        if more:
            params["more"] = more
        self.publish(ErrorEvent(source, message, fatal, code=code, params=dict(params)))


__all__ = ["ProblemReporter"]
