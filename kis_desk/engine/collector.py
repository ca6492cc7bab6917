"""The collector: feed → storage + detector → publishers, with one event bus out.

It runs headless (``kis-desk collect``) and inside the desktop app; it knows nothing about Qt.
Everything it reports goes out as engine events (engine.events) on ``self.bus``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
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
from ..core.defaults import (
    DEFAULT_SILENCE_TIMEOUT, DEFAULT_THRESHOLD_PCT, DEFAULT_WINDOW_SECONDS, TRADE_STREAM_MAXLEN,
)
from ..core.errors import describe
from ..logs import register_secret
from ..protocol.records import KST
from ..core.events import AlertEvent, EventBus, FeedStats, PendingGap, RateEvent, TicksEvent
from ..core.exchange import EmbeddedExchange
from ..core.ticks import Tick
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
    always_open: bool | None = None                 # None → True for sim, calendar otherwise
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


def today_kst() -> date:
    return datetime.now(KST).date()


class Collector(EngineReads):
    """Owns the feed, the writer, the detector and the publisher for one watchlist."""

    def __init__(self, config: CollectorConfig, bus: EventBus | None = None,
                 exchange: EmbeddedExchange | None = None) -> None:
        """``exchange``: the in-process market to run when ``config.embedded_sim`` (supplied by
        the composition root, ``kis_desk.wiring.build_collector``)."""
        from ..market.symbols import default_directory, default_watchlist

        self.config = config
        self.bus = bus or EventBus()
        self.paths = (config.paths or UserPaths.default()).ensure()
        self.symbols = default_directory()
        self.codes: list[str] = list(config.codes) or default_watchlist()
        self.background: list[str] = []   # other stored watchlists' codes (collect_all_watchlists)
        self.exchange = exchange
        self.writer: Any = None
        self.repository: Any = None
        self.detector: Any = None
        self.publisher: Any = None
        self.feed: Any = None
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
        self._resume_from: dict[str, Tick | None] = {}
        self._publish_ticks = False
        self._started = False
        self._stopping = False

    @property
    def simulated(self) -> bool:
        """Runs on the built-in market (trades around the clock, whatever the KRX calendar says)."""
        return self.exchange is not None

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start everything; raises ConfigError with a user-facing reason when it cannot."""
        from ..feed.manager import FeedManager
        from .detector import MoveDetector
        from .storage import Repository, TickWriter

        cfg = self.config
        db_url = cfg.database_url()
        self.writer = TickWriter(db_url, journal_dir=self.paths.journal_dir_for(db_url), bus=self.bus)
        try:
            await self.writer.start()
            self.repository = await asyncio.to_thread(Repository, db_url)
            if cfg.collect_all_watchlists:
                self.background = await asyncio.to_thread(self._background_codes, self.codes)
            self._last_ticks = await asyncio.to_thread(self._load_last_ticks, self.collected)
            raised_today = await asyncio.to_thread(self.repository.alert_ids_on, today_kst())
            self._pending_gaps = await asyncio.to_thread(self.repository.list_pending_gaps)
        except Exception as exc:
            await self.writer.stop()
            raise ConfigError(f"database {redact_url(db_url)} is not usable: {describe(exc)}") from exc
        try:
            credentials = await self._prepare_environment()
        except BaseException:
            await self.writer.stop()      # nothing was received; release the database
            self.repository.close()
            raise
        self.detector = MoveDetector(cfg.threshold_pct, cfg.window_seconds,
                                     overrides=dict(cfg.overrides), names=self.symbols.name)
        # alerts an earlier run raised today are never raised again (restarts, replays)
        self.detector.seed(raised_today)
        if cfg.redis_url:
            from .publisher import RedisPublisher

            self.publisher = RedisPublisher(cfg.redis_url, channel=cfg.redis_channel,
                                            stream=cfg.redis_stream, bus=self.bus,
                                            tick_channel=cfg.redis_tick_channel,
                                            trade_stream=cfg.redis_trade_stream,
                                            trade_stream_maxlen=cfg.redis_trade_maxlen)
            await self.publisher.start()
        self._publish_ticks = self.publisher is not None and bool(
            cfg.redis_tick_channel or cfg.redis_trade_stream)
        assert self.environment is not None
        self.feed = FeedManager(
            self.environment, credentials, self._on_ticks, bus=self.bus,
            config=self._feed_config(), last_seen=self._last_seen,
            is_market_open=_calendar_open, is_continuous=_calendar_continuous,
        )
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

    async def _prepare_environment(self) -> list[AppCredential]:
        cfg = self.config
        if cfg.embedded_sim:
            if self.exchange is None:
                raise ConfigError("the built-in simulator was not supplied (use wiring.build_collector)")
            resume = {t.stock_code: (t.timestamp.strftime("%Y%m%d"), t.price, t.cum_volume,
                                     t.price * t.cum_volume)
                      for t in self._last_ticks.values() if t is not None}
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
        log.info("collector stopped")

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
        self.bus.publish(TicksEvent(batch))
        if self._publish_ticks:
            self.publisher.publish_ticks(batch)   # other hosts' desktops
        for alert in alerts:
            self._emit_alert(alert)

    def _emit_alert(self, alert: AlertEvent) -> None:
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
        today = today_kst()
        last: dict[str, Tick | None] = {}
        for code in codes:
            last[code] = self.repository.last_trade(code, today)
            hole = self.repository.last_before_first_gap(code, today) if last[code] else None
            if hole is not None:
                log.warning("%s: stored trades have a gap after cumulative volume %d (an earlier "
                            "run stopped mid back-fill); back-filling from there", code, hole.cum_volume)
            self._resume_from[code] = hole or last[code]
        return last

    def _last_seen(self, code: str) -> tuple[date, int, str] | None:
        """(date, cum_volume, HHMMSS) of the trade the feed back-fills from after a restart: the
        newest stored one, or the one before a hole. Served from the cache loaded off the loop."""
        tick = self._resume_from.get(code)
        if tick is None:
            return None
        return tick.timestamp.date(), tick.cum_volume, tick.timestamp.strftime("%H%M%S")

    # -- reporting ----------------------------------------------------------------------------
    async def _report_loop(self) -> None:
        from .phase import PhaseWatcher

        phases = PhaseWatcher(self.bus, simulated=self.exchange is not None)
        last_total, last_time = self.ticks_total, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            rate = (self.ticks_total - last_total) / max(now - last_time, 1e-6)
            last_total, last_time = self.ticks_total, now
            self.bus.publish(RateEvent(round(rate, 1), self.ticks_total))
            phases.check()
            if not self.market_was_open:
                self.market_was_open = self.simulated or _calendar_open(datetime.now(KST))

    def summary(self) -> dict[str, Any]:
        """Counters for the CLI's closing JSON line, the exit code and the self-check.

        One place that reads each component's stats value.
        """
        feed = self.feed.stats() if self.feed is not None else FeedStats()
        storage = _Fields(self.writer.stats() if self.writer is not None else None)
        publisher = self.publisher.stats() if self.publisher is not None else None
        dark = self.symbols_never_collected()
        return {
            "received": self.ticks_total,
            "received_ws": self._ticks_by_source.get("ws", 0),
            "stored": storage["stored"],
            "duplicates": storage["duplicates"],
            "journaled": storage["journaled"],
            "failed": storage["failed"],
            "backfilled": feed.backfilled,
            "polled": feed.polled,
            "reconnects": feed.reconnects,
            "protocol_errors": feed.protocol_errors,
            "gaps_unrecovered": feed.gaps_unrecovered,
            "gaps_pending": self.gaps_left if self._stopping else feed.gaps_pending,
            "worst_gap_s": feed.worst_gap_s,
            "symbols_dark": max(len(dark), feed.symbols_dark),
            "symbols_never_collected": dark,
            "keys_down": list(feed.keys_down),
            "alerts": self.alerts,
            "alerts_late": self.alerts_late,
            "alerts_delivered": publisher.delivered if publisher else 0,
            "alerts_dropped": publisher.dropped if publisher else 0,
            "alerts_undelivered": (publisher.pending + publisher.dropped) if publisher else 0,
            "trades_streamed": publisher.trades_streamed if publisher else 0,
            "trades_stream_dropped": publisher.trades_dropped if publisher else 0,
            "symbols": len(self.codes),
        }

    def symbols_never_collected(self) -> list[str]:
        """Watchlist symbols without a single trade this run, counted only when the market
        was open at some point (outside sessions nothing trades)."""
        if not self.market_was_open or self.detector is None:
            return []
        seen = self.detector.codes()
        return [c for c in self.codes if c not in seen]


class _Fields:
    """Reads a component's stats (a frozen dataclass, or a dict while a component still
    returns one) by name; a missing field is 0."""

    def __init__(self, stats: Any) -> None:
        self._stats = stats

    def __getitem__(self, name: str) -> Any:
        s = self._stats
        if s is None:
            return 0
        value = s.get(name, 0) if isinstance(s, dict) else getattr(s, name, 0)
        return 0 if value is None else value
