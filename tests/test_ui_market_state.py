"""Halts and VI on the desk: the grid's badge (with its start time, kind and standard price in
the tooltip) appears with the engine's MarketStateEvent and clears when the state ends; the
detail chart draws VI periods from the events, from auction prints and from VI alerts; the
alert dock says when a move went through a VI.

The engine is ``RecordingEngine`` (real bus, symbols and SQLite repository)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics

from kis_desk.core.events import AlertEvent, MarketStateEvent, TicksEvent
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST
from kis_desk.ui.chart import DetailChart, history_arrays
from kis_desk.ui.market_badges import merge_periods, print_period
from kis_desk.ui.watchlist_model import Col
from test_ui_support import recording_engine, shown_window

pytestmark = pytest.mark.usefixtures("memory_keyring")

CODES = ["005930", "000660", "373220"]
T0 = datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)


@pytest.fixture
def engine():
    eng = recording_engine(CODES)
    yield eng
    eng.repository.close()


def today(h: int, m: int, s: int = 0) -> datetime:
    return datetime.now(KST).replace(hour=h, minute=m, second=s, microsecond=0)


def badge(win, code: str) -> tuple[str | None, str | None]:
    win.model.flush()
    i = win.model.row_of(code)
    index = win.model.index(i, Col.BADGE)
    return win.model.cells(i)[Col.BADGE][0], index.data(Qt.ItemDataRole.ToolTipRole)


def vi_alert(code: str, trigger: datetime, vi: str = "dynamic_vi", cum: int = 1) -> AlertEvent:
    return AlertEvent(alert_id=f"{code}:{trigger:%Y%m%d}:up:1:{cum}", stock_code=code, stock_name="",
                      direction="up", change_pct=6.0, base_price=100, base_time=trigger - timedelta(seconds=130),
                      trigger_price=106, trigger_time=trigger, trigger_cum_volume=cum,
                      detected_at=datetime.now(timezone.utc), window_seconds=60, threshold_pct=5, vi=vi)


def test_badge_shows_vi_and_halt_with_their_start_and_clears_when_they_end(qloop, qtbot, engine):
    with shown_window(qloop, engine, CODES) as win:
        assert badge(win, "000660") == (None, None)
        engine.bus.publish(MarketStateEvent("000660", "vi", today(9, 31, 5), "probe", "dynamic", 212_000))
        text, tip = badge(win, "000660")
        assert text == "VI 09:31"
        assert "동적 VI" in tip and "09:31:05" in tip and "212,000" in tip
        engine.bus.publish(MarketStateEvent("005930", "halted", today(10, 5), "probe"))
        assert badge(win, "005930") == ("정지", "거래정지 · 10:05:00부터")
        assert badge(win, "373220") == (None, None)              # the others say nothing
        # the VI's auction print ended it; the halt goes on
        engine.bus.publish(MarketStateEvent("000660", "", today(9, 33, 7), "trade", "dynamic"))
        assert badge(win, "000660") == (None, None) and badge(win, "005930")[0] == "정지"
        # a watchlist without the halted symbol and back: the badge is still known
        win.show_codes(["000660"])
        win.show_codes(CODES)
        assert badge(win, "005930")[0] == "정지"
        engine.bus.publish(MarketStateEvent("005930", "", today(10, 20), "trade"))
        assert badge(win, "005930") == (None, None)


def test_states_under_way_at_start_come_from_the_engine(qloop, qtbot, engine):
    engine.states = {"373220": MarketStateEvent("373220", "vi", today(9, 2), "probe")}
    with shown_window(qloop, engine, CODES) as win:
        text, tip = badge(win, "373220")
        assert text == "VI 09:02" and "09:02:00" in tip and "기준가" not in tip   # kind, price unknown
        assert ("market_states" not in [c[0] for c in engine.calls])             # a plain read


def test_chart_draws_vi_periods_from_market_state_events(qloop, qtbot, engine):
    with shown_window(qloop, engine, CODES) as win:
        win.select_code("000660")
        qloop.run_until_complete(win.idle())
        chart = win.chart
        assert chart.code == "000660"
        start, end = today(9, 31, 5), today(9, 33, 10)
        engine.bus.publish(MarketStateEvent("000660", "vi", start, "probe"))
        engine.bus.publish(MarketStateEvent("005930", "vi", start, "probe"))   # another symbol
        chart.redraw()
        assert chart.vi.periods == [(start.timestamp(), None)] and len(chart.vi_lines) == 1
        band = chart.vi.bands[0].getRegion()
        assert band == (start.timestamp(), start.timestamp() + 120)            # running: nominal
        engine.bus.publish(MarketStateEvent("000660", "", end, "trade"))
        chart.redraw()
        assert chart.vi.periods == [(start.timestamp(), end.timestamp())]
        assert chart.vi.bands[0].getRegion() == (start.timestamp(), end.timestamp())
        # shown again later: the period seen this run comes back; 005930 has its own
        win.select_code("005930")
        qloop.run_until_complete(win.idle())
        chart.redraw()
        assert chart.vi.periods == [(start.timestamp(), None)]
        win.select_code("000660")
        qloop.run_until_complete(win.idle())
        chart.redraw()
        assert chart.vi.periods == [(start.timestamp(), end.timestamp())] and len(chart.vi_lines) == 1


def _tick(s: float, price: int, cum: int, state: str = "", code: str = "005930") -> Tick:
    return Tick(code, T0 + timedelta(seconds=s), price, 1, cum, price - 100, None, None, 0.0, "ws",
                "krx", state)


def test_chart_finds_vi_periods_from_auction_prints_and_vi_alerts(qtbot):
    chart = DetailChart()
    qtbot.addWidget(chart)
    chart.show_symbol("005930", "삼성전자")
    history = [_tick(s, 100, i + 1) for i, s in enumerate(range(0, 601, 5))]     # 09:00 … 09:10
    chart.load_history("005930", history_arrays(history), [])
    chart.on_ticks([_tick(725, 106, 200, "dynamic_vi"), _tick(726, 106, 201)])  # the auction print
    chart.redraw()
    # from the last trade before the print (09:10:00) to the print (09:12:05)
    assert chart.vi.periods == [((T0 + timedelta(seconds=600)).timestamp(), (T0 + timedelta(seconds=725)).timestamp())]
    assert len(chart.vi_lines) == 1
    # a restart: no print in the live trades, but the stored VI alert says where the VI ended
    chart.show_symbol("005930", "삼성전자")
    assert chart.vi.periods == [] and chart.vi_lines == []
    stored = history + [_tick(725, 106, 200)]                   # stored trades carry no state
    chart.load_history("005930", history_arrays(stored), [vi_alert("005930", T0 + timedelta(seconds=725))])
    chart.redraw()
    assert chart.vi.periods == [((T0 + timedelta(seconds=600)).timestamp(), (T0 + timedelta(seconds=725)).timestamp())]
    # an alert arriving before its history: set again once the trades before it are known
    chart.show_symbol("005930", "삼성전자")
    chart.add_alert(vi_alert("005930", T0 + timedelta(seconds=725)))
    assert chart.vi.periods[0][0] == (T0 + timedelta(seconds=725 - 120)).timestamp()   # nominal
    chart.load_history("005930", history_arrays(stored), [])
    assert chart.vi.periods[0][0] == (T0 + timedelta(seconds=600)).timestamp()
    # an alert without VI draws no VI
    chart.show_symbol("005930", "삼성전자")
    chart.load_history("005930", history_arrays(stored), [vi_alert("005930", T0 + timedelta(seconds=725), vi="")])
    chart.redraw()
    assert chart.vi.periods == [] and chart.vi_lines == []


def test_period_helpers():
    assert merge_periods([(10, 20), (15, 30), (40, None), (50, 60), (1, 2)]) == [(1, 2), (10, 30), (40, None)]
    assert merge_periods([(10, None), (5, 12)]) == [(5, None)]
    assert print_period([1.0, 2.0, 400.0], 402.0) == (400.0, 402.0)     # the last trade before it
    assert print_period([1.0, 2.0], 402.0) == (252.0, 402.0)            # at most the longest VI
    assert print_period([], 402.0) == (282.0, 402.0)                      # no trade known: nominal


def test_alert_dock_says_the_move_went_through_a_vi(qloop, qtbot, engine):
    with shown_window(qloop, engine, CODES) as win:
        engine.bus.publish(vi_alert("000660", datetime.now(KST).replace(microsecond=0), "static_vi", cum=7))
        qloop.run_until_complete(asyncio.sleep(0))
        model = win.alert_dock.model
        row = next(r for r in range(model.rowCount()) if model.index(r, 1).data() == "000660")
        cell = model.index(row, 3)
        assert cell.data().endswith(" · VI"), cell.data()                 # short: fits the column
        assert "정적 VI 발동" in cell.data(Qt.ItemDataRole.ToolTipRole)     # the kind in the tooltip
        bold = QFont(win.alert_dock.view.font())
        bold.setBold(True)                                                # unacknowledged: bold
        assert QFontMetrics(bold).horizontalAdvance(cell.data()) <= win.alert_dock.view.columnWidth(3) - 8


def test_time_axis_zoomed_out_to_days_labels_a_few_ticks(qtbot):
    from kis_desk.ui.chart_items import TimeAxis

    axis = TimeAxis("bottom")
    (spacing, values), = axis.tickValues(0.0, 1.7e9, 800)      # 1970 … 2023 in 800 px
    assert spacing % 86400 == 0 and 0 < len(values) <= 20
