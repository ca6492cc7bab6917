"""One app instance per profile (kis_desk/ui/single_instance.py) and one collector per journal,
with real processes: a second ``kis-desk app`` raises the first and exits 0, a second
``kis-desk collect`` on the same database is refused with one line, and a killed instance's
leftover socket never blocks the next start."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QDir
from PySide6.QtNetwork import QLocalSocket

from kis_desk.ui.single_instance import RAISE_REQUEST, SingleInstance, server_name

ROOT = Path(__file__).resolve().parent.parent


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "KIS_DESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
            "PYTHONUNBUFFERED": "1"}


def _listening(name: str) -> bool:
    sock = QLocalSocket()
    sock.connectToServer(name)
    ok = sock.waitForConnected(200)
    sock.abort()
    return ok


def _wait(predicate, what: str, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (code {proc.returncode}) before: {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.1)


def test_server_name_is_per_profile(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert server_name(a) == server_name(a) != server_name(b)
    assert server_name(tmp_path / "a" / ".." / "a") == server_name(a)
    assert len(server_name(a)) < 40          # fits a Unix socket path


def test_raise_request_reaches_the_instance(qtbot, tmp_path):
    first = SingleInstance(tmp_path)
    assert first.acquire()
    try:
        client = QLocalSocket()
        client.connectToServer(first.name)
        with qtbot.waitSignal(first.activated, timeout=10_000):
            assert client.waitForConnected(5000)
            client.write(RAISE_REQUEST)
        client.abort()
    finally:
        first.release()
    again = SingleInstance(tmp_path)        # released: the next start is the instance
    assert again.acquire()
    again.release()


HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from PySide6.QtCore import QCoreApplication
    from kis_desk.ui.single_instance import SingleInstance
    app = QCoreApplication([])
    inst = SingleInstance(Path(sys.argv[1]))
    assert inst.acquire()
    print("LISTENING", flush=True)
    app.exec()
""")


def test_killed_instance_does_not_block_the_next_start(qapp, tmp_path):
    """kill -9 leaves the socket file (POSIX) behind; the lock died with the process, so the next
    start removes the leftover and listens."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env=_env(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "LISTENING"
        busy = SingleInstance(tmp_path)
        assert busy.notify_running()          # the holder answers
    finally:
        holder.kill()
        holder.wait(30)
    if os.name == "posix":                     # Windows' named pipes vanish with their process
        socket_file = Path(QDir.tempPath()) / server_name(tmp_path)   # where QLocalServer puts it
        assert socket_file.exists(), "expected the killed instance's socket file"
    nxt = SingleInstance(tmp_path)
    assert not nxt.notify_running()           # nobody answers on the leftover
    assert nxt.acquire()
    nxt.release()


@pytest.mark.slow
def test_second_app_start_raises_the_first_and_exits(qapp, tmp_path):
    home = tmp_path / "home"
    name = server_name(home / "data")
    first_err = open(tmp_path / "first.err", "w+")
    first = subprocess.Popen([sys.executable, "-m", "kis_desk", "app", "--env", "sim", "--sim-rate", "50"],
                             cwd=ROOT, env=_env(home), stdout=subprocess.DEVNULL, stderr=first_err)
    try:
        _wait(lambda: _listening(name), "the first app listens", first)
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "kis_desk", "app", "--env", "sim"], cwd=ROOT,
                                env=_env(home), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
        assert second.returncode == 0, second.stderr
        lines = [line for line in second.stdout.splitlines() if line.strip()]
        assert len(lines) == 1 and "already running for this profile" in lines[0], second.stdout
        assert "collecting" not in second.stderr and "Traceback" not in second.stderr
        assert "did not acknowledge" not in second.stderr
        _wait(lambda: "raising the window" in (tmp_path / "first.err").read_text(), "the raise request", first)
        assert first.poll() is None              # the first keeps running
        print(f"second start exited in {took:.2f} s")
    finally:
        if first.poll() is None:
            first.terminate()                    # SIGTERM: clean, flushed stop
        code = first.wait(60)
        first_err.close()
    if os.name == "posix":                      # SIGTERM: clean stop (Windows: TerminateProcess)
        assert code == 0, (tmp_path / "first.err").read_text()[-2000:]
    assert not _listening(name)


@pytest.mark.slow
def test_second_collector_on_the_same_database_is_refused(tmp_path):
    home = tmp_path / "home"
    first_err = open(tmp_path / "first.err", "w+")
    first = subprocess.Popen([sys.executable, "-m", "kis_desk", "collect", "--env", "sim", "--codes", "005930",
                              "--duration", "120"], cwd=ROOT, env=_env(home), stdout=subprocess.PIPE,
                             stderr=first_err, text=True)
    try:
        _wait(lambda: "collecting 1 symbols" in (tmp_path / "first.err").read_text(), "the first collects", first)
        second = subprocess.run([sys.executable, "-m", "kis_desk", "collect", "--env", "sim", "--codes", "005930",
                                 "--duration", "5"], cwd=ROOT, env=_env(home), capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        errors = [line for line in second.stderr.splitlines() if line.startswith("kis-desk collect:")]
        assert len(errors) == 1 and "another running writer" in errors[0], second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None
    finally:
        if first.poll() is None:
            first.terminate()
        out, _ = first.communicate(timeout=60)
        first_err.close()
    if os.name == "posix":                      # SIGTERM: flushed, summary printed
        assert first.returncode == 0 and '"received"' in out.splitlines()[-1]
