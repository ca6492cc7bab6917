"""Logging: a rotating file in the user log directory plus stderr, with secrets redacted.

Redaction is a filter on every handler, so a secret that slips into a message or a traceback
(an app key in an exception text, a password in a URL) is masked before it is written.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

_registered_secrets: set[str] = set()

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # user:password@ in URLs
    re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<secret>[^@\s/]+)(?P<post>@)", re.I),
    re.compile(r"(?P<pre>Bearer\s+)(?P<secret>[A-Za-z0-9._\-]+)(?P<post>)"),
    # JSON / header fields that carry secrets
    re.compile(r'(?P<pre>"?(?:appkey|appsecret|secretkey|approval_key|access_token|authorization|'
               r'password|app_key|app_secret)"?\s*[:=]\s*"?(?:Bearer\s+)?)(?P<secret>[^"\s,}]+)(?P<post>)',
               re.I),
)


def register_secret(value: str) -> None:
    """Mask this exact value wherever it appears in a log record (app keys, approval keys…)."""
    if value and len(value) >= 6:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group('pre')}***{m.group('post')}", text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", log_dir: Path | None = None, *, stream=None) -> Path | None:
    """Configure root logging once; returns the log file path (None without a log dir)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_kis_desk", False):
            root.removeHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    fmt = RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    out = stream or sys.stderr
    if out is not None:  # a windowed (frozen) Windows app has no stderr
        console = logging.StreamHandler(out)
        console.setFormatter(fmt)
        console._kis_desk = True  # type: ignore[attr-defined]
        root.addHandler(console)
    path = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            path = log_dir / "kis-desk.log"
            file_handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8")
            file_handler.setFormatter(fmt)
            file_handler._kis_desk = True  # type: ignore[attr-defined]
            root.addHandler(file_handler)
        except OSError as exc:
            root.warning("cannot write log file in %s: %s", log_dir, exc)
            path = None
    for noisy in ("websockets", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return path
