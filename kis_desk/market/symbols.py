"""Stock reference data: code ↔ Korean/English name, market, reference price.

The bundled ``resources/symbols.csv`` covers the largest KOSPI/KOSDAQ stocks and common ETFs so
the app works offline and the simulator prices realistically. KIS's own master files
(``kospi_code.mst`` / ``kosdaq_code.mst``, kis-protocol.md §9) can be merged on top to cover
every listed security.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kis_desk.paths import resource

MARKETS = ("KOSPI", "KOSDAQ")

#: Length of the fixed-width tail of a master-file line (decoded text incl. newline), §9.
MASTER_TAIL = {"KOSPI": 228, "KOSDAQ": 222}


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One listed security. ``ref_price`` is 0 when unknown (e.g. from a master file)."""

    code: str
    name_ko: str
    name_en: str
    market: str
    ref_price: int = 0


class SymbolDirectory:
    """Immutable lookup table by code, with ranked search for the watchlist editor."""

    def __init__(self, symbols: Iterable[SymbolInfo] = ()) -> None:
        self._by_code: dict[str, SymbolInfo] = {}
        for s in symbols:
            self._by_code[s.code] = s
        # lower-cased search keys, computed once (the editor searches on every keystroke)
        self._keys = [(s, s.code.lower(), s.name_ko.lower(), s.name_en.lower())
                      for s in self._by_code.values()]

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path: str | Path) -> SymbolDirectory:
        """Load ``code,name_ko,name_en,market,ref_price`` (UTF-8, header row required)."""
        path = Path(path)
        symbols: list[SymbolInfo] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = {"code", "name_ko", "name_en", "market", "ref_price"} - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            for row in reader:
                line = reader.line_num
                code = (row["code"] or "").strip().upper()
                market = (row["market"] or "").strip().upper()
                if not code or not (row["name_ko"] or "").strip():
                    raise ValueError(f"{path}:{line}: empty code or Korean name")
                if market not in MARKETS:
                    raise ValueError(f"{path}:{line}: market {market!r} is not KOSPI or KOSDAQ")
                try:
                    price = int((row["ref_price"] or "0").strip() or 0)
                except ValueError:
                    raise ValueError(f"{path}:{line}: ref_price {row['ref_price']!r} is not an integer") from None
                symbols.append(SymbolInfo(code, row["name_ko"].strip(), (row["name_en"] or "").strip(),
                                          market, price))
        return cls(symbols)

    def merge(self, *others: SymbolDirectory | Iterable[SymbolInfo]) -> SymbolDirectory:
        """A new directory: ``self`` overlaid by ``others`` (later wins), keeping known values.

        A master file has no English name or price, so an empty ``name_en`` / zero ``ref_price``
        in the newer entry keeps the older one's value.
        """
        merged = dict(self._by_code)
        for other in others:
            items = other if not isinstance(other, SymbolDirectory) else other._by_code.values()
            for s in items:
                old = merged.get(s.code)
                if old is not None:
                    s = SymbolInfo(s.code, s.name_ko or old.name_ko, s.name_en or old.name_en,
                                   s.market or old.market, s.ref_price or old.ref_price)
                merged[s.code] = s
        return SymbolDirectory(merged.values())

    # -- lookup ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[SymbolInfo]:
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> SymbolInfo | None:
        return self._by_code.get(code)

    def __getitem__(self, code: str) -> SymbolInfo:
        return self._by_code[code]

    def name(self, code: str) -> str:
        """Korean name, or the code itself when unknown (UI labels never go blank)."""
        s = self._by_code.get(code)
        return s.name_ko if s is not None else code

    def search(self, query: str, limit: int = 20) -> list[SymbolInfo]:
        """Completion candidates, best first.

        Rank: exact code, code prefix, name prefix (Korean or English), name substring;
        ties keep directory (market-cap) order. Case-insensitive; blank query → [].
        """
        q = query.strip().lower()
        if not q or limit <= 0:
            return []
        ranked: list[tuple[int, int, SymbolInfo]] = []
        for i, (s, code, ko, en) in enumerate(self._keys):
            if code == q:
                rank = 0
            elif code.startswith(q):
                rank = 1
            elif ko.startswith(q) or en.startswith(q):
                rank = 2
            elif q in ko or q in en:
                rank = 3
            else:
                continue
            ranked.append((rank, i, s))
        ranked.sort(key=lambda t: (t[0], t[1]))
        return [s for _, _, s in ranked[:limit]]


@functools.cache
def default_directory() -> SymbolDirectory:
    """The bundled directory (``resources/symbols.csv``), loaded once."""
    return SymbolDirectory.from_csv(resource("symbols.csv"))


def default_watchlist() -> list[str]:
    """The demo watchlist: ``resources/default_watchlist.txt`` (one code a line, ``#`` comments)."""
    text = resource("default_watchlist.txt").read_text(encoding="utf-8")
    codes: list[str] = []
    for line in text.splitlines():
        code = line.split("#", 1)[0].strip()
        if code and code not in codes:
            codes.append(code)
    return codes


def load_master_file(path: str | Path, market: str = "KOSPI") -> SymbolDirectory:
    """Parse a KIS master file (``kospi_code.mst`` / ``kosdaq_code.mst``; cp949, §9).

    Per decoded line *including its newline*: code = ``line[0:9].strip()``,
    name = ``line[21:len(line) - tail].strip()`` with tail 228 (KOSPI) / 222 (KOSDAQ).
    Raises ValueError naming the file and line for undecodable or malformed lines.
    """
    market = market.upper()
    if market not in MASTER_TAIL:
        raise ValueError(f"market must be KOSPI or KOSDAQ, not {market!r}")
    tail = MASTER_TAIL[market]
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read master file: {exc}") from exc
    symbols: list[SymbolInfo] = []
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            line = raw.decode("cp949")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}:{number}: not cp949 text ({exc.reason} at byte {exc.start})") from None
        if not line.strip():
            continue
        if not line.endswith("\n"):
            line += "\n"  # last line without a newline: the tail widths count one
        elif line.endswith("\r\n"):
            line = line[:-2] + "\n"
        if len(line) <= 21 + tail:
            raise ValueError(f"{path}:{number}: line has {len(line)} characters, "
                             f"at least {21 + tail + 1} expected for a {market} master file")
        code = line[0:9].strip()
        name = line[21:len(line) - tail].strip()
        if not code or not code.isalnum() or not name:
            raise ValueError(f"{path}:{number}: missing or malformed code/name ({line[:30]!r})")
        symbols.append(SymbolInfo(code, name, "", market, 0))
    return SymbolDirectory(symbols)


__all__ = ["MARKETS", "SymbolDirectory", "SymbolInfo", "default_directory", "default_watchlist",
           "load_master_file"]
