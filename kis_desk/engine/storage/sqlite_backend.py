"""SQLite writer backend: raw ``sqlite3`` multi-row INSERTs inside one ``BEGIN IMMEDIATE``.

Inserted rows = the connection's ``total_changes`` delta; ``ON CONFLICT DO NOTHING`` on the
trade identity makes a trade seen twice a duplicate, not an error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from itertools import chain

import sqlalchemy as sa

from ...core.events import AlertEvent
from ...core.ticks import Tick
from . import schema
from .backend import alert_row, close_quietly

_COLS = ", ".join(f'"{c}"' for c in schema.TICK_COLUMNS)
_ALERT_COLS = ", ".join(schema.ALERT_COLUMNS)
_CONFLICT = "ON CONFLICT (stock_code, business_date, cum_volume) DO NOTHING"
SQLITE_INSERT = (f"INSERT INTO {schema.TICKS} ({_COLS}) VALUES ({', '.join('?' * len(schema.TICK_COLUMNS))}) "
                 + _CONFLICT)
_SQLITE_ALERT = (f"INSERT INTO alerts ({_ALERT_COLS}) VALUES ({', '.join('?' * len(schema.ALERT_COLUMNS))}) "
                 "ON CONFLICT (alert_id) DO NOTHING")
_KST_OFFSET = schema._KST_OFFSET

#: Largest multi-row INSERT, in rows (further bounded by the connection's variable limit).
SQLITE_MAX_ROWS_PER_STATEMENT = 512
#: Below this many rows a batch goes through the one-row statement.
SQLITE_MIN_ROWS_PER_STATEMENT = 16


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


def _multi_insert(rows: int) -> str:
    """The tick INSERT with ``rows`` VALUES tuples (one statement, one sqlite3_step)."""
    one = "(" + ", ".join("?" * len(schema.TICK_COLUMNS)) + ")"
    return f"INSERT INTO {schema.TICKS} ({_COLS}) VALUES {', '.join([one] * rows)} " + _CONFLICT


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, url: sa.URL, busy_timeout: float, connect_timeout: float) -> None:
        self.url = url
        self.busy_timeout = busy_timeout
        self.conn: sqlite3.Connection | None = None
        self._sizes: list[int] | None = None
        self._sql: dict[int, str] = {}

    @property
    def connected(self) -> bool:
        return self.conn is not None

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

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None

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

    def _insert_ticks(self, rows: list[tuple]) -> None:
        """All rows in as few statements as possible.

        Why: ``executemany`` of a one-row INSERT steps SQLite once per row, and every step
        releases and re-takes the GIL; while the event loop thread is busy, each re-take can
        wait a whole switch interval (5 ms). A multi-row INSERT does the same work (same
        ``ON CONFLICT DO NOTHING`` per row) in one step per hundreds of rows, with the B-tree
        work running outside the GIL."""
        c = self.conn
        assert c is not None
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
            c.executemany(SQLITE_INSERT, rows[i:] if i else rows)

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> tuple[int, int]:
        rows = sqlite_rows(ticks)
        arows = [alert_row(a, True) for a in alerts]
        c = self.conn
        assert c is not None
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
