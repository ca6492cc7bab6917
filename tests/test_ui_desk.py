"""Trader's-desk features in the real main window: alert history, test alert, dark theme, sound
settings applied live. Engine = RecordingEngine (real bus, symbols and SQLite repository)."""

from __future__ import annotations

import asyncio
import csv
from datetime import date, datetime, timedelta, timezone

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from kis_desk.config import UserPaths
from kis_desk.core.events import AlertEvent
from kis_desk.protocol.records import KST
from kis_desk.settings import SettingsStore
from kis_desk.ui.alert_history import CSV_HEADERS, COLUMNS, csv_rows
from kis_desk.ui.appearance import apply_theme, current_theme, dark_palette, is_dark, system_is_dark
from kis_desk.ui.theme import (
    DARK_ALTERNATE, DARK_BASE, KOREAN, KOREAN_DARK, WESTERN, WESTERN_DARK, contrast_ratio,
)
from test_storage_alert_history import DAY1, DAY2, DAY3, make_alert
from test_ui_support import RecordingEngine, shown_window

pytestmark = pytest.mark.usefixtures("memory_keyring")

CODES = ["005930", "000660", "373220"]


@pytest.fixture
def engine():
    paths = UserPaths.default().ensure()
    eng = RecordingEngine(paths.default_database_url)
    eng.repository.create_watchlist("기본", CODES)
    eng.repository.create_watchlist("반도체", ["005930", "000660"])
    for a in (make_alert("005930", DAY1, 1), make_alert("000660", DAY1, 2, "down"),
              make_alert("005930", DAY2, 3, "down"), make_alert("373220", DAY2, 4),
              make_alert("000660", DAY3, 5)):
        eng.repository.save_alert(a)
    yield eng
    eng.repository.close()


@pytest.fixture
def window(qtbot, qloop, engine):
    with shown_window(qloop, engine, CODES) as win:
        yield win
    apply_theme("light", "korean")          # the QApplication outlives the test


def run(loop, coro, timeout: float = 30.0):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def today_alert(code: str = "000660", n: int = 1, direction: str = "up") -> AlertEvent:
    t = datetime.now(KST).replace(microsecond=0)
    return AlertEvent(alert_id=f"{code}:{t:%Y%m%d}:{direction}:1:{n}", stock_code=code, stock_name="SK하이닉스",
                      direction=direction, change_pct=5.3, base_price=200_000, base_time=t - timedelta(seconds=40),
                      trigger_price=210_600, trigger_time=t, trigger_cum_volume=n,
                      detected_at=datetime.now(timezone.utc), window_seconds=60, threshold_pct=5)


def open_history(loop, window, start: date = DAY1, end: date = DAY3):
    dialog = window.desk.open_history()
    run(loop, dialog.idle())
    dialog.start_edit.setDate(start)
    dialog.end_edit.setDate(end)
    run(loop, dialog.query())
    return dialog


def shown_ids(dialog) -> list[str]:
    """Alert ids in display order (the table sorts newest first)."""
    p = dialog.proxy
    return [p.data(p.index(r, 0), 256) for r in range(p.rowCount())]   # Qt.UserRole


# -- alert history ---------------------------------------------------------------------------------
def test_history_is_in_the_alerts_menu_with_a_shortcut(window):
    assert window.desk.history_action in window.desk.menu.actions()
    assert window.desk.test_alert_action in window.desk.menu.actions()
    assert window.desk.history_action.shortcut().toString() == "Ctrl+H"
    assert window.desk.menu.title() == "알림(&A)"


def test_history_filters_by_days_symbol_direction_and_watchlist(qloop, window):
    d = open_history(qloop, window)
    assert shown_ids(d) == ["000660:20260305:up:1:5", "373220:20260304:up:1:4", "005930:20260304:down:1:3",
                            "000660:20260303:down:1:2", "005930:20260303:up:1:1"]
    assert [d.watchlist.itemText(i) for i in range(d.watchlist.count())] == ["전체 종목", "기본", "반도체"]
    d.start_edit.setDate(DAY2)
    d.end_edit.setDate(DAY2)
    run(qloop, d.query())
    assert shown_ids(d) == ["373220:20260304:up:1:4", "005930:20260304:down:1:3"]
    d.start_edit.setDate(DAY1)
    d.end_edit.setDate(DAY3)
    d.symbol_edit.setText("삼성전자")                 # by Korean name
    run(qloop, d.query())
    assert shown_ids(d) == ["005930:20260304:down:1:3", "005930:20260303:up:1:1"]
    d.direction.setCurrentIndex(d.direction.findData("up"))
    run(qloop, d.query())
    assert shown_ids(d) == ["005930:20260303:up:1:1"]
    d.symbol_edit.clear()
    d.direction.setCurrentIndex(0)
    d.watchlist.setCurrentIndex(d.watchlist.findData("반도체"))
    run(qloop, d.query())
    assert {i.split(":")[0] for i in shown_ids(d)} == {"005930", "000660"} and len(shown_ids(d)) == 4
    assert "4" in d.status.text()
    d.symbol_edit.setText("373220")                  # not in 반도체: nothing
    run(qloop, d.query())
    assert shown_ids(d) == []
    d.symbol_edit.setText("없는종목xyz")
    run(qloop, d.query())
    assert d.last_error and "없는종목xyz" in d.status.text()
    d.symbol_edit.clear()
    d.start_edit.setDate(DAY3)
    d.end_edit.setDate(DAY1)
    run(qloop, d.query())
    assert d.last_error == "시작일이 종료일보다 늦습니다."


def test_history_csv_export_round_trip(qloop, window, tmp_path):
    d = open_history(qloop, window)
    path = tmp_path / "알림.csv"
    assert run(qloop, d.export_csv(path)) == 5
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                    # BOM: Excel reads UTF-8 Hangul
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_HEADERS
    shown = [next(s for s in d.model.rows if s.alert.alert_id == i) for i in shown_ids(d)]
    assert rows[1:] == csv_rows(shown)                         # as displayed (newest first)
    first = dict(zip(CSV_HEADERS, rows[1]))
    assert first["종목코드"] == "000660" and first["방향"] == "급등" and first["변동률(%)"] == "+5.20"
    assert first["일자"] == "2026-03-05" and first["시각"] == "10:05:00" and first["확인"] == "아니오"
    assert first["알림ID"] == "000660:20260305:up:1:5"
    assert "저장했습니다" in d.status.text()


def test_acknowledge_many_in_one_engine_call(qloop, qtbot, window, engine):
    engine.bus.publish(today_alert("000660", 7))           # today's: highlighted in grid and dock
    today = datetime.now(KST).date()
    assert window.model.pending_alerts("000660")
    d = open_history(qloop, window, DAY1, today)
    assert len(shown_ids(d)) == 5                          # live alert not stored by this engine
    engine.repository.save_alert(today_alert("000660", 7))  # (the collector's writer would)
    run(qloop, d.query())
    ids = shown_ids(d)
    assert ids[0] == today_alert("000660", 7).alert_id
    sel = d.table.selectionModel()
    for r in (0, 1, 3):
        sel.select(d.proxy.index(r, 0), QItemSelectionModel.SelectionFlag.Select
                   | QItemSelectionModel.SelectionFlag.Rows)
    assert d.selected_ids() and len(d.selected_ids()) == 3
    engine.calls.clear()
    assert run(qloop, d.acknowledge_selected()) == 3
    assert [c for c in engine.calls if c[0].startswith("acknowledge")] == [
        ("acknowledge_alerts", sorted([ids[0], ids[1], ids[3]], key=lambda i: d.selected_ids().index(i)))]
    stored = {s.alert.alert_id: s.acknowledged for s in engine.repository.alerts_between(DAY1, today)}
    assert {i for i, acked in stored.items() if acked} == {ids[0], ids[1], ids[3]}
    assert d.model.pending() == 3 and "미확인 3건" in d.status.text()
    assert not window.model.pending_alerts("000660")            # grid highlight cleared
    assert ids[0] in window.alert_dock.model.acked
    assert run(qloop, d.acknowledge_selected()) == 0          # already done: no engine call
    assert sum(c[0] == "acknowledge_alerts" for c in engine.calls) == 1


# -- test alert -------------------------------------------------------------------------------------
def test_test_alert_shows_banner_sound_and_is_never_stored(qloop, window, engine):
    window.select_code("373220")
    stored_before = engine.repository.alerts_between(DAY1, date.today() + timedelta(days=1))
    dock_before = len(window.alert_dock.model.alerts)
    beeps = window.notifier.beeps
    result = run(qloop, window.desk.test_alert())
    assert result.alert.alert_id.startswith("test:373220:") and result.alert.direction == "up"
    assert window.banner.isVisible() and window.banner.label.text().startswith("[테스트] ")
    assert "373220" in window.banner.label.text()
    assert window.notifier.beeps == beeps + 1 and result.sound == window.notifier.sounds.played[-1]
    assert result.redis == "off" and ("send_test_alert", result.alert.alert_id) in engine.calls
    assert result.describe()[-1] == "Redis: 설정 안 됨"
    assert window.desk.result_box.isVisible() and "배너: 표시됨" in window.desk.result_box.text()
    assert len(window.alert_dock.model.alerts) == dock_before          # not in the alert log
    assert not window.model.pending_alerts("373220")                    # no row highlight
    assert engine.repository.alerts_between(DAY1, date.today() + timedelta(days=1)) == stored_before
    second = run(qloop, window.desk.test_alert())
    assert second.alert.direction == "down" and second.alert.alert_id != result.alert.alert_id


def test_test_alert_with_sound_off(qloop, window):
    window.notifier.sound = False
    result = run(qloop, window.desk.test_alert())
    assert result.sound == "" and "소리: 설정에서 꺼짐" in result.describe()


# -- theme and live settings ------------------------------------------------------------------------
def test_dark_theme_applies_at_once_and_light_restores(qloop, window):
    app = QApplication.instance()
    light_base = app.palette().color(QPalette.ColorRole.Base)
    s = window.settings
    s.theme = "dark"
    window.apply_settings(s)
    assert current_theme() == "dark" and app.style().name().lower() == "fusion"
    assert app.palette().color(QPalette.ColorRole.Base) == DARK_BASE
    QApplication.processEvents()            # the palette-change events, one turn of the loop
    assert window.grid.palette().color(QPalette.ColorRole.Base) == DARK_BASE
    assert window.model.palette is KOREAN_DARK and window.alert_dock.model.palette is KOREAN_DARK
    assert "color: white" in window.banner.styleSheet()
    assert window.chart.layout_widget.backgroundBrush().color() == DARK_BASE
    s.colour_scheme = "western"
    window.apply_settings(s)
    assert window.model.palette is WESTERN_DARK
    s.theme, s.colour_scheme = "light", "korean"
    window.apply_settings(s)
    assert current_theme() == "light"
    assert app.palette().color(QPalette.ColorRole.Base) == light_base
    assert window.model.palette is KOREAN and "color: black" in window.banner.styleSheet()
    s.theme = "system"
    window.apply_settings(s)
    assert current_theme() == ("dark" if system_is_dark() else "light") and is_dark("system") == system_is_dark()


def test_widgets_with_their_own_style_sheet_follow_the_theme_too(qloop, window):
    """The status bar cells and messages have style sheets of their own; Qt does not re-polish
    those on a palette change, so they stayed black on light grey inside the dark window."""
    from kis_desk.core.events import RateEvent
    from kis_desk.ui.appearance import text_colour
    from kis_desk.ui.theme import DARK_TEXT, DARK_WINDOW, contrast_ratio

    window.engine.bus.publish(RateEvent(12.0, 12))
    s = window.settings
    s.theme = "dark"
    window.apply_settings(s)
    QApplication.processEvents()
    for label in (window.status.rate, window.status.redis, window.status.plan, window.status.sessions):
        assert label.palette().color(QPalette.ColorRole.WindowText) == DARK_TEXT, label
        assert label.palette().color(QPalette.ColorRole.Window) == DARK_WINDOW, label
    assert text_colour("error") in window.status.error.styleSheet()
    for kind in ("error", "warn", "good", "muted", "pending"):        # status texts stay readable
        assert contrast_ratio(QColor(text_colour(kind)), DARK_WINDOW) >= 4.5, kind
    s.theme = "light"
    window.apply_settings(s)
    for kind in ("error", "warn", "good", "muted", "pending"):
        assert contrast_ratio(QColor(text_colour(kind)), QColor(255, 255, 255)) >= 4.5, kind


def test_the_alert_dock_fits_its_columns_in_a_small_screens_width(qloop, window):
    """At 1366×768 the dock is ~450 px wide: the six columns fit without a horizontal scroll bar,
    the name taking what is left (it was cut off after the price column's first digits)."""
    window.engine.bus.publish(today_alert("373220", 3))
    dock = window.alert_dock
    dock.setFloating(True)
    dock.resize(450, 300)
    QApplication.processEvents()
    view = dock.view
    assert view.horizontalScrollBar().maximum() == 0
    total = sum(view.columnWidth(c) for c in range(dock.model.columnCount()))
    assert total <= view.viewport().width() and view.columnWidth(2) >= 80


def test_settings_dialog_applies_volume_sound_and_theme_live(qloop, qtbot, window):
    dialog = window.open_settings()
    assert dialog.volume.value() == 80 and dialog.sound.isChecked()
    dialog.volume.setValue(35)
    assert dialog.volume_label.text() == "35 %"
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.accept()
    assert window.notifier.sounds.volume == 35 and current_theme() == "dark"
    assert window.model.palette is KOREAN_DARK
    assert SettingsStore().load().sound_volume == 35 and SettingsStore().load().theme == "dark"
    dialog = window.open_settings()
    dialog.sound.setChecked(False)
    assert not dialog.volume.isEnabled()
    dialog.accept()
    assert window.notifier.sound is False


def test_history_dialog_follows_the_theme(qloop, window):
    d = open_history(qloop, window)
    s = window.settings
    s.theme = "dark"
    window.apply_settings(s)
    assert d.model.palette is KOREAN_DARK
    change = COLUMNS.index("change")
    assert d.proxy.index(0, change).data(9) == KOREAN_DARK.up                # ForegroundRole


@pytest.mark.parametrize("pal", [KOREAN_DARK, WESTERN_DARK], ids=["korean", "western"])
def test_dark_direction_colours_keep_contrast(pal):
    """WCAG AA (≥ 4.5:1) for up and down on every dark surface a price is drawn on."""
    base = dark_palette()
    assert base.color(QPalette.ColorRole.Base) == DARK_BASE
    for surface in (DARK_BASE, DARK_ALTERNATE, base.color(QPalette.ColorRole.Window), pal.alert):
        for colour in (pal.up, pal.down):
            assert contrast_ratio(colour, surface) >= 4.5, (colour.name(), surface.name())
    assert contrast_ratio(pal.flat, DARK_BASE) >= 4.5
    # the price cell's flash: the flash colour at its strongest alpha over the grid's base
    flash_alpha_max = 140                     # WatchlistModel._background: alpha 140 → 0 over the flash
    for flash in (pal.flash_up, pal.flash_down):
        a = flash_alpha_max / 255
        blended = QColor(*(round(a * f + (1 - a) * b) for f, b in zip(flash.getRgb()[:3], DARK_BASE.getRgb()[:3])))
        for colour in (pal.up, pal.down):
            assert contrast_ratio(colour, blended) >= 4.5, (colour.name(), blended.name())
    assert contrast_ratio(base.color(QPalette.ColorRole.Text), DARK_BASE) >= 7
    for filled in (pal.up, pal.down):                      # text on the filled limit marker
        assert contrast_ratio(pal.marker_text, filled) >= 4.5


def test_light_direction_colours_on_white_and_the_formula():
    assert contrast_ratio(QColor(0, 0, 0), QColor(255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio(QColor(119, 119, 119), QColor(255, 255, 255)) == pytest.approx(4.48, abs=0.01)
    white = QColor(255, 255, 255)
    assert contrast_ratio(KOREAN.up, white) >= 4.5 and contrast_ratio(KOREAN.down, white) >= 4.5
    assert contrast_ratio(WESTERN.down, white) >= 4.5     # (Western light up green is 3.9:1: not ours)


def test_hand_edited_sound_and_theme_settings_are_repaired(tmp_path):
    import json

    from kis_desk.settings import UserSettings

    store = SettingsStore(UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c"))
    store.paths.config.mkdir(parents=True)
    store.path.write_text(json.dumps({"sound_volume": 250, "theme": "neon"}), encoding="utf-8")
    s = store.load()
    assert (s.sound_volume, s.theme) == (100, "system")
    store.path.write_text(json.dumps({"sound_volume": "loud"}), encoding="utf-8")
    assert store.load().sound_volume == 80
    assert (UserSettings().sound, UserSettings().sound_volume) == (True, 80)    # on by default
