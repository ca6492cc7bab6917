"""The detail chart: candles from known trades (OHLCV exact), live trades updating the last
candle, the KST time axis labels, modes, markers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from kis_desk.core.events import AlertEvent
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST
from kis_desk.ui.candles import CandleSeries, build_candles
from kis_desk.ui.chart import MODE_CANDLE_5M, MODE_TICK, DetailChart, history_arrays
from kis_desk.ui.chart_items import TimeAxis
from kis_desk.ui.i18n import tr

T0 = datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)

# (seconds after 09:00, price, volume): 09:00 candle, 09:01 candle, 09:05 candle
TRADES = [(0, 70_000, 10), (20, 70_500, 5), (40, 69_800, 7), (59, 70_100, 3),
          (60, 70_200, 1), (90, 70_900, 2), (119, 70_300, 4),
          (300, 71_000, 6)]


def ticks(rows=TRADES, code="005930", prev_close=69_000, cum0=0):
    out, cum = [], cum0
    for s, price, vol in rows:
        cum += vol
        out.append(Tick(code, T0 + timedelta(seconds=s), price, vol, cum, price - prev_close,
                        None, None, 0.0, "ws"))
    return out


def test_candles_from_known_trades_are_exact():
    h = history_arrays(ticks())
    c, starts = build_candles(h.t, h.p, h.v, 60)
    minute = T0.timestamp()
    assert list(c.x) == [minute, minute + 60, minute + 300]
    assert list(c.open) == [70_000, 70_200, 71_000]
    assert list(c.high) == [70_500, 70_900, 71_000]
    assert list(c.low) == [69_800, 70_200, 71_000]
    assert list(c.close) == [70_100, 70_300, 71_000]
    assert list(c.volume) == [25, 7, 6] and list(starts) == [0, 4, 7]
    five, _ = build_candles(h.t, h.p, h.v, 300)
    assert list(five.x) == [minute, minute + 300]
    assert (list(five.open), list(five.high), list(five.low), list(five.close), list(five.volume)) == (
        [70_000, 71_000], [70_900, 71_000], [69_800, 71_000], [70_300, 71_000], [32, 6])


def test_incremental_candles_equal_a_full_rebuild():
    h = history_arrays(ticks())
    series = CandleSeries(60)
    for n in range(1, len(h.t) + 1):          # one trade at a time, as live trades come
        series.update(h.t[:n], h.p[:n], h.v[:n])
        full, _ = build_candles(h.t[:n], h.p[:n], h.v[:n], 60)
        assert all(np.array_equal(a, b) for a, b in zip(series.candles, full))
    assert not series.update(h.t, h.p, h.v)    # nothing new
    series.update(h.t[:2], h.p[:2], h.v[:2])   # a shorter series: replaced, rebuilt
    assert len(series.candles) == 1 and series.candles.close[0] == 70_500


def test_chart_candles_from_history_and_a_live_trade_updates_the_last_candle(qtbot):
    chart = DetailChart()
    qtbot.addWidget(chart)
    chart.show_symbol("005930", "삼성전자")
    chart.load_history("005930", history_arrays(ticks()), [])
    chart.redraw()
    c = chart.candles.candles
    assert chart.candle_item.count == 3 and list(c.close) == [70_100, 70_300, 71_000]
    assert chart.candle_item.isVisible() and not chart.price_line.isVisible()
    assert chart.base_line.isVisible() and chart.base_line.value() == 69_000
    assert tr("chart.prev_close", price="69,000") in chart.price_plot.titleLabel.text
    # a live trade in the 09:05 minute: same candle, new high/close/volume
    chart.on_ticks(ticks([(310, 71_400, 9)], cum0=38))
    chart.redraw()
    c = chart.candles.candles
    assert len(c) == 3 and (c.open[-1], c.high[-1], c.low[-1], c.close[-1], c.volume[-1]) == (
        71_000, 71_400, 71_000, 71_400, 15)
    # the next minute: a new candle; the view follows it
    chart.on_ticks(ticks([(360, 71_100, 2)], cum0=47))
    chart.redraw()
    assert len(chart.candles.candles) == 4 and chart.candle_item.count == 4
    left, right = chart.price_plot.getViewBox().viewRange()[0]
    assert left <= T0.timestamp() + 360 <= right
    # volume bars: one per candle, coloured by the candle's direction
    assert list(chart.volume_bars.opts["height"]) == [25, 7, 15, 2]


def test_modes_markers_and_time_axis_labels(qtbot):
    chart = DetailChart()
    qtbot.addWidget(chart)
    chart.show_symbol("005930", "삼성전자")
    chart.load_history("005930", history_arrays(ticks()), [])
    a = AlertEvent("005930:20240102:up:1:38", "005930", "삼성전자", "up", 1.43, 70_000, T0,
                   71_000, T0 + timedelta(seconds=300), 38, datetime.now(timezone.utc), 600, 1.0)
    chart.add_alert(a)
    chart.add_vi(T0.timestamp() + 300)
    chart.redraw()
    assert len(chart.alert_points.data) == 1 and len(chart.vi_lines) == 1
    chart.set_mode(MODE_CANDLE_5M)
    assert list(chart.candles.candles.volume) == [32, 6]
    chart.set_mode(MODE_TICK)
    assert chart.price_line.isVisible() and not chart.candle_item.isVisible()
    xs, ys = chart.price_line.getData()
    assert len(xs) == len(TRADES) and ys[-1] == 71_000
    with pytest.raises(ValueError):
        chart.set_mode("hourly")
    # time axis: round KST wall-clock ticks, "HH:MM" — never "57.000 58.000"
    axis = TimeAxis("bottom")
    start = T0.timestamp() + 7
    [(spacing, values)] = axis.tickValues(start, start + 3600, 600)
    labels = axis.tickStrings(values, 1.0, spacing)
    assert spacing >= 60 and labels[0] == "09:10" and all(len(x) == 5 and x[2] == ":" for x in labels)
    [(spacing, values)] = axis.tickValues(start, start + 3, 600)      # zoomed to seconds
    assert spacing >= 1 and axis.tickStrings(values, 1.0, spacing)[0] == "09:00:07"
