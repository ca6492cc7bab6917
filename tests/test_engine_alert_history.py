"""The engine handles' alert-history methods and the test alert on Redis (real collector,
real RemoteEngine, real Redis and SQLite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta

import pytest
import redis.asyncio as aioredis

from kis_desk.config import UserPaths
from kis_desk.core.events import AlertEvent, SessionStateEvent
from kis_desk.engine.alert_probe import is_test_message, publish_test_alert, alert_check_json
from kis_desk.engine.collector import CollectorConfig
from kis_desk.engine.remote import RemoteEngine
from kis_desk.ui.alert_check import make_test_alert
from kis_desk.wiring import build_collector
from test_collector import _wait
from test_storage_alert_history import DAY1, DAY2, DAY3, make_alert


def _seed(repo) -> None:
    for a in (make_alert("005930", DAY1, 1), make_alert("000660", DAY2, 2, "down"),
              make_alert("005930", DAY3, 3, "down")):
        repo.save_alert(a)
    repo.create_watchlist("반도체", ["005930", "000660"])


async def _exercise(engine) -> None:
    await asyncio.to_thread(_seed, engine.repository)
    rows = await engine.alerts_between(DAY1, DAY3, ["005930"], None)
    assert [r.alert.alert_id for r in rows] == ["005930:20260303:up:1:1", "005930:20260305:down:1:3"]
    assert len(await engine.alerts_between(DAY1, DAY3, None, "down")) == 2
    assert (await engine.alert_watchlists())["반도체"] == ["005930", "000660"]
    assert await engine.acknowledge_alerts([r.alert.alert_id for r in rows] + ["unknown"]) == 2
    assert [r.acknowledged for r in await engine.alerts_between(DAY1, DAY3)] == [True, False, True]


def test_alert_check_json_is_marked_and_recognised():
    alert = make_test_alert("005930", "삼성전자")
    text = alert_check_json(alert)
    assert json.loads(text)["test"] is True and alert.alert_id.startswith("test:")
    assert is_test_message(text) and is_test_message(text.encode())
    assert not is_test_message(alert.to_json())
    assert not is_test_message('{"type":"ticks","note":"\\"test\\":true"}')


async def test_collector_alert_history_methods(tmp_path):
    collector = build_collector(CollectorConfig(
        env="sim", codes=["005930", "000660"], db_url=f"sqlite:///{tmp_path / 'c.sqlite3'}",
        paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c"), sim_spikes=False))
    await collector.start()
    try:
        await _exercise(collector)
        assert await collector.send_test_alert(make_test_alert("005930", "삼성전자")) is None   # no Redis
    finally:
        await collector.stop()


@pytest.mark.redis
async def test_collector_test_alert_reaches_redis_marked_and_is_never_stored(tmp_path, redis_url):
    channel, stream = f"kis:a:{uuid.uuid4().hex[:8]}", f"kis:s:{uuid.uuid4().hex[:8]}"
    collector = build_collector(CollectorConfig(
        env="sim", codes=["005930"], db_url=f"sqlite:///{tmp_path / 'c.sqlite3'}", redis_url=redis_url,
        redis_channel=channel, redis_stream=stream,
        paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c"), sim_spikes=False))
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1.0)            # the subscribe confirmation
    await collector.start()
    try:
        alert = make_test_alert("005930", "삼성전자")
        assert await collector.send_test_alert(alert) == (channel, 1)
        msg = None
        while msg is None or msg["type"] != "message":
            msg = await pubsub.get_message(timeout=5.0)
        payload = json.loads(msg["data"])
        assert payload["test"] is True and payload["alert_id"] == alert.alert_id
        assert AlertEvent.from_dict(payload).stock_code == "005930"      # shaped like a real alert
    finally:
        await collector.stop()
        await pubsub.aclose()
    try:
        assert await client.xlen(stream) == 0                              # not on the replay stream
        assert await client.exists(f"{channel}:sent:{alert.alert_id}") == 0   # not deduped/"delivered"
    finally:
        await client.delete(stream)
        await client.aclose()
    assert collector.summary()["alerts_delivered"] == 0 and collector.alerts == 0
    from kis_desk.engine.storage import Repository

    repo = Repository(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        today = alert.trigger_time.date()
        assert repo.alerts_between(today - timedelta(days=1), today + timedelta(days=1)) == []
    finally:
        repo.close()


@pytest.mark.redis
async def test_remote_engine_history_methods_and_it_ignores_test_messages(tmp_path, redis_url):
    channel = f"kis:a:{uuid.uuid4().hex[:8]}"
    remote = RemoteEngine(redis_url, f"sqlite:///{tmp_path / 'shared.sqlite3'}", alert_channel=channel,
                          tick_channel=None)
    alerts: list[AlertEvent] = []
    states: list[SessionStateEvent] = []
    remote.bus.subscribe(AlertEvent, alerts.append)
    remote.bus.subscribe(SessionStateEvent, states.append)
    await remote.start()
    try:
        await _wait(lambda: any(s.state == "live" for s in states), "remote attached")
        await _exercise(remote)
        sent = await remote.send_test_alert(make_test_alert("000660", "SK하이닉스"))
        assert sent == (channel, 1)                       # its own listener received it …
        real = make_alert("000660", date.today(), 9)
        await publish_real(redis_url, channel, real)
        await _wait(lambda: alerts, "the real alert after the test one")
        assert [a.alert_id for a in alerts] == [real.alert_id]   # … and dropped the test one
    finally:
        await remote.stop()


async def publish_real(redis_url: str, channel: str, alert: AlertEvent) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await client.publish(channel, alert.to_json())
    finally:
        await client.aclose()


async def test_unreachable_redis_is_one_redacted_line():
    with pytest.raises(ConnectionError) as info:
        await publish_test_alert("redis://:hunter2@127.0.0.1:1/0", "kis:x", make_test_alert("005930", "x"))
    assert "hunter2" not in str(info.value) and "127.0.0.1:1" in str(info.value)
