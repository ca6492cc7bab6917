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

    def direction(self, sign: int) -> QColor:
        return self.up if sign > 0 else self.down if sign < 0 else self.flat


KOREAN = Palette("korean", QColor(214, 32, 32), QColor(25, 84, 220), QColor(90, 90, 90),
                 QColor(255, 120, 120), QColor(120, 160, 255), QColor(255, 214, 90),
                 QColor(255, 255, 255))
WESTERN = Palette("western", QColor(0, 150, 60), QColor(214, 32, 32), QColor(90, 90, 90),
                  QColor(110, 220, 140), QColor(255, 120, 120), QColor(255, 214, 90),
                  QColor(255, 255, 255))
PALETTES = {"korean": KOREAN, "western": WESTERN}


def palette(name: str) -> Palette:
    return PALETTES.get(name, KOREAN)
