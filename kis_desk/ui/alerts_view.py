"""Alert log dock: today's alerts (stored + live), newest first; click selects the symbol."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.events import AlertEvent
from ..protocol.records import KST
from .i18n import tr
from .theme import KOREAN, Palette

_KEYS = ("alert.col.time", "alert.col.code", "alert.col.name", "alert.col.direction",
         "alert.col.change", "alert.col.price")


class AlertLogModel(QAbstractTableModel):
    """Rows = alerts, newest first. ``acked`` keeps which ones the user has seen."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.alerts: list[AlertEvent] = []
        self.acked: set[str] = set()
        self._ids: set[str] = set()
        self.palette: Palette = KOREAN
        self._bold = QFont()
        self._bold.setBold(True)

    def add(self, alert: AlertEvent, acknowledged: bool = False) -> bool:
        if alert.alert_id in self._ids:
            return False
        self._ids.add(alert.alert_id)
        if acknowledged:
            self.acked.add(alert.alert_id)
        # newest first by trigger time; live alerts nearly always go to row 0
        pos = 0
        while pos < len(self.alerts) and self.alerts[pos].trigger_time > alert.trigger_time:
            pos += 1
        self.beginInsertRows(QModelIndex(), pos, pos)
        self.alerts.insert(pos, alert)
        self.endInsertRows()
        return True

    def clear(self) -> None:
        """Empty the log (a new business day: the dock shows that day's alerts only)."""
        self.beginResetModel()
        self.alerts = []
        self.acked = set()
        self._ids = set()
        self.endResetModel()

    def mark_acknowledged(self, alert_ids) -> None:
        for aid in alert_ids:
            if aid in self._ids and aid not in self.acked:
                self.acked.add(aid)
                row = next(i for i, a in enumerate(self.alerts) if a.alert_id == aid)
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(_KEYS) - 1))

    def unacknowledged(self) -> list[AlertEvent]:
        return [a for a in self.alerts if a.alert_id not in self.acked]

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        if self.alerts:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.alerts) - 1, len(_KEYS) - 1))

    def retranslate(self) -> None:
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(_KEYS) - 1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.alerts)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(_KEYS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(_KEYS):
            return tr(_KEYS[section])
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.alerts):
            return None
        a = self.alerts[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return a.trigger_time.astimezone(KST).strftime("%H:%M:%S")
            if col == 1:
                return a.stock_code
            if col == 2:
                return a.stock_name
            if col == 3:
                text = tr(f"alert.{a.direction}")
                return f"{text} · {tr('alert.late', delay=a.delay_s)}" if a.late else text
            if col == 4:
                return f"{a.change_pct:+.2f}%"
            if col == 5:
                return f"{a.trigger_price:,}"
        elif role == Qt.ItemDataRole.ForegroundRole and col in (3, 4):
            return self.palette.direction(1 if a.direction == "up" else -1)
        elif role == Qt.ItemDataRole.FontRole and a.alert_id not in self.acked:
            return self._bold
        elif role == Qt.ItemDataRole.BackgroundRole and a.alert_id not in self.acked:
            return QColor(self.palette.alert)
        elif role == Qt.ItemDataRole.UserRole:
            return a
        elif role == Qt.ItemDataRole.TextAlignmentRole and col in (4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class AlertDock(QDockWidget):
    """The log plus acknowledge buttons. Signals: ``codeActivated(code)``, ``acknowledge(ids)``."""

    codeActivated = Signal(str)
    acknowledgeRequested = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("alertDock")
        self.model = AlertLogModel(self)
        self.view = QTableView()
        self.view.setObjectName("alertTable")
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(20)
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.view.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((72, 62, 110, 70, 70)):
            self.view.setColumnWidth(col, width)
        self.view.clicked.connect(self._clicked)
        self.view.doubleClicked.connect(lambda idx: self._ack_rows([idx.row()]))
        QShortcut(QKeySequence(Qt.Key.Key_Space), self.view, activated=self.acknowledge_selected)
        self.ack_button = QPushButton()
        self.ack_button.clicked.connect(self.acknowledge_selected)
        self.ack_all_button = QPushButton()
        self.ack_all_button.clicked.connect(self.acknowledge_all)
        buttons = QHBoxLayout()
        buttons.addWidget(self.ack_button)
        buttons.addWidget(self.ack_all_button)
        buttons.addStretch(1)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view)
        layout.addLayout(buttons)
        self.setWidget(box)
        self.retranslate()

    def retranslate(self) -> None:
        self.setWindowTitle(tr("dock.alerts"))
        self.ack_button.setText(tr("alert.ack"))
        self.ack_all_button.setText(tr("alert.ack_all"))
        self.model.retranslate()

    def _clicked(self, index: QModelIndex) -> None:
        alert = self.model.data(index, Qt.ItemDataRole.UserRole)
        if alert is not None:
            self.codeActivated.emit(alert.stock_code)

    def _ack_rows(self, rows) -> None:
        ids = [self.model.alerts[r].alert_id for r in rows if r < len(self.model.alerts)]
        ids = [i for i in ids if i not in self.model.acked]
        if ids:
            self.acknowledgeRequested.emit(ids)

    def acknowledge_selected(self) -> None:
        self._ack_rows(sorted({i.row() for i in self.view.selectionModel().selectedRows()}))

    def acknowledge_all(self) -> None:
        ids = [a.alert_id for a in self.model.unacknowledged()]
        if ids:
            self.acknowledgeRequested.emit(ids)
