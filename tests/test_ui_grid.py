"""The grid sorts right and calmly (issue 12 item 2) and its HTS watchlist features (item 7)."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from kis_desk.core.events import TicksEvent
from kis_desk.core.ticks import Tick
from kis_desk.market.symbols import default_watchlist
from kis_desk.protocol.records import KST
from kis_desk.ui.grid_columns import Col
from kis_desk.ui.main_window import MainWindow
from kis_desk.ui.watchlist_model import CODE_ROLE, SORT_ROLE
from test_ui_support import recording_engine, shown_window

pytestmark = pytest.mark.usefixtures("memory_keyring")

CODES = default_watchlist()[:20]


@pytest.fixture
def engine():
    eng = recording_engine(CODES)
    yield eng
    eng.repository.close()


@pytest.fixture
def window(qtbot, qloop, engine):
    with shown_window(qloop, engine, CODES) as win:
        yield win


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


# -- item 7: an HTS-grade watchlist ----------------------------------------------------------------
def test_watchlist_menu_and_shortcuts(qloop, window, engine):
    acts = window.wl_actions
    assert acts.open_action.shortcut().toString() == "Ctrl+L"       # Ctrl+K stays "acknowledge all"
    assert [k.toString() for k in acts.add_action.shortcuts()] == ["Ctrl+F", "Ins"]
    assert acts.delete_action.shortcut().toString() == "Del"
    assert acts.menu.title() == "관심종목(&W)"
    acts.open_action.trigger()
    assert window.editor_dock.isVisible()
    # Del removes the selected row from the shown list; Ctrl+Z brings it back
    window.select_code(CODES[2])
    qloop.run_until_complete(window.idle())
    acts.delete_action.trigger()
    qloop.run_until_complete(window.idle())
    assert CODES[2] not in window.model.codes() and CODES[2] not in engine.repository.watchlist_codes("기본")
    acts.undo_action.trigger()
    qloop.run_until_complete(window.idle())
    assert window.model.codes() == CODES and engine.repository.watchlist_codes("기본") == CODES
    assert not window.editor.can_undo()


def test_enter_opens_the_chart_and_the_row_menu_offers_add_delete_chart_alert(qloop, qtbot, window):
    from PySide6.QtTest import QTest

    window.chart_dock.hide()
    window.select_code(CODES[3])
    qloop.run_until_complete(window.idle())
    QTest.keyClick(window.grid, Qt.Key.Key_Return)
    qloop.run_until_complete(window.idle())
    assert window.chart_dock.isVisible() and window.chart.code == CODES[3]
    rect = window.grid.visualRect(window.grid.model().index(window.model.row_of(CODES[5]), Col.NAME))
    menu = window.wl_actions.row_menu(rect.center())
    qloop.run_until_complete(window.idle())
    assert window.selected_code() == CODES[5] and window.grid.interacting()      # re-sort waits
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts == ["차트 보기", "알림 설정…", "알림 음소거", "종목 추가…", "관심종목에서 삭제", "관심종목 편집 취소"]
    hooked: list[str] = []
    window.alertSettingsRequested.connect(hooked.append)     # the alerts feature hooks this
    window.wl_actions.alert_action.trigger()
    assert hooked == [CODES[5]]
    menu.close()
    assert not window.grid.menu_open


def test_value_ohlc_and_badge_columns(window, engine):
    from kis_desk.ui.row_state import RowState, symbol_flags

    now = datetime.now(KST).replace(microsecond=0)
    code = CODES[0]
    trades = [(50_000, 10), (50_500, 5), (49_800, 20), (50_200, 1)]
    cum, ticks = 0, []
    for price, vol in trades:
        cum += vol
        ticks.append(Tick(code, now, price, vol, cum, price - 50_000, 0.0, 100.0, 0.0, "ws"))
    ticks.append(ticks[1])                                      # a duplicate never counts twice
    engine.bus.publish(TicksEvent(tuple(ticks)))
    window.model.flush()
    row = window.model.state(code)
    assert (row.open, row.high, row.low) == (50_000, 50_500, 49_800)
    assert row.value == sum(p * v for p, v in trades)
    cells = window.model.cells(window.model.row_of(code))
    assert cells[Col.VALUE][0] == f"{row.value / 1e6:,.0f}" and cells[Col.HIGH][0] == "50,500"
    assert window.grid.horizontalHeader().isSectionHidden(Col.OPEN)        # o/h/l: on request
    assert not window.grid.horizontalHeader().isSectionHidden(Col.VALUE)

    class Info:
        administrative, warning, halted = True, "danger", False
    assert symbol_flags(Info()) == ("admin", "danger")
    r = RowState("999999", "테스트")
    from kis_desk.core.events import MarketStateEvent
    r.flags, r.venue, r.price = ("admin",), "nxt", 1
    r.market = MarketStateEvent("999999", "vi", datetime(2026, 3, 3, 9, 31, 5, tzinfo=KST))
    from kis_desk.ui.grid_columns import COLUMNS
    assert COLUMNS[Col.BADGE].text(r, window.model) == "VI 09:31 관리"          # with its start
    assert "NXT" in COLUMNS[Col.BADGE].tooltip(r, window.model)            # the venue: in the tooltip
    r.flags, r.market = (), None
    assert COLUMNS[Col.BADGE].text(r, window.model) == "NXT"                # nothing else to say


def test_dialog_buttons_are_korean_and_names_share_one_font(window):
    from PySide6.QtGui import QFontDatabase
    from PySide6.QtWidgets import QDialogButtonBox

    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    assert sorted(b.text() for b in box.buttons()) == sorted(["확인", "취소"])
    family = QApplication.font().family()
    assert QFontDatabase.WritingSystem.Korean in QFontDatabase.writingSystems(family)
    fonts = {window.model.index(r, Col.NAME).data(Qt.ItemDataRole.FontRole) for r in range(window.model.rowCount())}
    assert fonts == {None}                  # no per-name font: Latin and Korean names alike


def test_set_alert_without_a_hook_opens_the_settings(qloop, window, monkeypatch):
    opened: list[int] = []
    monkeypatch.setattr(window, "open_settings", lambda: opened.append(1))
    window.select_code(CODES[1])
    qloop.run_until_complete(window.idle())
    window.wl_actions.set_alert()
    assert opened == [1]
