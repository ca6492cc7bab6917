"""The grid's coalesced repaint: which cells a flush repaints, in runs small enough for Qt.

Qt's item view repaints only the changed rectangle for a small ``dataChanged`` range, but the
whole viewport for a large one (Qt 6.11: above ~200 indexes), which would undo the per-cell
change detection; so runs of rows are cut at ``MAX_CELLS_PER_SIGNAL`` cells.
:class:`CoalescedRepaint` (mixed into ``watchlist_model.WatchlistModel``) is the timer's flush.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from .grid_columns import NCOLS, TRADE_COLUMNS, Col, build_row
from .row_state import RowState

REFRESH_HZ = 8
SPARK_EVERY = 8     # a row's sparkline repaints every 8th flush (1 Hz: its finest bucket), rows staggered

MAX_CELLS_PER_SIGNAL = 200


def changed_runs(old: tuple | None, new: tuple, columns: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``(first, last)`` of ``columns`` whose cell differs between two builds."""
    runs: list[tuple[int, int]] = []
    for c in columns:
        if old is None or old[c] != new[c]:
            if runs and runs[-1][1] == c - 1:
                runs[-1] = (runs[-1][0], c)
            else:
                runs.append((c, c))
    return runs


def row_runs(rows: Sequence[int], max_rows: int) -> Iterator[tuple[int, int]]:
    """Contiguous runs ``(first, last)`` of sorted ``rows``, each at most ``max_rows`` long."""
    if not rows:
        return
    start = prev = rows[0]
    for i in list(rows[1:]) + [None]:
        if i is not None and i == prev + 1 and i - start < max_rows:
            prev = i
            continue
        yield start, prev
        if i is not None:
            start = prev = i


class CoalescedRepaint:
    """The flush of :class:`~kis_desk.ui.watchlist_model.WatchlistModel` (its rows and sets)."""

    _rows: list[RowState]
    _shown: list[tuple | None]
    _dirty: set[int]
    _touched: set[int]
    _spark_dirty: set[int]
    _spark_shown: dict[str, tuple]
    _flashing: set[int]
    _flushes: int
    emits: int
    dataChanged: Any
    index: Any
    createIndex: Any

    # -- coalesced repaint --------------------------------------------------------------------
    def flush(self) -> None:
        """Repaint what changed since the last flush — and only those cells.

        * rows with new trades: their cells are rebuilt once and compared with what was last
          signalled; one ``dataChanged`` per contiguous block of rows × changed columns (a
          trade that moves only volume and time repaints those two cells);
        * their sparklines (the widest cells): when the points or the colour changed, at
          ``REFRESH_HZ / SPARK_EVERY`` per row, staggered over the flushes;
        * rows touched otherwise (alert highlight, feed state, palette): the whole row.
        """
        now = time.monotonic()
        rows, shown = self._rows, self._shown
        n = len(rows)
        self._flushes += 1
        self._spark_dirty |= self._dirty          # every row with trades may have a changed line
        if self._flashing:
            # rows still fading need a repaint; expired ones get one last repaint, then drop out
            for i in list(self._flashing):
                if i >= n or rows[i].flash_until <= now - 1.0 / REFRESH_HZ:
                    self._flashing.discard(i)
            self._dirty |= self._flashing
        touched = sorted(i for i in self._touched if i < n)
        touched_set = set(touched)
        self._touched = set()
        dirty = sorted(i for i in self._dirty if i < n and i not in touched_set)
        self._dirty = set()
        for i in touched:
            rows[i].cache = None
            shown[i] = build_row(rows[i], self)
            rows[i].cache = shown[i]
            if rows[i].flash_until > now:
                self._flashing.add(i)
        by_run: dict[tuple[int, int], list[int]] = {}
        for i in dirty:
            row = rows[i]
            row.cache = None              # the fading flash changes the price cell's background
            new = build_row(row, self, shown[i])
            row.cache = new
            for run in changed_runs(shown[i], new, TRADE_COLUMNS):
                by_run.setdefault(run, []).append(i)
            shown[i] = new
            if row.flash_until > now:
                self._flashing.add(i)
        self._emit_ranges(touched, 0, NCOLS - 1)
        for (first, last), run_rows in sorted(by_run.items()):
            self._emit_ranges(run_rows, first, last)
        phase = self._flushes % SPARK_EVERY
        spark = []
        for i in sorted(self._spark_dirty):
            if i >= n or i % SPARK_EVERY != phase:
                continue
            row = rows[i]
            key = (row.spark.version, (row.cache or build_row(row, self))[Col.SPARK])
            if i not in touched_set and self._spark_shown.get(row.code) != key:
                spark.append(i)
            self._spark_shown[row.code] = key
        self._spark_dirty = {i for i in self._spark_dirty if i < n and i % SPARK_EVERY != phase}
        self._emit_ranges(spark, Col.SPARK, Col.SPARK)

    def _emit_ranges(self, rows: list[int], first_col: int, last_col: int) -> None:
        # createIndex: the rows and columns are known valid, and index() on a Python model asks
        # rowCount() and columnCount() through Python first (~4.5 µs a call, 80 calls a flush)
        make = self.createIndex
        for top, bottom in row_runs(rows, max(1, MAX_CELLS_PER_SIGNAL // (last_col - first_col + 1))):
            self.dataChanged.emit(make(top, first_col), make(bottom, last_col))
            self.emits += 1
