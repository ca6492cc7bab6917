"""Settings dialog over :mod:`kis_desk.settings` (secrets → keyring, the rest → JSON)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSlider,
    QVBoxLayout,
)

from ..config import Secret
from ..settings import (
    COLOUR_SCHEMES,
    ENVIRONMENT_CHOICES,
    MAX_KEYS,
    THEMES,
    VENUE_CHOICES,
    SettingsStore,
    UserSettings,
    keyring_name,
    split_url_password,
)
from .appearance import text_colour
from .i18n import tr
from .storage_info import StorageRows


class SettingsDialog(QDialog):
    """Edits a copy of the settings; ``accept`` validates, stores and keeps ``self.settings``."""

    def __init__(self, store: SettingsStore, settings: UserSettings, parent=None, *,
                 remote: bool = False, tray_available: bool = False) -> None:
        """``remote``: the desktop is attached to a remote collector (the alert rule,
        environment and keys are that collector's: said, and their fields disabled);
        ``tray_available``: offer "keep collecting in the tray"."""
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle(tr("settings.title"))
        self.store = store
        self.settings = UserSettings(**{k: getattr(settings, k) for k in settings.__dataclass_fields__})
        self.error = ""

        self.environment = QComboBox()
        for env in ENVIRONMENT_CHOICES:
            self.environment.addItem(tr(f"env.{env}"), env)
        self.environment.setCurrentIndex(ENVIRONMENT_CHOICES.index(settings.environment))
        self.venue = QComboBox()
        self.venue.setObjectName("venueChoice")
        for venue in VENUE_CHOICES:
            self.venue.addItem(tr(f"venue.{venue}"), venue)
        self.venue.setCurrentIndex(VENUE_CHOICES.index(settings.venue))
        self.venue.setToolTip(tr("settings.venue_note"))

        keys_box = QGroupBox(tr("settings.keys"))
        grid = QGridLayout(keys_box)
        self.key_edits: list[tuple[QLineEdit, QLineEdit]] = []
        stored = {c.label for c in store.credentials(settings)}
        for n in range(1, MAX_KEYS + 1):
            key, secret = QLineEdit(), QLineEdit()
            for edit in (key, secret):
                edit.setEchoMode(QLineEdit.EchoMode.Password)
                if f"key{n}" in stored:
                    edit.setPlaceholderText(tr("settings.secret_unchanged"))
            grid.addWidget(QLabel(tr("settings.app_key", n=n)), n - 1, 0)
            grid.addWidget(key, n - 1, 1)
            grid.addWidget(QLabel(tr("settings.app_secret", n=n)), n - 1, 2)
            grid.addWidget(secret, n - 1, 3)
            self.key_edits.append((key, secret))
        self._stored_labels = stored
        note = QLabel(tr("settings.keys_note"))
        grid.addWidget(note, MAX_KEYS, 0, 1, 4)
        self.keyring_label = QLabel()
        self.keyring_label.setWordWrap(True)
        if store.secrets.persistent:
            self.keyring_label.setText(tr("settings.keyring_ok", backend=keyring_name()))
        else:
            self.keyring_label.setText(tr("settings.keyring_missing"))
            self.keyring_label.setStyleSheet(f"color: {text_colour('error')}; font-weight: bold;")
        grid.addWidget(self.keyring_label, MAX_KEYS + 1, 0, 1, 4)

        storage_box = QGroupBox(tr("settings.storage"))
        form = QFormLayout(storage_box)
        self.db_url = QLineEdit(settings.database_url)
        self.db_url.setPlaceholderText(tr("settings.db_placeholder"))
        self.redis_url = QLineEdit(settings.redis_url)
        self.redis_url.setPlaceholderText(tr("settings.redis_placeholder"))
        self.redis_channel = QLineEdit(settings.redis_channel)
        form.addRow(tr("settings.db_url"), self.db_url)
        form.addRow(tr("settings.redis_url"), self.redis_url)
        form.addRow(tr("settings.redis_channel"), self.redis_channel)
        # size, days kept (filled in by show_storage) and the retention
        self.storage = StorageRows(form, settings.retention_days, remote=remote)

        alerts_box = QGroupBox(tr("settings.alerts"))
        form2 = QFormLayout(alerts_box)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.1, 99.0)
        self.threshold.setDecimals(1)
        self.threshold.setValue(settings.alert_threshold_pct)
        self.window_s = QDoubleSpinBox()
        self.window_s.setRange(1, 3600)
        self.window_s.setDecimals(0)
        self.window_s.setValue(settings.alert_window_seconds)
        self.sound = QCheckBox(tr("settings.sound"))
        self.sound.setChecked(settings.sound)
        # sound: on/off and volume (applied at once; see MainWindow.apply_settings)
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setObjectName("soundVolume")
        self.volume.setRange(0, 100)
        self.volume.setSingleStep(5)
        self.volume.setPageStep(10)
        self.volume.setValue(settings.sound_volume)
        self.volume_label = QLabel()
        self.volume_label.setMinimumWidth(40)
        self.volume.valueChanged.connect(
            lambda v: self.volume_label.setText(tr("settings.volume_value", volume=v)))
        self.volume_label.setText(tr("settings.volume_value", volume=settings.sound_volume))
        self.sound.toggled.connect(self.volume.setEnabled)
        self.volume.setEnabled(settings.sound)
        volume_row = QHBoxLayout()
        volume_row.addWidget(self.volume, 1)
        volume_row.addWidget(self.volume_label)
        form2.addRow(tr("settings.threshold"), self.threshold)
        form2.addRow(tr("settings.window"), self.window_s)
        form2.addRow(self.sound)
        form2.addRow(tr("settings.volume"), volume_row)
        self.tray = QCheckBox(tr("settings.tray"))
        self.tray.setChecked(settings.keep_running_in_tray)
        self.tray.setVisible(tray_available)
        form2.addRow(self.tray)

        look_box = QGroupBox(tr("settings.appearance"))
        form3 = QFormLayout(look_box)
        self.colours = QComboBox()
        for scheme in COLOUR_SCHEMES:
            self.colours.addItem(tr(f"colours.{scheme}"), scheme)
        self.colours.setCurrentIndex(COLOUR_SCHEMES.index(settings.colour_scheme))
        self.language = QComboBox()
        for lang in ("ko", "en"):
            self.language.addItem(tr(f"lang.{lang}"), lang)
        self.language.setCurrentIndex(("ko", "en").index(settings.language))
        self.theme = QComboBox()
        self.theme.setObjectName("themeChoice")
        for theme in THEMES:
            self.theme.addItem(tr(f"theme.{theme}"), theme)
        self.theme.setCurrentIndex(THEMES.index(settings.theme))
        form3.addRow(tr("settings.colours"), self.colours)
        form3.addRow(tr("settings.theme"), self.theme)
        form3.addRow(tr("settings.language"), self.language)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        form0 = QFormLayout()
        form0.addRow(tr("settings.environment"), self.environment)
        form0.addRow(tr("settings.venue"), self.venue)
        layout.addLayout(form0)
        layout.addWidget(keys_box)
        layout.addWidget(storage_box)
        layout.addWidget(alerts_box)
        layout.addWidget(look_box)
        self.note = QLabel(tr("settings.remote_note" if remote else "settings.live_note"))
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        if remote:
            for widget in (self.environment, self.venue, keys_box, self.threshold, self.window_s):
                widget.setEnabled(False)
        layout.addWidget(buttons)

    def apply(self) -> None:
        """Validate and store; raises ValueError with a user-facing message."""
        s = self.settings
        old_creds = {c.label: c for c in self.store.credentials(s)}
        pairs: list[tuple[Secret, Secret]] = []
        for n, (key_edit, secret_edit) in enumerate(self.key_edits, start=1):
            key, secret = key_edit.text().strip(), secret_edit.text().strip()
            old = old_creds.get(f"key{n}")
            if not key and not secret:
                if old is not None:
                    pairs.append((old.app_key, old.app_secret))
                continue
            if old is not None:
                key = key or old.app_key.reveal()
                secret = secret or old.app_secret.reveal()
            if not (key and secret):
                raise ValueError(tr("settings.key_pair_incomplete", n=n))
            pairs.append((Secret(key), Secret(secret)))
        urls = {}
        for what, edit, stored_bare in ((tr("settings.db_url"), self.db_url, s.database_url),
                                        (tr("settings.redis_url"), self.redis_url, s.redis_url)):
            text = edit.text().strip()
            try:
                split_url_password(text)
            except ValueError:
                raise ValueError(tr("settings.bad_url", what=what, url=text)) from None
            urls[edit] = None if text == stored_bare else text    # None → keep stored password
        s.environment = self.environment.currentData()
        s.venue = self.venue.currentData()
        s.redis_channel = self.redis_channel.text().strip() or "kis:alerts"
        s.alert_threshold_pct = float(self.threshold.value())
        s.alert_window_seconds = float(self.window_s.value())
        if not self.storage.remote:
            s.retention_days = int(self.storage.retention.value())
        s.sound = self.sound.isChecked()
        s.sound_volume = int(self.volume.value())
        s.theme = self.theme.currentData()
        s.keep_running_in_tray = self.tray.isChecked()
        s.colour_scheme = self.colours.currentData()
        s.language = self.language.currentData()
        self.store.set_credentials(s, pairs)
        if urls[self.db_url] is not None:
            self.store.set_database_url(s, urls[self.db_url])
        if urls[self.redis_url] is not None:
            self.store.set_redis_url(s, urls[self.redis_url])
        self.store.save(s)

    def show_storage(self, info) -> None:
        """The engine's ``StorageInfo`` (None: not readable now), read after the dialog opened."""
        self.storage.show(info)

    def accept(self) -> None:
        try:
            self.apply()
        except ValueError as exc:
            self.error = str(exc)
            QMessageBox.warning(self, tr("settings.title"), self.error)
            return
        super().accept()
