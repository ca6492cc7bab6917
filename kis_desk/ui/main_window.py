"""Main window: layout and wiring of the watchlist grid, alert log, detail chart, editor, status bar.

Inputs: engine events on ``engine.bus`` (typed subscriptions, delivered on the GUI thread: the
collector runs on the same qasync loop) and ``EngineHandle`` calls — history, stored alerts and
watchlists included, each of which does its own worker-thread hop. Nothing here touches storage
or blocks the GUI thread. While the window is hidden or minimised nothing repaints.

The grid, chart and alert dock show one business date; the engine's ``DayRolloverEvent`` starts
them over at midnight. Settings apply to the running engine at once; closing may only hide the
window while collecting goes on (``tray``).

This module is layout and wiring: the menus and shortcuts are :mod:`window_menus`, the rows'
start from stored history :mod:`row_history`, the saved layout :mod:`window_layout`, the
watchlist switching :mod:`watchlist_controller`, the business-day reset :mod:`business_day`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QMainWindow, QVBoxLayout, QWidget

from ..core.events import AlertEvent
from ..engine.handle import EngineHandle
from ..settings import SettingsStore, UserSettings
from .alerts_view import AlertDock
from .business_day import BusinessDay
from .chart import DetailChart
from .chart_link import ChartLink
from .grid_view import GridView
from .i18n import set_language, tr
from .icon import app_icon
from .locale_setup import apply_ui_font, install_qt_translations
from .notifications import AlertBanner, Notifier
from .settings_dialog import SettingsDialog
from .settings_flow import apply_to_engine, settings_dialog, show_storage_info
from .status_bar import EngineStatusBar
from .row_history import RowHistory
from .row_state import symbol_flags
from .tray import TrayKeeper
from .watchlist_controller import WatchlistController
from .watchlist_editor import WatchlistEditor
from .watchlist_model import CODE_ROLE, WatchlistModel
from .window_layout import PREFERRED_SIZE, clamp_to_screen, encode_layout, restore_layout
from .window_menus import WindowMenus

log = logging.getLogger(__name__)

RESORT_MS = 2000


class MainWindow(QMainWindow):
    closeRequested = Signal()
    retryStart = Signal()        # settings changed while the engine could not start: try again

    def __init__(self, engine: EngineHandle, store: SettingsStore | None = None,
                 settings: UserSettings | None = None, parent=None, *, tray_available: bool | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``tray_available``: None → ask Qt (offscreen has no tray); ``clock``: the KST clock
        that fixes the business date the grid starts on (None: the engine's ``clock``)."""
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.engine = engine
        self.store = store or SettingsStore()
        self.settings = settings or self.store.load()
        set_language(self.settings.language)
        apply_ui_font()                   # one family for Korean and Latin names
        self.setWindowIcon(app_icon())
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_error = ""
        self._painting = True

        # grid
        info = getattr(engine.symbols, "get", None)
        self.model = WatchlistModel(engine.symbols.name, self, clock=clock or engine.clock,
                                    flags=(lambda c: symbol_flags(info(c))) if info else None)
        self.grid = GridView(self.model)
        self.rows = RowHistory(engine, self.model, self.spawn, lambda: self.business_date)
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
        self.alert_dock.acknowledgeRequested.connect(self.acknowledge)
        self.chart = DetailChart()
        self.chart.set_day(self.business_date)
        self.chart_dock = self._dock("chartDock", self.chart)
        self.charts = ChartLink(self)           # selection → chart: trades, alerts, VI periods
        self.selected_code, self.select_code = self.charts.selected_code, self.charts.select_code
        self.grid.selectionModel().selectionChanged.connect(self.charts.selection_changed)
        self.alert_dock.codeActivated.connect(self.select_code)
        self.editor = WatchlistEditor(engine.symbols, self)
        self.editor_dock = self._dock("watchlistDock", self.editor)
        # grid in the centre gets the full height (50 rows); chart above, alerts/editor tabbed below
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.chart_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.alert_dock)
        self.tabifyDockWidget(self.alert_dock, self.editor_dock)
        self.alert_dock.raise_()
        self.resizeDocks([self.chart_dock, self.alert_dock], [560, 420], Qt.Orientation.Vertical)

        self.watchlists = WatchlistController(engine, self.editor, self.show_codes, self.model.codes)
        self.switch_watchlist = self.watchlists.switch
        self.create_watchlist = self.watchlists.create
        self.rename_watchlist = self.watchlists.rename
        self.delete_watchlist = self.watchlists.delete
        self.editor.codesEdited.connect(self._codes_edited)
        self.editor.switchRequested.connect(lambda name: self.spawn(self.watchlists.switch(name)))
        self.editor.createRequested.connect(lambda name: self.spawn(self.watchlists.create(name)))
        self.editor.renameRequested.connect(lambda old, new: self.spawn(self.watchlists.rename(old, new)))
        self.editor.deleteRequested.connect(lambda name: self.spawn(self.watchlists.delete(name)))

        self.status = EngineStatusBar(self)
        self.setStatusBar(self.status)

        self.tray_keeper = TrayKeeper(self, self.quit, tray_available)
        self.tray = self.tray_keeper.tray
        self.notifier = Notifier(self.banner, self.tray)

        self.day = BusinessDay(engine, self.model, self.alert_dock, self.chart, self.status.showMessage,
                               self.spawn, self.charts.load)
        self.menus = WindowMenus(self)      # 파일, 보기, 알림, 관심종목, 도움말; Ctrl+K; header menu
        self.desk, self.wl_actions = self.menus.desk, self.menus.wl_actions
        self.alertSettingsRequested = self.wl_actions.alertSettingsRequested
        self.apply_settings(self.settings)
        self.resize(PREFERRED_SIZE)
        self._restore_layout()          # fits the screen: saved geometry clamped, else sized to it
        if not (self.settings.window or {}).get("state"):
            # first start: the chart takes a third of a small screen, 560 px of a large one
            self.resizeDocks([self.chart_dock], [min(560, self.width() // 3)], Qt.Orientation.Horizontal)
        self._clamped_once = False
        bus = engine.bus
        offs = [self.model.subscribe(bus), self.status.subscribe(bus), self.charts.subscribe(bus),
                bus.subscribe(AlertEvent, self._on_alert),
                self.day.subscribe(bus)]           # after the model's own
        self._unsubscribe = lambda: [off() for off in offs] and None

    def _dock(self, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        return dock

    @property
    def watchlist_name(self) -> str:
        return self.watchlists.name

    # -- language and settings ----------------------------------------------------------------
    def retranslate(self) -> None:
        self.setWindowTitle(tr("app.title"))
        self.menus.retranslate()
        self.chart_dock.setWindowTitle(tr("dock.chart"))
        self.editor_dock.setWindowTitle(tr("dock.watchlist"))
        self.alert_dock.retranslate()
        self.editor.retranslate()
        self.chart.retranslate()
        self.model.retranslate()
        self.status.retranslate()
        self.tray_keeper.retranslate()

    def apply_settings(self, settings: UserSettings) -> None:
        """Appearance and sound (the engine's part: ``settings_flow.apply_to_engine``)."""
        self.settings = settings
        set_language(settings.language)
        install_qt_translations(settings.language)   # Qt's own buttons (OK/Cancel) in that language
        pal = self.desk.apply_settings(settings)   # volume + theme now; colours for that theme
        self.model.set_palette(pal)
        self.alert_dock.model.set_palette(pal)
        self.chart.set_palette(pal)
        self.banner.set_palette(pal)
        self.notifier.sound = settings.sound
        self.retranslate()

    def open_settings(self) -> SettingsDialog:
        """Appearance applies here, the rest to the running engine at once (settings_flow)."""
        dialog = settings_dialog(self.engine, self.store, self.settings, self, self.tray is not None)
        dialog.accepted.connect(lambda: self._settings_accepted(self.settings, dialog.settings))
        dialog.open()
        self.spawn(show_storage_info(self.engine, dialog))     # size and days kept, off the GUI thread
        return dialog

    def _settings_accepted(self, previous: UserSettings, settings: UserSettings) -> None:
        self.apply_settings(settings)
        self.spawn(apply_to_engine(self.engine, self.store, previous, settings,
                                   self.status.showMessage, self.retryStart.emit))

    # -- layout persistence -------------------------------------------------------------------
    def _resort(self, force: bool = False) -> None:
        """The periodic re-sort (selection kept by the model); skipped while the user points
        at, drags over or has a menu open on the grid (``GridView.interacting``)."""
        if self.model.sort_column >= 0 and (force or not self.grid.interacting()):
            self.model.sort(self.model.sort_column, self.model.sort_order)

    def save_layout(self) -> None:
        self.settings.window = encode_layout(self, self.grid.horizontalHeader(), self.model)
        self.settings.watchlist = self.watchlist_name
        try:
            self.store.save(self.settings)
        except (OSError, ValueError) as exc:
            log.warning("could not save window layout: %s", exc)

    def _restore_layout(self) -> None:
        restore_layout(self, self.grid, self.settings.window or {})

    # -- visibility: a hidden or minimised window costs (almost) nothing ----------------------
    def _sync_painting(self) -> None:
        active = self.isVisible() and not self.isMinimized()
        if active == self._painting:
            return
        self._painting = active
        for timer_owner in (self.model, self.chart):
            timer_owner.resume() if active else timer_owner.pause()
        self.resort_timer.start() if active else self.resort_timer.stop()
        if active:
            self._resort()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if not self._clamped_once:       # keep it on the screen once the frame is known
            self._clamped_once = True
            clamp_to_screen(self)
            for ms in (0, 400):          # window managers add the frame a little later
                QTimer.singleShot(ms, self, self._keep_on_screen)
        self._sync_painting()

    def _keep_on_screen(self) -> None:
        if self.isVisible():
            clamp_to_screen(self)

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        self._sync_painting()

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange:
            self._sync_painting()

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
        await self.desk.idle()

    # -- start-up -----------------------------------------------------------------------------
    async def start(self, watchlist: str, codes: Sequence[str]) -> None:
        """Show ``watchlist`` (already applied to the engine) and today's stored alerts."""
        self.status.always_open = self.engine.always_open
        self.show_codes(codes)
        self.charts.seed(self.engine.market_states())     # halts / VI already under way
        await self.watchlists.open(watchlist, codes)
        self.day.show_stored(await self.engine.alerts_on(self.business_date))
        if self.model.rowCount():
            self.grid.selectRow(0)

    def prepare(self, codes: Sequence[str]) -> None:
        """Rows before the engine starts (``RowHistory.prepare``)."""
        self.rows.prepare(codes)

    def show_codes(self, codes: Sequence[str]) -> None:
        """Put ``codes`` in the grid; new rows load today's history (``RowHistory``)."""
        self.rows.show_codes(codes)

    # -- events -------------------------------------------------------------------------------
    @property
    def business_date(self) -> date:
        return self.model.business_date or self.engine.clock().date()   # always set: clock given

    def _on_alert(self, event: AlertEvent) -> None:
        # a muted alert (engine.alert_rules) is logged greyed, never sounded or bannered
        if self.alert_dock.model.add(event) and not event.muted:
            self.notifier.notify(event)
        self.chart.add_alert(event)

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
        self.spawn(self.watchlists.save_and_apply(name, codes))

    # -- close --------------------------------------------------------------------------------
    def quit(self) -> None:
        """Quit for real (File ▸ Quit, the tray menu): the engine stops and flushes."""
        self.tray_keeper.quitting = True
        self.close()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.save_layout()
        if self.tray_keeper.keeps_running(self.settings):
            event.ignore()                     # the window goes, collecting goes on
            self.tray_keeper.hide_window(self.settings, self.store)
            return
        self.closeRequested.emit()
        super().closeEvent(event)
