"""TickWriter: every trade stored exactly once, off the event loop, with nothing lost.

Threads
    The event loop thread only appends to a deque (``submit``); one dedicated writer thread does
    all database and journal I/O. Results come back to the loop with ``call_soon_threadsafe``.

Batching
    The writer wakes every ``flush_interval`` (or at once when ``max_batch`` ticks are queued or
    a ``flush()`` is waiting) and writes everything queued in one transaction per ``max_batch``.

Fast paths
    SQLite: raw ``sqlite3`` ``executemany`` of ``INSERT … ON CONFLICT DO NOTHING`` inside one
    ``BEGIN IMMEDIATE`` transaction; inserted rows = ``total_changes`` delta.
    PostgreSQL: binary ``COPY`` into a per-connection temp staging table (``ON COMMIT DELETE
    ROWS``), then ``INSERT … SELECT … ON CONFLICT DO NOTHING``; inserted rows = ``rowcount``.
    Duplicates (same stock_code, business_date, cum_volume) = batch size − inserted.

Nothing lost
    While the database fails, ticks wait in memory; once it has failed for ``spill_after`` seconds,
    or the backlog passes ``queue_limit``, or a ``flush()``/``stop()`` is waiting, they are
    spilled to the journal (fsync per batch) and replayed when the database is back (retry with
    backoff, reconnecting by itself) or at the next start. If the journal cannot be written
    either, the ticks stay in memory and the writer says so (``last_error``, an ``ErrorEvent``)
    and keeps retrying; ``failed`` counts only ticks really lost — at ``stop()`` with both the
    database and the disk unavailable — and that is logged at CRITICAL and published as a
    fatal ErrorEvent.

Counters (``stats()``)
    ``received`` ticks submitted in this run; ``stored`` rows inserted (live + replayed);
    ``duplicates`` rows ignored by the unique key (live + replayed); ``journaled`` ticks written
    to the journal in this run; ``failed`` ticks lost; ``backlog`` submitted ticks neither
    committed nor journaled yet; ``journal_pending`` ticks in the journal awaiting replay
    (includes what a previous run left, counted in ``recovered``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from itertools import chain
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ...config import redact_url
from ...core.events import AlertEvent, ErrorEvent, EventBus, StorageStatsEvent
from ...core.errors import describe as _describe
from ...core.ticks import Tick
from . import schema
from .journal import Journal

log = logging.getLogger(__name__)

CommittedHook = Callable[[Sequence[Tick] | int, float], None]

_COLS = ", ".join(f'"{c}"' for c in schema.TICK_COLUMNS)
_ALERT_COLS = ", ".join(schema.ALERT_COLUMNS)
_SQLITE_INSERT = (f"INSERT INTO {schema.TICKS} ({_COLS}) VALUES ({', '.join('?' * len(schema.TICK_COLUMNS))}) "
                  "ON CONFLICT (stock_code, business_date, cum_volume) DO NOTHING")
_SQLITE_ALERT = (f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({', '.join('?' * len(schema.ALERT_COLUMNS))}) "
                 "ON CONFLICT (alert_id) DO NOTHING")
_PG_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS _kis_tick_stage (stock_code text, business_date date, "
             '"timestamp" timestamptz, price int8, volume int8, cum_volume int8, change int8, '
             "change_rate float8, strength float8, received_at timestamptz, source text) "
             "ON COMMIT DELETE ROWS")
_PG_COPY = f"COPY _kis_tick_stage ({_COLS}) FROM STDIN (FORMAT BINARY)"
_PG_COPY_TYPES = ["text", "date", "timestamptz", "int8", "int8", "int8", "int8", "float8", "float8",
                  "timestamptz", "text"]
_PG_MERGE = (f"INSERT INTO {schema.TICKS} ({_COLS}) SELECT {_COLS} FROM _kis_tick_stage "
             "ON CONFLICT (stock_code, business_date, cum_volume) DO NOTHING")
_PG_ALERT = (f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({', '.join(['%s'] * len(schema.ALERT_COLUMNS))}) "
             "ON CONFLICT (alert_id) DO NOTHING")

_UTC = timezone.utc
_KST_OFFSET = schema._KST_OFFSET


def sqlite_rows(ticks: Sequence[Tick]) -> list[tuple]:
    """Tick → SQLite parameter tuple (times as normalised KST ISO text, see schema).

    Hot path: KIS trade times have 1-s resolution and the ticks of one network read share one
    receipt time, so both conversions are cached per batch instead of formatting every time.
    """
    out = []
    append = out.append
    ts_cache: dict[datetime, tuple[str, str]] = {}
    recv_cache: dict[float, str] = {}
    sec_cache: dict[int, str] = {}
    kst = schema.KST
    for t in ticks:
        ts = t[1]
        hit = ts_cache.get(ts)
        if hit is None:
            if ts.tzinfo is None:
                raise ValueError(f"naive timestamp in tick {t[0]} {ts}")
            local = ts if ts.utcoffset() == _KST_OFFSET else ts.astimezone(kst)
            text = local.isoformat(timespec="microseconds")
            hit = ts_cache[ts] = (text, text[:10])
        r = t[8]
        received = recv_cache.get(r)
        if received is None:
            sec = int(r // 1)
            prefix = sec_cache.get(sec)
            if prefix is None:
                prefix = sec_cache[sec] = datetime.fromtimestamp(sec, kst).isoformat()[:19] + "."
            micro = int((r - sec) * 1_000_000)
            received = recv_cache[r] = f"{prefix}{micro:06d}+09:00"
        append((t[0], hit[1], hit[0], t[2], t[3], t[4], t[5], t[6], t[7], received, t[9]))
    return out


def _sqlite_multi_insert(rows: int) -> str:
    """The tick INSERT with ``rows`` VALUES tuples (one statement, one sqlite3_step)."""
    one = "(" + ", ".join("?" * len(schema.TICK_COLUMNS)) + ")"
    return (f"INSERT INTO {schema.TICKS} ({_COLS}) VALUES {', '.join([one] * rows)} "
            "ON CONFLICT (stock_code, business_date, cum_volume) DO NOTHING")


#: Largest multi-row INSERT, in rows (further bounded by the connection's variable limit).
SQLITE_MAX_ROWS_PER_STATEMENT = 512
#: Below this many rows a batch goes through the one-row statement.
SQLITE_MIN_ROWS_PER_STATEMENT = 16


def pg_rows(ticks: Sequence[Tick]) -> list[tuple]:
    out = []
    append = out.append
    last_ts = None
    day = None
    for t in ticks:
        ts = t[1]
        if ts is not last_ts:
            if ts.tzinfo is None:
                raise ValueError(f"naive timestamp in tick {t.stock_code} {ts}")
            day = schema.kst_date(ts)
            last_ts = ts
        ch, rate, strength = t[5], t[6], t[7]
        append((t[0], day, ts, t[2], t[3], t[4], ch,
                None if rate is None else float(rate), None if strength is None else float(strength),
                datetime.fromtimestamp(t[8], _UTC), t[9]))
    return out


def _alert_row(a: AlertEvent, sqlite: bool) -> tuple:
    conv = schema.sqlite_dt if sqlite else (lambda d: d)
    day = schema.kst_date(a.trigger_time)
    return (a.alert_id, day.isoformat() if sqlite else day, a.stock_code, a.stock_name, a.direction,
            float(a.change_pct), a.base_price, conv(a.base_time), a.trigger_price,
            conv(a.trigger_time), a.trigger_cum_volume, conv(a.detected_at),
            float(a.window_seconds), float(a.threshold_pct), a.step, a.late, a.delay_s, a.source,
            a.kind)


class WriterStats(dict):
    """``stats()`` result: a plain dict that also reads as attributes (``s["stored"] == s.stored``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _Backend:
    """One database connection used by the writer thread only."""

    def __init__(self, url: sa.URL, busy_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.connect_timeout = connect_timeout
        self.conn: Any = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self.conn = None


class _SQLiteBackend(_Backend):
    _sizes: list[int] | None = None
    _sql: dict[int, str]

    def connect(self) -> None:
        self._sizes = None
        path = self.url.database
        if not path or path == ":memory:":
            raise ValueError("TickWriter needs a file-backed SQLite database")
        conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except Exception:
            conn.close()
            raise
        self.conn = conn

    def probe(self) -> None:
        """Can we take the write lock right now? (a connection alone proves nothing)"""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("ROLLBACK")

    def _statement_sizes(self) -> list[int]:
        """Row counts of the multi-row INSERTs used, largest first: powers of two, so a batch of
        any size needs few statements and the connection's statement cache keeps them all."""
        if self._sizes is None:
            try:
                limit = self.conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            except (AttributeError, sqlite3.Error):
                limit = 999                         # SQLite's historical minimum
            top = min(SQLITE_MAX_ROWS_PER_STATEMENT, limit // len(schema.TICK_COLUMNS))
            sizes = []
            k = SQLITE_MIN_ROWS_PER_STATEMENT
            while k <= top:
                sizes.append(k)
                k *= 2
            self._sizes = sizes[::-1]
            self._sql = {k: _sqlite_multi_insert(k) for k in self._sizes}
        return self._sizes

    def _insert_ticks(self, rows: list[tuple]) -> None:
        """All rows in as few statements as possible.

        Why: ``executemany`` of a one-row INSERT steps SQLite once per row, and every step
        releases and re-takes the GIL; while the event loop thread is busy, each re-take can
        wait a whole switch interval (5 ms). A multi-row INSERT does the same work (same
        ``ON CONFLICT DO NOTHING`` per row) in one step per hundreds of rows, with the B-tree
        work running outside the GIL."""
        c = self.conn
        n = len(rows)
        i = 0
        for k in self._statement_sizes():
            if n - i < k:
                continue
            full = (n - i) // k * k
            c.executemany(self._sql[k], [list(chain.from_iterable(rows[j:j + k]))
                                         for j in range(i, i + full, k)])
            i += full
        if i < n:
            c.executemany(_SQLITE_INSERT, rows[i:] if i else rows)

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> tuple[int, int]:
        rows = sqlite_rows(ticks)
        arows = [_alert_row(a, True) for a in alerts]
        c = self.conn
        before = c.total_changes
        c.execute("BEGIN IMMEDIATE")
        try:
            if rows:
                self._insert_ticks(rows)
            mid = c.total_changes
            if arows:
                c.executemany(_SQLITE_ALERT, arows)
            c.execute("COMMIT")
        except BaseException:
            try:
                c.execute("ROLLBACK")
            except Exception:  # noqa: BLE001
                pass
            raise
        return mid - before, c.total_changes - mid


class _PGBackend(_Backend):
    def connect(self) -> None:
        import psycopg

        engine = sa.create_engine(self.url, poolclass=sa.NullPool)
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        engine.dispose()
        kwargs.setdefault("connect_timeout", max(1, int(self.connect_timeout)))
        # keepalives notice a dead server/peer instead of blocking forever on a half-open socket
        kwargs.setdefault("application_name", "kis-desk-writer")
        kwargs.setdefault("keepalives", 1)
        kwargs.setdefault("keepalives_idle", 5)
        kwargs.setdefault("keepalives_interval", 2)
        kwargs.setdefault("keepalives_count", 3)
        conn = psycopg.connect(*args, **kwargs)
        try:
            conn.execute(_PG_STAGE)
            conn.commit()
        except Exception:
            conn.close()
            raise
        self.conn = conn

    def probe(self) -> None:
        self.conn.execute("SELECT 1")
        self.conn.rollback()

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> tuple[int, int]:
        rows = pg_rows(ticks)
        conn = self.conn
        inserted = alerts_inserted = 0
        try:
            with conn.cursor() as cur:
                if rows:
                    with cur.copy(_PG_COPY) as cp:
                        cp.set_types(_PG_COPY_TYPES)
                        write_row = cp.write_row
                        for r in rows:
                            write_row(r)
                    cur.execute(_PG_MERGE)
                    inserted = cur.rowcount
                for a in alerts:
                    cur.execute(_PG_ALERT, _alert_row(a, False))
                    alerts_inserted += max(cur.rowcount, 0)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001
                pass
            raise
        return inserted, alerts_inserted


class TickWriter:
    """Batching, journaling trade writer. See the module docstring for the guarantees."""

    def __init__(self, url: str, *, journal_dir: Path, flush_interval: float = 0.05,
                 max_batch: int = 20000, queue_limit: int = 200_000, bus: EventBus | None = None,
                 spill_after: float = 3.0, busy_timeout: float = 1.0, connect_timeout: float = 3.0,
                 stats_interval: float = 1.0) -> None:
        self.url = url
        self._sa_url = sa.make_url(url)
        backend = self._sa_url.get_backend_name()
        if backend == "sqlite":
            self._backend: _Backend = _SQLiteBackend(self._sa_url, busy_timeout, connect_timeout)
        elif backend == "postgresql":
            self._backend = _PGBackend(self._sa_url, busy_timeout, connect_timeout)
        else:
            raise ValueError(f"unsupported database {backend!r} (use sqlite or postgresql)")
        self.backend_name = backend
        self.journal = Journal(Path(journal_dir))
        self.flush_interval = min(max(flush_interval, 0.001), 0.1)
        self.max_batch = max_batch
        self.queue_limit = queue_limit
        self.spill_after = spill_after
        self.stats_interval = stats_interval
        self.bus = bus
        self.on_committed: list[CommittedHook] = []

        self._queue: deque[Tick] = deque()
        self._alert_queue: deque[AlertEvent] = deque()
        self._wake = threading.Event()
        self._waiters_lock = threading.Lock()
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stats_task: asyncio.Task | None = None
        self._started = False
        self._closed = False

        # counters (received* written by the loop thread, the rest by the writer thread)
        self._received = 0
        self._alerts_received = 0
        self._settled = 0            # received ticks now committed, duplicate, journaled or failed
        self._alerts_settled = 0
        self.stored = 0
        self.duplicates = 0
        self.journaled = 0
        self.failed = 0
        self.recovered = 0
        self.alerts_stored = 0
        self.bad_journal_lines = 0
        self.database_ok = False
        self.last_error = ""
        self._migrated = False
        self._fail_since: float | None = None
        self._next_retry = 0.0
        self._backoff = 0.1
        self._journal_error = False
        self._next_journal_try = 0.0
        self._pending: list[Tick] = []
        self._pending_alerts: list[AlertEvent] = []

    # -- public API (loop thread) ------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, migrate, replay a journal left by a previous run, start the writer thread.

        A database that is unreachable now is not an error: the writer journals and retries.
        """
        if self._started:
            raise RuntimeError("TickWriter already started")
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.journal.open)
        self.recovered = self.journal.pending
        self._started = True
        await asyncio.to_thread(self._startup)
        self._thread = threading.Thread(target=self._run, name="kis-desk-tick-writer", daemon=True)
        self._thread.start()
        if self.bus is not None and self.stats_interval > 0:
            self._stats_task = asyncio.create_task(self._stats_loop(), name="tick-writer-stats")
        self._publish_stats()

    def submit(self, ticks: Sequence[Tick]) -> None:
        """Queue trades; never blocks, never drops (the writer spills to disk past the bound)."""
        if self._closed or not self._started:
            raise RuntimeError("TickWriter is not running")
        n = len(ticks)
        if not n:
            return
        self._queue.extend(ticks)
        self._received += n
        if len(self._queue) >= self.max_batch:
            self._wake.set()

    def submit_alert(self, alert: AlertEvent) -> None:
        if self._closed or not self._started:
            raise RuntimeError("TickWriter is not running")
        self._alert_queue.append(alert)
        self._alerts_received += 1

    async def flush(self, timeout: float | None = None) -> None:
        """Return once everything submitted so far is committed or journaled.

        If neither the database nor the journal can take the ticks this waits (they stay in
        memory) — pass ``timeout`` to get ``TimeoutError`` instead.
        """
        if not self._started or self._thread is None:
            return
        fut = asyncio.get_running_loop().create_future()
        with self._waiters_lock:
            self._waiters.append((self._received, self._alerts_received, fut))
        self._wake.set()
        await asyncio.wait_for(fut, timeout)

    async def stop(self) -> None:
        """Write (or journal) everything, replay what the database can take, close."""
        if not self._started or self._closed:
            return
        self._closed = True
        self._stop_requested = True
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._stats_task is not None:
            self._stats_task.cancel()
            try:
                await self._stats_task
            except asyncio.CancelledError:
                pass
        self._publish_stats()

    def stats(self) -> WriterStats:
        return WriterStats({
            "received": self._received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "journaled": self.journaled,
            "failed": self.failed,
            "backlog": self._received - self._settled,
            "journal_pending": self.journal.pending,
            "recovered": self.recovered,
            "alerts_received": self._alerts_received,
            "alerts_stored": self.alerts_stored,
            "database_ok": self.database_ok,
            "database": redact_url(self.url),
            "last_error": self.last_error,
        })

    def stats_event(self) -> StorageStatsEvent:
        s = self.stats()
        return StorageStatsEvent(s["received"], s["stored"], s["duplicates"], s["journaled"],
                                 s["failed"], s["backlog"], s["database_ok"], s["database"],
                                 s["last_error"])

    # -- loop-thread helpers -----------------------------------------------------------------------
    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            self._publish_stats()

    def _publish_stats(self) -> None:
        if self.bus is not None:
            self.bus.publish(self.stats_event())

    def _publish_error(self, message: str, fatal: bool) -> None:
        if self.bus is not None:
            self.bus.publish(ErrorEvent("storage", message, fatal))
        self._publish_stats()

    def _dispatch_committed(self, what: Sequence[Tick] | int, wall: float) -> None:
        for hook in tuple(self.on_committed):
            try:
                hook(what, wall)
            except Exception:
                log.exception("on_committed hook %r failed", hook)

    def _to_loop(self, fn: Callable, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed (interpreter shutting down)
            pass

    # -- writer thread -----------------------------------------------------------------------------
    def _startup(self) -> None:
        if self._try_connect():
            self._replay_journal(budget=None)

    def _set_db_state(self, ok: bool, error: str = "") -> None:
        changed = ok != self.database_ok
        self.database_ok = ok
        if ok:
            self._fail_since = None
            self._backoff = 0.1
            if changed:
                log.info("database %s is available", redact_url(self.url))
        else:
            now = time.monotonic()
            if self._fail_since is None:
                self._fail_since = now
            self._next_retry = now + self._backoff
            self._backoff = min(self._backoff * 2, 2.0)
            if error and error != self.last_error:
                self.last_error = error
                log.warning("database %s unavailable: %s (ticks wait in memory, then in the journal)",
                            redact_url(self.url), error)
                self._to_loop(self._publish_error,
                              f"Database unavailable ({error}); trades are kept and written when it returns",
                              False)
                changed = False
        if changed:
            self._to_loop(self._publish_stats)

    def _try_connect(self) -> bool:
        """(Re)connect, migrate once, and prove the database takes writes now."""
        try:
            if self._backend.conn is None:
                self._backend.connect()
            if not self._migrated:
                engine = sa.create_engine(self._sa_url, poolclass=sa.NullPool)
                try:
                    schema.migrate(engine)
                finally:
                    engine.dispose()
                self._migrated = True
            self._backend.probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not available yet"
            self._backend.close()
            self._set_db_state(False, _describe(exc))
            return False
        self._set_db_state(True)
        return True

    def _write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> bool:
        """One transaction. True on commit; False (database marked down) on failure."""
        if self._backend.conn is None:
            try:
                self._backend.connect()
            except Exception as exc:  # noqa: BLE001
                self._backend.close()
                self._set_db_state(False, _describe(exc))
                return False
            if not self._migrated and not self._try_connect():
                return False
        try:
            inserted, alerts_inserted = self._backend.write(ticks, alerts)
        except (ValueError, TypeError) as exc:
            # A malformed tick (e.g. naive timestamp) would block the queue forever: isolate it.
            self._write_one_by_one(ticks, alerts, exc)
            return True
        except Exception as exc:  # noqa: BLE001 - connection lost, locked, disk full, …
            self._backend.close()
            self._set_db_state(False, _describe(exc))
            return False
        self.stored += inserted
        self.duplicates += len(ticks) - inserted
        self.alerts_stored += alerts_inserted
        if not self.database_ok:
            self._set_db_state(True)
        return True

    def _write_one_by_one(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent], exc: Exception) -> None:
        bad = 0
        for t in ticks:
            try:
                inserted, _ = self._backend.write([t], ())
                self.stored += inserted
                self.duplicates += 1 - inserted
            except (ValueError, TypeError) as e:
                bad += 1
                log.critical("tick rejected as unstorable (%s): %r", e, t)
        if alerts:
            try:
                self.alerts_stored += self._backend.write((), alerts)[1]
            except (ValueError, TypeError):
                log.critical("alerts rejected as unstorable: %r", alerts)
        if bad:
            self.failed += bad
            self.last_error = f"{bad} malformed tick(s) rejected: {_describe(exc)}"
            self._to_loop(self._publish_error, self.last_error, False)

    def _spill(self, ticks: list[Tick], alerts: list[AlertEvent]) -> bool:
        try:
            self.journal.append(ticks, alerts)
        except OSError as exc:
            msg = (f"Cannot write the tick journal in {self.journal.dir} ({_describe(exc)}); "
                   f"{len(ticks)} trades are held in memory, retrying")
            if not self._journal_error:
                log.error(msg)
                self._to_loop(self._publish_error, msg, False)
            self._journal_error = True
            self.last_error = msg
            self._next_journal_try = time.monotonic() + 1.0
            return False
        if self._journal_error:
            log.info("tick journal writable again")
            self._journal_error = False
            self._to_loop(self._publish_stats)
        self.journaled += len(ticks)
        return True

    def _take(self, limit: int) -> None:
        """Move up to ``limit`` queued ticks/alerts into the pending batch (FIFO)."""
        q, pending = self._queue, self._pending
        n = min(len(q), limit - len(pending))
        if n > 0:
            pop = q.popleft
            pending.extend([pop() for _ in range(n)])
        aq = self._alert_queue
        while aq:
            self._pending_alerts.append(aq.popleft())

    def _settle(self, n_ticks: int, n_alerts: int) -> None:
        self._settled += n_ticks
        self._alerts_settled += n_alerts
        self._check_waiters()

    def _check_waiters(self) -> None:
        if self._waiters:
            with self._waiters_lock:
                done = [w for w in self._waiters
                        if w[0] <= self._settled and w[1] <= self._alerts_settled]
                if done:
                    self._waiters = [w for w in self._waiters if w not in done]
            for _, _, fut in done:
                self._to_loop(_resolve, fut)

    def _commit_pending(self) -> bool:
        ticks, alerts = self._pending, self._pending_alerts
        if not self._write(ticks, alerts):
            return False
        wall = time.time()
        self._pending, self._pending_alerts = [], []
        self._settle(len(ticks), len(alerts))
        if self.on_committed and ticks:
            self._to_loop(self._dispatch_committed, ticks, wall)
        return True

    def _spill_everything(self) -> bool:
        """Pending batch + the whole queue to the journal."""
        self._take(self.max_batch)
        while self._pending or self._pending_alerts:
            ticks, alerts = self._pending, self._pending_alerts
            if not self._spill(ticks, alerts):
                return False
            self._pending, self._pending_alerts = [], []
            self._settle(len(ticks), len(alerts))
            self._take(self.max_batch)
        return True

    def _replay_journal(self, budget: int | None) -> None:
        """Replay closed segments (all of them, or about ``budget`` ticks) into the database."""
        if self.journal.pending == 0 and not self.journal.has_data():
            return
        self.journal.rotate()
        done = 0
        for path in self.journal.segments():
            try:
                for chunk in Journal.read(path, self.max_batch):
                    self.bad_journal_lines += chunk.bad_lines
                    if (chunk.ticks or chunk.alerts) and not self._write(chunk.ticks, chunk.alerts):
                        return
                    if chunk.ticks and self.on_committed:
                        self._to_loop(self._dispatch_committed, len(chunk.ticks), time.time())
                    done += len(chunk.ticks)
            except OSError as exc:
                log.error("cannot read journal segment %s: %s", path, exc)
                return
            self.journal.remove(path)
            log.info("replayed journal segment %s", path.name)
            if budget is not None and done >= budget:
                return

    def _run(self) -> None:
        try:
            self._loop_body()
        except BaseException:  # pragma: no cover - last resort: say so loudly
            log.critical("tick writer thread crashed", exc_info=True)
            self.last_error = "tick writer thread crashed (see log)"
            self._to_loop(self._publish_error, self.last_error, True)
            raise
        finally:
            self._backend.close()
            self.journal.close()

    def _loop_body(self) -> None:
        stop_deadline: float | None = None
        while True:
            stopping = self._stop_requested
            urgent = stopping or bool(self._waiters)
            if not urgent and not self._pending and len(self._queue) < self.max_batch:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                stopping = self._stop_requested
                urgent = stopping or bool(self._waiters)
            now = time.monotonic()
            if stopping and stop_deadline is None:
                stop_deadline = now + max(self.spill_after, 2.0)

            self._take(self.max_batch)

            # 1. the database
            if self._pending or self._pending_alerts:
                if self.database_ok or now >= self._next_retry:
                    while (self._pending or self._pending_alerts) and self._commit_pending():
                        self._take(self.max_batch)
            elif not self.database_ok and now >= self._next_retry:
                self._try_connect()

            # 2. spill to the journal when waiting any longer is not acceptable
            backlog = self._received - self._settled
            failing_long = self._fail_since is not None and now - self._fail_since >= self.spill_after
            if (self._pending or self._pending_alerts) and not self.database_ok and (
                    failing_long or backlog > self.queue_limit or urgent):
                if not self._journal_error or now >= self._next_journal_try or stopping:
                    self._spill_everything()

            # 3. replay journaled ticks while the database is up (one budget per cycle)
            if self.database_ok and not self._pending and self.journal.pending:
                self._replay_journal(budget=self.max_batch)

            self._check_waiters()
            if stopping and not self._queue and not self._pending and not self._pending_alerts \
                    and not self._alert_queue:
                if self.journal.pending and (self.database_ok or self._try_connect()):
                    self._replay_journal(budget=None)
                return
            if stopping and stop_deadline is not None and time.monotonic() >= stop_deadline:
                if self._spill_everything():
                    continue
                self._declare_lost()
                return
            if not self.database_ok and not urgent:
                # don't spin while the database is down; wake for new work or the next retry
                self._wake.wait(min(self.flush_interval, max(0.0, self._next_retry - time.monotonic())))
                self._wake.clear()
            elif not self.database_ok and urgent and not stopping and self._journal_error:
                time.sleep(0.05)
            elif stopping and not self.database_ok:
                time.sleep(0.02)

    def _declare_lost(self) -> None:
        self._take(len(self._queue) + len(self._pending) + 1)
        n = len(self._pending) + len(self._queue)
        na = len(self._pending_alerts) + len(self._alert_queue)
        self.failed += n
        msg = (f"LOST {n} trades and {na} alerts at shutdown: neither the database "
               f"({self.last_error or 'unavailable'}) nor the journal in {self.journal.dir} could take them")
        log.critical(msg)
        self.last_error = msg
        self._settle(n, na)
        self._pending, self._pending_alerts = [], []
        self._queue.clear()
        self._alert_queue.clear()
        self._to_loop(self._publish_error, msg, True)


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)
