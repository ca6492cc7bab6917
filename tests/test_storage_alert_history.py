"""Alert history queries and bulk acknowledge (Repository), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kis_desk.core.events import AlertEvent
from kis_desk.engine.storage import Repository
from kis_desk.protocol.records import KST
from test_storage import db_url, pg_schema  # noqa: F401  (fixtures: sqlite + postgresql)

DAY1, DAY2, DAY3 = date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)


def make_alert(code: str, day: date, n: int, direction: str = "up", second: int = 0) -> AlertEvent:
    t = datetime(day.year, day.month, day.day, 10, 0, second, tzinfo=KST) + timedelta(minutes=n)
    pct = 5.2 if direction == "up" else -5.2
    return AlertEvent(alert_id=f"{code}:{day:%Y%m%d}:{direction}:1:{n}", stock_code=code, stock_name=f"N{code}",
                      direction=direction, change_pct=pct, base_price=10_000, base_time=t - timedelta(seconds=30),
                      trigger_price=10_520 if direction == "up" else 9_480, trigger_time=t, trigger_cum_volume=n,
                      detected_at=datetime.now(timezone.utc), window_seconds=60.0, threshold_pct=5.0)


@pytest.fixture
def repo(db_url):  # noqa: F811
    r = Repository(db_url)
    for a in (make_alert("005930", DAY1, 1), make_alert("000660", DAY1, 2, "down"),
              make_alert("005930", DAY2, 3, "down"), make_alert("373220", DAY2, 4),
              make_alert("000660", DAY3, 5)):
        assert r.save_alert(a)
    yield r
    r.close()


def ids(rows) -> list[str]:
    return [s.alert.alert_id for s in rows]


def test_alerts_between_days_symbols_and_direction(repo):
    all_rows = repo.alerts_between(DAY1, DAY3)
    assert [s.alert.trigger_time for s in all_rows] == sorted(s.alert.trigger_time for s in all_rows)
    assert len(all_rows) == 5
    assert ids(repo.alerts_between(DAY2, DAY2)) == ["005930:20260304:down:1:3", "373220:20260304:up:1:4"]
    assert ids(repo.alerts_between(DAY1, DAY3, codes=["000660"])) == ["000660:20260303:down:1:2",
                                                                       "000660:20260305:up:1:5"]
    assert ids(repo.alerts_between(DAY1, DAY3, codes=["000660"], direction="up")) == ["000660:20260305:up:1:5"]
    assert len(repo.alerts_between(DAY1, DAY3, direction="down")) == 2
    assert repo.alerts_between(DAY1, DAY3, codes=[]) == []
    assert repo.alerts_between(DAY3 + timedelta(days=1), DAY3 + timedelta(days=9)) == []
    first = all_rows[0]
    assert first.alert == replace(make_alert("005930", DAY1, 1), detected_at=first.alert.detected_at)
    assert first.acknowledged is False and first.acknowledged_at is None
    with pytest.raises(ValueError):
        repo.alerts_between(DAY1, DAY3, direction="sideways")


def test_alerts_between_matches_alerts_on_for_one_day(repo):
    assert repo.alerts_between(DAY2, DAY2) == repo.alerts_on(DAY2)


def test_acknowledge_many_counts_changes_and_skips_unknown_or_done(repo):
    assert repo.acknowledge("005930:20260303:up:1:1")
    n = repo.acknowledge_many(["005930:20260303:up:1:1", "000660:20260303:down:1:2", "nope",
                               "373220:20260304:up:1:4", "373220:20260304:up:1:4"])
    assert n == 2
    acked = {s.alert.alert_id: s for s in repo.alerts_between(DAY1, DAY3)}
    assert [a for a, s in acked.items() if s.acknowledged] == [
        "005930:20260303:up:1:1", "000660:20260303:down:1:2", "373220:20260304:up:1:4"]
    assert all(s.acknowledged_at is not None for s in acked.values() if s.acknowledged)
    assert repo.acknowledge_many([]) == 0


def _bulk(repo: Repository, count: int) -> list[str]:
    alerts = [make_alert(f"{100000 + i:06d}", DAY3, i) for i in range(count)]
    from kis_desk.engine.storage.schema import ALERT_COLUMNS, alerts as table, kst_date

    rows = [{**{c: getattr(a, c) for c in ALERT_COLUMNS if c != "business_date"},
             "business_date": kst_date(a.trigger_time)} for a in alerts]
    with repo.engine.begin() as conn:
        conn.execute(sa.insert(table), rows)
    return [a.alert_id for a in alerts]


def test_acknowledge_many_is_one_transaction(repo):
    """1,200 ids = three UPDATE statements, one BEGIN … COMMIT."""
    wanted = _bulk(repo, 1_200)
    events: list[str] = []
    updates: list[str] = []
    listeners = {
        "begin": lambda conn: events.append("begin"),
        "commit": lambda conn: events.append("commit"),
        "rollback": lambda conn: events.append("rollback"),
        "before_cursor_execute": lambda conn, cur, stmt, params, ctx, many:
            updates.append(stmt) if stmt.lstrip().upper().startswith("UPDATE") else None,
    }
    for name, fn in listeners.items():
        sa.event.listen(repo.engine, name, fn)
    try:
        assert repo.acknowledge_many(wanted) == 1_200
    finally:
        for name, fn in listeners.items():
            sa.event.remove(repo.engine, name, fn)
    assert events == ["begin", "commit"]
    assert len(updates) == 3 == -(-1_200 // Repository.ACK_CHUNK)


def test_acknowledge_many_is_all_or_nothing(repo):
    """The database fails on the second UPDATE: the first one's changes are rolled back too."""
    wanted = _bulk(repo, 700)
    seen = []

    def fail_second_update(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)
            if len(seen) == 2:
                raise sa.exc.OperationalError(statement, params, RuntimeError("disk I/O error"))

    sa.event.listen(repo.engine, "before_cursor_execute", fail_second_update)
    try:
        with pytest.raises(sa.exc.OperationalError):
            repo.acknowledge_many(wanted)
    finally:
        sa.event.remove(repo.engine, "before_cursor_execute", fail_second_update)
    assert len(seen) == 2
    assert not any(s.acknowledged for s in repo.alerts_between(DAY1, DAY3))
    assert repo.acknowledge_many(wanted) == 700      # and it works once the database does
