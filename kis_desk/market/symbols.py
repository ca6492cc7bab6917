"""Stock reference data: code ↔ Korean/English name, market, reference price, and flags.

The bundled ``resources/symbols.csv`` covers the largest KOSPI/KOSDAQ stocks and common ETFs so
the app works offline and the simulator prices realistically. KIS's own master files (every
listed security, kis-protocol.md §9; parsed in :mod:`kis_desk.market.master`, downloaded and
cached by :mod:`kis_desk.market.master_update`) are merged on top when a cached copy exists.
:class:`MasterStatus` says which list is in use and from when.

Search ranks exact code, code prefix, name prefix (Korean or English), 초성 (``ㅅㅅㅈㅈ`` →
삼성전자), then substring.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from kis_desk.config import is_valid_stock_code
from kis_desk.market.master import MASTER_TAIL, MasterFormatError, read_master_file
from kis_desk.paths import resource

MARKETS = ("KOSPI", "KOSDAQ", "KONEX")

#: The 19 initial consonants (초성) in syllable order, as compatibility jamo.
CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_DOUBLE_TO_SINGLE = str.maketrans("ㄲㄸㅃㅆㅉ", "ㄱㄷㅂㅅㅈ")
_JAMO_CONSONANTS = frozenset("ㄱㄲㄳㄴㄵㄶㄷㄸㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅃㅄㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ")


def choseong(text: str) -> str:
    """``삼성전자`` → ``ㅅㅅㅈㅈ``: each Hangul syllable (U+AC00–U+D7A3) by its initial consonant,
    ``(ord(c) - 0xAC00) // 588``; other characters lower-cased, spaces dropped."""
    out = []
    for c in text:
        o = ord(c)
        if 0xAC00 <= o <= 0xD7A3:
            out.append(CHOSEONG[(o - 0xAC00) // 588])
        elif not c.isspace():
            out.append(c.lower())
    return "".join(out)


def is_choseong_query(q: str) -> bool:
    """A query of initial consonants (digits/Latin allowed alongside), no full syllables."""
    return any(c in _JAMO_CONSONANTS for c in q) and not any(0xAC00 <= ord(c) <= 0xD7A3 for c in q)


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One listed security. ``ref_price`` is 0 when unknown.

    ``kind`` (stock/etf/etn/reit/fund/other, "" unknown), ``nxt`` (traded on Nextrade; None =
    unknown), ``halted``, ``warning`` ("", caution, warning, danger) and ``administrative``
    come from the master files; the bundled list leaves them at their defaults.
    """

    code: str
    name_ko: str
    name_en: str
    market: str
    ref_price: int = 0
    kind: str = ""
    nxt: bool | None = None
    halted: bool = False
    warning: str = ""
    administrative: bool = False


@dataclass(frozen=True, slots=True)
class MasterStatus:
    """Which symbol list is in use and from when (the UI shows :attr:`text`)."""

    source: str                      # "master" (KIS master files merged) or "bundled"
    count: int
    as_of: datetime | None = None    # when the master files in use were downloaded
    error: str = ""                  # the last download failure, if any
    stale: bool = False              # the master in use is older than a day

    @property
    def text(self) -> str:
        if self.source == "master" and self.as_of is not None:
            base = f"KIS master list of {self.as_of:%Y-%m-%d %H:%M} ({self.count:,} symbols)"
            if self.stale:
                base += ", out of date"
        else:
            base = f"bundled list ({self.count:,} symbols; no KIS master list downloaded)"
        return base + (f" — last download failed: {self.error}" if self.error else "")

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "count": self.count, "stale": self.stale, "error": self.error,
                "as_of": self.as_of.isoformat() if self.as_of else None, "text": self.text}


CACHE_COLUMNS = ["code", "name_ko", "name_en", "market", "ref_price", "kind", "nxt", "halted", "warning",
                 "administrative"]


class SymbolDirectory:
    """Immutable lookup table by code, with ranked search for the watchlist editor."""

    def __init__(self, symbols: Iterable[SymbolInfo] = (), status: MasterStatus | None = None) -> None:
        self._by_code: dict[str, SymbolInfo] = {}
        for s in symbols:
            self._by_code[s.code] = s
        self.status = status or MasterStatus("bundled", len(self._by_code))
        # search keys are built on the first search, not at start-up
        self._keys: list[tuple[SymbolInfo, str, str, str, str, str]] | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_csv(cls, path: str | Path, status: MasterStatus | None = None) -> SymbolDirectory:
        """Load ``code,name_ko,name_en,market,ref_price`` (UTF-8, header row required).

        Optional columns ``kind,nxt,halted,warning,administrative`` (the master cache) are read
        when present (``nxt``: Y / N / empty = unknown; flags Y/N).
        """
        path = Path(path)
        symbols: list[SymbolInfo] = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            missing = {"code", "name_ko", "name_en", "market", "ref_price"} - columns
            if missing:
                raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            extra = {"kind", "nxt", "halted", "warning", "administrative"} <= columns
            for row in reader:
                line = reader.line_num
                code = (row["code"] or "").strip().upper()
                market = (row["market"] or "").strip().upper()
                if not code or not (row["name_ko"] or "").strip():
                    raise ValueError(f"{path}:{line}: empty code or Korean name")
                if market not in MARKETS:
                    raise ValueError(f"{path}:{line}: market {market!r} is not KOSPI, KOSDAQ or KONEX")
                try:
                    price = int((row["ref_price"] or "0").strip() or 0)
                except ValueError:
                    raise ValueError(f"{path}:{line}: ref_price {row['ref_price']!r} is not an integer") from None
                if extra:
                    nxt = row["nxt"]
                    symbols.append(SymbolInfo(code, row["name_ko"].strip(), (row["name_en"] or "").strip(),
                                              market, price, row["kind"] or "", None if not nxt else nxt == "Y",
                                              row["halted"] == "Y", row["warning"] or "",
                                              row["administrative"] == "Y"))
                else:
                    symbols.append(SymbolInfo(code, row["name_ko"].strip(), (row["name_en"] or "").strip(),
                                              market, price))
        return cls(symbols, status)

    @classmethod
    def from_cache_csv(cls, path: str | Path) -> SymbolDirectory:
        """Read a file written by :meth:`to_csv` (the master cache) on the fast path: fixed
        columns, no per-row validation (the rows were validated when the master was parsed)."""
        path = Path(path)
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            if next(reader, None) != CACHE_COLUMNS:
                raise ValueError(f"{path}: not a kis-desk master cache (header differs)")
            try:
                symbols = [SymbolInfo(c, ko, en, m, int(p or 0), k, None if not n else n == "Y",
                                      h == "Y", w, a == "Y")
                           for c, ko, en, m, p, k, n, h, w, a in reader]
            except ValueError as exc:   # wrong column count or price: a damaged cache
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
        return cls(symbols)

    def to_csv(self, path: str | Path) -> None:
        """Write every column (the compact master cache; atomic replace)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(CACHE_COLUMNS)
            for s in self._by_code.values():
                w.writerow([s.code, s.name_ko, s.name_en, s.market, s.ref_price, s.kind,
                            "" if s.nxt is None else "YN"[not s.nxt], "YN"[not s.halted], s.warning,
                            "YN"[not s.administrative]])
        tmp.replace(path)

    def merge(self, *others: SymbolDirectory | Iterable[SymbolInfo],
              status: MasterStatus | None = None) -> SymbolDirectory:
        """A new directory: ``self`` overlaid by ``others`` (later wins), keeping known values.

        A master file has no English name, so an empty ``name_en`` / zero ``ref_price`` / empty
        ``kind`` / unknown ``nxt`` in the newer entry keeps the older one's value.
        """
        merged = dict(self._by_code)
        for other in others:
            items = other if not isinstance(other, SymbolDirectory) else other._by_code.values()
            for s in items:
                old = merged.get(s.code)
                if old is not None:
                    s = replace(s, name_ko=s.name_ko or old.name_ko, name_en=s.name_en or old.name_en,
                                market=s.market or old.market, ref_price=s.ref_price or old.ref_price,
                                kind=s.kind or old.kind, nxt=old.nxt if s.nxt is None else s.nxt)
                merged[s.code] = s
        return SymbolDirectory(merged.values(), status)

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

    def knows(self, code: str) -> bool:
        """True when ``code`` is in a symbol list in use (the simulator asks before inventing)."""
        return code.strip().upper() in self._by_code

    def validate_code(self, code: str) -> str | None:
        """None when ``code`` is a listed security; else one line saying why it is refused."""
        c = code.strip().upper()
        if c in self._by_code:
            return None
        if not c:
            return "enter a stock code or name"
        if not is_valid_stock_code(c):
            return f"'{code.strip()}' is not a stock code (6 digits, or Q + 6 digits for an ETN)"
        return f"{c} is not listed in any master list in use ({self.status.text})"

    def _search_keys(self) -> list[tuple[SymbolInfo, str, str, str, str, str]]:
        if self._keys is None:
            keys = []
            for s in self._by_code.values():
                cho = choseong(s.name_ko)
                keys.append((s, s.code.lower(), s.name_ko.lower(), s.name_en.lower(), cho,
                             cho.translate(_DOUBLE_TO_SINGLE)))
            self._keys = keys
        return self._keys

    def search(self, query: str, limit: int = 20) -> list[SymbolInfo]:
        """Completion candidates, best first.

        Rank: exact code, code prefix, name prefix (Korean or English), 초성 prefix (``ㅅㅅㅈㅈ``;
        then the same with double consonants read as single, ``ㅅㅇ`` → 쌍용), name substring,
        초성 substring; ties keep directory (market-cap) order. Case-insensitive; blank → [].
        """
        q = query.strip().lower()
        if not q or limit <= 0:
            return []
        cq = "".join(q.split()) if is_choseong_query(q) else ""
        cq_loose = cq.translate(_DOUBLE_TO_SINGLE)
        ranked: list[tuple[int, int, SymbolInfo]] = []
        for i, (s, code, ko, en, cho, cho_loose) in enumerate(self._search_keys()):
            if code == q:
                rank = 0
            elif code.startswith(q):
                rank = 1
            elif ko.startswith(q) or en.startswith(q):
                rank = 2
            elif cq and cho.startswith(cq):
                rank = 3
            elif cq and cho_loose.startswith(cq_loose):
                rank = 4
            elif q in ko or q in en:
                rank = 5
            elif cq and cq_loose in cho_loose:
                rank = 6
            else:
                continue
            ranked.append((rank, i, s))
        ranked.sort(key=lambda t: (t[0], t[1]))
        return [s for _, _, s in ranked[:limit]]


# -- the directory the app uses -------------------------------------------------------------

MASTER_CACHE_DIR = "master"
MASTER_CACHE_FILE = "symbols.csv"
MASTER_META_FILE = "meta.json"


def master_cache_dir() -> Path:
    """``<data>/master``: the parsed master files (compact CSV) and their metadata."""
    from kis_desk.config import UserPaths
    return UserPaths.default().data / MASTER_CACHE_DIR


def read_master_meta(cache_dir: Path) -> dict[str, object]:
    import json
    try:
        meta = json.loads((cache_dir / MASTER_META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def master_status(meta: dict[str, object], count: int, bundled_count: int, now: datetime | None = None) -> MasterStatus:
    """The status a cache's metadata describes (``count`` = symbols in the merged directory)."""
    from kis_desk.protocol.records import KST

    fetched = meta.get("fetched_at")
    error = str(meta.get("last_error") or "")
    try:
        as_of = datetime.fromisoformat(fetched) if isinstance(fetched, str) else None
    except ValueError:
        as_of = None
    if as_of is None:
        return MasterStatus("bundled", bundled_count, None, error)
    now = now or datetime.now(KST)
    return MasterStatus("master", count, as_of, error, stale=(now - as_of).total_seconds() > 36 * 3600)


def load_directory(cache_dir: Path | None = None) -> SymbolDirectory:
    """The bundled list merged with the cached master list (when one was downloaded).

    A broken cache is ignored (the bundled list still works) and named in the status.
    """
    bundled = SymbolDirectory.from_csv(resource("symbols.csv"))
    cache_dir = master_cache_dir() if cache_dir is None else cache_dir
    cache = cache_dir / MASTER_CACHE_FILE
    meta = read_master_meta(cache_dir)
    if not cache.is_file():
        bundled.status = MasterStatus("bundled", len(bundled), None, str(meta.get("last_error") or ""))
        return bundled
    try:
        master = SymbolDirectory.from_cache_csv(cache)
    except (OSError, ValueError) as exc:
        bundled.status = MasterStatus("bundled", len(bundled), None, f"cached master unreadable: {exc}")
        return bundled
    merged = bundled.merge(master)
    merged.status = master_status(meta, len(merged), len(bundled))
    return merged


@functools.cache
def default_directory() -> SymbolDirectory:
    """The directory in use: bundled ``resources/symbols.csv`` + the cached master list, loaded once.

    After ``kis-desk symbols update`` in the same process call ``default_directory.cache_clear()``.
    """
    return load_directory()


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
    """Parse a KIS master file (``kospi_code.mst`` / ``kosdaq_code.mst`` / ``konex_code.mst``; cp949, §9).

    Per decoded line *including its newline*: code = ``line[0:9].strip()``,
    name = ``line[21:len(line) - tail].strip()`` with tail 228 (KOSPI) / 222 (KOSDAQ) / 185 (KONEX);
    the tail's flags (ETF/ETN, halt, warning) are read too.
    Raises ValueError naming the file and line for undecodable or malformed lines.
    """
    market = market.upper()
    if market not in MASTER_TAIL:
        raise ValueError(f"market must be KOSPI, KOSDAQ or KONEX, not {market!r}")
    try:
        records = read_master_file(path, market)
    except MasterFormatError as exc:
        raise ValueError(str(exc)) from None
    return SymbolDirectory(records_to_symbols(records))


def records_to_symbols(records: Iterable, nxt_codes: frozenset[str] | None = None) -> list[SymbolInfo]:
    """Master records → symbols; ``nxt_codes`` = the NXT lists (None: NXT unknown).

    ``ref_price`` stays 0: the master's 기준가 is a day-old basis (kept on the record), and the
    bundled list's hand-checked price must not be replaced by it in a merge.
    """
    return [SymbolInfo(r.code, r.name, "", r.market, 0, r.kind,
                       None if nxt_codes is None else r.code in nxt_codes, r.halted, r.warning,
                       r.administrative) for r in records]


__all__ = ["CHOSEONG", "MARKETS", "MasterStatus", "SymbolDirectory", "SymbolInfo", "choseong",
           "default_directory", "default_watchlist", "load_directory", "load_master_file",
           "master_cache_dir", "records_to_symbols"]
