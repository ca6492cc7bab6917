"""Watchlist editor: named lists, add by code or name (with completion), remove, drag to reorder,
CSV import/export, undo.

The editor is a view: it validates input and emits *intents* (``codesEdited``,
``createRequested`` …); the main window persists them through the repository (off the GUI
thread) and applies the codes live via ``EngineHandle.set_watchlist``, then calls ``set_lists``.
What a typed text means is :mod:`symbol_input`'s job; the list's model and its CSV format are
:mod:`watchlist_codes`'; this module is the widget, the edits' undo and the named-list dialogs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.handle import SymbolLookup
from .appearance import text_colour
from .i18n import tr
from .symbol_input import InputError, resolve_symbol, symbol_completer
from .watchlist_codes import CodesModel, csv_text, parse_csv, read_text_file

__all__ = ["InputError", "WatchlistEditor", "parse_csv", "resolve_symbol"]   # (and their homes)

UNDO_DEPTH = 50
MESSAGE_SECONDS = 10.0


class WatchlistEditor(QWidget):
    codesEdited = Signal(str, list)         # watchlist name, new codes (already validated)
    switchRequested = Signal(str)
    createRequested = Signal(str)
    renameRequested = Signal(str, str)
    deleteRequested = Signal(str)
    message = Signal(str, bool)             # text, is_warning

    def __init__(self, symbols: SymbolLookup, parent=None) -> None:
        super().__init__(parent)
        self._undo: list[tuple[str, list[str]]] = []     # (list name, codes before an edit)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(lambda: self.status.clear())
        self._shown_codes: list[str] | None = None
        self.symbols = symbols
        self.names: list[str] = []
        self.current = ""
        self.lists = QComboBox()
        self.lists.setObjectName("watchlistCombo")
        self.lists.activated.connect(self._switch)
        self.new_button, self.rename_button, self.delete_button = QPushButton(), QPushButton(), QPushButton()
        self.new_button.clicked.connect(self._new)
        self.rename_button.clicked.connect(self._rename)
        self.delete_button.clicked.connect(self._delete)
        self.input = QLineEdit()
        self.input.setObjectName("addSymbol")
        self.completer = symbol_completer(symbols, self)
        self.input.setCompleter(self.completer)
        self.input.returnPressed.connect(self.add_from_input)
        self.add_button = QPushButton()
        self.add_button.clicked.connect(self.add_from_input)
        self.model = CodesModel(symbols.name, self)
        self.model.orderChanged.connect(self._emit_codes)
        self.view = QListView()
        self.view.setObjectName("watchlistCodes")
        self.view.setModel(self.model)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setDragEnabled(True)
        self.view.setAcceptDrops(True)
        self.view.setDropIndicatorShown(True)
        self.view.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.view.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.remove_button, self.up_button, self.down_button = QPushButton(), QPushButton(), QPushButton()
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        self.import_button, self.export_button = QPushButton(), QPushButton()
        self.import_button.clicked.connect(self._import_dialog)
        self.export_button.clicked.connect(self._export_dialog)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.count = QLabel()

        top = QHBoxLayout()
        top.addWidget(self.lists, 1)
        for b in (self.new_button, self.rename_button, self.delete_button):
            top.addWidget(b)
        add = QHBoxLayout()
        add.addWidget(self.input, 1)
        add.addWidget(self.add_button)
        edit = QHBoxLayout()
        for b in (self.remove_button, self.up_button, self.down_button):
            edit.addWidget(b)
        edit.addStretch(1)
        edit.addWidget(self.count)
        io_row = QHBoxLayout()
        io_row.addWidget(self.import_button)
        io_row.addWidget(self.export_button)
        io_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(add)
        layout.addWidget(self.view, 1)
        layout.addLayout(edit)
        layout.addLayout(io_row)
        layout.addWidget(self.status)
        self.retranslate()

    def retranslate(self) -> None:
        self.new_button.setText(tr("wl.new"))
        self.rename_button.setText(tr("wl.rename"))
        self.delete_button.setText(tr("wl.delete"))
        self.input.setPlaceholderText(tr("wl.add_placeholder"))
        self.add_button.setText(tr("wl.add"))
        self.remove_button.setText(tr("wl.remove"))
        self.up_button.setText(tr("wl.up"))
        self.down_button.setText(tr("wl.down"))
        self.import_button.setText(tr("wl.import"))
        self.export_button.setText(tr("wl.export"))
        self.count.setText(tr("wl.count", count=len(self.model.codes)))

    # -- state from the window ----------------------------------------------------------------
    def set_lists(self, names: Sequence[str], current: str, codes: Sequence[str]) -> None:
        self.names, self.current = list(names), current
        self.lists.blockSignals(True)
        self.lists.clear()
        self.lists.addItems(self.names)
        if current in self.names:
            self.lists.setCurrentIndex(self.names.index(current))
        self.lists.blockSignals(False)
        self.model.set_codes(codes)
        self._shown_codes = list(self.model.codes)
        self.count.setText(tr("wl.count", count=len(self.model.codes)))

    def codes(self) -> list[str]:
        return list(self.model.codes)

    def show_message(self, text: str, warning: bool = False) -> None:
        """Shown for ``MESSAGE_SECONDS`` (a message that stays reads as current when it is not)."""
        self.status.setText(text)
        self.status.setToolTip(text)
        self.status.setStyleSheet(f"color: {text_colour('error' if warning else 'good')};")
        self._message_timer.start(int(MESSAGE_SECONDS * 1000))
        self.message.emit(text, warning)

    # -- edits --------------------------------------------------------------------------------
    def add_text(self, text: str) -> bool:
        """Add one symbol from user text; False (with a message) when refused."""
        try:
            code, warning = resolve_symbol(text, self.symbols)
        except InputError as exc:
            self.show_message(str(exc), True)
            return False
        if code in self.model.codes:
            self.show_message(tr("wl.duplicate", code=code), True)
            return False
        self.model.set_codes(self.model.codes + [code])
        self.show_message(warning or tr("wl.added", code=code, name=self.symbols.name(code)), bool(warning))
        self._emit_codes()
        return True

    def add_from_input(self) -> None:
        if self.add_text(self.input.text()):
            self.input.clear()

    def remove_codes(self, codes: Sequence[str]) -> None:
        drop = set(codes)
        new = [c for c in self.model.codes if c not in drop]
        if new != self.model.codes:
            self.model.set_codes(new)
            self._emit_codes()

    def remove_selected(self) -> None:
        rows = {i.row() for i in self.view.selectionModel().selectedIndexes()}
        self.remove_codes([self.model.codes[r] for r in rows if r < len(self.model.codes)])

    def move_selected(self, delta: int) -> None:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        if not rows:
            return
        moving = [self.model.codes[r] for r in rows]
        dest = rows[0] - 1 if delta < 0 else rows[-1] + 2
        if dest < 0 or dest > len(self.model.codes):
            return
        self.model.move_rows(rows, dest)
        sel = self.view.selectionModel()
        sel.clearSelection()
        for code in moving:
            idx = self.model.index(self.model.codes.index(code))
            sel.select(idx, sel.SelectionFlag.Select)

    def import_csv(self, path: str | Path) -> int:
        """Append the file's codes (duplicates skipped); returns how many were added."""
        try:
            codes, bad = parse_csv(read_text_file(Path(path)))
        except (OSError, UnicodeDecodeError) as exc:
            self.show_message(str(exc), True)
            return 0
        added = [c for c in codes if c not in self.model.codes]
        if added:
            self.model.set_codes(self.model.codes + added)
            self._emit_codes()
        msgs = [tr("wl.imported", count=len(added))]
        unknown = [c for c in added if c not in self.symbols]
        if unknown:
            msgs.append(tr("wl.unknown", code=", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")))
        if bad:
            msgs.append(tr("wl.import_bad", count=len(bad), lines=", ".join(map(str, bad[:10]))))
        self.show_message("\n".join(msgs), bool(bad or unknown))
        return len(added)

    def export_csv(self, path: str | Path) -> None:
        """``code,name`` with a header; UTF-8 with BOM so Excel shows Hangul."""
        Path(path).write_text(csv_text(self.model.codes, self.symbols.name), encoding="utf-8-sig")
        self.show_message(tr("wl.exported", count=len(self.model.codes), path=str(path)))

    def _emit_codes(self, undoing: bool = False) -> None:
        codes = list(self.model.codes)
        before = self._shown_codes
        if not undoing and before is not None and before != codes:
            self._undo.append((self.current, before))
            del self._undo[:-UNDO_DEPTH]
        self._shown_codes = codes
        self.count.setText(tr("wl.count", count=len(codes)))
        self.codesEdited.emit(self.current, codes)

    # -- undo (Ctrl+Z): edits of the list shown, newest first ----------------------------------
    def can_undo(self) -> bool:
        return any(name == self.current for name, _ in self._undo)

    def undo(self) -> bool:
        """Put the shown list back as it was before its last edit (add, delete, move, import)."""
        while self._undo:
            name, codes = self._undo.pop()
            if name == self.current:
                self.model.set_codes(codes)
                self._emit_codes(undoing=True)
                self.show_message(tr("wl.undone", count=len(codes)))
                return True
        return False

    # -- named lists (dialogs) ----------------------------------------------------------------
    def _switch(self, i: int) -> None:
        if 0 <= i < len(self.names) and self.names[i] != self.current:
            self.switchRequested.emit(self.names[i])

    def validate_new_name(self, name: str, old: str | None = None) -> str:
        name = name.strip()
        if not name:
            raise InputError(tr("wl.name_empty"))
        if name != old and name in self.names:
            raise InputError(tr("wl.name_taken", name=name))
        return name

    def _ask_name(self, title: str, default: str = "") -> str | None:
        text, ok = QInputDialog.getText(self, title, tr("wl.name_prompt"), text=default)
        return text if ok else None

    def _new(self) -> None:
        name = self._ask_name(tr("wl.new_title"))
        if name is None:
            return
        try:
            self.createRequested.emit(self.validate_new_name(name))
        except InputError as exc:
            self.show_message(str(exc), True)

    def _rename(self) -> None:
        name = self._ask_name(tr("wl.rename_title"), self.current)
        if name is None:
            return
        try:
            new = self.validate_new_name(name, self.current)
        except InputError as exc:
            self.show_message(str(exc), True)
            return
        if new != self.current:
            self.renameRequested.emit(self.current, new)

    def _delete(self) -> None:
        if len(self.names) <= 1:
            self.show_message(tr("wl.last_list"), True)
            return
        answer = QMessageBox.question(self, tr("wl.error_title"), tr("wl.delete_confirm", name=self.current))
        if answer == QMessageBox.StandardButton.Yes:
            self.deleteRequested.emit(self.current)

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("wl.import"), "", tr("wl.csv_filter"))
        if path:
            self.import_csv(path)

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("wl.export"), f"{self.current or 'watchlist'}.csv",
                                              tr("wl.csv_filter"))
        if path:
            self.export_csv(path)
