"""``python -m tools.icons``: the executable icons from ``resources/kis-desk.png``.

Writes ``resources/kis-desk.ico`` (Windows: 16–256 px in one file, so Explorer and the taskbar
pick a sharp size) and ``resources/kis-desk.icns`` (macOS app bundle). Both are committed, so a
build needs no image library; re-run this (``pip install -e '.[icons]'``) after changing the PNG.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def main() -> int:
    src = Image.open(RESOURCES / "kis-desk.png").convert("RGBA")
    src.save(RESOURCES / "kis-desk.ico", sizes=ICO_SIZES)
    # ICNS wants up to 1024 px; upscaling the 256 px source is what the PNG allows.
    src.resize((1024, 1024), Image.Resampling.LANCZOS).save(RESOURCES / "kis-desk.icns")
    for name in ("kis-desk.ico", "kis-desk.icns"):
        print(f"{RESOURCES / name}: {(RESOURCES / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
