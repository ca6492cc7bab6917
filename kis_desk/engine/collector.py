"""The collector: feed → storage + detector → publishers, with one event bus out.

It runs headless (``kis-desk collect``) and inside the desktop app; it knows nothing about Qt.
Everything it reports goes out as engine events (engine.events) on ``self.bus``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

from ..aio import cancel_and_wait
from ..config import (
    ENVIRONMENTS,
    AppCredential,
    Environment,
    Secret,
    UserPaths,
    credentials_from_env,
    custom_environment,
    redact_url,
)
from ..core.errors import describe
from ..logs import register_secret
from ..core.events import (
    AlertEvent, ErrorEvent, EventBus, PendingGap, RateEvent, TicksEvent,
)
from ..core.exchange import EmbeddedExchange
from ..core.ticks import Tick
from .alert_rules import SETTING_KEY as RULES_KEY
from .alert_rules import AlertRules
from .collector_config import (  # noqa: F401 - re-exported: the collector's own vocabulary
    CollectorConfig, ConfigError, _calendar_continuous, _calendar_open, kst_now, today_kst,
)
from .handle import EngineReads
from .live_settings import LiveChanges
from .summary import collector_summary

log = logging.getLogger(__name__)

ExchangeFactory = Callable[[CollectorConfig], EmbeddedExchange]


class Collector(LiveChanges, EngineReads):
    """Owns the feed, the writer, the detector and the publisher for one watchlist."""

    def __init__(self, config: CollectorConfig, bus: EventBus | None = None,
                 exchange: EmbeddedExchange | None = None, *,
                 exchange_factory: ExchangeFactory | None = None,
                 clock: Callable[[], datetime] = kst_now) -> None:
        """``exchange``: the in-process market to run when ``config.embedded_sim`` (supplied by
        the composition root, ``kis_desk.wiring.build_collector``); ``exchange_factory`` builds
        one when :meth:`apply` switches to the built-in simulator. ``clock``: KST wall time
        (tests run the collector across midnight with a fake one)."""
        from ..market.symbols import default_directory, default_watchlist

        self.config = config
        self.bus = bus or EventBus()
        self.paths = (config.paths or UserPaths.default()).ensure()
        self.symbols = default_directory()
        self.codes: list[str] = list(config.codes) or default_watchlist()
        self.background: list[str] = []   # other stored watchlists' codes (collect_all_watchlists)
        self.exchange = exchange
        self.exchange_factory = exchange_factory
        self.clock = clock
        self.business_date: date = today_kst(clock)
        self.writer: Any = None
        self.repository: Any = None
        self.detector: Any = None
        self.publisher: Any = None
        self.feed: Any = None
        self.levels: Any = None           # PriceLevelWatcher, from start()
        self.alert_rules = AlertRules(config.threshold_pct, config.window_seconds)
        self._rule_tasks: set[asyncio.Task[Any]] = set()
        self.owns_alert_rules = True      # set_alert_rules works here (RemoteEngine: read only)
        self.environment: Environment | None = None
        self.alerts = 0
        self.alerts_late = 0
        self.market_was_open = False
        self.gaps_left = 0                # pending gaps recorded at stop
        self._pending_gaps: list[PendingGap] = []
        self.ticks_total = 0
        self._ticks_by_source: dict[str, int] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_ticks: dict[str, Tick | None] = {}
        self._resume_from: dict[str, tuple[date, int, str] | None] = {}
        self._credentials: list[AppCredential] = []
        self._retired_feeds: list[Any] = []        # stats of feeds replaced (apply, rollover)
        self._retired_storage: list[Any] = []      # stats of writers replaced by apply()
        self._retired_publishers: list[Any] = []   # stats of publishers replaced by apply()
        self._apply_lock = asyncio.Lock()
        self._publish_ticks = False
        self._started = False
        self._stopping = False

    #: an in-process collector, not a view of one on another host (see RemoteEngine)
    attached = False

    @property
    def simulated(self) -> bool:
        """Runs on the built-in market (trades around the clock, whatever the KRX calendar says)."""
        return self.exchange is not None

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start everything; raises ConfigError with a user-facing reason when it cannot."""
        from .detector import MoveDetector
        from .price_levels import PriceLevelWatcher
        from .storage import Repository, TickWriter

        cfg = self.config
        db_url = cfg.database_url()
        self.business_date = today_kst(self.clock)
        self.writer = TickWriter(db_url, journal_dir=self.paths.journal_dir_for(db_url), bus=self.bus,
                                 retention_days=cfg.retention_days, today=lambda: today_kst(self.clock))
        try:
            await self.writer.start()
            self.repository = await asyncio.to_thread(Repository, db_url)
            if cfg.collect_all_watchlists:
                self.background = await asyncio.to_thread(self._background_codes, self.codes)
            self._last_ticks = await asyncio.to_thread(self._load_last_ticks, self.collected)
            raised_today = await asyncio.to_thread(self.repository.alert_ids_on, self.business_date)
            self._pending_gaps = await asyncio.to_thread(self.repository.list_pending_gaps)
            stored_rules = await asyncio.to_thread(self.repository.get_setting, RULES_KEY)
        except Exception as exc:
            await self.writer.stop()
            if self.repository is not None:
                self.repository.close()
            self.writer = self.repository = None
            raise ConfigError(f"database {redact_url(db_url)} is not usable: {describe(exc)}") from exc
        try:
            credentials = await self._prepare_environment()
        except BaseException:
            await self.writer.stop()      # nothing was received; release the database
            self.repository.close()
            self.writer = self.repository = None     # not started (a later start() may retry)
            raise
        self.detector = MoveDetector(cfg.threshold_pct, cfg.window_seconds,
                                     overrides=dict(cfg.overrides), names=self.symbols.name,
                                     clock=self._utc_now)
        self.detector.roll_over(self.business_date)
        # alerts an earlier run raised today are never raised again (restarts, replays)
        self.detector.seed(raised_today)
        self.levels = PriceLevelWatcher(names=self.symbols.name)
        if stored_rules:
            # the stored overrides, levels and mutes; the defaults are the configured ones
            self.alert_rules = AlertRules.from_json(stored_rules, cfg.threshold_pct, cfg.window_seconds)
        await self._apply_rules(self.alert_rules)
        if cfg.redis_url:
            self.publisher = await self._start_publisher(cfg)
        self._publish_ticks = self.publisher is not None and bool(
            cfg.redis_tick_channel or cfg.redis_trade_stream)
        self.feed = self._new_feed(credentials)
        self._started = True
        await self.feed.start(self.collected, pending_gaps=self._pending_gaps, first=len(self.codes))
        self._tasks.append(asyncio.create_task(self._report_loop(), name="collector-report"))
        log.info("collector started: %d symbols, env %s, database %s", len(self.codes),
                 self.environment.name, redact_url(db_url))

    # -- feed --------------------------------------------------------------------------------
    def _feed_config(self) -> Any:
        from ..feed.config import FeedConfig
        from ..feed.session import SessionConfig

        cfg = self.config
        always = self.exchange is not None if cfg.always_open is None else cfg.always_open
        if cfg.feed is not None:
            return replace(cfg.feed, always_open=always)
        # KIS issues a token a minute and tells the account holder each time: keep them across
        # restarts (the built-in market's tokens die with it, so there is nothing to keep)
        rest_options: dict[str, Any] = {}
        if self.exchange is None:
            from ..feed.token_cache import EncryptedTokenCache

            rest_options["token_cache"] = EncryptedTokenCache(self.paths.token_dir)
        return FeedConfig(session=SessionConfig(silence_timeout=cfg.silence_timeout),
                          always_open=always, rest_options=rest_options)

    async def _save_pending_gaps(self, left: list[PendingGap]) -> None:
        """What the feed could not back-fill before stopping becomes the pending set (gaps of
        symbols no longer watched are kept for a later run); past-day ones are kept on record
        as unrecoverable."""
        watched = set(self.collected)
        keep = left + [g for g in self._pending_gaps if g.code not in watched]
        self.gaps_left = len(keep)
        try:
            await asyncio.to_thread(self.repository.replace_pending_gaps, keep,
                                    self.feed.unrecoverable)
        except Exception as exc:
            log.warning("could not record %d pending gap(s): %s", len(keep), describe(exc))
            return
        if keep:
            log.warning("%d back-fill gap(s) recorded as pending; the next run back-fills them first",
                        len(keep))

    def _utc_now(self) -> datetime:
        return self.clock().astimezone(timezone.utc)

    def _new_feed(self, credentials: list[AppCredential]) -> Any:
        from ..feed.manager import FeedManager

        self._credentials = list(credentials)
        assert self.environment is not None
        return FeedManager(
            self.environment, credentials, self._on_ticks, bus=self.bus,
            config=self._feed_config(), last_seen=self._last_seen,
            is_market_open=_calendar_open, is_continuous=_calendar_continuous, clock=self.clock,
        )

    async def _start_publisher(self, cfg: CollectorConfig) -> Any:
        from .publisher import RedisPublisher

        assert cfg.redis_url
        publisher = RedisPublisher(cfg.redis_url, channel=cfg.redis_channel,
                                   stream=cfg.redis_stream, bus=self.bus,
                                   tick_channel=cfg.redis_tick_channel,
                                   trade_stream=cfg.redis_trade_stream,
                                   trade_stream_maxlen=cfg.redis_trade_maxlen)
        await publisher.start()
        return publisher

    async def _prepare_environment(self) -> list[AppCredential]:
        cfg = self.config
        if cfg.embedded_sim:
            if self.exchange is None and self.exchange_factory is not None:
                self.exchange = self.exchange_factory(cfg)     # Settings switched to it
            if self.exchange is None:
                raise ConfigError("the built-in simulator was not supplied (use wiring.build_collector)")
            resume = {t.stock_code: (t.timestamp.strftime("%Y%m%d"), t.price, t.cum_volume,
                                     t.price * t.cum_volume)
                      for t in self._last_ticks.values()
                      if t is not None and t.timestamp.date() == self.business_date}
            endpoints = await self.exchange.start(self.collected, resume)
            self.environment = custom_environment(endpoints.ws_url, endpoints.rest_url,
                                                  rate=endpoints.rest_rate_per_second, name="sim")
            return list(endpoints.credentials)
        if cfg.ws_url or cfg.rest_url:
            if not (cfg.ws_url and cfg.rest_url):
                raise ConfigError("--ws-url and --rest-url go together")
            base = ENVIRONMENTS.get(cfg.env)
            self.environment = custom_environment(cfg.ws_url, cfg.rest_url,
                                                  rate=base.rest_rate_per_second if base else 19.0,
                                                  name=cfg.env if cfg.env != "sim" else "custom")
        elif cfg.env in ENVIRONMENTS:
            self.environment = ENVIRONMENTS[cfg.env]
        else:
            raise ConfigError(f"unknown environment {cfg.env!r} (sim, mock or real)")
        try:
            credentials = cfg.credentials if cfg.credentials is not None else credentials_from_env()
        except ValueError as exc:     # half a key pair in the environment, named
            raise ConfigError(str(exc)) from exc
        if not credentials:
            if cfg.env == "sim":  # a simulator at an explicit URL accepts any key
                credentials = [AppCredential("key1", Secret("SIMKEY01"), Secret("SIMSECRET01"))]
            else:
                raise ConfigError(
                    f"no KIS app key for the {cfg.env} environment: set KIS_APP_KEY and "
                    "KIS_APP_SECRET (KIS_APP_KEY_2/KIS_APP_SECRET_2 … for more symbols), "
                    "or add keys in the app's settings")
        for c in credentials:
            register_secret(c.app_key.reveal())
            register_secret(c.app_secret.reveal())
        return credentials

    async def stop(self) -> None:
        """Stop the feed, flush every tick to the database (or journal), close publishers."""
        if self._stopping:
            return
        self._stopping = True
        await cancel_and_wait(self._tasks)
        if self._rule_tasks:
            await asyncio.gather(*self._rule_tasks, return_exceptions=True)
        async with self._apply_lock:       # a settings switch under way finishes first
            await self._stop_components()
        log.info("collector stopped")

    async def _stop_components(self) -> None:
        left: list[PendingGap] | None = None
        if self.feed is not None:
            try:
                left = await self.feed.stop()
            except Exception:
                log.exception("feed stop failed")
        if self.writer is not None:
            await self.writer.stop()
        if left is not None and self.repository is not None:
            await self._save_pending_gaps(left)
        if self.publisher is not None:
            try:
                await self.publisher.stop()
            except Exception:
                log.exception("publisher stop failed")
        if self.exchange is not None:
            await self.exchange.stop()
        if self.repository is not None:
            self.repository.close()

    # -- watchlist ----------------------------------------------------------------------------
    async def set_watchlist(self, codes: Sequence[str]) -> None:
        """Apply a new watchlist live: subscribe/unsubscribe, re-shard, poll the overflow."""
        self.codes = list(dict.fromkeys(codes))
        if self.config.collect_all_watchlists and self.repository is not None:
            self.background = await asyncio.to_thread(self._background_codes, self.codes)
        collected = self.collected
        new = [c for c in collected if c not in self._last_ticks]
        if new and self.repository is not None:
            self._last_ticks.update(await asyncio.to_thread(self._load_last_ticks, new))
        if self.exchange is not None:
            for code in collected:
                self.exchange.add_code(code)
        if self.feed is not None and self._started:
            await self.feed.set_symbols(collected, first=len(self.codes))

    @property
    def collected(self) -> list[str]:
        """Every code the feed streams: the shown watchlist first, then the other stored lists'."""
        shown = set(self.codes)
        return self.codes + [c for c in self.background if c not in shown]

    def _background_codes(self, shown: Sequence[str]) -> list[str]:
        """Codes of every stored watchlist not in ``shown``, in list then list order (worker thread)."""
        assert self.repository is not None
        seen = set(shown)
        out: list[str] = []
        for name in self.repository.list_watchlists():
            for code in self.repository.watchlist_codes(name):
                if code not in seen:
                    seen.add(code)
                    out.append(code)
        return out

    async def save_watchlist(self, name: str, codes: Sequence[str]) -> None:
        await super().save_watchlist(name, codes)
        if name in self.alert_rules.watchlists and self.detector is not None:
            await self._apply_rules(self.alert_rules)     # the watchlist's rule follows its codes

    # -- alert rules (applied live) ------------------------------------------------------------
    async def set_alert_rules(self, rules: AlertRules) -> None:
        """Apply ``rules`` now (threshold, window, overrides, price levels, mutes) and store
        them; raises ValueError (nothing changed) for an invalid threshold or window."""
        if self.detector is not None:
            await self._apply_rules(rules)
        else:
            self.alert_rules = rules                 # applied by start()
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

    # -- hot path -----------------------------------------------------------------------------
    def _on_ticks(self, ticks: Sequence[Tick], source: str = "ws") -> None:
        """Called on the loop with the trades of one read / back-fill page / poll."""
        if not ticks:
            return
        batch = tuple(ticks)
        self.ticks_total += len(batch)
        self._ticks_by_source[source] = self._ticks_by_source.get(source, 0) + len(batch)
        self.writer.submit(batch)
        alerts = self.detector.process(batch)
        levels = self.levels.process(batch)
        if levels:
            alerts.extend(levels)
            for alert in levels:
                self._level_fired(alert)
        self.bus.publish(TicksEvent(batch))
        if self._publish_ticks:
            self.publisher.publish_ticks(batch)   # other hosts' desktops
        for alert in alerts:
            self._emit_alert(alert)

    def _emit_alert(self, alert: AlertEvent) -> None:
        if self.alert_rules.is_muted(alert.stock_code):
            alert = dataclasses.replace(alert, muted=True)   # stored and published all the same
        self.alerts += 1
        late = ""
        if alert.late:
            self.alerts_late += 1
            late = f" LATE by {alert.delay_s:.0f} s ({alert.source})"
        log.warning("ALERT %s %s %s %+.2f%% (%s → %s)%s", alert.stock_code, alert.stock_name,
                    alert.direction, alert.change_pct, alert.base_price, alert.trigger_price, late)
        if self.publisher is not None:
            self.publisher.publish_alert(alert)
        self.writer.submit_alert(alert)
        self.bus.publish(alert)

    def _load_last_ticks(self, codes: Sequence[str]) -> dict[str, Tick | None]:
        """Last stored trade of today per code; also notes where each code's back-fill must
        resume (before a hole a crash left, if any). Runs in a worker thread, never on the loop."""
        today = self.business_date
        last: dict[str, Tick | None] = {}
        for code in codes:
            last[code] = self.repository.last_trade(code, today)
            hole = self.repository.last_before_first_gap(code, today) if last[code] else None
            if hole is not None:
                log.warning("%s: stored trades have a gap after cumulative volume %d (an earlier "
                            "run stopped mid back-fill); back-filling from there", code, hole.cum_volume)
            point = hole or last[code]
            self._resume_from[code] = None if point is None else _resume_point(point)
        return last

    def _last_seen(self, code: str) -> tuple[date, int, str] | None:
        """(date, cum_volume, HHMMSS) of the trade the feed back-fills from after a restart: the
        newest stored one, or the one before a hole. Served from the cache loaded off the loop
        (or set by a feed restart: :meth:`_resume_points_from_detector`)."""
        return self._resume_from.get(code)

    def _resume_points_from_detector(self) -> None:
        """Where a feed started now resumes: the newest trade of today received per symbol;
        a symbol without one resumes from the start of the day (cumulative volume 0), so the
        new feed back-fills everything it has not delivered yet (storage and the detector
        drop what they have already)."""
        for code in self.codes:
            seen = self.detector.last_trade(code) if self.detector is not None else None
            if seen is not None and seen[0] == self.business_date:
                self._resume_from[code] = (seen[0], seen[1], seen[2].strftime("%H%M%S"))
            else:
                self._resume_from[code] = (self.business_date, 0, "000000")

    # -- reporting ----------------------------------------------------------------------------
    async def _report_loop(self) -> None:
        from .phase import PhaseWatcher

        phases = PhaseWatcher(self.bus, simulated=self.exchange is not None, clock=self.clock)
        last_total, last_time = self.ticks_total, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            rate = (self.ticks_total - last_total) / max(now - last_time, 1e-6)
            last_total, last_time = self.ticks_total, now
            self.bus.publish(RateEvent(round(rate, 1), self.ticks_total))
            phases.simulated = self.simulated
            phases.check()
            if not self.market_was_open:
                self.market_was_open = self.simulated or _calendar_open(self.clock())
            if today_kst(self.clock) != self.business_date:
                try:
                    await self.roll_over()
                except Exception as exc:     # never stop reporting; the next second tries again
                    log.exception("day rollover failed")
                    self.bus.publish(ErrorEvent("collector", f"day rollover failed: {describe(exc)}"))

    def summary(self) -> dict[str, Any]:
        """Counters for the CLI's closing JSON line, the exit code and the self-check."""
        return collector_summary(self)

    def symbols_never_collected(self) -> list[str]:
        """Watchlist symbols without a single trade this run, counted only when the market
        was open at some point (outside sessions nothing trades)."""
        if not self.market_was_open or self.detector is None:
            return []
        seen = self.detector.codes()
        return [c for c in self.codes if c not in seen]


def _resume_point(tick: Tick) -> tuple[date, int, str]:
    return tick.timestamp.date(), tick.cum_volume, tick.timestamp.strftime("%H%M%S")


#: Counters that run over the whole run: summed over the components an apply() or a day
#: rollover replaced. ``worst_gap_s`` is the maximum; everything else is the current one's.
