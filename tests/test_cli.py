"""The ``kis-desk`` command line: help, version, and the simulator subcommand end to end."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kis_desk import __version__
from kis_desk.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"kis-desk {__version__}"


def test_help_lists_every_subcommand():
    text = build_parser().format_help()
    for command in ("app", "collect", "sim", "decode", "alerts", "--self-check", "--log-level"):
        assert command in text


def test_unknown_subcommand_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.name == "nt", reason="sends SIGINT to another process: POSIX only (Windows would need CTRL_C_EVENT to a console group)")
def test_sim_subcommand_serves_and_prints_its_urls(tmp_path):
    ws_port, rest_port = _free_port(), _free_port()
    env = {**os.environ, "KIS_DESK_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "kis_desk", "sim", "--ws-port", str(ws_port),
                             "--rest-port", str(rest_port), "--rate", "100", "--codes", "005930,Q500001"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(lines) < 2:
            line = proc.stdout.readline()
            if not line:
                break
            if "://" in line:
                lines.append(line.strip())
        urls = " ".join(lines)
        assert re.search(rf"ws://127\.0\.0\.1:{ws_port}", urls), urls
        assert re.search(rf"http://127\.0\.0\.1:{rest_port}", urls), urls
        with socket.create_connection(("127.0.0.1", ws_port), 5):
            pass
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("argv, reason", [
    (["collect", "--db", "mysql://u@h/db"], "'mysql' databases are not supported"),
    (["collect", "--db", "not a url"], "is not a database URL"),
    (["collect", "--codes", ""], "--codes is empty"),
    (["collect", "--duration", "-5"], "--duration must be a positive"),
    (["app", "--db", "mysql://u@h/db"], "'mysql' databases are not supported"),
])
def test_collect_and_app_misuse_exits_2_with_one_line(argv, reason, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KIS_DESK_HOME", str(tmp_path))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and reason in err[0] and "Traceback" not in err[0], err


def test_empty_secret_is_refused_by_name(tmp_path):
    env = {**os.environ, "KIS_DESK_HOME": str(tmp_path), "KIS_APP_KEY": "PSabc", "KIS_APP_SECRET": ""}
    proc = subprocess.run([sys.executable, "-m", "kis_desk", "collect", "--env", "mock",
                           "--duration", "1"], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == ("kis-desk collect: KIS_APP_SECRET is empty (set both KIS_APP_KEY and "
                         "KIS_APP_SECRET, or neither)"), proc.stderr
    assert "Traceback" not in proc.stderr and "PSabc" not in proc.stderr


def test_exit_codes_from_the_summary():
    from kis_desk.headless import exit_code
    ok = {"symbols_never_collected": [], "gaps_unrecovered": 0, "gaps_pending": 0,
          "alerts_undelivered": 0}
    assert exit_code(ok, False) == 0
    assert exit_code(ok, True) == 3
    assert exit_code({**ok, "symbols_never_collected": ["005930"]}, False) == 4
    assert exit_code({**ok, "gaps_pending": 1}, False) == 5
    assert exit_code({**ok, "alerts_undelivered": 2}, False) == 6
