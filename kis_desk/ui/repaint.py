"""The grid's coalesced repaint: which rows changed since the last flush, and the flush that
signals only their changed cells (``Repainter``, owned by ``WatchlistModel``).

Apart from the model because it is a job of its own with its own state (rows dirty by trades,
rows touched otherwise, fading flashes, sparklines due, the cells last signalled): the model
says *what* changed (``dirty``/``touch``), this module decides *what Qt is told* and when.

Qt's item view repaints only the changed rectangle for a small ``dataChanged`` range, but the
whole viewport for a large one (Qt 6.11: above ~200 indexes), which would undo the per-cell
change detection; so runs of rows are cut at ``MAX_CELLS_PER_SIGNAL`` cells.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from .grid_columns import NCOLS, TRADE_COLUMNS, Col, build_row

MAX_CELLS_PER_SIGNAL = 200
REFRESH_HZ = 8
SPARK_EVERY = 8     # a row's sparkline repaints every 8th flush (1 Hz: its finest bucket), rows staggered


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


class Repainter:
    """Pending repaints of one grid model, by row position (``remap`` follows a re-sort).

    ``model``: the ``WatchlistModel`` (its ``rows()``, ``index()``, ``dataChanged`` and the
    context :func:`grid_columns.build_row` reads: palette, fonts, feed state)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.shown: list[tuple | None] = []   # per row: the cells last signalled (None: never)
        self.dirty: set[int] = set()          # rows with new trades (value columns + sparkline)
        self.touched: set[int] = set()        # rows to repaint whole (alerts, feed state)
        self.spark_dirty: set[int] = set()    # rows whose sparkline is not repainted yet
        self.spark_shown: dict[str, tuple] = {}   # code -> (version, cell) last signalled
        self.flashing: set[int] = set()
        self.flushes = 0
        self.emits = 0                        # dataChanged signals sent (tests, benchmark)

    # -- bookkeeping --------------------------------------------------------------------------
    def reset(self, n: int) -> None:
        """A new set of ``n`` rows: nothing signalled yet, nothing pending."""
        self.shown = [None] * n
        self.clear()

    def clear(self) -> None:
        for pending in (self.dirty, self.touched, self.spark_dirty, self.flashing):
            pending.clear()

    def remap(self, order: Sequence[int]) -> dict[int, int]:
        """Rows re-sorted: ``order[new] = old``; returns old → new."""
        new_pos = {old: new for new, old in enumerate(order)}
        self.shown = [self.shown[i] for i in order]
        for name in ("dirty", "touched", "spark_dirty", "flashing"):
            setattr(self, name, {new_pos[i] for i in getattr(self, name) if i in new_pos})
        return new_pos

    def touch(self, i: int) -> None:
        """Row ``i`` changed outside the tick path: drop its cached texts, repaint it whole."""
        self.model.rows()[i].cache = None
        self.touched.add(i)

    def emit_all(self) -> None:
        rows = self.model.rows()
        for r in rows:
            r.cache = None
        self.shown = [None] * len(rows)
        if rows:
            self.model.dataChanged.emit(self.model.index(0, 0), self.model.index(len(rows) - 1, NCOLS - 1))
            self.emits += 1

    # -- the flush ----------------------------------------------------------------------------
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
        model = self.model
        rows, shown = model.rows(), self.shown
        n = len(rows)
        self.flushes += 1
        self.spark_dirty |= self.dirty            # every row with trades may have a changed line
        if self.flashing:
            # rows still fading need a repaint; expired ones get one last repaint, then drop out
            for i in list(self.flashing):
                if i >= n or rows[i].flash_until <= now - 1.0 / REFRESH_HZ:
                    self.flashing.discard(i)
            self.dirty |= self.flashing
        touched = sorted(i for i in self.touched if i < n)
        touched_set = set(touched)
        self.touched = set()
        dirty = sorted(i for i in self.dirty if i < n and i not in touched_set)
        self.dirty = set()
        for i in touched:
            rows[i].cache = None
            shown[i] = build_row(rows[i], model)
            rows[i].cache = shown[i]
            if rows[i].flash_until > now:
                self.flashing.add(i)
        by_run: dict[tuple[int, int], list[int]] = {}
        for i in dirty:
            row = rows[i]
            row.cache = None              # the fading flash changes the price cell's background
            new = build_row(row, model, shown[i])
            row.cache = new
            for run in changed_runs(shown[i], new, TRADE_COLUMNS):
                by_run.setdefault(run, []).append(i)
            shown[i] = new
            if row.flash_until > now:
                self.flashing.add(i)
        self._emit_ranges(touched, 0, NCOLS - 1)
        for (first, last), run_rows in sorted(by_run.items()):
            self._emit_ranges(run_rows, first, last)
        phase = self.flushes % SPARK_EVERY
        spark = []
        for i in sorted(self.spark_dirty):
            if i >= n or i % SPARK_EVERY != phase:
                continue
            row = rows[i]
            key = (row.spark.version, (row.cache or build_row(row, model))[Col.SPARK])
            if i not in touched_set and self.spark_shown.get(row.code) != key:
                spark.append(i)
            self.spark_shown[row.code] = key
        self.spark_dirty = {i for i in self.spark_dirty if i < n and i % SPARK_EVERY != phase}
        self._emit_ranges(spark, Col.SPARK, Col.SPARK)

    def _emit_ranges(self, rows: list[int], first_col: int, last_col: int) -> None:
        model = self.model
        for top, bottom in row_runs(rows, max(1, MAX_CELLS_PER_SIGNAL // (last_col - first_col + 1))):
            model.dataChanged.emit(model.index(top, first_col), model.index(bottom, last_col))
            self.emits += 1
