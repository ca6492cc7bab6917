"""The alert-rules dialog: thresholds per symbol or watchlist, price levels (목표가), mutes.

Everything applies at once through ``EngineHandle.set_alert_rules`` (no restart); an attached
desktop shows the collector's rules read-only. The grid's row context menu opens it on one
symbol through :func:`open_alert_settings`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..engine.alert_rules import AlertRules, Level, Rule
from ..protocol.records import KST
from .i18n import tr

log = logging.getLogger(__name__)

KIND_SYMBOL = "symbol"
KIND_WATCHLIST = "watchlist"


def _cell(text: str) -> QTableWidgetItem:
    return QTableWidgetItem(text)


def _number(text: str, what: str, integer: bool = False) -> float | int | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r}") from None
    if value <= 0:
        raise ValueError(f"{what}: {text!r}")
    return value


class AlertRulesDialog(QDialog):
    """Edits a copy of ``engine.alert_rules``; OK/Apply hand the new value to the engine."""

    def __init__(self, engine: Any, watchlists: list[str] | None = None,
                 parent: QWidget | None = None, spawn=None) -> None:
        super().__init__(parent)
        self.setObjectName("alertRulesDialog")
        self.engine = engine
        self.watchlists = list(watchlists or [])
        self._spawn = spawn or (lambda coro: asyncio.ensure_future(coro))
        self.rules: AlertRules = engine.alert_rules
        # an attached desktop: the collector on another host owns the rules
        self.read_only = not getattr(engine, "owns_alert_rules", False)
        self.setWindowTitle(tr("rules.title"))

        self.defaults = QLabel()
        self.overrides = QTableWidget(0, 4)
        self.overrides.setObjectName("overrideTable")
        self.overrides.setHorizontalHeaderLabels(
            ["", tr("rules.col.target"), tr("rules.col.threshold"), tr("rules.col.window")])
        self.levels = QTableWidget(0, 4)
        self.levels.setObjectName("levelTable")
        self.levels.setHorizontalHeaderLabels(
            [tr("rules.col.code"), tr("rules.col.above"), tr("rules.col.below"), tr("rules.col.mute")])
        for table in (self.overrides, self.levels):
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
            table.verticalHeader().setVisible(False)
        self.mute_all = QCheckBox(tr("rules.mute_all"))
        self.mute_minutes = QSpinBox()
        self.mute_minutes.setRange(1, 24 * 60)
        self.mute_minutes.setValue(30)
        self.mute_minutes.setSuffix(tr("rules.minutes"))
        self.mute_state = QLabel()
        self.message = QLabel()
        self.message.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.defaults)
        layout.addWidget(self._group(tr("rules.overrides"), self.overrides, self._add_override))
        layout.addWidget(self._group(tr("rules.levels"), self.levels, self._add_level))
        mute = QHBoxLayout()
        mute.addWidget(self.mute_all)
        mute.addWidget(self.mute_minutes)
        mute.addWidget(self.mute_state, 1)
        layout.addLayout(mute)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.Apply)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(tr("dialog.ok"))
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setText(tr("dialog.cancel"))
        buttons.button(QDialogButtonBox.StandardButton.Apply).setText(tr("rules.apply"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.apply)
        self.buttons = buttons
        layout.addWidget(buttons)
        if self.read_only:
            self.message.setText(tr("rules.remote"))
            for w in (self.overrides, self.levels, self.mute_all, self.mute_minutes):
                w.setEnabled(False)
            buttons.button(QDialogButtonBox.StandardButton.Apply).setEnabled(False)
        self.load(self.rules)
        self.resize(560, 520)

    def _group(self, title: str, table: QTableWidget, add) -> QGroupBox:
        box = QGroupBox(title)
        v = QVBoxLayout(box)
        v.addWidget(table)
        row = QHBoxLayout()
        add_button, remove_button = QPushButton(tr("rules.add")), QPushButton(tr("rules.remove"))
        add_button.clicked.connect(lambda: add())
        remove_button.clicked.connect(lambda: self._remove_rows(table))
        add_button.setEnabled(not self.read_only)
        remove_button.setEnabled(not self.read_only)
        row.addWidget(add_button)
        row.addWidget(remove_button)
        row.addStretch(1)
        v.addLayout(row)
        return box

    # -- rows ---------------------------------------------------------------------------------
    def _kind_box(self, kind: str) -> QComboBox:
        box = QComboBox()
        box.addItem(tr("rules.col.code"), KIND_SYMBOL)
        box.addItem(tr("dock.watchlist"), KIND_WATCHLIST)
        box.setCurrentIndex(1 if kind == KIND_WATCHLIST else 0)
        return box

    def _add_override(self, kind: str = KIND_SYMBOL, target: str = "",
                      rule: Rule | None = None) -> int:
        pct, win = rule or (self.rules.threshold_pct, self.rules.window_seconds)
        row = self.overrides.rowCount()
        self.overrides.insertRow(row)
        self.overrides.setCellWidget(row, 0, self._kind_box(kind))
        self.overrides.setItem(row, 1, _cell(target))
        self.overrides.setItem(row, 2, _cell(f"{pct:g}"))
        self.overrides.setItem(row, 3, _cell(f"{win:g}"))
        return row

    def _add_level(self, code: str = "", level: Level = (None, None), muted: bool = False) -> int:
        row = self.levels.rowCount()
        self.levels.insertRow(row)
        self.levels.setItem(row, 0, _cell(code))
        self.levels.setItem(row, 1, _cell("" if level[0] is None else f"{level[0]:,}"))
        self.levels.setItem(row, 2, _cell("" if level[1] is None else f"{level[1]:,}"))
        check = QTableWidgetItem()
        check.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
        check.setCheckState(Qt.CheckState.Checked if muted else Qt.CheckState.Unchecked)
        self.levels.setItem(row, 3, check)
        return row

    @staticmethod
    def _remove_rows(table: QTableWidget) -> None:
        for row in sorted({i.row() for i in table.selectedIndexes()}, reverse=True):
            table.removeRow(row)

    def _text(self, table: QTableWidget, row: int, col: int) -> str:
        item = table.item(row, col)
        return item.text().strip() if item is not None else ""

    def _row_of(self, table: QTableWidget, col: int, text: str) -> int | None:
        for row in range(table.rowCount()):
            if self._text(table, row, col) == text:
                return row
        return None

    # -- value <-> tables -----------------------------------------------------------------------
    def load(self, rules: AlertRules) -> None:
        self.rules = rules
        self.defaults.setText(tr("rules.defaults", threshold=rules.threshold_pct, window=rules.window_seconds))
        self.overrides.setRowCount(0)
        self.levels.setRowCount(0)
        for name, rule in sorted(rules.watchlists.items()):
            self._add_override(KIND_WATCHLIST, name, rule)
        for code, rule in sorted(rules.symbols.items()):
            self._add_override(KIND_SYMBOL, code, rule)
        now = time.time()
        timed = {c for c, end in rules.muted_for.items() if end > now}
        for code in sorted(set(rules.levels) | set(rules.muted_codes) | timed):
            row = self._add_level(code, rules.levels.get(code, (None, None)),
                                  rules.code_muted_until(code, now) is not None)
            end = rules.code_muted_until(code, now)
            if end is not None and end != math.inf:      # muted for N minutes: until when
                self.levels.item(row, 3).setText(tr("rules.muted_to", time=datetime.fromtimestamp(
                    end, KST).strftime("%H:%M")))
        muted = rules.muted_until > time.time()
        self.mute_all.setChecked(muted)
        self.mute_state.setText(tr("rules.muted_until", time=datetime.fromtimestamp(
            rules.muted_until, KST).strftime("%H:%M")) if muted else tr("rules.not_muted"))

    def edited_rules(self) -> AlertRules:
        """The tables as rules; ``ValueError`` names the first bad cell."""
        symbols: dict[str, Rule] = {}
        watchlists: dict[str, Rule] = {}
        for row in range(self.overrides.rowCount()):
            target = self._text(self.overrides, row, 1)
            if not target:
                continue
            pct = _number(self._text(self.overrides, row, 2), tr("rules.col.threshold"))
            win = _number(self._text(self.overrides, row, 3), tr("rules.col.window"))
            if pct is None or win is None or not pct < 100 or not win <= 3600:
                raise ValueError(f"{target}: {tr('rules.col.threshold')} / {tr('rules.col.window')}")
            kind = self.overrides.cellWidget(row, 0).currentData()
            (watchlists if kind == KIND_WATCHLIST else symbols)[target] = (float(pct), float(win))
        levels: dict[str, Level] = {}
        muted: set[str] = set()
        timed: dict[str, float] = {}
        now = time.time()
        for row in range(self.levels.rowCount()):
            code = self._text(self.levels, row, 0)
            if not code:
                continue
            above = _number(self._text(self.levels, row, 1), tr("rules.col.above"), integer=True)
            below = _number(self._text(self.levels, row, 2), tr("rules.col.below"), integer=True)
            if above is not None or below is not None:
                levels[code] = (above, below)          # type: ignore[assignment]
            check = self.levels.item(row, 3)
            if check is not None and check.checkState() == Qt.CheckState.Checked:
                end = self.rules.code_muted_until(code, now)
                if end is not None and end != math.inf:
                    timed[code] = end                  # a mute for N minutes keeps its end
                else:
                    muted.add(code)
        rules = replace(self.rules, symbols=symbols, watchlists=watchlists, levels=levels,
                        muted_codes=frozenset(muted), muted_for=timed)
        if self.mute_all.isChecked():
            if rules.muted_until <= time.time():
                rules = rules.mute_all(self.mute_minutes.value())
        else:
            rules = rules.mute_all(0)
        return rules

    def apply(self) -> bool:
        if self.read_only:
            return False
        try:
            rules = self.edited_rules()
        except ValueError as exc:
            self.message.setText(tr("rules.bad", error=exc))
            return False
        self.rules = rules
        self.message.setText(tr("rules.applied"))
        self.pending = self._spawn(self.engine.set_alert_rules(rules))
        return True

    def accept(self) -> None:
        if self.read_only or self.apply():
            super().accept()

    # -- entry from the grid's context menu -----------------------------------------------------
    def open_alert_settings(self, code: str) -> None:
        """Show the dialog on ``code``: its override and level rows (added when missing), selected."""
        if not self.read_only:
            row = self._row_of(self.overrides, 1, code)
            if row is None:
                row = self._add_override(KIND_SYMBOL, code)
            self.overrides.selectRow(row)
            if self._row_of(self.levels, 0, code) is None:
                self._add_level(code)
            self.levels.selectRow(self._row_of(self.levels, 0, code) or 0)
        self.show()
        self.raise_()


def open_alert_settings(window: Any, code: str | None = None) -> AlertRulesDialog:
    """The window's alert-rules dialog (created on first use), on ``code`` if given."""
    dialog = getattr(window, "alert_rules_dialog", None)
    if dialog is None or not dialog.isVisible():
        dialog = AlertRulesDialog(window.engine, parent=window, spawn=window.spawn)
        window.alert_rules_dialog = dialog
    if code:
        dialog.open_alert_settings(code)
    else:
        dialog.show()
        dialog.raise_()
    return dialog


__all__ = ["AlertRulesDialog", "open_alert_settings"]
