"""What the writer thread needs from a database: the backend protocol and shared helpers.

A backend owns one connection, used by the writer thread only. ``write`` stores a batch in one
transaction and says how many trade and alert rows were really inserted (the rest were already
there); it raises ``ValueError``/``TypeError`` for a malformed value (the writer then isolates
the bad tick) and anything else for "the database is not available".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from ...core.events import AlertEvent
from ...core.ticks import Tick
from . import schema


class WriterBackend(Protocol):
    name: str

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None:
        """Open the connection (raises when the database is unreachable)."""

    def probe(self) -> None:
        """Raise unless the database takes writes right now."""

    def write(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent]) -> tuple[int, int]:
        """One transaction; returns (trades inserted, alerts inserted)."""

    def close(self) -> None:
        """Close the connection, ignoring errors of a broken one."""

    def purge_step(self, cutoff: date, max_rows: int) -> tuple[int, bool]:
        """Remove one bounded piece of the raw trades older than ``cutoff`` (bars stay);
        returns (trades removed, True when nothing older is left)."""

    def database_bytes(self) -> int:
        """What the database takes on disk (SQLite: the file; PostgreSQL: this schema)."""

    def record_setting(self, key: str, value: str) -> None:
        """Upsert a (non-secret) row of the settings table, committed."""


def alert_row(a: AlertEvent, sqlite: bool) -> tuple:
    """AlertEvent → parameter tuple in ``schema.ALERT_COLUMNS`` order."""
    conv = schema.sqlite_dt if sqlite else (lambda d: d)
    day = schema.kst_date(a.trigger_time)
    return (a.alert_id, day.isoformat() if sqlite else day, a.stock_code, a.stock_name, a.direction,
            float(a.change_pct), a.base_price, conv(a.base_time), a.trigger_price,
            conv(a.trigger_time), a.trigger_cum_volume, conv(a.detected_at),
            float(a.window_seconds), float(a.threshold_pct), a.step, a.late, a.delay_s, a.source,
            a.kind, a.vi)


def close_quietly(conn: object) -> None:
    if conn is not None:
        try:
            conn.close()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


class OneConnection:
    """The one connection a backend keeps in ``conn`` (None while closed)."""

    conn: Any

    @property
    def connected(self) -> bool:
        return self.conn is not None

    def close(self) -> None:
        """Close the connection, ignoring errors of a broken one."""
        close_quietly(self.conn)
        self.conn = None
