"""What keeps the app runnable on Windows and macOS when only Linux runs the suite: the stop-signal
fallback used where ``loop.add_signal_handler`` does not exist (Windows' Proactor loop, qasync),
and a guard against POSIX-only calls creeping back into the code the app and ``collect`` run."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FALLBACK_CHILD = textwrap.dedent("""
    import asyncio, signal
    from kis_desk.aio import STOP_SIGNALS, on_stop_signals

    class ProactorLike(asyncio.SelectorEventLoop):
        # Windows' ProactorEventLoop (and qasync's loop) have no add_signal_handler
        def add_signal_handler(self, sig, callback, *args):
            raise NotImplementedError

    async def main():
        stop = asyncio.Event()
        before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        undo = on_stop_signals(asyncio.get_running_loop(), stop.set)
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        signal.raise_signal(signal.SIGTERM)        # would end the process without the fallback
        await asyncio.wait_for(stop.wait(), 10)
        undo()
        assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before
        print("STOPPED CLEANLY", flush=True)

    loop = ProactorLike()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
""")


def test_stop_signal_fallback_without_add_signal_handler():
    done = subprocess.run([sys.executable, "-c", FALLBACK_CHILD], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "STOPPED CLEANLY" in done.stdout, done.stderr


# name → why it is not allowed outside the listed files
POSIX_ONLY = {
    r"\bimport fcntl\b|\bfcntl\.": "POSIX-only lock: use filelock",
    r"\bos\.fork\b": "no fork on Windows",
    r"^\s*import resource\b": "POSIX-only module",
    r"\bos\.(getuid|geteuid|getgid|setsid|killpg)\b": "POSIX-only call",
    r"\bsignal\.SIG(KILL|HUP|USR1|USR2|CHLD|PIPE|ALRM|QUIT)\b": "signal absent on Windows",
    r"\badd_signal_handler\b": "POSIX-only loop API: use kis_desk.aio.on_stop_signals",
    r"[\"']/tmp\b": "no /tmp on Windows: use tempfile",
    r"shell=True": "shell commands differ per OS",
}
ALLOWED = {"kis_desk/aio.py": {r"\badd_signal_handler\b"}}


def test_no_posix_only_calls_in_the_package():
    found = []
    for path in sorted((ROOT / "kis_desk").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        for pattern, why in POSIX_ONLY.items():
            if pattern in ALLOWED.get(rel, set()):
                continue
            for m in re.finditer(pattern, text, re.MULTILINE):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{rel}:{line}: {m.group(0).strip()} ({why})")
    assert not found, "\n".join(found)


def test_windows_version_resource_from_the_package_version(tmp_path):
    """build.spec's version file (evaluated by PyInstaller on Windows only) carries __version__."""
    sys.path.insert(0, str(ROOT / "packaging"))
    try:
        from version_info import version_tuple, write_version_file
    finally:
        sys.path.remove(str(ROOT / "packaging"))
    import kis_desk

    assert version_tuple("1.2.3rc1") == (1, 2, 3, 0) and version_tuple("2") == (2, 0, 0, 0)
    path = write_version_file(kis_desk.__version__, "kis-desk-cli", tmp_path)
    seen: dict[str, object] = {}

    def record(name):
        def make(*args, **kwargs):
            seen.setdefault(name, []).append((args, kwargs))
            return name
        return make

    names = ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct",
             "VarFileInfo", "VarStruct")
    eval(path.read_text(encoding="utf-8"), {n: record(n) for n in names})  # noqa: S307 - our own file
    ffi = seen["FixedFileInfo"][0][1]
    assert ffi["filevers"] == ffi["prodvers"] == version_tuple(kis_desk.__version__)
    strings = dict(args for args, _ in seen["StringStruct"])
    assert strings["ProductVersion"] == kis_desk.__version__
    assert strings["OriginalFilename"] == "kis-desk-cli.exe"


def test_executable_icons_are_committed():
    ico = (ROOT / "resources" / "kis-desk.ico").read_bytes()
    assert ico[:4] == b"\0\0\1\0" and int.from_bytes(ico[4:6], "little") >= 4   # several sizes
    assert (ROOT / "resources" / "kis-desk.icns").read_bytes()[:4] == b"icns"
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    assert "kis-desk.icns" in spec and "kis-desk.ico" in spec and "version=version_resource(" in spec


def test_desktop_workflow_builds_and_self_checks_on_windows_and_macos():
    """The workflow cannot run here (README says so); at least it names what it must do."""
    text = (ROOT / ".github" / "workflows" / "desktop.yml").read_text(encoding="utf-8")
    for needed in ("windows-latest", "macos-latest", "ubuntu-latest", '"3.11"', '"3.12"',
                   "pyinstaller", "build.spec", "--self-check", "QT_QPA_PLATFORM: offscreen",
                   "actions/upload-artifact", '.[test]'):
        assert needed in text, needed
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "never run from this" in readme.replace("\n", " ") and ".ci/run" in readme
