"""One font for Korean and Latin text, and Qt's own strings (dialog buttons) in the UI language.

Why the font: the default Linux UI font (DejaVu Sans) has no Hangul, so Korean names fell back
to another family while Latin names stayed in DejaVu, which is wider and heavier — Latin-named
rows looked bold next to Korean ones (issue 12). A family that covers both is chosen once.

Why the translator: ``QDialogButtonBox`` standard buttons (OK/Cancel/Save…) are Qt's strings;
with ``qtbase_ko`` installed they read 확인/취소 in a Korean UI.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

#: families that draw Hangul and Latin alike, by platform (first found wins)
KOREAN_FAMILIES = ("Malgun Gothic", "맑은 고딕", "Apple SD Gothic Neo", "Noto Sans KR", "Noto Sans CJK KR",
                   "NanumBarunGothic", "NanumGothic", "Nanum Gothic", "Source Han Sans KR", "UnDotum")

_translators: list[QTranslator] = []
_language: str | None = None


def korean_family() -> str | None:
    """The first installed family of :data:`KOREAN_FAMILIES`, else any with Korean glyphs."""
    families = set(QFontDatabase.families())
    for name in KOREAN_FAMILIES:
        if name in families:
            return name
    for name in sorted(families):
        if QFontDatabase.WritingSystem.Korean in QFontDatabase.writingSystems(name) and \
                not QFontDatabase.isFixedPitch(name):
            return name
    return None


def apply_ui_font(app: QApplication | None = None) -> str | None:
    """Make the application font a Hangul+Latin family (size kept); returns the family used."""
    app = app or QApplication.instance()   # type: ignore[assignment]
    if app is None:
        return None
    current = app.font()
    if QFontDatabase.WritingSystem.Korean in QFontDatabase.writingSystems(current.family()):
        return current.family()
    family = korean_family()
    if family is None:
        log.info("no font with Korean glyphs found; names use Qt's fallback")
        return None
    font = QFont(current)
    font.setFamilies([family])
    app.setFont(font)
    return family


def install_qt_translations(language: str) -> bool:
    """Qt's own strings in ``language`` ("ko": qtbase_ko); "en" removes them. Idempotent."""
    global _language
    if language == _language:
        return bool(_translators)
    app = QCoreApplication.instance()
    if app is None:
        return False
    for t in _translators:
        app.removeTranslator(t)
    _translators.clear()
    _language = language
    if language != "ko":
        return False
    path = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    translator = QTranslator(app)
    if translator.load(QLocale(QLocale.Language.Korean), "qtbase", "_", path):
        app.installTranslator(translator)
        _translators.append(translator)
        return True
    log.info("Qt's Korean translation (qtbase_ko) not found in %s", path)
    return False
