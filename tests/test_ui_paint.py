"""What keeps the desk cheap to paint: cached sparklines, per-cell repaints, numeric sort,
a bounded chart line, and no repainting while the window is hidden (pytest-qt, offscreen)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QStyledItemDelegate, QStyleOptionViewItem, QTableView

from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST
from kis_desk.ui.chart import MAX_LINE_POINTS, peak_downsample
from kis_desk.ui.sparkline import SparklineDelegate
from kis_desk.ui.watchlist_model import CODE_ROLE, SORT_ROLE, SPARK_EVERY, Col, WatchlistModel

T0 = datetime(2026, 3, 5, 9, 0, 0, tzinfo=KST)
CODES = ["005930", "000660", "035420", "005380", "373220", "000270"]


def tick(code: str, price: int, second: float = 0, cum: int = 1, prev_close: int = 10_000) -> Tick:
    change = price - prev_close
    return Tick(code, T0 + timedelta(seconds=second), price, 1, cum, change,
                round(change / prev_close * 100, 2), 100.0, 0.0, "ws")


@pytest.fixture
def model(qtbot):
    m = WatchlistModel()
    m.timer.stop()   # tests flush by hand: deterministic
    m.set_codes(CODES)
    return m


def _paint_spark(delegate: SparklineDelegate, view: QTableView, model, code: str, width: int = 120,
                 height: int = 24) -> None:
    img = QImage(width, height, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    painter = QPainter(img)
    opt = QStyleOptionViewItem()
    opt.rect = QRect(0, 0, width, height)
    opt.widget = view
    delegate.paint(painter, opt, model.index(model.row_of(code), Col.SPARK))
    painter.end()


def test_cached_sparkline_is_rendered_again_only_when_its_data_or_size_changes(model):
    view = QTableView()
    view.setModel(model)
    delegate = SparklineDelegate(view)
    model.on_ticks([tick("005930", 10_000 + s, second=s, cum=s + 1) for s in range(30)])
    _paint_spark(delegate, view, model, "005930")
    assert delegate.cache.renders == 1
    for _ in range(5):                                   # repaints (hover, scroll, flash nearby)
        _paint_spark(delegate, view, model, "005930")
    assert delegate.cache.renders == 1
    model.on_ticks([tick("005930", 10_029, second=29.5, cum=31)])   # same bucket, same price
    _paint_spark(delegate, view, model, "005930")
    assert delegate.cache.renders == 1
    model.on_ticks([tick("005930", 10_100, second=31, cum=32)])     # a new point: data changed
    _paint_spark(delegate, view, model, "005930")
    _paint_spark(delegate, view, model, "005930")
    assert delegate.cache.renders == 2
    _paint_spark(delegate, view, model, "005930", width=200)        # the column was resized
    _paint_spark(delegate, view, model, "005930", width=200)
    assert delegate.cache.renders == 3
    _paint_spark(delegate, view, model, "000660")                   # another row: its own entry
    _paint_spark(delegate, view, model, "005930", width=200)
    assert delegate.cache.renders == 4


def test_a_trade_repaints_only_the_cells_whose_text_or_colour_changed(model):
    received: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(lambda tl, br, roles=(): received.append((tl.row(), br.row(), tl.column(), br.column())))
    model.on_ticks([tick("005930", 10_500, second=1, cum=1)])
    model.flush()
    for _ in range(12):                  # let the price flash fade out
        model.state("005930").flash_until = 0.0
        model.flush()
    received.clear()
    model.on_ticks([tick("005930", 10_500, second=1, cum=7)])      # same price and second: volume only
    model.flush()
    cells = {(r, c) for a, b, c0, c1 in received for r in range(a, b + 1) for c in range(c0, c1 + 1)}
    assert cells == {(0, Col.VOLUME)}
    received.clear()
    model.flush()                                                  # nothing new: nothing repaints
    assert received == []
    model.on_ticks([tick("005930", 10_500, second=2, cum=8)])      # a second later: volume + time
    model.flush()
    cells = {(r, c) for a, b, c0, c1 in received for r in range(a, b + 1) for c in range(c0, c1 + 1)
             if c != Col.SPARK}
    assert cells == {(0, Col.VOLUME), (0, Col.TIME)}


class _CountingDelegate(QStyledItemDelegate):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.painted: list[tuple[int, int]] = []

    def paint(self, painter, option, index) -> None:
        self.painted.append((index.row(), index.column()))
        super().paint(painter, option, index)


def test_an_unchanged_cell_is_not_repainted_in_a_real_view(qtbot, model):
    from kis_desk.ui.grid_store import GridStore

    view = QTableView()
    view.setModel(GridStore(model, view))          # what the window's grid shows
    counter = _CountingDelegate(view)
    view.setItemDelegate(counter)
    view.resize(1000, 300)
    view.show()
    qtbot.waitExposed(view)
    model.on_ticks([tick(c, 10_100, second=1, cum=1) for c in CODES])
    model.flush()
    for _ in range(12):
        for c in CODES:
            model.state(c).flash_until = 0.0
        model.flush()
    QApplication.processEvents()
    counter.painted.clear()
    model.on_ticks([tick("000660", 10_100, second=1, cum=5)])      # volume only, row 1
    model.flush()
    QApplication.processEvents()
    assert counter.painted and set(counter.painted) <= {(1, Col.VOLUME)}


def test_numeric_columns_sort_by_value(model):
    rates = [0.86, 0.85, 0.92, -0.24, 0.0, 10.5]
    for i, (code, rate) in enumerate(zip(CODES, rates)):
        model.on_ticks([tick(code, int(round(10_000 * (1 + rate / 100))), second=i, cum=i + 1)])
    model.set_codes(CODES + ["035720"])                  # one row without trades (sorts as −∞)
    for col in (Col.CHANGE_PCT, Col.PRICE, Col.VOLUME, Col.CHANGE, Col.TIME):
        for order in (Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder):
            model.sort(col, order)
            shown = [model.index(r, col).data(SORT_ROLE) for r in range(model.rowCount())]
            assert shown == sorted(shown, reverse=order == Qt.SortOrder.DescendingOrder), (col, order)
    model.sort(Col.CHANGE_PCT, Qt.SortOrder.DescendingOrder)
    texts = [model.index(r, Col.CHANGE_PCT).data() for r in range(model.rowCount())]
    assert texts == ["+10.50%", "+0.92%", "+0.86%", "+0.85%", "+0.00%", "-0.24%", None]
    model.sort(-1)                                       # back to the watchlist's order
    assert model.codes() == CODES + ["035720"]


def test_sorting_keeps_the_selected_row_and_signals_nothing_when_the_order_stands(qtbot, model):
    view = QTableView()
    view.setModel(model)
    for i, code in enumerate(CODES):
        model.on_ticks([tick(code, 10_000 + 100 * i, second=i, cum=i + 1)])
    view.selectRow(model.row_of("035420"))
    model.sort(Col.PRICE, Qt.SortOrder.DescendingOrder)
    assert view.selectionModel().selectedRows()[0].data(CODE_ROLE) == "035420"
    layouts: list[int] = []
    model.layoutChanged.connect(lambda *a: layouts.append(1))
    model.sort(Col.PRICE, Qt.SortOrder.DescendingOrder)  # the periodic re-sort, nothing moved
    assert layouts == []


def test_chart_line_is_bounded_and_keeps_every_extreme():
    rng = np.random.default_rng(3)
    t = np.arange(200_001, dtype=float)
    p = rng.standard_normal(len(t)).cumsum()
    p[123_456] = 1e6                                    # a spike must survive downsampling
    xs, ys = peak_downsample(t, p)
    assert len(xs) <= MAX_LINE_POINTS
    assert ys.max() == 1e6 and ys.min() == p.min()
    assert xs[0] == t[0] and xs[-1] == t[-1] and np.all(np.diff(xs) > 0)
    small = peak_downsample(t[:500], p[:500])
    assert len(small[0]) == 500


def test_gc_guard_freezes_start_up_objects_and_releases_them_on_stop(qtbot):
    import gc

    from kis_desk.ui.gc_guard import GuiThreadGarbageCollector

    guard = GuiThreadGarbageCollector(freeze_after_ms=0)
    try:
        qtbot.waitUntil(lambda: gc.get_freeze_count() > 0, timeout=2000)   # full collections skip these
    finally:
        guard.stop()
    assert gc.get_freeze_count() == 0


def test_grid_store_holds_what_the_model_shows_and_copies_only_changed_cells(qtbot, model):
    from kis_desk.ui.grid_store import GridStore
    from kis_desk.ui.watchlist_model import ALERT_ROLE, NCOLS

    store = GridStore(model)
    roles = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole,
             Qt.ItemDataRole.FontRole, Qt.ItemDataRole.TextAlignmentRole, CODE_ROLE, ALERT_ROLE)

    def same() -> bool:
        return all(store.index(r, c).data(role) == model.index(r, c).data(role)
                   for r in range(model.rowCount()) for c in range(NCOLS) for role in roles
                   if c != Col.PRICE or role != Qt.ItemDataRole.BackgroundRole)   # the flash fades in time

    for i, code in enumerate(CODES):
        model.on_ticks([tick(code, 10_000 + 100 * i, second=i, cum=i + 1)])
    for _ in range(SPARK_EVERY):                 # sparkline cells are staggered over the flushes
        model.flush()
    assert store.rowCount() == model.rowCount() and same()
    for _ in range(12):
        for c in CODES:
            model.state(c).flash_until = 0.0
        model.flush()
    copies = store.copies
    model.on_ticks([tick("000660", 10_100, second=1, cum=9)])       # volume only
    model.flush()
    assert store.copies - copies == 1 and same()
    view = QTableView()
    view.setModel(store)
    view.selectRow(model.row_of("035420"))
    store.sort(Col.PRICE, Qt.SortOrder.DescendingOrder)             # the header asks the store
    assert model.sort_column == Col.PRICE and same()
    assert view.selectionModel().selectedRows()[0].data(CODE_ROLE) == "035420"
    model.set_codes(CODES[:3])
    assert store.rowCount() == 3 and same()


def test_grid_tooltips_come_from_the_source_when_the_pointer_rests_on_a_cell(qtbot, model):
    """The C++ store holds no tooltips (computing one per copied cell cost more than the copy):
    the view asks the source model for the cell under the pointer."""
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QToolTip

    from kis_desk.ui.grid_view import GridView

    view = GridView(model)
    view.resize(1000, 300)
    view.show()
    qtbot.waitExposed(view)
    model.on_ticks([tick(c, 10_100, second=1, cum=1) for c in CODES])
    model.flush()
    row = model.row_of("000660")
    assert view.store.index(row, Col.VALUE).data(Qt.ItemDataRole.ToolTipRole) is None
    want = model.index(row, Col.VALUE).data(Qt.ItemDataRole.ToolTipRole)
    assert want
    at = view.visualRect(view.store.index(row, Col.VALUE)).center()
    QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.Type.ToolTip, at, view.viewport().mapToGlobal(at)))
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    assert QToolTip.text() == want
    outside = QPoint(5, view.viewport().height() - 2)          # below the last row: no cell
    QApplication.sendEvent(view.viewport(), QHelpEvent(QEvent.Type.ToolTip, outside,
                                                       view.viewport().mapToGlobal(outside)))
    qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=2000)


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_an_alerted_row_is_framed_until_acknowledged_and_the_frame_follows_a_sort(qtbot, model, dark):
    """The dark highlight must stay dark (up/down keep 4.5:1 on it), so an alerted row also gets
    a frame in the palette's ``alert_edge`` colour: on screen, on its row after a re-sort, and
    gone once the alert is acknowledged."""
    from datetime import timezone

    from kis_desk.core.events import AlertEvent
    from kis_desk.ui.grid_view import GridView
    from kis_desk.ui.theme import palette_for

    pal = palette_for("korean", dark)
    model.set_palette(pal)
    view = GridView(model)
    view.resize(1000, 300)
    view.show()
    qtbot.waitExposed(view)
    model.on_ticks([tick(c, 10_000 + 100 * i, second=i, cum=1) for i, c in enumerate(CODES)])
    model.flush()

    def edge_pixels(code: str) -> int:
        """Pixels of the edge colour on the row's top frame line (x from 10 to 500)."""
        QApplication.processEvents()
        image = view.viewport().grab().toImage()
        y = view.rowViewportPosition(model.row_of(code)) + 1
        want = pal.alert_edge.rgb()
        return sum(image.pixelColor(x, y).rgb() == want for x in range(10, 500))

    assert edge_pixels("035420") == 0
    t = T0 + timedelta(seconds=10)
    alert = AlertEvent(alert_id="035420:x:up:1:1", stock_code="035420", stock_name="NAVER", direction="up",
                       change_pct=5.1, base_price=10_000, base_time=t - timedelta(seconds=30),
                       trigger_price=10_510, trigger_time=t, trigger_cum_volume=2,
                       detected_at=datetime.now(timezone.utc), window_seconds=60, threshold_pct=5)
    model.on_alert(alert)
    model.flush()
    assert edge_pixels("035420") == 490
    assert edge_pixels("005930") == 0
    view.sortByColumn(Col.CODE, Qt.SortOrder.DescendingOrder)     # the row moves: so does its frame
    assert model.row_of("035420") != 2
    assert edge_pixels("035420") == 490 and edge_pixels(model.codes()[2]) == 0
    model.acknowledge([alert.alert_id])
    model.flush()
    assert edge_pixels("035420") == 0
