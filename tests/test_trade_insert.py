"""The SQLite writer's GIL-free INSERT (kis_desk/engine/storage/_trade_insert.pyx via raw_sqlite)
stores what the ``sqlite3`` path stores: same rows, same bars, same counts, the same exception
types for a bad tick or a locked database, alerts in the same transaction."""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import raw_sqlite, schema
from kis_desk.engine.storage.sqlite_backend import SQLiteBackend
from kis_desk.engine.storage.writer_state import Work
from kis_desk.protocol.records import KST

from test_storage import make_alert, make_ticks

needs_compiled = pytest.mark.skipif(raw_sqlite.IMPLEMENTATION != "compiled",
                                    reason="GIL-free inserter not built or not reachable here")


def backend(path, raw: bool = True, busy_timeout: float = 5.0) -> SQLiteBackend:
    url = sa.make_url(f"sqlite:///{path}")
    if not os.path.exists(path):
        engine = sa.create_engine(url)
        schema.migrate(engine)
        engine.dispose()
    b = SQLiteBackend(url, busy_timeout, 5.0)
    b.connect()
    if not raw:
        b._inserter = False                  # the sqlite3-module path only
    return b


def contents(b: SQLiteBackend) -> tuple[list, list, list]:
    c = b.conn
    return (c.execute(f"SELECT * FROM {schema.TICKS} ORDER BY stock_code, venue, business_date, "
                      "cum_volume").fetchall(),
            c.execute("SELECT * FROM bars_1m ORDER BY 1, 2, 3").fetchall(),
            c.execute("SELECT * FROM alerts ORDER BY alert_id").fetchall())


def test_compiled_inserter_is_used_here():
    if os.environ.get("KIS_DESK_EXPECT_PURE") == "1" or os.environ.get("KIS_DESK_PURE_PYTHON") == "1":
        pytest.skip("pure-Python run")
    try:
        from kis_desk.engine.storage import _trade_insert  # noqa: F401
    except ImportError:
        pytest.skip("the inserter was not built here (no C compiler at install)")
    if raw_sqlite.find_functions() is None and sys.platform != "linux":
        # checked on Linux (CI); a Python whose _sqlite3 embeds SQLite without exporting it
        # (possible on macOS/Windows builds) stores through the sqlite3 module instead
        pytest.skip("this Python's SQLite functions are not reachable: trades bound through sqlite3")
    assert raw_sqlite.find_functions() is not None, "SQLite's functions were not found"
    assert raw_sqlite.IMPLEMENTATION == "compiled"


@needs_compiled
def test_same_rows_bars_counts_and_alerts_as_the_sqlite3_path(tmp_path):
    raw, ref = backend(tmp_path / "raw.sqlite3"), backend(tmp_path / "ref.sqlite3", raw=False)
    ticks = make_ticks(5000) + make_ticks(300, code="000660") + [
        t._replace(venue="nxt") for t in make_ticks(77, code="005930")]
    alerts = [make_alert(1), make_alert(2, code="000660")]
    for b in (raw, ref):
        assert b.write(ticks[:3001], alerts) == (3001, 2)
        assert b.write(ticks, alerts) == (len(ticks) - 3001, 0)     # the rest; all else duplicates
        assert b.write(ticks[17:18], []) == (0, 0)
    assert raw._inserter, "the raw path was not taken"
    assert contents(raw) == contents(ref)


T0 = datetime(2026, 12, 2, 9, 0, tzinfo=KST)
rates = st.one_of(st.none(), st.floats(-30, 30).map(lambda x: round(x, 2)), st.integers(-5, 5),
                  st.just(0.125), st.just(-0.005),
                  st.sampled_from([math.inf, math.nan, -math.inf]))
ticks_st = st.builds(
    Tick,
    stock_code=st.sampled_from(["005930", "000660", "Q500010", "삼성"]),
    timestamp=st.one_of(st.integers(0, 40_000).map(lambda s: T0 + timedelta(seconds=s)),
                        st.integers(0, 10).map(lambda s: (T0 + timedelta(seconds=s)).replace(tzinfo=None)),
                        st.integers(0, 10**6).map(lambda us: T0 + timedelta(microseconds=us))),
    price=st.one_of(st.integers(1, 10**7), st.just(2**63)), volume=st.integers(1, 10**6),
    cum_volume=st.integers(1, 10**12),
    change=st.one_of(st.none(), st.integers(-10**5, 10**5)), change_rate=rates, strength=rates,
    received_at=st.one_of(st.floats(1.7e9, 1.8e9), st.just(1.764e9), st.just(1.7640000005e9)),
    source=st.sampled_from(["ws", "backfill", "poll", "ws", "nope"]),
    venue=st.sampled_from(["krx", "nxt", "total", "krx", "mars"]),
)


def outcome(b: SQLiteBackend, ticks: list[Tick]):
    try:
        done = b.write(ticks, [])
    except Exception as exc:  # noqa: BLE001 - the type is what must agree
        return "raised", type(exc).__name__
    return "ok", done, contents(b)[:2]


@needs_compiled
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ticks_st, max_size=40))
def test_any_batch_has_the_same_outcome_as_the_sqlite3_path(tmp_path_factory, ticks):
    d = tmp_path_factory.mktemp("batch")
    raw, ref = backend(d / "raw.sqlite3"), backend(d / "ref.sqlite3", raw=False)
    try:
        assert outcome(raw, ticks) == outcome(ref, ticks)
    finally:
        raw.close()
        ref.close()


@needs_compiled
def test_a_locked_database_raises_what_sqlite3_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "locked.sqlite3"
    raw = backend(path, busy_timeout=0.2)
    raw.write(make_ticks(10), [])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            raw.write(make_ticks(20, start_cum=1000), [make_alert(3)])
        assert time.monotonic() - t0 >= 0.15            # it waited the busy timeout, then gave up
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(contents(raw)[0]) == 10 and contents(raw)[2] == []
    assert raw.write(make_ticks(20, start_cum=1000), [make_alert(3)]) == (20, 1)


def test_work_queue_takes_batches_in_order_and_counts_them():
    w = Work()
    a, b, c = tuple(range(0, 5)), tuple(range(5, 8)), tuple(range(8, 20))
    for batch in (a, b, c):
        w.put(batch)
    assert w.queued == 20
    w.take(4)
    assert w.pending == [0, 1, 2, 3] and w.queued == 16
    w.take(10)                                   # room for 6 more: rest of a, all of b, 2 of c
    assert w.pending == list(range(10)) and w.queued == 10
    w.clear_batch()
    w.take(100)
    assert w.pending == list(range(10, 20)) and w.queued == 0 and not w.queue
    w.put((20, 21))
    w.take(1)
    w.drop_queued()
    assert w.queued == 0 and not w.queue
