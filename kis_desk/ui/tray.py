"""The tray icon, and "closing the window keeps collecting".

With the setting on and a system tray present, closing the main window only hides it: the
collector keeps collecting and storing. The first time, a tray message says so (remembered in
the settings, so never again). File ▸ Quit and the tray menu's Quit really quit. Without a
tray (offscreen, a bare X server) closing always quits — a hidden window nobody can bring back
would be a collector nobody can stop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QMainWindow, QMenu, QSystemTrayIcon

from ..settings import SettingsStore, UserSettings
from .i18n import tr

log = logging.getLogger(__name__)


class TrayKeeper:
    """Owns the tray icon and decides whether a close hides the window or quits."""

    def __init__(self, window: QMainWindow, quit: Callable[[], None], available: bool | None = None) -> None:
        """``available``: None → ask Qt; ``quit``: the window's real quit (File ▸ Quit)."""
        self.window = window
        self.available = QSystemTrayIcon.isSystemTrayAvailable() if available is None else available
        self.quitting = False
        self.hints = 0                      # one-time "still running" messages shown
        self.tray: QSystemTrayIcon | None = None
        if self.available:
            self.tray = QSystemTrayIcon(window.windowIcon(), window)
            self.tray.activated.connect(lambda _reason: self.show_window())
            self.menu = QMenu(window)
            self.show_action = self.menu.addAction("", self.show_window)
            self.quit_action = self.menu.addAction("", quit)
            self.tray.setContextMenu(self.menu)
            self.retranslate()
            self.tray.show()

    def retranslate(self) -> None:
        if self.tray is not None:
            self.show_action.setText(tr("tray.show"))
            self.quit_action.setText(tr("action.quit").replace("&", ""))

    def show_window(self) -> None:
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def keeps_running(self, settings: UserSettings) -> bool:
        """Whether a close now should only hide the window."""
        return self.tray is not None and settings.keep_running_in_tray and not self.quitting

    def hide_window(self, settings: UserSettings, store: SettingsStore) -> None:
        """Hide instead of closing; the first time ever, say that collecting goes on."""
        self.window.hide()
        if settings.tray_hint_shown or self.tray is None:
            return
        self.tray.showMessage(tr("app.title"), tr("tray.still_running"),
                              QSystemTrayIcon.MessageIcon.Information, 8000)
        self.hints += 1
        settings.tray_hint_shown = True
        try:
            store.save(settings)
        except (OSError, ValueError) as exc:
            log.warning("could not save settings: %s", exc)
