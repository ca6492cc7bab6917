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
