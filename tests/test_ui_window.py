"""Main window flows driven by real engine events on a real EventBus, with a real SQLite repository.

The engine is ``RecordingEngine`` (tests/test_ui_support.py): the EngineHandle calls it receives
are recorded, everything else (bus, symbols, repository) is the real thing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest

from kis_desk.config import UserPaths
from kis_desk.core.events import (
    AlertEvent, ErrorEvent, MarketPhaseEvent, PublisherStatsEvent, RateEvent, SessionStateEvent,
    StorageStatsEvent, SubscriptionPlanEvent, TicksEvent,
)
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST
from kis_desk.settings import SettingsStore
from kis_desk.ui.i18n import set_language, tr
from kis_desk.ui.main_window import MainWindow
from kis_desk.ui.watchlist_editor import parse_csv
from kis_desk.ui.watchlist_model import Col
from test_ui_support import recording_engine, shown_window

pytestmark = pytest.mark.usefixtures("memory_keyring")

CODES = ["005930", "000660", "373220"]


@pytest.fixture
def engine():
    eng = recording_engine(CODES)
    yield eng
    eng.repository.close()


@pytest.fixture
def window(qtbot, qloop, engine):
    with shown_window(qloop, engine, CODES) as win:
        yield win


def run(loop, coro, timeout: float = 30.0):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def now_kst() -> datetime:
    return datetime.now(KST).replace(microsecond=0)


def tick(code: str, price: int, cum: int, prev: int = 70_000) -> Tick:
    return Tick(code, now_kst(), price, 1, cum, price - prev, round((price - prev) / prev * 100, 2),
                100.0, 0.0, "ws")


def alert(code: str = "000660", n: int = 1, direction: str = "up") -> AlertEvent:
    t = now_kst()
    return AlertEvent(alert_id=f"{code}:{t:%Y%m%d}:{direction}:1:{n}", stock_code=code, stock_name="SK하이닉스",
                      direction=direction, change_pct=5.3 if direction == "up" else -5.3, base_price=200_000,
                      base_time=t - timedelta(seconds=40), trigger_price=210_600, trigger_time=t,
                      trigger_cum_volume=n, detected_at=datetime.now(timezone.utc), window_seconds=60,
                      threshold_pct=5)


def grid_codes(win: MainWindow) -> list[str]:
    return win.model.codes()


# -- watchlist editing -------------------------------------------------------------------------

def test_add_by_code_korean_and_english_name(qloop, window, engine):
    ed = window.editor
    assert ed.add_text("035420")                 # NAVER by code
    assert ed.add_text("카카오")                  # by Korean name
    assert ed.add_text("Hyundai Motor")           # by English name
    run(qloop, window.idle())
    expected = CODES + ["035420", "035720", "005380"]
    assert grid_codes(window) == expected
    assert engine.repository.watchlist_codes("기본") == expected
    assert engine.watchlist_calls()[-1] == expected


def test_completer_lists_codes_and_names(window):
    ed = window.editor
    ed.completer.setCompletionPrefix("celltrion")      # English, case-insensitive, contains
    found = [ed.completer.completionModel().index(i, 0).data()
             for i in range(ed.completer.completionModel().rowCount())]
    assert found and found[0].startswith("068270 셀트리온")
    assert ed.add_text(found[0])                       # the completer's text resolves to its code
    assert ed.codes()[-1] == "068270"


@pytest.mark.parametrize("text", ["12345", "ABCDEF", "zzzz-not-a-name", "", "1234567"])
def test_invalid_input_is_refused_with_a_message(qloop, window, engine, text):
    before = len(engine.calls)
    assert not window.editor.add_text(text)
    run(qloop, window.idle())
    assert grid_codes(window) == CODES
    assert len(engine.calls) == before
    assert window.editor.status.text()   # says why


def test_unknown_but_well_formed_code_is_added_with_a_warning(qloop, window, engine):
    assert window.editor.add_text("999990")
    run(qloop, window.idle())
    assert grid_codes(window)[-1] == "999990"
    assert "999990" in window.editor.status.text()
    assert window.editor.status.text() == tr("wl.unknown", code="999990")


def test_duplicate_is_refused(window):
    assert not window.editor.add_text("005930")
    assert window.editor.status.text() == tr("wl.duplicate", code="005930")


def test_remove_and_reorder_by_buttons_and_drag_and_drop(qloop, window, engine):
    ed = window.editor
    ed.remove_codes(["000660"])
    run(qloop, window.idle())
    assert grid_codes(window) == ["005930", "373220"]
    assert engine.repository.watchlist_codes("기본") == ["005930", "373220"]
    ed.add_text("035420")
    # drag row 2 (035420) to the top: the same path a drop on the list view takes
    model = ed.model
    mime = model.mimeData([model.index(2)])
    model.dropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    run(qloop, window.idle())
    assert grid_codes(window) == ["035420", "005930", "373220"]
    # a real drop event on the viewport
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QDropEvent
    ed.view.resize(300, 300)
    mime = model.mimeData([model.index(0)])
    target = ed.view.visualRect(model.index(2)).bottomLeft() + QPoint(5, 2)
    ev = QDropEvent(target, Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    ed.view.dropEvent(ev)
    run(qloop, window.idle())
    assert grid_codes(window) == ["005930", "373220", "035420"]
    # buttons
    ed.view.setCurrentIndex(model.index(2))
    ed.move_selected(-1)
    run(qloop, window.idle())
    assert grid_codes(window) == ["005930", "035420", "373220"]
    assert engine.repository.watchlist_codes("기본") == ["005930", "035420", "373220"]
    assert engine.watchlist_calls()[-1] == ["005930", "035420", "373220"]


def test_import_and_export_csv(qloop, window, engine, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("code,name\n035420,NAVER\n\n# comment\n068270\nbad-line\n005930,dup\nQ500001,ETN\n",
                   encoding="utf-8-sig")
    assert window.editor.import_csv(src) == 3
    run(qloop, window.idle())
    assert grid_codes(window) == CODES + ["035420", "068270", "Q500001"]
    assert "5" in window.editor.status.text()       # line 5 skipped, reported
    out = tmp_path / "out.csv"
    window.editor.export_csv(out)
    text = out.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "code,name"
    assert "005930,삼성전자" in text
    assert parse_csv(text) == (CODES + ["035420", "068270", "Q500001"], [])
    cp949 = tmp_path / "excel.csv"
    cp949.write_bytes("종목코드,종목명\n000270,기아\n".encode("cp949"))
    assert window.editor.import_csv(cp949) == 1


def test_named_watchlists_create_switch_rename_delete(qloop, window, engine):
    run(qloop, window.create_watchlist("반도체"))
    assert window.watchlist_name == "반도체" and grid_codes(window) == []
    window.editor.add_text("000660")
    run(qloop, window.idle())
    assert engine.repository.watchlist_codes("반도체") == ["000660"]
    assert engine.watchlist_calls()[-1] == ["000660"]
    run(qloop, window.switch_watchlist("기본"))
    assert grid_codes(window) == CODES and engine.watchlist_calls()[-1] == CODES
    run(qloop, window.rename_watchlist("반도체", "칩"))
    assert engine.repository.list_watchlists() == ["기본", "칩"]
    assert [window.editor.lists.itemText(i) for i in range(window.editor.lists.count())] == ["기본", "칩"]
    run(qloop, window.delete_watchlist("기본"))
    assert window.watchlist_name == "칩" and grid_codes(window) == ["000660"]
    run(qloop, window.delete_watchlist("칩"))         # the last one stays
    assert engine.repository.list_watchlists() == ["칩"]
    with pytest.raises(ValueError):
        window.editor.validate_new_name("칩")


def test_polled_symbols_are_shown_in_the_grid(window, engine):
    engine.bus.publish(SubscriptionPlanEvent({"key1": ("005930", "000660")}, ("373220",), 2, 1))
    window.model.flush()
    feed = lambda code: window.model.index(window.model.row_of(code), Col.FEED).data()  # noqa: E731
    assert feed("005930") == tr("feed.live") and feed("373220") == tr("feed.polled")
    assert window.status.plan.text() == tr("status.plan", live=2, polled=1)


# -- alerts ------------------------------------------------------------------------------------

def test_alert_highlights_row_notifies_and_is_acknowledged(qloop, qtbot, window, engine):
    a = alert()
    engine.repository.save_alert(a)              # as the collector's writer does
    engine.bus.publish(TicksEvent((tick("000660", 210_600, 10, prev=200_000),)))
    engine.bus.publish(a)
    window.model.flush()
    row = window.model.row_of("000660")
    assert QColor(window.model.index(row, Col.NAME).data(Qt.ItemDataRole.BackgroundRole)) == window.model.palette.alert
    assert window.banner.isVisible() and "000660" in window.banner.label.text()
    assert window.notifier.shown == 1
    dock = window.alert_dock.model
    assert dock.rowCount() == 1 and dock.index(0, 1).data() == "000660"
    assert dock.index(0, 4).data() == "+5.30%"
    # clicking the log entry selects the row
    window.select_code("005930")
    rect = window.alert_dock.view.visualRect(dock.index(0, 2))
    QTest.mouseClick(window.alert_dock.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.selected_code() == "000660"
    # Space on the grid acknowledges the row's alerts
    window.grid.setFocus()
    QTest.keyClick(window.grid, Qt.Key.Key_Space)
    run(qloop, window.idle())
    assert window.model.index(row, Col.NAME).data(Qt.ItemDataRole.BackgroundRole) is None
    assert ("acknowledge", a.alert_id) in engine.calls
    assert a.alert_id in dock.acked
    stored = engine.repository.alerts_on(now_kst().date())
    assert stored[0].acknowledged


def test_acknowledge_buttons_and_banner_click(qloop, window, engine):
    a1, a2 = alert("000660", 1), alert("373220", 2, "down")
    for a in (a1, a2):
        engine.bus.publish(a)
    window.alert_dock.acknowledge_all()
    run(qloop, window.idle())
    assert window.alert_dock.model.unacknowledged() == []
    assert window.model.pending_alerts("000660") == [] and window.model.pending_alerts("373220") == []
    a3 = alert("005930", 3)
    engine.bus.publish(a3)
    QTest.mouseClick(window.banner, Qt.MouseButton.LeftButton)
    run(qloop, window.idle())
    assert ("acknowledge", a3.alert_id) in engine.calls and not window.banner.isVisible()


def test_todays_alerts_are_loaded_from_the_repository(qtbot, qloop, engine):
    old, seen = alert("000660", 7), alert("373220", 8, "down")
    engine.repository.save_alert(old)
    engine.repository.save_alert(seen)
    engine.repository.acknowledge(seen.alert_id)
    win = MainWindow(engine, SettingsStore())
    run(qloop, win.start("기본", CODES))
    assert win.alert_dock.model.rowCount() == 2
    assert win.alert_dock.model.unacknowledged() == [old]
    assert [a.alert_id for a in win.model.pending_alerts("000660")] == [old.alert_id]
    assert win.model.pending_alerts("373220") == []
    assert win.notifier.shown == 0              # history does not pop up
    run(qloop, win.shutdown())


# -- status bar, chart, settings ----------------------------------------------------------------

def test_status_bar_reports_engine_events(window, engine):
    bus = engine.bus
    bus.publish(SessionStateEvent("key1", "live", ("005930",)))
    bus.publish(SessionStateEvent("key2", "backoff", (), "connection refused", 4.0))
    bus.publish(RateEvent(1234.5, 99_999))
    bus.publish(StorageStatsEvent(10, 9, 0, 0, 0, 42, True, "sqlite:///x"))
    bus.publish(PublisherStatsEvent(5, 0, 0, False, "redis://h", "refused"))
    bus.publish(MarketPhaseEvent("open", "", (now_kst(), "closing_auction")))   # type: ignore[arg-type]
    bus.publish(ErrorEvent("feed", "key2: the server refused the connection"))
    st = window.status
    assert "key1" in st.sessions.text() and tr("state.backoff") in st.sessions.text()
    assert st.rate.text() == tr("status.rate", rate=1234.5)
    assert st.storage.text() == tr("status.storage", state=tr("status.ok"), backlog=42)
    assert st.redis.text() == tr("status.redis", state=tr("status.down"), delivered=5)
    assert st.phase.text() == tr("status.phase", phase=tr("phase.open"))
    assert "the server refused the connection" in st.error.text()


def test_a_key_on_its_first_connection_is_slow_not_lost_and_its_recovery_is_shown(window, engine):
    """Start-up: a key the failover moved before it was ever live reads "slow to connect", and
    the warning is replaced once it is live; a key that was live and dropped reads "lost"."""
    bus, st = engine.bus, window.status
    lost = tr("err.feed.key_down")
    bus.publish(SessionStateEvent("key1", "live", ("005930",)))
    bus.publish(SessionStateEvent("key2", "connecting", (), "subscribing 25 symbols"))
    bus.publish(ErrorEvent("key2", "cannot carry its 25 symbol(s)", code="feed.key_down",
                           params={"label": "key2"}))
    assert tr("err.feed.key_slow") in st.error.text() and lost not in st.error.text()
    window.retranslate()
    assert tr("err.feed.key_slow") in st.error.text()
    bus.publish(SessionStateEvent("key2", "live", ("000660",)))
    assert st.error.text().endswith(tr("err.ui.key_back", source="key2"))
    bus.publish(SessionStateEvent("key2", "backoff", (), "connection lost", 0.5))
    bus.publish(ErrorEvent("key2", "cannot carry its 25 symbol(s)", code="feed.key_down",
                           params={"label": "key2"}))
    assert lost in st.error.text() and "key2" in st.error.text()


def test_chart_follows_selection_and_live_ticks(qloop, window, engine):
    window.select_code("000660")
    run(qloop, window.idle())
    assert window.chart.code == "000660"
    engine.bus.publish(TicksEvent(tuple(tick("000660", 200_000 + i * 100, i + 1, prev=200_000) for i in range(20))))
    engine.bus.publish(TicksEvent((tick("005930", 70_100, 1),)))
    a = alert("000660")
    engine.bus.publish(a)
    window.chart.redraw()
    assert window.chart.series.n == 20
    xs, ys = window.chart.price_line.getData()
    assert len(xs) == 20 and ys[-1] == 201_900
    assert len(window.chart.alert_points.data) == 1


def test_language_colours_and_layout_persist(qloop, qtbot, window, engine):
    from kis_desk.settings import UserSettings
    from kis_desk.ui.theme import WESTERN

    s = window.settings
    s.language, s.colour_scheme = "en", "western"
    window.apply_settings(s)
    assert window.model.headerData(Col.PRICE, Qt.Orientation.Horizontal) == "Price"
    assert window.windowTitle() == "KIS Desk — market monitor"
    assert window.model.palette is WESTERN
    window.grid.sortByColumn(Col.CHANGE_PCT, Qt.SortOrder.DescendingOrder)
    window.grid.horizontalHeader().moveSection(Col.VOLUME, 2)
    window.save_layout()
    win2 = MainWindow(engine, SettingsStore())
    assert win2.model.sort_column == Col.CHANGE_PCT          # the model sorts itself (no proxy)
    assert win2.model.sort_order == Qt.SortOrder.DescendingOrder
    assert win2.grid.horizontalHeader().visualIndex(Col.VOLUME) == 2
    assert win2.model.headerData(Col.PRICE, Qt.Orientation.Horizontal) == "Price"
    assert isinstance(win2.settings, UserSettings)
    run(qloop, win2.shutdown())


def test_all_translation_keys_have_both_languages():
    from kis_desk.ui.i18n import STRINGS
    for key, (en, ko) in STRINGS.items():
        assert en or key == "status.no_error", key
        assert ko or key == "status.no_error", key


def test_visible_strings_go_through_the_translation_table():
    """No widget text is a bare literal with letters in kis_desk/ui (everything uses tr())."""
    import re
    from pathlib import Path

    import kis_desk.ui as ui_pkg

    pattern = re.compile(r"\b(setText|setWindowTitle|setPlaceholderText|setToolTip|setTitle|setLabel|"
                         r"QLabel|QPushButton|QCheckBox|QGroupBox|addAction|addMenu|addItem|showMessage)"
                         r"\(\s*(?![\"'](?:left|right|top|bottom)[\"'])[\"']([^\"']*)[\"']")
    offenders = []
    for path in Path(ui_pkg.__file__).parent.glob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in pattern.finditer(line):
                if re.search(r"[A-Za-z가-힣]", re.sub(r"\\.", "", m.group(2))):
                    offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []


def test_alert_sound_follows_the_setting(window, engine):
    window.notifier.sound = True
    engine.bus.publish(alert("000660", 11))
    assert window.notifier.beeps == 1
    window.notifier.sound = False
    engine.bus.publish(alert("000660", 12))
    assert window.notifier.beeps == 1 and window.notifier.shown == 2
    # offscreen there is no system tray: the in-window banner is the notification
    assert window.tray is None and window.banner.isVisible()


def test_rows_show_the_last_stored_trade_after_a_restart(qloop, engine):
    from kis_desk.engine.storage import TickWriter

    url = UserPaths.default().default_database_url

    async def store_and_open():
        writer = TickWriter(url, journal_dir=UserPaths.default().journal_dir)
        await writer.start()
        writer.submit([tick("005930", 70_500, 10), tick("005930", 70_900, 11)])
        await writer.stop()
        win = MainWindow(engine, SettingsStore())
        await win.start("기본", CODES)
        await win.idle()
        return win

    win = run(qloop, store_and_open())
    st = win.model.state("005930")
    assert st.price == 70_900 and st.cum_volume == 11
    assert win.model.state("000660").price is None
    run(qloop, win.shutdown())


# -- today's history after a restart -------------------------------------------------------------

def _session_ticks(code: str, start: datetime, seconds: int, every: int, base: int) -> list[Tick]:
    """One trade every ``every`` seconds with a price that wanders (so buckets differ)."""
    out = []
    for k, s in enumerate(range(0, seconds, every)):
        price = base + ((k * 37) % 23 - 11) * 10 + (k // 50) * 10
        out.append(Tick(code, start + timedelta(seconds=s), price, 1, k + 1, price - base,
                        round((price - base) / base * 100, 2), 100.0, 0.0, "ws"))
    return out


def _minute_base(ticks: list[Tick], now_epoch: int) -> int:
    """Brute force: the price of the last trade at or before now − 60 s (else the first after)."""
    before = [t for t in ticks if int(t.timestamp.timestamp()) <= now_epoch - 60]
    return (before[-1] if before else next(t for t in ticks if int(t.timestamp.timestamp()) > now_epoch - 60)).price


def test_restart_shows_the_days_sparkline_and_1m_change_at_once(qloop, engine):
    """A morning of stored trades (real SQLite, real writer) → every row's sparkline and 1-minute
    change right after start; live trades that arrive while it loads are merged, not doubled."""
    from kis_desk.engine.storage import TickWriter
    from kis_desk.ui.watchlist_model import SPARK_POINTS, spark_width

    paths = UserPaths.default()
    day_open = now_kst().replace(hour=0, minute=0, second=0) + timedelta(seconds=1)
    stored = {"005930": _session_ticks("005930", day_open, 7200, 2, 70_000),
              "000660": _session_ticks("000660", day_open + timedelta(seconds=30), 3000, 1, 200_000)}
    last_660 = stored["000660"][-1]
    # live: one trade already stored (same cum_volume: must not count twice) and two newer ones
    t_new = last_660.timestamp + timedelta(seconds=1)
    live = (last_660,
            Tick("000660", t_new, last_660.price + 500, 1, last_660.cum_volume + 1, 0, 0.0, 100.0, 0.0, "ws"),
            Tick("000660", t_new + timedelta(seconds=1), last_660.price + 700, 1, last_660.cum_volume + 2,
                 0, 0.0, 100.0, 0.0, "ws"))

    async def scenario():
        writer = TickWriter(paths.default_database_url, journal_dir=paths.journal_dir)
        await writer.start()
        writer.submit([t for ts in stored.values() for t in ts])
        await writer.stop()
        win = MainWindow(engine, SettingsStore())
        await win.start("기본", CODES)
        engine.bus.publish(TicksEvent(live))       # while the history loads (its task has not run)
        assert win.model.state("000660").pending is not None
        await win.idle()
        return win

    win = run(qloop, scenario())
    try:
        m = win.model
        st = m.state("005930")
        ticks = stored["005930"]
        first, last = ticks[0], ticks[-1]
        assert st.price == last.price and st.cum_volume == last.cum_volume
        width = spark_width(int(first.timestamp.timestamp()), int(last.timestamp.timestamp()))
        assert width > 1 and st.spark.width == width
        buckets: dict[int, int] = {}
        for t in ticks:
            buckets[int(t.timestamp.timestamp()) // width] = t.price
        assert st.spark.points == list(buckets.values()) and len(st.spark.points) <= SPARK_POINTS
        expected_1m = (last.price - _minute_base(ticks, int(last.timestamp.timestamp()))) / \
            _minute_base(ticks, int(last.timestamp.timestamp())) * 100
        assert st.change_1m == pytest.approx(expected_1m)
        row = m.row_of("005930")
        assert m.index(row, Col.CHANGE_1M).data() == f"{expected_1m:+.2f}%"
        points, _prev = m.index(row, Col.SPARK).data(Qt.ItemDataRole.UserRole + 1)
        assert len(points) == len(buckets)
        # the live-merged row: stored history + the two new trades, the duplicate once
        st2 = m.state("000660")
        assert st2.cum_volume == last_660.cum_volume + 2 and st2.price == last_660.price + 700
        all_660 = list(stored["000660"]) + list(live[1:])
        w2 = st2.spark.width
        b2: dict[int, int] = {}
        for t in all_660:
            b2[int(t.timestamp.timestamp()) // w2] = t.price
        assert st2.spark.points == list(b2.values())
        base = _minute_base(all_660, int(all_660[-1].timestamp.timestamp()))
        assert st2.change_1m == pytest.approx((all_660[-1].price - base) / base * 100)
        # no stored trades: an empty row, ready for live ones
        assert m.state("373220").price is None and m.state("373220").spark.points == []
        assert m.state("373220").pending is None
        # a later live trade extends the seeded sparkline at its width
        nxt = Tick("005930", last.timestamp + timedelta(seconds=width), last.price + 10, 1,
                   last.cum_volume + 1, 0, 0.0, 100.0, 0.0, "ws")
        engine.bus.publish(TicksEvent((nxt,)))
        assert st.spark.points[-1] == last.price + 10 and st.spark.width >= width
    finally:
        run(qloop, win.shutdown())


def test_symbol_added_to_the_watchlist_gets_its_history(qloop, window, engine):
    from kis_desk.engine.storage import TickWriter

    paths = UserPaths.default()
    ticks = _session_ticks("035420", now_kst().replace(hour=0, minute=0, second=0), 1200, 3, 180_000)

    async def store():
        writer = TickWriter(paths.default_database_url, journal_dir=paths.journal_dir)
        await writer.start()
        writer.submit(ticks)
        await writer.stop()

    run(qloop, store())
    assert window.editor.add_text("035420")
    run(qloop, window.idle())
    from kis_desk.ui.watchlist_model import spark_width

    st = window.model.state("035420")
    w = spark_width(int(ticks[0].timestamp.timestamp()), int(ticks[-1].timestamp.timestamp()))
    n = len({int(t.timestamp.timestamp()) // w for t in ticks})
    assert st.price == ticks[-1].price and st.spark.width == w and len(st.spark.points) == n
    assert st.change_1m is not None
    # switching lists and back: the new rows load the same history again, nothing doubled
    run(qloop, window.create_watchlist("빈 목록"))
    run(qloop, window.switch_watchlist("기본"))
    run(qloop, window.idle())
    assert window.model.state("035420").spark.points == st.spark.points


# -- market phase in the status bar -----------------------------------------------------------------

@pytest.mark.parametrize("lang", ["ko", "en"])
def test_status_bar_says_when_a_closed_market_reopens(window, engine, lang):
    set_language(lang)
    st = window.status
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=KST)       # weekend → Monday 09:00
    text, _ = st.phase_text(MarketPhaseEvent("holiday"), now=saturday)
    assert text == tr("status.phase.holiday", when=tr("status.when", date="11/30", weekday=tr("weekday.0"),
                                                        time="09:00"))
    assert ("휴장" in text and "11/30(월) 09:00" in text) if lang == "ko" else \
        (text == "Market holiday · opens Mon 11/30 09:00 KST")
    evening = datetime(2026, 11, 24, 20, 0, tzinfo=KST)         # Tuesday 20:00 → Wednesday 09:00
    text, _ = st.phase_text(MarketPhaseEvent("closed"), now=evening)
    assert ("장 마감" in text and "11/25(수) 09:00" in text) if lang == "ko" else \
        (text == "Market closed · opens Wed 11/25 09:00 KST")
    new_year = datetime(2026, 12, 31, 9, 30, tzinfo=KST)          # year-end closure, late first open
    text, _ = st.phase_text(MarketPhaseEvent("holiday"), now=new_year)
    assert "01/04" in text and "10:00" in text                   # 2027-01-02 is a Saturday
    # open phases keep the short form; through the bus the label shows the same words
    assert st.phase_text(MarketPhaseEvent("open"))[0] == tr("status.phase", phase=tr("phase.open"))
    engine.bus.publish(MarketPhaseEvent("holiday", "", None))
    assert st.phase.text() == st.phase_text(MarketPhaseEvent("holiday"))[0]
    assert tr("status.phase.holiday", when="").split("·")[0].strip() in st.phase.text()


def test_status_bar_says_the_simulator_is_always_open(window, engine):
    st = window.status
    engine.bus.publish(MarketPhaseEvent("holiday", "simulator: always open", None))
    assert st.phase.text() == tr("status.phase.sim")
    st.always_open = True
    assert st.phase_text(MarketPhaseEvent("closed"))[0] == tr("status.phase.sim")


def test_alert_highlight_survives_selection(qloop, window, engine):
    """The selection colour must never hide an alert the trader has not acknowledged."""
    engine.bus.publish(TicksEvent((tick("000660", 210_600, 10, prev=200_000), tick("005930", 70_100, 11))))
    engine.bus.publish(alert("000660"))
    window.model.flush()
    window.resize(1400, 700)

    def pixel(code: str, col: int) -> QColor:
        """A background pixel of the cell: away from its (left or right aligned) text."""
        view_idx = window.grid.model().index(window.model.row_of(code), col)   # the model's rows are the view's
        window.grid.scrollTo(view_idx)     # the cell on screen whatever width the docks leave the grid
        rect = window.grid.visualRect(view_idx)
        x = rect.right() - 2 if col in (Col.CODE, Col.NAME) else rect.left() + 1
        image = window.grid.viewport().grab().toImage()
        return QColor(image.pixel(x, rect.center().y()))

    async def check() -> None:
        alert_colour = window.model.palette.alert
        for col in (Col.NAME, Col.SPARK, Col.VOLUME):
            window.select_code("005930")                   # alert row not selected: highlighted
            await window.idle()
            assert pixel("000660", col) == alert_colour, col
            window.select_code("000660")                   # selected: still the alert colour
            await window.idle()
            assert pixel("000660", col) == alert_colour, col
            assert pixel("005930", col) != alert_colour    # an ordinary row is not
        window.acknowledge_code("000660")
        await window.idle()
        window.model.flush()
        assert pixel("000660", Col.NAME) != alert_colour   # acknowledged: plain selection again

    run(qloop, check())


def test_hidden_or_minimised_window_does_not_repaint_and_resumes_with_a_full_refresh(qloop, window, engine):
    assert window.model.timer.isActive() and window.chart.timer.isActive()
    window.hide()
    assert not window.model.timer.isActive() and not window.chart.timer.isActive()
    assert not window.resort_timer.isActive()
    engine.bus.publish(TicksEvent((tick("005930", 70_500, 50),)))
    assert window.model.state("005930").price == 70_500          # data keeps arriving
    emits = window.model.emits
    window.show()
    assert window.model.timer.isActive() and window.chart.timer.isActive()
    assert window.model.emits > emits                            # everything repainted once
    assert window.model.index(window.model.row_of("005930"), Col.PRICE).data() == "70,500"
    window.showMinimized()
    assert not window.model.timer.isActive()
    window.showNormal()
    assert window.model.timer.isActive()
