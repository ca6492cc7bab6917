"""The window's saved layout: geometry, docks, grid header and sort, as plain settings values."""

from __future__ import annotations

import base64
import logging
from typing import Any

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtWidgets import QHeaderView, QMainWindow, QTableView

log = logging.getLogger(__name__)


def _enc(data: QByteArray) -> str:
    return base64.b64encode(bytes(data.data())).decode()


def encode_layout(window: QMainWindow, header: QHeaderView, model: Any) -> dict[str, Any]:
    """What ``UserSettings.window`` stores (``model``: the grid model, which sorts itself)."""
    return {"geometry": _enc(window.saveGeometry()), "state": _enc(window.saveState()),
            "header": _enc(header.saveState()), "sort_column": model.sort_column,
            "sort_order": int(model.sort_order.value)}


def restore_layout(window: QMainWindow, grid: QTableView, saved: dict[str, Any]) -> None:
    """Apply a stored layout; a damaged one is logged and ignored (defaults stay)."""
    dec = lambda s: QByteArray(base64.b64decode(s))  # noqa: E731
    try:
        if saved.get("geometry"):
            window.restoreGeometry(dec(saved["geometry"]))
        if saved.get("state"):
            window.restoreState(dec(saved["state"]))
        if saved.get("header"):
            grid.horizontalHeader().restoreState(dec(saved["header"]))
        grid.sortByColumn(int(saved.get("sort_column", -1)), Qt.SortOrder(int(saved.get("sort_order", 0))))
    except (ValueError, TypeError) as exc:
        log.warning("ignoring saved window layout: %s", exc)
