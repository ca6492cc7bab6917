"""KIS master files: the real fixed-width cp949 layout, download from a local HTTP server,
at most once a day, offline fallback, NXT flags, 초성 search and code validation."""

from __future__ import annotations

import asyncio
import http.server
import io
import threading
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kis_desk.market.master import parse_master
from kis_desk.market.master_update import MASTER_URL_ENV, master_base_url, update_master, update_master_async
from kis_desk.market.symbols import (
    SymbolDirectory,
    SymbolInfo,
    choseong,
    default_directory,
    load_directory,
    load_master_file,
)
from kis_desk.protocol.records import KST

# Field widths of the fixed-width tail exactly as the official samples list them
# (open-trading-api stocks_info/kis_kospi_code_mst.py, kis_kosdaq_code_mst.py, kis_konex_code_mst.py),
# written out here independently of kis_desk.market.master.
KOSPI_WIDTHS = [2, 1, 4, 4, 4, *[1] * 26, 9, 5, 5, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 3, 1, 3, 12, 12, 8,
                15, 21, 2, 7, 1, 1, 1, 1, 1, 9, 9, 9, 5, 9, 8, 9, 3, 1, 1, 1]
KOSDAQ_WIDTHS = [2, 1, 4, 4, 4, *[1] * 21, 9, 5, 5, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 3, 1, 3, 12, 12, 8,
                 15, 21, 2, 7, 1, 1, 1, 1, 9, 9, 9, 5, 9, 8, 9, 3, 1, 1, 1]
KONEX_WIDTHS = [2, 9, 5, 5, 1, 1, 1, 2, 1, 1, 1, 2, 2, 2, 3, 1, 3, 12, 12, 8, 15, 21, 2, 7, 1, 1, 1, 1,
                9, 9, 9, 5, 9, 8, 9, 1, 1, 1]
# index of a field in those lists (the official column names in brackets)
IDX = {
    "KOSPI": {"group": 0, "etp": 12, "ref": 31, "halt": 34, "admin": 36, "warn": 37},   # 그룹코드, ETP, 기준가, 거래정지, 관리종목, 시장경고
    "KOSDAQ": {"group": 0, "etp": 8, "ref": 26, "halt": 29, "admin": 31, "warn": 32},
    "KONEX": {"group": 0, "ref": 1, "halt": 4, "admin": 6, "warn": 7},
}
WIDTHS = {"KOSPI": KOSPI_WIDTHS, "KOSDAQ": KOSDAQ_WIDTHS, "KONEX": KONEX_WIDTHS}


def mst_line(market: str, code: str, name: str, *, group: str = "ST", etp: str = "0", ref: int = 10000,
             halt: str = "N", admin: str = "N", warn: str = "00") -> bytes:
    """One master line as bytes: code(9) ISIN(12) name (cp949, padded to 40 bytes) tail \\n."""
    widths = WIDTHS[market]
    values = ["N" if w == 1 else "0" * w for w in widths]
    idx = IDX[market]
    values[idx["group"]] = group
    if "etp" in idx:
        values[idx["etp"]] = etp
    values[idx["ref"]] = f"{ref:09d}"
    values[idx["halt"]], values[idx["admin"]], values[idx["warn"]] = halt, admin, warn
    tail = "".join(v.ljust(w)[:w] for v, w in zip(values, widths))
    assert len(tail) == {"KOSPI": 227, "KOSDAQ": 221, "KONEX": 184}[market]
    isin = f"KR7{code[-6:]}00{len(code)}"
    return (f"{code:<9}{isin:<12}".encode() + name.encode("cp949").ljust(40) + tail.encode() + b"\n")


KOSPI_ROWS = [
    mst_line("KOSPI", "005930", "삼성전자", ref=58000),
    mst_line("KOSPI", "069500", "KODEX 200", group="EF", etp="2", ref=35000),
    mst_line("KOSPI", "Q500001", "신한 레버리지 WTI원유 선물 ETN", group="EN", etp="3"),
    mst_line("KOSPI", "001230", "동국홀딩스", halt="Y", warn="02"),
    mst_line("KOSPI", "323410", "카카오뱅크"),
    mst_line("KOSPI", "003620", "KG모빌리티", admin="Y", warn="01"),
]
KOSDAQ_ROWS = [
    mst_line("KOSDAQ", "247540", "에코프로비엠"),
    mst_line("KOSDAQ", "196170", "알테오젠"),
    mst_line("KOSDAQ", "580011", "쌍용씨앤이우", warn="03"),
]
KONEX_ROWS = [mst_line("KONEX", "199800", "툴젠코넥스", ref=5000)]
NXT_KOSPI = [KOSPI_ROWS[0], KOSPI_ROWS[4]]
NXT_KOSDAQ = [KOSDAQ_ROWS[0]]


def test_parse_kospi_layout_with_etf_etn_flags():
    rows = parse_master(b"".join(KOSPI_ROWS), "KOSPI", "kospi_code.mst")
    by = {r.code: r for r in rows}
    assert [r.code for r in rows] == ["005930", "069500", "Q500001", "001230", "323410", "003620"]
    assert by["005930"].name == "삼성전자" and by["005930"].kind == "stock" and by["005930"].ref_price == 58000
    assert by["005930"].isin == "KR700593000" + "6"
    assert by["069500"].kind == "etf" and by["069500"].name == "KODEX 200"
    assert by["Q500001"].kind == "etn" and by["Q500001"].name == "신한 레버리지 WTI원유 선물 ETN"
    assert by["001230"].halted and by["001230"].warning == "warning" and not by["001230"].administrative
    assert by["003620"].administrative and by["003620"].warning == "caution"
    assert not by["005930"].halted and by["005930"].warning == ""


def test_parse_kosdaq_and_konex_layouts():
    rows = {r.code: r for r in parse_master(b"".join(KOSDAQ_ROWS), "KOSDAQ")}
    assert rows["247540"].name == "에코프로비엠" and rows["580011"].warning == "danger"
    konex = parse_master(KONEX_ROWS[0].replace(b"\n", b"\r\n"), "KONEX")
    assert konex[0].code == "199800" and konex[0].name == "툴젠코넥스" and konex[0].ref_price == 5000
    # the KOSDAQ tail read as KOSPI shifts every field: the layout per market matters
    wrong = parse_master(KOSDAQ_ROWS[0], "KOSPI")[0]
    assert wrong.group != "ST" and wrong.kind != "stock"


def test_load_master_file_gives_symbols_with_flags(tmp_path):
    p = tmp_path / "kospi_code.mst"
    p.write_bytes(b"".join(KOSPI_ROWS))
    d = load_master_file(p, "KOSPI")
    assert d["069500"].kind == "etf" and d["Q500001"].kind == "etn" and d["001230"].halted
    assert d["005930"].nxt is None        # no NXT list read: unknown
    assert all(s.ref_price == 0 for s in d)


# -- the download ------------------------------------------------------------------------------

def _zip(member: str, rows: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(member, b"".join(rows))
    return buf.getvalue()


class MasterServer:
    """http.server on 127.0.0.1 (ephemeral port) serving master zips; counts requests."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: list[str] = []
        self.gate: threading.Event | None = None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:   # noqa: N802
                server.requests.append(self.path)
                if server.gate is not None:
                    server.gate.wait(10)
                name = self.path.rsplit("/", 1)[-1]
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/common/master"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


ALL_FILES = {
    "kospi_code.mst.zip": _zip("kospi_code.mst", KOSPI_ROWS),
    "kosdaq_code.mst.zip": _zip("kosdaq_code.mst", KOSDAQ_ROWS),
    "konex_code.mst.zip": _zip("konex_code.mst", KONEX_ROWS),
    "nxt_kospi_code.mst.zip": _zip("nxt_kospi_code.mst", NXT_KOSPI),
    "nxt_kosdaq_code.mst.zip": _zip("nxt_kosdaq_code.mst", NXT_KOSDAQ),
}
NOW = datetime(2026, 12, 1, 7, 30, tzinfo=KST)


@pytest.fixture
def server():
    s = MasterServer(ALL_FILES)
    yield s
    s.close()


def test_download_parse_cache_and_merge(server, tmp_path):
    cache = tmp_path / "master"
    result = update_master(base_url=server.url, cache_dir=cache, now=NOW)
    assert result.fetched and not result.skipped
    assert result.counts == {"KOSPI": 6, "KOSDAQ": 3, "KONEX": 1, "NXT-KOSPI": 2, "NXT-KOSDAQ": 1}
    assert sorted(server.requests) == sorted(f"/common/master/{n}" for n in ALL_FILES)
    assert (cache / "symbols.csv").is_file() and (cache / "meta.json").is_file()
    d = load_directory(cache)
    assert d.status.source == "master" and d.status.as_of == NOW and not d.status.error
    assert "KIS master list of 2026-12-01 07:30" in d.status.text
    # merged with the bundled list: bundled English names and prices kept, master flags added
    assert d["005930"].name_en == "Samsung Electronics" and d["005930"].ref_price > 0
    assert d["005930"].nxt is True and d["323410"].nxt is True and d["247540"].nxt is True
    assert d["196170"].nxt is False and d["069500"].kind == "etf" and d["Q500001"].kind == "etn"
    assert d["001230"].halted and d["199800"].market == "KONEX"
    assert d.knows("Q500001") and d.validate_code("199800") is None
    assert len(d) >= 304 + 4   # the bundled list plus the master-only codes


def test_at_most_once_a_day(server, tmp_path):
    cache = tmp_path / "master"
    assert update_master(base_url=server.url, cache_dir=cache, now=NOW).fetched
    n = len(server.requests)
    again = update_master(base_url=server.url, cache_dir=cache, now=NOW + timedelta(hours=10))
    assert again.skipped and not again.fetched and "already downloaded today" in again.message
    assert len(server.requests) == n                      # nothing fetched
    assert again.status.source == "master"
    forced = update_master(base_url=server.url, cache_dir=cache, now=NOW + timedelta(hours=11), force=True)
    assert forced.fetched and len(server.requests) == 2 * n
    tomorrow = update_master(base_url=server.url, cache_dir=cache, now=NOW + timedelta(days=1))
    assert tomorrow.fetched and len(server.requests) == 3 * n


def test_offline_fallback_to_cache_then_bundled(server, tmp_path):
    cache = tmp_path / "master"
    # no cache yet, server unreachable → bundled list, the error said
    server.close()
    failed = update_master(base_url=server.url, cache_dir=cache, now=NOW)
    assert not failed.fetched and not failed.skipped and "download failed" in failed.message
    d = load_directory(cache)
    assert d.status.source == "bundled" and d.status.error and "bundled list (304 symbols" in d.status.text
    assert d.validate_code("199800") is not None
    # a retry within the hour is not attempted
    assert update_master(base_url=server.url, cache_dir=cache, now=NOW + timedelta(minutes=30)).skipped


def test_failed_download_keeps_the_cached_master(tmp_path):
    cache = tmp_path / "master"
    s = MasterServer(ALL_FILES)
    assert update_master(base_url=s.url, cache_dir=cache, now=NOW).fetched
    s.files["kospi_code.mst.zip"] = b"this is not a zip"
    later = update_master(base_url=s.url, cache_dir=cache, now=NOW + timedelta(days=1))
    s.close()
    assert not later.fetched and "not a zip file" in later.message
    d = load_directory(cache)
    assert d.status.source == "master" and d.status.as_of == NOW and "not a zip file" in d.status.error
    assert d.knows("199800")   # yesterday's list still in use
    assert "last download failed" in d.status.text


def test_optional_files_missing(tmp_path):
    files = {k: v for k, v in ALL_FILES.items() if not k.startswith(("nxt_kosdaq", "konex"))}
    s = MasterServer(files)
    try:
        result = update_master(base_url=s.url, cache_dir=tmp_path / "m", now=NOW)
    finally:
        s.close()
    assert result.fetched and "HTTP 404" in result.message
    d = load_directory(tmp_path / "m")
    assert d["247540"].nxt is None and d["005930"].nxt is None   # partial NXT list → unknown
    assert "199800" not in d


def test_required_file_missing_is_a_failure(tmp_path):
    s = MasterServer({k: v for k, v in ALL_FILES.items() if k != "kosdaq_code.mst.zip"})
    try:
        result = update_master(base_url=s.url, cache_dir=tmp_path / "m", now=NOW)
    finally:
        s.close()
    assert not result.fetched and "kosdaq_code.mst.zip: HTTP 404" in result.message
    assert not (tmp_path / "m" / "symbols.csv").exists()


def test_master_url_from_environment(monkeypatch):
    monkeypatch.delenv(MASTER_URL_ENV, raising=False)
    assert master_base_url() == "https://new.real.download.dws.co.kr/common/master"
    assert master_base_url("http://mirror.example/m/") == "http://mirror.example/m"
    monkeypatch.setenv(MASTER_URL_ENV, "http://127.0.0.1:1/x")
    assert master_base_url("http://mirror.example/m") == "http://127.0.0.1:1/x"


def test_async_update_does_not_block_the_event_loop(server, tmp_path):
    """The server answers only after the event loop has run something else."""
    server.gate = threading.Event()

    async def main() -> bool:
        task = asyncio.create_task(update_master_async(base_url=server.url, cache_dir=tmp_path / "m", now=NOW))
        while not server.requests:            # the loop keeps turning while the thread downloads
            await asyncio.sleep(0.01)
        server.gate.set()
        return (await task).fetched

    assert asyncio.run(main())


def test_default_directory_uses_the_cache_in_the_data_dir(server, isolated_home):
    default_directory.cache_clear()
    try:
        assert default_directory().status.source == "bundled"
        assert update_master(base_url=server.url, now=NOW).fetched   # default cache dir = <data>/master
        assert (isolated_home / "data" / "master" / "symbols.csv").is_file()
        default_directory.cache_clear()
        d = default_directory()
        assert d.status.source == "master" and d.knows("199800")
    finally:
        default_directory.cache_clear()


def test_load_time_of_a_full_master_cache(tmp_path):
    """~3,600 symbols: the cache loads without work proportional to search keys (measured in
    benchmarks; here only that search keys are built lazily and results are right)."""
    syms = [SymbolInfo(f"{i:06d}", f"종목{i}", "", "KOSDAQ" if i % 2 else "KOSPI", 0, "stock", i % 3 == 0)
            for i in range(100000, 103600)]
    cache = tmp_path / "m"
    cache.mkdir()
    SymbolDirectory(syms).to_csv(cache / "symbols.csv")
    (cache / "meta.json").write_text('{"fetched_at": "2026-12-01T07:30:00+09:00", "count": 3600}', encoding="utf-8")
    d = load_directory(cache)
    assert d._keys is None and len(d) >= 3600
    assert d["100001"].nxt is False and d["100002"].nxt is True
    assert d.search("종목103599")[0].code == "103599"


# -- 초성 search and validation ------------------------------------------------------------------

def test_choseong():
    assert choseong("삼성전자") == "ㅅㅅㅈㅈ"
    assert choseong("카카오뱅크") == "ㅋㅋㅇㅂㅋ"
    assert choseong("쌍용씨앤이") == "ㅆㅇㅆㅇㅇ"
    assert choseong("까뚜빠쯔") == "ㄲㄸㅃㅉ"
    assert choseong("KODEX 200") == "kodex200"
    assert choseong("SK하이닉스") == "skㅎㅇㄴㅅ"


def _dir() -> SymbolDirectory:
    return SymbolDirectory([
        SymbolInfo("005930", "삼성전자", "Samsung Electronics", "KOSPI"),
        SymbolInfo("005935", "삼성전자우", "Samsung Electronics (Pref)", "KOSPI"),
        SymbolInfo("028260", "삼성물산", "Samsung C&T", "KOSPI"),
        SymbolInfo("323410", "카카오뱅크", "KakaoBank", "KOSPI"),
        SymbolInfo("035720", "카카오", "Kakao", "KOSPI"),
        SymbolInfo("580011", "쌍용씨앤이", "", "KOSDAQ"),
        SymbolInfo("111111", "ㅅㅅㅈㅈ테크", "", "KOSDAQ"),      # a name that literally starts with jamo
        SymbolInfo("222222", "한국삼성전자부품", "", "KOSDAQ"),   # 초성 ㅅㅅㅈㅈ only inside
    ])


def test_choseong_search_ranking():
    d = _dir()
    # name prefix (the literal jamo name) first, then 초성 prefix, then 초성 inside the name
    assert [s.code for s in d.search("ㅅㅅㅈㅈ")] == ["111111", "005930", "005935", "222222"]
    assert [s.code for s in d.search("ㅋㅋㅇㅂ")] == ["323410"]
    assert [s.code for s in d.search("ㅋㅋㅇ")] == ["323410", "035720"]
    assert [s.code for s in d.search("ㅅㅅ ㅁㅅ")] == ["028260"]            # spaces ignored
    # double consonant: exact ㅆ first; ㅅ finds ㅆ too, ranked after the exact matches
    assert [s.code for s in d.search("ㅆㅇ")] == ["580011"]
    assert [s.code for s in d.search("ㅅㅇㅆ")] == ["580011"]
    assert [s.code for s in d.search("ㅅ")][:3] == ["111111", "005930", "005935"]


def test_search_rank_order_code_prefix_choseong_substring():
    d = SymbolDirectory([
        SymbolInfo("900001", "전자부품", "", "KOSDAQ"),       # substring of the query? no: name prefix "전자"
        SymbolInfo("900002", "대한전자", "", "KOSDAQ"),       # substring "전자"
        SymbolInfo("900003", "정진", "", "KOSDAQ"),           # 초성 ㅈㅈ
        SymbolInfo("900004", "전자", "", "KOSDAQ"),
    ])
    assert [s.code for s in d.search("900004")][0] == "900004"
    assert [s.code for s in d.search("전자")] == ["900001", "900004", "900002"]
    assert [s.code for s in d.search("ㅈㅈ")] == ["900001", "900003", "900004", "900002"]


def test_search_real_directory_choseong():
    d = default_directory()
    assert d.search("ㅅㅅㅈㅈ")[0].code == "005930"
    assert d.search("ㅋㅋㅇㅂ")[0].code == "323410"


def test_validate_code_messages():
    d = _dir()
    assert d.validate_code("005930") is None and d.validate_code(" 005930 ") is None
    assert "not a stock code" in d.validate_code("12ab")
    assert "enter a stock code" in d.validate_code("  ")
    msg = d.validate_code("999999")
    assert msg.startswith("999999 is not listed in any master list in use") and "bundled list" in msg
    assert not d.knows("999999") and d.knows("005930")


def test_master_cache_csv_round_trip(tmp_path):
    syms = [SymbolInfo("Q500001", "ETN 하나", "", "KOSPI", 0, "etn", None, True, "danger", True),
            SymbolInfo("005930", "삼성전자", "Samsung Electronics", "KOSPI", 58000, "stock", True)]
    p = tmp_path / "c.csv"
    SymbolDirectory(syms).to_csv(p)
    assert list(SymbolDirectory.from_csv(p)) == syms
    assert list(SymbolDirectory.from_cache_csv(p)) == syms
    assert not Path(str(p) + ".tmp").exists()


def test_damaged_cache_falls_back_to_bundled(tmp_path):
    cache = tmp_path / "m"
    cache.mkdir()
    (cache / "symbols.csv").write_text("code,name_ko,name_en,market,ref_price,kind,nxt,halted,warning,administrative\n"
                                       "005930,삼성전자\n", encoding="utf-8")
    (cache / "meta.json").write_text('{"fetched_at": "2026-12-01T07:30:00+09:00"}', encoding="utf-8")
    d = load_directory(cache)
    assert d.status.source == "bundled" and "cached master unreadable" in d.status.error and len(d) == 304


def test_parse_speed_sanity():
    """3,600 KOSPI lines parse (correctness; speed is reported, not asserted)."""
    rows = [mst_line("KOSPI", f"{i:06d}", f"종목{i}") for i in range(3600)]
    t0 = time.perf_counter()
    assert len(parse_master(b"".join(rows), "KOSPI")) == 3600
    assert time.perf_counter() - t0 >= 0
