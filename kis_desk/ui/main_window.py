"""Main window: watchlist grid, alert log, detail chart, watchlist editor, status bar.

Inputs: engine events on ``engine.bus`` (delivered on the GUI thread: the collector runs on the
same qasync loop) and a handful of ``EngineHandle`` calls. Repository reads and writes run in
worker threads (``asyncio.to_thread``); nothing here blocks the GUI thread.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QByteArray, QItemSelection, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHeaderView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSystemTrayIcon,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core.events import AlertEvent, DayRolloverEvent, Event, TicksEvent
from ..core.ticks import Tick
from ..protocol.records import KST
from ..settings import SettingsStore, UserSettings
from .alerts_view import AlertDock
from .chart import DetailChart, history_arrays
from .engine_handle import EngineHandle
from .i18n import set_language, tr
from .notifications import AlertBanner, Notifier
from .settings_dialog import SettingsDialog
from .sparkline import GridDelegate, SparklineDelegate
from .status_bar import EngineStatusBar
from .theme import palette as palette_named
from .watchlist_editor import WatchlistEditor
from .watchlist_model import CODE_ROLE, SORT_ROLE, Col, WatchlistModel, spark_width

log = logging.getLogger(__name__)

ROW_HEIGHT = 18
RESORT_MS = 2000
DEFAULT_COLUMN_WIDTHS = {Col.CODE: 62, Col.NAME: 118, Col.PRICE: 78, Col.CHANGE: 72, Col.CHANGE_PCT: 64,
                         Col.CHANGE_1M: 60, Col.VOLUME: 96, Col.STRENGTH: 66, Col.TIME: 64, Col.SPARK: 130,
                         Col.FEED: 52}


SEED_CHUNK = 10           # symbols per worker-thread round trip when loading history
TAIL_SECONDS = 600        # 1-second resolution kept before the last trade (1-minute change)


def load_intraday(repo, codes: Sequence[str], day: date) -> dict[str, tuple[Tick, list, int]]:
    """Per code: (last trade, [(epoch, price, cum_volume)…], sparkline bucket width) for ``day``.

    Blocking (database): worker thread only. The day is read as the last trade per
    power-of-two bucket (a few hundred rows per symbol, grouped in SQL) plus one-second
    buckets for the last ``TAIL_SECONDS`` before the last trade, whatever the day's volume.
    """
    start = datetime(day.year, day.month, day.day, tzinfo=KST)
    end = start + timedelta(days=1)
    out: dict[str, tuple[Tick, list, int]] = {}
    for code in codes:
        last = repo.last_trade(code, day)
        if last is None:
            continue
        first = repo.first_trade(code, day) or last
        last_epoch = int(last.timestamp.timestamp())
        width = spark_width(int(first.timestamp.timestamp()), last_epoch)
        rows = repo.price_buckets(code, start, end, width)
        if width > 1:
            tail_from = max(start, last.timestamp - timedelta(seconds=TAIL_SECONDS))
            rows += repo.price_buckets(code, tail_from, end, 1)
        out[code] = (last, [(int(ts.timestamp()), price, cum) for ts, price, cum in rows], width)
    return out


def app_icon() -> QIcon:
    """The bundled ``resources/kis-desk.png``, or a drawn stand-in when it is missing."""
    try:
        from ..paths import resource

        path = resource("kis-desk.png")
        if path.is_file():
            return QIcon(str(path))
    except FileNotFoundError:
        pass
    pm = QPixmap(64, 64)
    pm.fill(QColor(0, 0, 0, 0))
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(214, 32, 32))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(4, 4, 56, 56, 10, 10)
    p.setPen(QColor("white"))
    f = p.font()
    f.setPixelSize(34)
    f.setBold(True)
    p.setFont(f)
    p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "K")
    p.end()
    return QIcon(pm)


class GridView(QTableView):
    """The watchlist grid; Space / Enter / double-click acknowledges the row's alerts."""

    acknowledgeCode = Signal(str)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            idx = self.currentIndex()
            if idx.isValid():
                self.acknowledgeCode.emit(idx.data(CODE_ROLE))
                return
        super().keyPressEvent(event)


class MainWindow(QMainWindow):
    closeRequested = Signal()
    retryStart = Signal()        # settings changed while the engine could not start: try again

    def __init__(self, engine: EngineHandle, store: SettingsStore | None = None,
                 settings: UserSettings | None = None, parent=None, *,
                 tray_available: bool | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(KST)) -> None:
        """``tray_available``: None → ask Qt (offscreen and bare Xvfb have no tray);
        ``clock``: KST wall time (the business date the grid starts on)."""
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.engine = engine
        self.store = store or SettingsStore()
        self.settings = settings or self.store.load()
        set_language(self.settings.language)
        self.setWindowIcon(app_icon())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._db_lock = asyncio.Lock()
        self.watchlist_names: list[str] = []
        self.watchlist_name = ""
        self.last_error = ""

        # grid
        self.model = WatchlistModel(engine.symbols.name, self, clock=clock)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(False)     # no re-sort per update (see RESORT_MS)
        self.grid = GridView()
        self.grid.setObjectName("watchlistGrid")
        self.grid.setModel(self.proxy)
        self.grid.setItemDelegate(GridDelegate(self.grid))
        self.grid.setItemDelegateForColumn(Col.SPARK, SparklineDelegate(self.grid))
        self.grid.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setSortingEnabled(True)
        self.grid.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.grid.setWordWrap(False)
        self.grid.setAlternatingRowColors(True)
        self.grid.setShowGrid(False)
        vh = self.grid.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(ROW_HEIGHT)
        vh.setMinimumSectionSize(ROW_HEIGHT)
        vh.setVisible(False)
        hh = self.grid.horizontalHeader()
        hh.setSectionsMovable(True)
        hh.setHighlightSections(False)
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(Col.SPARK, QHeaderView.ResizeMode.Stretch)   # takes spare width
        hh.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        hh.customContextMenuRequested.connect(self._header_menu)
        for col, width in DEFAULT_COLUMN_WIDTHS.items():
            self.grid.setColumnWidth(col, width)
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.doubleClicked.connect(lambda idx: self.acknowledge_code(idx.data(CODE_ROLE)))
        self.grid.acknowledgeCode.connect(self.acknowledge_code)
        self.resort_timer = QTimer(self)
        self.resort_timer.setInterval(RESORT_MS)
        self.resort_timer.timeout.connect(self._resort)
        self.resort_timer.start()

        self.banner = AlertBanner()
        self.banner.clicked.connect(self.acknowledge)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(2, 2, 2, 2)
        cl.setSpacing(2)
        cl.addWidget(self.banner)
        cl.addWidget(self.grid, 1)
        self.setCentralWidget(central)

        # docks
        self.alert_dock = AlertDock(self)
        self.alert_dock.codeActivated.connect(self.select_code)
        self.alert_dock.acknowledgeRequested.connect(self.acknowledge)
        self.chart = DetailChart()
        self.chart_dock = QDockWidget(self)
        self.chart_dock.setObjectName("chartDock")
        self.chart_dock.setWidget(self.chart)
        self.editor = WatchlistEditor(engine.symbols, self)
        self.editor_dock = QDockWidget(self)
        self.editor_dock.setObjectName("watchlistDock")
        self.editor_dock.setWidget(self.editor)
        # grid in the centre gets the full height (50 rows); chart above, alerts/editor tabbed below
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.chart_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.alert_dock)
        self.tabifyDockWidget(self.alert_dock, self.editor_dock)
        self.alert_dock.raise_()
        self.resizeDocks([self.chart_dock, self.alert_dock], [560, 420], Qt.Orientation.Vertical)
        self.editor.codesEdited.connect(self._codes_edited)
        self.editor.switchRequested.connect(lambda name: self.spawn(self.switch_watchlist(name)))
        self.editor.createRequested.connect(lambda name: self.spawn(self.create_watchlist(name)))
        self.editor.renameRequested.connect(lambda old, new: self.spawn(self.rename_watchlist(old, new)))
        self.editor.deleteRequested.connect(lambda name: self.spawn(self.delete_watchlist(name)))

        self.status = EngineStatusBar(self)
        self.setStatusBar(self.status)

        self.tray: QSystemTrayIcon | None = None
        self.tray_available = (QSystemTrayIcon.isSystemTrayAvailable() if tray_available is None
                               else tray_available)
        self._quitting = False
        self.tray_hints = 0                 # one-time "still running" messages shown
        if self.tray_available:
            self.tray = QSystemTrayIcon(self.windowIcon(), self)
            self.tray.activated.connect(lambda _reason: self.show_from_tray())
            self.tray_menu = QMenu(self)
            self.tray_menu.addAction(tr("tray.show"), self.show_from_tray)
            self.tray_menu.addAction(tr("action.quit").replace("&", ""), self.quit)
            self.tray.setContextMenu(self.tray_menu)
            self.tray.show()
        self.notifier = Notifier(self.banner, self.tray)

        self._build_menus()
        self.apply_settings(self.settings)
        self.resize(1680, 1020)
        self.resizeDocks([self.chart_dock], [560], Qt.Orientation.Horizontal)
        self._restore_layout()
        self._unsubscribe = engine.bus.subscribe(Event, self.on_event)

    # -- menus / language ---------------------------------------------------------------------
    def _build_menus(self) -> None:
        mb = self.menuBar()
        self.file_menu = mb.addMenu("")
        self.settings_action = QAction(self)
        self.settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        self.settings_action.triggered.connect(self.open_settings)
        self.quit_action = QAction(self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.quit)
        self.file_menu.addAction(self.settings_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.view_menu = mb.addMenu("")
        for dock in (self.editor_dock, self.chart_dock, self.alert_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self.help_menu = mb.addMenu("")
        self.about_action = QAction(self)
        self.about_action.triggered.connect(
            lambda: QMessageBox.about(self, tr("app.title"), tr("about.text", version=__version__)))
        self.help_menu.addAction(self.about_action)
        QShortcut(QKeySequence("Ctrl+K"), self, activated=self.alert_dock.acknowledge_all)

    def retranslate(self) -> None:
        self.setWindowTitle(tr("app.title"))
        self.file_menu.setTitle(tr("menu.file"))
        self.view_menu.setTitle(tr("menu.view"))
        self.help_menu.setTitle(tr("menu.help"))
        self.settings_action.setText(tr("action.settings"))
        self.quit_action.setText(tr("action.quit"))
        self.about_action.setText(tr("action.about"))
        self.chart_dock.setWindowTitle(tr("dock.chart"))
        self.editor_dock.setWindowTitle(tr("dock.watchlist"))
        self.alert_dock.retranslate()
        self.editor.retranslate()
        self.chart.retranslate()
        self.model.retranslate()
        self.status.retranslate()

    def apply_settings(self, settings: UserSettings) -> None:
        """Appearance and sound apply at once; engine settings on the next start."""
        self.settings = settings
        set_language(settings.language)
        pal = palette_named(settings.colour_scheme)
        self.model.set_palette(pal)
        self.alert_dock.model.set_palette(pal)
        self.chart.set_palette(pal)
        self.banner.set_palette(pal)
        self.notifier.sound = settings.sound
        self.retranslate()

    def open_settings(self) -> SettingsDialog:
        from ..engine.remote import RemoteEngine

        dialog = SettingsDialog(self.store, self.settings, self, tray_available=self.tray_available,
                                remote=isinstance(self.engine, RemoteEngine))
        dialog.accepted.connect(lambda: self._settings_accepted(self.settings, dialog.settings))
        dialog.open()
        return dialog

    def _settings_accepted(self, previous: UserSettings, settings: UserSettings) -> None:
        """Appearance here, and everything else to the running engine at once."""
        self.apply_settings(settings)
        self.spawn(self.apply_engine_settings(previous, settings))

    async def apply_engine_settings(self, previous: UserSettings, settings: UserSettings) -> None:
        try:
            changed = await self.engine.apply_settings(settings, self.store, previous)
        except ValueError as exc:      # ConfigError: the engine kept what it had
            self.status.showMessage(tr("settings.apply_failed", message=str(exc)), 15000)
            return
        if self.engine.repository is None:    # not running (it could not start): start again
            self.retryStart.emit()
        elif changed:
            self.status.showMessage(tr("settings.applied", what=", ".join(changed)), 8000)

    # -- layout persistence -------------------------------------------------------------------
    def _header_menu(self, pos) -> None:
        menu = QMenu(self)
        natural = menu.addAction(tr("grid.natural_order"))
        natural.triggered.connect(self.natural_order)
        hh = self.grid.horizontalHeader()
        for col in Col:
            act = menu.addAction(self.model.headerData(col, Qt.Orientation.Horizontal))
            act.setCheckable(True)
            act.setChecked(not hh.isSectionHidden(col))
            act.toggled.connect(lambda on, c=col: hh.setSectionHidden(c, not on))
        menu.popup(hh.mapToGlobal(pos))

    def natural_order(self) -> None:
        self.grid.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.proxy.sort(-1)

    def _resort(self) -> None:
        col = self.proxy.sortColumn()
        if col >= 0:
            self.proxy.sort(col, self.proxy.sortOrder())

    def save_layout(self) -> None:
        hh = self.grid.horizontalHeader()
        enc = lambda b: base64.b64encode(bytes(b.data())).decode()  # noqa: E731
        self.settings.window = {
            "geometry": enc(self.saveGeometry()),
            "state": enc(self.saveState()),
            "header": enc(hh.saveState()),
            "sort_column": self.proxy.sortColumn(),
            "sort_order": int(self.proxy.sortOrder().value),
        }
        self.settings.watchlist = self.watchlist_name
        try:
            self.store.save(self.settings)
        except (OSError, ValueError) as exc:
            log.warning("could not save window layout: %s", exc)

    def _restore_layout(self) -> None:
        w = self.settings.window or {}
        dec = lambda s: QByteArray(base64.b64decode(s))  # noqa: E731
        try:
            if w.get("geometry"):
                self.restoreGeometry(dec(w["geometry"]))
            if w.get("state"):
                self.restoreState(dec(w["state"]))
            if w.get("header"):
                self.grid.horizontalHeader().restoreState(dec(w["header"]))
            col = int(w.get("sort_column", -1))
            order = Qt.SortOrder(int(w.get("sort_order", 0)))
            self.grid.sortByColumn(col, order)
        except (ValueError, TypeError) as exc:
            log.warning("ignoring saved window layout: %s", exc)

    # -- async plumbing -----------------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("UI task failed", exc_info=exc)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.editor.show_message(self.last_error, True)

    async def idle(self) -> None:
        """Wait for every background task started so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def shutdown(self) -> None:
        self._unsubscribe()
        self.model.timer.stop()
        self.chart.timer.stop()
        self.resort_timer.stop()
        await self.idle()

    def _repo(self):
        repo = self.engine.repository
        if repo is None:
            raise RuntimeError("the storage is not available (engine not started)")
        return repo

    # -- start-up -----------------------------------------------------------------------------
    async def start(self, watchlist: str, codes: Sequence[str]) -> None:
        """Show ``watchlist`` (already applied to the engine) and today's stored alerts."""
        repo = self._repo()
        self.status.always_open = self.engine.simulated
        self.watchlist_name = watchlist
        self.show_codes(codes)
        async with self._db_lock:
            self.watchlist_names = await asyncio.to_thread(repo.list_watchlists)
            stored = await asyncio.to_thread(repo.alerts_on, self.model.business_date)
        self.editor.set_lists(self.watchlist_names, watchlist, codes)
        self._show_stored_alerts(stored)
        if self.model.rowCount():
            self.grid.selectRow(0)

    def _show_stored_alerts(self, stored: Sequence[Any]) -> None:
        for item in stored:
            alert, acked = (item.alert, item.acknowledged) if hasattr(item, "alert") else (item, False)
            self.alert_dock.model.add(alert, acknowledged=acked)
            if not acked:
                self.model.on_alert(alert)   # highlight only: no popup for history

    def on_day_rollover(self, event: DayRolloverEvent) -> None:
        """A new business day: the grid's rows, the chart and the alert dock start over; the
        dock then shows the new day's stored alerts (any raised since midnight)."""
        self.model.on_day_rollover(event)
        self.alert_dock.model.clear()
        if self.chart.code is not None:
            self.chart.show_symbol(self.chart.code, self.chart.name)
        self.status.showMessage(tr("day.rolled", day=event.current.isoformat()), 15000)
        if self.engine.repository is not None:
            self.spawn(self._reload_alerts(event.current))

    async def _reload_alerts(self, day: date) -> None:
        repo = self._repo()
        async with self._db_lock:
            stored = await asyncio.to_thread(repo.alerts_on, day)
        if day == self.model.business_date:
            self._show_stored_alerts(stored)

    def prepare(self, codes: Sequence[str]) -> None:
        """Create the rows before the engine starts, so trades it delivers while starting
        (back-fill of the time the app was closed) are buffered for the history merge."""
        self.model.set_codes(codes)
        self.model.buffer_live(codes)

    def show_codes(self, codes: Sequence[str]) -> None:
        """Put ``codes`` in the grid; rows new to it start loading today's history at once.

        ``begin_seed`` runs in the same GUI-thread step as ``set_codes``, so every live trade
        for a new row is either in the stored history or in the row's pending buffer.
        """
        self.model.set_codes(codes)
        todo = self.model.begin_seed(codes)
        if todo and self.engine.repository is not None:
            self.spawn(self.seed_rows(todo))
        else:
            self.model.end_seed(todo)

    async def seed_rows(self, todo: Sequence[str]) -> None:
        """Fill rows with today's stored history: last trade, sparkline, 1-minute change.

        A restart at 11:00 shows the whole morning at once. Loaded in a worker thread, a few
        symbols per round trip so the first rows appear quickly; live trades arriving
        meanwhile are buffered per row and merged without duplicates (model.seed).
        """
        repo = self._repo()
        today = self.model.business_date
        try:
            for i in range(0, len(todo), SEED_CHUNK):
                chunk = todo[i:i + SEED_CHUNK]
                loaded = await asyncio.to_thread(load_intraday, repo, chunk, today)
                for code in chunk:
                    if code in loaded:
                        self.model.seed(code, *loaded[code])
                    else:
                        self.model.end_seed([code])
        finally:
            self.model.end_seed(todo)       # failures/cancellation: rows stay live-only

    # -- events -------------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if isinstance(event, TicksEvent):
            self.model.on_ticks(event.ticks)
            self.chart.on_ticks(event.ticks)
            return
        if isinstance(event, AlertEvent):
            self.model.on_alert(event)
            if self.alert_dock.model.add(event):
                self.notifier.notify(event)
            self.chart.add_alert(event)
            return
        if isinstance(event, DayRolloverEvent):
            self.on_day_rollover(event)
            return
        self.model.on_event(event)
        self.status.on_event(event)

    # -- selection / chart --------------------------------------------------------------------
    def selected_code(self) -> str | None:
        idx = self.grid.currentIndex()
        return idx.data(CODE_ROLE) if idx.isValid() else None

    def select_code(self, code: str) -> None:
        row = self.model.row_of(code)
        if row is None:
            return
        proxy_idx = self.proxy.mapFromSource(self.model.index(row, 0))
        self.grid.setCurrentIndex(proxy_idx)
        self.grid.selectRow(proxy_idx.row())
        self.grid.scrollTo(proxy_idx)

    def _selection_changed(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = selected.indexes()
        if not rows:
            return
        code = rows[0].data(CODE_ROLE)
        if code and code != self.chart.code:
            self.chart.show_symbol(code, self.engine.symbols.name(code))
            if self.engine.repository is not None:
                self.spawn(self._load_chart(code))

    async def _load_chart(self, code: str) -> None:
        day = self.model.business_date
        today = datetime(day.year, day.month, day.day, tzinfo=KST)
        repo = self._repo()
        history = await asyncio.to_thread(
            lambda: history_arrays(repo.ticks_between(code, today, today + timedelta(days=1))))
        alerts = [a for a in self.alert_dock.model.alerts if a.stock_code == code]
        self.chart.load_history(code, history, alerts)

    # -- alerts -------------------------------------------------------------------------------
    def acknowledge(self, alert_ids: Sequence[str]) -> None:
        ids = [i for i in alert_ids if i not in self.alert_dock.model.acked]
        self.model.acknowledge(alert_ids)
        self.alert_dock.model.mark_acknowledged(alert_ids)
        for aid in ids:
            self.spawn(self.engine.acknowledge_alert(aid))

    def acknowledge_code(self, code: str | None) -> None:
        if code:
            self.acknowledge([a.alert_id for a in self.model.pending_alerts(code)])

    # -- watchlists ---------------------------------------------------------------------------
    def _codes_edited(self, name: str, codes: list[str]) -> None:
        self.show_codes(codes)
        self.spawn(self._save_and_apply(name, codes))

    async def _save_and_apply(self, name: str, codes: Sequence[str]) -> None:
        repo = self._repo()
        async with self._db_lock:
            await asyncio.to_thread(repo.set_watchlist_codes, name, list(codes))
            await self.engine.set_watchlist(list(codes))

    async def _show_list(self, name: str, codes: Sequence[str]) -> None:
        self.watchlist_name = name
        self.show_codes(codes)
        self.editor.set_lists(self.watchlist_names, name, codes)
        await self.engine.set_watchlist(list(codes))
        self.settings.watchlist = name

    async def switch_watchlist(self, name: str) -> None:
        repo = self._repo()
        async with self._db_lock:
            codes = await asyncio.to_thread(repo.watchlist_codes, name)
            await self._show_list(name, codes)

    async def create_watchlist(self, name: str, codes: Sequence[str] = ()) -> None:
        repo = self._repo()
        async with self._db_lock:
            await asyncio.to_thread(repo.create_watchlist, name, list(codes))
            self.watchlist_names = await asyncio.to_thread(repo.list_watchlists)
            await self._show_list(name, codes)

    async def rename_watchlist(self, old: str, new: str) -> None:
        repo = self._repo()
        async with self._db_lock:
            await asyncio.to_thread(repo.rename_watchlist, old, new)
            self.watchlist_names = await asyncio.to_thread(repo.list_watchlists)
        if self.watchlist_name == old:
            self.watchlist_name = new
        self.editor.set_lists(self.watchlist_names, self.watchlist_name, self.model.codes())

    async def delete_watchlist(self, name: str) -> None:
        repo = self._repo()
        async with self._db_lock:
            names = await asyncio.to_thread(repo.list_watchlists)
            if len(names) <= 1:
                self.editor.show_message(tr("wl.last_list"), True)
                return
            await asyncio.to_thread(repo.delete_watchlist, name)
            self.watchlist_names = await asyncio.to_thread(repo.list_watchlists)
            if name == self.watchlist_name:
                nxt = self.watchlist_names[0]
                codes = await asyncio.to_thread(repo.watchlist_codes, nxt)
                await self._show_list(nxt, codes)
            else:
                self.editor.set_lists(self.watchlist_names, self.watchlist_name, self.model.codes())

    # -- close --------------------------------------------------------------------------------
    def quit(self) -> None:
        """Quit for real (File ▸ Quit, the tray menu): the engine stops and flushes."""
        self._quitting = True
        self.close()

    def show_from_tray(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()

    def keeps_running_in_tray(self) -> bool:
        return (self.tray is not None and self.tray_available
                and self.settings.keep_running_in_tray and not self._quitting)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_layout()
        if self.keeps_running_in_tray():
            # the window goes, the collector keeps collecting; say so the first time
            event.ignore()
            self.hide()
            if not self.settings.tray_hint_shown:
                assert self.tray is not None
                self.tray.showMessage(tr("app.title"), tr("tray.still_running"),
                                      QSystemTrayIcon.MessageIcon.Information, 8000)
                self.tray_hints += 1
                self.settings.tray_hint_shown = True
                try:
                    self.store.save(self.settings)
                except (OSError, ValueError) as exc:
                    log.warning("could not save settings: %s", exc)
            return
        self.closeRequested.emit()
        super().closeEvent(event)
