"""The collector: feed → storage + detector → publishers, with one event bus out.

It runs headless (``kis-desk collect``) and inside the desktop app; it knows nothing about Qt.
Everything it reports goes out as engine events (engine.events) on ``self.bus``. This module
composes the components, starts and stops them and runs the hot path; its other jobs are
modules of their own: where the feed connects (:mod:`.environment`), where each symbol
resumes (:mod:`.resume_points`), alert rules and the test alert (:mod:`.alert_control`),
changes while running (:mod:`.live_settings`), the closing summary (:mod:`.summary`).
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
from ..config import AppCredential, Environment, UserPaths, custom_environment, redact_url
from ..core.errors import describe
from ..core.events import (
    AlertEvent, ErrorEvent, EventBus, PendingGap, RateEvent, TicksEvent,
)
from ..core.exchange import EmbeddedExchange
from ..core.ticks import Tick
from .alert_control import AlertControl
from .alert_rules import SETTING_KEY as RULES_KEY
from .alert_rules import AlertRules
from .collector_config import (  # noqa: F401 - re-exported: the collector's own vocabulary
    CollectorConfig, ConfigError, _calendar_continuous, _calendar_open, kst_now, today_kst,
)
from .environment import kis_environment
from .handle import EngineReads
from .live_settings import LiveChanges
from .resume_points import ResumePoints
from .summary import collector_summary

log = logging.getLogger(__name__)

ExchangeFactory = Callable[[CollectorConfig], EmbeddedExchange]



def _load_calendar() -> None:
    """The session table and KRX holidays, loaded before the feed starts (worker thread): the
    feed's watchdog asks the calendar within a second of connecting, and loading it there held
    the event loop ≈ 0.3 s in the middle of the stream."""
    from ..market.calendar import default_calendar

    try:
        default_calendar()
    except Exception:     # the first caller on the loop reports it as before
        log.exception("trading calendar could not be loaded")


class Collector(LiveChanges, AlertControl, ResumePoints, EngineReads):
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
        self.market_watch: Any = None     # market_states.MarketStates (halts, VI), from start()
        self.alert_rules = AlertRules(config.threshold_pct, config.window_seconds)
        self._rule_tasks: set[asyncio.Task[Any]] = set()
        self._rules_to_store: AlertRules | None = None     # set before start(): stored by it
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
        self._resume_from: dict[tuple[str, str], Any] = {}   # (venue, code) → resume point
        self._quiet_until: dict[str, datetime] = {}    # a venue before judged trades up to this
        self._moves_raised: dict[str, list[tuple[str, int, datetime]]] = {}   # resume_points
        self._detector_venue = config.venue             # venue of the trades the detector holds
        self.alerts_quieted = 0
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
    def venue(self) -> str:
        """The venue streamed now: the configured one, or ``krx`` after a fallback."""
        return self.feed.venue.name if self.feed is not None else self.config.venue

    @property
    def simulated(self) -> bool:
        """Runs on the built-in market (trades around the clock, whatever the KRX calendar says)."""
        return self.exchange is not None

    @property
    def always_open(self) -> bool:
        """The built-in market trading around the clock (unless told to follow the session table)."""
        return self.exchange is not None and self.config.always_open is not False

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start everything; raises ConfigError with a user-facing reason when it cannot."""
        from .detector import MoveDetector
        from .market_states import MarketStates
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
        await asyncio.to_thread(_load_calendar)
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
        if self._rules_to_store is not None:     # set before the start: they win, and are kept
            self.alert_rules, self._rules_to_store = self._rules_to_store, None
            await asyncio.to_thread(self.repository.set_setting, RULES_KEY, self.alert_rules.to_json())
        elif stored_rules:
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
        self.market_watch = MarketStates(self)
        self.market_watch.start(self.collected)
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
            return replace(cfg.feed, always_open=always, venue=cfg.venue)
        # KIS issues a token a minute and tells the account holder each time: keep them across
        # restarts (the built-in market's tokens die with it, so there is nothing to keep)
        rest_options: dict[str, Any] = {}
        if self.exchange is None:
            from ..feed.token_cache import EncryptedTokenCache

            rest_options["token_cache"] = EncryptedTokenCache(self.paths.token_dir)
        return FeedConfig(venue=cfg.venue, session=SessionConfig(silence_timeout=cfg.silence_timeout),
                          always_open=always, rest_options=rest_options)

    async def _save_pending_gaps(self, left: list[PendingGap]) -> None:
        """What the feed could not back-fill before stopping becomes the pending set (gaps of
        symbols no longer watched, and today's gaps on another venue, are kept for a later run);
        past-day ones are kept on record as unrecoverable."""
        watched, venue = set(self.collected), self.config.venue
        keep = left + [g for g in self._pending_gaps if g.code not in watched
                       or (g.venue != venue and g.business_date == self.business_date)]
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
            is_market_open=lambda now: _calendar_open(now, self.venue),
            is_continuous=lambda now: _calendar_continuous(now, self.venue), clock=self.clock,
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
        self.environment, credentials = kis_environment(cfg)
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
        if self.market_watch is not None:
            await self.market_watch.stop()
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
        if self.market_watch is not None:
            self.market_watch.set_codes(collected)

    def market_states(self) -> dict[str, Any]:
        """Symbols halted or in a VI auction now: code → the MarketStateEvent that said so."""
        return self.market_watch.current() if self.market_watch is not None else {}

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

    # -- hot path -----------------------------------------------------------------------------
    def _on_ticks(self, ticks: Sequence[Tick], source: str = "ws") -> None:
        """Called on the loop with the trades of one read / back-fill page / poll."""
        if not ticks:
            return
        batch = tuple(ticks)
        if batch[0].venue != self._detector_venue:
            self._venue_changed(batch[0].venue)       # resume_points: each venue its own chain
        self.ticks_total += len(batch)
        self._ticks_by_source[source] = self._ticks_by_source.get(source, 0) + len(batch)
        self.writer.submit(batch)
        alerts = self.detector.process(batch)
        if alerts and self._quiet_until:
            alerts = [a for a in alerts if not self._quieted(a)]
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
        self._note_raised(alert)
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

    # -- reporting ----------------------------------------------------------------------------
    async def _report_loop(self) -> None:
        from .phase import PhaseWatcher

        phases = PhaseWatcher(self.bus, simulated=self.always_open, venue=self.venue,
                              clock=self.clock)
        last_total, last_time = self.ticks_total, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            rate = (self.ticks_total - last_total) / max(now - last_time, 1e-6)
            last_total, last_time = self.ticks_total, now
            self.bus.publish(RateEvent(round(rate, 1), self.ticks_total))
            phases.simulated = self.always_open
            phases.venue = self.venue
            phases.check()
            if not self.market_was_open:
                # KRX's sessions: every listed symbol trades there (in NXT-only sessions a symbol
                # not listed on NXT is quiet, not missing)
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
