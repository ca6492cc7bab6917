"""What the grid view paints from: every cell's roles held in C++ (a ``QStandardItemModel``).

Qt's default delegate asks its model for ~7 roles per cell on every paint; asked of a Python
model that is ~7 Python calls per cell, which was the largest Python cost left in the GUI thread.
Here the view's model is C++: ``WatchlistModel`` (all logic, all tests) stays the source, and
only the cells it signals as changed (``dataChanged``, already per changed cell) are copied in.
The store keeps what it last copied per cell, so a trade's cell costs one ``setData`` per role
that differs (usually the text alone), not a map of every role. Paints never enter Python for
text cells. Tooltips are not copied: the view asks the source when the pointer rests on a cell
(``GridView.viewportEvent``), instead of every copy computing text nobody may ever see.

Rows are always in the source's order; when the source re-sorts, the rows are rewritten and the
view's persistent indexes (the selection) move with their codes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from .grid_columns import ALIGNMENTS, NCOLS, Col
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
        self._items: list[list[QStandardItem]] = []     # [row][column], as placed by _fill
        self._held: list[list[tuple | None]] = []       # [row][column]: the cell last copied in
        self._spark_held: list[tuple | None] = []       # [row]: SPARK_KEY_ROLE last copied in
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
    def _fill(self) -> None:
        """Every cell, rows in the source's order (reset, re-sort)."""
        self.blockSignals(True)
        try:
            self._items, self._held, self._spark_held = [], [], []
            for r in range(self.rowCount()):
                code = self.source.state_at(r).code
                items = []
                for c in range(NCOLS):
                    item = self.item(r, c)
                    if item is None:
                        item = QStandardItem()
                        item.setFlags(_FLAGS)
                        item.setData(ALIGNMENTS[c], Qt.ItemDataRole.TextAlignmentRole)
                        self.setItem(r, c, item)
                    item.setData(code, CODE_ROLE)
                    items.append(item)
                self._items.append(items)
                self._held.append([None] * NCOLS)
                self._spark_held.append(None)
                self._copy(r, 0, NCOLS - 1, True)
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

    def _copy(self, r: int, left: int, right: int, whole: bool) -> None:
        """Row ``r``'s cells ``left..right``. ``whole`` (a touched row: alerts, feed, palette):
        every role and the alert flag. Otherwise (trades: the model signals only the cells that
        changed) only the roles that differ from what was copied last."""
        source = self.source
        row = source.state_at(r)
        cells = source.cells(r)
        items, held = self._items[r], self._held[r]
        alert = bool(row.alerts)
        for c in range(left, right + 1):
            cell, old, item = cells[c], held[c], items[c]
            if whole or old is None:
                for role, value in zip(_ROLES, cell):
                    item.setData(value, role)
            elif cell != old:
                for role, value, was in zip(_ROLES, cell, old):
                    if value is not was and value != was:
                        item.setData(value, role)
            if whole:
                item.setData(alert, ALERT_ROLE)
            held[c] = cell
        if left <= Col.SPARK <= right:
            self._copy_spark(r, row)

    def _copy_spark(self, r: int, row) -> None:
        key = (row.code, row.spark.version, row.prev_close)
        if key != self._spark_held[r]:
            item = self._items[r][Col.SPARK]
            item.setData(key, SPARK_KEY_ROLE)
            item.setData((tuple(row.spark.points), row.prev_close), SPARK_ROLE)
            self._spark_held[r] = key

    def _changed(self, top_left: QModelIndex, bottom_right: QModelIndex, _roles=()) -> None:
        if not top_left.isValid() or not bottom_right.isValid():
            return
        top, bottom, left, right = top_left.row(), bottom_right.row(), top_left.column(), bottom_right.column()
        whole = left == 0 and right == NCOLS - 1      # a touched row or everything: every role
        self.blockSignals(True)
        try:
            for r in range(top, bottom + 1):
                self._copy(r, left, right, whole)
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
