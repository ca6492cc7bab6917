"""The window's saved layout: geometry, docks, grid header and sort, as plain settings values."""

from __future__ import annotations

import base64
import logging
from typing import Any

from PySide6.QtCore import QByteArray, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHeaderView, QMainWindow, QTableView, QWidget

log = logging.getLogger(__name__)


def _enc(data: QByteArray) -> str:
    return base64.b64encode(bytes(data.data())).decode()


def encode_layout(window: QMainWindow, header: QHeaderView, model: Any) -> dict[str, Any]:
    """What ``UserSettings.window`` stores (``model``: the grid model, which sorts itself)."""
    return {"geometry": _enc(window.saveGeometry()), "state": _enc(window.saveState()),
            "header": _enc(header.saveState()), "columns": header.count(), "sort_column": model.sort_column,
            "sort_order": int(model.sort_order.value)}


#: the size a first start asks for; a smaller screen gets its whole available area
PREFERRED_SIZE = QSize(1680, 1020)


def available_area(window: QWidget) -> QRect:
    """The usable part (without panels/taskbar) of the screen the window is on, else the primary."""
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, 1366, 768)


def _frame_extra(window: QWidget) -> QSize:
    """What the window manager's frame adds around the client area (0 before the first show)."""
    frame, inner = window.frameGeometry(), window.geometry()
    return QSize(max(0, frame.width() - inner.width()), max(0, frame.height() - inner.height()))


def fit_first_start(window: QWidget, preferred: QSize = PREFERRED_SIZE) -> None:
    """No saved geometry: the preferred size where the screen has room, else all of the available
    area; centred. (Maximising is left to the user: a maximised window restores oddly on X11.)"""
    area = available_area(window)
    extra = _frame_extra(window)
    if extra.isNull() or extra == QSize(0, 0):
        extra = FRAME_GUESS
    w = min(preferred.width(), area.width() - extra.width())
    h = min(preferred.height(), area.height() - extra.height())
    window.resize(w, h)
    window.move(area.x() + (area.width() - w - extra.width()) // 2,
                area.y() + (area.height() - h - extra.height()) // 2)


#: before the first show the frame is unknown; a title bar and borders take about this much
FRAME_GUESS = QSize(8, 34)


def clamp_to_screen(window: QWidget) -> bool:
    """Keep the window, frame included, inside its screen's available area (a layout saved on
    a bigger monitor; a frame the window manager adds after the first show); returns whether
    it had to change."""
    if window.isMaximized() or window.isFullScreen():
        return False
    area = available_area(window)
    extra = _frame_extra(window)
    frame = window.frameGeometry()
    w = min(window.width(), area.width() - extra.width())
    h = min(window.height(), area.height() - extra.height())
    fw, fh = w + extra.width(), h + extra.height()
    x = min(max(frame.x(), area.x()), area.x() + area.width() - fw)
    y = min(max(frame.y(), area.y()), area.y() + area.height() - fh)
    changed = False
    if (w, h) != (window.width(), window.height()):
        window.resize(w, h)
        changed = True
    if (x, y) != (frame.x(), frame.y()):
        window.move(x, y)             # a top-level's move() places its frame
        changed = True
    return changed


def restore_layout(window: QMainWindow, grid: QTableView, saved: dict[str, Any]) -> None:
    """Apply a stored layout, clamped to the current screen; a damaged one is logged and ignored
    (defaults stay). Without a saved geometry the window fits the screen (:func:`fit_first_start`)."""
    dec = lambda s: QByteArray(base64.b64decode(s))  # noqa: E731
    restored = False
    try:
        if saved.get("geometry"):
            restored = window.restoreGeometry(dec(saved["geometry"]))
        if saved.get("state"):
            window.restoreState(dec(saved["state"]))
        # a header saved with another column set would put widths and order on the wrong columns
        if saved.get("header") and saved.get("columns") == grid.horizontalHeader().count():
            grid.horizontalHeader().restoreState(dec(saved["header"]))
        grid.sortByColumn(int(saved.get("sort_column", -1)), Qt.SortOrder(int(saved.get("sort_order", 0))))
    except (ValueError, TypeError) as exc:
        log.warning("ignoring saved window layout: %s", exc)
    if restored:
        clamp_to_screen(window)
    else:
        fit_first_start(window)
