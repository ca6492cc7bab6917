"""HTS-style watchlist handling on the main window: a 관심종목 menu, shortcuts, a grid context menu.

Shortcuts (documented in the menu and the README):

* ``Ctrl+L`` — open the watchlist editor (``Ctrl+K`` is taken: acknowledge all alerts);
* ``Ctrl+F`` / ``Insert`` — add a symbol (the editor's search field, focused);
* ``Del`` — remove the selected grid row from the shown watchlist; ``Ctrl+Z`` undoes it;
* ``Enter`` — open the selected row's chart (and acknowledge its alerts, as before).

The row context menu offers add, delete, chart, "set alert" and a mute submenu (the window's
``desk.mute_menu``); "set alert" emits
``alertSettingsRequested(code)`` so the alerts feature can hook per-symbol thresholds — until
something connects to it, the window's Settings dialog (global threshold) opens.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import SIGNAL, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMenu

from .i18n import tr
from .watchlist_model import CODE_ROLE

EDITOR_KEY = "Ctrl+L"
ADD_KEYS = ("Ctrl+F", "Insert")


class WatchlistActions(QObject):
    """Owns the 관심종목 menu and the grid's row menu; all edits go through the editor, so the
    shown list, its stored copy and the engine's subscriptions stay one."""

    alertSettingsRequested = Signal(str)     # stock code: "set an alert for this symbol"

    def __init__(self, window: Any) -> None:
        """``window``: the ``MainWindow`` (grid, editor, docks, ``select_code``, ``open_settings``)."""
        super().__init__(window)
        self.window = window
        grid = window.grid
        self.menu = window.menuBar().insertMenu(window.help_menu.menuAction(), QMenu(window)).menu()
        self.open_action = self._action(self.open_editor, EDITOR_KEY)
        self.add_action = self._action(self.add_symbol, *ADD_KEYS)
        self.delete_action = self._action(self.delete_selected, "Del", context=grid)
        self.undo_action = self._action(self.undo, QKeySequence.StandardKey.Undo)
        self.chart_action = self._action(self.open_chart)
        self.alert_action = self._action(self.set_alert)
        for act in (self.open_action, self.add_action, self.delete_action, self.undo_action):
            self.menu.addAction(act)
        grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        grid.customContextMenuRequested.connect(self.row_menu)
        self.alertSettingsRequested.connect(self._default_alert_settings)
        self.retranslate()

    def _action(self, slot, *keys, context=None) -> QAction:
        act = QAction(context or self.window)
        if keys:
            act.setShortcuts([k if isinstance(k, QKeySequence) else QKeySequence(k) for k in keys])
        if context is not None:
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            context.addAction(act)
        else:
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.window.addAction(act)
        act.triggered.connect(lambda _checked=False: slot())
        return act

    def retranslate(self) -> None:
        self.menu.setTitle(tr("menu.watchlist"))
        self.open_action.setText(tr("wla.open"))
        self.add_action.setText(tr("wla.add"))
        self.delete_action.setText(tr("wla.delete"))
        self.undo_action.setText(tr("wla.undo"))
        self.chart_action.setText(tr("wla.chart"))
        self.alert_action.setText(tr("wla.alert"))

    # -- actions ------------------------------------------------------------------------------
    def open_editor(self) -> None:
        dock = self.window.editor_dock
        dock.show()
        dock.raise_()
        self.window.editor.input.setFocus()

    def add_symbol(self) -> None:
        self.open_editor()
        self.window.editor.input.selectAll()

    def selected_codes(self) -> list[str]:
        rows = self.window.grid.selectionModel().selectedRows()
        return [i.data(CODE_ROLE) for i in rows if i.data(CODE_ROLE)]

    def delete_selected(self) -> None:
        codes = self.selected_codes()
        if codes:
            self.window.editor.remove_codes(codes)
            self.window.editor.show_message(tr("wla.deleted", codes=", ".join(codes)))

    def undo(self) -> None:
        self.window.editor.undo()

    def open_chart(self, code: str | None = None) -> None:
        code = code or self.window.selected_code()
        if code:
            self.window.select_code(code)
            self.window.chart_dock.show()
            self.window.chart_dock.raise_()

    def set_alert(self, code: str | None = None) -> None:
        code = code or self.window.selected_code()
        if code:
            self.alertSettingsRequested.emit(code)

    def _default_alert_settings(self, code: str) -> None:
        """Until per-symbol alert settings hook ``alertSettingsRequested``: the global ones."""
        if self.receivers(SIGNAL("alertSettingsRequested(QString)")) <= 1:   # only this default
            self.window.open_settings()

    # -- the row menu -------------------------------------------------------------------------
    def build_row_menu(self) -> QMenu:
        menu = QMenu(self.window)
        menu.addAction(self.chart_action)
        menu.addAction(self.alert_action)
        desk = getattr(self.window, "desk", None)
        if desk is not None:                       # mute these symbols (alerts feature)
            menu.addMenu(desk.mute_menu(self.selected_codes(), menu))
        menu.addSeparator()
        menu.addAction(self.add_action)
        menu.addAction(self.delete_action)
        menu.addAction(self.undo_action)
        return menu

    def row_menu(self, pos: QPoint) -> QMenu:
        grid = self.window.grid
        idx = grid.indexAt(pos)
        if idx.isValid() and not grid.selectionModel().isRowSelected(idx.row(), idx.parent()):
            grid.selectRow(idx.row())
        has_row = bool(self.selected_codes())
        for act in (self.chart_action, self.alert_action, self.delete_action):
            act.setEnabled(has_row)
        self.undo_action.setEnabled(self.window.editor.can_undo())
        menu = self.build_row_menu()
        grid.menu_open = True                  # the re-sort waits while the menu is open
        menu.aboutToHide.connect(lambda: setattr(grid, "menu_open", False))
        menu.popup(grid.viewport().mapToGlobal(pos))
        return menu
