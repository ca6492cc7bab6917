"""Finding an optional compiled module (the Cython kernels setup.py builds when it can).

Why one place: every kernel has a pure-Python twin that runs when the extension was not built
(no C compiler at install) or when ``KIS_DESK_PURE_PYTHON=1`` asks for the reference path (tests,
benchmarks, a suspected kernel bug); the rule for choosing must be the same for all of them.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def compiled_module(name: str) -> ModuleType | None:
    """The extension module ``name`` (absolute), or None: not built, or pure Python asked for."""
    if os.environ.get("KIS_DESK_PURE_PYTHON") == "1":
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


__all__ = ["compiled_module"]
