"""The compiled GIL-free trade INSERT (_trade_insert.pyx), wired to Python's own SQLite library.

Why this way: the inserter calls SQLite's C functions directly so that binding needs no Python
objects and no GIL. It must call the *same* SQLite as the ``sqlite3`` module (a second copy of
SQLite in one process breaks the other's POSIX file locks, see sqlite.org/howtocorrupt.html
§2.2.1), so nothing is linked at build time: the functions are looked up with ``ctypes`` in the
loaded ``_sqlite3`` extension (on Linux and macOS a look-up there also searches the libraries it
was linked with) or, on Windows, in the ``sqlite3.dll`` beside it, and only used when that
library reports the version the ``sqlite3`` module reports. Anything else (not built,
``KIS_DESK_PURE_PYTHON=1``, functions not exported) leaves ``open_inserter`` returning None and
the writer binds through the ``sqlite3`` module as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from ...core.compiled import pure_python_requested

log = logging.getLogger(__name__)

FUNCTIONS = ("sqlite3_open_v2", "sqlite3_close_v2", "sqlite3_prepare_v2", "sqlite3_step",
             "sqlite3_reset", "sqlite3_finalize", "sqlite3_bind_int64", "sqlite3_bind_double",
             "sqlite3_bind_null", "sqlite3_bind_text", "sqlite3_exec", "sqlite3_changes",
             "sqlite3_errcode", "sqlite3_errmsg", "sqlite3_busy_timeout")

# SQLite primary result codes → the exception the sqlite3 module raises for them
# (CPython Modules/_sqlite/util.c, _pysqlite_seterror).
_INTEGRITY = {19, 20}                                   # CONSTRAINT, MISMATCH
_INTERFACE = {21, 25}                                   # MISUSE, RANGE
_INTERNAL = {2, 12}                                     # INTERNAL, NOTFOUND
_DATABASE = {11, 26}                                    # CORRUPT, NOTADB


def raise_sqlite_error(code: int, message: str) -> None:
    """Raise what ``sqlite3`` would for SQLite result ``code``: the writer's link tells a
    malformed value from an unavailable database by these types."""
    if code == 7:
        raise MemoryError(message)
    if code in _INTEGRITY:
        cls: type[Exception] = sqlite3.IntegrityError
    elif code in _INTERFACE:
        cls = sqlite3.InterfaceError
    elif code in _INTERNAL:
        cls = sqlite3.InternalError
    elif code in _DATABASE:
        cls = sqlite3.DatabaseError
    elif code == 18:                                    # TOOBIG
        cls = sqlite3.DataError
    else:
        cls = sqlite3.OperationalError
    raise cls(message)


def _candidates() -> list[str]:
    import _sqlite3

    path = getattr(_sqlite3, "__file__", None)
    if not path:
        return []
    found = [path]
    if sys.platform == "win32":
        found.append(os.path.join(os.path.dirname(path), "sqlite3.dll"))
    return found


def _version_number() -> int:
    major, minor, patch = sqlite3.sqlite_version_info
    return major * 1_000_000 + minor * 1_000 + patch


def find_functions() -> dict[str, int] | None:
    """Addresses of ``FUNCTIONS`` in the SQLite the sqlite3 module uses, or None."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            version = lib.sqlite3_libversion_number
            version.restype, version.argtypes = ctypes.c_int, []
            if version() != _version_number():
                continue
            found = {name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in FUNCTIONS}
        except (OSError, AttributeError):
            continue
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def _load() -> Any:
    if pure_python_requested():
        return None
    try:
        from . import _trade_insert  # type: ignore[attr-defined]
    except ImportError:
        return None
    functions = find_functions()
    if functions is None:
        log.info("SQLite's functions are not reachable here; trades are bound through sqlite3")
        return None
    _trade_insert.install(functions, raise_sqlite_error)
    return _trade_insert


_KERNEL = _load()
#: "compiled" when the GIL-free inserter runs, else "python" (benchmarks, self-check).
IMPLEMENTATION = "compiled" if _KERNEL is not None else "python"


def open_inserter(path: str, busy_timeout_ms: int, insert_one: str, multi_inserts: dict[int, str],
                  venues: dict[str, int], sources: dict[str, int],
                  epoch_parts: Callable[..., tuple[int, int]], kst_seconds: int) -> Any:
    """A ``TradeInserter`` on ``path`` with the given INSERTs ({rows: SQL} besides the one-row
    one), or None where the compiled inserter is not available."""
    if _KERNEL is None:
        return None
    return _KERNEL.TradeInserter(path, busy_timeout_ms, insert_one, multi_inserts, venues,
                                 sources, epoch_parts, kst_seconds)


__all__ = ["IMPLEMENTATION", "find_functions", "open_inserter", "raise_sqlite_error"]
