"""pyqtgraph pieces of the detail chart: candlesticks in one QPicture, and a KST time axis."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF
from PySide6.QtGui import QColor, QPainter, QPicture

from ..protocol.records import KST
from .candles import Candles

KST_OFFSET = 9 * 3600
# tick spacings (s) the time axis chooses from: never below a second, never fractional labels
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)
LABEL_PX = 70                 # room one "HH:MM" label needs


class TimeAxis(pg.AxisItem):
    """Trade time in KST: "HH:MM" (or "HH:MM:SS" below a minute's spacing), ticks on round
    wall-clock times. pyqtgraph's DateAxisItem shows "57.000 58.000" when zoomed to seconds."""

    def __init__(self, orientation: str = "bottom", **kw) -> None:
        super().__init__(orientation, **kw)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph API)
        span = maxVal - minVal
        if not (span > 0 and math.isfinite(span)):
            return []
        target = span / max(size / LABEL_PX, 1.0)
        major = next((s for s in TIME_STEPS if s >= target), TIME_STEPS[-1])
        first = math.ceil((minVal + KST_OFFSET) / major) * major - KST_OFFSET
        values = list(np.arange(first, maxVal + 1e-9, major))
        return [(float(major), values)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        fmt = "%H:%M" if spacing >= 60 else "%H:%M:%S"
        out = []
        for v in values:
            try:
                out.append(datetime.fromtimestamp(v, KST).strftime(fmt))
            except (OverflowError, OSError, ValueError):
                out.append("")
        return out


class CandlestickItem(pg.GraphicsObject):
    """All candles of the view in one QPicture (pyqtgraph's candlestick example), recorded again
    only when the candles change; painting is one ``drawPicture``. Up (close > open) in the
    palette's up colour, down in its down colour, unchanged in flat; bodies filled."""

    def __init__(self) -> None:
        super().__init__()
        self.picture = QPicture()
        self.count = 0

    def set_candles(self, c: Candles, size: float, up: QColor, down: QColor, flat: QColor) -> None:
        picture = QPicture()
        painter = QPainter(picture)
        half = size * 0.35
        sign = np.sign(c.close - c.open)
        for colour, mask in ((up, sign > 0), (down, sign < 0), (flat, sign == 0)):
            idx = np.flatnonzero(mask)
            if not len(idx):
                continue
            pen = pg.mkPen(colour, width=1)       # cosmetic: 1 px whatever the zoom
            painter.setPen(pen)
            painter.setBrush(pg.mkBrush(colour))
            centre = c.x[idx] + size / 2
            painter.drawLines([QLineF(QPointF(x, lo), QPointF(x, hi))
                               for x, lo, hi in zip(centre, c.low[idx], c.high[idx])])
            painter.drawRects([QRectF(x - half, o, 2 * half, cl - o)
                               for x, o, cl in zip(centre, c.open[idx], c.close[idx])])
        painter.end()
        self.prepareGeometryChange()
        self.picture = picture
        self.count = len(c)
        self.update()

    def paint(self, painter, *args) -> None:
        painter.drawPicture(0, 0, self.picture)

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self.picture.boundingRect())


__all__ = ["CandlestickItem", "TimeAxis"]
