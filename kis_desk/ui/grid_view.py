"""The watchlist grid widget: the model sorts itself, default C++ painting, one Python column.

The view shows a :class:`~.grid_store.GridStore` (the source model's cells held in C++). Text
cells are painted by Qt's default delegate from its roles (text, colour, font,
alignment, background — the price flash is a background). The sparkline column has the
caching :class:`~.sparkline.SparklineDelegate`; the same delegate takes the selected row only
while that row has an unacknowledged alert, so the selection never hides the alert colour.
An alerted row also gets a frame in the palette's ``alert_edge`` colour, drawn over the cells
after Qt's own paint: on the dark theme the highlight itself must stay dark (up and down keep
4.5:1 on it), so the frame is what catches the eye.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QRect, Qt, Signal
from PySide6.QtGui import QAccessible, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QToolTip

from .grid_columns import COLUMNS, Col
from .grid_store import GridStore
from .sparkline import SparklineDelegate
from .watchlist_model import CODE_ROLE, WatchlistModel

ROW_HEIGHT = 18
#: the periodic re-sort waits this long after the last mouse move, press or wheel over the grid
CALM_SECONDS = 3.0


def column_spans(header: QHeaderView, first: int, last: int) -> list[tuple[int, int]]:
    """Viewport x ranges ``(x, width)`` of logical sections ``first..last`` (hidden ones left
    out), adjacent sections merged: one range per visually contiguous piece."""
    cols = sorted((header.sectionViewportPosition(c), header.sectionSize(c))
                  for c in range(first, last + 1) if not header.isSectionHidden(c))
    spans: list[tuple[int, int]] = []
    for x, width in cols:
        if spans and spans[-1][0] + spans[-1][1] == x:
            spans[-1] = (spans[-1][0], spans[-1][1] + width)
        elif width > 0:
            spans.append((x, width))
    return spans


class GridView(QTableView):
    """The watchlist grid; Space / Enter / double-click acknowledges the row's alerts."""

    acknowledgeCode = Signal(str)
    chartRequested = Signal(str)       # Enter: show this row's chart

    def __init__(self, model: WatchlistModel, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("watchlistGrid")
        self.source = model      # sorted in place (WatchlistModel.sort): no proxy between
        self.store = GridStore(model, self)      # what the view paints from, in C++
        self.setModel(self.store)
        self.spark_delegate = SparklineDelegate(self)
        self.setItemDelegateForColumn(Col.SPARK, self.spark_delegate)
        self._alert_row: int | None = None          # view row handed to the spark delegate
        self._framed_rows: list[int] = []           # rows with an unacknowledged alert
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSortingEnabled(True)
        self.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        vh = self.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(ROW_HEIGHT)
        vh.setMinimumSectionSize(ROW_HEIGHT)
        vh.setVisible(False)
        hh = self.horizontalHeader()
        hh.setSectionsMovable(True)
        hh.setHighlightSections(False)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(Col.SPARK, QHeaderView.ResizeMode.Stretch)   # takes spare width
        hh.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        for column in COLUMNS:
            self.setColumnWidth(column.key, column.width)
        for column in sorted(COLUMNS, key=lambda c: c.after is not None and c.after == Col.SPARK):
            # default look (a saved header state overrides): the day's line next to the volume
            if column.hidden:
                hh.hideSection(column.key)
            if column.after is not None:
                hh.moveSection(hh.visualIndex(column.key), hh.visualIndex(column.after) + 1)
        self._last_interaction = -1e9
        self._pressed = False
        self.menu_open = False            # a context menu on the grid is showing
        self.viewport().setMouseTracking(True)    # moves without a button count as pointing
        self.selectionModel().selectionChanged.connect(self.sync_alert_row)
        self.store.layoutChanged.connect(self.sync_alert_row)
        self.store.modelReset.connect(self.sync_alert_row)
        model.alertRaised.connect(self.sync_alert_row)
        model.alertsAcknowledged.connect(self.sync_alert_row)

    def sync_alert_row(self, *_args) -> None:
        """The alerted rows (framed) and the selected one among them (painted by the spark
        delegate, alert colour kept), read from the source: the store copies an alert in at the
        next flush, this runs at once."""
        framed = self.source.alerted_rows()
        rows = self.selectionModel().selectedRows() if self.selectionModel() else []
        row = rows[0].row() if rows and rows[0].row() in framed else None
        if framed == self._framed_rows and row == self._alert_row:
            return
        if row != self._alert_row:
            if self._alert_row is not None:
                self.setItemDelegateForRow(self._alert_row, None)
            if row is not None:
                self.setItemDelegateForRow(row, self.spark_delegate)
            self._alert_row = row
        self._framed_rows = framed
        self.viewport().update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        super().paintEvent(event)
        if self._framed_rows:
            self._paint_alert_frames(event.rect())

    def _paint_alert_frames(self, area: QRect) -> None:
        """A 2-px frame around each alerted row that meets ``area`` (the paint is clipped to
        the update region, so a repainted cell gets its piece of the frame back)."""
        header = self.horizontalHeader()
        x, width = -header.offset(), header.length()
        painter = QPainter(self.viewport())
        painter.setPen(QPen(self.source.palette.alert_edge, 2))
        for row in self._framed_rows:
            y = self.rowViewportPosition(row)
            frame = QRect(x + 1, y + 1, width - 2, self.rowHeight(row) - 2)
            if frame.intersects(area) and not self.isRowHidden(row):
                painter.drawRect(frame)
        painter.end()

    # -- repaint exactly the changed cells ----------------------------------------------------
    def dataChanged(self, top_left, bottom_right, roles=()) -> None:  # noqa: N802 (Qt API)
        """Repaint the changed cells' columns where they are *shown*, not their bounding box.

        Qt repaints the rectangle spanning a changed range, in visual order. The default layout
        moves sections (the sparkline sits between volume and value, ``Column.after``), so the
        logical run PRICE..TIME that a trade changes spans the sparkline on screen: every flush
        repainted every row's sparkline too (400 Python delegate paints/s at 2,000 trades/s,
        for 50 changed lines a second). Here each visually contiguous piece of the range's
        columns is one update rectangle, exactly the cells' area (Qt's own rectangles reach one
        pixel into the next column and row, which repainted the unchanged 체결강도 column with
        every change of its neighbour). The grid has no editors to refresh; with a screen reader
        active Qt's own slot runs (it also sends the accessibility event)."""
        if not top_left.isValid() or not bottom_right.isValid() or QAccessible.isActive():
            super().dataChanged(top_left, bottom_right, roles)
            return
        if not self.isVisible():
            return
        y = self.rowViewportPosition(top_left.row())
        bottom = bottom_right.row()
        height = self.rowViewportPosition(bottom) + self.rowHeight(bottom) - y
        viewport = self.viewport()
        if y >= viewport.height() or y + height <= 0:
            return
        for x, width in column_spans(self.horizontalHeader(), top_left.column(), bottom_right.column()):
            viewport.update(QRect(x, y, width, height))

    # -- calm re-sort: rows do not move under a user who is pointing at them ----------------
    def viewportEvent(self, event) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.MouseMove, QEvent.Type.Wheel, QEvent.Type.Enter):
            self._last_interaction = time.monotonic()
        elif kind == QEvent.Type.MouseButtonPress:
            self._pressed = True
            self._last_interaction = time.monotonic()
        elif kind == QEvent.Type.MouseButtonRelease:
            self._pressed = False
            self._last_interaction = time.monotonic()
        elif kind == QEvent.Type.Leave:
            self._last_interaction = -1e9     # pointer gone: re-sort at the next tick
        elif kind == QEvent.Type.ToolTip:
            self._show_tooltip(event)
            return True
        return super().viewportEvent(event)

    def _show_tooltip(self, event) -> None:
        """The cell's tooltip, asked of the source model when the pointer rests on it (the C++
        store holds no tooltips: computing one per copied cell cost more than the copy)."""
        index = self.indexAt(event.pos())
        text = (self.source.index(index.row(), index.column()).data(Qt.ItemDataRole.ToolTipRole)
                if index.isValid() else None)
        if text:
            QToolTip.showText(event.globalPos(), text, self.viewport(), self.visualRect(index))
        else:
            QToolTip.hideText()
            event.ignore()

    def interacting(self, now: float | None = None) -> bool:
        """The user is pointing at, dragging over or has a menu open on the grid: a re-sort now
        would move the row under the mouse (issue 12), so the periodic one waits."""
        now = time.monotonic() if now is None else now
        return self._pressed or self.menu_open or now - self._last_interaction < CALM_SECONDS

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            idx = self.currentIndex()
            if idx.isValid():
                self.acknowledgeCode.emit(idx.data(CODE_ROLE))
                if event.key() != Qt.Key.Key_Space:
                    self.chartRequested.emit(idx.data(CODE_ROLE))
                return
        super().keyPressEvent(event)
