"""User settings: non-secret values in a JSON file, secrets in the OS keyring.

Why split: the JSON file is plain text in the user's config folder (backed up, synced, read by
anyone with the account); app secrets and database/Redis passwords must never land there.
Secrets go to the keyring (service ``kis-desk``). When no usable keyring backend exists (the
``fail``/``null`` backends on a headless machine) secrets live only in this process's memory
for the session, and :attr:`SecretStore.persistent` is False so the UI can say so.

URLs: a password inside a database or Redis URL is cut out before the URL is written to JSON and
stored in the keyring under ``database-url-password`` / ``redis-url-password``; reading the URL
splices it back.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import keyring
import keyring.errors

from .config import AppCredential, Secret, UserPaths
from .defaults import DEFAULT_THRESHOLD_PCT, DEFAULT_VENUE, DEFAULT_WINDOW_SECONDS, RETENTION_DAYS

log = logging.getLogger(__name__)

SERVICE = "kis-desk"
ENVIRONMENT_CHOICES = ("sim", "mock", "real")
VENUE_CHOICES = ("krx", "nxt", "total")   # kis_desk.market.venues (base layer: no import)
COLOUR_SCHEMES = ("korean", "western")
THEMES = ("system", "light", "dark")   # system: follow the desktop's light/dark setting
MAX_KEYS = 4
MAX_RETENTION_DAYS = 36_500            # raw trades kept at most 100 years (0: forever)
SETTINGS_FILE = "settings.json"


@dataclass
class UserSettings:
    """Everything the user can change that is not a secret."""

    environment: str = "sim"
    #: whose trades: krx, nxt or total (KRX + NXT integrated). A server that does not offer the
    #: NXT / integrated TRs (KIS paper trading) makes the run fall back to krx, saying so.
    venue: str = DEFAULT_VENUE
    key_count: int = 0                 # app key pairs stored (key1 … keyN)
    database_url: str = ""             # password removed (see module doc); "" → default SQLite
    redis_url: str = ""                # password removed; "" → no Redis
    redis_channel: str = "kis:alerts"
    alert_threshold_pct: float = DEFAULT_THRESHOLD_PCT
    alert_window_seconds: float = DEFAULT_WINDOW_SECONDS
    retention_days: int = RETENTION_DAYS   # raw trades kept (0: forever); 1-minute bars are kept forever
    colour_scheme: str = "korean"      # korean: up red / down blue; western: up green / down red
    sound: bool = True
    sound_volume: int = 80             # % of the bundled chime's level; 0 = silent
    theme: str = "system"
    language: str = "ko"
    watchlist: str = ""                # name of the watchlist shown last
    master_url: str = ""               # KIS master-file base URL; "" → KIS's (market/master_update.py)
    keep_running_in_tray: bool = True  # closing the window keeps collecting (where a tray exists)
    tray_hint_shown: bool = False      # the one-time "still running in the tray" message was shown
    window: dict[str, Any] = field(default_factory=dict)   # geometry/state blobs (base64)

    def validate(self) -> None:
        """Clamp/repair values read from a hand-edited file instead of failing at start-up."""
        if self.environment not in ENVIRONMENT_CHOICES:
            self.environment = "sim"
        if self.venue not in VENUE_CHOICES:
            self.venue = DEFAULT_VENUE
        if self.colour_scheme not in COLOUR_SCHEMES:
            self.colour_scheme = "korean"
        if self.theme not in THEMES:
            self.theme = "system"
        try:
            self.sound_volume = max(0, min(100, int(self.sound_volume)))
        except (TypeError, ValueError):
            self.sound_volume = 80
        if self.language not in ("ko", "en"):
            self.language = "ko"
        self.key_count = max(0, min(MAX_KEYS, int(self.key_count)))
        if not 0 < float(self.alert_threshold_pct) < 100:
            self.alert_threshold_pct = DEFAULT_THRESHOLD_PCT
        if not 1 <= float(self.alert_window_seconds) <= 3600:
            self.alert_window_seconds = DEFAULT_WINDOW_SECONDS
        try:
            self.retention_days = int(self.retention_days)
        except (TypeError, ValueError):
            self.retention_days = RETENTION_DAYS
        if not 0 <= self.retention_days <= MAX_RETENTION_DAYS:
            self.retention_days = RETENTION_DAYS
        if not isinstance(self.window, dict):
            self.window = {}


def keyring_is_usable(backend: Any | None = None) -> bool:
    """False for keyring's fail/null backends and an empty chainer (headless machines)."""
    kr = backend if backend is not None else keyring.get_keyring()
    module = type(kr).__module__
    if module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null"):
        return False
    if module.startswith("keyring.backends.chainer"):
        return bool(getattr(kr, "backends", ()))
    return True


def keyring_name(backend: Any | None = None) -> str:
    kr = backend if backend is not None else keyring.get_keyring()
    return getattr(kr, "name", type(kr).__name__)


class SecretStore:
    """Keyring-backed secrets with an in-memory fallback that is never written anywhere."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service
        self._session: dict[str, str] = {}
        self.persistent = keyring_is_usable()
        self.last_error = ""

    def get(self, name: str) -> Secret | None:
        if name in self._session:
            return Secret(self._session[name])
        if not self.persistent:
            return None
        try:
            value = keyring.get_password(self.service, name)
        except keyring.errors.KeyringError as exc:
            self._fail(exc)
            return None
        return Secret(value) if value else None

    def set(self, name: str, value: Secret | None) -> None:
        """Store (or with None/empty, delete) a secret; falls back to the session on failure."""
        if value is None or not value:
            self.delete(name)
            return
        if self.persistent:
            try:
                keyring.set_password(self.service, name, value.reveal())
                self._session.pop(name, None)
                return
            except keyring.errors.KeyringError as exc:
                self._fail(exc)
        self._session[name] = value.reveal()

    def delete(self, name: str) -> None:
        self._session.pop(name, None)
        if not self.persistent:
            return
        try:
            keyring.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        # A keyring that exists but refuses (locked, no D-Bus session): session-only from now on.
        log.warning("system keyring failed (%s); secrets kept for this session only", type(exc).__name__)
        self.last_error = type(exc).__name__
        self.persistent = False


def split_url_password(url: str) -> tuple[str, str]:
    """``scheme://user:pw@host/db`` → (``scheme://user@host/db``, ``pw``). Text kept verbatim.

    Raises ValueError for text that is not a URL with a scheme and a host.
    """
    url = url.strip()
    if not url:
        return "", ""
    parts = urlsplit(url)
    if not parts.scheme or not (parts.netloc or parts.path):
        raise ValueError(f"not a URL: {url!r}")
    if "@" not in parts.netloc:
        return url, ""
    userinfo, host = parts.netloc.rsplit("@", 1)
    if ":" not in userinfo:
        return url, ""
    user, password = userinfo.split(":", 1)
    netloc = f"{user}@{host}" if user else host   # redis://:pw@host → redis://host
    return urlunsplit(parts._replace(netloc=netloc)), password


def join_url_password(url: str, password: str) -> str:
    """Inverse of :func:`split_url_password`."""
    if not url or not password:
        return url
    parts = urlsplit(url)
    if "@" in parts.netloc:
        user, host = parts.netloc.rsplit("@", 1)
        netloc = f"{user}:{password}@{host}"
    else:
        netloc = f":{password}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


class SettingsStore:
    """Load/save :class:`UserSettings` and the secrets that go with them."""

    def __init__(self, paths: UserPaths | None = None, secrets: SecretStore | None = None) -> None:
        self.paths = paths or UserPaths.default()
        self.secrets = secrets or SecretStore()

    @property
    def path(self) -> Path:
        return self.paths.config / SETTINGS_FILE

    # -- plain settings ---------------------------------------------------------------------
    def load(self) -> UserSettings:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return UserSettings()
        except (OSError, ValueError) as exc:
            log.warning("settings file %s unreadable (%s); using defaults", self.path, exc)
            return UserSettings()
        known = {f.name for f in fields(UserSettings)}
        settings = UserSettings(**{k: v for k, v in raw.items() if k in known})
        settings.validate()
        return settings

    def save(self, settings: UserSettings) -> None:
        """Atomic write (temp file + rename) so a crash never leaves half a file."""
        settings.validate()
        for url in (settings.database_url, settings.redis_url):
            if url and split_url_password(url)[1]:
                raise ValueError("a URL with a password must go through set_database_url/set_redis_url")
        self.paths.config.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(settings), ensure_ascii=False, indent=2)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=self.paths.config)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- secrets ----------------------------------------------------------------------------
    def credentials(self, settings: UserSettings) -> list[AppCredential]:
        """Stored key pairs, in order; a pair with a missing half is skipped."""
        creds: list[AppCredential] = []
        for n in range(1, settings.key_count + 1):
            key, secret = self.secrets.get(f"app-key-{n}"), self.secrets.get(f"app-secret-{n}")
            if key and secret:
                creds.append(AppCredential(f"key{n}", key, secret))
        return creds

    def set_credentials(self, settings: UserSettings, creds: list[tuple[Secret, Secret]]) -> None:
        """Replace all key pairs (at most four); removes the ones beyond the new count."""
        if len(creds) > MAX_KEYS:
            raise ValueError(f"at most {MAX_KEYS} app key pairs")
        for n, (key, secret) in enumerate(creds, start=1):
            self.secrets.set(f"app-key-{n}", key)
            self.secrets.set(f"app-secret-{n}", secret)
        for n in range(len(creds) + 1, MAX_KEYS + 1):
            self.secrets.delete(f"app-key-{n}")
            self.secrets.delete(f"app-secret-{n}")
        settings.key_count = len(creds)

    def set_database_url(self, settings: UserSettings, url: str) -> None:
        settings.database_url = self._set_url("database-url-password", url)

    def set_redis_url(self, settings: UserSettings, url: str) -> None:
        settings.redis_url = self._set_url("redis-url-password", url)

    def database_url(self, settings: UserSettings) -> str | None:
        return self._get_url("database-url-password", settings.database_url)

    def redis_url(self, settings: UserSettings) -> str | None:
        return self._get_url("redis-url-password", settings.redis_url)

    def _set_url(self, secret_name: str, url: str) -> str:
        bare, password = split_url_password(url)
        self.secrets.set(secret_name, Secret(password) if password else None)
        return bare

    def _get_url(self, secret_name: str, bare: str) -> str | None:
        if not bare:
            return None
        password = self.secrets.get(secret_name)
        return join_url_password(bare, password.reveal()) if password else bare


__all__ = [
    "COLOUR_SCHEMES", "ENVIRONMENT_CHOICES", "MAX_KEYS", "VENUE_CHOICES", "SERVICE", "SecretStore",
    "SettingsStore", "THEMES", "UserSettings", "join_url_password", "keyring_is_usable", "keyring_name",
    "split_url_password",
]
