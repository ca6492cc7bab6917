"""Runs for days: the collector on the simulator across midnight (an injected clock).

The clock starts at 23:59:58 KST and runs at wall speed; the simulator rolls its business day
at the same moment (yesterday's last price becomes the previous close, cumulative volume
restarts). After the rollover no trade of the old day is counted in the new day's values,
the old day's alerts suppress nothing, and every trade of both days is stored once.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

from kis_desk.config import UserPaths
from kis_desk.core.events import AlertEvent, DayRolloverEvent, event_from_json
from kis_desk.engine.collector import CollectorConfig
from kis_desk.market.symbols import default_watchlist
from kis_desk.protocol.records import KST
from kis_desk.wiring import build_collector
from test_collector import _wait


class FakeClock:
    """KST wall time starting at ``start``, advancing with the monotonic clock."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t0 = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)




def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=KST)
    return start, start + timedelta(days=1)


def test_day_rollover_event_round_trips():
    e = DayRolloverEvent(date(2026, 12, 1), date(2026, 12, 2))
    assert event_from_json(e.to_json()) == e


async def test_collector_runs_across_midnight_into_the_next_day(tmp_path: Path):
    day1 = date(2026, 12, 1)
    day2 = day1 + timedelta(days=1)
    clock = FakeClock(datetime(2026, 12, 1, 23, 59, 52, tzinfo=KST))
    codes = default_watchlist()[:4]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=200, db_url=db, sim_spikes=False,
                          paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c"))
    collector = build_collector(cfg, clock=clock)
    rollovers: list[DayRolloverEvent] = []
    alerts: list[AlertEvent] = []
    collector.bus.subscribe(DayRolloverEvent, rollovers.append)
    collector.bus.subscribe(AlertEvent, alerts.append)
    await collector.start()
    try:
        assert collector.business_date == day1
        await _wait(lambda: collector.feed.all_live(), "all live")
        sim = collector.exchange.simulator
        sim.jump(codes[0], 8.0, 0.5)                 # the old day's alert
        await _wait(lambda: any(a.trigger_time.date() == day1 for a in alerts) or clock().date() == day2,
                    "old-day alert")
        await _wait(lambda: rollovers, "rollover", limit=20)
        assert collector.business_date == day2
        await _wait(lambda: collector.feed.all_live(), "live again on the new day")
        await _wait(lambda: collector.feed.backfills_pending() == 0, "new-day back-fill done")
        sim.jump(codes[0], 8.0, 0.5)                 # the same symbol, same direction, new day
        await _wait(lambda: any(a.trigger_time.date() == day2 for a in alerts), "new-day alert")
        await _wait(lambda: clock() > datetime(2026, 12, 2, 0, 0, 5, tzinfo=KST), "00:00:05")
    finally:
        await collector.stop()
    assert rollovers == [DayRolloverEvent(day1, day2)]
    old_ids = {a.alert_id for a in alerts if a.trigger_time.date() == day1}
    new = [a for a in alerts if a.trigger_time.date() == day2]
    assert old_ids and new and new[0].stock_code == codes[0] and new[0].step == 1
    assert f":{day2:%Y%m%d}:" in new[0].alert_id
    # the detector holds the new day only: no trade of the old day is in its windows
    for code in codes:
        seen = collector.detector.last_trade(code)
        assert seen is not None and seen[0] == day2
        assert all(e[0].date() == day2 for e in collector.detector._states[code].hist)
    # every trade of both days stored exactly once, without gaps; the new day from its first trade
    repo = collector.repository
    from kis_desk.engine.storage import Repository

    repo = Repository(db)
    try:
        stored_total = 0
        for code in codes:
            for day in (day1, day2):
                ticks = repo.ticks_between(code, *_day_bounds(day))
                cums = [t.cum_volume for t in ticks]
                assert len(cums) == len(set(cums)), f"{code} {day}: a trade stored twice"
                for prev, t in zip(ticks, ticks[1:]):
                    assert t.cum_volume == prev.cum_volume + t.volume, f"{code} {day}: gap at {prev.cum_volume}"
                stored_total += len(ticks)
            history = [t.cum_volume for t in sim.history(code)]     # the new day's market
            stored2 = [t.cum_volume for t in repo.ticks_between(code, *_day_bounds(day2))]
            assert stored2 and stored2 == history[:len(stored2)], f"{code}: new day differs from the market"
            assert repo.ticks_between(code, *_day_bounds(day1)), f"{code}: nothing stored on the old day"
        assert stored_total == collector.summary()["stored"]
        assert {s.alert.alert_id for s in repo.alerts_on(day2)} == {a.alert_id for a in new}
    finally:
        repo.close()
