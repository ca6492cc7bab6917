"""The trader's alert rules as one value: default threshold/window, per-symbol and
per-watchlist overrides, price levels (목표가) and mutes.

Persisted as JSON in the ``settings`` table (key :data:`SETTING_KEY`), so the desktop and a
headless collector on the same database agree; applied live by
:meth:`kis_desk.engine.collector.Collector.set_alert_rules` (no restart).

Precedence: a symbol's own override wins over the override of a watchlist it is in (the first
such watchlist by name), which wins over the default.

Mutes: a symbol until unmuted (``muted_codes``) or for N minutes (``muted_for``: code → wall-clock
end), and everything for N minutes (``muted_until``). The ends are epoch seconds, so a mute
survives a restart (or a reboot) and runs out on time; an ended one is dropped when the rules
are read again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

SETTING_KEY = "alert_rules"

Rule = tuple[float, float]                      # (threshold %, window seconds)
Level = tuple[int | None, int | None]           # (above, below) won; None: not set


@dataclass(frozen=True)
class AlertRules:
    threshold_pct: float
    window_seconds: float
    symbols: Mapping[str, Rule] = field(default_factory=dict)
    watchlists: Mapping[str, Rule] = field(default_factory=dict)
    levels: Mapping[str, Level] = field(default_factory=dict)
    muted_codes: frozenset[str] = frozenset()   # muted until unmuted
    muted_until: float = 0.0                    # wall clock (epoch s): all muted before it
    muted_for: Mapping[str, float] = field(default_factory=dict)   # code → end (epoch s)

    # -- mute ----------------------------------------------------------------------------------
    def is_muted(self, code: str, now: float | None = None) -> bool:
        if code in self.muted_codes:
            return True
        now = time.time() if now is None else now
        return now < self.muted_until or now < self.muted_for.get(code, 0.0)

    def code_muted_until(self, code: str, now: float | None = None) -> float | None:
        """When the mute of ``code`` itself ends (epoch s): ``math.inf`` until unmuted, None
        when it is not muted by itself (a mute of everything aside)."""
        if code in self.muted_codes:
            return math.inf
        end = self.muted_for.get(code, 0.0)
        return end if end > (time.time() if now is None else now) else None

    def mute_all(self, minutes: float, now: float | None = None) -> AlertRules:
        """Mute every alert for ``minutes`` (0 ends a mute)."""
        start = time.time() if now is None else now
        return replace(self, muted_until=start + minutes * 60 if minutes > 0 else 0.0)

    def mute_code(self, code: str, muted: bool = True, minutes: float | None = None,
                  now: float | None = None) -> AlertRules:
        """Mute ``code`` until unmuted (``minutes`` None) or for ``minutes``; ``muted=False``
        ends either. Mutes that have run out are dropped on the way."""
        now = time.time() if now is None else now
        codes = set(self.muted_codes)
        timed = {c: end for c, end in self.muted_for.items() if end > now and c != code}
        codes.discard(code)
        if muted and minutes is None:
            codes.add(code)
        elif muted and minutes > 0:
            timed[code] = now + minutes * 60
        return replace(self, muted_codes=frozenset(codes), muted_for=timed)

    # -- overrides and levels ---------------------------------------------------------------------
    def effective_overrides(self, watchlist_codes: Callable[[str], list[str]]) -> dict[str, Rule]:
        """Per code (threshold %, window s) for the detector: watchlist rules expanded to their
        codes, symbol rules on top."""
        out: dict[str, Rule] = {}
        for name in sorted(self.watchlists, reverse=True):   # first name wins: applied last
            for code in watchlist_codes(name):
                out[code] = self.watchlists[name]
        out.update(self.symbols)
        return out

    def without_level(self, code: str, direction: str) -> AlertRules:
        """Rules after the level of ``code`` in ``direction`` ("up" = above) fired."""
        above, below = self.levels.get(code, (None, None))
        above, below = (None, below) if direction == "up" else (above, None)
        levels = dict(self.levels)
        if above is None and below is None:
            levels.pop(code, None)
        else:
            levels[code] = (above, below)
        return replace(self, levels=levels)

    # -- JSON ------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({
            "threshold_pct": self.threshold_pct, "window_seconds": self.window_seconds,
            "symbols": {c: list(r) for c, r in self.symbols.items()},
            "watchlists": {n: list(r) for n, r in self.watchlists.items()},
            "levels": {c: list(v) for c, v in self.levels.items()},
            "muted_codes": sorted(self.muted_codes), "muted_until": self.muted_until,
            "muted_for": dict(self.muted_for),
        }, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, threshold_pct: float | None = None,
                  window_seconds: float | None = None, now: float | None = None) -> AlertRules:
        """Parse stored rules; a bad entry is dropped (one bad row never costs the others), and
        so is a timed mute that ended before ``now`` (default: the wall clock).
        ``threshold_pct``/``window_seconds``: the defaults in force (settings / command line);
        None: the stored ones (an attached desktop shows the collector's)."""
        try:
            d: dict[str, Any] = json.loads(text)
        except (TypeError, ValueError):
            d = {}
        if not isinstance(d, dict):
            d = {}

        def rules(raw: Any) -> dict[str, Rule]:
            out = {}
            for k, v in (raw or {}).items() if isinstance(raw, dict) else ():
                try:
                    pct, win = float(v[0]), float(v[1])
                except (TypeError, ValueError, IndexError):
                    continue
                if 0 < pct < 100 and 0 < win <= 3600:
                    out[str(k)] = (pct, win)
            return out

        levels: dict[str, Level] = {}
        raw_levels = d.get("levels")
        for k, v in raw_levels.items() if isinstance(raw_levels, dict) else ():
            try:
                above = int(v[0]) if v[0] is not None else None
                below = int(v[1]) if v[1] is not None else None
            except (TypeError, ValueError, IndexError):
                continue
            if above is not None or below is not None:
                levels[str(k)] = (above, below)
        muted = d.get("muted_codes")
        try:
            until = float(d.get("muted_until", 0.0))
        except (TypeError, ValueError):
            until = 0.0
        now = time.time() if now is None else now
        timed: dict[str, float] = {}
        raw_timed = d.get("muted_for")
        for k, v in raw_timed.items() if isinstance(raw_timed, dict) else ():
            try:
                end = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(end) and end > now:
                timed[str(k)] = end
        if threshold_pct is None or window_seconds is None:
            # via the detector: the defaults module moves on main (core/defaults → defaults)
            from .detector import DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS

            stored = rules({"": [d.get("threshold_pct"), d.get("window_seconds")]}).get(
                "", (DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS))
            threshold_pct = stored[0] if threshold_pct is None else threshold_pct
            window_seconds = stored[1] if window_seconds is None else window_seconds
        return cls(threshold_pct, window_seconds, rules(d.get("symbols")), rules(d.get("watchlists")),
                   levels, frozenset(str(c) for c in muted) if isinstance(muted, list) else frozenset(),
                   until if until > now else 0.0, timed)


__all__ = ["AlertRules", "Level", "Rule", "SETTING_KEY"]
