"""Detail chart of the selected symbol: 1-minute candles with volume (5-minute candles and a
tick line as options), the previous close, VI and alert markers, on a KST "HH:MM" time axis.

Candles are built with vectorised numpy from the day's series (read from storage in the
worker thread, ``history_from_series``: every stored minute as its open, high, low and close,
then the last stored minute's trades — the candles of the bars, whatever the day's volume) plus
live trades, and kept up to date by rebuilding only the
current candle (ui/candles.py); all candles are one QPicture item (ui/chart_items.py), recorded
again at most at the 2 Hz redraw. In tick mode the line handed to pyqtgraph is bounded (``MAX_LINE_POINTS``, min/max per time bucket so every
spike stays visible), and pyqtgraph clips it to the view and downsamples again, so a busy
symbol's full day (10⁵+ trades) redraws as cheaply as a quiet one. History comes through the
engine (loaded off the GUI thread by the window); live trades are appended to growable numpy
buffers and drawn by a 2 Hz timer — never per trade — which stops while the window is hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QGraphicsItem, QHBoxLayout, QVBoxLayout, QWidget

from ..core.events import AlertEvent
from ..core.ticks import Tick
from ..protocol.records import KST
from .candles import FIVE_MINUTES, ONE_MINUTE, CandleSeries
from .chart_items import (  # noqa: F401 - MAX_LINE_POINTS, peak_downsample: the chart's vocabulary
    MAX_LINE_POINTS, CandlestickItem, TimeAxis, ViMarks, WonAxis, peak_downsample, volume_bucket,
)
from .i18n import tr
from .market_badges import VI_PRINTS, print_period
from .theme import DARK_PALETTES, KOREAN, Palette

MODE_CANDLE_1M = "candle1"
MODE_CANDLE_5M = "candle5"
MODE_TICK = "tick"
MODES = (MODE_CANDLE_1M, MODE_CANDLE_5M, MODE_TICK)
_CANDLE_SIZE = {MODE_CANDLE_1M: ONE_MINUTE, MODE_CANDLE_5M: FIVE_MINUTES}
VISIBLE_CANDLES = 80          # candles in view when following the newest one

KST_UTC_OFFSET = -9 * 3600    # pyqtgraph's convention: seconds *west* of UTC
LEFT_AXIS_PX = 84             # fits "1,000,000" plus the rotated axis label


# 1 px: Qt's raster engine draws it on its thin-line fast path; a 1.3 px antialiased line goes
# through the stroker and costs ~40× more (14 ms instead of 0.3 ms for 2,000 points)
LINE_WIDTH = 1
REDRAW_MS = 500


class History(NamedTuple):
    """A day of trades as chart arrays (built in a worker thread, not on the GUI thread)."""

    t: np.ndarray
    p: np.ndarray
    v: np.ndarray
    last_cum: int
    prev_close: int | None


def history_arrays(ticks: Sequence[Tick]) -> History:
    """Convert stored trades to arrays; pure, so it can run off the GUI thread."""
    prev_close = None
    if ticks and ticks[-1].change is not None:
        prev_close = ticks[-1].price - ticks[-1].change
    return History(np.fromiter((t.timestamp.timestamp() for t in ticks), float, len(ticks)),
                   np.fromiter((t.price for t in ticks), float, len(ticks)),
                   np.fromiter((t.volume for t in ticks), float, len(ticks)),
                   ticks[-1].cum_volume if ticks else -1, prev_close)


def history_from_series(series) -> History:
    """The engine's day series (``engine.handle.DaySeries``: 1-minute bars plus the last stored
    minute's trades) as chart arrays; pure, run off the GUI thread like :func:`history_arrays`."""
    return History(np.asarray(series.t, dtype=float), np.asarray(series.p, dtype=float),
                   np.asarray(series.v, dtype=float), series.last_cum, series.prev_close)


class _Series:
    """Append-only (time, price, volume) buffers that double when full."""

    def __init__(self, capacity: int = 4096) -> None:
        self.t = np.empty(capacity)
        self.p = np.empty(capacity)
        self.v = np.empty(capacity)
        self.n = 0
        self.last_cum = -1

    def clear(self) -> None:
        self.n = 0
        self.last_cum = -1

    def append(self, t: np.ndarray, p: np.ndarray, v: np.ndarray, last_cum: int) -> None:
        need = self.n + len(t)
        if need > len(self.t):
            cap = max(need, 2 * len(self.t))
            for name in ("t", "p", "v"):
                old = getattr(self, name)
                new = np.empty(cap)
                new[: self.n] = old[: self.n]
                setattr(self, name, new)
        s = slice(self.n, need)
        self.t[s], self.p[s], self.v[s] = t, p, v
        self.n = need
        self.last_cum = max(self.last_cum, last_cum)

    def extend(self, ticks: list[Tick]) -> None:
        ticks = [t for t in ticks if t.cum_volume > self.last_cum]
        if ticks:
            h = history_arrays(ticks)
            self.append(h.t, h.p, h.v, h.last_cum)


class DetailChart(QWidget):
    """Chart for one code at a time; ``show_symbol`` + ``load_history`` + ``on_ticks``."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="w", foreground="k")
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.price_plot = self.layout_widget.addPlot(
            row=0, col=0, axisItems={"bottom": TimeAxis("bottom"), "left": WonAxis("left")})
        self.volume_plot = self.layout_widget.addPlot(
            row=1, col=0, axisItems={"bottom": TimeAxis("bottom"), "left": WonAxis("left")})
        self.layout_widget.ci.layout.setRowStretchFactor(0, 3)
        self.layout_widget.ci.layout.setRowStretchFactor(1, 1)
        self.volume_plot.setXLink(self.price_plot)
        # same left-axis width on both plots, or the volume bars sit under the wrong prices
        for plot in (self.price_plot, self.volume_plot):
            plot.getAxis("left").setWidth(LEFT_AXIS_PX)
            for side in ("left", "bottom"):
                # axes re-play their text on every scene paint unless cached; they change rarely
                plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.price_plot.showGrid(x=True, y=True, alpha=0.2)
        self.volume_plot.showGrid(x=True, y=False, alpha=0.2)
        self.price_plot.setClipToView(True)
        self.price_plot.setDownsampling(auto=True, mode="peak")
        self.price_line = self.price_plot.plot([], [], pen=pg.mkPen((40, 40, 40), width=LINE_WIDTH))
        self.price_line.setClipToView(True)
        self.price_line.setDownsampling(auto=True, method="peak")
        self.candle_item = CandlestickItem()
        self.price_plot.addItem(self.candle_item)
        self.base_line = pg.InfiniteLine(angle=0, pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
        self.base_line.hide()
        self.price_plot.addItem(self.base_line)
        self.vi = ViMarks(self.price_plot)       # VI periods (ui/market_badges)
        self._vi_prints: set[float] = set()      # VI auction prints seen (trade or alert time)
        for plot in (self.price_plot, self.volume_plot):
            plot.setMouseEnabled(x=True, y=False)        # pan/zoom in time; prices fit the view
            plot.getViewBox().setAutoVisible(y=True)
            plot.enableAutoRange(y=True)
        self.price_plot.getViewBox().sigRangeChangedManually.connect(self._user_moved)
        self.alert_points = pg.ScatterPlotItem(size=14, symbol="t1")
        self.price_plot.addItem(self.alert_points)
        self.volume_bars = pg.BarGraphItem(x=[], height=[], width=50, brush=(120, 120, 160), pen=None)
        self.volume_plot.addItem(self.volume_bars)
        self.mode_box = QComboBox()
        self.mode_box.setObjectName("chartMode")
        for mode in MODES:
            self.mode_box.addItem("", mode)
        self.mode_box.currentIndexChanged.connect(lambda i: self.set_mode(self.mode_box.itemData(i)))
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        bar.addWidget(self.mode_box)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.layout_widget)
        self.mode = MODE_CANDLE_1M
        self.candles = CandleSeries(ONE_MINUTE)
        self.follow = True            # keep the newest candle in view until the user pans away
        self.price_line.setVisible(False)          # candles by default
        self.palette: Palette = KOREAN
        self.code: str | None = None
        self._day_range: tuple[datetime, datetime] | None = None   # see set_day
        self.name = ""
        self.series = _Series()
        self.alerts: list[AlertEvent] = []
        self.prev_close: int | None = None
        self._dirty = False
        self._line_colour = None
        self._spots_for: tuple | None = None
        self._candles_drawn: tuple | None = None
        self.redraws = 0
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._redraw_if_dirty)
        self.timer.start()
        self.retranslate()

    def retranslate(self) -> None:
        for i, mode in enumerate(MODES):
            self.mode_box.setItemText(i, tr(f"chart.mode.{mode}"))
        self.price_plot.setLabel("left", tr("chart.price"))
        self.volume_plot.setLabel("left", tr("chart.volume"))
        self._title()

    def _title(self) -> None:
        if self.code is None:
            self.price_plot.setTitle(tr("chart.empty"))
        else:
            title = tr("chart.title", code=self.code, name=self.name)
            if self.prev_close:
                title += " · " + tr("chart.prev_close", price=f"{self.prev_close:,}")
            self.price_plot.setTitle(title)

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self._candles_drawn = None
        self._dirty = True

    def set_mode(self, mode: str) -> None:
        """1-minute candles (default), 5-minute candles or the tick line."""
        if mode not in MODES:
            raise ValueError(f"unknown chart mode {mode!r}")
        self.mode = mode
        if self.mode_box.currentData() != mode:
            self.mode_box.setCurrentIndex(MODES.index(mode))
        if mode in _CANDLE_SIZE:
            self.candles = CandleSeries(_CANDLE_SIZE[mode])
        self.price_line.setVisible(mode == MODE_TICK)
        self.candle_item.setVisible(mode != MODE_TICK)
        self.follow = True
        self._candles_drawn = None
        self._dirty = True
        self.redraw()

    def _user_moved(self, *_args) -> None:
        """Panned or zoomed by hand: follow again only when the newest data is back in view."""
        if self.series.n:
            right = self.price_plot.getViewBox().viewRange()[0][1]
            self.follow = right >= self.series.t[self.series.n - 1]

    @property
    def vi_lines(self) -> list[pg.InfiniteLine]:
        """One dotted "VI" line per VI period drawn (its band: ``vi.bands``)."""
        return self.vi.lines

    def add_vi(self, when: float, end: float | None = None) -> None:
        """A volatility-interruption (VI) period from ``when`` (epoch s) to ``end`` (None: running)."""
        self.vi.add(when, end)
        self._dirty = True

    def set_vi_periods(self, periods: Sequence[tuple[float, float | None]]) -> None:
        """The VI periods the engine's market-state events showed for the current symbol."""
        self.vi.set_events(list(periods))
        self._dirty = True

    def _vi_from(self, print_time: float | None = None) -> None:
        """A VI auction print (or a VI alert's trigger) at ``print_time``: the VI it ended, from
        the last trade before it (None: all of them again, the series having changed)."""
        if print_time is not None:
            self._vi_prints.add(print_time)
        times = self.series.t[:self.series.n].tolist()
        self.vi.set_found([print_period(times, t) for t in sorted(self._vi_prints)])

    # -- data ---------------------------------------------------------------------------------
    def set_day(self, day: date) -> None:
        """Show trades of business date ``day`` only (a late trade of the day before, or an
        early one of the next, is not drawn); call :meth:`show_symbol` to start over."""
        start = datetime(day.year, day.month, day.day, tzinfo=KST)
        self._day_range = (start, start + timedelta(days=1))

    def show_symbol(self, code: str, name: str) -> None:
        """Switch to ``code`` (empty until history arrives; live ticks start right away)."""
        self.code, self.name = code, name
        self.series.clear()
        self.candles.reset()
        self.follow = True
        self.vi.clear()
        self._vi_prints.clear()
        self.alerts = []
        self._spots_for = None
        self.prev_close = None
        self._title()
        self._dirty = True

    def load_history(self, code: str, history: History, alerts: list[AlertEvent]) -> None:
        """Stored history (``history_from_series``) goes in front of any live trades already shown."""
        if code != self.code:
            return
        series = self.series
        live = (series.t[: series.n].copy(), series.p[: series.n].copy(), series.v[: series.n].copy())
        live_cum = series.last_cum
        series.clear()
        self.candles.reset()
        series.append(history.t, history.p, history.v, history.last_cum)
        if live_cum > series.last_cum and len(live[0]):
            # keep live points newer than history (the trades table lags the bus by the writer)
            keep = live[0] > (series.t[series.n - 1] if series.n else -1)
            if keep.any():
                series.append(live[0][keep], live[1][keep], live[2][keep], live_cum)
        if history.prev_close is not None and history.prev_close != self.prev_close:
            self.prev_close = history.prev_close
            self._title()
        for a in alerts:
            self.add_alert(a)
        self._vi_from()                   # the trades before each VI print are known now
        self._dirty = True

    def on_ticks(self, ticks) -> None:
        code = self.code
        if code is None:
            return
        mine = [t for t in ticks if t.stock_code == code]
        if mine and self._day_range is not None:
            start, end = self._day_range
            mine = [t for t in mine if start <= t.timestamp < end]
        if mine:
            for t in mine:
                if t.state in VI_PRINTS and t.cum_volume > self.series.last_cum:
                    self._vi_from(t.timestamp.timestamp())     # before the print joins the series
            self.series.extend(mine)
            last = mine[-1]
            if last.change is not None and last.price - last.change != self.prev_close:
                self.prev_close = last.price - last.change
                self._title()
            self._dirty = True

    def add_alert(self, alert: AlertEvent) -> None:
        if alert.stock_code == self.code and all(a.alert_id != alert.alert_id for a in self.alerts):
            self.alerts.append(alert)
            if alert.vi:                   # the move went through a VI: its auction print
                self._vi_from(alert.trigger_time.timestamp())
            self._dirty = True

    # -- drawing ------------------------------------------------------------------------------
    def pause(self) -> None:
        """Hidden or minimised: no redraws (data keeps arriving)."""
        self.timer.stop()

    def resume(self) -> None:
        if not self.timer.isActive():
            self.timer.start()
            self._redraw_if_dirty()

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self.redraw()

    def redraw(self) -> None:
        self._dirty = False
        self.redraws += 1
        self._draw()
        # settle the auto-ranges now, as the scene would at the start of its paint: a range
        # that changes *during* the paint re-invalidates the axes and costs a second full paint
        for plot in (self.price_plot, self.volume_plot):
            plot.getViewBox().prepareForPaint()

    def _draw(self) -> None:
        s = self.series
        n = s.n
        t, p, v = s.t[:n], s.p[:n], s.v[:n]
        pal = self.palette
        if self.mode == MODE_TICK:
            sign = 0
            if n and self.prev_close:
                sign = 1 if p[-1] > self.prev_close else -1 if p[-1] < self.prev_close else 0
            colour = pal.direction(sign)
            if colour != self._line_colour:           # a new pen only when the colour changes
                self._line_colour = colour
                self.price_line.setPen(pg.mkPen(colour, width=LINE_WIDTH))
        self.price_line.setData(*peak_downsample(t, p))
        if self.prev_close:
            self.base_line.setValue(self.prev_close)
            self.base_line.show()
        else:
            self.base_line.hide()
        if self.mode == MODE_TICK:
            self._tick_volume(t, v)
        else:
            self._draw_candles(t, p, v)
        self.vi.draw()
        if self._spots_for == (len(self.alerts), self.palette):
            return                                # alert markers unchanged since the last redraw
        self._spots_for = (len(self.alerts), self.palette)
        dark = any(self.palette == p for p in DARK_PALETTES.values())
        outline = pg.mkPen((235, 235, 235) if dark else (0, 0, 0), width=1.5)
        spots = [{"pos": (a.trigger_time.timestamp(), a.trigger_price),
                  "brush": pg.mkBrush(self.palette.direction(1 if a.direction == "up" else -1)),
                  "symbol": "t1" if a.direction == "up" else "t",
                  "pen": outline, "data": a.alert_id} for a in self.alerts]
        self.alert_points.setData(spots)

    def _tick_volume(self, t: np.ndarray, v: np.ndarray) -> None:
        if len(t):
            size = volume_bucket(float(t[-1] - t[0]))
            buckets = (t // size).astype(np.int64)
            uniq, inverse = np.unique(buckets, return_inverse=True)
            sums = np.bincount(inverse, weights=v)
            self.volume_bars.setOpts(x=uniq * size + size / 2, height=sums, width=size * 0.8,
                                     brushes=None, brush=(120, 120, 160))
        else:
            self.volume_bars.setOpts(x=[], height=[], width=50)

    def _draw_candles(self, t: np.ndarray, p: np.ndarray, v: np.ndarray) -> None:
        changed = self.candles.update(t, p, v)
        c = self.candles.candles
        size = self.candles.size
        if changed or self._candles_drawn != (len(c), self.palette):
            pal = self.palette
            self.candle_item.set_candles(c, size, pal.up, pal.down, pal.flat)
            self._candles_drawn = (len(c), self.palette)
            if len(c):
                sign = np.sign(c.close - c.open)
                brushes = [pg.mkBrush(pal.up if x > 0 else pal.down if x < 0 else pal.flat) for x in sign]
                self.volume_bars.setOpts(x=c.x + size / 2, height=c.volume, width=size * 0.7,
                                         brushes=brushes)
            else:
                self.volume_bars.setOpts(x=[], height=[], width=size * 0.7, brushes=None)
        if self.follow and len(c):
            last = float(c.x[-1])
            left = max(last - (VISIBLE_CANDLES - 1) * size, float(c.x[0]) - size)
            self.price_plot.setXRange(left, max(last + 2 * size, left + 20 * size), padding=0)
