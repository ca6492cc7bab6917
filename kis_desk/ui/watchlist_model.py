"""The watchlist grid's model: per-row state updated per tick, repainted on a timer.

Why coalesce: a busy market delivers thousands of trades per second; repainting per trade is
what makes other Qt trading screens lag (vnpy #333/#1837). Here a tick only updates the row's
plain-Python state and marks the row dirty; a QTimer (8 Hz) emits one ``dataChanged`` per
contiguous range of dirty rows, over the cells that changed only (see ``flush``). No re-sort or
resize happens per update.

Memory stays flat whatever the tick count: each row keeps its current values, at most ~62
one-second samples for the 1-minute change and a sparkline of at most ``SPARK_POINTS`` points
whose bucket width doubles whenever it fills (1 s, 2 s, 4 s … — a full trading day ends at
~128 s per point).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from enum import IntEnum
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont

from ..core.events import (
    AlertEvent, DayRolloverEvent, Event, SessionStateEvent, SubscriptionPlanEvent, TicksEvent,
)
from ..core.ticks import Tick
from ..market.ticks import price_limits
from ..protocol.records import KST
from .i18n import tr
from .notifications import alert_text
from .theme import KOREAN, Palette

SPARK_ROLE = Qt.ItemDataRole.UserRole + 1     # (points tuple, previous close or None)
SORT_ROLE = Qt.ItemDataRole.UserRole + 2      # raw value for QSortFilterProxyModel
CODE_ROLE = Qt.ItemDataRole.UserRole + 3      # the row's stock code
ALERT_ROLE = Qt.ItemDataRole.UserRole + 5     # True while the row has unacknowledged alerts

SPARK_POINTS = 240
PENDING_SECONDS = 1800   # live seconds buffered per row while its history loads (bounded)
FLASH_SECONDS = 0.6
REFRESH_HZ = 8
MAX_CELLS_PER_SIGNAL = 200   # see WatchlistModel._emit_ranges
SPARK_EVERY = 4     # a row's sparkline repaints every 4th flush (2 Hz), rows staggered
AHEAD_LIMIT = 100_000   # trades of the next day buffered until the engine's DayRolloverEvent


class Col(IntEnum):
    CODE = 0
    NAME = 1
    PRICE = 2
    CHANGE = 3
    CHANGE_PCT = 4
    CHANGE_1M = 5
    VOLUME = 6
    STRENGTH = 7
    TIME = 8
    SPARK = 9
    FEED = 10


NCOLS = len(Col)
_HEADER_KEYS = ("col.code", "col.name", "col.price", "col.change", "col.change_pct",
                "col.change_1m", "col.volume", "col.strength", "col.time", "col.spark", "col.feed")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter
_ALIGN = {Col.CODE: _LEFT, Col.NAME: _LEFT, Col.TIME: _CENTER, Col.SPARK: _CENTER, Col.FEED: _CENTER}
_ALIGN_BY_COL = tuple(int(_ALIGN.get(c, _RIGHT).value) for c in Col)   # plain ints: data() is hot
_FLAGS = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren)
_DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)          # 0
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)          # 3
_FONT = int(Qt.ItemDataRole.FontRole.value)                # 6
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole.value)  # 7
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole.value)    # 8
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole.value)    # 9
_SPARK, _SORT, _CODE, _ALERT = (int(Qt.ItemDataRole.UserRole.value) + k for k in (1, 2, 3, 5))


class Sparkline:
    """Last price per time bucket; the bucket doubles when ``SPARK_POINTS`` is reached."""

    __slots__ = ("points", "width", "bucket")

    def __init__(self) -> None:
        self.points: list[float] = []
        self.width = 1             # seconds per point
        self.bucket = -1           # bucket number of the last point

    def add(self, epoch: int, price: float) -> None:
        b = epoch // self.width
        if b == self.bucket and self.points:
            self.points[-1] = price
            return
        if b < self.bucket:        # late trade (back-fill): it belongs to a past bucket; keep order
            return
        self.points.append(price)
        self.bucket = b
        if len(self.points) > SPARK_POINTS:
            self.points = self.points[1::2]   # keep each pair's later (closing) price
            self.width *= 2
            self.bucket = epoch // self.width

    def seed(self, history: Iterable[tuple[int, float]], min_width: int = 1) -> None:
        """Replace the points with stored history ``(epoch second, price)`` in trade order.

        The width is the smallest power of two ≥ ``min_width`` that fits the history into
        ``SPARK_POINTS`` buckets (epoch-aligned, like :meth:`add`), so live trades that follow
        continue at the same density instead of squeezing the history into the left edge.
        """
        history = list(history)
        width = max(1, min_width)
        while True:
            last: dict[int, float] = {}
            for epoch, price in history:
                last[epoch // width] = price          # dicts keep first-insertion order
            if len(last) <= SPARK_POINTS:
                break
            width *= 2
        self.width = width
        self.points = list(last.values())
        self.bucket = next(reversed(last)) if last else -1


def spark_width(first_epoch: int, last_epoch: int) -> int:
    """Smallest power-of-two bucket (s) that spans ``first..last`` in ≤ ``SPARK_POINTS`` buckets."""
    width = 1
    while last_epoch // width - first_epoch // width + 1 > SPARK_POINTS:
        width *= 2
    return width


class RowState:
    """Everything shown for one symbol (plain Python: updated per tick, read per paint)."""

    __slots__ = ("code", "name", "price", "change", "change_rate", "cum_volume", "strength",
                 "time", "epoch", "minute", "spark", "flash_until", "flash_sign", "alerts",
                 "feed", "session", "cache", "pending")

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name
        self.price: int | None = None
        self.change: int | None = None
        self.change_rate: float | None = None
        self.cum_volume: int | None = None
        self.strength: float | None = None
        self.time: datetime | None = None
        self.epoch = 0
        self.minute: deque[list[int]] = deque()   # [epoch second, price], oldest first
        self.spark = Sparkline()
        self.flash_until = 0.0
        self.flash_sign = 0
        self.alerts: list[AlertEvent] = []        # unacknowledged, oldest first
        self.feed = "waiting"                      # waiting | live | polled
        self.session = ""
        self.cache: tuple | None = None            # (display, foreground, background, font) per column
        # while today's history loads: live trades seen meanwhile, one [epoch, price, cum] per
        # second (bounded), merged by seed(); None once seeded (or never asked for)
        self.pending: deque[list[int]] | None = None

    def apply(self, t: Tick, now: float) -> None:
        """One trade. Back-filled trades older than the current one only feed history."""
        self.cache = None
        epoch = int(t.timestamp.timestamp())
        pending = self.pending
        if pending is not None:
            if pending and pending[-1][0] == epoch and pending[-1][2] < t.cum_volume:
                pending[-1][1:] = (t.price, t.cum_volume)
            else:
                pending.append([epoch, t.price, t.cum_volume])
        if self.cum_volume is not None and t.cum_volume < self.cum_volume:
            self.spark.add(epoch, t.price)
            return
        if self.price is not None and t.price != self.price:
            self.flash_until = now + FLASH_SECONDS
            self.flash_sign = 1 if t.price > self.price else -1
        self.price = t.price
        if t.change is not None:
            self.change = t.change
        if t.change_rate is not None:
            self.change_rate = t.change_rate
        self.cum_volume = t.cum_volume
        if t.strength is not None:
            self.strength = t.strength
        self.time = t.timestamp
        self.epoch = epoch
        m = self.minute
        if m and m[-1][0] == epoch:
            m[-1][1] = t.price
        else:
            m.append([epoch, t.price])
            cutoff = epoch - 60
            while len(m) > 1 and m[1][0] <= cutoff:
                m.popleft()
        self.spark.add(epoch, t.price)

    def seed(self, last: Tick | None, history: Sequence[tuple[int, int, int]], width: int = 1) -> None:
        """Merge today's stored history into this row (restart, watchlist switch, added symbol).

        ``history`` is ``(epoch second, price, cum_volume)`` — the last trade per bucket over the
        day plus a 1-second tail for the 1-minute change — and ``last`` the day's last stored
        trade. Live trades that arrived while it loaded (``pending``) are merged by cumulative
        volume (a trade's identity), so nothing is counted twice and nothing live is lost.
        """
        pending, self.pending = self.pending, None
        merged: dict[int, tuple[int, int]] = {cum: (epoch, price) for epoch, price, cum in history}
        for epoch, price, cum in pending or ():
            merged[cum] = (epoch, price)
        if last is not None:
            merged.setdefault(last.cum_volume, (int(last.timestamp.timestamp()), last.price))
        if not merged:
            return
        order = sorted(merged.items())                          # trade order
        self.spark.seed(((e, p) for _, (e, p) in order), width)
        if last is not None and (self.cum_volume is None or last.cum_volume > self.cum_volume):
            # the stored trade is newer than anything live: show it (no flash, it is not news)
            self.price, self.cum_volume, self.time = last.price, last.cum_volume, last.timestamp
            self.epoch = int(last.timestamp.timestamp())
            for name in ("change", "change_rate", "strength"):
                value = getattr(last, name)
                if value is not None:
                    setattr(self, name, value)
        # the 1-minute base: per-second last price up to the current trade, as apply() keeps it
        m: deque[list[int]] = deque()
        head = self.cum_volume if self.cum_volume is not None else order[-1][0]
        for cum, (epoch, price) in order:
            if cum > head:
                break
            if m and m[-1][0] >= epoch:
                m[-1][1] = price
                continue
            m.append([epoch, price])
            cutoff = epoch - 60
            while len(m) > 1 and m[1][0] <= cutoff:
                m.popleft()
        self.minute = m
        self.cache = None

    @property
    def sign(self) -> int:
        """-2 limit down, -1 down, 0, 1 up, 2 limit up (KRX limits from the previous close)."""
        c = self.change or 0
        if c == 0 or self.price is None:
            return 0
        prev_close = self.price - c
        if prev_close <= 0:
            return 1 if c > 0 else -1
        upper, lower = price_limits(prev_close)
        if c > 0:
            return 2 if self.price >= upper else 1
        return -2 if self.price <= lower else -1

    @property
    def change_1m(self) -> float | None:
        if self.price is None or not self.minute:
            return None
        base = self.minute[0][1]
        return (self.price - base) / base * 100.0 if base else None

    @property
    def prev_close(self) -> int | None:
        if self.price is None or self.change is None:
            return None
        return self.price - self.change


class WatchlistModel(QAbstractTableModel):
    """Rows = watchlist codes in order; updated from engine events, repainted by a timer."""

    alertRaised = Signal(object)        # AlertEvent (after the row is highlighted)
    alertsAcknowledged = Signal(list)   # alert ids

    def __init__(self, names=None, parent=None, refresh_hz: float = REFRESH_HZ,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``clock``: KST wall time; it fixes the business date the rows start on (None: the
        date of the first trade shown). After that the day changes only with the engine's
        :class:`DayRolloverEvent`."""
        super().__init__(parent)
        self._name_of = names or (lambda code: code)
        self._rows: list[RowState] = []
        self._index: dict[str, int] = {}
        self._dirty: set[int] = set()         # rows with new trades (value columns + sparkline)
        self._touched: set[int] = set()       # rows to repaint whole (alerts, feed state)
        self._spark_dirty: set[int] = set()   # rows whose sparkline is not repainted yet
        self._flushes = 0
        self._flashing: set[int] = set()
        self._sessions: dict[str, str] = {}
        self._live: dict[str, str] = {}      # code -> session label (last SubscriptionPlanEvent)
        self._polled: set[str] = set()
        self._seeded: set[str] = set()      # codes whose rows hold today's stored history
        self._requested: set[str] = set()   # codes whose history is being loaded
        # The rows show one business date: trades of an earlier one are dropped (stored, but
        # never mixed into the day's values); trades of a later one wait for the engine's
        # DayRolloverEvent, which clears the rows and replays them.
        self.business_date: date | None = None
        self._day_start: datetime | None = None
        self._day_end: datetime | None = None
        if clock is not None:
            self._set_day(clock().date())
        self._ahead: deque[Tick] = deque(maxlen=AHEAD_LIMIT)
        self.old_day_dropped = 0
        self.palette: Palette = KOREAN
        self.bold = QFont()
        self.bold.setBold(True)
        self.emits = 0                    # dataChanged signals sent (tests, benchmark)
        self.ticks_applied = 0
        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / refresh_hz))
        self.timer.timeout.connect(self.flush)
        self.timer.start()

    # -- rows ---------------------------------------------------------------------------------
    def codes(self) -> list[str]:
        return [r.code for r in self._rows]

    def row_of(self, code: str) -> int | None:
        return self._index.get(code)

    def state(self, code: str) -> RowState | None:
        i = self._index.get(code)
        return self._rows[i] if i is not None else None

    def set_codes(self, codes: Sequence[str]) -> None:
        """Replace the watchlist; rows for codes kept retain their state (prices, history)."""
        old = {r.code: r for r in self._rows}
        self.beginResetModel()
        self._rows = [old.get(c) or RowState(c, self._name_of(c)) for c in dict.fromkeys(codes)]
        self._index = {r.code: i for i, r in enumerate(self._rows)}
        self._seeded &= self._index.keys()
        self._requested &= self._index.keys()
        for r in self._rows:
            r.feed, r.session = self._feed_of(r.code)
            r.cache = None
        self._dirty.clear()
        self._touched.clear()
        self._spark_dirty.clear()
        self._flashing.clear()
        self.endResetModel()

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
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, NCOLS - 1))
            self.emits += 1

    # -- engine events (the only input) -------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if isinstance(event, TicksEvent):
            self.on_ticks(event.ticks)
        elif isinstance(event, AlertEvent):
            self.on_alert(event)
        elif isinstance(event, SubscriptionPlanEvent):
            self.on_plan(event)
        elif isinstance(event, SessionStateEvent):
            self.on_session(event)
        elif isinstance(event, DayRolloverEvent):
            self.on_day_rollover(event)

    def _set_day(self, day: date) -> None:
        self.business_date = day
        self._day_start = datetime(day.year, day.month, day.day, tzinfo=KST)
        self._day_end = self._day_start + timedelta(days=1)

    def on_day_rollover(self, event: DayRolloverEvent) -> None:
        """A new business day: every row starts empty (price, change vs previous close,
        volume, strength, 1-minute window, sparkline, alert highlight); the trades of the new
        day that arrived before the event are applied now."""
        if self.business_date is not None and event.current <= self.business_date:
            return
        self._set_day(event.current)
        for i, r in enumerate(self._rows):
            fresh = RowState(r.code, r.name)
            fresh.feed, fresh.session = r.feed, r.session
            self._rows[i] = fresh
        self._seeded = set(self._index)      # nothing stored yet for the new day to load
        self._requested.clear()
        self._flashing.clear()
        start, end = self._day_start, self._day_end
        assert start is not None and end is not None
        ahead = [t for t in self._ahead if start <= t.timestamp < end]
        later = [t for t in self._ahead if t.timestamp >= end]
        self._ahead.clear()
        self._ahead.extend(later)
        self.on_ticks(ahead)
        self._emit_all()

    def on_ticks(self, ticks: Iterable[Tick]) -> None:
        index, rows, dirty = self._index, self._rows, self._dirty
        if self._day_start is None:              # no clock: the first trade's date
            ticks = tuple(ticks)
            if not ticks:
                return
            self._set_day(ticks[0].timestamp.date())
        start, end = self._day_start, self._day_end
        now = time.monotonic()
        n = 0
        for t in ticks:
            i = index.get(t.stock_code)
            if i is None:
                continue
            ts = t.timestamp
            if ts >= end:
                self._ahead.append(t)
                continue
            if ts < start:
                self.old_day_dropped += 1
                continue
            rows[i].apply(t, now)
            dirty.add(i)
            n += 1
        self.ticks_applied += n

    def on_alert(self, alert: AlertEvent) -> None:
        i = self._index.get(alert.stock_code)
        if i is not None:
            row = self._rows[i]
            if all(a.alert_id != alert.alert_id for a in row.alerts):
                row.alerts.append(alert)
                self._touch(i)
        self.alertRaised.emit(alert)

    def _feed_of(self, code: str) -> tuple[str, str]:
        if code in self._live:
            return "live", self._live[code]
        return ("polled", "") if code in self._polled else ("waiting", "")

    def on_plan(self, plan: SubscriptionPlanEvent) -> None:
        self._live = {code: session for session, codes in plan.live.items() for code in codes}
        self._polled = set(plan.polled)
        for i, r in enumerate(self._rows):
            feed, session = self._feed_of(r.code)
            if (feed, session) != (r.feed, r.session):
                r.feed, r.session = feed, session
                self._touch(i)

    def on_session(self, event: SessionStateEvent) -> None:
        if self._sessions.get(event.session) == event.state:
            return
        self._sessions[event.session] = event.state
        for i, r in enumerate(self._rows):
            if r.session == event.session:
                self._touch(i)

    def feed_state(self, row: RowState) -> str:
        if row.feed == "live" and self._sessions.get(row.session, "live") != "live":
            return "stale"
        return row.feed

    # -- alerts -------------------------------------------------------------------------------
    def pending_alerts(self, code: str) -> list[AlertEvent]:
        i = self._index.get(code)
        return list(self._rows[i].alerts) if i is not None else []

    def acknowledge(self, alert_ids: Iterable[str]) -> list[str]:
        """Clear these alerts' highlight; returns the ids that were pending."""
        wanted = set(alert_ids)
        done: list[str] = []
        for i, r in enumerate(self._rows):
            keep = [a for a in r.alerts if a.alert_id not in wanted]
            if len(keep) != len(r.alerts):
                done += [a.alert_id for a in r.alerts if a.alert_id in wanted]
                r.alerts = keep
                self._touch(i)
        if done:
            self.alertsAcknowledged.emit(done)
        return done

    def acknowledge_code(self, code: str) -> list[str]:
        return self.acknowledge(a.alert_id for a in self.pending_alerts(code))

    # -- coalesced repaint --------------------------------------------------------------------
    def flush(self) -> None:
        """Repaint what changed since the last flush — and only those cells.

        Painting dominates the GUI thread's cost under load (a full 50-row grid is ~20–30 ms
        offscreen), so each kind of change repaints only its cells:

        * rows with new trades: the value columns (price … time), one ``dataChanged`` per
          contiguous range of rows; code, name and feed columns do not change with a trade;
        * their sparklines (the widest, costliest cells): at ``REFRESH_HZ / SPARK_EVERY``
          per row, staggered over the flushes so no single flush repaints every line;
        * rows touched otherwise (alert highlight, feed state, palette): the whole row.
        """
        now = time.monotonic()
        rows = self._rows
        n = len(rows)
        self._flushes += 1
        self._spark_dirty |= self._dirty          # every row with trades has a changed line
        if self._flashing:
            # rows still fading need a repaint; expired ones get one last repaint, then drop out
            for i in list(self._flashing):
                if i >= n or rows[i].flash_until <= now - 1.0 / REFRESH_HZ:
                    self._flashing.discard(i)
            self._dirty |= self._flashing
        touched_set = {i for i in self._touched if i < n}
        touched = sorted(touched_set)
        self._touched = set()
        dirty = sorted(i for i in self._dirty if i < n and i not in touched_set)
        self._dirty = set()
        phase = self._flushes % SPARK_EVERY
        spark = sorted(i for i in self._spark_dirty if i < n and i % SPARK_EVERY == phase)
        self._spark_dirty = {i for i in self._spark_dirty if i < n and i % SPARK_EVERY != phase}
        for i in touched:
            rows[i].cache = None
            if rows[i].flash_until > now:
                self._flashing.add(i)
        for i in dirty:
            rows[i].cache = None          # the fading flash changes the price cell's background
            if rows[i].flash_until > now:
                self._flashing.add(i)
        self._emit_ranges(touched, 0, NCOLS - 1)
        self._emit_ranges(dirty, Col.PRICE, Col.TIME)
        self._emit_ranges([i for i in spark if i not in touched_set], Col.SPARK, Col.SPARK)

    def _emit_ranges(self, rows: list[int], first_col: int, last_col: int) -> None:
        """One ``dataChanged`` per contiguous run of ``rows`` (sorted) over the given columns.

        Runs are cut at ``MAX_CELLS_PER_SIGNAL`` cells: Qt's item view repaints only the
        changed rectangle for a small range, but the whole viewport for a large one (Qt 6.11:
        above ~200 indexes), which would undo the column limits above.
        """
        if not rows:
            return
        span = max(1, MAX_CELLS_PER_SIGNAL // (last_col - first_col + 1))
        start = prev = rows[0]
        for i in rows[1:] + [None]:
            if i is not None and i == prev + 1 and i - start < span:
                prev = i
                continue
            self.dataChanged.emit(self.index(start, first_col), self.index(prev, last_col))
            self.emits += 1
            if i is not None:
                start = prev = i

    # -- Qt model API -------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else NCOLS

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < NCOLS:
            if role == Qt.ItemDataRole.DisplayRole:
                return tr(_HEADER_KEYS[section])
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(_ALIGN.get(Col(section), _RIGHT))
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
        if role <= 9:   # the roles a delegate asks for on every paint
            if role == _DISPLAY:
                return (row.cache or self._build(row))[0][col]
            if role == _FOREGROUND:
                return (row.cache or self._build(row))[1][col]
            if role == _BACKGROUND:
                return (row.cache or self._build(row))[2][col]
            if role == _FONT:
                return (row.cache or self._build(row))[3][col]
            if role == _ALIGNMENT:
                return _ALIGN_BY_COL[col]
            if role == _TOOLTIP:
                return self._tooltip(row, col)
            return None
        if role == _SPARK:
            return (tuple(row.spark.points), row.prev_close) if col == Col.SPARK else None
        if role == _SORT:
            return self._sort_value(row, col)
        if role == _CODE:
            return row.code
        if role == _ALERT:
            return bool(row.alerts)
        return None

    def _build(self, row: RowState) -> tuple:
        cols = range(NCOLS)
        limit_font = self.bold if abs(row.sign) == 2 else None
        row.cache = (
            tuple(self._display(row, c) for c in cols),
            tuple(self._foreground(row, c) for c in cols),
            tuple(self._background(row, c) for c in cols),
            tuple(limit_font if c in (Col.PRICE, Col.CHANGE) else None for c in cols),
        )
        return row.cache

    def _display(self, row: RowState, col: int) -> str | None:
        if col == Col.CODE:
            return row.code
        if col == Col.NAME:
            return row.name
        if col == Col.FEED:
            return tr(f"feed.{self.feed_state(row)}")
        if row.price is None or col == Col.SPARK:
            return None
        if col == Col.PRICE:
            return f"{row.price:,}"
        if col == Col.CHANGE:
            c = row.change
            if c is None:
                return None
            arrow = "▲" if c > 0 else "▼" if c < 0 else ""
            return f"{arrow} {abs(c):,}" if arrow else "0"
        if col == Col.CHANGE_PCT:
            return None if row.change_rate is None else f"{row.change_rate:+.2f}%"
        if col == Col.CHANGE_1M:
            m = row.change_1m
            return None if m is None else f"{m:+.2f}%"
        if col == Col.VOLUME:
            return None if row.cum_volume is None else f"{row.cum_volume:,}"
        if col == Col.STRENGTH:
            return None if row.strength is None else f"{row.strength:.2f}"
        if col == Col.TIME:
            return None if row.time is None else row.time.strftime("%H:%M:%S")
        return None

    def _foreground(self, row: RowState, col: int) -> QColor | None:
        p = self.palette
        sign = row.sign
        if col == Col.CHANGE and abs(sign) == 2:
            return p.marker_text       # white on the filled limit marker
        if col in (Col.PRICE, Col.CHANGE, Col.CHANGE_PCT, Col.SPARK):
            return p.direction(sign)
        if col == Col.CHANGE_1M:
            m = row.change_1m
            return p.direction(0 if not m else 1 if m > 0 else -1)
        if col == Col.FEED:
            state = self.feed_state(row)
            return QColor(0, 130, 60) if state == "live" else QColor(200, 110, 0) if state == "stale" \
                else QColor(120, 120, 120)
        return None

    def _background(self, row: RowState, col: int) -> QBrush | QColor | None:
        p = self.palette
        sign = row.sign
        if col == Col.CHANGE and abs(sign) == 2:
            return p.direction(sign)   # filled ▲/▼ marker for limit up/down
        if row.alerts:
            return p.alert
        if col == Col.PRICE:
            left = row.flash_until - time.monotonic()
            if left > 0:
                c = QColor(p.flash_up if row.flash_sign > 0 else p.flash_down)
                c.setAlpha(int(140 * left / FLASH_SECONDS))
                return c
        return None

    def _sort_value(self, row: RowState, col: int) -> Any:
        if col == Col.CODE:
            return row.code
        if col == Col.NAME:
            return row.name
        if col == Col.FEED:
            return self.feed_state(row)
        values = {
            Col.PRICE: row.price, Col.CHANGE: row.change, Col.CHANGE_PCT: row.change_rate,
            Col.CHANGE_1M: row.change_1m, Col.VOLUME: row.cum_volume, Col.STRENGTH: row.strength,
            Col.TIME: row.epoch or None, Col.SPARK: row.change_rate,
        }
        v = values.get(Col(col))
        return float("-inf") if v is None else float(v)

    def _tooltip(self, row: RowState, col: int) -> str | None:
        if col == Col.FEED:
            state = self.feed_state(row)
            if state == "live":
                return tr("feed.live.tip", session=row.session)
            if state == "polled":
                return tr("feed.polled.tip")
            if state == "stale":
                st = self._sessions.get(row.session, "")
                return tr("feed.stale.tip", session=row.session, state=tr(f"state.{st}"))
            return None
        if col == Col.CHANGE and abs(row.sign) == 2:
            return tr("limit.up" if row.sign > 0 else "limit.down")
        if row.alerts:
            return alert_text(row.alerts[-1])
        return None
