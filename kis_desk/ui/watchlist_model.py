"""The watchlist grid's model: per-row state updated per tick, repainted on a timer.

Why coalesce: a busy market delivers thousands of trades per second; repainting per trade is
what makes other Qt trading screens lag (vnpy #333/#1837). Here a tick only updates the row's
plain-Python state (``row_state``) and marks the row dirty; a QTimer (8 Hz) rebuilds the dirty
rows' cells once (``grid_columns.build_row``), compares them with what was shown and emits
``dataChanged`` for the cells whose text, colour, background or font changed — nothing else
repaints. The view paints from ``grid_store`` (those cells copied into C++, so a paint never
calls back into Python) with Qt's default delegate; only the sparkline column has a Python
delegate (``sparkline``), drawing a cached pixmap.

While the window is hidden or minimised the timer stops (:meth:`pause`); :meth:`resume`
repaints everything once.

The rows show one KST business date (from an injected clock, or the first trade's date): trades
of an earlier date are dropped (stored by the engine, never mixed into the day's values); trades
of a later one wait (bounded) for the engine's :class:`DayRolloverEvent`, which empties every row
and then applies them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFont

from ..core.events import AlertEvent, DayRolloverEvent, EventBus, MarketStateEvent, TicksEvent
from ..core.ticks import Tick
from ..protocol.records import KST
from .feed_state import FeedStates, SymbolFeed
from .grid_columns import ALIGNMENTS, COLUMNS, NCOLS, Col, build_row, sorted_order
from .repaint import REFRESH_HZ, SPARK_EVERY, CoalescedRepaint
from .i18n import tr
from .row_inputs import RowInputs
from .row_state import SPARK_POINTS, RowState, Sparkline, spark_width
from .theme import KOREAN, Palette

__all__ = ["ALERT_ROLE", "CODE_ROLE", "Col", "NCOLS", "RowState", "SORT_ROLE", "SPARK_EVERY", "SPARK_KEY_ROLE",
           "SPARK_POINTS", "SPARK_ROLE", "Sparkline", "WatchlistModel", "spark_width"]

SPARK_ROLE = Qt.ItemDataRole.UserRole + 1     # (points tuple, previous close or None)
SORT_ROLE = Qt.ItemDataRole.UserRole + 2      # raw value for QSortFilterProxyModel
CODE_ROLE = Qt.ItemDataRole.UserRole + 3      # the row's stock code
SPARK_KEY_ROLE = Qt.ItemDataRole.UserRole + 4  # (code, points version, previous close): cache key
ALERT_ROLE = Qt.ItemDataRole.UserRole + 5     # True while the row has unacknowledged alerts

PENDING_SECONDS = 1800   # live seconds buffered per row while its history loads (bounded)
AHEAD_LIMIT = 100_000   # trades of the next day buffered until the engine's DayRolloverEvent

_ROOT = QModelIndex()
_FLAGS = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren)
_CELL_ROLE = {int(Qt.ItemDataRole.DisplayRole.value): 0, int(Qt.ItemDataRole.ForegroundRole.value): 1,
              int(Qt.ItemDataRole.BackgroundRole.value): 2, int(Qt.ItemDataRole.FontRole.value): 3}
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole.value)
_SPARK, _SORT, _CODE, _SPARK_KEY, _ALERT = (int(Qt.ItemDataRole.UserRole.value) + k for k in (1, 2, 3, 4, 5))


class WatchlistModel(QAbstractTableModel, RowInputs, CoalescedRepaint):
    """Rows = watchlist codes in order; updated from engine events, repainted by a timer."""

    alertRaised = Signal(object)        # AlertEvent (after the row is highlighted)
    alertsAcknowledged = Signal(list)   # alert ids

    def __init__(self, names=None, parent=None, refresh_hz: float = REFRESH_HZ,
                 clock: Callable[[], datetime] | None = None,
                 flags: Callable[[str], tuple[str, ...]] | None = None) -> None:
        """``names``: code → display name; ``flags``: code → symbol-directory warning flags;
        ``clock``: KST wall time, read once: the business date the rows start on (None: the
        first trade's date). After that only the engine's :class:`DayRolloverEvent` moves it."""
        super().__init__(parent)
        self._name_of = names or (lambda code: code)
        self._flags_of = flags or (lambda code: ())
        self._rows: list[RowState] = []
        self._index: dict[str, int] = {}
        self._shown: list[tuple | None] = []  # per row: the cells last signalled (None: never)
        self._dirty: set[int] = set()         # rows with new trades (value columns + sparkline)
        self._touched: set[int] = set()       # rows to repaint whole (alerts, feed state)
        self._spark_dirty: set[int] = set()   # rows whose sparkline is not repainted yet
        self._spark_shown: dict[str, tuple] = {}   # code -> (version, cell) last signalled
        self._flushes = 0
        self._flashing: set[int] = set()
        self.feeds = FeedStates()
        self._market: dict[str, MarketStateEvent] = {}   # halted / in VI (row_inputs)
        self._natural: dict[str, int] = {}  # code -> position in the watchlist
        self.sort_column = -1               # -1: watchlist order
        self.sort_order = Qt.SortOrder.AscendingOrder
        self._seeded: set[str] = set()      # codes whose rows hold today's stored history
        self._requested: set[str] = set()   # codes whose history is being loaded
        self.business_date: date | None = None
        self._day_start: datetime | None = None
        self._day_end: datetime | None = None
        if clock is not None:
            self._set_day(clock().astimezone(KST).date())
        self._ahead: deque[Tick] = deque(maxlen=AHEAD_LIMIT)   # next day's trades, in arrival order
        self.old_day_dropped = 0            # late trades of an earlier day (not shown)
        self.palette: Palette = KOREAN
        self.bold = QFont()
        self.bold.setBold(True)
        self.emits = 0                    # dataChanged signals sent (tests, benchmark)
        self.ticks_applied = 0
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / refresh_hz))
        self.timer.timeout.connect(self.flush)
        self.timer.start()

    def subscribe(self, bus: EventBus) -> Callable[[], None]:
        """Follow the engine: trades, alerts, feed and market state; returns the unsubscriber."""
        offs = [bus.subscribe(TicksEvent, lambda e: self.on_ticks(e.ticks)),
                bus.subscribe(AlertEvent, self.on_alert),
                bus.subscribe(DayRolloverEvent, self.on_day_rollover),
                bus.subscribe(MarketStateEvent, self.on_market_state),
                self.feeds.subscribe(bus, self._feeds_changed)]
        return lambda: [off() for off in offs] and None

    # -- visibility ---------------------------------------------------------------------------
    def pause(self) -> None:
        """Window hidden or minimised: stop repainting (rows keep updating, cheaply)."""
        self.timer.stop()

    def resume(self) -> None:
        """Visible again: repaint everything once, then the normal timer."""
        if not self.timer.isActive():
            self._dirty.clear()
            self._touched.clear()
            self._spark_dirty.clear()
            self._emit_all()
            self.timer.start()

    # -- rows ---------------------------------------------------------------------------------
    def codes(self) -> list[str]:
        return [r.code for r in self._rows]

    def row_of(self, code: str) -> int | None:
        return self._index.get(code)

    def state(self, code: str) -> RowState | None:
        i = self._index.get(code)
        return self._rows[i] if i is not None else None

    def state_at(self, row: int) -> RowState:
        return self._rows[row]

    def alerted_rows(self) -> list[int]:
        """Rows with an unacknowledged alert, in display order."""
        return [i for i, r in enumerate(self._rows) if r.alerts]

    def cells(self, row: int) -> tuple:
        """Row ``row``'s cells as painted: per column (text, colour, background, font)."""
        r = self._rows[row]
        return r.cache or self._build(r)

    def set_codes(self, codes: Sequence[str]) -> None:
        """Replace the watchlist; rows for codes kept retain their state (prices, history)."""
        old = {r.code: r for r in self._rows}
        self.beginResetModel()
        self._rows = [old.get(c) or self._new_row(c) for c in dict.fromkeys(codes)]
        self._natural = {r.code: i for i, r in enumerate(self._rows)}
        self._rows = [self._rows[i] for i in self._sorted_order()]
        self._index = {r.code: i for i, r in enumerate(self._rows)}
        self._shown = [None] * len(self._rows)
        self._seeded &= self._index.keys()
        self._requested &= self._index.keys()
        for r in self._rows:
            r.feed = self.feeds.of(r.code)
            r.cache = None
        self._dirty.clear()
        self._touched.clear()
        self._spark_dirty.clear()
        self._flashing.clear()
        self.endResetModel()

    def _new_row(self, code: str) -> RowState:
        row = RowState(code, self._name_of(code))
        row.flags = self._flags_of(code)
        row.market = self._market.get(code)
        return row

    def buffer_live(self, codes: Iterable[str]) -> None:
        """Rows of ``codes`` without history start buffering live trades for :meth:`seed`."""
        for code in codes:
            row = self.state(code)
            if row is not None and row.pending is None and code not in self._seeded:
                row.pending = deque(maxlen=PENDING_SECONDS)

    def begin_seed(self, codes: Iterable[str]) -> list[str]:
        """Buffer live trades for rows of ``codes`` that lack history; return the codes to load.

        Rows already seeded, or whose load is under way, are skipped. Call it in the same
        GUI-thread step as :meth:`set_codes`, so no live trade can slip in between.
        """
        codes = list(codes)
        self.buffer_live(codes)
        todo = [c for c in codes if c not in self._requested and (r := self.state(c)) is not None
                and r.pending is not None]
        self._requested.update(todo)
        return todo

    def seed(self, code: str, last: Tick | None, history: Sequence[tuple[int, int, int]],
             width: int = 1) -> bool:
        """Merge loaded history into ``code``'s row (see :meth:`RowState.seed`)."""
        i = self._index.get(code)
        if i is None or self._rows[i].pending is None:
            return False                    # removed meanwhile, or its row was replaced
        self._rows[i].seed(last, history, width)
        self._seeded.add(code)
        self._requested.discard(code)
        self._touch(i)
        return True

    def end_seed(self, codes: Iterable[str]) -> None:
        """Stop buffering for rows whose history could not be loaded (they stay live-only)."""
        for code in codes:
            self._requested.discard(code)
            row = self.state(code)
            if row is not None:
                row.pending = None

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self._emit_all()

    def retranslate(self) -> None:
        self.headerDataChanged.emit(Qt.Orientation.Horizontal, 0, NCOLS - 1)
        self._emit_all()

    def _touch(self, i: int) -> None:
        """Row ``i`` changed outside the tick path: drop its cached texts, repaint it next flush."""
        self._rows[i].cache = None
        self._touched.add(i)

    def _emit_all(self) -> None:
        for r in self._rows:
            r.cache = None
        self._shown = [None] * len(self._rows)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, NCOLS - 1))
            self.emits += 1

    # -- sorting (in the model: a proxy in between doubles the cost of every paint) ------------
    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order rows by ``column``'s sort value (-1: the watchlist's order); stable, and the
        selection follows its row. Nothing is signalled when the order is unchanged."""
        self.sort_column, self.sort_order = column, order
        order_now = self._sorted_order()
        if order_now == list(range(len(self._rows))):
            return
        self.layoutAboutToBeChanged.emit()
        new_pos = {old: new for new, old in enumerate(order_now)}
        self._rows = [self._rows[i] for i in order_now]
        self._shown = [self._shown[i] for i in order_now]
        self._index = {r.code: i for i, r in enumerate(self._rows)}
        for name in ("_dirty", "_touched", "_spark_dirty", "_flashing"):
            setattr(self, name, {new_pos[i] for i in getattr(self, name) if i in new_pos})
        persistent = self.persistentIndexList()
        self.changePersistentIndexList(
            persistent, [self.index(new_pos[p.row()], p.column()) if p.row() in new_pos else QModelIndex()
                         for p in persistent])
        self.layoutChanged.emit()

    def _sorted_order(self) -> list[int]:
        return sorted_order(self._rows, self._natural, self.sort_column,
                            self.sort_order == Qt.SortOrder.DescendingOrder, self)

    # -- business date ------------------------------------------------------------------------
    def _set_day(self, day: date) -> None:
        self.business_date = day
        self._day_start = datetime(day.year, day.month, day.day, tzinfo=KST)
        self._day_end = self._day_start + timedelta(days=1)

    def on_day_rollover(self, event: DayRolloverEvent) -> None:
        """A new business day: every row starts empty (price, change, volume, strength, 1-minute
        window, sparkline, alert highlight); the new day's trades that came before the event
        are applied now. A repeated or older event changes nothing."""
        if self.business_date is not None and event.current <= self.business_date:
            return
        self._set_day(event.current)
        self._market = {c: e for c, e in self._market.items() if e.state == "halted"}   # halts go on
        for i, old in enumerate(self._rows):
            fresh = RowState(old.code, old.name)
            fresh.feed, fresh.flags = old.feed, old.flags
            fresh.market = old.market if old.market is not None and old.market.state == "halted" else None
            fresh.spark.version = old.spark.version + 1   # the delegate's pixmap cache key moves on
            self._rows[i] = fresh
        self._seeded = set(self._index)     # the old day's history is no row's business now
        self._requested.clear()
        for pending in (self._dirty, self._touched, self._spark_dirty, self._flashing):
            pending.clear()
        ahead, self._ahead = list(self._ahead), deque(maxlen=AHEAD_LIMIT)
        self.on_ticks(ahead)                # today's are applied, later ones wait again
        self._emit_all()

    # -- engine events (the only input) -------------------------------------------------------
    def on_ticks(self, ticks: Iterable[Tick]) -> None:
        index, rows, dirty = self._index, self._rows, self._dirty
        if self._day_start is None:         # no clock: the business date of the first trade
            ticks = tuple(ticks)
            if not ticks:
                return
            self._set_day(ticks[0].timestamp.astimezone(KST).date())
        start, end = self._day_start, self._day_end
        now = time.monotonic()
        n = 0
        last_ts = epoch = None       # trades of one second share their timestamp object
        for t in ticks:
            i = index.get(t.stock_code)
            if i is None:
                continue
            ts = t.timestamp
            if ts is not last_ts:
                if not start <= ts < end:   # type: ignore[operator]
                    if ts >= end:           # type: ignore[operator]
                        self._ahead.append(t)
                    else:
                        self.old_day_dropped += 1
                    continue
                last_ts, epoch = ts, int(ts.timestamp())
            rows[i].apply(t, now, epoch)
            dirty.add(i)
            n += 1
        self.ticks_applied += n

    # -- Qt model API -------------------------------------------------------------------------
    # rowCount/columnCount are called for every index() the views and the proxy make: keep them bare
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return len(self._rows) if parent is _ROOT or not parent.isValid() else 0

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return NCOLS if parent is _ROOT or not parent.isValid() else 0

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < NCOLS:
            if role == Qt.ItemDataRole.DisplayRole:
                return tr(COLUMNS[section].header)
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return ALIGNMENTS[section]
        elif orientation == Qt.Orientation.Vertical and role == Qt.ItemDataRole.DisplayRole:
            return str(section + 1)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Hot path (every visible cell × several roles per repaint): cached per row."""
        r = index.row()
        rows = self._rows
        if r < 0 or r >= len(rows):
            return None
        row = rows[r]
        col = index.column()
        k = _CELL_ROLE.get(role)
        if k is not None:
            return (row.cache or self._build(row))[col][k]
        if role == _ALIGNMENT:
            return ALIGNMENTS[col]
        if role == _TOOLTIP:
            return COLUMNS[col].tooltip(row, self)
        if role == _SPARK_KEY:
            return (row.code, row.spark.version, row.prev_close) if col == Col.SPARK else None
        if role == _SPARK:
            return (tuple(row.spark.points), row.prev_close) if col == Col.SPARK else None
        if role == _SORT:
            return COLUMNS[col].sort(row, self)
        if role == _CODE:
            return row.code
        if role == _ALERT:
            return bool(row.alerts)
        return None

    def _build(self, row: RowState) -> tuple:
        row.cache = build_row(row, self)
        return row.cache
