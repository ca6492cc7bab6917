"""The grid's one Python delegate: sparklines (after Wireshark's) and the alerted selected row.

Far cheaper than one chart widget per row (pyqtgraph #1039), and cheaper still because a line is
rendered once per data change into a cached pixmap per row and size (``SparkCache``); every
repaint in between (hover, scroll, the selection, a neighbour's flash) only blits it. Text cells
are painted by Qt's default C++ delegate; this delegate takes over a text row only while it is
selected *and* has an unacknowledged alert (the window sets it for that one row).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PySide6.QtCore import QModelIndex, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem
from pyqtgraph.functions import arrayToQPolygonF

from .grid_columns import Col
from .watchlist_model import ALERT_ROLE, SPARK_KEY_ROLE, SPARK_ROLE

_SELECTED = QStyle.StateFlag.State_Selected
#: the second pass of a sparkline's line, in pixels below the first (see render_sparkline)
LINE_OFFSET = 0.35


def alert_selection(option: QStyleOptionViewItem, index: QModelIndex) -> QStyleOptionViewItem | None:
    """For a selected row with a pending alert: the option to paint it *unselected* (alert
    background, normal colours), else None. The selection shows as a frame (selection_frame):
    the selection highlight must never hide an alert the trader has not acknowledged yet."""
    if not (option.state & _SELECTED) or not index.data(ALERT_ROLE):
        return None
    opt = QStyleOptionViewItem(option)
    opt.state &= ~_SELECTED
    return opt


def selection_frame(painter: QPainter, option: QStyleOptionViewItem) -> None:
    """Top and bottom edges in the selection colour (the row reads as selected)."""
    r = option.rect
    painter.save()
    painter.setPen(QPen(option.palette.highlight().color(), 2))
    painter.drawLine(r.left(), r.top() + 1, r.right(), r.top() + 1)
    painter.drawLine(r.left(), r.bottom(), r.right(), r.bottom())
    painter.restore()


def downsample(points: tuple[float, ...] | list[float], width: int) -> list[float]:
    """At most ``width`` + 1 values: per pixel column, the last value of its slice.

    The first and last points are always kept, so the line starts and ends where the data does.
    """
    return _downsampled(np.asarray(points, dtype=float), width).tolist()


def _downsampled(values: np.ndarray, width: int) -> np.ndarray:
    n = len(values)
    if width <= 0 or n <= width + 1:
        return values
    return values[_slice_ends(n, width)]


@lru_cache(maxsize=64)
def _slice_ends(n: int, width: int) -> np.ndarray:
    """Indexes of the kept points (a few (count, width) pairs recur: cached; a Python loop
    over them was most of a sparkline's render)."""
    step = n / width
    inner = np.minimum(n - 1, ((np.arange(1, width) + 1) * step).astype(np.int64) - 1)
    return np.concatenate(([0], inner, [n - 1]))


def sparkline_polygon(points, rect: QRect, baseline: float | None = None) -> tuple[QPolygonF, float | None]:
    """The polyline for ``points`` scaled into ``rect``; also the baseline's y (or None).

    Built with numpy straight into the polygon's memory: a ``QPointF`` per point from Python
    cost ~1 µs each, most of a render."""
    values = _downsampled(np.asarray(points, dtype=float), max(1, rect.width()))
    lo, hi = float(values.min()), float(values.max())
    if baseline is not None:
        lo, hi = min(lo, baseline), max(hi, baseline)
    span = hi - lo
    left, top, w, h = rect.left(), rect.top(), rect.width(), rect.height()
    n = len(values)
    dx = w / (n - 1) if n > 1 else 0.0
    xs = left + np.arange(n) * dx
    if span <= 0:
        y = top + h / 2
        return arrayToQPolygonF(xs, np.full(n, float(y))), (y if baseline is not None else None)
    scale = (h - 1) / span
    bottom = top + h - 1
    base_y = bottom - (baseline - lo) * scale if baseline is not None else None
    return arrayToQPolygonF(xs, bottom - (values - lo) * scale), base_y


class SparkCache:
    """Rendered sparklines per row, keyed by (points version, baseline, size, colour, scale)."""

    MAX_ROWS = 400

    def __init__(self) -> None:
        self._pixmaps: dict[str, tuple[tuple, QPixmap | None]] = {}
        self.renders = 0                  # lines actually drawn (tests, benchmark)

    def get(self, index: QModelIndex, size: tuple[int, int], colour: QColor, ratio: float) -> QPixmap | None:
        code, version, baseline = index.data(SPARK_KEY_ROLE) or (None, 0, None)
        key = (version, baseline, size, colour.rgba(), ratio)
        hit = self._pixmaps.get(code)
        if hit is not None and hit[0] == key:
            return hit[1]
        data = index.data(SPARK_ROLE)
        pixmap = render_sparkline(data[0], data[1], size, colour, ratio) if data else None
        self.renders += 1
        if len(self._pixmaps) >= self.MAX_ROWS and code not in self._pixmaps:
            self._pixmaps.clear()
        self._pixmaps[code] = (key, pixmap)
        return pixmap


def render_sparkline(points, baseline: float | None, size: tuple[int, int], colour: QColor,
                     ratio: float = 1.0) -> QPixmap | None:
    """The line (and the dotted previous-close baseline) on a transparent pixmap; None if < 2 points."""
    if len(points) < 2:
        return None
    w, h = size
    pixmap = QPixmap(max(1, round(w * ratio)), max(1, round(h * ratio)))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    poly, base_y = sparkline_polygon(points, QRect(0, 0, w, h), baseline)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    if base_y is not None:
        painter.setPen(QPen(QColor(150, 150, 150), 1, Qt.PenStyle.DotLine))
        painter.drawLine(QPointF(0, base_y), QPointF(w, base_y))
    # A 1.3 px line, drawn as a 1 px line twice a third of a pixel apart: Qt's raster engine
    # strokes a pen of any other width than 1 through its general path stroker, ~2.2 ms for a
    # 300 px line (a 50-row grid re-renders 50 lines a second), while 1 px antialiased lines take
    # its cosmetic fast path (~0.1 ms each); the two passes look the same as the wider pen.
    painter.setPen(QPen(colour, 1.0))
    painter.drawPolyline(poly)
    painter.translate(0.0, LINE_OFFSET)
    painter.drawPolyline(poly)
    painter.end()
    return pixmap


class SparklineDelegate(QStyledItemDelegate):
    """Paints ``SPARK_ROLE`` = (points, previous close) as a line in the cell's foreground colour.

    Set for the sparkline column, and for the selected row while it has an alert: there it paints
    the text cells too, unselected with a selection frame (see ``alert_selection``).
    """

    margin = 3

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cache = SparkCache()

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        alerted = alert_selection(option, index)
        if index.column() != Col.SPARK:
            super().paint(painter, alerted or option, index)
            if alerted is not None:
                selection_frame(painter, option)
            return
        opt = QStyleOptionViewItem(alerted or option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        # background, selection and focus exactly as other cells (themes, alert highlight)
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget)
        if alerted is not None:
            selection_frame(painter, option)
        rect = option.rect.adjusted(self.margin, self.margin, -self.margin, -self.margin)
        if rect.width() < 4 or rect.height() < 4:
            return
        colour = index.data(Qt.ItemDataRole.ForegroundRole)
        colour = QColor(colour) if colour is not None else option.palette.text().color()
        ratio = painter.device().devicePixelRatioF() if painter.device() is not None else 1.0
        pixmap = self.cache.get(index, (rect.width(), rect.height()), colour, ratio)
        if pixmap is not None:
            painter.drawPixmap(QRectF(rect), pixmap, QRectF(pixmap.rect()))
