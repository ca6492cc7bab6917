"""pyqtgraph pieces of the detail chart: candlesticks in one QPicture, a KST time axis, a won
axis, VI bands, and the bounded line and volume buckets of tick mode."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPicture

from ..protocol.records import KST
from .candles import Candles
from .i18n import tr
from .market_badges import NOMINAL_VI_S, Period, merge_periods

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
        # beyond the steps (a view zoomed out to days): whole days, never 10⁵ ticks to label
        major = next((s for s in TIME_STEPS if s >= target), math.ceil(target / 86400) * 86400)
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


_BUCKETS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800)
MAX_LINE_POINTS = 2000        # points handed to the price line per redraw


def peak_downsample(t: np.ndarray, p: np.ndarray, max_points: int = MAX_LINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points: per bucket of trades its low and its high, in time order.

    The first and last trades are kept, so the line starts and ends where the data does.
    """
    n = len(t)
    if n <= max_points:
        return t, p
    size = -(-n // (max_points // 2 - 1))          # trades per bucket (ceil): ≤ max_points/2 − 1 buckets
    full = n // size * size
    blocks = p[:full].reshape(-1, size)
    offsets = np.arange(0, full, size)
    parts = [[0], offsets + blocks.argmin(axis=1), offsets + blocks.argmax(axis=1), [n - 1]]
    if full < n:                                     # the partial last bucket
        parts += [[full + int(np.argmin(p[full:]))], [full + int(np.argmax(p[full:]))]]
    idx = np.unique(np.concatenate(parts).astype(np.int64))
    return t[idx], p[idx]


def volume_bucket(span_seconds: float, bars: int = 90) -> int:
    """Seconds per volume bar so the visible day shows roughly ``bars`` bars (1 s … 30 min)."""
    for size in _BUCKETS:
        if span_seconds / size <= bars:
            return size
    return _BUCKETS[-1]


class WonAxis(pg.AxisItem):
    """Price axis with thousands separators (integer won), like the grid."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        return [f"{v * scale:,.0f}" for v in values]


VI_COLOUR = (230, 140, 0)


class ViMarks:
    """VI periods on a plot: a translucent band from start to end (a running VI: to its nominal
    end) and a dotted "VI" line at its start. Three sources, merged: the periods of the engine's
    market-state events (replaced whole by :meth:`set_events`), the ones found from auction
    prints and VI alerts (:meth:`set_found`) and any given directly (:meth:`add`). Items are rebuilt only when the periods change."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.lines: list[pg.InfiniteLine] = []
        self.bands: list[pg.LinearRegionItem] = []
        self._events: list[Period] = []
        self._found: list[Period] = []
        self._added: list[Period] = []
        self._drawn: list[Period] = []

    @property
    def periods(self) -> list[Period]:
        return merge_periods(self._events + self._found + self._added)

    def set_events(self, periods: list[Period]) -> None:
        self._events = list(periods)

    def add(self, start: float, end: float | None = None) -> None:
        self._added.append((start, end))

    def set_found(self, periods: list[Period]) -> None:
        self._found = list(periods)

    def clear(self) -> None:
        self._events, self._found, self._added = [], [], []
        self.draw()

    def draw(self) -> bool:
        """Bring the items up to the periods; True when they changed."""
        periods = self.periods
        if periods == self._drawn:
            return False
        for item in self.lines + self.bands:
            self.plot.removeItem(item)
        self.lines, self.bands = [], []
        pen = pg.mkPen(VI_COLOUR, style=Qt.PenStyle.DotLine)
        for start, end in periods:
            band = pg.LinearRegionItem((start, end if end is not None else start + NOMINAL_VI_S),
                                       movable=False, brush=QColor(*VI_COLOUR, 40), pen=pg.mkPen(None))
            band.setZValue(-10)                       # under the candles
            line = pg.InfiniteLine(start, angle=90, pen=pen, label=tr("chart.vi"),
                                   labelOpts={"position": 0.95, "color": VI_COLOUR})
            self.plot.addItem(band, ignoreBounds=True)     # the trades set the view, not VI
            self.plot.addItem(line, ignoreBounds=True)
            self.bands.append(band)
            self.lines.append(line)
        self._drawn = periods
        return True


__all__ = ["MAX_LINE_POINTS", "CandlestickItem", "TimeAxis", "ViMarks", "WonAxis", "peak_downsample",
           "volume_bucket"]
