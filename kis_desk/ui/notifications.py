"""Alert notifications: an in-window banner always, the system tray when one exists, a sound.

Why the banner: offscreen, under bare Xvfb and on some desktops there is no system tray and
``QSystemTrayIcon.showMessage`` silently does nothing. The sound is a distinct up/down chime
(:mod:`kis_desk.ui.alert_sound`), falling back to ``QApplication.beep()``.
"""

from __future__ import annotations

from collections import deque

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSystemTrayIcon, QToolButton, QWidget

from ..core.events import AlertEvent
from .alert_sound import AlertSounds
from .i18n import tr
from .theme import KOREAN, Palette

BANNER_SECONDS = 8.0
MAX_LINES = 3


def alert_text(alert: AlertEvent) -> str:
    text = tr("alert.toast", name=alert.stock_name or alert.stock_code, code=alert.stock_code,
              direction=tr(f"alert.{alert.direction}"), change=alert.change_pct,
              window=alert.window_seconds, price=f"{alert.trigger_price:,}")
    if alert.late:
        text += " · " + tr("alert.late", delay=alert.delay_s)
    if alert.vi:
        text += " · " + tr(f"alert.vi.{alert.vi}")
    return text


class AlertBanner(QFrame):
    """A coloured strip at the top of the window with the latest alerts; click to acknowledge."""

    clicked = Signal(list)      # alert ids shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alertBanner")
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button)
        self.lines: deque[tuple[str, str]] = deque(maxlen=MAX_LINES)   # (alert_id, text)
        self.hide_timer = QTimer(self)
        self.hide_timer.setSingleShot(True)
        self.hide_timer.timeout.connect(self.dismiss)
        self.set_palette(KOREAN)
        self.hide()

    def set_palette(self, palette: Palette) -> None:
        bg = QColor(palette.alert)
        text = "black" if bg.lightnessF() > 0.5 else "white"      # dark theme: dark amber banner
        border = bg.darker(140) if bg.lightnessF() > 0.5 else bg.lighter(180)
        self.setStyleSheet(f"#alertBanner {{ background: {bg.name()}; border: 1px solid "
                           f"{border.name()}; border-radius: 3px; }} "
                           f"#alertBanner QLabel {{ color: {text}; font-weight: bold; }}")

    def show_alert(self, alert: AlertEvent, text: str | None = None) -> None:
        self.lines.appendleft((alert.alert_id, text or alert_text(alert)))
        self.label.setText("\n".join(text for _, text in self.lines))
        self.close_button.setToolTip(tr("toast.close"))
        self.show()
        self.hide_timer.start(int(BANNER_SECONDS * 1000))

    def dismiss(self) -> None:
        self.lines.clear()
        self.hide()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        ids = [aid for aid, _ in self.lines]
        self.dismiss()
        if ids:
            self.clicked.emit(ids)


class Notifier:
    """Fans one alert out to the banner, the tray (if any) and the speaker (if enabled).

    ``beeps`` counts alert sounds started (whatever backend played them, see ``sounds.played``).
    """

    def __init__(self, banner: AlertBanner, tray: QSystemTrayIcon | None = None,
                 sounds: AlertSounds | None = None) -> None:
        self.banner = banner
        self.tray = tray
        self.sound = True
        self.sounds = sounds or AlertSounds()
        self.sounds.probe_in_background()
        self.shown = 0
        self.tray_messages = 0
        self.beeps = 0
        self.reaper = QTimer(banner)            # collects finished players (exit status → fallback)
        self.reaper.setInterval(250)
        self.reaper.timeout.connect(self._reap)

    @staticmethod
    def tray_available() -> bool:
        return QSystemTrayIcon.isSystemTrayAvailable()

    def set_volume(self, volume: int) -> None:
        self.sounds.volume = volume

    def notify(self, alert: AlertEvent, text: str | None = None) -> dict[str, bool | str]:
        """Banner, tray, sound for one alert; says what each channel did (the test alert shows it)."""
        text = text or alert_text(alert)
        self.banner.show_alert(alert, text)
        self.shown += 1
        done: dict[str, bool | str] = {"banner": True, "tray": False, "sound": ""}
        if self.tray is not None and self.tray.isVisible() and self.tray_available():
            self.tray.showMessage(tr("alert.tray_title"), text, QSystemTrayIcon.MessageIcon.Warning, 8000)
            self.tray_messages += 1
            done["tray"] = True
        if self.sound:
            done["sound"] = self.sounds.play(alert.direction)
            self.beeps += 1
            self.reaper.start()
        return done

    def _reap(self) -> None:
        self.sounds.reap()
        if not self.sounds.busy:
            self.reaper.stop()
