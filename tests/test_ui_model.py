"""Watchlist model: Qt model contract, coalescing, bounded history, sparkline painting."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem, QTableView

from kis_desk.core.events import (
    AlertEvent, EventBus, SessionStateEvent, SubscriptionPlanEvent, TicksEvent,
)
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST
from kis_desk.ui.sparkline import SparklineDelegate, downsample
from kis_desk.ui.theme import KOREAN, WESTERN
from kis_desk.ui.watchlist_model import (
    NCOLS,
    SPARK_EVERY,
    SPARK_POINTS,
    SPARK_ROLE,
    SORT_ROLE,
    Col,
    RowState,
    Sparkline,
    WatchlistModel,
    spark_width,
)

T0 = datetime(2026, 3, 5, 9, 0, 0, tzinfo=KST)
CODES = ["005930", "000660", "035420", "005380"]


def tick(code: str, price: int, second: float = 0, cum: int = 1, prev_close: int = 10_000,
         strength: float = 100.0) -> Tick:
    change = price - prev_close
    return Tick(code, T0 + timedelta(seconds=second), price, 1, cum, change,
                round(change / prev_close * 100, 2), strength, 0.0, "ws")


def alert(code: str = "005930", direction: str = "up", pct: float = 5.2, n: int = 1) -> AlertEvent:
    return AlertEvent(alert_id=f"{code}:20260305:{direction}:1:{n}", stock_code=code,
                      stock_name="삼성전자", direction=direction, change_pct=pct, base_price=10_000,
                      base_time=T0, trigger_price=10_520, trigger_time=T0 + timedelta(seconds=30),
                      trigger_cum_volume=n, detected_at=T0, window_seconds=60, threshold_pct=5)


@pytest.fixture
def model(qtbot):
    m = WatchlistModel(names={"005930": "삼성전자"}.get)
    m.timer.stop()   # tests flush by hand: deterministic
    m.set_codes(CODES)
    return m


def test_model_passes_qt_model_tester(qtmodeltester, model):
    model.on_ticks([tick("005930", 10_500, cum=5), tick("000660", 9_000, cum=3)])
    model.on_alert(alert())
    model.on_plan(SubscriptionPlanEvent({"key1": ("005930", "000660")}, ("035420",), 2, 1))
    model.flush()
    qtmodeltester.check(model, force_py=True)
    model.set_codes(CODES[::-1])
    qtmodeltester.check(model, force_py=True)


def test_display_formats_and_korean_colours(model):
    model.on_ticks([tick("005930", 12_345, cum=1_234_567, strength=123.456)])
    model.on_ticks([tick("000660", 9_000, cum=10)])
    r_up, r_down = model.row_of("005930"), model.row_of("000660")
    d = lambda r, c, role=Qt.ItemDataRole.DisplayRole: model.index(r, c).data(role)  # noqa: E731
    assert d(r_up, Col.NAME) == "삼성전자"
    assert d(r_up, Col.PRICE) == "12,345"
    assert d(r_up, Col.CHANGE) == "▲ 2,345"
    assert d(r_up, Col.CHANGE_PCT) == "+23.45%"
    assert d(r_up, Col.VOLUME) == "1,234,567"
    assert d(r_up, Col.STRENGTH) == "123.46"
    assert d(r_up, Col.TIME) == "09:00:00"
    assert d(r_down, Col.CHANGE) == "▼ 1,000"
    assert QColor(d(r_up, Col.PRICE, Qt.ItemDataRole.ForegroundRole)) == KOREAN.up
    assert QColor(d(r_down, Col.PRICE, Qt.ItemDataRole.ForegroundRole)) == KOREAN.down
    assert KOREAN.up.red() > KOREAN.up.blue() and KOREAN.down.blue() > KOREAN.down.red()
    model.set_palette(WESTERN)
    assert QColor(d(r_up, Col.PRICE, Qt.ItemDataRole.ForegroundRole)) == WESTERN.up
    assert WESTERN.up.green() > WESTERN.up.red()


def test_limit_up_gets_filled_marker(model):
    model.on_ticks([tick("005930", 13_000)])   # +30 %: upper limit
    r = model.row_of("005930")
    idx = model.index(r, Col.CHANGE)
    assert idx.data() == "▲ 3,000"
    assert QColor(idx.data(Qt.ItemDataRole.BackgroundRole)) == KOREAN.up   # filled
    assert QColor(idx.data(Qt.ItemDataRole.ForegroundRole)) == KOREAN.marker_text
    model.on_ticks([tick("000660", 7_000)])    # -30 %: lower limit
    idx = model.index(model.row_of("000660"), Col.CHANGE)
    assert idx.data() == "▼ 3,000"
    assert QColor(idx.data(Qt.ItemDataRole.BackgroundRole)) == KOREAN.down


def test_one_minute_change_uses_price_a_minute_ago(model):
    ticks = [tick("005930", 10_000 + s, second=s, cum=s + 1) for s in range(0, 121)]
    model.on_ticks(ticks)
    r = model.row_of("005930")
    # at t=120 the price 60 s earlier was 10_060 → (10_120 - 10_060) / 10_060
    assert model.index(r, Col.CHANGE_1M).data() == f"{60 / 10_060 * 100:+.2f}%"
    assert len(model.state("005930").minute) <= 62


def test_many_ticks_coalesce_into_few_data_changed(qtbot, model):
    received: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(lambda tl, br, roles=(): received.append((tl.row(), br.row(), tl.column(), br.column())))
    bus = EventBus()
    model.subscribe(bus)
    cum = 0
    for batch in range(200):   # 200 reads × 10 trades over rows 0, 1 and 3
        ticks = []
        for k in range(10):
            cum += 1
            code = CODES[(0, 1, 3)[k % 3]]
            ticks.append(tick(code, 10_000 + (cum % 7), second=cum / 100, cum=cum))
        bus.publish(TicksEvent(tuple(ticks)))
    assert received == []            # nothing repaints per tick
    model.flush()
    values = [(a, b) for a, b, c0, c1 in received if (c0, c1) == (Col.PRICE, Col.TIME)]
    assert sorted(values) == [(0, 1), (3, 3)]   # one signal per contiguous dirty range, value columns
    assert all((c0, c1) in ((Col.PRICE, Col.TIME), (Col.SPARK, Col.SPARK)) for *_, c0, c1 in received)
    assert model.ticks_applied == 2000
    # every changed sparkline is repainted within SPARK_EVERY flushes, each exactly once
    spark_rows = [r for a, b, c0, _ in received if c0 == Col.SPARK for r in range(a, b + 1)]
    for _ in range(SPARK_EVERY - 1):
        received.clear()
        model.flush()                # flashing rows may repaint their value cells while they fade
        assert all(a in (0, 1, 3) and b in (0, 1, 3) for a, b, *_ in received)
        spark_rows += [r for a, b, c0, _ in received if c0 == Col.SPARK for r in range(a, b + 1)]
    assert sorted(spark_rows) == [0, 1, 3]
    # an alert or feed change repaints the whole row (its background/feed cell), nothing else
    received.clear()
    for _ in range(SPARK_EVERY):
        model.flush()
    received.clear()
    model.on_alert(alert(CODES[2]))
    model.flush()
    assert (2, 2, 0, NCOLS - 1) in received


def test_history_is_bounded_over_a_long_day(model):
    ticks = [tick("005930", 10_000 + (s % 50), second=s, cum=s + 1) for s in range(0, 6 * 3600 + 1800)]
    for i in range(0, len(ticks), 500):
        model.on_ticks(ticks[i:i + 500])
    st = model.state("005930")
    assert len(st.spark.points) <= SPARK_POINTS
    assert len(st.spark.points) > SPARK_POINTS // 2
    assert len(st.minute) <= 62
    points, base = model.index(model.row_of("005930"), Col.SPARK).data(SPARK_ROLE)
    assert base == 10_000 and points[-1] == ticks[-1].price


def test_alert_highlights_row_until_acknowledged(model):
    raised = []
    model.alertRaised.connect(raised.append)
    model.on_ticks([tick("005930", 10_520)])
    model.on_alert(alert())
    r = model.row_of("005930")
    assert raised and raised[0].stock_code == "005930"
    assert QColor(model.index(r, Col.NAME).data(Qt.ItemDataRole.BackgroundRole)) == KOREAN.alert
    acked = []
    model.alertsAcknowledged.connect(acked.append)
    assert model.acknowledge_code("005930") == ["005930:20260305:up:1:1"]
    assert acked == [["005930:20260305:up:1:1"]]
    assert model.index(r, Col.NAME).data(Qt.ItemDataRole.BackgroundRole) is None


def test_feed_state_from_plan_and_sessions(model):
    model.on_plan(SubscriptionPlanEvent({"key1": ("005930", "000660")}, ("035420",), 2, 1))
    feed = lambda code: model.index(model.row_of(code), Col.FEED).data()  # noqa: E731
    from kis_desk.ui.i18n import tr
    assert feed("005930") == tr("feed.live")
    assert feed("035420") == tr("feed.polled")
    assert feed("005380") == tr("feed.waiting")
    model.on_session(SessionStateEvent("key1", "stalled"))
    assert feed("005930") == tr("feed.stale")
    model.on_session(SessionStateEvent("key1", "live"))
    assert feed("005930") == tr("feed.live")


def test_sort_role_gives_numbers(model):
    model.on_ticks([tick("005930", 10_500), tick("000660", 9_500)])
    assert model.index(model.row_of("005930"), Col.CHANGE_PCT).data(SORT_ROLE) == 5.0
    assert model.index(model.row_of("035420"), Col.PRICE).data(SORT_ROLE) == float("-inf")


def test_set_codes_keeps_state_of_kept_rows(model):
    model.on_ticks([tick("005930", 10_500)])
    model.set_codes(["000660", "005930"])
    assert model.codes() == ["000660", "005930"]
    assert model.index(1, Col.PRICE).data() == "10,500"


def test_downsample_keeps_ends_and_bounds_length():
    pts = list(range(1000))
    out = downsample(pts, 100)
    assert len(out) == 101 and out[0] == 0 and out[-1] == 999
    assert downsample([1, 2, 3], 100) == [1, 2, 3]


def _render_spark(model, code, width=120, height=24) -> QImage:
    view = QTableView()
    view.setModel(model)
    delegate = SparklineDelegate(view)
    img = QImage(width, height, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    painter = QPainter(img)
    opt = QStyleOptionViewItem()
    opt.rect = QRect(0, 0, width, height)
    opt.widget = view
    delegate.paint(painter, opt, model.index(model.row_of(code), Col.SPARK))
    painter.end()
    return img


def _count_colour(img: QImage, colour: QColor, tolerance: int = 60) -> int:
    n = 0
    for x in range(img.width()):
        for y in range(img.height()):
            c = img.pixelColor(x, y)
            if (abs(c.red() - colour.red()) + abs(c.green() - colour.green())
                    + abs(c.blue() - colour.blue())) < tolerance:
                n += 1
    return n


def test_sparkline_delegate_paints_a_line_in_the_direction_colour(qtbot, model):
    up = [tick("005930", 10_000 + 10 * s, second=s, cum=s + 1) for s in range(100)]
    down = [tick("000660", 10_000 - 10 * s, second=s, cum=s + 1) for s in range(100)]
    model.on_ticks(up + down)
    img = _render_spark(model, "005930")
    assert _count_colour(img, KOREAN.up) > 60          # a line across ~114 px
    assert _count_colour(img, KOREAN.down) == 0
    img = _render_spark(model, "000660")
    assert _count_colour(img, KOREAN.down) > 60
    assert _count_colour(img, KOREAN.up) == 0
    # the line rises left to right: the coloured pixel at the left is lower than at the right
    img = _render_spark(model, "005930")
    ys_left = [y for y in range(img.height()) for x in range(4, 8)
               if _count_colour(img.copy(x, y, 1, 1), KOREAN.up) == 1]
    ys_right = [y for y in range(img.height()) for x in range(112, 116)
                if _count_colour(img.copy(x, y, 1, 1), KOREAN.up) == 1]
    assert ys_left and ys_right and min(ys_left) > max(ys_right)


def test_sparkline_empty_row_paints_nothing(qtbot, model):
    img = _render_spark(model, "035420")
    assert _count_colour(img, KOREAN.up) == 0 and _count_colour(img, KOREAN.down) == 0


# -- seeding from stored history ------------------------------------------------------------------

def test_sparkline_seed_picks_a_width_that_fits_and_keeps_the_last_price_per_bucket():
    sp = Sparkline()
    history = [(1_000_000 + 3 * k, 100 + k) for k in range(1000)]      # 3000 s, a trade every 3 s
    sp.seed(history)
    w = spark_width(history[0][0], history[-1][0])
    assert sp.width == w and len(sp.points) <= SPARK_POINTS
    expected: dict[int, int] = {}
    for e, p in history:
        expected[e // w] = p
    assert sp.points == list(expected.values()) and sp.bucket == history[-1][0] // w
    sp.add(history[-1][0] + w, 5)                 # live trades continue at the same width
    assert sp.points[-1] == 5 and sp.width == w
    few = Sparkline()
    few.seed([(1_000_000, 1), (1_000_256, 2)], min_width=128)   # sparse history keeps the day's width
    assert few.width == 128 and few.points == [1, 2]


def test_row_seed_merges_pending_live_trades_by_cumulative_volume():
    row = RowState("005930", "삼성전자")
    row.pending = deque(maxlen=100)
    t0 = int(T0.timestamp())
    # live while loading: a stored trade again (cum 50) and two newer ones (cum 51, 52)
    for cum, sec, price in ((50, 98, 10_049), (51, 101, 10_070), (52, 101, 10_090)):
        row.apply(tick("005930", price, second=sec, cum=cum), 0.0)
    assert [list(p) for p in row.pending] == [[t0 + 98, 10_049, 50], [t0 + 101, 10_090, 52]]  # per second
    history = [(t0 + 2 * k, 10_000 + k, k + 1) for k in range(50)]   # cum 1..50, one per 2 s
    last = tick("005930", 10_049, second=98, cum=50)
    row.seed(last, history, 1)
    assert row.pending is None
    assert (row.price, row.cum_volume) == (10_090, 52)                # live is newer: kept
    expected: dict[int, int] = {}
    for e, p, _ in history + [(t0 + 101, 10_090, 52)]:
        expected[e] = p
    assert row.spark.points == list(expected.values())        # cum 50 once, 51 folded into 52's second
    assert len(row.spark.points) == 51
    # 1-minute base: the last trade at or before 101 − 60 = 41 s → the one at 40 s (10_020)
    assert row.change_1m == pytest.approx((10_090 - 10_020) / 10_020 * 100)


def test_row_seed_without_live_trades_shows_the_stored_last_trade():
    row = RowState("000660", "SK하이닉스")
    row.pending = deque(maxlen=100)
    t0 = int(T0.timestamp())
    last = tick("000660", 10_300, second=30, cum=4)
    row.seed(last, [(t0, 10_000, 1), (t0 + 10, 10_100, 2), (t0 + 20, 10_200, 3), (t0 + 30, 10_300, 4)], 1)
    assert (row.price, row.change, row.cum_volume, row.time) == (10_300, 300, 4, last.timestamp)
    assert row.spark.points == [10_000, 10_100, 10_200, 10_300]
    assert row.change_1m == pytest.approx(3.0)
    assert row.flash_until == 0.0                          # history is not news: no flash


@pytest.mark.parametrize("prev_close, price, expected", [
    (1_000, 1_300, 2), (1_000, 1_299, 1),          # limit up is 1,300; one tick below is not
    (50_000, 65_000, 2), (50_000, 64_900, 1),
    (50_000, 35_000, -2), (50_000, 35_050, -1),    # limit down is 35,000
    (50_000, 50_000, 0),
])
def test_limit_markers_follow_the_krx_limit_prices(prev_close, price, expected):
    from kis_desk.ui.watchlist_model import RowState

    row = RowState("005930", "삼성전자")
    row.price, row.change = price, price - prev_close
    assert row.sign == expected
