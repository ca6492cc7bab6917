"""Environments, credentials and user paths.

Secrets are wrapped in :class:`Secret`, whose ``repr``/``str`` never show the value, so a
credential that reaches a log line or an exception message prints as ``Secret(***)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

APP_NAME = "kis-desk"



class Secret:
    """A string that never prints itself. ``reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __reduce__(self) -> tuple:  # never pickled into a plain-text artefact by accident
        raise TypeError("Secret values cannot be pickled")


@dataclass(frozen=True)
class Environment:
    """Where a KIS-speaking server lives."""

    name: str              # "real" | "mock" | "sim" | "custom"
    rest_url: str
    ws_url: str
    rest_rate_per_second: float   # KIS: 20/s real, 2/s mock (§7.2)


REAL = Environment("real", "https://openapi.koreainvestment.com:9443",
                   "ws://ops.koreainvestment.com:21000", 19.0)
MOCK = Environment("mock", "https://openapivts.koreainvestment.com:29443",
                   "ws://ops.koreainvestment.com:31000", 1.8)
ENVIRONMENTS: dict[str, Environment] = {"real": REAL, "mock": MOCK}


def custom_environment(ws_url: str, rest_url: str, rate: float = 19.0, name: str = "custom") -> Environment:
    return Environment(name, rest_url.rstrip("/"), ws_url, rate)


@dataclass(frozen=True)
class AppCredential:
    """One KIS app key and secret. ``label`` is what logs and the UI show."""

    label: str
    app_key: Secret
    app_secret: Secret

    def __repr__(self) -> str:
        return f"AppCredential({self.label!r})"


def credentials_from_env(env: Mapping[str, str] | None = None) -> list[AppCredential]:
    """``KIS_APP_KEY``/``KIS_APP_SECRET``, then ``KIS_APP_KEY_2``/``KIS_APP_SECRET_2``, …"""
    env = os.environ if env is None else env
    creds: list[AppCredential] = []

    def pair(suffix: str) -> tuple[str, str]:
        key_name, secret_name = f"KIS_APP_KEY{suffix}", f"KIS_APP_SECRET{suffix}"
        key, secret = env.get(key_name), env.get(secret_name)
        if key is not None or secret is not None:
            for name, value in ((key_name, key), (secret_name, secret)):
                if not (value or "").strip():   # half a key must never be dropped silently
                    raise ValueError(f"{name} is {'empty' if value is not None else 'not set'} "
                                     f"(set both {key_name} and {secret_name}, or neither)")
        return (key or "").strip(), (secret or "").strip()

    key, secret = pair("")
    if key and secret:
        creds.append(AppCredential("key1", Secret(key), Secret(secret)))
    n = 2
    while True:
        key, secret = pair(f"_{n}")
        if not (key and secret):
            if n > 9:
                break
            n += 1
            continue
        creds.append(AppCredential(f"key{n}", Secret(key), Secret(secret)))
        n += 1
    return creds


_CODE_RE = re.compile(r"^(?:\d{6}|Q\d{6})$")


def is_valid_stock_code(code: str) -> bool:
    """Six digits, or ``Q`` + six digits for ETNs."""
    return bool(_CODE_RE.match(code))


def parse_codes(text: str) -> list[str]:
    """``"005930, 000660"`` → ``["005930", "000660"]``; raises ValueError naming bad codes."""
    codes = [c.strip().upper() for c in text.replace(" ", ",").split(",") if c.strip()]
    bad = [c for c in codes if not is_valid_stock_code(c)]
    if bad:
        raise ValueError(f"invalid stock code(s): {', '.join(bad)} (expected 6 digits, or Q + 6 digits)")
    seen: dict[str, None] = {}
    for c in codes:
        seen.setdefault(c, None)
    return list(seen)


def redact_url(url: str) -> str:
    """``postgresql://user:pw@host/db`` → ``postgresql://user:***@host/db``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class UserPaths:
    """Per-OS directories (platformdirs); overridable with ``KIS_DESK_HOME`` for tests."""

    data: Path
    logs: Path
    config: Path

    @classmethod
    def default(cls) -> UserPaths:
        home = os.environ.get("KIS_DESK_HOME")
        if home:
            base = Path(home)
            return cls(base / "data", base / "logs", base / "config")
        return cls(
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        )

    def ensure(self) -> UserPaths:
        for p in (self.data, self.logs, self.config):
            p.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def default_database_url(self) -> str:
        return f"sqlite:///{(self.data / 'kis-desk.sqlite3').as_posix()}"

    @property
    def default_demo_database_url(self) -> str:
        """The built-in simulator's ticks never mix with real market data."""
        return f"sqlite:///{(self.data / 'kis-desk-demo.sqlite3').as_posix()}"

    @property
    def token_dir(self) -> Path:
        """Encrypted access tokens kept across restarts (see feed/token_cache.py)."""
        return self.data / "tokens"

    @property
    def journal_dir(self) -> Path:
        return self.data / "journal"

    def journal_dir_for(self, database_url: str) -> Path:
        """One journal per database, so a journal is always replayed into the right one."""
        import hashlib

        digest = hashlib.sha256(redact_url(database_url).encode()).hexdigest()[:12]
        return self.data / "journal" / digest


