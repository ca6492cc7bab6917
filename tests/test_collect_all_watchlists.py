"""Watchlists other than the shown one keep collecting (issue 12 item 7): the engine streams the
union of all stored lists, the shown list first in priority for live registrations."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from kis_desk.config import UserPaths
from kis_desk.engine.collector import CollectorConfig
from kis_desk.engine.storage import Repository
from kis_desk.feed.sharding import plan_shards
from kis_desk.market.symbols import default_watchlist
from kis_desk.wiring import build_collector


def test_the_shown_list_gets_live_registrations_before_background_lists():
    shown = [f"S{i:05d}" for i in range(5)]
    background = [f"B{i:05d}" for i in range(6)]
    # background codes held every registration before: the shown list still goes live first
    plan = plan_shards(shown + background, 1, 6, current=[background], first=len(shown))
    assert set(plan.sessions[0]) >= set(shown)
    assert set(plan.polled) == set(background) - set(plan.sessions[0]) and len(plan.polled) == 5
    # without a priority the old rule stands (sticky, then watchlist order)
    assert plan_shards(shown + background, 1, 6, current=[background]).sessions[0] == tuple(background)


def _counts(db: str) -> dict[str, int]:
    engine = sa.create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT stock_code, count(*) FROM stock_prices_realtime "
                                    "GROUP BY stock_code")).all()
    engine.dispose()
    return {c: int(n) for c, n in rows}


async def _wait(predicate, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.05)


async def test_other_stored_watchlists_keep_collecting_after_a_switch(tmp_path):
    codes = default_watchlist()
    a, b = codes[:3], codes[3:6]
    db = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    repo = Repository(db)
    repo.create_watchlist("A", a)
    repo.create_watchlist("B", b)
    repo.close()
    cfg = CollectorConfig(env="sim", codes=a, sim_rate=400, db_url=db, sim_spikes=False,
                          collect_all_watchlists=True,
                          paths=UserPaths(tmp_path / "data", tmp_path / "logs", tmp_path / "config"))
    collector = build_collector(cfg)
    await collector.start()
    try:
        assert collector.codes == a and collector.feed.codes == a + b      # shown first
        await _wait(lambda: collector.feed.all_live(), "all live")
        await _wait(lambda: set(_counts(db)) >= set(a + b), "trades of both lists stored")
        await collector.set_watchlist(b)                                     # switch to B
        assert collector.codes == b and set(collector.feed.codes) == set(a + b)
        before = _counts(db)
        await _wait(lambda: all(_counts(db).get(c, 0) > before[c] for c in a), "list A still recording")
    finally:
        await collector.stop()
