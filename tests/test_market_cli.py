"""``kis-desk sessions`` and ``kis-desk symbols``: output parsed back."""

from __future__ import annotations

import json

import pytest

from kis_desk.cli import build_parser, main
from kis_desk.market.symbols import default_directory

from test_master import ALL_FILES, MasterServer


def test_help_lists_the_market_commands():
    text = build_parser().format_help()
    assert "sessions" in text and "symbols" in text


def test_sessions_json_total(capsys):
    assert main(["sessions", "2025-03-04", "--venue", "total", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["date"] == "2025-03-04" and report["venue"] == "total" and report["trading_day"]
    assert [(p["from"], p["phase"]) for p in report["phases"]] == [
        ("00:00:00", "closed"), ("08:00:00", "pre_market"), ("08:50:00", "pre_open"), ("09:00:00", "open"),
        ("15:20:00", "closing_auction"), ("15:30:00", "after_market"), ("20:00:00", "closed")]
    kinds = {(s["venue"], s["kind"], s["start"], s["end"]) for s in report["sessions"]}
    assert ("nxt", "regular", "09:00:30", "15:20:00") in kinds
    assert ("krx", "single_price", "16:00:00", "18:00:00") in kinds
    assert report["next_open"] is None
    assert report["announced"][0]["venue"] == "krx"


def test_sessions_json_holiday_says_next_open(capsys):
    assert main(["sessions", "2025-10-06", "--venue", "nxt", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert not report["trading_day"] and report["sessions"] == []
    assert report["phases"] == [{"from": "00:00:00", "phase": "holiday", "trading": False}]
    assert report["next_open"] == "2025-10-10T09:00:30+09:00"


def test_sessions_table(capsys):
    assert main(["sessions", "2025-11-13"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2025-11-13 (Thu)  venue krx: CSAT day")
    assert "10:00:00  16:20:00  krx    regular" in out
    assert "16:30:00 after_hours" in out


def test_sessions_default_date_and_bad_input(capsys):
    assert main(["sessions", "--json"]) == 0
    assert "date" in json.loads(capsys.readouterr().out)
    assert main(["sessions", "04/03/2025"]) == 2
    assert "date must be YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sessions", "--venue", "nyse"])


def test_symbols_search_json_and_table(capsys):
    default_directory.cache_clear()
    assert main(["symbols", "search", "ㅅㅅㅈㅈ", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["results"][0]["code"] == "005930" and data["status"]["source"] == "bundled"
    assert main(["symbols", "search", "카카오뱅크"]) == 0
    assert capsys.readouterr().out.startswith("323410   카카오뱅크  KakaoBank  [KOSPI]")
    assert main(["symbols", "search", "없는종목이름"]) == 1
    assert "no symbol matches" in capsys.readouterr().out


def test_symbols_update_then_search_and_status(capsys, monkeypatch):
    server = MasterServer(ALL_FILES)
    default_directory.cache_clear()
    try:
        monkeypatch.setenv("KIS_DESK_MASTER_URL", server.url)
        assert main(["symbols", "update"]) == 0
        out = capsys.readouterr().out
        assert "downloaded" in out and "in use: KIS master list of" in out
        assert main(["symbols", "update"]) == 0                       # same day: skipped
        assert "skipped: already downloaded today" in capsys.readouterr().out
        assert len(server.requests) == len(ALL_FILES)
        assert main(["symbols", "search", "Q500001", "--json"]) == 0
        row = json.loads(capsys.readouterr().out)["results"][0]
        assert row["kind"] == "etn" and row["nxt"] is False
        assert main(["symbols", "search", "005930"]) == 0
        assert "[KOSPI NXT]" in capsys.readouterr().out
        assert main(["symbols", "status", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["source"] == "master"
    finally:
        server.close()
        default_directory.cache_clear()


def test_symbols_update_offline_exit_code(capsys, monkeypatch):
    monkeypatch.setenv("KIS_DESK_MASTER_URL", "http://127.0.0.1:9/none")
    default_directory.cache_clear()
    try:
        assert main(["symbols", "update", "--force"]) == 1
        out = capsys.readouterr().out
        assert "download failed" in out and "in use: bundled list" in out
    finally:
        default_directory.cache_clear()


def test_symbols_update_uses_the_master_url_setting(capsys, monkeypatch, isolated_home):
    monkeypatch.delenv("KIS_DESK_MASTER_URL", raising=False)
    server = MasterServer(ALL_FILES)
    config = isolated_home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "settings.json").write_text(json.dumps({"master_url": server.url}), encoding="utf-8")
    default_directory.cache_clear()
    try:
        assert main(["symbols", "update"]) == 0
        assert "downloaded" in capsys.readouterr().out and server.requests
    finally:
        server.close()
        default_directory.cache_clear()
