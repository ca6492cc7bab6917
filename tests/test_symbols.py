"""Symbol directory: bundled CSV, search ranking, KIS master files (§9)."""

from __future__ import annotations

import csv

import pytest

from kis_desk.config import is_valid_stock_code
from kis_desk.market.symbols import (
    SymbolDirectory,
    SymbolInfo,
    default_directory,
    default_watchlist,
    load_master_file,
)
from kis_desk.paths import resource

KOSPI_TAIL = 228
KOSDAQ_TAIL = 222


def _tick(price: int) -> int:
    for limit, tick in ((2000, 1), (5000, 5), (20000, 10), (50000, 50), (200000, 100), (500000, 500)):
        if price < limit:
            return tick
    return 1000


def test_bundled_csv_is_complete_and_consistent():
    d = default_directory()
    assert len(d) >= 200
    stocks = [s for s in d if not s.name_ko.startswith(("KODEX", "TIGER"))]
    assert len(stocks) >= 200
    for s in d:
        assert is_valid_stock_code(s.code), s
        assert s.market in ("KOSPI", "KOSDAQ")
        assert s.name_ko and s.name_en
        assert s.ref_price > 0 and s.ref_price % _tick(s.ref_price) == 0, s  # on the KRX tick grid
    # no duplicate codes or names in the file itself
    with resource("symbols.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len({r["code"] for r in rows}) == len(rows)
    assert len({r["name_ko"] for r in rows}) == len(rows)


@pytest.mark.parametrize("code,name", [
    ("005930", "삼성전자"), ("000660", "SK하이닉스"), ("373220", "LG에너지솔루션"),
    ("207940", "삼성바이오로직스"), ("005380", "현대차"), ("000270", "기아"), ("068270", "셀트리온"),
    ("005490", "POSCO홀딩스"), ("035420", "NAVER"), ("035720", "카카오"), ("247540", "에코프로비엠"),
    ("069500", "KODEX 200"),
])
def test_well_known_names(code, name):
    assert default_directory().name(code) == name


def test_name_falls_back_to_code_and_lookup():
    d = default_directory()
    assert d.name("999999") == "999999"
    assert d.get("999999") is None
    assert "005930" in d and d["005930"].market == "KOSPI"
    assert d["247540"].market == "KOSDAQ"
    assert default_directory() is d  # cached


def test_default_watchlist():
    codes = default_watchlist()
    assert len(codes) == 50 and len(set(codes)) == 50
    d = default_directory()
    assert all(c in d for c in codes)
    assert codes[0] == "005930"


def _dir() -> SymbolDirectory:
    return SymbolDirectory([
        SymbolInfo("005930", "삼성전자", "Samsung Electronics", "KOSPI", 58000),
        SymbolInfo("005935", "삼성전자우", "Samsung Electronics (Pref)", "KOSPI", 48000),
        SymbolInfo("000660", "SK하이닉스", "SK hynix", "KOSPI", 210000),
        SymbolInfo("006400", "삼성SDI", "Samsung SDI", "KOSPI", 200000),
        SymbolInfo("028260", "삼성물산", "Samsung C&T", "KOSPI", 130000),
        SymbolInfo("105930", "가짜삼성", "Fake", "KOSDAQ", 1000),
    ])


def test_search_ranking():
    d = _dir()
    assert [s.code for s in d.search("005930")][:1] == ["005930"]
    assert [s.code for s in d.search("00593")] == ["005930", "005935"]
    # name prefix before substring; directory order within a rank
    assert [s.code for s in d.search("삼성")] == ["005930", "005935", "006400", "028260", "105930"]
    assert [s.code for s in d.search("전자")] == ["005930", "005935"]
    # English, case-insensitive
    assert [s.code for s in d.search("HYNIX")] == ["000660"]
    assert [s.code for s in d.search("samsung e")] == ["005930", "005935"]
    assert d.search("") == [] and d.search("   ") == []
    assert len(d.search("삼성", limit=2)) == 2
    assert d.search("zzz") == []


def test_search_exact_code_beats_prefix():
    d = SymbolDirectory([SymbolInfo("0059301", "X", "X", "KOSPI"), SymbolInfo("005930", "삼성전자", "S", "KOSPI")])
    assert [s.code for s in d.search("005930")] == ["005930", "0059301"]


def test_search_real_directory():
    d = default_directory()
    assert d.search("삼성전자")[0].code == "005930"
    assert d.search("naver")[0].code == "035420"
    assert d.search("0006")[0].code == "000660"


def _mst_line(code: str, isin: str, name: str, tail: int, filler: str = "0") -> str:
    """A line laid out like kospi_code.mst: [0:9] code, [9:21] ISIN, name, fixed tail + newline."""
    return f"{code:<9}{isin:<12}{name}" + " " * 3 + filler * (tail - 1) + "\n"


def test_load_kospi_master(tmp_path):
    p = tmp_path / "kospi_code.mst"
    text = (_mst_line("005930", "KR7005930003", "삼성전자", KOSPI_TAIL, "1")
            + _mst_line("000660", "KR7000660001", "SK하이닉스", KOSPI_TAIL)
            + _mst_line("Q500001", "KRG500000019", "신한 레버리지 WTI원유 선물 ETN", KOSPI_TAIL, "2"))
    p.write_bytes(text.encode("cp949"))
    d = load_master_file(p, "KOSPI")
    assert [s.code for s in d] == ["005930", "000660", "Q500001"]
    assert d.name("005930") == "삼성전자"
    assert d.name("Q500001") == "신한 레버리지 WTI원유 선물 ETN"
    assert all(s.market == "KOSPI" and s.ref_price == 0 for s in d)


def test_load_kosdaq_master_crlf_and_no_final_newline(tmp_path):
    p = tmp_path / "kosdaq_code.mst"
    a = _mst_line("247540", "KR7247540008", "에코프로비엠", KOSDAQ_TAIL).replace("\n", "\r\n")
    b = _mst_line("196170", "KR7196170005", "알테오젠", KOSDAQ_TAIL)[:-1]
    p.write_bytes((a + b).encode("cp949"))
    d = load_master_file(p, "KOSDAQ")
    assert d.name("247540") == "에코프로비엠" and d.name("196170") == "알테오젠"
    assert d["196170"].market == "KOSDAQ"


def test_kospi_tail_on_kosdaq_layout_differs(tmp_path):
    """The tail width matters: a KOSDAQ line read as KOSPI loses 6 name characters."""
    p = tmp_path / "kosdaq_code.mst"
    p.write_bytes(_mst_line("247540", "KR7247540008", "에코프로비엠", KOSDAQ_TAIL, "9").encode("cp949"))
    assert load_master_file(p, "KOSPI").name("247540") != "에코프로비엠"


def test_master_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.mst"
    p.write_bytes(_mst_line("005930", "KR7005930003", "삼성전자", KOSPI_TAIL).encode("cp949") + b"short line\n")
    with pytest.raises(ValueError, match=r"bad\.mst:2: line has"):
        load_master_file(p, "KOSPI")
    p.write_bytes(b"\xff\xff\xff" + b"0" * 300 + b"\n")
    with pytest.raises(ValueError, match=r"bad\.mst:1: not cp949"):
        load_master_file(p, "KOSPI")
    p.write_bytes(_mst_line("", "KR7005930003", "삼성전자", KOSPI_TAIL).encode("cp949"))
    with pytest.raises(ValueError, match=r"bad\.mst:1: missing or malformed"):
        load_master_file(p, "KOSPI")
    with pytest.raises(ValueError, match="KOSPI, KOSDAQ or KONEX"):   # KONEX is read now
        load_master_file(p, "NASDAQ")
    with pytest.raises(ValueError, match="cannot read"):
        load_master_file(tmp_path / "missing.mst")


def test_merge_keeps_known_values(tmp_path):
    base = _dir()
    p = tmp_path / "kospi_code.mst"
    p.write_bytes((_mst_line("005930", "KR7005930003", "삼성전자", KOSPI_TAIL)
                   + _mst_line("123456", "KR7123456000", "새종목", KOSPI_TAIL)).encode("cp949"))
    merged = base.merge(load_master_file(p))
    assert len(merged) == len(base) + 1
    assert merged["005930"].ref_price == 58000 and merged["005930"].name_en == "Samsung Electronics"
    assert merged.name("123456") == "새종목"
    assert merged.search("새종")[0].code == "123456"
    assert len(base) == 6  # merge returns a new directory
    renamed = base.merge([SymbolInfo("005930", "삼성전자(신)", "", "KOSPI", 0)])
    assert renamed.name("005930") == "삼성전자(신)" and renamed["005930"].ref_price == 58000


def test_from_csv_errors(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("code,name_ko,name_en,market,ref_price\n005930,삼성전자,S,NYSE,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"s\.csv:2: market"):
        SymbolDirectory.from_csv(p)
    p.write_text("code,name_ko,name_en,market,ref_price\n005930,삼성전자,S,KOSPI,abc\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"s\.csv:2: ref_price"):
        SymbolDirectory.from_csv(p)
    p.write_text("code,name\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing column"):
        SymbolDirectory.from_csv(p)
