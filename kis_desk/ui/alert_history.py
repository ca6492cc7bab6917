"""Alert history: any past days, filtered by symbol, direction and watchlist; CSV; bulk 확인.

The alert dock shows today only. This dialog queries the alerts table over a date range through
the engine handle (``alerts_between`` / ``acknowledge_alerts`` / ``alert_watchlists``: async,
they do their own ``to_thread``), so nothing here touches the database on the GUI thread.
Acknowledging the selected rows is one engine call and one database transaction.

CSV: Korean headers, UTF-8 with a BOM (``utf-8-sig``) so Excel opens Hangul correctly.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QAbstractTableModel, QDate, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
)

from ..protocol.records import KST
from .i18n import tr
from .theme import KOREAN, Palette

log = logging.getLogger(__name__)

DEFAULT_DAYS = 7
SORT_ROLE = Qt.ItemDataRole.UserRole + 1

COLUMNS = ("date", "time", "code", "name", "direction", "change", "base", "price", "window",
           "acked", "acked_at")
# fixed Korean CSV headers (the file is for Excel on a Korean desk, whatever the UI language)
CSV_HEADERS = ("일자", "시각", "종목코드", "종목명", "방향", "변동률(%)", "기준가", "발생가",
               "감시구간(초)", "확인", "확인시각", "알림ID")


class AlertHistorySource(Protocol):
    """What the dialog needs from the engine handle (Collector and RemoteEngine have it)."""

    async def alerts_between(self, start_date: date, end_date: date, codes: Sequence[str] | None = None,
                             direction: str | None = None) -> list[Any]: ...   # StoredAlert

    async def acknowledge_alerts(self, alert_ids: Sequence[str]) -> int: ...

    async def alert_watchlists(self) -> dict[str, list[str]]: ...


def _kst(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.astimezone(KST)


def csv_rows(stored: Sequence[Any]) -> list[list[str]]:
    """One list of cells per StoredAlert, in ``CSV_HEADERS`` order."""
    out = []
    for item in stored:
        a = item.alert
        t = _kst(a.trigger_time)
        acked_at = _kst(item.acknowledged_at)
        out.append([t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"), a.stock_code, a.stock_name,
                    "급등" if a.direction == "up" else "급락", f"{a.change_pct:+.2f}", str(a.base_price),
                    str(a.trigger_price), f"{a.window_seconds:g}", "예" if item.acknowledged else "아니오",
                    acked_at.strftime("%Y-%m-%d %H:%M:%S") if acked_at else "", a.alert_id])
    return out


def write_csv(path: Path, stored: Sequence[Any]) -> int:
    """Write the rows to ``path`` (UTF-8 with BOM, CRLF as Excel writes); returns the row count."""
    rows = csv_rows(stored)
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADERS)
        writer.writerows(rows)
    return len(rows)


class AlertHistoryModel(QAbstractTableModel):
    """Rows = StoredAlert (oldest first as queried); acknowledged ones greyed."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[Any] = []
        self.palette: Palette = KOREAN
        self._bold = QFont()
        self._bold.setBold(True)

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    def mark_acknowledged(self, alert_ids: Sequence[str], when: datetime) -> None:
        ids = set(alert_ids)
        for i, item in enumerate(self.rows):
            if item.alert.alert_id in ids and not item.acknowledged:
                self.rows[i] = item._replace(acknowledged=True, acknowledged_at=when)
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def pending(self) -> int:
        return sum(1 for item in self.rows if not item.acknowledged)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return tr(f"history.col.{COLUMNS[section]}")
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.rows[index.row()]
        a, col = item.alert, COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            t = _kst(a.trigger_time)
            return {
                "date": t.strftime("%Y-%m-%d"), "time": t.strftime("%H:%M:%S"), "code": a.stock_code,
                "name": a.stock_name, "direction": tr(f"alert.{a.direction}"),
                "change": f"{a.change_pct:+.2f}%", "base": f"{a.base_price:,}", "price": f"{a.trigger_price:,}",
                "window": f"{a.window_seconds:g}", "acked": tr("history.yes" if item.acknowledged else "history.no"),
                "acked_at": (_kst(item.acknowledged_at).strftime("%m-%d %H:%M:%S")
                             if item.acknowledged_at else ""),
            }[col]
        if role == SORT_ROLE:
            return {"date": a.trigger_time.timestamp(), "time": a.trigger_time.timestamp(),
                    "change": a.change_pct, "base": a.base_price, "price": a.trigger_price,
                    "window": a.window_seconds, "acked": int(item.acknowledged),
                    "acked_at": item.acknowledged_at.timestamp() if item.acknowledged_at else 0.0,
                    }.get(col, self.data(index))
        if role == Qt.ItemDataRole.ForegroundRole and col in ("direction", "change", "price"):
            return QColor(self.palette.up if a.direction == "up" else self.palette.down)
        if role == Qt.ItemDataRole.FontRole and not item.acknowledged:
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole and col in ("change", "base", "price", "window"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.UserRole:
            return a.alert_id
        return None


def _qdate(d: date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _pydate(q: QDate) -> date:
    return date(q.year(), q.month(), q.day())


class AlertHistoryDialog(QDialog):
    """Date range + filters → table; 확인 acknowledges the selection; CSV export."""

    acknowledged = Signal(list)          # alert ids acknowledged here (the window updates its views)

    def __init__(self, engine: AlertHistorySource, symbols: Any, palette: Palette = KOREAN,
                 parent=None, today: date | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alertHistoryDialog")
        self.setWindowTitle(tr("history.title"))
        self.engine = engine
        self.symbols = symbols
        self._tasks: set[asyncio.Task[Any]] = set()
        self.watchlists: dict[str, list[str]] = {}
        self.last_error = ""
        today = today or datetime.now(KST).date()

        self.start_edit = QDateEdit(_qdate(today - timedelta(days=DEFAULT_DAYS - 1)))
        self.end_edit = QDateEdit(_qdate(today))
        for edit in (self.start_edit, self.end_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.symbol_edit = QLineEdit()
        self.symbol_edit.setPlaceholderText(tr("history.symbol_placeholder"))
        self.symbol_edit.returnPressed.connect(self.refresh)
        self.direction = QComboBox()
        for key, value in (("history.direction.all", None), ("alert.up", "up"), ("alert.down", "down")):
            self.direction.addItem(tr(key), value)
        self.watchlist = QComboBox()
        self.watchlist.addItem(tr("history.watchlist.all"), None)
        self.search_button = QPushButton(tr("history.search"))
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.refresh)

        filters = QHBoxLayout()
        for label, widget in ((tr("history.from"), self.start_edit), (tr("history.to"), self.end_edit),
                              (tr("history.symbol"), self.symbol_edit), (tr("history.direction"), self.direction),
                              (tr("history.watchlist"), self.watchlist)):
            filters.addWidget(QLabel(label))
            filters.addWidget(widget, 2 if widget is self.symbol_edit else 0)
        filters.addWidget(self.search_button)

        self.model = AlertHistoryModel(self)
        self.model.set_palette(palette)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setObjectName("alertHistoryTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)      # newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

        self.status = QLabel()
        self.ack_button = QPushButton(tr("history.ack"))
        self.ack_button.clicked.connect(lambda: self._spawn(self.acknowledge_selected()))
        self.export_button = QPushButton(tr("history.export"))
        self.export_button.clicked.connect(self._choose_export_path)
        self.close_button = QPushButton(tr("toast.close"))
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.ack_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.resize(1100, 600)

    # -- async plumbing -----------------------------------------------------------------------
    def _spawn(self, coro) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("alert history task failed", exc_info=exc)
            self.show_message(f"{type(exc).__name__}: {exc}", True)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def show_message(self, text: str, error: bool = False) -> None:
        self.last_error = text if error else ""
        self.status.setText(text)
        self.status.setToolTip(text)

    # -- queries ------------------------------------------------------------------------------
    async def load(self) -> None:
        """Fill the watchlist filter, then run the first query (call once after showing)."""
        self.watchlists = await self.engine.alert_watchlists()
        current = self.watchlist.currentData()
        self.watchlist.clear()
        self.watchlist.addItem(tr("history.watchlist.all"), None)
        for name in self.watchlists:
            self.watchlist.addItem(name, name)
        if current in self.watchlists:
            self.watchlist.setCurrentIndex(self.watchlist.findData(current))
        await self.query()

    def refresh(self) -> None:
        self._spawn(self.query())

    def filters(self) -> tuple[date, date, list[str] | None, str | None] | None:
        """(start, end, codes, direction) from the widgets, or None after showing why not."""
        start, end = _pydate(self.start_edit.date()), _pydate(self.end_edit.date())
        if start > end:
            self.show_message(tr("history.bad_range"), True)
            return None
        codes: list[str] | None = None
        text = self.symbol_edit.text().strip()
        if text:
            code = self._resolve(text)
            if code is None:
                self.show_message(tr("history.unknown_symbol", text=text), True)
                return None
            codes = [code]
        name = self.watchlist.currentData()
        if name is not None:
            members = self.watchlists.get(name, [])
            codes = members if codes is None else [c for c in codes if c in members]
        return start, end, codes, self.direction.currentData()

    def _resolve(self, text: str) -> str | None:
        upper = text.upper()
        if upper in self.symbols or (len(upper) == 6 and upper.isascii() and upper.isalnum()):
            return upper
        hits = self.symbols.search(text, 1)
        return hits[0].code if hits else None

    async def query(self) -> None:
        f = self.filters()
        if f is None:
            return
        start, end, codes, direction = f
        rows = await self.engine.alerts_between(start, end, codes, direction)
        self.model.set_rows(rows)
        self._show_count()

    def _show_count(self) -> None:
        self.show_message(tr("history.count", count=self.model.rowCount(), pending=self.model.pending()))

    # -- acknowledge --------------------------------------------------------------------------
    def selected_ids(self) -> list[str]:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        return [self.model.rows[r].alert.alert_id for r in sorted(rows)]

    async def acknowledge_selected(self) -> int:
        """확인: the selected, not yet acknowledged alerts, in one engine call (one transaction)."""
        pending = {item.alert.alert_id for item in self.model.rows if not item.acknowledged}
        ids = [i for i in self.selected_ids() if i in pending]
        if not ids:
            return 0
        changed = await self.engine.acknowledge_alerts(ids)
        self.model.mark_acknowledged(ids, datetime.now(KST))
        self.acknowledged.emit(ids)
        self._show_count()
        self.status.setText(self.status.text() + " · " + tr("history.acked", count=changed))
        return changed

    # -- export -------------------------------------------------------------------------------
    def _choose_export_path(self) -> None:
        start, end = _pydate(self.start_edit.date()), _pydate(self.end_edit.date())
        path, _ = QFileDialog.getSaveFileName(self, tr("history.export"), f"alerts-{start:%Y%m%d}-{end:%Y%m%d}.csv",
                                              tr("wl.csv_filter"))
        if path:
            self._spawn(self.export_csv(Path(path)))

    async def export_csv(self, path: Path) -> int:
        """The rows as shown (current sort order) to ``path``; returns the count."""
        order = [self.proxy.mapToSource(self.proxy.index(r, 0)).row() for r in range(self.proxy.rowCount())]
        rows = [self.model.rows[i] for i in order]
        count = await asyncio.to_thread(write_csv, path, rows)
        self.show_message(tr("history.exported", count=count, path=str(path)))
        return count

    def set_palette(self, palette: Palette) -> None:
        self.model.set_palette(palette)

    def closeEvent(self, event) -> None:  # noqa: N802
        for task in list(self._tasks):
            task.cancel()
        super().closeEvent(event)
