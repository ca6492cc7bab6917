"""The window fits the screen (issue 12): first start, a too-large saved geometry, long texts.

Offscreen Qt's screen is 800×800 (smaller than the 1366×768 floor the app promises), so a
widget that could widen the window shows up here at once.
"""

from __future__ import annotations

import base64

import pytest
from PySide6.QtCore import QRect

from kis_desk.core.events import ErrorEvent
from kis_desk.settings import SettingsStore
from kis_desk.ui.main_window import MainWindow
from kis_desk.ui.window_layout import available_area
from test_ui_support import recording_engine

pytestmark = pytest.mark.usefixtures("memory_keyring")

CODES = ["005930", "000660", "373220"]


@pytest.fixture
def engine():
    eng = recording_engine(CODES)
    yield eng
    eng.repository.close()


def _open(qtbot, qloop, engine) -> MainWindow:
    win = MainWindow(engine, SettingsStore())
    qtbot.addWidget(win)
    win.show()
    qloop.run_until_complete(win.start("기본", CODES))
    return win


def _inside(win: MainWindow) -> bool:
    area = available_area(win)
    return area.contains(win.geometry()) and win.width() <= area.width() and win.height() <= area.height()


def test_first_start_fits_the_available_screen(qtbot, qloop, engine):
    win = _open(qtbot, qloop, engine)
    assert _inside(win), (win.geometry(), available_area(win))
    assert win.minimumSizeHint().width() <= available_area(win).width()
    qloop.run_until_complete(win.shutdown())


def test_a_saved_geometry_larger_than_the_screen_is_clamped(qtbot, qloop, engine):
    win = _open(qtbot, qloop, engine)
    area = available_area(win)
    win.setGeometry(QRect(area.x() - 50, area.y() - 40, area.width() + 900, area.height() + 600))
    win.save_layout()
    qloop.run_until_complete(win.shutdown())
    win.close()
    store = SettingsStore()
    saved = store.load().window
    assert saved and base64.b64decode(saved["geometry"])
    win2 = _open(qtbot, qloop, engine)
    assert _inside(win2), (win2.geometry(), area)
    qloop.run_until_complete(win2.shutdown())


def test_a_400_character_status_message_cannot_widen_the_window(qtbot, qloop, engine):
    win = _open(qtbot, qloop, engine)
    width, hint = win.width(), win.minimumSizeHint().width()
    long = "key1: 123456: 206277 share(s) of trades could not be recovered " * 7
    long = long[:400]
    engine.bus.publish(ErrorEvent("key1", long))
    qtbot.wait(50)
    assert win.width() == width and win.minimumSizeHint().width() == hint
    assert win.status.sizeHint().width() <= available_area(win).width()
    assert long in win.status.error.toolTip()            # the whole text is still there
    assert win.status.error.full_text().endswith(long)
    qloop.run_until_complete(win.shutdown())


def test_engine_conditions_read_in_the_ui_language(qtbot, qloop, engine):
    from kis_desk.ui.i18n import error_text, set_language

    set_language("ko")
    ev = ErrorEvent("key1", "123456: 206277 share(s) of trades could not be recovered",
                    code="backfill.unrecovered", params={"symbol": "123456", "volume": 206277})
    assert error_text(ev) == "123456: 체결 206,277주 누락 (1초 내 체결 과다)"
    assert error_text(ErrorEvent("storage", "database down")).startswith("저장 문제")   # by source
    assert error_text(ErrorEvent("x", "raw", code="nope")) == "raw"         # unknown: engine text
    assert error_text(ErrorEvent("storage", "crash", True)).startswith("저장 중단")
    set_language("en")
    assert error_text(ev).startswith("123456: 206,277 shares")
    set_language("ko")
