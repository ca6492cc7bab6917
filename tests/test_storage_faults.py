"""Nothing lost: database down and back (real PostgreSQL cluster stopped/restarted, backends
terminated), locked SQLite, the SQLite database's disk full, journal spill + replay, kill -9 mid-stream, disk
full for the journal."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from kis_desk.core.events import ErrorEvent, EventBus
from kis_desk.engine.storage import JournalLockedError, Repository, TickWriter
from test_storage import make_ticks, pg_schema_url, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REPO_ROOT = Path(__file__).resolve().parent.parent


async def stream(w: TickWriter, ticks, per_chunk: int, pause: float, until=None) -> int:
    """Submit in chunks like a live feed; returns how many were submitted."""
    n = 0
    for i in range(0, len(ticks), per_chunk):
        w.submit(ticks[i:i + per_chunk])
        n += len(ticks[i:i + per_chunk])
        await asyncio.sleep(pause)
        if until is not None and until():
            break
    return n


# -- PostgreSQL really going away -------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPG:
    """A private PostgreSQL cluster (initdb refuses root, so it runs as the postgres user)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="kisdesk-pg-", dir="/tmp"))
        self.port = _free_port()
        shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - already stopped
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def throwaway_pg():
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL server binaries not installed (need /usr/lib/postgresql/15/bin)")
    try:
        pg = ThrowawayPG()
        pg.start()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"cannot run a private PostgreSQL cluster here: {exc}")
    yield pg
    pg.destroy()


@pytest.mark.postgres
@pytest.mark.slow
async def test_pg_server_stops_mid_run_and_comes_back(throwaway_pg, tmp_path):
    bus = EventBus()
    errors: list[ErrorEvent] = []
    bus.subscribe(ErrorEvent, errors.append)
    w = TickWriter(throwaway_pg.url, journal_dir=tmp_path / "journal", bus=bus, spill_after=1.0,
                   connect_timeout=1.0)
    await w.start()
    ticks = make_ticks(24_000)
    n = await stream(w, ticks[:6000], 200, 0.01)
    await w.flush()
    await asyncio.to_thread(throwaway_pg.stop)                 # the server really goes away
    n += await stream(w, ticks[6000:16_000], 200, 0.01)        # ≈ 0.5 s+ of trades while down
    await wait_until(lambda: not w.stats().database_ok, "writer notices the outage")
    await asyncio.sleep(1.5)                                   # longer than spill_after: journal
    n += await stream(w, ticks[16_000:18_000], 200, 0.01)
    await asyncio.to_thread(throwaway_pg.start)
    n += await stream(w, ticks[18_000:], 200, 0.01)
    await w.flush()
    await wait_until(lambda: w.stats().database_ok and w.stats().journal_pending == 0,
                     "journal replayed after the server came back")
    await w.stop()
    s = w.stats()
    assert n == 24_000
    assert s.failed == 0
    assert s.journaled > 0
    assert s.stored + s.duplicates >= 24_000
    assert any("Database unavailable" in e.message for e in errors)
    repo = Repository(throwaway_pg.url)
    assert repo.count_ticks() == 24_000
    repo.close()


@pytest.mark.postgres
async def test_pg_backend_terminated_mid_run(pg_url, tmp_path):
    name = "t_" + uuid.uuid4().hex[:12]
    app = "kisdesk-test-" + uuid.uuid4().hex[:8]
    admin = sa.create_engine(pg_url, poolclass=sa.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    url = pg_schema_url(pg_url, name, app)
    try:
        w = TickWriter(url, journal_dir=tmp_path / "journal")
        await w.start()
        ticks = make_ticks(20_000)
        killed = 0
        for i in range(0, 20_000, 500):
            w.submit(ticks[i:i + 500])
            await asyncio.sleep(0.005)
            if i % 5000 == 2500:
                with admin.begin() as conn:
                    killed += len(conn.execute(sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :a"),
                        {"a": app}).all())
        await w.flush()
        await wait_until(lambda: w.stats().database_ok and w.stats().journal_pending == 0,
                         "writer reconnects by itself and replays what it journaled")
        await w.stop()
        s = w.stats()
        assert killed >= 1
        assert s.failed == 0 and s.backlog == 0
        with admin.connect() as conn:
            n = conn.execute(sa.text(f"SELECT count(*) FROM {name}.stock_prices_realtime")).scalar_one()
        assert n == 20_000, s
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


# -- SQLite locked --------------------------------------------------------------------------------

async def test_sqlite_locked_by_another_connection_loses_nothing(tmp_path):
    path = tmp_path / "locked.sqlite3"
    url = f"sqlite:///{path.as_posix()}"
    w = TickWriter(url, journal_dir=tmp_path / "journal", spill_after=0.5, busy_timeout=0.2)
    await w.start()
    ticks = make_ticks(12_000)
    w.submit(ticks[:2000])
    await w.flush()

    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(30)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert await asyncio.to_thread(locked.wait, 10)
    await stream(w, ticks[2000:10_000], 400, 0.05)           # ≈ 1 s+ of trades while locked
    await wait_until(lambda: w.stats().journaled > 0, "spill to the journal while locked")
    assert w.stats().database_ok is False and "locked" in w.stats().last_error
    release.set()
    await asyncio.to_thread(holder.join)
    w.submit(ticks[10_000:])
    await w.flush()
    await wait_until(lambda: w.stats().journal_pending == 0, "journal replayed")
    await w.stop()
    assert w.stats().failed == 0
    repo = Repository(url)
    assert repo.count_ticks() == 12_000
    repo.close()


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 640 KiB tmpfs (root only: skipped elsewhere); ``grow()`` remounts it at 16 MiB."""
    where = tmp_path / "tiny"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (a really full disk for the database)")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(where)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=16m", str(where)], check=True)

    try:
        yield where, grow
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


async def test_sqlite_disk_full_says_so_journals_and_stores_everything_once_there_is_room(
        tmp_path, tiny_filesystem):
    """The database's own disk fills up mid-stream: one plain error, trades spill to the journal
    (on another disk), and once there is room again every trade is stored, none twice."""
    where, grow = tiny_filesystem
    url = f"sqlite:///{(where / 'ticks.sqlite3').as_posix()}"
    bus = EventBus()
    errors: list[str] = []
    bus.subscribe(ErrorEvent, lambda e: errors.append(e.message))
    w = TickWriter(url, journal_dir=tmp_path / "journal", spill_after=0.3, bus=bus)
    await w.start()
    ticks = make_ticks(60_000)                 # ≈ 3 MB of rows and bars: far more than 640 KiB
    await stream(w, ticks[:40_000], 2000, 0.02)
    await wait_until(lambda: w.stats().journaled > 0, "spill to the journal once the disk is full")
    s = w.stats()
    assert s.database_ok is False and "full" in s.last_error
    assert any("full" in m and "\n" not in m for m in errors), errors
    grow()
    await stream(w, ticks[40_000:], 2000, 0.01)
    await w.flush()
    await wait_until(lambda: w.stats().database_ok and w.stats().journal_pending == 0,
                     "replay once there is room")
    await w.stop()
    s = w.stats()
    assert s.failed == 0 and s.stored == 60_000 and s.duplicates == 0, s
    repo = Repository(url)
    assert repo.count_ticks() == 60_000
    repo.close()


# -- journal spill + replay -------------------------------------------------------------------------

async def test_database_missing_at_start_then_appears(tmp_path):
    db_dir = tmp_path / "not-yet"
    url = f"sqlite:///{(db_dir / 'ticks.sqlite3').as_posix()}"
    journal = tmp_path / "journal"
    w = TickWriter(url, journal_dir=journal, spill_after=0.2)
    await w.start()                                          # not an error: journals and retries
    assert w.stats().database_ok is False
    ticks = make_ticks(5000)
    w.submit(ticks[:3000])
    await w.flush()                                          # flush = committed OR journaled
    s = w.stats()
    assert s.journaled == 3000 and s.backlog == 0 and s.journal_pending == 3000
    assert list(journal.glob("seg-*.kjl"))
    db_dir.mkdir()                                           # the database becomes available
    w.submit(ticks[3000:])
    await wait_until(lambda: w.stats().database_ok and w.stats().journal_pending == 0,
                     "reconnect and replay")
    await w.flush()
    await w.stop()
    assert w.stats().stored == 5000 and w.stats().failed == 0
    assert not list(journal.glob("seg-*.kjl"))               # replayed segments are removed
    repo = Repository(url)
    assert repo.count_ticks() == 5000
    repo.close()


async def test_stop_while_database_down_journals_then_next_start_replays(tmp_path):
    db_dir = tmp_path / "db"
    url = f"sqlite:///{(db_dir / 'ticks.sqlite3').as_posix()}"
    journal = tmp_path / "journal"
    w = TickWriter(url, journal_dir=journal)
    await w.start()
    w.submit(make_ticks(4000))
    await w.stop()
    assert w.stats().journaled == 4000 and w.stats().failed == 0
    # a torn last line (as after a crash mid-write) is skipped, not fatal
    seg = sorted(journal.glob("seg-*.kjl"))[-1]
    with open(seg, "ab") as f:
        f.write(b"T\t005930\t2026-03-05T09:")
    db_dir.mkdir()
    w2 = TickWriter(url, journal_dir=journal)
    await w2.start()
    assert w2.stats().recovered == 4001 or w2.stats().recovered == 4000
    await w2.stop()
    assert w2.stats().stored == 4000 and w2.stats().journal_pending == 0
    assert w2.stats().bad_journal_lines == 1
    repo = Repository(url)
    assert repo.count_ticks() == 4000
    repo.close()


async def test_one_writer_per_journal_dir(tmp_path):
    url = f"sqlite:///{(tmp_path / 't.sqlite3').as_posix()}"
    w = TickWriter(url, journal_dir=tmp_path / "journal")
    await w.start()
    w2 = TickWriter(url, journal_dir=tmp_path / "journal")
    with pytest.raises(JournalLockedError):
        await w2.start()
    await w.stop()


LOCK_HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from kis_desk.engine.storage import Journal
    j = Journal(Path(sys.argv[1]))
    j.open()
    print("LOCKED", flush=True)
    sys.stdin.readline()          # hold the lock until the parent says so (or kills us)
    j.close()
""")


def _lock_holder(journal_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(journal_dir)], cwd=REPO_ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "LOCKED"
    return proc


def _second_writer_refused(journal_dir: Path) -> None:
    from kis_desk.engine.storage import Journal

    with pytest.raises(JournalLockedError, match="another running writer"):
        Journal(journal_dir).open()


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_journal_lock_across_processes(tmp_path, how):
    """A second process cannot write the journal while the first holds it; it can once the first
    has exited, cleanly or killed (SIGKILL on POSIX, TerminateProcess on Windows)."""
    from kis_desk.engine.storage import Journal

    journal_dir = tmp_path / "journal"
    holder = _lock_holder(journal_dir)
    try:
        _second_writer_refused(journal_dir)
        _second_writer_refused(journal_dir)      # a refused attempt leaves nothing behind
    finally:
        if how == "kill":
            holder.kill()
        else:
            holder.stdin.close()
        assert holder.wait(30) == (0 if how == "exit" else -signal.SIGKILL if os.name == "posix" else 1)
    j = Journal(journal_dir)
    j.open()
    try:
        # and now this process is the writer: another process is refused in turn
        code = subprocess.run([sys.executable, "-c", LOCK_HOLDER, str(journal_dir)], cwd=REPO_ROOT,
                              input="", capture_output=True, text=True, timeout=60)
        assert code.returncode == 1 and "JournalLockedError" in code.stderr
    finally:
        j.close()


# -- crash: kill -9 mid-stream ------------------------------------------------------------------------

CRASH_CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from test_storage import make_ticks
    from kis_desk.engine.storage import TickWriter

    async def main():
        w = TickWriter(sys.argv[1], journal_dir=Path(sys.argv[2]), spill_after=0.3, busy_timeout=0.2)
        await w.start()
        ticks = make_ticks(200_000)
        sent = 0
        for i in range(0, len(ticks), 500):
            w.submit(ticks[i:i + 500])
            sent += 500
            if sent % 2500 == 0:
                await w.flush()       # everything up to `sent` is committed or journaled (fsynced)
                s = w.stats()
                print(f"ACK {sent} {s.stored} {s.journaled}", flush=True)
            await asyncio.sleep(0)
    asyncio.run(main())
""")


@pytest.mark.slow
async def test_kill_9_mid_stream_then_replay(tmp_path):
    """'Submitted' = what the child acknowledged after flush() (committed or fsynced to the
    journal). Ticks handed to submit() after the last acknowledgement may be lost by kill -9 —
    that is the honest promise of an in-process queue; everything acknowledged must survive."""
    path = tmp_path / "crash.sqlite3"
    url = f"sqlite:///{path.as_posix()}"
    journal = tmp_path / "journal"
    Repository(url).close()                                   # schema exists before the lock
    child = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, url, str(journal),
                              str(Path(__file__).parent)], stdout=subprocess.PIPE, text=True,
                             cwd=REPO_ROOT)
    acked = committed_at_lock = 0
    other = None
    try:
        for line in child.stdout:
            _, sent, stored, journaled = line.split()
            acked = int(sent)
            if other is None and acked >= 10_000:
                # lock the database: from now on the child spills to its journal
                other = sqlite3.connect(path, isolation_level=None)
                other.execute("BEGIN EXCLUSIVE")
                committed_at_lock = int(stored)
            if other is not None and int(journaled) >= 15_000:
                break
        child.kill()                      # SIGKILL (TerminateProcess on Windows)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        if other is not None:
            other.execute("COMMIT")
            other.close()
    assert other is not None and committed_at_lock > 0
    assert list(journal.glob("seg-*.kjl")), "the child should have spilled to its journal"

    w = TickWriter(url, journal_dir=journal)
    await w.start()                                           # replays what the dead writer left
    await w.stop()
    assert w.stats().recovered > 0 and w.stats().journal_pending == 0
    repo = Repository(url)
    n = repo.count_ticks()
    last = repo.last_trade("005930", make_ticks(1)[0].business_date)
    repo.close()
    assert n >= acked                                         # nothing acknowledged was lost
    expected = {t.cum_volume for t in make_ticks(acked)}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT cum_volume FROM stock_prices_realtime")).scalars())
    engine.dispose()
    assert expected <= stored
    assert last is not None and last.cum_volume >= 10 * acked


# -- disk full for the journal ---------------------------------------------------------------------

DISK_FULL_CHILD = textwrap.dedent("""
    import asyncio, json, resource, signal, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from test_storage import make_ticks, wait_until
    from kis_desk.core.events import ErrorEvent, EventBus
    from kis_desk.engine.storage import TickWriter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # exceeding the limit → EFBIG, not death
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    async def main():
        out = {}
        bus = EventBus()
        errors = []
        bus.subscribe(ErrorEvent, errors.append)
        db_dir = Path(sys.argv[1])
        url = f"sqlite:///{db_dir}/ticks.sqlite3"        # directory missing: database down
        w = TickWriter(url, journal_dir=Path(sys.argv[2]), bus=bus, spill_after=0.1)
        await w.start()
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))   # "disk" holds ~64 KiB
        ticks = make_ticks(6000)
        w.submit(ticks[:3000])
        try:
            await w.flush(timeout=3)
            out["flush"] = "returned"
        except (asyncio.TimeoutError, TimeoutError):
            out["flush"] = "timeout"
        s = w.stats()
        out["phase1"] = s.to_dict()
        out["errors1"] = [e.message for e in errors]
        # disk space comes back: the held ticks are journaled, nothing was dropped
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        await w.flush(timeout=30)
        out["phase2"] = w.stats().to_dict()
        # the database comes back: everything is written
        db_dir.mkdir()
        await wait_until(lambda: w.stats().database_ok and w.stats().journal_pending == 0, "replay")
        out["phase3"] = w.stats().to_dict()
        await w.stop()
        # shutdown with BOTH database and disk unavailable: the loss is counted and announced
        db_dir2 = Path(sys.argv[1] + "-gone")
        w2 = TickWriter(f"sqlite:///{db_dir2}/t.sqlite3", journal_dir=Path(sys.argv[2] + "-2"),
                        bus=bus, spill_after=0.1)
        await w2.start()
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
        errors.clear()
        w2.submit(ticks[3000:3500])
        await w2.stop()
        out["phase4"] = w2.stats().to_dict()
        out["errors4"] = [[e.message, e.fatal] for e in errors]
        print(json.dumps(out))
    asyncio.run(main())
""")


@pytest.mark.skipif(os.name != "posix", reason="uses RLIMIT_FSIZE (resource module): POSIX only")
def test_journal_disk_full_is_loud_and_loses_nothing(tmp_path):
    res = subprocess.run([sys.executable, "-c", DISK_FULL_CHILD, str(tmp_path / "db"),
                          str(tmp_path / "journal"), str(Path(__file__).parent)],
                         capture_output=True, text=True, timeout=240, cwd=REPO_ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    p1 = out["phase1"]
    assert out["flush"] == "timeout", out                     # could not be journaled: flush waits
    assert p1["failed"] == 0                              # … but nothing is silently dropped
    assert p1["backlog"] > 0                              # the rest is held in memory
    assert p1["journaled"] + p1["backlog"] == 3000
    assert "Cannot write the tick journal" in p1["last_error"]
    assert any("Cannot write the tick journal" in m for m in out["errors1"])
    p2 = out["phase2"]
    assert p2["backlog"] == 0 and p2["journaled"] == 3000 and p2["failed"] == 0
    p3 = out["phase3"]
    assert p3["stored"] == 3000 and p3["failed"] == 0
    p4 = out["phase4"]
    assert p4["failed"] == 500                            # truly lost, and said so
    assert any(fatal and "LOST 500 trades" in msg for msg, fatal in out["errors4"])
    repo = Repository(f"sqlite:///{tmp_path / 'db' / 'ticks.sqlite3'}")
    assert repo.count_ticks() == 3000
    repo.close()
