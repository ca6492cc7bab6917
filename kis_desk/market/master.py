"""KIS stock master files (``kospi_code.mst``, ``kosdaq_code.mst``, ``konex_code.mst``): parsing.

Layout (kis-protocol.md §9; the official ``stocks_info`` scripts and ``종목마스터정보(*.h)``):
cp949 text, one security a line. Per decoded line *including its newline*: ``[0:9]`` short code,
``[9:21]`` ISIN, then the Korean name up to a fixed-width tail of 228 (KOSPI) / 222 (KOSDAQ) /
185 (KONEX) characters whose fields are listed below. Only the fields the app uses are named;
the widths of all of them are kept so an offset error shows up as a test failure, not as a
wrong flag.

NXT: KIS also publishes ``nxt_kospi_code.mst`` / ``nxt_kosdaq_code.mst`` (the stocks Nextrade
trades; community sources, not in the official samples). Only their codes are read, so a layout
difference there cannot break anything; a missing file leaves the NXT flag unknown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: (field, width) of the fixed-width tail, in file order; "_" = present but unused.
_COMMON_TAIL = [  # from 기준가 on, identical in the three layouts (KONEX lacks the last-but-3)
    ("ref_price", 9), ("_", 5), ("_", 5), ("halted", 1), ("liquidation", 1), ("administrative", 1),
    ("warning", 2), ("warning_notice", 1), ("_", 1), ("_", 1), ("_", 2), ("_", 2), ("_", 2),
    ("_", 3), ("_", 1), ("_", 3), ("prev_volume", 12), ("_", 12), ("listed", 8), ("_", 15),
    ("_", 21), ("_", 2), ("_", 7), ("preferred", 1), ("_", 1), ("_", 1), ("_", 1),
]
LAYOUTS: dict[str, list[tuple[str, int]]] = {
    "KOSPI": [("group", 2), ("_", 1), ("_", 4), ("_", 4), ("_", 4), *[("_", 1)] * 7,
              ("etp", 1), *[("_", 1)] * 18, *_COMMON_TAIL, ("_", 1),   # KOSPI여부
              ("_", 9), ("_", 9), ("_", 9), ("_", 5), ("_", 9), ("_", 8), ("market_cap", 9),
              ("_", 3), ("_", 1), ("_", 1), ("_", 1)],
    "KOSDAQ": [("group", 2), ("_", 1), ("_", 4), ("_", 4), ("_", 4), ("_", 1), ("_", 1), ("_", 1),
               ("etp", 1), *[("_", 1)] * 17, *_COMMON_TAIL,
               ("_", 9), ("_", 9), ("_", 9), ("_", 5), ("_", 9), ("_", 8), ("market_cap", 9),
               ("_", 3), ("_", 1), ("_", 1), ("_", 1)],
    "KONEX": [("group", 2), *_COMMON_TAIL,
              ("_", 9), ("_", 9), ("_", 9), ("_", 5), ("_", 9), ("_", 8), ("market_cap", 9),
              ("_", 1), ("_", 1), ("_", 1)],
}
#: Tail length per market, newline included (227 / 221 / 184 field characters + 1).
MASTER_TAIL = {m: sum(w for _, w in fields) + 1 for m, fields in LAYOUTS.items()}

#: Master zip names per market (kis-protocol.md §9) and the NXT lists (see the module doc).
MASTER_FILES = {"KOSPI": "kospi_code.mst.zip", "KOSDAQ": "kosdaq_code.mst.zip",
                "KONEX": "konex_code.mst.zip"}
NXT_FILES = {"KOSPI": "nxt_kospi_code.mst.zip", "KOSDAQ": "nxt_kosdaq_code.mst.zip"}

WARNINGS = {"00": "", "01": "caution", "02": "warning", "03": "danger"}   # 시장경고구분코드
_GROUP_KIND = {"ST": "stock", "FS": "stock", "DR": "stock", "EF": "etf", "FE": "etf", "EN": "etn",
               "RT": "reit", "MF": "fund", "SC": "fund", "IF": "fund", "BC": "fund"}


def _offsets(fields: list[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    out, pos = {}, 0
    for name, width in fields:
        if name != "_":
            out[name] = (pos, pos + width)
        pos += width
    return out


_OFFSETS = {m: _offsets(f) for m, f in LAYOUTS.items()}


@dataclass(frozen=True, slots=True)
class MasterRecord:
    """One line of a master file, the fields the app uses."""

    code: str
    isin: str
    name: str
    market: str
    group: str            # 증권그룹구분코드: ST stock, EF ETF, EN ETN, RT REIT, …
    kind: str             # stock / etf / etn / reit / fund / other
    ref_price: int        # 기준가 (previous close basis)
    halted: bool          # 거래정지
    administrative: bool  # 관리종목
    liquidation: bool     # 정리매매
    warning: str          # "" / caution / warning / danger (시장경고)
    warning_notice: bool  # 시장경고위험 예고
    preferred: bool
    listed: str           # YYYYMMDD
    market_cap: int       # 억원, previous day


class MasterFormatError(ValueError):
    """A master file that does not have the documented layout (message names file and line)."""


def _int(text: str) -> int:
    text = text.strip()
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


def _kind(group: str, etp: str) -> str:
    if etp in ("3", "4"):          # ETP 상품구분: 3 ETN, 4 손실제한 ETN
        return "etn"
    return _GROUP_KIND.get(group, "other")


def iter_master_lines(data: bytes, source: str) -> Iterator[tuple[int, str]]:
    """(line number, decoded line ending in exactly one ``\\n``), blank lines skipped."""
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            line = raw.decode("cp949")
        except UnicodeDecodeError as exc:
            raise MasterFormatError(f"{source}:{number}: not cp949 text ({exc.reason} at byte {exc.start})") from None
        if not line.strip():
            continue
        line = line.rstrip("\r\n") + "\n"   # CRLF, or a last line without a newline
        yield number, line


def parse_master(data: bytes, market: str, source: str = "master file") -> list[MasterRecord]:
    """Every security in a master file's bytes. Raises :class:`MasterFormatError`."""
    market = market.upper()
    if market not in LAYOUTS:
        raise MasterFormatError(f"market must be KOSPI, KOSDAQ or KONEX, not {market!r}")
    tail_len, offsets = MASTER_TAIL[market], _OFFSETS[market]
    records: list[MasterRecord] = []
    for number, line in iter_master_lines(data, source):
        if len(line) <= 21 + tail_len:
            raise MasterFormatError(f"{source}:{number}: line has {len(line)} characters, "
                                    f"at least {21 + tail_len + 1} expected for a {market} master file")
        code = line[0:9].strip()
        name = line[21:len(line) - tail_len].strip()
        if not code or not code.isalnum() or not name:
            raise MasterFormatError(f"{source}:{number}: missing or malformed code/name ({line[:30]!r})")
        tail = line[len(line) - tail_len:]

        def f(key: str, tail: str = tail) -> str:
            a, b = offsets[key]
            return tail[a:b].strip()

        etp = f("etp") if "etp" in offsets else ""
        records.append(MasterRecord(
            code=code, isin=line[9:21].strip(), name=name, market=market, group=f("group"),
            kind=_kind(f("group"), etp), ref_price=_int(f("ref_price")), halted=f("halted") == "Y",
            administrative=f("administrative") == "Y", liquidation=f("liquidation") == "Y",
            warning=WARNINGS.get(f("warning"), f("warning")), warning_notice=f("warning_notice") == "Y",
            preferred=f("preferred") not in ("", "0"), listed=f("listed"), market_cap=_int(f("market_cap")),
        ))
    return records


def parse_code_list(data: bytes, source: str = "NXT list") -> list[str]:
    """Only the short codes of a master-like file (the NXT lists)."""
    return [line[0:9].strip() for _, line in iter_master_lines(data, source) if line[0:9].strip()]


def read_master_file(path: str | Path, market: str) -> list[MasterRecord]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MasterFormatError(f"{path}: cannot read master file: {exc}") from exc
    return parse_master(data, market, str(path))


__all__ = ["LAYOUTS", "MASTER_FILES", "MASTER_TAIL", "NXT_FILES", "MasterFormatError", "MasterRecord",
           "parse_code_list", "parse_master", "read_master_file"]
