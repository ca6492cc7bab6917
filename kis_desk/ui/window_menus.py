"""The main window's menu bar and window-wide shortcuts: 파일 (settings, quit), 보기 (the docks),
도움말 (about), the 알림 menu of :mod:`desk_actions` and the 관심종목 menu of
:mod:`watchlist_actions` (both inserted before 도움말), ``Ctrl+K``, and the grid header's
column menu.

Apart from :mod:`main_window` so that the window is layout and wiring: what a menu offers, its
texts in the UI's language and its shortcuts change here, without touching how the grid, the
docks and the engine are put together.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMenu, QMessageBox

from .. import __version__
from .desk_actions import DeskActions
from .grid_columns import Col
from .i18n import tr
from .watchlist_actions import WatchlistActions


class WindowMenus(QObject):
    """Builds the menus on ``window`` (a ``MainWindow`` with its grid and docks in place)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        mb = window.menuBar()
        self.file_menu = mb.addMenu("")
        self.settings_action = self._action(window.open_settings, QKeySequence.StandardKey.Preferences)
        self.quit_action = self._action(window.quit, QKeySequence.StandardKey.Quit)
        self.file_menu.addAction(self.settings_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.view_menu = mb.addMenu("")
        for dock in (window.editor_dock, window.chart_dock, window.alert_dock):
            self.view_menu.addAction(dock.toggleViewAction())
        self.help_menu = mb.addMenu("")
        self.about_action = self._action(
            lambda: QMessageBox.about(window, tr("app.title"), tr("about.text", version=__version__)))
        self.help_menu.addAction(self.about_action)
        window.help_menu = self.help_menu        # the next two insert their menus before it
        self.desk = DeskActions(window)          # 알림: test alert, history, rules, mutes; volume, theme
        self.wl_actions = WatchlistActions(window)   # 관심종목 menu, shortcuts, row context menu
        window.grid.chartRequested.connect(self.wl_actions.open_chart)
        QShortcut(QKeySequence("Ctrl+K"), window, activated=window.alert_dock.acknowledge_all)
        window.grid.horizontalHeader().customContextMenuRequested.connect(self.header_menu)

    def _action(self, slot, shortcut: QKeySequence.StandardKey | None = None) -> QAction:
        act = QAction(self.window)
        if shortcut is not None:
            act.setShortcut(shortcut)
        act.triggered.connect(lambda _checked=False: slot())
        return act

    def retranslate(self) -> None:
        self.file_menu.setTitle(tr("menu.file"))
        self.view_menu.setTitle(tr("menu.view"))
        self.help_menu.setTitle(tr("menu.help"))
        self.settings_action.setText(tr("action.settings"))
        self.quit_action.setText(tr("action.quit"))
        self.about_action.setText(tr("action.about"))
        self.desk.retranslate()
        self.wl_actions.retranslate()

    # -- the grid header's menu: natural order, which columns show ------------------------------
    def header_menu(self, pos: QPoint) -> QMenu:
        grid, model = self.window.grid, self.window.model
        menu = QMenu(self.window)
        natural = menu.addAction(tr("grid.natural_order"))
        natural.triggered.connect(self.natural_order)
        hh = grid.horizontalHeader()
        for col in Col:
            act = menu.addAction(model.headerData(col, Qt.Orientation.Horizontal))
            act.setCheckable(True)
            act.setChecked(not hh.isSectionHidden(col))
            act.toggled.connect(lambda on, c=col: hh.setSectionHidden(c, not on))
        menu.popup(hh.mapToGlobal(pos))
        return menu

    def natural_order(self) -> None:
        """Back to the watchlist's own order (no sort column)."""
        self.window.grid.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.window.model.sort(-1)


__all__ = ["WindowMenus"]
