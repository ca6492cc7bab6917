"""``kis-desk collect``: the collector without a window.

Runs until ``--duration`` ends or SIGINT/SIGTERM, logs progress, flushes everything on the way
out and prints one JSON summary as its last stdout line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from .aio import on_stop_signals
from .config import UserPaths, credentials_from_env, parse_codes
from .defaults import DEFAULT_ALERT_STREAM, DEFAULT_TRADE_STREAM, DEFAULT_VENUE
from .core.heap import freeze_startup_heap, thaw_heap
from .core.events import ErrorEvent, SessionStateEvent, SubscriptionPlanEvent
from .engine.collector import Collector, CollectorConfig, ConfigError
from .engine.storage.stats import human_bytes
from .wiring import build_collector

log = logging.getLogger("kis_desk.collect")


def config_from_args(args: argparse.Namespace) -> CollectorConfig:
    """Shared by ``collect`` and the desktop app; raises ConfigError for bad arguments."""
    cfg = CollectorConfig(env=args.env or "sim")
    cfg.venue = _venue(getattr(args, "venue", None))
    if args.codes is not None:
        try:
            cfg.codes = parse_codes(args.codes)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if not cfg.codes:
            raise ConfigError("--codes is empty")
    cfg.ws_url, cfg.rest_url = args.ws_url, args.rest_url
    if bool(cfg.ws_url) != bool(cfg.rest_url):
        raise ConfigError("--ws-url and --rest-url go together")
    cfg.db_url = _database_url(args.db) if args.db is not None else None
    cfg.redis_url = args.redis
    if args.redis_channel:
        cfg.redis_channel = args.redis_channel
    if getattr(args, "redis_ticks", None):
        if not args.redis:
            raise ConfigError("--redis-ticks needs --redis")
        cfg.redis_tick_channel = args.redis_ticks
    for option in ("redis_stream", "redis_trades", "redis_retention"):
        if getattr(args, option, None) is not None and not args.redis:
            raise ConfigError(f"--{option.replace('_', '-')} needs --redis")
    if args.redis:
        cfg.redis_stream = getattr(args, "redis_stream", None) or DEFAULT_ALERT_STREAM
        cfg.redis_trade_stream = getattr(args, "redis_trades", None)
    if getattr(args, "redis_retention", None) is not None:
        if not 100 <= args.redis_retention <= 10_000_000:
            raise ConfigError("--redis-retention must be between 100 and 10000000 entries")
        cfg.redis_trade_maxlen = args.redis_retention
    if args.threshold is not None:
        if not 0 < args.threshold < 100:
            raise ConfigError("--threshold must be between 0 and 100 (percent)")
        cfg.threshold_pct = args.threshold
    if args.window is not None:
        if not 1 <= args.window <= 3600:
            raise ConfigError("--window must be between 1 and 3600 seconds")
        cfg.window_seconds = args.window
    if getattr(args, "attach", False):
        if not (args.redis and args.db):
            raise ConfigError("--attach needs --redis (where the collector publishes) and --db "
                              "(the database it writes)")
        cfg.attach = True
        if cfg.redis_tick_channel is None:       # streams (durable), unless pub/sub was asked for
            cfg.redis_trade_stream = cfg.redis_trade_stream or DEFAULT_TRADE_STREAM
    if args.sim_rate is not None:
        if not 0 < args.sim_rate <= 50_000:
            raise ConfigError("--sim-rate must be between 0 and 50000 trades/s")
        cfg.sim_rate = args.sim_rate
    return cfg


def _venue(text: str | None) -> str:
    """--venue: krx, nxt or total (default ``DEFAULT_VENUE``), or a one-line reason why not."""
    from .market.venues import venue

    if text is None:
        return DEFAULT_VENUE
    try:
        return venue(text).name
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from exc


def _database_url(text: str) -> str:
    """--db: a SQLite or PostgreSQL URL, or a one-line reason why not."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"--db {text!r} is not a database URL (sqlite:///path or "
                          "postgresql://user@host/db)") from exc
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"--db: {url.get_backend_name()!r} databases are not supported "
                          "(sqlite:///path or postgresql://user@host/db)")
    return text


# Exit codes of ``collect`` (README: "Exit codes"); the first that applies wins.
EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 2
EXIT_ALL_KEYS_REJECTED = 3
EXIT_SYMBOLS_NEVER_COLLECTED = 4
EXIT_GAPS_LEFT = 5
EXIT_ALERTS_UNDELIVERED = 6


def exit_code(summary: dict[str, Any], fatal: bool) -> int:
    """The exit code a finished run ends with, from its summary."""
    if fatal:
        return EXIT_ALL_KEYS_REJECTED
    if summary.get("symbols_never_collected"):
        return EXIT_SYMBOLS_NEVER_COLLECTED
    if summary.get("gaps_unrecovered") or summary.get("gaps_pending"):
        return EXIT_GAPS_LEFT
    if summary.get("alerts_undelivered"):
        return EXIT_ALERTS_UNDELIVERED
    return EXIT_OK


def _watchlist_codes(db_url: str, name: str) -> list[str]:
    """A stored watchlist's codes (blocking: opens and migrates the database)."""
    from .engine.storage import Repository

    repo = Repository(db_url)
    try:
        return repo.watchlist_codes(name)
    finally:
        repo.close()


async def _load_watchlist(collector_cfg: CollectorConfig, name: str) -> None:
    (collector_cfg.paths or UserPaths.default()).ensure()
    codes = await asyncio.to_thread(_watchlist_codes, collector_cfg.database_url(), name)
    if not codes:
        raise ConfigError(f"watchlist {name!r} does not exist or is empty")
    collector_cfg.codes = codes


async def run_collect(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    cfg = config_from_args(args)
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be a positive number of seconds, not {args.duration:g}")
    try:
        from_env = credentials_from_env()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if cfg.env in ("mock", "real") and not from_env:
        # no KIS_APP_KEY…: fall back to the keys saved in the app's settings (OS keyring)
        from .settings import SettingsStore

        store = SettingsStore()
        saved = await asyncio.to_thread(store.credentials, store.load())
        if saved:
            cfg.credentials = saved
    if args.watchlist:
        await _load_watchlist(cfg, args.watchlist)
    collector = build_collector(cfg)
    fatal: list[str] = []

    def on_plan(event: SubscriptionPlanEvent) -> None:
        live = sum(len(v) for v in event.live.values())
        if event.keys_down:
            pass    # failover: the feed itself says which key is down and where its symbols went
        elif event.polled:
            log.warning("%d symbols live on %d app key(s); %d polled over REST (not live): %s. "
                        "%d app key(s) would make all %d live.", live, event.keys_configured,
                        len(event.polled), ",".join(event.polled), event.keys_needed,
                        live + len(event.polled))
        else:   # a plan, not a fact: the feed logs "all … live" once it is true
            log.info("%d symbols planned on %d app key(s)", live, event.keys_configured)

    def on_session(event: SessionStateEvent) -> None:
        states[event.session] = (event.state, event.detail)
        if (collector.feed is not None and len(states) == len(collector.feed.sessions)
                and all(state == "failed" for state, _ in states.values())):
            # every app key was refused: nothing can stream, say so and stop
            reason = "; ".join(f"{label}: {detail}" for label, (_, detail) in states.items())
            fatal.append(f"every app key was rejected ({reason})")
            stop.set()

    def on_error(event: ErrorEvent) -> None:
        if event.fatal:
            # non-fatal errors are logged where they happen; fatal ones end the run
            fatal.append(f"{event.source}: {event.message}")
            stop.set()

    states: dict[str, tuple[str, str]] = {}
    collector.bus.subscribe(SubscriptionPlanEvent, on_plan)
    collector.bus.subscribe(SessionStateEvent, on_session)
    collector.bus.subscribe(ErrorEvent, on_error)
    stop = asyncio.Event()
    undo_signals = on_stop_signals(asyncio.get_running_loop(), stop.set)   # Windows too
    try:
        await collector.start()
    except BaseException:
        undo_signals()
        raise
    freeze_startup_heap()      # the trade stream's collections walk only what it makes
    log.info("collecting %d symbols (%s); stop with Ctrl-C", len(collector.codes), cfg.env)
    await _log_storage(collector)
    try:
        progress = asyncio.create_task(_progress(collector))
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration)
        except TimeoutError:
            pass
        progress.cancel()
    finally:
        await collector.stop()
        undo_signals()
        thaw_heap()
    summary = collector.summary()
    for message in fatal:
        print(f"kis-desk collect: {message}", file=sys.stderr)
    code = exit_code(summary, bool(fatal))
    if summary["symbols_never_collected"]:
        log.warning("%d symbol(s) never collected: %s", len(summary["symbols_never_collected"]),
                    ",".join(summary["symbols_never_collected"]))
    if summary["gaps_unrecovered"] or summary["gaps_pending"]:
        log.warning("gaps left: %d unrecovered, %d pending for the next run",
                    summary["gaps_unrecovered"], summary["gaps_pending"])
    if summary["alerts_undelivered"]:
        log.warning("%d alert(s) not delivered to Redis", summary["alerts_undelivered"])
    log.info("database: %s on disk, raw trades kept %s (1-minute bars forever), %d removed by "
             "retention in this run", human_bytes(summary["database_bytes"]),
             _kept(summary["retention_days"]), summary["purged"])
    return code, summary


def _kept(days: int) -> str:
    return f"{days} days" if days > 0 else "forever"


async def _log_storage(collector: Collector) -> None:
    """Where the trades go and how long they stay (one line at start; never fails the run)."""
    try:
        info = await collector.storage_info()
    except Exception as exc:  # noqa: BLE001 - informational
        log.warning("database size unavailable: %s", exc)
        return
    days = (f"{info.trade_days} day(s) of raw trades ({info.oldest_trade_day} – {info.newest_trade_day})"
            if info.oldest_trade_day else "no raw trades yet")
    log.info("database %s: %s on disk, %s, raw trades kept %s (1-minute bars forever)", info.database,
             human_bytes(info.size_bytes), days, _kept(collector.config.retention_days))


async def _progress(collector: Collector) -> None:
    while True:
        await asyncio.sleep(10)
        s = collector.summary()
        log.info("received %d stored %d duplicates %d backfilled %d reconnects %d alerts %d "
                 "journaled %d", s["received"], s["stored"], s["duplicates"], s["backfilled"],
                 s["reconnects"], s["alerts"], s["journaled"])


def collect_main(args: argparse.Namespace) -> int:
    try:
        code, summary = asyncio.run(run_collect(args))
    except ConfigError as exc:
        print(f"kis-desk collect: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return code
