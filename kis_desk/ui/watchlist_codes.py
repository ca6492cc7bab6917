"""One watchlist's codes as a Qt list model (drag and drop reorders) and as a CSV file.

Apart from the editor widget: this is the list's data and its file format — what a drop, an
import or an export does to the codes — testable without any widget; the editor only lays out
buttons around it and turns edits into intents.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from ..config import is_valid_stock_code

MIME = "application/x-kis-desk-rows"


def parse_csv(text: str) -> tuple[list[str], list[int]]:
    """``code[,name]`` per line, optional header, ``#`` comments → (codes, bad line numbers)."""
    codes: list[str] = []
    bad: list[int] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        code = row[0].strip().upper()
        if is_valid_stock_code(code):
            if code not in codes:
                codes.append(code)
        elif number == 1 and not any(ch.isdigit() for ch in code):
            continue   # header line ("code,name")
        else:
            bad.append(number)
    return codes, bad


def read_text_file(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp949")   # files saved by Korean Excel


def csv_text(codes: Sequence[str], name_of: Callable[[str], str]) -> str:
    """``code,name`` with a header line (the editor writes it as UTF-8 with BOM for Excel)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "name"])
    for c in codes:
        w.writerow([c, name_of(c)])
    return buf.getvalue()


class CodesModel(QAbstractListModel):
    """The current list's codes; drag and drop moves rows within the list."""

    orderChanged = Signal()

    def __init__(self, names, parent=None) -> None:
        super().__init__(parent)
        self._name_of = names
        self.codes: list[str] = []

    def set_codes(self, codes: Sequence[str]) -> None:
        self.beginResetModel()
        self.codes = list(dict.fromkeys(codes))
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.codes)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.codes):
            return None
        code = self.codes[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{code}  {self._name_of(code)}"
        if role == Qt.ItemDataRole.UserRole:
            return code
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        return base | Qt.ItemFlag.ItemNeverHasChildren

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [MIME]

    def mimeData(self, indexes) -> QMimeData:
        rows = sorted({i.row() for i in indexes if i.isValid()})
        mime = QMimeData()
        mime.setData(MIME, QByteArray(",".join(map(str, rows)).encode()))
        return mime

    def canDropMimeData(self, data, action, row, column, parent) -> bool:
        return data.hasFormat(MIME)

    def dropMimeData(self, data: QMimeData, action: Qt.DropAction, row: int, column: int,
                     parent: QModelIndex | QPersistentModelIndex) -> bool:
        """Move the dragged rows to ``row``.

        Returns False on purpose after moving: the view then treats the drop as not taken and
        does not delete the "moved-out" source rows itself (we already moved them).
        """
        if not data.hasFormat(MIME):
            return False
        text = bytes(data.data(MIME).data()).decode()
        rows = [int(r) for r in text.split(",") if r]
        if not rows:
            return False
        if row < 0:
            row = parent.row() if parent.isValid() else len(self.codes)
        self.move_rows(rows, row)
        return False

    def move_rows(self, rows: Sequence[int], dest: int) -> None:
        """Move rows (any selection) so they sit, in order, before original row ``dest``."""
        rows = sorted(r for r in set(rows) if 0 <= r < len(self.codes))
        if not rows:
            return
        moving = [self.codes[r] for r in rows]
        before = sum(1 for r in rows if r < dest)
        rest = [c for i, c in enumerate(self.codes) if i not in set(rows)]
        dest = max(0, min(len(rest), dest - before))
        new = rest[:dest] + moving + rest[dest:]
        if new != self.codes:
            self.set_codes(new)
            self.orderChanged.emit()


__all__ = ["MIME", "CodesModel", "csv_text", "parse_csv", "read_text_file"]
