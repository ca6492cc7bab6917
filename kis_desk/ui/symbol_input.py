"""Finding a symbol from what a trader types: a code, a Korean or English name, or a completer
entry ("005930 삼성전자 · Samsung Electronics").

Apart from the watchlist editor because it is a job of its own (the bundled directory, its
search, the completer's entries) that other inputs — the alert rules, a future order ticket —
can use without the editor's list handling.

Unknown codes: the bundled symbol list has only a few hundred names, so a well-formed code that
is not in it is *accepted with a warning* (KIS may still know it); anything that is neither a
well-formed code nor a known name is refused.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QStringListModel, Qt
from PySide6.QtWidgets import QCompleter

from ..config import is_valid_stock_code
from ..engine.handle import SymbolLookup
from .i18n import tr


class InputError(ValueError):
    """User input refused; the message is for the user (already translated)."""


def resolve_symbol(text: str, symbols: SymbolLookup) -> tuple[str, str | None]:
    """Code for user text (a code, a Korean/English name, or a completer entry).

    Returns (code, warning or None); raises InputError when nothing sensible matches.
    """
    raw = text.strip()
    if not raw:
        raise InputError(tr("wl.invalid", text=text))
    first = raw.split()[0].upper()
    if is_valid_stock_code(first):
        return first, (None if first in symbols else tr("wl.unknown", code=first))
    matches = symbols.search(raw, 5)
    lowered = raw.lower()
    exact = [s for s in matches if s.name_ko.lower() == lowered or s.name_en.lower() == lowered]
    if exact:
        return exact[0].code, None
    if len(matches) == 1:
        return matches[0].code, None
    raise InputError(tr("wl.invalid", text=raw))


def completion_entries(symbols: SymbolLookup) -> list[str]:
    """One completer line per known symbol: ``code name_ko · name_en``."""
    return [f"{s.code} {s.name_ko} · {s.name_en}" if s.name_en else f"{s.code} {s.name_ko}"
            for s in symbols]  # type: ignore[attr-defined]


def symbol_completer(symbols: SymbolLookup, parent: QObject) -> QCompleter:
    """A completer over every known symbol, matching anywhere in the line, any case."""
    completer = QCompleter(QStringListModel(completion_entries(symbols), parent), parent)
    completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
    completer.setFilterMode(Qt.MatchFlag.MatchContains)
    completer.setMaxVisibleItems(12)
    return completer


__all__ = ["InputError", "completion_entries", "resolve_symbol", "symbol_completer"]
