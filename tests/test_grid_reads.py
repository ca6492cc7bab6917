"""The grid rows of many symbols read together (storage/grid_reads.py: a few statements for all
the symbols on PostgreSQL) give exactly the per-symbol reads (storage/day_reads.day_points), and
SQLite and PostgreSQL give the same rows for the same stored day.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from kis_desk.core.ticks import VENUE_NXT, Tick
from kis_desk.engine.handle import TAIL_SECONDS, bucket_width, load_intraday
from kis_desk.engine.storage import Repository
from kis_desk.engine.storage.day_reads import day_points
from kis_desk.engine.storage.grid_reads import many_day_points
from kis_desk.ui.row_state import SPARK_POINTS
from test_day_reads import DAY, OPEN, session, store
from test_storage import pg_schema  # noqa: F401  (fixture)


def _with_last(ticks: list[Tick], price: int, seconds: float = 20.0) -> list[Tick]:
    """``ticks`` plus one trade at ``price`` ``seconds`` after the last: an extreme in the tail."""
    t = ticks[-1]
    at = t.timestamp + timedelta(seconds=seconds)
    return ticks + [t._replace(timestamp=at, price=price, volume=3, cum_volume=t.cum_volume + 3,
                               received_at=at.timestamp() + 0.02)]


def _day() -> dict[str, list[Tick]]:
    return {
        "005930": session("005930", 3000, 11),                        # hours: buckets from the bars
        "000660": _with_last(session("000660", 2500, 12), 999_000),   # the high in the last minute
        "035420": _with_last(session("035420", 2000, 13), 100),       # the low in the last minute
        "051910": session("051910", 40, 14, start=OPEN + timedelta(hours=2)),  # minutes: the trades
        "068270": session("068270", 1, 15),                           # one trade
    }


statements: list[str] = []


def _counting(dbapi_conn, _record) -> None:  # noqa: ANN001
    """Connections that note every statement they execute (psycopg: its cursors)."""
    import psycopg

    if not isinstance(dbapi_conn, psycopg.Connection):
        dbapi_conn.set_trace_callback(statements.append)             # sqlite3
        return

    class Counting(psycopg.Cursor):
        def execute(self, query, params=None, **kw):  # noqa: ANN001, ANN003, ANN201
            statements.append(str(query))
            return super().execute(query, params, **kw)

    dbapi_conn.cursor_factory = Counting


def _width(a: int, b: int) -> int:
    return bucket_width(a, b, SPARK_POINTS)


@pytest.mark.postgres
async def test_many_symbols_at_once_equal_one_at_a_time_on_both_backends(pg_schema, tmp_path):  # noqa: F811
    day = _day()
    nxt = [t._replace(venue=VENUE_NXT, price=t.price + 100) for t in session("005930", 300, 16)]
    other_day = session("000660", 200, 17, start=OPEN + timedelta(days=1))
    stored = [t for ts in day.values() for t in ts] + nxt + other_day
    codes = [*day, "999999"]
    results = {}
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'grid.sqlite3'}"), ("postgresql", pg_schema[0])):
        await store(url, tmp_path / name, stored)
        repo = Repository(url)
        try:
            one = {c: r for c in codes if (r := day_points(repo, c, DAY, TAIL_SECONDS, _width)) is not None}
            sa.event.listen(repo.engine, "connect", _counting)   # the batch runs on the driver's cursors
            repo.engine.dispose()
            with repo.engine.connect():
                statements.clear()                                 # not the connection's pragmas
            many = many_day_points(repo, codes, DAY, TAIL_SECONDS, _width)
            counted = list(statements)
            loaded = load_intraday(repo, codes, DAY, SPARK_POINTS)
            assert many_day_points(repo, ["999999"], DAY, TAIL_SECONDS, _width) == {}
        finally:
            repo.close()
        assert list(many) == list(day), name                     # the codes with trades, in order
        assert many == one, name
        assert {c: tuple(v) for c, v in loaded.items()} == many, name
        assert len(counted) == 5, counted       # heads, bars, tails, the tail's high and low, a short day
        results[name] = many
    assert results["sqlite"] == results["postgresql"]
    rows = results["postgresql"]
    assert rows["051910"][2] < 60 < rows["005930"][2]            # both paths: trades and bars
    assert max(p for _t, p, _c in rows["000660"][1]) == 999_000
    assert min(p for _t, p, _c in rows["035420"][1]) == 100
    only = day["068270"][0]
    assert rows["068270"][1] == [(int(only.timestamp.timestamp()), only.price, only.cum_volume)]


async def test_many_symbols_none_stored(tmp_path):
    repo = Repository(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        assert many_day_points(repo, ["005930"], DAY, TAIL_SECONDS, _width) == {}
        assert many_day_points(repo, [], DAY, TAIL_SECONDS, _width) == {}
    finally:
        repo.close()
