"""One way to turn an exception into the one line a user (or a log) reads."""

from __future__ import annotations


def describe(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` (just the type name when the message is
    empty): never a traceback, never a multi-line driver dump."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


__all__ = ["describe"]
