"""The trader's-desk additions to the main window, attached through a few hooks.

``MainWindow`` creates one ``DeskActions(self)`` in ``_build_menus``, calls ``retranslate()`` from
its own ``retranslate`` and ``apply_settings(settings)`` from its own ``apply_settings`` (which
returns the direction colours for the active theme). Everything else lives here:

* an "알림" (Alerts) menu with 테스트 알림 (test alert) and 알림 내역 (alert history, ``Ctrl+H``);
* mutes: everything for 30 minutes (that menu), a symbol for N minutes or until unmuted (the
  grid row menu's submenu, :meth:`DeskActions.mute_menu`);
* the sound volume and the light/dark/system theme, applied at once.

What it uses of the window: ``engine``, ``notifier``, ``menuBar()``, ``help_menu``,
``selected_code()``, ``model`` / ``alert_dock.model`` (to mark acknowledged rows) and the
window's widgets for :func:`style_charts`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QWidget

from ..protocol.records import KST
from ..settings import UserSettings
from .alert_check import AlertCheckResult, run_alert_check
from .alert_history import AlertHistoryDialog
from .appearance import apply_theme, is_dark, style_charts
from .i18n import tr
from .theme import Palette, palette_for

log = logging.getLogger(__name__)

DEFAULT_TEST_CODE = "005930"


class DeskActions(QObject):
    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.settings: UserSettings | None = None
        self.palette: Palette = palette_for("korean", False)
        self.history: AlertHistoryDialog | None = None
        self.last_check: AlertCheckResult | None = None
        self._next_direction = "up"
        self._tasks: set[asyncio.Task[Any]] = set()

        self.menu = window.menuBar().insertMenu(window.help_menu.menuAction(), _menu(window)).menu()
        self.test_alert_action = QAction(window)
        self.test_alert_action.setObjectName("testAlertAction")
        self.test_alert_action.triggered.connect(self.test_alert)
        self.history_action = QAction(window)
        self.history_action.setObjectName("alertHistoryAction")
        self.history_action.setShortcut(QKeySequence("Ctrl+H"))
        self.history_action.triggered.connect(self.open_history)
        self.menu.addAction(self.history_action)
        self.rules_action = QAction(window)
        self.rules_action.setObjectName("alertRulesAction")
        self.rules_action.triggered.connect(lambda: self.open_rules())
        self.mute_action = QAction(window)
        self.mute_action.setObjectName("muteAllAction")
        self.mute_action.triggered.connect(lambda: self.mute_all(30))
        self.unmute_action = QAction(window)
        self.unmute_action.setObjectName("unmuteAction")
        self.unmute_action.triggered.connect(lambda: self.mute_all(0))
        owns = bool(getattr(window.engine, "owns_alert_rules", False))   # attached desktop: read only
        self.mute_action.setEnabled(owns)
        self.unmute_action.setEnabled(owns)
        self.menu.addAction(self.rules_action)
        self.menu.addAction(self.mute_action)
        self.menu.addAction(self.unmute_action)
        self.menu.addSeparator()
        self.menu.addAction(self.test_alert_action)
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._system_scheme_changed)

    # -- window hooks -------------------------------------------------------------------------
    def retranslate(self) -> None:
        self.menu.setTitle(tr("menu.alerts"))
        self.test_alert_action.setText(tr("action.test_alert"))
        self.history_action.setText(tr("action.alert_history"))
        self.rules_action.setText(tr("action.alert_rules"))
        self.mute_action.setText(tr("action.mute_30"))
        self.unmute_action.setText(tr("action.unmute"))

    # -- alert rules and mutes (engine.alert_rules) ------------------------------------------------
    def open_rules(self, code: str | None = None):
        from .alert_rules import open_alert_settings

        return open_alert_settings(self.window, code)

    def mute_all(self, minutes: float) -> None:
        """Mute every alert for ``minutes`` (0: unmute) — state in the engine."""
        engine = self.window.engine
        if getattr(engine, "owns_alert_rules", False):
            self.window.spawn(engine.set_alert_rules(engine.alert_rules.mute_all(minutes)))

    def mute_codes(self, codes: list[str], minutes: float | None = None, muted: bool = True) -> None:
        """Mute ``codes`` for ``minutes`` (None: until unmuted) or unmute them — in the engine's
        rules, which it stores with their ends (a restart keeps them)."""
        engine = self.window.engine
        if codes and getattr(engine, "owns_alert_rules", False):
            rules = engine.alert_rules
            for code in codes:
                rules = rules.mute_code(code, muted, minutes)
            self.window.spawn(engine.set_alert_rules(rules))

    def mute_menu(self, codes: list[str], parent: QWidget | None = None) -> QMenu:
        """The grid row menu's 알림 음소거 submenu for the selected ``codes`` (owned by
        ``parent``, the row menu, so it goes with it)."""
        menu = QMenu(tr("mute.menu"), parent or self.window)
        menu.setObjectName("muteMenu")
        rules = self.window.engine.alert_rules
        ends = [e for e in (rules.code_muted_until(c) for c in codes) if e is not None]
        if ends:
            end = max(ends)
            menu.setTitle(tr("mute.menu") + " — " + (tr("mute.menu_on") if end == math.inf else tr(
                "mute.menu_until", time=datetime.fromtimestamp(end, KST).strftime("%H:%M"))))
        for text, minutes in ((tr("mute.minutes", minutes=30), 30), (tr("mute.hours", hours=1), 60),
                              (tr("mute.forever"), None)):
            act = menu.addAction(text)
            act.triggered.connect(lambda _=False, m=minutes: self.mute_codes(codes, m))
        menu.addSeparator()
        off = menu.addAction(tr("mute.off"))
        off.setEnabled(bool(ends))
        off.triggered.connect(lambda _=False: self.mute_codes(codes, muted=False))
        menu.setEnabled(bool(codes) and bool(getattr(self.window.engine, "owns_alert_rules", False)))
        return menu

    def apply_settings(self, settings: UserSettings) -> Palette:
        """Volume and theme now; returns the direction colours for the window's views."""
        self.settings = settings
        self.window.notifier.set_volume(settings.sound_volume)
        self.palette = apply_theme(settings.theme, settings.colour_scheme)
        style_charts(self.window, is_dark(settings.theme))
        self.window.banner.set_palette(self.palette)
        if self.history is not None:
            self.history.set_palette(self.palette)
        return self.palette

    def _system_scheme_changed(self, *_args) -> None:
        if self.settings is not None and self.settings.theme == "system":
            self.window.apply_settings(self.settings)

    # -- test alert ---------------------------------------------------------------------------
    def test_alert(self) -> asyncio.Task[AlertCheckResult]:
        """Banner, sound and tray now; the Redis message in the background; then a summary."""
        code = self.window.selected_code() or DEFAULT_TEST_CODE
        name = self.window.engine.symbols.name(code)
        direction, self._next_direction = self._next_direction, ("down" if self._next_direction == "up" else "up")
        task = asyncio.ensure_future(run_alert_check(self.window.notifier, self.window.engine, code, name, direction))
        self._tasks.add(task)
        task.add_done_callback(self._check_done)
        return task

    def _check_done(self, task: asyncio.Task[AlertCheckResult]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("test alert failed", exc_info=task.exception())
            return
        self.last_check = task.result()
        lines = self.last_check.describe()
        log.info("test alert: %s", "; ".join(lines))
        box = QMessageBox(QMessageBox.Icon.Information, tr("test_alert.title"), "\n".join(lines),
                          QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName("testAlertResult")
        box.button(QMessageBox.StandardButton.Ok).setText(tr("toast.close"))
        box.open()
        self.result_box = box

    # -- alert history ------------------------------------------------------------------------
    def open_history(self) -> AlertHistoryDialog:
        if self.history is None:
            self.history = AlertHistoryDialog(self.window.engine, self.window.engine.symbols, self.palette,
                                              self.window)
            self.history.acknowledged.connect(self._acknowledged_in_history)
        self.history.show()
        self.history.raise_()
        self.history.table.setFocus()      # arrows and selection at once, not the first date's year
        self.history._spawn(self.history.load())
        return self.history

    def _acknowledged_in_history(self, alert_ids: list[str]) -> None:
        """Rows of today's alerts acknowledged in the history: clear their highlight too."""
        self.window.model.acknowledge(alert_ids)
        self.window.alert_dock.model.mark_acknowledged(alert_ids)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.history is not None:
            await self.history.idle()


def _menu(window: QMainWindow):
    menu = QMenu(window)
    menu.setObjectName("alertsMenu")
    return menu
