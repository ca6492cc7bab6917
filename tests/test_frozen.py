"""The PyInstaller build works frozen, not just builds (pyqtgraph has broken frozen builds before).

Builds the one-folder bundle from ``build.spec`` into a temporary dist/work path (cold: ~35 s on
2 cores here, ~270 MiB), then runs the frozen executables headless (``QT_QPA_PLATFORM=offscreen``):
``--version`` on both, the hidden bundle probe (``KIS_DESK_FROZEN_PROBE=1``, see
kis_desk/frozen_probe.py) and, once it exists, ``--self-check``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import kis_desk

ROOT = Path(__file__).resolve().parent.parent
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""


def _require_pyinstaller() -> None:
    if importlib.util.find_spec("PyInstaller") is None:
        reason = "PyInstaller is not installed (pip install -e '.[test]')"
        if os.environ.get("KIS_DESK_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " and KIS_DESK_REQUIRE_SERVICES=1")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build ``build.spec`` (one-folder) once per module; return the ``kis-desk`` folder."""
    _require_pyinstaller()
    base = tmp_path_factory.mktemp("pyinstaller")
    dist, work = base / "dist", base / "work"
    env = {k: v for k, v in os.environ.items() if k != "KIS_DESK_ONEFILE"}
    log = base / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
             "--distpath", str(dist), "--workpath", str(work), str(ROOT / "build.spec")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=840,
        )
    if proc.returncode != 0:
        pytest.fail(f"pyinstaller failed ({proc.returncode}):\n{log.read_text()[-6000:]}")
    folder = dist / "kis-desk"
    assert (folder / f"kis-desk{EXE_SUFFIX}").is_file(), log.read_text()[-3000:]
    size = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    folder.joinpath("BUILD-INFO.txt").write_text(
        f"PyInstaller bundle built in {time.monotonic() - started:.0f} s, {size / 2**20:.0f} MiB\n")
    return folder


def test_probe_unfrozen(tmp_path: Path) -> None:
    """The probe itself passes from the checkout (fast): a frozen failure is then the bundle's."""
    proc = _run(Path(sys.executable), "-m", "kis_desk", extra_env={"KIS_DESK_FROZEN_PROBE": "1",
                "PYTHONPATH": str(ROOT)}, tmp=tmp_path, timeout=120)
    report = json.loads(proc.stdout)
    assert report["frozen"] is False
    failed = {k: v["detail"] for k, v in report["items"].items() if not v["ok"]}
    assert not failed and proc.returncode == 0, failed


def _run(exe: Path, *args: str, extra_env: dict[str, str] | None = None,
         tmp: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a frozen executable headless, isolated from the checkout and the user's profile."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "QT_", "KIS_DESK_")) and k not in ("VIRTUAL_ENV",)}
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env.update({
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(home), "USERPROFILE": str(home),
        "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"), "XDG_STATE_HOME": str(home / "state"),
        "LOCALAPPDATA": str(home / "local"), "APPDATA": str(home / "roaming"),
    })
    env.update(extra_env or {})
    return subprocess.run([str(exe), *args], cwd=tmp, env=env, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=timeout)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", ["kis-desk", "kis-desk-cli"])
def test_frozen_version(bundle: Path, name: str, tmp_path: Path) -> None:
    proc = _run(bundle / f"{name}{EXE_SUFFIX}", "--version", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    if name == "kis-desk" and sys.platform == "win32":
        return  # windowed exe: no stdout on Windows (that is what kis-desk-cli.exe is for)
    assert proc.stdout.strip() == f"kis-desk {kis_desk.__version__}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_frozen_probe(bundle: Path, tmp_path: Path) -> None:
    """Every runtime piece PyInstaller can lose works inside the bundle (incl. a pyqtgraph render)."""
    proc = _run(bundle / f"kis-desk-cli{EXE_SUFFIX}", extra_env={"KIS_DESK_FROZEN_PROBE": "1"},
                tmp=tmp_path)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"probe printed no JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}")
    assert report["frozen"] is True
    failed = {k: v for k, v in report["items"].items() if not v["ok"]}
    assert not failed, "frozen bundle is missing pieces:\n" + "\n".join(
        f"- {k}: {v['detail']}\n{v.get('traceback', '')}" for k, v in failed.items())
    assert proc.returncode == 0, proc.stderr
    assert set(report["items"]) >= {"qt", "pyqtgraph", "sqlite", "postgresql_driver", "network",
                                    "keyring", "crypto", "holidays", "resources", "single_instance"}
    # The bundle's resources are used, not the checkout's.
    assert str(bundle) in report["items"]["resources"]["detail"]
    # The compiled frame decoder travels with the bundle when the checkout has it built (the
    # bundle runs without KIS_DESK_*, so a KIS_DESK_PURE_PYTHON=1 suite expects it too).
    built = lambda name: "compiled" if importlib.util.find_spec(name) is not None else "python"  # noqa: E731
    assert report["items"]["frame_decoder"]["detail"] == built("kis_desk.core._frame_ticks")
    # So does the SQLite writer's GIL-free INSERT, and it finds SQLite inside the bundle.
    from kis_desk.engine.storage import raw_sqlite
    expected = built("kis_desk.engine.storage._trade_insert")
    if raw_sqlite.find_functions() is None:
        expected = "python"
    assert report["items"]["trade_insert"]["detail"] == expected


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_frozen_self_check(bundle: Path, tmp_path: Path, capsys) -> None:
    """The frozen app's own --self-check passes; its report goes to the CI log."""
    proc = _run(bundle / f"kis-desk-cli{EXE_SUFFIX}", "--self-check", tmp=tmp_path)
    with capsys.disabled():
        print(f"\n--- {(bundle / 'BUILD-INFO.txt').read_text().strip()}")
        print(f"--- frozen {bundle.name}-cli --self-check (exit {proc.returncode}) ---")
        print(proc.stdout.rstrip())
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "self-check passed" in proc.stdout
