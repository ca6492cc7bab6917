"""The detector's per-trade step: compiled (``_detector_step.pyx``) when built, else Python.

Why: after the frame decoder, the move detector's in-order window update is the largest cost
per trade on the event loop (≈ 2 µs in Python, mostly attribute and tuple access). The
compiled ``one`` is ``MoveDetector._one_python`` line for line on a ``SymbolState`` with C
fields; ``KIS_DESK_PURE_PYTHON=1`` (or no C compiler at install) selects the Python pair.

``STATE`` is the per-symbol state class the detector creates, ``COMPILED_ONE`` the compiled
step or None, ``COMPILED_PROCESS`` the compiled batch loop around it or None; :func:`bind` hands the kernel the Python step (for states of the Python class).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.compiled import pure_python_requested
from .detector_window import DOWN, UP, SymbolState


def _load() -> Any:
    if pure_python_requested():
        return None
    try:
        from . import _detector_step  # type: ignore[attr-defined]
    except ImportError:
        return None
    names = set(SymbolState.__slots__)
    if not all(hasattr(_detector_step.SymbolState(None), n) for n in names):
        return None                      # built from an older SymbolState: use Python
    return _detector_step


_KERNEL = _load()
#: The state class the detector creates for each symbol and day.
STATE: type = _KERNEL.SymbolState if _KERNEL is not None else SymbolState
#: The compiled ``MoveDetector._one``, or None.
COMPILED_ONE: Callable[..., Any] | None = _KERNEL.one if _KERNEL is not None else None
#: The compiled ``MoveDetector.process`` (the batch loop around the step), or None.
COMPILED_PROCESS: Callable[..., Any] | None = _KERNEL.process if _KERNEL is not None else None
#: "compiled" or "python" (benchmarks, self-check).
IMPLEMENTATION = "compiled" if _KERNEL is not None else "python"


def bind(python_one: Callable[..., Any]) -> None:
    """Give the kernel the Python step and the direction constants (once, by the detector)."""
    if _KERNEL is not None:
        _KERNEL.configure(UP, DOWN, python_one)


__all__ = ["COMPILED_ONE", "COMPILED_PROCESS", "IMPLEMENTATION", "STATE", "bind"]
