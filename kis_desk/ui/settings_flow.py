"""Settings applied live: the dialog's result goes to the running engine at once.

Appearance and sound are the window's (``MainWindow.apply_settings``); environment, keys,
database, Redis and the alert rule go to the engine through ``EngineHandle.apply_settings``
(an attached desktop changes only its database and Redis). An engine that could not start
(bad keys, say) is started again with the new settings (``retry``). The dialog's storage rows
(size, days kept) are read through the engine once it is open (``show_storage_info``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import shiboken6

from ..core.errors import describe
from ..engine.handle import EngineHandle
from ..settings import SettingsStore, UserSettings
from .i18n import tr
from .settings_dialog import SettingsDialog

log = logging.getLogger(__name__)


def settings_dialog(engine: EngineHandle, store: SettingsStore, settings: UserSettings, parent,
                    tray_available: bool) -> SettingsDialog:
    return SettingsDialog(store, settings, parent, tray_available=tray_available, remote=engine.attached)


async def show_storage_info(engine: EngineHandle, dialog: SettingsDialog) -> None:
    """Fill the dialog's storage rows from the engine (off the GUI thread); the dialog may have
    been closed meanwhile."""
    info = None
    if engine.has_storage:
        try:
            info = await engine.storage_info()
        except Exception as exc:  # noqa: BLE001 - informational: the dialog says "unavailable"
            log.warning("storage info unavailable: %s", describe(exc))
    if shiboken6.isValid(dialog):
        dialog.show_storage(info)


async def apply_to_engine(engine: EngineHandle, store: SettingsStore, previous: UserSettings,
                          settings: UserSettings, say: Callable[[str, int], None],
                          retry: Callable[[], None]) -> list[str]:
    """``previous`` → ``settings`` applied to ``engine``; ``say`` shows the outcome in the
    status bar. Returns the fields changed (none when the engine refused them)."""
    try:
        changed = await engine.apply_settings(settings, store, previous)
    except ValueError as exc:      # ConfigError: the engine kept what it had
        say(tr("settings.apply_failed", message=str(exc)), 15000)
        return []
    if not engine.has_storage:     # it is not running (it could not start): start it again
        retry()
    elif changed:
        say(tr("settings.applied", what=", ".join(changed)), 8000)
    return changed
