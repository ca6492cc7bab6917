"""SQLite writer backend: raw ``sqlite3`` multi-row INSERTs inside one ``BEGIN IMMEDIATE``.

Inserted rows = the statements' ``rowcount`` (``sqlite3_changes``, which leaves out the rows the
``bars_1m`` trigger of :mod:`.layout` writes — it runs for inserted trades only);
``ON CONFLICT DO NOTHING`` on the trade identity makes a trade seen twice a duplicate.

Retention: ``purge_step`` deletes at most one bounded chunk of one symbol's oldest day per call
(a short write lock between the writer's batches, never a long one), found by key seeks (a
pass over a table that has nothing to remove costs two or three seeks per series), and
then returns up to ``VACUUM_PAGES`` free pages to the file system (``auto_vacuum=INCREMENTAL``,
set for new databases).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from itertools import chain
from typing import Any

import sqlalchemy as sa

from ...core.compiled import pure_python_requested
from ...core.events import AlertEvent
from ...core.ticks import Tick
from . import layout, raw_sqlite, schema
from .backend import OneConnection, alert_row

_COLS = ", ".join(schema.TICK_COLUMNS)
_ALERT_COLS = ", ".join(schema.ALERT_COLUMNS)
_CONFLICT = "ON CONFLICT (stock_code, venue, business_date, cum_volume) DO NOTHING"
SQLITE_INSERT = (f"INSERT INTO {schema.TICKS} ({_COLS}) VALUES ({', '.join('?' * len(schema.TICK_COLUMNS))}) "
                 + _CONFLICT)
_SQLITE_ALERT = (f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({', '.join('?' * len(schema.ALERT_COLUMNS))}) "
                 "ON CONFLICT (alert_id) DO NOTHING")
_SETTING = "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
_T = schema.TICKS
# The next (code, venue) series after one: two seeks. (A row-value ``(stock_code, venue) > (?, ?)``
# made SQLite step through every row of the current series — with 60 days of a busy symbol,
# 13M rows and seconds per step, so each retention pass read the whole table.)
_NEXT_VENUE = (f"SELECT stock_code, venue FROM {_T} WHERE stock_code = ? AND venue > ? "
               "ORDER BY venue LIMIT 1")
_NEXT_CODE = f"SELECT stock_code, venue FROM {_T} WHERE stock_code > ? ORDER BY stock_code, venue LIMIT 1"
_OLDEST_DAY = f"SELECT min(business_date) FROM {_T} WHERE stock_code = ? AND venue = ?"
_NTH_CUM = (f"SELECT cum_volume FROM {_T} WHERE stock_code = ? AND venue = ? AND business_date = ? "
            "ORDER BY cum_volume LIMIT 1 OFFSET ?")
_DELETE_UPTO = (f"DELETE FROM {_T} WHERE stock_code = ? AND venue = ? AND business_date = ? "
                "AND cum_volume <= ?")
_DELETE_DAY = f"DELETE FROM {_T} WHERE stock_code = ? AND venue = ? AND business_date = ?"
#: Free pages returned to the file system after each retention chunk (bounded: 4 MiB at 4 KiB).
VACUUM_PAGES = 1024

#: Largest multi-row INSERT, in rows (further bounded by the connection's variable limit:
#: 32,766 since SQLite 3.32, 2,520 rows of 13 values). Each statement is one ``sqlite3_step``
#: without the GIL, and each re-take of the GIL after it can wait for the event loop thread:
#: fewer, larger statements wait less.
SQLITE_MAX_ROWS_PER_STATEMENT = 2048
#: Below this many rows a batch goes through the one-row statement.
SQLITE_MIN_ROWS_PER_STATEMENT = 16


def sqlite_rows(ticks: Sequence[Tick]) -> list[tuple]:
    """Tick → row in ``layout.TICK_COLUMNS`` order (see :func:`.layout.trade_rows`)."""
    return layout.trade_rows(ticks)


def _load_flat_values():
    """The compiled flat ``trade_rows`` (_trade_values.pyx), or None (not built, or
    ``KIS_DESK_PURE_PYTHON=1``)."""
    if pure_python_requested():
        return None
    try:
        from ._trade_values import flat_trade_values  # type: ignore[import-not-found]
    except ImportError:
        return None
    venues, sources, parts, kst = layout.VENUE_CODES, layout.SOURCE_CODES, layout.epoch_parts, layout.KST_SECONDS
    return lambda ticks: flat_trade_values(ticks, venues, sources, parts, kst)


#: ticks → the values of their rows one after the other (compiled), or None: build rows in Python.
FLAT_VALUES = _load_flat_values()
_WIDTH = len(schema.TICK_COLUMNS)


@contextmanager
def _write_transaction(c: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; on any error (a failed COMMIT too) rolled back and raised."""
    c.execute("BEGIN IMMEDIATE")
    try:
        yield
        c.execute("COMMIT")
    except BaseException:
        try:
            c.execute("ROLLBACK")
        except Exception:  # noqa: BLE001
            pass
        raise


def _multi_insert(rows: int) -> str:
    """The tick INSERT with ``rows`` VALUES tuples (one statement, one sqlite3_step)."""
    one = "(" + ", ".join("?" * len(schema.TICK_COLUMNS)) + ")"
    return f"INSERT INTO {schema.TICKS} ({_COLS}) VALUES {', '.join([one] * rows)} " + _CONFLICT


class SQLiteBackend(OneConnection):
    name = "sqlite"

    def __init__(self, url: sa.URL, busy_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.conn: sqlite3.Connection | None = None
        self._sizes: list[int] | None = None
        self._sql: dict[int, str] = {}
        self._purge_at: tuple[str, int] = ("", -1)       # the (code, venue) series being purged
        self._incremental_vacuum = False
        # the GIL-free trade INSERT (raw_sqlite) on a second connection of this thread, opened
        # at the first write (its statements need the migrated table); False: not available
        self._inserter: Any = None

    def connect(self) -> None:
        self._sizes = None
        path = self.url.database
        if not path or path == ":memory:":
            raise ValueError("TickWriter needs a file-backed SQLite database")
        conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")        # takes effect on a new file only
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except Exception:
            conn.close()
            raise
        self.conn = conn

    def close(self) -> None:
        if self._inserter:
            self._inserter.close()
        self._inserter = None
        super().close()

    def probe(self) -> None:
        """Can we take the write lock right now? (a connection alone proves nothing)"""
        assert self.conn is not None
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("ROLLBACK")

    def _statement_sizes(self) -> list[int]:
        """Row counts of the multi-row INSERTs used, largest first: powers of two, so a batch of
        any size needs few statements and the connection's statement cache keeps them all."""
        if self._sizes is None:
            assert self.conn is not None
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
            self._sql = {k: _multi_insert(k) for k in self._sizes}
        return self._sizes

    def _insert_values(self, values: list) -> int:
        """Rows given as one flat list of their values (``_WIDTH`` a row: the compiled
        ``flat_trade_values``, or ``trade_rows`` flattened) in as few statements as possible;
        returns the rows inserted.

        Why: ``executemany`` of a one-row INSERT steps SQLite once per row, and every step
        releases and re-takes the GIL; while the event loop thread is busy, each re-take can
        wait a whole switch interval (5 ms). A multi-row INSERT does the same work (same
        ``ON CONFLICT DO NOTHING`` per row) in one step per hundreds of rows, with the B-tree
        work running outside the GIL."""
        c = self.conn
        assert c is not None
        w = _WIDTH
        n = len(values) // w
        i = inserted = 0
        for k in self._statement_sizes():
            if n - i < k:
                continue
            full = (n - i) // k * k
            inserted += c.executemany(self._sql[k], [values[j * w:(j + k) * w]
                                                     for j in range(i, i + full, k)]).rowcount
            i += full
        if i < n:
            inserted += c.executemany(SQLITE_INSERT, [values[j * w:(j + 1) * w]
                                                      for j in range(i, n)]).rowcount
        return inserted

    def _raw_inserter(self) -> Any:
        if self._inserter is None:
            self._statement_sizes()                 # the same statements as _insert_values
            self._inserter = raw_sqlite.open_inserter(
                self.url.database, int(self.busy_timeout * 1000), SQLITE_INSERT, self._sql,
                layout.VENUE_CODES, layout.SOURCE_CODES, layout.epoch_parts,
                layout.KST_SECONDS) or False
        return self._inserter

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> tuple[int, int]:
        arows = [alert_row(a, True) for a in alerts]
        inserter = self._raw_inserter()
        if inserter:
            done = inserter.write(ticks, _SQLITE_ALERT, arows)
            if done is not None:
                return done
            # a tick out of the ordinary: bound through sqlite3, which raises what trade_rows does
        flat = FLAT_VALUES
        if not ticks:
            values: list = []
        elif flat is not None:
            values = flat(ticks)
        else:
            values = list(chain.from_iterable(sqlite_rows(ticks)))
        c = self.conn
        assert c is not None
        inserted = alerts_inserted = 0
        with _write_transaction(c):
            if values:
                inserted = self._insert_values(values)
            if arows:
                alerts_inserted = c.executemany(_SQLITE_ALERT, arows).rowcount
        return inserted, alerts_inserted

    # -- retention and size ------------------------------------------------------------------------
    def purge_step(self, cutoff: date, max_rows: int) -> tuple[int, bool]:
        """Delete up to ``max_rows`` trades older than ``cutoff``; (deleted, nothing left)."""
        c = self.conn
        assert c is not None
        cutoff_day = layout.day_number(cutoff)
        code, venue = self._purge_at
        while True:
            if code:
                oldest = c.execute(_OLDEST_DAY, (code, venue)).fetchone()[0]
                if oldest is not None and oldest < cutoff_day:
                    break
            row = c.execute(_NEXT_VENUE, (code, venue)).fetchone() or c.execute(_NEXT_CODE, (code,)).fetchone()
            if row is None:
                self._purge_at = ("", -1)
                return 0, True
            code, venue = row
        self._purge_at = (code, venue)
        with _write_transaction(c):
            upto = c.execute(_NTH_CUM, (code, venue, oldest, max_rows - 1)).fetchone()
            if upto is None:
                deleted = c.execute(_DELETE_DAY, (code, venue, oldest)).rowcount
            else:
                deleted = c.execute(_DELETE_UPTO, (code, venue, oldest, upto[0])).rowcount
        if self._incremental_vacuum or c.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            self._incremental_vacuum = True
            c.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES})").fetchall()
        return deleted, False

    def database_bytes(self) -> int:
        assert self.conn is not None
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    def record_setting(self, key: str, value: str) -> None:
        assert self.conn is not None
        self.conn.execute(_SETTING, (key, value))
