"""What the user does to alerts on a running collector: the rules applied live, the test alert.

Why its own module: the alert rules (threshold, window, per-symbol and per-watchlist
overrides, price levels, mutes) are applied to the detector and the level watcher at once,
stored off the loop, and followed when a watchlist they name changes; a price level fires
once and leaves the rules. The test alert checks the Redis channel's wiring. A mixin of
:class:`~.collector.Collector` (its detector, levels, repository and configuration).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..core.events import AlertEvent
from .alert_rules import SETTING_KEY as RULES_KEY
from .alert_rules import AlertRules

log = logging.getLogger("kis_desk.engine.collector")


class AlertControl:
    """set_alert_rules / send_test_alert for a running Collector (see the module docstring)."""

    # -- alert rules (applied live) ------------------------------------------------------------
    async def save_watchlist(self, name: str, codes: Sequence[str]) -> None:
        await super().save_watchlist(name, codes)
        if name in self.alert_rules.watchlists and self.detector is not None:
            await self._apply_rules(self.alert_rules)     # the watchlist's rule follows its codes

    async def set_alert_rules(self, rules: AlertRules) -> None:
        """Apply ``rules`` now (threshold, window, overrides, price levels, mutes) and store
        them; raises ValueError (nothing changed) for an invalid threshold or window."""
        if self.detector is not None:
            await self._apply_rules(rules)
        else:
            self.alert_rules = self._rules_to_store = rules     # applied and stored by start()
        if self.repository is not None:
            await asyncio.to_thread(self.repository.set_setting, RULES_KEY, rules.to_json())

    async def _apply_rules(self, rules: AlertRules) -> None:
        codes_of = (lambda name: [])                 # noqa: E731
        if rules.watchlists and self.repository is not None:
            known = await asyncio.to_thread(
                lambda: {n: self.repository.watchlist_codes(n) for n in rules.watchlists})
            codes_of = (lambda name: known.get(name, []))   # noqa: E731
        overrides = {**self.config.overrides, **rules.effective_overrides(codes_of)}
        self.detector.reconfigure(rules.threshold_pct, rules.window_seconds, overrides)
        self.levels.set_levels(rules.levels)
        self.alert_rules = rules
        log.info("alert rules applied: %.2f%% / %.0f s, %d override(s), %d level(s)",
                 rules.threshold_pct, rules.window_seconds, len(overrides), len(rules.levels))

    def _level_fired(self, alert: AlertEvent) -> None:
        """A price level fires once: drop it from the rules and store that off the loop."""
        self.alert_rules = self.alert_rules.without_level(alert.stock_code, alert.direction)
        if self.repository is not None:
            task = asyncio.get_running_loop().create_task(asyncio.to_thread(
                self.repository.set_setting, RULES_KEY, self.alert_rules.to_json()))
            self._rule_tasks.add(task)
            task.add_done_callback(self._rule_tasks.discard)

    # -- the test alert (menu 알림 → 테스트 알림) ----------------------------------------------------
    async def send_test_alert(self, alert: AlertEvent) -> tuple[str, int] | None:
        """Publish ``alert`` marked as a test on the alert channel: (channel, receivers), or None
        without Redis. Never stored, never on the stream, never counted as delivered."""
        if not self.config.redis_url:
            return None
        from .alert_probe import publish_test_alert

        channel = self.config.redis_channel
        return channel, await publish_test_alert(self.config.redis_url, channel, alert)


__all__ = ["AlertControl"]
