"""The grid sorts right and calmly (issue 12 item 2) and its HTS watchlist features (item 7)."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from kis_desk.config import UserPaths
from kis_desk.core.events import TicksEvent
from kis_desk.core.ticks import Tick
from kis_desk.market.symbols import default_watchlist
from kis_desk.protocol.records import KST
from kis_desk.settings import SettingsStore
from kis_desk.ui.grid_columns import Col
from kis_desk.ui.main_window import MainWindow
from kis_desk.ui.watchlist_model import CODE_ROLE, SORT_ROLE
from test_ui_support import RecordingEngine

pytestmark = pytest.mark.usefixtures("memory_keyring")

CODES = default_watchlist()[:20]


@pytest.fixture
def engine():
    paths = UserPaths.default().ensure()
    eng = RecordingEngine(paths.default_database_url)
    eng.repository.create_watchlist("기본", CODES)
    yield eng
    eng.repository.close()


@pytest.fixture
def window(qtbot, qloop, engine):
    win = MainWindow(engine, SettingsStore())
    win.show()
    qloop.run_until_complete(win.start("기본", CODES))
    yield win
    qloop.run_until_complete(win.shutdown())
    win.close()
    win.deleteLater()


def burst(rng: random.Random, cums: dict[str, int], n: int = 400) -> tuple[Tick, ...]:
    now = datetime.now(KST).replace(microsecond=0)
    out = []
    for _ in range(n):
        code = rng.choice(CODES)
        prev = 50_000
        price = prev + rng.randint(-60, 60) * 10          # ±1.2 %: many near-equal rates
        vol = rng.randint(1, 500)
        cums[code] = cums.get(code, 0) + vol
        out.append(Tick(code, now, price, vol, cums[code], price - prev,
                        round((price - prev) / prev * 100, 2), 100.0, 0.0, "ws"))
    return tuple(out)


def view_codes(win: MainWindow) -> list[str]:
    store = win.grid.model()
    return [store.index(r, Col.CODE).data() for r in range(store.rowCount())]


def sort_values(win: MainWindow, col: int) -> list:
    return [win.model.index(r, col).data(SORT_ROLE) for r in range(win.model.rowCount())]


@pytest.mark.parametrize("col", [Col.CHANGE_PCT, Col.PRICE, Col.VOLUME, Col.CHANGE])
def test_after_a_burst_the_view_is_in_sorted_order_and_the_selection_stays(qloop, window, engine, col):
    rng = random.Random(col)
    cums: dict[str, int] = {}
    window.grid.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    window.select_code(CODES[7])
    qloop.run_until_complete(window.idle())
    for _ in range(5):
        engine.bus.publish(TicksEvent(burst(rng, cums)))
        window._resort()
        window.model.flush()
        QApplication.processEvents()
        values = sort_values(window, col)
        assert values == sorted(values, reverse=True)
        # what the view paints is the model's order, row for row
        assert view_codes(window) == window.model.codes()
        # and equals Python's sorted() on the sort values (ties: watchlist order)
        expected = sorted(CODES, key=lambda c: (-window.model.index(window.model.row_of(c), col).data(SORT_ROLE),
                                                CODES.index(c)))
        assert window.model.codes() == expected
        assert window.selected_code() == CODES[7]
        assert [i.data(CODE_ROLE) for i in window.grid.selectionModel().selectedRows()] == [CODES[7]]


def test_rows_do_not_move_while_the_user_points_at_the_grid(qtbot, window, engine):
    rng = random.Random(1)
    cums: dict[str, int] = {}
    window.grid.sortByColumn(Col.CHANGE_PCT, Qt.SortOrder.DescendingOrder)
    engine.bus.publish(TicksEvent(burst(rng, cums)))
    window._resort()
    vp = window.grid.viewport()
    move = QMouseEvent(QEvent.Type.MouseMove, QPointF(20, 20), QPointF(20, 20), Qt.MouseButton.NoButton,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, move)
    assert window.grid.interacting()
    before = window.model.codes()
    for _ in range(5):
        engine.bus.publish(TicksEvent(burst(rng, cums)))
        window._resort()
    assert window.model.codes() == before                 # calm while pointed at
    QApplication.sendEvent(vp, QEvent(QEvent.Type.Leave))
    assert not window.grid.interacting()
    window._resort()
    values = sort_values(window, Col.CHANGE_PCT)
    assert values == sorted(values, reverse=True)          # and sorted once the pointer leaves
    window.grid.menu_open = True
    assert window.grid.interacting()                       # an open context menu also pauses it
    window.grid.menu_open = False
