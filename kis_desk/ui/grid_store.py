"""What the grid view paints from: every cell's roles held in C++ (a ``QStandardItemModel``).

Qt's default delegate asks its model for ~7 roles per cell on every paint; asked of a Python
model that is ~7 Python calls per cell, which was the largest Python cost left in the GUI thread.
Here the view's model is C++: ``WatchlistModel`` (all logic, all tests) stays the source, and
only the cells it signals as changed (``dataChanged``, already per changed cell) are copied in,
one ``setItemData`` per cell. Paints then never enter Python for text cells.

Rows are always in the source's order; when the source re-sorts, the rows are rewritten and the
view's persistent indexes (the selection) move with their codes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from .grid_columns import ALIGNMENTS, COLUMNS, NCOLS, Col
from .watchlist_model import ALERT_ROLE, CODE_ROLE, SPARK_KEY_ROLE, SPARK_ROLE, WatchlistModel

_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.BackgroundRole,
          Qt.ItemDataRole.FontRole)
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


class GridStore(QStandardItemModel):
    """A C++ copy of ``source``'s cells, updated from its signals (never read back)."""

    def __init__(self, source: WatchlistModel, parent=None) -> None:
        super().__init__(0, NCOLS, parent)
        self.source = source
        self.copies = 0                    # cells copied in (tests, benchmark)
        source.modelReset.connect(self._reset)
        source.dataChanged.connect(self._changed)
        source.layoutChanged.connect(self._relayout)
        source.headerDataChanged.connect(self.headerDataChanged)
        self._reset()

    # -- Qt API the view uses -----------------------------------------------------------------
    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return self.source.headerData(section, orientation, role)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.source.sort(column, order)      # the source sorts; _relayout follows

    # -- copying ------------------------------------------------------------------------------
    def _roles(self, r: int, c: int) -> dict[int, Any]:
        source = self.source
        row = source.state_at(r)
        cell = source.cells(r)[c]
        roles: dict[int, Any] = {role: value for role, value in zip(_ROLES, cell)}
        roles[Qt.ItemDataRole.ToolTipRole] = COLUMNS[c].tooltip(row, source)
        roles[ALERT_ROLE] = bool(row.alerts)
        if c == Col.SPARK:
            roles[SPARK_KEY_ROLE] = (row.code, row.spark.version, row.prev_close)
            roles[SPARK_ROLE] = (tuple(row.spark.points), row.prev_close)
        return roles

    def _fill(self) -> None:
        """Every cell, rows in the source's order (reset, re-sort)."""
        self.blockSignals(True)
        try:
            for r in range(self.rowCount()):
                code = self.source.state_at(r).code
                for c in range(NCOLS):
                    item = self.item(r, c)
                    if item is None:
                        item = QStandardItem()
                        item.setFlags(_FLAGS)
                        item.setData(ALIGNMENTS[c], Qt.ItemDataRole.TextAlignmentRole)
                        self.setItem(r, c, item)
                    item.setData(code, CODE_ROLE)
                    self.setItemData(self.index(r, c), self._roles(r, c))
        finally:
            self.blockSignals(False)

    def _reset(self) -> None:
        self.beginResetModel()
        self.blockSignals(True)
        self.setRowCount(0)
        self.setRowCount(self.source.rowCount())
        self.blockSignals(False)
        self._fill()
        self.endResetModel()

    def _changed(self, top_left: QModelIndex, bottom_right: QModelIndex, _roles=()) -> None:
        if not top_left.isValid() or not bottom_right.isValid():
            return
        top, bottom, left, right = top_left.row(), bottom_right.row(), top_left.column(), bottom_right.column()
        self.blockSignals(True)
        try:
            for r in range(top, bottom + 1):
                for c in range(left, right + 1):
                    self.setItemData(self.index(r, c), self._roles(r, c))
        finally:
            self.blockSignals(False)
        self.copies += (bottom - top + 1) * (right - left + 1)
        self.dataChanged.emit(self.index(top, left), self.index(bottom, right))

    def _relayout(self) -> None:
        """The source re-sorted: rewrite the rows, move persistent indexes with their codes."""
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        codes = [p.data(CODE_ROLE) for p in persistent]
        self._fill()
        moved = []
        for p, code in zip(persistent, codes):
            r = self.source.row_of(code) if code is not None else None
            moved.append(self.index(r, p.column()) if r is not None else QModelIndex())
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()
