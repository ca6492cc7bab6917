"""One way to turn an exception into the one line a user (or a log) reads."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from ..config import redact_url


def describe(exc: BaseException, url: str | None = None) -> str:
    """``"TypeName: first line of the message"`` (just the type name when the message is
    empty): never a traceback, never a multi-line driver dump. With ``url`` (a Redis or database
    URL the error may quote), its password — as written and percent-decoded — becomes ``***``
    and the URL itself shows redacted (:func:`~kis_desk.config.redact_url`)."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if url is None:
        return line
    try:
        pw = urlsplit(url).password
    except ValueError:
        pw = None
    for secret in filter(None, (pw, unquote(pw) if pw else None)):
        line = line.replace(secret, "***")
    return line.replace(url, redact_url(url))


__all__ = ["describe"]
