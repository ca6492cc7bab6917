"""Changes to a running collector: a new business day and settings applied live.

A mixin of :class:`~kis_desk.engine.collector.Collector` (it works on the collector's feed,
writer, publisher and detector): kept apart because switching components without losing or
duplicating a trade is its own job, next to the collector's steady-state wiring.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from ..config import AppCredential, redact_url
from ..core.errors import describe
from ..core.events import DayRolloverEvent
from .collector_config import (
    _DETECTOR_FIELDS, _FEED_FIELDS, _REDIS_FIELDS, CollectorConfig, ConfigError, today_kst,
)

log = logging.getLogger("kis_desk.engine.collector")


class LiveChanges:
    """roll_over / apply / apply_settings for a running Collector."""

    async def roll_over(self) -> None:
        """The KST date changed: start the new business day.

        Per-day state is reset — the detector (windows, episodes, alert ids of the old day),
        the feed's continuity per symbol (a fresh feed whose back-fill starts at the new day's
        first trade, so nothing of the new day is missed and nothing of the old day is
        counted in it), the last-tick caches and resume points — then one
        :class:`DayRolloverEvent` tells the UI to clear its day values and alert log.
        """
        async with self._apply_lock:
            current = today_kst(self.clock)
            previous = self.business_date
            if current == previous:
                return
            log.info("business date rolls over: %s → %s", previous, current)
            self.business_date = current
            self.detector.roll_over(current)
            self._last_ticks = {code: None for code in self.codes}
            self._resume_from = {}
            self._quiet_until, self._moves_raised = {}, {}
            if self.feed is not None and self._started and not self._stopping:
                await self._restart_feed(None)
            self.bus.publish(DayRolloverEvent(previous, current))

    async def _restart_feed(self, credentials: list[AppCredential] | None) -> None:
        """Stop the feed cleanly (back-fills under way get their drain time) and start a new
        one, with ``credentials`` or the current ones; it back-fills from the newest trade
        received per symbol, which closes the gap of the switch."""
        old = self.feed
        await old.stop()
        self._resume_points_from_detector()
        self._retired_feeds.append(old.stats())
        self.feed = self._new_feed(credentials if credentials is not None else self._credentials)
        await self.feed.start(self.codes)

    # -- settings applied live ------------------------------------------------------------------
    async def apply_settings(self, settings: Any, store: Any, previous: Any = None) -> list[str]:
        """The desktop's Settings dialog: what the user changed from ``previous`` to
        ``settings`` (UserSettings; secrets from ``store``'s keyring) applied to the running
        engine at once (see :meth:`apply`). Returns the fields that changed."""
        from .user_settings import settings_changes

        return await self.apply(settings_changes(self.config, previous, settings, store))

    async def apply(self, new: CollectorConfig) -> list[str]:
        """Apply ``new`` to the running collector without a restart; returns what changed.

        * threshold / window / overrides: the detector is reconfigured in place
          (:meth:`MoveDetector.reconfigure`: history, alert ids and episodes kept);
        * Redis: a new publisher; alerts the old one could not deliver move to it (none lost);
        * database: a new writer takes every trade from now on; the old one is flushed — what
          it had queued goes to the old database — and closed;
        * environment / keys / URLs: the feed is stopped cleanly and started again with the new
          credentials; its back-fill from the newest trade received closes the gap;
        * venue: the same, on the new venue's TR and REST market code; each symbol resumes on the
          new venue's chain (``resume_points.py``: its newest stored trade of today, else the alert
          window before the newest trade received), and the detector starts that chain over.
        * retention: the writer keeps raw trades that many days from its next idle moment.

        Raises ConfigError (nothing changed) when the new environment cannot be prepared.
        """
        async with self._apply_lock:
            if not self._started or self._stopping:
                self.config = new
                return []
            old = self.config
            changed = [f.name for f in dataclasses.fields(CollectorConfig)
                       if f.name not in ("codes", "paths") and getattr(old, f.name) != getattr(new, f.name)]
            feed_change = any(n in changed for n in _FEED_FIELDS)
            db_change = new.database_url() != old.database_url()
            if not (changed or db_change):
                return []
            if any(n in changed for n in _DETECTOR_FIELDS):
                # through the alert rules, so per-symbol/watchlist overrides and levels stay
                self.config = new
                await self._apply_rules(dataclasses.replace(
                    self.alert_rules, threshold_pct=new.threshold_pct,
                    window_seconds=new.window_seconds))
            if any(n in changed for n in _REDIS_FIELDS):
                await self._switch_publisher(new)
            if feed_change:
                await self._switch_feed(old, new, db_change)
            elif db_change:
                self.config = new
                await self._switch_database(new.database_url())
            if "retention_days" in changed and not db_change:   # a new writer has it already
                self.writer.set_retention_days(new.retention_days)
            self.config = new
            return changed + (["database"] if db_change else [])

    async def _switch_publisher(self, new: CollectorConfig) -> None:
        old = self.publisher
        fresh = await self._start_publisher(new) if new.redis_url else None
        self.publisher = fresh                  # alerts from now on go to the new one
        if self.market_watch is not None:       # attached desktops' halt/VI badges follow it
            await self.market_watch.use_redis(new.redis_url, new.redis_channel)
        self._publish_ticks = fresh is not None and bool(new.redis_tick_channel)
        if old is not None:
            await old.stop(flush_timeout=2.0)   # delivers what it can to the old target
            leftover = old.take_pending()
            if fresh is not None:
                fresh.adopt(leftover)
            elif leftover:
                log.warning("Redis switched off with %d alert(s) undelivered", len(leftover))
            self._retired_publishers.append(old.stats())
        log.info("Redis publisher %s (applied live)", fresh.target if fresh else "off")

    async def _switch_database(self, db_url: str) -> None:
        from .storage import Repository, TickWriter

        writer = TickWriter(db_url, journal_dir=self.paths.journal_dir_for(db_url), bus=self.bus,
                            retention_days=self.config.retention_days, today=lambda: today_kst(self.clock))
        try:
            await writer.start()
            repository = await asyncio.to_thread(Repository, db_url)
            raised_today = await asyncio.to_thread(repository.alert_ids_on, self.business_date)
        except Exception as exc:
            await writer.stop()
            raise ConfigError(f"database {redact_url(db_url)} is not usable: {describe(exc)}") from exc
        old_writer, old_repo = self.writer, self.repository
        # one step on the loop: every trade submitted before this line is the old writer's
        self.writer, self.repository = writer, repository
        self.detector.seed(raised_today)
        await old_writer.stop()                # flushes what it had queued into the old database
        self._retired_storage.append(old_writer.stats())
        old_repo.close()
        log.info("database now %s (applied live)", redact_url(db_url))

    async def _switch_feed(self, old: CollectorConfig, new: CollectorConfig, db_change: bool) -> None:
        """New environment / keys: stop the feed, prepare the new environment, start again.

        Keys are checked before anything moves (a refused configuration leaves the old feed
        running, on the old database). Switching between the built-in simulator and a KIS
        environment changes the market: the detector starts over (seeded with the new
        database's alerts of the day) and the feed resumes from that database's newest trades.
        """
        feed, exchange, environment = self.feed, self.exchange, self.environment
        old_credentials = self._credentials
        market_change = new.embedded_sim != old.embedded_sim
        await feed.stop()
        self._retired_feeds.append(feed.stats())
        self._resume_points_from_detector()
        keep_exchange = new.embedded_sim and exchange is not None   # the same built-in market
        db_switched = False
        self.config = new
        try:
            if new.embedded_sim and exchange is None:
                if self.exchange_factory is None:
                    raise ConfigError("switching to the built-in simulator needs a restart here")
                self.exchange = self.exchange_factory(new)
            elif not new.embedded_sim:
                self.exchange = None
            if not new.embedded_sim:
                credentials = await self._prepare_environment()     # refuses bad keys first
            if db_change:
                await self._switch_database(new.database_url())
                db_switched = True
            if market_change:
                self.detector.reset()
                self.detector.roll_over(self.business_date)
                self.detector.seed(await asyncio.to_thread(self.repository.alert_ids_on,
                                                           self.business_date))
                self._last_ticks = await asyncio.to_thread(self._load_last_ticks, self.codes)
            elif new.venue != self._detector_venue:
                # another venue's chain: resume points from its stored trades, else by time
                self._last_ticks = await asyncio.to_thread(self._load_last_ticks, self.codes)
                self._resume_on_new_venue(new.venue)
            if new.embedded_sim:
                credentials = old_credentials if keep_exchange else await self._prepare_environment()
        except BaseException:
            self.config, self.exchange, self.environment = old, exchange, environment
            if db_switched:
                await self._switch_database(old.database_url())
            await self._start_feed_again(old_credentials)
            raise
        if exchange is not None and exchange is not self.exchange:
            await exchange.stop()
        self.feed = self._new_feed(credentials)
        await self.feed.start(self.codes)
        log.info("feed restarted on %s with %d app key(s), venue %s (applied live)",
                 self.environment.name if self.environment else "?", len(credentials), new.venue)

    async def _start_feed_again(self, credentials: list[AppCredential]) -> None:
        self.feed = self._new_feed(credentials)
        await self.feed.start(self.codes)
