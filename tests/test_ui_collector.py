"""The desktop on the real Collector and simulator: live watchlist edits, alerts, clean shutdown."""

from __future__ import annotations

import asyncio
import os

import pytest

from kis_desk.config import UserPaths
from kis_desk.engine.collector import CollectorConfig
from kis_desk.wiring import build_collector
from kis_desk.core.events import AlertEvent, Event, SubscriptionPlanEvent
from kis_desk.engine.storage import Repository
from kis_desk.settings import SettingsStore, UserSettings
from kis_desk.ui.app import CLI_WATCHLIST, run_window
from test_ui_support import until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("memory_keyring")]


def test_live_edits_reach_the_collector_and_shutdown_flushes(qloop):
    store = SettingsStore()
    store.save(UserSettings(sound=False))
    config = CollectorConfig(env="sim", codes=["005930", "000660"], sim_rate=300, sim_keys=1,
                             sim_spikes=False)   # the only alert is the scripted jump's
    plans: list[SubscriptionPlanEvent] = []
    alerts: list[AlertEvent] = []
    seen: dict[str, int] = {}

    async def script(window) -> None:
        def on_event(e):
            if isinstance(e, SubscriptionPlanEvent):
                plans.append(e)
            elif isinstance(e, AlertEvent):
                alerts.append(e)
        window.engine.bus.subscribe(Event, on_event)
        model = window.model
        await until(lambda: all(model.state(c).price is not None for c in ("005930", "000660")),
                    what="first prices")
        live = lambda: {c for codes in plans[-1].live.values() for c in codes} if plans else set()  # noqa: E731

        assert window.editor.add_text("035420")                   # subscribe live
        await until(lambda: "035420" in live(), what="035420 subscribed")
        await until(lambda: model.state("035420").price is not None, what="035420 prices")
        window.editor.remove_codes(["000660"])                     # unsubscribe live
        await until(lambda: "000660" not in live(), what="000660 unsubscribed")
        assert window.engine.codes == ["005930", "035420"]
        seen.update({c: model.state(c).cum_volume for c in model.codes()})

        window.engine.exchange.simulator.jump("005930", 7.0, 2.0)           # an alert, end to end
        await until(lambda: alerts, timeout=30, what="an alert")
        await until(lambda: window.alert_dock.model.rowCount() >= 1, what="alert in the dock")
        assert window.model.pending_alerts("005930")
        assert window.banner.isVisible()
        window.select_code("005930")
        await until(lambda: window.chart.series.n > 0, what="chart data")
        window.close()                                              # → collector.stop()

    code = qloop.run_until_complete(asyncio.wait_for(
        run_window(config, store=store, on_started=script), 120))
    assert code == 0
    assert seen["035420"]
    repo = Repository(UserPaths.default().default_demo_database_url)
    try:
        assert repo.watchlist_codes(CLI_WATCHLIST) == ["005930", "035420"]
        assert repo.count_ticks("035420") > 0          # flushed on the way out
    finally:
        repo.close()
    assert store.load().watchlist == CLI_WATCHLIST


def test_a_halted_symbol_shows_halted_in_the_engine_and_the_grid(qloop):
    """The simulator halts one symbol: the engine's watch finds it (inquire-price, no
    registration), EngineHandle.market_states() says so and the grid's badge reads 정지; when
    trading resumes both clear. Exactly one halt and one end, for that symbol only."""
    from dataclasses import replace

    from kis_desk.core.events import MarketStateEvent
    from kis_desk.ui.watchlist_model import Col

    store = SettingsStore()
    store.save(UserSettings(sound=False))
    config = CollectorConfig(env="sim", codes=["005930", "000660"], sim_rate=300, sim_keys=1,
                             sim_spikes=False)
    events: list[MarketStateEvent] = []
    shown: dict[str, object] = {}

    async def script(window) -> None:
        engine, model = window.engine, window.model
        engine.bus.subscribe(MarketStateEvent, events.append)
        await until(lambda: all(model.state(c).price is not None for c in ("005930", "000660")),
                    what="first prices")
        watch = engine.market_watch.watch
        watch.config = replace(watch.config, quiet_after=1.0, interval=0.2, recheck=0.5)

        def badge() -> object:
            model.flush()
            return model.cells(model.row_of("000660"))[Col.BADGE][0]
        engine.exchange.simulator.faults.halt("000660", None)
        await until(lambda: badge() == "정지", timeout=30, what="the halt badge")
        shown["states"] = {c: e.state for c, e in engine.market_states().items()}
        shown["other"] = model.cells(model.row_of("005930"))[Col.BADGE][0]
        engine.exchange.simulator.faults.resume("000660")
        await until(lambda: badge() is None and not engine.market_states(), timeout=30, what="cleared")
        window.close()

    code = qloop.run_until_complete(asyncio.wait_for(
        run_window(config, store=store, on_started=script), 120))
    assert code == 0
    assert shown == {"states": {"000660": "halted"}, "other": None}
    assert [(e.stock_code, e.state, e.source) for e in events] == [("000660", "halted", "probe"),
                                                                    ("000660", "", "trade")]


@pytest.mark.skipif(os.name == "nt", reason="os.kill(SIGTERM) on Windows terminates the test process itself")
def test_sigterm_stops_cleanly_and_flushes(qloop):
    import os
    import signal

    store = SettingsStore()
    store.save(UserSettings(sound=False))
    config = CollectorConfig(env="sim", codes=["005930", "000660"], sim_rate=300, sim_keys=1)
    received: dict[str, int] = {}

    async def script(window) -> None:
        await until(lambda: window.model.ticks_applied > 50, what="trades")
        received["n"] = window.model.ticks_applied
        os.kill(os.getpid(), signal.SIGTERM)      # as a service manager would

    code = qloop.run_until_complete(asyncio.wait_for(
        run_window(config, store=store, on_started=script), 120))
    assert code == 0
    repo = Repository(UserPaths.default().default_demo_database_url)
    try:
        assert repo.count_ticks() >= received["n"]      # everything the window saw is stored
    finally:
        repo.close()


def test_second_start_shows_the_first_runs_sparklines_at_once(qloop):
    """Run the real app on the simulator twice on one KIS_DESK_HOME: the second window's rows
    carry the first run's intraday sparkline and 1-minute change as soon as history loads."""
    from datetime import datetime, timedelta

    from kis_desk.protocol.records import KST

    codes = ["005930", "000660", "035420"]
    store = SettingsStore()
    store.save(UserSettings(sound=False))
    first_run: dict[str, list] = {}
    second: dict[str, object] = {}

    async def run1(window) -> None:
        await until(lambda: all(len(window.model.state(c).spark.points) >= 4 for c in codes),
                    timeout=60, what="4 seconds of trades on every row")
        window.close()

    async def run2(window) -> None:
        model = window.model
        await until(lambda: all(model.state(c).pending is None for c in codes), what="history loaded")
        second["points"] = {c: list(model.state(c).spark.points) for c in codes}
        second["change_1m"] = {c: model.state(c).change_1m for c in codes}
        window.close()

    config = CollectorConfig(env="sim", codes=codes, sim_rate=300, sim_keys=1)
    assert qloop.run_until_complete(asyncio.wait_for(run_window(config, store=store, on_started=run1), 120)) == 0
    repo = Repository(UserPaths.default().default_demo_database_url)
    try:
        day = datetime.now(KST).replace(hour=0, minute=0, second=0, microsecond=0)
        for c in codes:
            first_run[c] = [p for _, p, _ in repo.price_buckets(c, day, day + timedelta(days=1), 1)]
    finally:
        repo.close()
    config = CollectorConfig(env="sim", codes=codes, sim_rate=300, sim_keys=1)
    assert qloop.run_until_complete(asyncio.wait_for(run_window(config, store=store, on_started=run2), 120)) == 0
    for c in codes:
        pts = second["points"][c]
        stored = first_run[c]
        assert len(stored) >= 4
        # the first run's per-second closes, in order, at the start of the second run's line
        assert pts[:len(stored) - 1] == stored[:-1], c
        assert second["change_1m"][c] is not None


@pytest.mark.redis
def test_desktop_attached_to_a_collector_elsewhere_shows_its_trades_and_alerts(qloop, tmp_path, redis_url):
    """The UI is indifferent to where events come from: here they cross Redis."""
    import uuid

    from kis_desk.engine.collector import Collector

    store = SettingsStore()
    store.save(UserSettings(sound=False))
    shared_db = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    alerts_ch, ticks_ch = f"kis:a:{uuid.uuid4().hex[:6]}", f"kis:t:{uuid.uuid4().hex[:6]}"
    codes = ["005930", "000660"]
    remote_host = build_collector(CollectorConfig(
        env="sim", codes=codes, sim_rate=300, db_url=shared_db, redis_url=redis_url,
        redis_channel=alerts_ch, redis_tick_channel=ticks_ch, sim_spikes=False,
        paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c")))
    desktop = CollectorConfig(env="sim", codes=codes, db_url=shared_db, redis_url=redis_url,
                              redis_channel=alerts_ch, redis_tick_channel=ticks_ch, attach=True)

    async def script(window) -> None:
        await remote_host.start()
        try:
            model = window.model
            await until(lambda: all(model.state(c).price is not None for c in codes), what="prices via Redis")
            await until(lambda: model.feed_state(model.state("005930")) == "live", what="row live")
            remote_host.exchange.simulator.jump("000660", 7.0, 1.0)
            await until(lambda: model.pending_alerts("000660"), timeout=30, what="alert via Redis")
        finally:
            await remote_host.stop()
        window.close()

    code = qloop.run_until_complete(asyncio.wait_for(
        run_window(desktop, store=store, on_started=script), 120))
    assert code == 0


def test_settings_fix_a_failed_start_without_restarting_the_app(qloop, monkeypatch):
    """No keys for the real environment: the start fails, Settings open; switching to the
    simulator there starts the collector at once (and on the simulator's own database)."""
    from kis_desk.ui.settings_dialog import SettingsDialog

    for k in list(os.environ):
        if k.startswith("KIS_APP_"):
            monkeypatch.delenv(k)
    store = SettingsStore()
    store.save(UserSettings(sound=False, environment="real"))
    config = CollectorConfig(env="real", codes=["005930"], sim_rate=300, sim_keys=1, sim_spikes=False)
    started: dict[str, object] = {}

    async def fix_settings() -> None:
        from PySide6.QtWidgets import QApplication

        def dialog():
            return next((w for w in QApplication.allWidgets()
                         if isinstance(w, SettingsDialog)), None)
        await until(lambda: dialog() is not None, what="settings dialog after the failed start")
        d = dialog()
        d.environment.setCurrentIndex(d.environment.findData("sim"))
        d.accept()

    async def script(window) -> None:
        await until(lambda: window.model.state("005930").price is not None, what="prices on the simulator")
        started["simulated"] = window.engine.simulated
        started["db"] = window.engine.config.database_url()
        window.close()

    async def both() -> int:
        fixer = asyncio.ensure_future(fix_settings())
        try:
            return await run_window(config, store=store, on_started=script)
        finally:
            fixer.cancel()

    assert qloop.run_until_complete(asyncio.wait_for(both(), 120)) == 0
    assert started["simulated"] is True
    assert started["db"] == UserPaths.default().default_demo_database_url


def test_a_busy_start_on_two_keys_shows_no_disconnect_warning(qloop):
    """A normal start of the app (simulator, 2 keys, the default 50) on a congested loop: the
    second key's acknowledgements take longer than the failover's 3 s, yet the status bar never
    says a key is down (tests/test_feed_start.py has the stuck key that must)."""
    from kis_desk.market.symbols import default_watchlist
    from test_feed_start import congested_loop

    store = SettingsStore()
    store.save(UserSettings(sound=False))
    config = CollectorConfig(env="sim", codes=default_watchlist(), sim_rate=300, sim_spikes=False)
    assert config.sim_keys == 2
    shown: list[str] = []

    async def script(window) -> None:
        feed = window.engine.feed
        await until(feed.all_live, timeout=60, what="all 50 live")
        shown.append(window.status.error.text())
        await asyncio.sleep(1.0)
        shown.append(window.status.error.text())
        shown.append(f"failovers {feed.stats().failovers}")
        window.close()

    async def congested() -> int:
        with congested_loop():
            return await run_window(config, store=store, on_started=script)

    assert qloop.run_until_complete(asyncio.wait_for(congested(), 120)) == 0
    assert shown == ["", "", "failovers 0"], shown


def test_the_grid_and_chart_follow_the_engines_market_clock_not_the_wall_clock(qloop):
    """A market clock two days behind wall time (the screenshots' NXT scene on a weekend, a
    replayed day): the grid's business day is the engine's, so its trades are shown, not
    dropped as another day's (they were: the window kept wall time)."""
    from datetime import datetime, timedelta

    from kis_desk.protocol.records import KST

    store = SettingsStore()
    store.save(UserSettings(sound=False))
    shift = timedelta(days=-2)
    clock = lambda: datetime.now(KST) + shift  # noqa: E731
    config = CollectorConfig(env="sim", codes=["005930", "000660"], sim_rate=200, sim_keys=1, sim_spikes=False)
    seen: dict[str, object] = {}

    async def script(window) -> None:
        model = window.model
        await until(lambda: all(model.state(c).price is not None for c in ("005930", "000660")),
                    what="first prices")
        seen["day"], seen["dropped"] = model.business_date, model.old_day_dropped
        window.select_code("005930")
        await until(lambda: window.chart.series.n > 0, what="chart data")
        window.close()

    code = qloop.run_until_complete(asyncio.wait_for(
        run_window(config, store=store, on_started=script, clock=clock), 120))
    assert code == 0
    assert seen["day"] == clock().date() and seen["dropped"] == 0
