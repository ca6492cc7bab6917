"""Which cells a flush repaints: changed columns per row, and row runs small enough for Qt.

Qt's item view repaints only the changed rectangle for a small ``dataChanged`` range, but the
whole viewport for a large one (Qt 6.11: above ~200 indexes), which would undo the per-cell
change detection; so runs of rows are cut at ``MAX_CELLS_PER_SIGNAL`` cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
