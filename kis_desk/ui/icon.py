"""The application icon: the bundled ``resources/kis-desk.png``, or a drawn stand-in."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap


def app_icon() -> QIcon:
    """The bundled ``resources/kis-desk.png``, or a drawn stand-in when it is missing."""
    try:
        from ..paths import resource

        path = resource("kis-desk.png")
        if path.is_file():
            return QIcon(str(path))
    except FileNotFoundError:
        pass
    pm = QPixmap(64, 64)
    pm.fill(QColor(0, 0, 0, 0))
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(QColor(214, 32, 32))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawRoundedRect(4, 4, 56, 56, 10, 10)
    p.setPen(QColor("white"))
    f = p.font()
    f.setPixelSize(34)
    f.setBold(True)
    p.setFont(f)
    p.drawText(pm.rect(), Qt.AlignmentFlag.AlignCenter, "K")
    p.end()
    return QIcon(pm)
