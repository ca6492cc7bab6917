"""Light / dark / system theme, applied to the running application at once (no restart).

Dark uses the Fusion style with a dark ``QPalette``: native styles (Windows' Vista style, macOS'
Aqua) ignore an application palette, Fusion draws every widget from it on every OS. Light
restores the style and palette the application started with. "system" follows the desktop's
colour scheme (``QStyleHints.colorScheme``, Qt ≥ 6.5) and re-applies when the desktop switches.

Charts (pyqtgraph) do not read the Qt palette; :func:`style_charts` sets their background and
axis colours. Direction colours come from :func:`kis_desk.ui.theme.palette_for`, whose dark
variants keep up red / down blue readable on the dark surfaces.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

from .theme import DARK_ALTERNATE, DARK_BASE, DARK_TEXT, DARK_WINDOW, Palette, palette_for

_light: dict[str, object] = {}     # the start-up style name and palette, restored by "light"


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return scheme is not None and scheme() == Qt.ColorScheme.Dark


def is_dark(mode: str) -> bool:
    return mode == "dark" or (mode == "system" and system_is_dark())


def dark_palette() -> QPalette:
    p = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    button = QColor(48, 49, 54)
    for r, c in ((role.Window, DARK_WINDOW), (role.WindowText, DARK_TEXT), (role.Base, DARK_BASE),
                 (role.AlternateBase, DARK_ALTERNATE), (role.Text, DARK_TEXT), (role.Button, button),
                 (role.ButtonText, DARK_TEXT), (role.BrightText, QColor(255, 255, 255)),
                 (role.ToolTipBase, button), (role.ToolTipText, DARK_TEXT),
                 (role.PlaceholderText, QColor(128, 128, 128)), (role.Highlight, QColor(52, 92, 150)),
                 (role.HighlightedText, QColor(255, 255, 255)), (role.Link, QColor(110, 160, 255)),
                 (role.Light, QColor(70, 71, 76)), (role.Midlight, QColor(58, 59, 64)),
                 (role.Mid, QColor(40, 41, 45)), (role.Dark, QColor(20, 20, 23)),
                 (role.Shadow, QColor(0, 0, 0))):
        p.setColor(r, c)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(group.Disabled, r, QColor(118, 118, 118))
    return p


def apply_theme(mode: str, scheme: str, app: QApplication | None = None) -> Palette:
    """Switch the application to ``mode`` (light/dark/system) now; returns the direction colours
    of ``scheme`` that suit it."""
    app = app or QApplication.instance()
    if not _light:
        _light["style"] = app.style().name()
        _light["palette"] = QPalette(app.palette())
    dark = is_dark(mode)
    if dark:
        if app.style().name().lower() != "fusion":
            app.setStyle(QStyleFactory.create("Fusion"))
        app.setPalette(dark_palette())
    else:
        if app.style().name() != _light["style"]:
            app.setStyle(QStyleFactory.create(str(_light["style"])))
        app.setPalette(_light["palette"])      # type: ignore[arg-type]
    app.setProperty("kisDeskTheme", "dark" if dark else "light")
    for widget in app.allWidgets():
        # a widget with its own style sheet keeps the palette it was polished with (Qt does not
        # re-polish it on an application palette change): its text would stay black on dark
        sheet = widget.styleSheet()
        if sheet:
            widget.setStyleSheet(sheet + " ")
            widget.setStyleSheet(sheet)
    return palette_for(scheme, dark)


#: status texts by meaning, readable on the light and on the dark surfaces (≥ 4.5:1 on dark)
_TEXT_COLOURS = {
    "light": {"error": "#b00000", "warn": "#c05000", "good": "#08783a", "muted": "#6f6f6f",
              "pending": "#9a6200"},
    "dark": {"error": "#ff7070", "warn": "#ffa048", "good": "#46c878", "muted": "#a0a0a0",
             "pending": "#e0b040"},
}


def text_colour(kind: str) -> str:
    """The colour (``#rrggbb``) of a status text of ``kind`` — error, warn, good, muted,
    pending — in the current theme."""
    return _TEXT_COLOURS[current_theme()][kind]


def current_theme(app: QApplication | None = None) -> str:
    app = app or QApplication.instance()
    return str(app.property("kisDeskTheme") or "light")


def style_charts(root: QWidget, dark: bool) -> int:
    """Background and axis colours of every pyqtgraph view under ``root``; returns how many."""
    import pyqtgraph as pg

    background = DARK_BASE if dark else QColor(255, 255, 255)
    foreground = QColor(200, 200, 200) if dark else QColor(0, 0, 0)
    views = root.findChildren(pg.GraphicsView)
    for view in views:
        view.setBackground(background)
        for item in view.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setPen(foreground)
                item.setTextPen(foreground)
            elif isinstance(item, pg.LabelItem):
                item.setText(item.text, color=foreground)
    pg.setConfigOptions(background=background, foreground=foreground)   # charts made later
    return len(views)
