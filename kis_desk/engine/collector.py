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
from dataclasses import dataclass, field, replace
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
from ..defaults import (
    DEFAULT_SILENCE_TIMEOUT, DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS, RETENTION_DAYS,
    TRADE_STREAM_MAXLEN,
)
from ..core.errors import describe
from ..logs import register_secret
from ..protocol.records import KST
from ..core.events import (
    AlertEvent, DayRolloverEvent, ErrorEvent, EventBus, PendingGap, RateEvent, TicksEvent,
)
from ..core.exchange import EmbeddedExchange
from ..core.ticks import Tick
from .alert_rules import SETTING_KEY as RULES_KEY
from .alert_rules import AlertRules
from .handle import EngineReads

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration the collector cannot start with; the message is for the user."""


@dataclass
class CollectorConfig:
    env: str = "sim"                               # sim | mock | real | custom
    codes: list[str] = field(default_factory=list)  # empty → the default 50-symbol watchlist
    ws_url: str | None = None
    rest_url: str | None = None
    credentials: list[AppCredential] | None = None  # None → environment variables (mock/real)
    db_url: str | None = None                       # None → SQLite in the user data directory
    redis_url: str | None = None
    redis_channel: str = "kis:alerts"
    redis_stream: str | None = None                  # alerts also XADDed here (attached desktops)
    redis_tick_channel: str | None = None            # also publish every tick on pub/sub (best effort)
    redis_trade_stream: str | None = None            # XADD every trade here (attached desktops)
    redis_trade_maxlen: int = TRADE_STREAM_MAXLEN    # trade stream retention, entries (≈ batches)
    threshold_pct: float = DEFAULT_THRESHOLD_PCT
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    overrides: dict[str, tuple[float, float]] = field(default_factory=dict)
    sim_rate: float = 200.0
    sim_keys: int = 2                               # simulated app keys (2 → 50 symbols all live)
    sim_jumps: list[tuple[str, float, float]] = field(default_factory=list)  # (code, pct, seconds)
    sim_spikes: bool = True                         # demo realism: news-like spikes every few minutes
    #: also collect every other stored watchlist (the desktop: a list not on screen keeps
    #: recording); the shown list gets live registrations first, the rest what is left or polling
    collect_all_watchlists: bool = False
    silence_timeout: float = DEFAULT_SILENCE_TIMEOUT
    retention_days: int = RETENTION_DAYS            # raw trades kept; bars_1m kept forever
    always_open: bool | None = None                 # None → True for sim, calendar otherwise
    # The feed's own settings (failover delays, stall watchdog, back-fill drain): None → the
    # production defaults with ``silence_timeout`` above. Tests and benchmarks pass a FeedConfig
    # to run fault scenarios on compressed time; ``always_open`` above still applies.
    feed: Any = None                                # kis_desk.feed.config.FeedConfig | None
    attach: bool = False                            # desktop only: show a remote collector
    paths: UserPaths | None = None

    @property
    def embedded_sim(self) -> bool:
        """The built-in simulator (not a KIS-compatible server at explicit URLs)."""
        return self.env == "sim" and not (self.ws_url or self.rest_url)

    def database_url(self) -> str:
        """--db, else the user's SQLite database; simulated trades get their own file so they
        never mix with real market data."""
        if self.db_url:
            return self.db_url
        paths = self.paths or UserPaths.default()
        return paths.default_demo_database_url if self.embedded_sim else paths.default_database_url


def _calendar_open(now: datetime) -> bool:
    from ..market.calendar import phase_at

    return phase_at(now).trading


def _calendar_continuous(now: datetime) -> bool:
    from ..market.calendar import MarketPhase, phase_at

    return phase_at(now) is MarketPhase.OPEN


def kst_now() -> datetime:
    """Wall clock in KST (the collector's default clock)."""
    return datetime.now(KST)


def today_kst(clock: Callable[[], datetime] = kst_now) -> date:
    """The KST business date by ``clock`` (KIS stamps trades with the KST calendar date)."""
    return clock().date()


#: CollectorConfig fields that need a new feed (new sessions, new credentials) when changed.
_FEED_FIELDS = ("env", "ws_url", "rest_url", "credentials", "silence_timeout", "always_open")
#: … a new Redis publisher.
_REDIS_FIELDS = ("redis_url", "redis_channel", "redis_stream", "redis_tick_channel")
#: … a reconfigured detector.
_DETECTOR_FIELDS = ("threshold_pct", "window_seconds", "overrides")

ExchangeFactory = Callable[[CollectorConfig], EmbeddedExchange]


class Collector(EngineReads):
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
                                 retention_days=cfg.retention_days)
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
          credentials; its back-fill from the newest trade received closes the gap.

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
            self.config = new
            return changed + (["database"] if db_change else [])

    async def _switch_publisher(self, new: CollectorConfig) -> None:
        old = self.publisher
        fresh = await self._start_publisher(new) if new.redis_url else None
        self.publisher = fresh                  # alerts from now on go to the new one
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
                            retention_days=self.config.retention_days)
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
        log.info("feed restarted on %s with %d app key(s) (applied live)",
                 self.environment.name if self.environment else "?", len(credentials))

    async def _start_feed_again(self, credentials: list[AppCredential]) -> None:
        self.feed = self._new_feed(credentials)
        await self.feed.start(self.codes)

    def summary(self) -> dict[str, Any]:
        """Counters for the CLI's closing JSON line, the exit code and the self-check.

        One place that reads each component's stats value.
        """
        feed = _Fields(self.feed.stats() if self.feed is not None else None,
                       [_Fields(s) for s in self._retired_feeds])
        storage = _Fields(self.writer.stats() if self.writer is not None else None,
                          [_Fields(s) for s in self._retired_storage])
        publisher: Any = _Fields(self.publisher.stats() if self.publisher is not None else None,
                                 [_Fields(s) for s in self._retired_publishers])
        if self.publisher is None and not self._retired_publishers:
            publisher = None
        dark = self.symbols_never_collected()
        return {
            "received": self.ticks_total,
            "received_ws": self._ticks_by_source.get("ws", 0),
            "stored": storage["stored"],
            "duplicates": storage["duplicates"],
            "journaled": storage["journaled"],
            "failed": storage["failed"],
            "database_bytes": storage["database_bytes"],
            "retention_days": storage["retention_days"],
            "purged": storage["purged"],
            "backfilled": feed["backfilled"],
            "polled": feed["polled"],
            "reconnects": feed["reconnects"],
            "protocol_errors": feed["protocol_errors"],
            "gaps_unrecovered": feed["gaps_unrecovered"],
            "gaps_pending": self.gaps_left if self._stopping else feed["gaps_pending"],
            "worst_gap_s": feed["worst_gap_s"],
            "symbols_dark": max(len(dark), feed["symbols_dark"]),
            "symbols_never_collected": dark,
            "keys_down": list(self.feed.stats().keys_down) if self.feed is not None else [],
            "alerts": self.alerts,
            "alerts_late": self.alerts_late,
            "alerts_delivered": publisher["delivered"] if publisher else 0,
            "alerts_dropped": publisher["dropped"] if publisher else 0,
            "alerts_undelivered": (publisher["pending"] + publisher["dropped"]) if publisher else 0,
            "trades_streamed": publisher["trades_streamed"] if publisher else 0,
            "trades_stream_dropped": publisher["trades_dropped"] if publisher else 0,
            "symbols": len(self.codes),
        }

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
_RUN_TOTALS = frozenset({"stored", "duplicates", "journaled", "failed", "backfilled", "polled",
                         "reconnects", "protocol_errors", "gaps_unrecovered", "delivered",
                         "dropped", "trades_streamed", "trades_dropped"})


class _Fields:
    """Reads a component's stats (a frozen dataclass, or a dict while a component still
    returns one) by name; a missing field is 0. ``retired``: the stats of the components it
    replaced during this run (their run totals count too)."""

    def __init__(self, stats: Any, retired: Sequence[_Fields] = ()) -> None:
        self._stats = stats
        self._retired = retired

    def __getitem__(self, name: str) -> Any:
        s = self._stats
        value: Any = 0
        if s is not None:
            value = s.get(name, 0) if isinstance(s, dict) else getattr(s, name, 0)
            value = 0 if value is None else value
        if name in _RUN_TOTALS:
            return value + sum(r[name] for r in self._retired)
        if name == "worst_gap_s":
            return max([value, *(r[name] for r in self._retired)])
        return value
