"""Direction colours: Korean (up red, down blue) or Western (up green, down red)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor


@dataclass(frozen=True)
class Palette:
    name: str
    up: QColor
    down: QColor
    flat: QColor
    flash_up: QColor       # price-cell flash background (alpha fades)
    flash_down: QColor
    alert: QColor          # row highlight until acknowledged
    marker_text: QColor    # text on a filled limit marker
    alert_edge: QColor     # frame around an alerted row (the highlight alone is dim on dark)

    def direction(self, sign: int) -> QColor:
        return self.up if sign > 0 else self.down if sign < 0 else self.flat


KOREAN = Palette("korean", QColor(214, 32, 32), QColor(25, 84, 220), QColor(90, 90, 90),
                 QColor(255, 120, 120), QColor(120, 160, 255), QColor(255, 214, 90),
                 QColor(255, 255, 255), QColor(232, 140, 0))
WESTERN = Palette("western", QColor(0, 150, 60), QColor(214, 32, 32), QColor(90, 90, 90),
                  QColor(110, 220, 140), QColor(255, 120, 120), QColor(255, 214, 90),
                  QColor(255, 255, 255), QColor(232, 140, 0))
PALETTES = {"korean": KOREAN, "western": WESTERN}


def palette(name: str) -> Palette:
    return PALETTES.get(name, KOREAN)


# -- dark theme --------------------------------------------------------------------------------
# Surfaces of the dark theme (ui/appearance.py builds the QPalette from them) and direction
# colours lightened so that up and down keep a WCAG contrast of at least 4.5:1 on every surface a
# price is drawn on: the grid, its alternate rows, the alert highlight and the price flash at its
# strongest (tests/test_ui_desk.py).
DARK_WINDOW = QColor(37, 38, 42)
DARK_BASE = QColor(24, 25, 28)
DARK_ALTERNATE = QColor(32, 33, 37)
DARK_TEXT = QColor(222, 222, 222)

KOREAN_DARK = Palette("korean", QColor(255, 99, 99), QColor(100, 150, 255), QColor(170, 170, 170),
                      QColor(120, 30, 30), QColor(30, 50, 120), QColor(56, 46, 12),
                      QColor(16, 16, 16), QColor(255, 190, 40))
WESTERN_DARK = Palette("western", QColor(60, 200, 110), QColor(255, 99, 99), QColor(170, 170, 170),
                       QColor(20, 70, 35), QColor(120, 30, 30), QColor(56, 46, 12),
                       QColor(16, 16, 16), QColor(255, 190, 40))
DARK_PALETTES = {"korean": KOREAN_DARK, "western": WESTERN_DARK}


def palette_for(name: str, dark: bool) -> Palette:
    """The direction colours of scheme ``name`` for a light or a dark background."""
    return DARK_PALETTES.get(name, KOREAN_DARK) if dark else palette(name)


def relative_luminance(colour: QColor) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black … 1 white)."""
    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio (1 … 21); text needs ≥ 4.5 (AA)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
