"""The desktop across midnight and the window's close-to-tray and live-settings paths.

The grid model gets an injected clock and the engine's ``DayRolloverEvent``; the window gets
a real EventBus and SQLite repository (``RecordingEngine``) and an injected tray availability
(offscreen has no tray).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest

from kis_desk.config import UserPaths
from kis_desk.core.events import AlertEvent, DayRolloverEvent, EventBus, TicksEvent
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST
from kis_desk.settings import SettingsStore
from kis_desk.ui.i18n import tr
from kis_desk.ui.main_window import MainWindow
from kis_desk.ui.watchlist_model import WatchlistModel
from test_ui_support import RecordingEngine

pytestmark = pytest.mark.usefixtures("memory_keyring")

DAY1 = date(2026, 12, 1)
DAY2 = date(2026, 12, 2)
CODES = ["005930", "000660"]


def at(day: date, hh: int, mm: int, ss: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=KST)


def tick(code: str, ts: datetime, price: int, cum: int, prev_close: int) -> Tick:
    change = price - prev_close
    return Tick(code, ts, price, 1, cum, change, round(change / prev_close * 100, 2), 100.0, 0.0, "ws")


def alert(code: str, t: datetime, n: int = 1) -> AlertEvent:
    return AlertEvent(alert_id=f"{code}:{t:%Y%m%d}:up:1:{n}", stock_code=code, stock_name="",
                      direction="up", change_pct=5.3, base_price=10_000, base_time=t - timedelta(seconds=30),
                      trigger_price=10_530, trigger_time=t, trigger_cum_volume=n,
                      detected_at=t.astimezone(timezone.utc), window_seconds=60, threshold_pct=5)


def test_model_rolls_over_to_the_new_day_with_nothing_of_the_old_day(qtbot):
    model = WatchlistModel(clock=lambda: at(DAY1, 23, 59, 58))
    model.timer.stop()
    bus = EventBus()
    model.subscribe(bus)                    # the engine's events, through the typed bus
    model.set_codes(CODES)
    assert model.business_date == DAY1
    code = CODES[0]
    old = [tick(code, at(DAY1, 23, 59, 58), 10_500, 9_000, 10_000),
           tick(code, at(DAY1, 23, 59, 59), 10_600, 9_500, 10_000)]
    bus.publish(TicksEvent(tuple(old)))
    model.on_alert(alert(code, at(DAY1, 23, 59, 59)))
    row = model.state(code)
    assert (row.price, row.cum_volume, row.change) == (10_600, 9_500, 600) and row.alerts
    # the new day's first trades arrive a moment before the engine's rollover event
    early = tick(code, at(DAY2, 0, 0, 0), 10_650, 3, 10_600)
    model.on_ticks([early])
    assert model.state(code).cum_volume == 9_500          # not mixed into the old day's row
    bus.publish(DayRolloverEvent(DAY1, DAY2))
    assert model.business_date == DAY2
    row = model.state(code)
    assert (row.price, row.cum_volume, row.change, row.prev_close) == (10_650, 3, 50, 10_600)
    assert row.spark.points == [10_650] and [p for _, p in row.minute] == [10_650]
    assert row.alerts == [] and model.state(CODES[1]).price is None
    # a late trade of the old day (back-fill after midnight) is shown nowhere
    model.on_ticks([tick(code, at(DAY1, 23, 59, 59), 10_700, 9_600, 10_000)])
    later = tick(code, at(DAY2, 0, 0, 2), 10_700, 8, 10_600)
    model.on_ticks([later])
    row = model.state(code)
    assert (row.price, row.cum_volume) == (10_700, 8) and model.old_day_dropped == 1
    assert row.change_1m == pytest.approx((10_700 - 10_650) / 10_650 * 100)
    assert all(p >= 10_650 for p in row.spark.points)
    # an alert of the new day highlights its row (the old day's ids suppress nothing)
    model.on_alert(alert(code, at(DAY2, 0, 0, 2)))
    assert len(model.state(code).alerts) == 1
    bus.publish(DayRolloverEvent(DAY1, DAY2))             # a repeat changes nothing
    assert model.state(code).cum_volume == 8


@pytest.fixture
def engine():
    paths = UserPaths.default().ensure()
    eng = RecordingEngine(paths.default_database_url)
    eng.repository.create_watchlist("기본", CODES)
    yield eng
    eng.repository.close()


def _window(qloop, engine, **kw) -> MainWindow:
    win = MainWindow(engine, SettingsStore(), **kw)
    win.show()
    qloop.run_until_complete(win.start("기본", CODES))
    return win


def _close(qloop, win: MainWindow) -> None:
    qloop.run_until_complete(win.shutdown())
    win.quit()
    win.deleteLater()


def test_alert_dock_shows_only_the_new_days_alerts_after_rollover(qtbot, qloop, engine):
    today = datetime.now(KST).date()
    tomorrow = today + timedelta(days=1)
    now = datetime.now(KST).replace(microsecond=0)
    engine.repository.save_alert(alert(CODES[0], now, 1))
    stored_tomorrow = alert(CODES[1], at(tomorrow, 0, 0, 1), 2)
    engine.repository.save_alert(stored_tomorrow)            # raised since midnight
    win = _window(qloop, engine)
    try:
        assert [a.alert_id for a in win.alert_dock.model.alerts] == [f"{CODES[0]}:{now:%Y%m%d}:up:1:1"]
        engine.bus.publish(DayRolloverEvent(today, tomorrow))
        qloop.run_until_complete(asyncio.wait_for(win.idle(), 10))
        assert win.model.business_date == tomorrow
        assert [a.alert_id for a in win.alert_dock.model.alerts] == [stored_tomorrow.alert_id]
        assert win.model.pending_alerts(CODES[0]) == []
        live = alert(CODES[0], at(tomorrow, 0, 0, 5), 1)     # same code, step and cum as yesterday's
        engine.bus.publish(live)
        assert live.alert_id in {a.alert_id for a in win.alert_dock.model.alerts}
        assert win.model.pending_alerts(CODES[0]) == [live]
    finally:
        _close(qloop, win)


def test_close_keeps_collecting_in_the_tray_and_says_so_once(qtbot, qloop, engine):
    win = _window(qloop, engine, tray_available=True)
    quits: list[bool] = []
    win.closeRequested.connect(lambda: quits.append(True))
    try:
        assert win.settings.keep_running_in_tray and win.tray is not None
        win.close()
        assert not win.isVisible() and quits == [] and win.tray_keeper.hints == 1
        assert SettingsStore().load().tray_hint_shown          # never shown again, even after a restart
        win.tray_keeper.show_window()              # the tray icon / its menu
        win.close()
        assert quits == [] and win.tray_keeper.hints == 1
        win.quit()                                            # File ▸ Quit / the tray menu
        assert quits == [True]
    finally:
        _close(qloop, win)


def test_close_quits_when_the_setting_is_off_or_there_is_no_tray(qtbot, qloop, engine):
    for kw, keep in (({"tray_available": True}, False), ({"tray_available": False}, True)):
        win = _window(qloop, engine, **kw)
        win.settings.keep_running_in_tray = keep
        quits: list[bool] = []
        win.closeRequested.connect(lambda: quits.append(True))
        try:
            win.close()
            assert quits == [True] and win.tray_keeper.hints == 0
        finally:
            _close(qloop, win)


def test_settings_dialog_applies_to_the_running_engine(qtbot, qloop, engine):
    win = _window(qloop, engine, tray_available=True)
    try:
        dialog = win.open_settings()
        assert dialog.note.text() == tr("settings.live_note") and dialog.tray.isVisibleTo(dialog)
        dialog.threshold.setValue(0.5)
        dialog.tray.setChecked(False)
        dialog.accept()
        qloop.run_until_complete(asyncio.wait_for(win.idle(), 10))
        (settings, previous), = [c[1] for c in engine.calls if c[0] == "apply_settings"]
        assert settings.alert_threshold_pct == 0.5 and previous.alert_threshold_pct == 5.0
        assert not win.settings.keep_running_in_tray
        assert tr("settings.applied", what="threshold_pct") in win.status.currentMessage()
    finally:
        _close(qloop, win)


def test_chart_starts_over_and_shows_only_the_new_days_trades(qtbot, qloop, engine):
    today = datetime.now(KST).date()
    tomorrow = today + timedelta(days=1)
    win = _window(qloop, engine)
    try:
        code = CODES[0]
        win.select_code(code)
        qloop.run_until_complete(asyncio.wait_for(win.idle(), 10))
        assert win.chart.code == code
        now = datetime.now(KST)
        win.chart.on_ticks([tick(code, now, 10_100, 5, 10_000),
                            tick(code, at(tomorrow, 0, 0, 1), 10_200, 1, 10_100)])   # early: not drawn
        assert win.chart.series.n == 1
        engine.bus.publish(DayRolloverEvent(today, tomorrow))
        qloop.run_until_complete(asyncio.wait_for(win.idle(), 10))
        assert win.chart.series.n == 0 and win.chart.code == code
        win.chart.on_ticks([tick(code, now, 10_150, 6, 10_000),                       # late: not drawn
                            tick(code, at(tomorrow, 0, 0, 2), 10_250, 2, 10_100)])
        assert win.chart.series.n == 1 and win.chart.prev_close == 10_100
    finally:
        _close(qloop, win)
