"""The rule for running the optional compiled kernels (the Cython modules setup.py builds).

Why one place: every kernel has a pure-Python twin that runs when the extension was not built
(no C compiler at install) or when ``KIS_DESK_PURE_PYTHON=1`` asks for the reference path (tests,
benchmarks, a suspected kernel bug). Each loader keeps its own ``from . import _kernel`` in a
``try``: a static import is what tells PyInstaller to carry the extension.
"""

from __future__ import annotations

import os


def pure_python_requested() -> bool:
    """``KIS_DESK_PURE_PYTHON=1``: use the pure-Python twins even where kernels are built."""
    return os.environ.get("KIS_DESK_PURE_PYTHON") == "1"


__all__ = ["pure_python_requested"]
