"""Alert log dock: today's alerts (stored + live), newest first; click selects the symbol."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeySequence, QShortcut
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


MUTED_GREY = QColor(140, 140, 140)


class AlertGroup:
    """One row of the log: the alerts of one move (same code and direction, same episode)."""

    __slots__ = ("alerts", "ids")

    def __init__(self, alert: AlertEvent) -> None:
        self.alerts: list[AlertEvent] = [alert]      # newest trigger first
        self.ids: set[str] = {alert.alert_id}

    @property
    def latest(self) -> AlertEvent:
        return self.alerts[0]

    @property
    def count(self) -> int:
        return len(self.alerts)

    def takes(self, a: AlertEvent) -> bool:
        """Same move: a "move" alert of the same code and direction whose base is this group's
        base, or whose trigger lies within the window of a trigger already in the group."""
        g = self.latest
        if a.kind != "move" or g.kind != "move" or a.stock_code != g.stock_code or a.direction != g.direction:
            return False
        window = max(a.window_seconds, g.window_seconds)
        return any((x.base_price, x.base_time) == (a.base_price, a.base_time)
                   or abs((a.trigger_time - x.trigger_time).total_seconds()) <= window
                   for x in self.alerts)

    def add(self, a: AlertEvent) -> None:
        pos = 0
        while pos < len(self.alerts) and self.alerts[pos].trigger_time > a.trigger_time:
            pos += 1
        self.alerts.insert(pos, a)
        self.ids.add(a.alert_id)


def direction_text(group: AlertGroup, short: bool) -> str:
    """The 방향 cell: direction, repeat count, VI, muted, late. ``short``: "VI" instead of
    "동적 VI 발동", so the cell fits the dock's narrow column at 1366 px (the tooltip has it all)."""
    a = group.latest
    text = tr(f"alert.level_{a.direction}" if a.kind == "level" else f"alert.{a.direction}")
    if group.count > 1:
        text += " " + tr("alert.count", count=group.count)
    if a.vi:
        text += " · " + tr("alert.vi_mark" if short else f"alert.vi.{a.vi}")
    if a.muted:
        text += " · " + tr("alert.muted")
    return f"{text} · {tr('alert.late', delay=a.delay_s)}" if a.late else text


class AlertLogModel(QAbstractTableModel):
    """Rows = alert groups (repeated alerts of one move are one row with a count), newest
    first. ``acked`` keeps which alerts the user has seen; a row is seen when all its alerts
    are. The stored/published alerts stay one per id (only the display groups them)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.groups: list[AlertGroup] = []
        self.acked: set[str] = set()
        self._ids: set[str] = set()
        self._latest: dict[tuple[str, str], AlertGroup] = {}   # (code, direction) → newest group
        self.palette: Palette = KOREAN
        self._bold = QFont()
        self._bold.setBold(True)

    @property
    def alerts(self) -> list[AlertEvent]:
        """Every alert shown (all rows' alerts), newest first."""
        return sorted((a for g in self.groups for a in g.alerts),
                      key=lambda a: a.trigger_time, reverse=True)

    def count(self, row: int) -> int:
        return self.groups[row].count

    def add(self, alert: AlertEvent, acknowledged: bool = False) -> bool:
        if alert.alert_id in self._ids:
            return False
        self._ids.add(alert.alert_id)
        if acknowledged:
            self.acked.add(alert.alert_id)
        key = (alert.stock_code, alert.direction)
        group = self._latest.get(key)
        if group is not None and group.takes(alert):
            row = self.groups.index(group)
            group.add(alert)
            # the row moves up to where its newest trigger belongs
            pos = row
            while pos > 0 and self.groups[pos - 1].latest.trigger_time < group.latest.trigger_time:
                pos -= 1
            if pos != row:
                self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), pos)
                self.groups.insert(pos, self.groups.pop(row))
                self.endMoveRows()
            self.dataChanged.emit(self.index(pos, 0), self.index(pos, len(_KEYS) - 1))
            return True
        group = AlertGroup(alert)
        if alert.kind == "move":
            newest = self._latest.get(key)
            if newest is None or newest.latest.trigger_time <= alert.trigger_time:
                self._latest[key] = group
        # newest first by trigger time; live alerts nearly always go to row 0
        pos = 0
        while pos < len(self.groups) and self.groups[pos].latest.trigger_time > alert.trigger_time:
            pos += 1
        self.beginInsertRows(QModelIndex(), pos, pos)
        self.groups.insert(pos, group)
        self.endInsertRows()
        return True

    def row_acked(self, row: int) -> bool:
        return self.groups[row].ids <= self.acked

    def ids_of(self, rows) -> list[str]:
        return [i for r in rows if r < len(self.groups) for i in sorted(self.groups[r].ids)]

    def clear(self) -> None:
        """Empty the log (a new business day: the dock shows that day's alerts only)."""
        self.beginResetModel()
        self.groups = []
        self.acked = set()
        self._ids = set()
        self.endResetModel()

    def mark_acknowledged(self, alert_ids) -> None:
        for aid in alert_ids:
            if aid in self._ids and aid not in self.acked:
                self.acked.add(aid)
                row = next(i for i, g in enumerate(self.groups) if aid in g.ids)
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(_KEYS) - 1))

    def unacknowledged(self) -> list[AlertEvent]:
        return [a for a in self.alerts if a.alert_id not in self.acked]

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        if self.groups:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.groups) - 1, len(_KEYS) - 1))

    def retranslate(self) -> None:
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, len(_KEYS) - 1)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.groups)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(_KEYS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(_KEYS):
            return tr(_KEYS[section])
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.groups):
            return None
        group = self.groups[index.row()]
        a = group.latest
        col = index.column()
        seen = group.ids <= self.acked
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return a.trigger_time.astimezone(KST).strftime("%H:%M:%S")
            if col == 1:
                return a.stock_code
            if col == 2:
                return a.stock_name
            if col == 3:
                return direction_text(group, short=True)
            if col == 4:
                return f"{a.change_pct:+.2f}%"
            if col == 5:
                return f"{a.trigger_price:,}"
        elif role == Qt.ItemDataRole.ForegroundRole:
            if a.muted:
                return MUTED_GREY
            if col in (3, 4):
                return self.palette.direction(1 if a.direction == "up" else -1)
        elif role == Qt.ItemDataRole.FontRole and not seen and not a.muted:
            return self._bold
        elif role == Qt.ItemDataRole.BackgroundRole and not seen and not a.muted:
            return QColor(self.palette.alert)
        elif role == Qt.ItemDataRole.ToolTipRole and col == 3 and group.count == 1:
            return direction_text(group, short=False)     # "VI" in the cell, "동적 VI 발동" here
        elif role == Qt.ItemDataRole.ToolTipRole and group.count > 1:
            return "\n".join(f"{x.trigger_time.astimezone(KST):%H:%M:%S} {x.change_pct:+.2f}% "
                             f"{x.trigger_price:,}" for x in group.alerts)
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
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)    # the name takes the rest
        header.setStretchLastSection(False)
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
        self.fit_columns()

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self.fit_columns()           # the window's font arrives after construction

    def fit_columns(self) -> None:
        """Every column but the name as wide as its header or its widest usual value, so the
        six fit a narrow dock (1366 px screens) without a horizontal scroll bar."""
        bold = QFont(self.view.font())
        bold.setBold(True)                # unacknowledged rows are bold
        fm = QFontMetrics(bold)
        up = tr("alert.up")
        direction = (f"{up} {tr('alert.count', count=9)}", f"{up} · {tr('alert.vi_mark')}")
        samples = (("00:00:00",), ("000000",), (), direction, ("+10.00%",), ("1,000,000",))
        for col, texts in enumerate(samples):
            if col == 2:
                continue
            head = str(self.model.headerData(col, Qt.Orientation.Horizontal) or "")
            self.view.setColumnWidth(col, max(map(fm.horizontalAdvance, (head, *texts))) + 16)

    def _clicked(self, index: QModelIndex) -> None:
        alert = self.model.data(index, Qt.ItemDataRole.UserRole)
        if alert is not None:
            self.codeActivated.emit(alert.stock_code)

    def _ack_rows(self, rows) -> None:
        ids = [i for i in self.model.ids_of(rows) if i not in self.model.acked]
        if ids:
            self.acknowledgeRequested.emit(ids)

    def acknowledge_selected(self) -> None:
        self._ack_rows(sorted({i.row() for i in self.view.selectionModel().selectedRows()}))

    def acknowledge_all(self) -> None:
        ids = [a.alert_id for a in self.model.unacknowledged()]
        if ids:
            self.acknowledgeRequested.emit(ids)
