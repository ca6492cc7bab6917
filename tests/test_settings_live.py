"""Settings apply at once: ``Collector.apply`` on a running collector (no restart).

Every check counts: alerts raised vs alerts arrived, trades the simulator made vs trades
stored (exactly once across a database switch, without a gap across a key switch).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from kis_desk.config import AppCredential, Secret
from kis_desk.core.events import AlertEvent
from kis_desk.engine.collector import CollectorConfig
from kis_desk.market.symbols import default_watchlist
from kis_desk.wiring import build_collector
from test_collector import _paths, _wait





def _cums(db_url: str) -> dict[str, list[int]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT stock_code, cum_volume FROM stock_prices_realtime")).all()
    engine.dispose()
    out: dict[str, list[int]] = {}
    for code, cum in rows:
        out.setdefault(code, []).append(int(cum))
    return out


def _assert_matches_market(sim, codes, stored: dict[str, list[int]]) -> int:
    """Stored trades = the market's trades from the first stored one on, each once, no gap."""
    total = 0
    for code in codes:
        cums = sorted(stored.get(code, []))
        assert cums, f"{code}: nothing stored"
        assert len(cums) == len(set(cums)), f"{code}: a trade stored twice"
        history = [t.cum_volume for t in sim.history(code) if t.cum_volume >= cums[0]]
        assert cums == history[:len(cums)], f"{code}: stored trades differ from the market's"
        total += len(cums)
    return total


def _config(tmp_path: Path, **kw) -> CollectorConfig:
    base = dict(env="sim", codes=default_watchlist()[:4], sim_rate=150, sim_spikes=False,
                db_url=f"sqlite:///{tmp_path / 'a.sqlite3'}", paths=_paths(tmp_path))
    base.update(kw)
    return CollectorConfig(**base)


async def test_threshold_and_window_apply_live(tmp_path):
    collector = build_collector(_config(tmp_path))
    alerts: list[AlertEvent] = []
    collector.bus.subscribe(AlertEvent, alerts.append)
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        code = collector.codes[1]
        changed = await collector.apply(dataclasses.replace(collector.config, threshold_pct=0.5,
                                                            window_seconds=20.0))
        assert set(changed) == {"threshold_pct", "window_seconds"}
        assert (collector.detector.threshold_pct, collector.detector.window_seconds) == (0.5, 20.0)
        feed = collector.feed
        collector.exchange.simulator.jump(code, 1.0, 0.5)       # 1 %: only the new rule alerts
        await _wait(lambda: any(a.stock_code == code and a.direction == "up" for a in alerts),
                    "1 % jump alerted at 0.5 %")
        assert collector.feed is feed                            # nothing reconnected
    finally:
        await collector.stop()
    jump = [a for a in alerts if a.stock_code == code and a.direction == "up"]
    assert jump[0].threshold_pct == 0.5 and jump[0].window_seconds == 20.0
    assert collector.summary()["reconnects"] == 0


async def test_database_switch_stores_every_trade_exactly_once_across_the_two(tmp_path):
    db_a, db_b = (f"sqlite:///{tmp_path / n}" for n in ("a.sqlite3", "b.sqlite3"))
    collector = build_collector(_config(tmp_path, db_url=db_a))
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        await asyncio.sleep(1.0)
        feed = collector.feed
        changed = await collector.apply(dataclasses.replace(collector.config, db_url=db_b))
        assert changed == ["db_url", "database"] and collector.feed is feed
        await asyncio.sleep(1.0)
    finally:
        await collector.stop()
    a, b = _cums(db_a), _cums(db_b)
    for code in collector.codes:
        assert a.get(code) and b.get(code), f"{code}: one of the databases got nothing"
        assert not set(a[code]) & set(b[code]), f"{code}: a trade stored in both databases"
        assert max(a[code]) < min(b[code]), f"{code}: the old database got a trade after the switch"
    union = {code: a.get(code, []) + b.get(code, []) for code in collector.codes}
    total = _assert_matches_market(collector.exchange.simulator, collector.codes, union)
    summary = collector.summary()
    assert summary["stored"] == total and summary["failed"] == 0 and summary["journaled"] == 0


async def test_key_change_restarts_the_feed_without_losing_a_trade(tmp_path):
    from kis_desk.sim import SimConfig, Simulator

    codes = default_watchlist()[:4]
    db = f"sqlite:///{tmp_path / 'k.sqlite3'}"
    key = lambda n: [AppCredential("key1", Secret(f"SIMKEY{n:02d}"), Secret(f"SIMSECRET{n:02d}"))]  # noqa: E731
    async with Simulator(SimConfig(codes=codes, rate=150)) as sim:
        cfg = CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, codes=codes,
                              credentials=key(1), db_url=db, paths=_paths(tmp_path))
        collector = build_collector(cfg)
        await collector.start()
        try:
            await _wait(lambda: collector.feed.all_live(), "all live")
            await asyncio.sleep(1.0)
            old_feed = collector.feed
            changed = await collector.apply(dataclasses.replace(collector.config, credentials=key(7)))
            assert changed == ["credentials"] and collector.feed is not old_feed
            await _wait(lambda: collector.feed.all_live(), "live on the new key")
            await _wait(lambda: collector.feed.backfills_pending() == 0
                        and collector.feed.stats().backfilled > 0, "gap back-filled")
            await asyncio.sleep(0.5)
            app_keys = {s["app_key"] for s in sim.sessions()}
        finally:
            await collector.stop()
        assert app_keys == {"SIMKEY07"}            # the old key's session is gone
        total = _assert_matches_market(sim, codes, _cums(db))
    assert collector.summary()["stored"] == total


@pytest.mark.redis
async def test_redis_switch_loses_no_alert(tmp_path, redis_url):
    """Dead Redis (alerts pending) → Redis db 14 (the pending ones handed over) → db 15."""
    import redis.asyncio as aioredis

    stream = f"kis:test:live:{uuid.uuid4().hex[:8]}"
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    url14, url15 = f"{base}/14", f"{base}/15"
    collector = build_collector(_config(tmp_path, redis_url="redis://127.0.0.1:1/0", redis_stream=stream,
                                        redis_channel=stream))
    alerts: list[AlertEvent] = []
    collector.bus.subscribe(AlertEvent, alerts.append)
    codes = collector.codes
    sim_jump = lambda c, pct: collector.exchange.simulator.jump(c, pct, 0.5)  # noqa: E731
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        sim_jump(codes[0], 7.0)
        await _wait(lambda: len(alerts) >= 1, "alert while Redis is unreachable")
        assert collector.publisher.pending >= 1
        await collector.apply(dataclasses.replace(collector.config, redis_url=url14))
        sim_jump(codes[1], 7.0)
        await _wait(lambda: len({a.stock_code for a in alerts}) >= 2, "second alert")
        await _wait(lambda: collector.publisher.pending == 0 and collector.publisher.delivered >= 2,
                    "delivered on db 14")
        on_14 = {a.alert_id for a in alerts}
        await collector.apply(dataclasses.replace(collector.config, redis_url=url15))
        sim_jump(codes[2], -7.0)
        await _wait(lambda: any(a.stock_code == codes[2] for a in alerts), "third alert")
        await _wait(lambda: collector.publisher.pending == 0 and collector.publisher.delivered >= 1,
                    "delivered on db 15")
    finally:
        await collector.stop()
    got: dict[str, list[str]] = {}
    for url in (url14, url15):
        client = aioredis.from_url(url)
        try:
            entries = await client.xrange(stream)
            got[url] = [json.loads(fields[b"alert"])["alert_id"] for _, fields in entries]
            await client.delete(stream)
        finally:
            await client.aclose()
    raised = [a.alert_id for a in alerts]
    assert sorted(got[url14] + got[url15]) == sorted(raised), "an alert lost or delivered twice"
    assert set(got[url14]) == on_14
    summary = collector.summary()
    assert summary["alerts_delivered"] == len(raised) and summary["alerts_undelivered"] == 0


@pytest.mark.usefixtures("memory_keyring")
def test_settings_changes_take_what_the_user_changed_and_keep_command_line_options(tmp_path):
    from kis_desk.engine.user_settings import settings_changes
    from kis_desk.settings import SettingsStore, UserSettings

    store = SettingsStore()
    running = CollectorConfig(env="sim", db_url="sqlite:///cli.sqlite3", threshold_pct=7.0)  # --db, --threshold
    previous = UserSettings()
    threshold = dataclasses.replace(previous, alert_threshold_pct=0.5)
    new = settings_changes(running, previous, threshold, store)
    assert new.threshold_pct == 0.5 and new.db_url == "sqlite:///cli.sqlite3"   # only the change
    store.set_database_url(threshold, f"sqlite:///{tmp_path / 'new.sqlite3'}")
    moved = settings_changes(running, previous, threshold, store)
    assert moved.db_url == f"sqlite:///{tmp_path / 'new.sqlite3'}"
    # keys typed into Settings for mock/real replace the running ones
    real = dataclasses.replace(threshold, environment="mock")
    store.set_credentials(real, [(Secret("PSKEY"), Secret("PSSECRET"))])
    keyed = settings_changes(running, previous, real, store)
    assert keyed.env == "mock" and [c.app_key.reveal() for c in keyed.credentials] == ["PSKEY"]


@pytest.mark.usefixtures("memory_keyring")
async def test_collector_apply_settings_from_user_settings(tmp_path):
    from kis_desk.settings import SettingsStore, UserSettings

    store = SettingsStore()
    collector = build_collector(_config(tmp_path))
    await collector.start()
    try:
        previous = UserSettings()
        changed = await collector.apply_settings(
            dataclasses.replace(previous, alert_threshold_pct=2.0, alert_window_seconds=30.0), store, previous)
        assert set(changed) == {"threshold_pct", "window_seconds"}
        assert (collector.detector.threshold_pct, collector.detector.window_seconds) == (2.0, 30.0)
        assert collector.config.db_url == f"sqlite:///{tmp_path / 'a.sqlite3'}"    # untouched
    finally:
        await collector.stop()


@pytest.mark.redis
@pytest.mark.usefixtures("memory_keyring")
async def test_remote_engine_applies_database_and_redis_but_not_the_alert_rule(tmp_path, redis_url):
    from kis_desk.engine.remote import RemoteEngine
    from kis_desk.engine.storage import Repository
    from kis_desk.settings import SettingsStore, UserSettings

    Repository(f"sqlite:///{tmp_path / 'one.sqlite3'}").close()
    remote = RemoteEngine(redis_url, f"sqlite:///{tmp_path / 'one.sqlite3'}",
                          alert_channel=f"kis:test:{uuid.uuid4().hex[:8]}", tick_channel=None)
    await remote.start()
    try:
        store = SettingsStore()
        settings = UserSettings(alert_threshold_pct=1.0, redis_channel=f"kis:test:{uuid.uuid4().hex[:8]}")
        store.set_database_url(settings, f"sqlite:///{tmp_path / 'two.sqlite3'}")
        changed = await remote.apply_settings(settings, store, UserSettings())
        assert changed == ["db_url", "redis_url"]
        assert remote.db_url.endswith("two.sqlite3") and remote.alert_channel == settings.redis_channel
        assert remote.repository.list_watchlists() == []
        assert await remote.apply_settings(settings, store, settings) == []
    finally:
        await remote.stop()


async def test_environment_switch_moves_to_the_other_market_and_its_database(tmp_path, monkeypatch):
    """Built-in simulator → a KIS-compatible server at explicit URLs (the demo database → the
    user's); a refused environment (real, no keys) first leaves everything as it was."""
    from kis_desk.config import ENVIRONMENTS
    from kis_desk.engine.collector import ConfigError
    from kis_desk.sim import SimConfig, Simulator

    for k in list(__import__("os").environ):
        if k.startswith("KIS_APP_"):
            monkeypatch.delenv(k)
    codes = default_watchlist()[:3]
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=150, sim_spikes=False, paths=_paths(tmp_path))
    collector = build_collector(cfg)
    async with Simulator(SimConfig(codes=codes, rate=150)) as other:
        await collector.start()
        try:
            await _wait(lambda: collector.feed.all_live(), "all live")
            demo_db = collector.config.database_url()
            feed = collector.feed
            with pytest.raises(ConfigError, match="no KIS app key"):
                await collector.apply(dataclasses.replace(collector.config, env="real"))
            assert "real" in ENVIRONMENTS and collector.config.env == "sim" and collector.simulated
            assert collector.feed is not feed and collector.config.database_url() == demo_db
            await _wait(lambda: collector.feed.all_live(), "live again on the simulator")
            changed = await collector.apply(dataclasses.replace(
                collector.config, ws_url=other.ws_url, rest_url=other.rest_url))
            assert {"ws_url", "rest_url", "database"} <= set(changed)
            assert not collector.simulated and collector.config.database_url() != demo_db
            await _wait(lambda: collector.feed.all_live(), "live on the other market")
            await asyncio.sleep(1.0)
            new_db = collector.config.database_url()
        finally:
            await collector.stop()
        _assert_matches_market(other, codes, _cums(new_db))
