"""Locate bundled resources in a checkout, an installed package or a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: beside the package in a checkout, or inside the frozen bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    candidates = []
    if frozen:
        candidates.append(Path(frozen) / "resources")
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "resources", here / "resources"]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError("kis-desk resources/ folder not found (looked in: "
                            + ", ".join(str(c) for c in candidates) + ")")


def resource(name: str) -> Path:
    return resources_dir() / name
