"""Desktop entry point: one asyncio loop inside Qt (qasync), the collector on that loop.

Shutdown (window close, SIGINT, SIGTERM) always goes through ``await collector.stop()``, which
flushes every received trade to the database (or its journal) before the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..aio import on_stop_signals
from ..config import UserPaths
from ..engine.collector import Collector, CollectorConfig, ConfigError
from ..engine.user_settings import merge_settings  # noqa: F401  (re-exported: app_main, tests)
from ..wiring import build_collector
from ..settings import SettingsStore, UserSettings
from .i18n import set_language, tr

log = logging.getLogger(__name__)

DEFAULT_WATCHLIST = {"ko": "기본", "en": "Default"}
CLI_WATCHLIST = "--codes"


def resolve_watchlist(db_url: str, requested: str | None, cli_codes: Sequence[str],
                      settings: UserSettings) -> tuple[str, list[str]]:
    """Which stored watchlist to open and its codes (creates the default list on first run).

    Blocking (database): run it in a worker thread.
    """
    from ..engine.storage import Repository
    from ..market.symbols import default_watchlist

    repo = Repository(db_url)
    try:
        names = repo.list_watchlists()
        if cli_codes:
            if CLI_WATCHLIST in names:
                repo.set_watchlist_codes(CLI_WATCHLIST, cli_codes)
            else:
                repo.create_watchlist(CLI_WATCHLIST, cli_codes)
            return CLI_WATCHLIST, list(cli_codes)
        if requested:
            if requested not in names:
                raise ConfigError(f"watchlist {requested!r} does not exist")
            return requested, repo.watchlist_codes(requested)
        if not names:
            name = DEFAULT_WATCHLIST.get(settings.language, "Default")
            codes = default_watchlist()
            repo.create_watchlist(name, codes)
            return name, codes
        name = settings.watchlist if settings.watchlist in names else names[0]
        return name, repo.watchlist_codes(name)
    finally:
        repo.close()


async def run_window(config: CollectorConfig, *, store: SettingsStore | None = None,
                     watchlist: str | None = None, on_started: Callable[[Any], Any] | None = None,
                     stop: asyncio.Event | None = None, instance: Any = None,
                     clock: Callable[[], datetime] | None = None) -> int:
    """Create the collector and the window, run until closed/signalled, stop cleanly.
    ``clock``: the market's KST clock (None: wall time; the screenshots' NXT scene moves it)."""
    from PySide6.QtWidgets import QMessageBox

    from .main_window import MainWindow

    store = store or SettingsStore()
    settings = store.load()
    set_language(settings.language)
    (config.paths or UserPaths.default()).ensure()
    # the watchlist is read from the very database the collector will use (not pinned in the
    # config: a live environment switch in Settings moves to that environment's database)
    db_url = config.database_url()
    stop = stop or asyncio.Event()
    from .gc_guard import GuiThreadGarbageCollector

    gc_guard = GuiThreadGarbageCollector()
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance()
    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)    # quit only after the collector has flushed
    undo_signals = on_stop_signals(asyncio.get_running_loop(), stop.set)

    name, codes = await asyncio.to_thread(resolve_watchlist, db_url, watchlist, config.codes, settings)
    config.codes = list(codes)
    config.collect_all_watchlists = True     # lists not on screen keep recording (shown list first)
    if config.attach:
        from ..engine.remote import RemoteEngine

        streams = config.redis_trade_stream is not None       # else pub/sub (--redis-ticks)
        collector: Any = RemoteEngine(config.redis_url or "", db_url, alert_channel=config.redis_channel,
                                      tick_channel=config.redis_tick_channel, codes=config.codes,
                                      trade_stream=config.redis_trade_stream, venue=config.venue,
                                      alert_stream=(config.redis_stream or DEFAULT_ALERT_STREAM) if streams else None)
    else:
        collector = build_collector(config, clock=clock)
    window = MainWindow(collector, store, settings)
    window.closeRequested.connect(stop.set)
    retry = asyncio.Event()
    window.retryStart.connect(retry.set)
    if instance is not None:      # a second start of the app for this profile shows this window
        from .single_instance import bring_to_front

        instance.activated.connect(lambda: bring_to_front(window))
    window.prepare(codes)
    window.show()
    started = False
    try:
        while not stop.is_set():
            try:
                await collector.start()
                started = True
                break
            except ConfigError as exc:
                box = QMessageBox(QMessageBox.Icon.Critical, tr("error.title"),
                                  tr("error.start", message=str(exc)), QMessageBox.StandardButton.Ok, window)
                box.open()
                window.open_settings()
                retry.clear()         # the settings dialog applies its changes, then start again
                await _first(retry.wait(), stop.wait())
        if started:
            if not codes:
                await collector.set_watchlist([])
            await window.start(name, codes)
            if not store.secrets.persistent:
                window.status.showMessage(tr("error.keyring_session"), 15000)
        if on_started is not None:
            result = on_started(window)
            if asyncio.iscoroutine(result):
                await result
        await stop.wait()
    finally:
        if window.isVisible():
            window.save_layout()
        await window.shutdown()
        await collector.stop()      # flushes storage
        window.hide()
        window.deleteLater()
        undo_signals()
        qapp.setQuitOnLastWindowClosed(quit_on_close)
        gc_guard.stop()
    return 0


async def _first(*waits: Any) -> None:
    """Wait until the first of ``waits`` (coroutines) finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


def run_app(argv: Sequence[str], config: CollectorConfig, *, watchlist: str | None = None,
            store: SettingsStore | None = None, on_started: Callable[[Any], Any] | None = None,
            single_instance: bool = False, clock: Callable[[], datetime] | None = None) -> int:
    """QApplication + qasync loop + window + collector; returns the exit code.

    ``single_instance``: if the app already runs for this profile (same data directory), ask it
    to raise its window and return 0 without starting a second engine (kis_desk/ui/single_instance.py).
    """
    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv))
    app.setApplicationName("kis-desk")
    app.setOrganizationName("kis-desk")
    app.setQuitOnLastWindowClosed(False)     # we quit after the collector has flushed
    instance = None
    if single_instance:
        from .single_instance import InstanceBusyError, SingleInstance

        profile = (config.paths or UserPaths.default()).ensure().data
        instance = SingleInstance(profile)
        try:
            if not instance.acquire():
                print(f"kis-desk: already running for this profile ({profile}); raised its window", flush=True)
                return 0
        except (InstanceBusyError, OSError) as exc:
            print(f"kis-desk: {exc}", file=sys.stderr)
            return 2
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(run_window(config, store=store, watchlist=watchlist,
                                                  on_started=on_started, instance=instance,
                                                  clock=clock))
    finally:
        loop.close()                 # joins the worker threads of asyncio.to_thread
        asyncio.set_event_loop(None)
        if instance is not None:
            instance.release()


def app_main(args: argparse.Namespace) -> int:
    """``kis-desk`` / ``kis-desk app``: command-line options over saved settings."""
    from ..headless import config_from_args

    store = SettingsStore()
    try:
        config = config_from_args(args)
        merge_settings(config, args, store.load(), store)
        return run_app(sys.argv, config, watchlist=getattr(args, "watchlist", None), store=store,
                       single_instance=True)
    except ConfigError as exc:
        print(f"kis-desk: {exc}", file=sys.stderr)
        return 2
