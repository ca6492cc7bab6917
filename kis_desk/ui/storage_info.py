"""The Settings dialog's storage rows: database size, the days of raw trades kept, retention.

The numbers come from the engine (``EngineHandle.storage_info``, read off the GUI thread after
the dialog opened); the retention is editable (``UserSettings.retention_days``, applied to the
running collector at once) except on an attached desktop, where it is the remote collector's.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFormLayout, QLabel, QSpinBox

from ..engine.storage.stats import human_bytes
from ..settings import MAX_RETENTION_DAYS
from .i18n import tr


class StorageRows:
    """Adds its rows to ``form``; :meth:`show` fills in what the engine said."""

    def __init__(self, form: QFormLayout, retention_days: int, *, remote: bool = False) -> None:
        self.size = QLabel(tr("settings.storage_loading"))
        self.size.setObjectName("storageSize")
        self.days = QLabel(tr("settings.storage_loading"))
        self.days.setObjectName("storageDays")
        self.days.setWordWrap(True)
        self.retention = QSpinBox()
        self.retention.setObjectName("retentionDays")
        self.retention.setRange(0, MAX_RETENTION_DAYS)
        self.retention.setSpecialValueText(tr("settings.retention_forever"))    # shown for 0
        self.retention.setSuffix(tr("settings.days_suffix"))
        self.retention.setValue(retention_days)
        self.retention.setToolTip(tr("settings.retention_note"))
        self.retention.setEnabled(not remote)
        self.remote = remote
        form.addRow(tr("settings.db_size"), self.size)
        form.addRow(tr("settings.trade_days"), self.days)
        form.addRow(tr("settings.retention"), self.retention)

    def show(self, info: Any | None) -> None:
        """``info``: a ``StorageInfo``, or None when the storage cannot be read now."""
        if info is None:
            self.size.setText(tr("settings.storage_unavailable"))
            self.days.setText(tr("settings.storage_unavailable"))
            return
        self.size.setText(human_bytes(info.size_bytes))
        if info.oldest_trade_day is None:
            self.days.setText(tr("settings.trade_days_none"))
        else:
            self.days.setText(tr("settings.trade_days_value", days=info.trade_days,
                                 oldest=info.oldest_trade_day.isoformat(),
                                 newest=info.newest_trade_day.isoformat()))
        if self.remote:                  # the remote collector's retention, in effect
            self.retention.setValue(info.retention_days)
