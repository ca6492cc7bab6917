"""Sparkline delegate (after Wireshark's): one polyline per cell from a list in a model role.

Far cheaper than one chart widget per row (pyqtgraph #1039): the points are downsampled to the
cell's pixel width, so the paint cost is bounded by the cell, not by the history length.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from .watchlist_model import ALERT_ROLE, SPARK_ROLE

_SELECTED = QStyle.StateFlag.State_Selected


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


class GridDelegate(QStyledItemDelegate):
    """Default cells; a selected row keeps its alert highlight (see alert_selection)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = alert_selection(option, index)
        if opt is None:
            super().paint(painter, option, index)
            return
        super().paint(painter, opt, index)
        selection_frame(painter, option)


def downsample(points: tuple[float, ...] | list[float], width: int) -> list[float]:
    """At most ``width`` + 1 values: per pixel column, the last value of its slice.

    The first and last points are always kept, so the line starts and ends where the data does.
    """
    n = len(points)
    if width <= 0 or n <= width + 1:
        return list(points)
    step = n / width
    out = [points[0]]
    out += [points[min(n - 1, int((i + 1) * step) - 1)] for i in range(1, width)]
    out.append(points[-1])
    return out


def sparkline_polygon(points, rect: QRect, baseline: float | None = None) -> tuple[QPolygonF, float | None]:
    """The polyline for ``points`` scaled into ``rect``; also the baseline's y (or None)."""
    values = downsample(points, max(1, rect.width()))
    lo, hi = min(values), max(values)
    if baseline is not None:
        lo, hi = min(lo, baseline), max(hi, baseline)
    span = hi - lo
    left, top, w, h = rect.left(), rect.top(), rect.width(), rect.height()
    n = len(values)
    dx = w / (n - 1) if n > 1 else 0.0
    if span <= 0:
        y = top + h / 2
        poly = QPolygonF([QPointF(left + i * dx, y) for i in range(n)])
        return poly, (y if baseline is not None else None)
    scale = (h - 1) / span
    bottom = top + h - 1
    poly = QPolygonF([QPointF(left + i * dx, bottom - (v - lo) * scale) for i, v in enumerate(values)])
    base_y = bottom - (baseline - lo) * scale if baseline is not None else None
    return poly, base_y


class SparklineDelegate(QStyledItemDelegate):
    """Paints ``SPARK_ROLE`` = (points, previous close) as a line in the cell's foreground colour."""

    margin = 3

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        alerted = alert_selection(option, index)
        opt = QStyleOptionViewItem(alerted or option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        # background, selection and focus exactly as other cells (themes, alert highlight)
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, opt.widget)
        if alerted is not None:
            selection_frame(painter, option)
        data = index.data(SPARK_ROLE)
        if not data:
            return
        points, baseline = data
        if len(points) < 2:
            return
        rect = option.rect.adjusted(self.margin, self.margin, -self.margin, -self.margin)
        if rect.width() < 4 or rect.height() < 4:
            return
        poly, base_y = sparkline_polygon(points, rect, baseline)
        colour = index.data(Qt.ItemDataRole.ForegroundRole)
        colour = QColor(colour) if colour is not None else option.palette.text().color()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if base_y is not None:
            pen = QPen(QColor(150, 150, 150), 1, Qt.PenStyle.DotLine)
            painter.setPen(pen)
            painter.drawLine(QPointF(rect.left(), base_y), QPointF(rect.right(), base_y))
        pen = QPen(colour, 1.3)
        painter.setPen(pen)
        painter.drawPolyline(poly)
        painter.restore()
