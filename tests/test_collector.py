"""End-to-end: simulator → feed → collector → storage / detector / Redis, and the headless CLI.

Every check counts trades: what the simulator generated vs what the database holds. KIS's
cumulative volume makes gaps visible: for each symbol, consecutive stored trades must satisfy
cum_volume[k] = cum_volume[k-1] + volume[k].
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from kis_desk.config import UserPaths
from kis_desk.engine.collector import Collector, CollectorConfig, ConfigError
from kis_desk.wiring import build_collector
from kis_desk.core.events import AlertEvent, SubscriptionPlanEvent
from kis_desk.market.symbols import default_watchlist
from kis_desk.sim import DEMO_SPIKES
from test_storage import pg_schema  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent


def _paths(tmp_path: Path) -> UserPaths:
    return UserPaths(tmp_path / "data", tmp_path / "logs", tmp_path / "config")


async def _wait(predicate, what: str, limit: float = 30.0) -> None:
    """Safety net against hangs, not a timing assertion."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.02)


def _stored_rows(db_url: str) -> dict[str, list[tuple[int, int, str]]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT stock_code, cum_volume, volume, source FROM stock_prices_realtime "
            "ORDER BY stock_code, cum_volume")).all()
    engine.dispose()
    out: dict[str, list[tuple[int, int, str]]] = {}
    for code, cum, vol, source in rows:
        out.setdefault(code, []).append((int(cum), int(vol), source))
    return out


def _assert_no_gaps(rows: dict[str, list[tuple[int, int, str]]]) -> None:
    for code, trades in rows.items():
        for (prev_cum, _, _), (cum, vol, _) in zip(trades, trades[1:]):
            assert cum == prev_cum + vol, f"{code}: gap between cum_volume {prev_cum} and {cum}"


async def _run(collector: Collector, seconds: float, during=None) -> None:
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all symbols live")
        if during is not None:
            await during(collector)
        await asyncio.sleep(seconds)
    finally:
        await collector.stop()


async def test_fifty_symbols_two_keys_all_live_every_trade_stored(tmp_path):
    codes = default_watchlist()[:50]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=1000, sim_keys=2, db_url=db,
                          paths=_paths(tmp_path))
    collector = build_collector(cfg)
    plans: list[SubscriptionPlanEvent] = []
    collector.bus.subscribe(SubscriptionPlanEvent, plans.append)
    await _run(collector, 2.5)
    sim = collector.exchange.simulator
    assert plans and not plans[-1].polled and plans[-1].keys_needed == 2
    assert sum(len(v) for v in plans[-1].live.values()) == 50
    rows = _stored_rows(db)
    summary = collector.summary()
    assert summary["failed"] == 0 and summary["journaled"] == 0
    assert summary["stored"] == sum(len(v) for v in rows.values()) > 500
    assert summary["retention_days"] == 90 and summary["database_bytes"] > 0      # from WriterStats
    sent = 0
    for code in codes:
        stored = {cum for cum, _, _ in rows.get(code, [])}
        trades = sim.sent_trades(code)
        sent += len(trades)
        missing = [t.cum_volume for t in trades if t.cum_volume not in stored]
        assert not missing, f"{code}: {len(missing)} sent trades not stored"
    assert sent > 500
    _assert_no_gaps(rows)


async def test_abrupt_drop_mid_stream_backfills_every_missed_trade(tmp_path):
    codes = default_watchlist()[:10]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=300, db_url=db, paths=_paths(tmp_path))
    collector = build_collector(cfg)

    async def drop_twice(c: Collector) -> None:
        for _ in range(2):
            await asyncio.sleep(1.0)
            before = c.feed.stats().reconnects
            c.exchange.simulator.faults.drop_all()
            # both sessions must have noticed the drop and come back before we look again
            await _wait(lambda: c.feed.stats().reconnects >= before + len(c.feed.sessions),
                        "both sessions reconnected")
            await _wait(lambda: c.feed.all_live(), "resubscribed")
        await _wait(lambda: c.feed.backfills_pending() == 0, "back-fill done")

    await _run(collector, 1.0, during=drop_twice)
    sim = collector.exchange.simulator
    summary = collector.summary()
    assert summary["reconnects"] >= 2
    rows = _stored_rows(db)
    _assert_no_gaps(rows)
    for code in codes:
        first = rows[code][0][0]
        history = [t.cum_volume for t in sim.history(code) if t.cum_volume >= first]
        stored = [cum for cum, _, _ in rows[code]]
        # everything the market traded from our first stored trade up to the last one we hold
        assert stored == history[:len(stored)], f"{code}: stored trades differ from the market's"
    assert summary["failed"] == 0


@pytest.mark.postgres
async def test_collector_stores_into_postgresql(tmp_path, pg_schema):  # noqa: F811
    url, _ = pg_schema
    codes = default_watchlist()[:5]
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=300, db_url=url, paths=_paths(tmp_path))
    collector = build_collector(cfg)
    await _run(collector, 1.5)
    rows = _stored_rows(url)
    assert sum(len(v) for v in rows.values()) == collector.summary()["stored"] > 50
    _assert_no_gaps(rows)


@pytest.mark.redis
async def test_simulator_jump_reaches_a_redis_subscriber_and_the_alerts_table(tmp_path, redis_url):
    import redis.asyncio as aioredis

    codes = default_watchlist()[:5]
    channel = f"kis:test:{uuid.uuid4().hex[:8]}"
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=200, db_url=db, paths=_paths(tmp_path),
                          redis_url=redis_url, redis_channel=channel,
                          sim_spikes=False)   # the first alert must be the scripted jump's
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    collector = build_collector(cfg)
    received: list[AlertEvent] = []
    bus_alerts: list[AlertEvent] = []
    collector.bus.subscribe(AlertEvent, bus_alerts.append)
    await collector.start()
    try:
        await _wait(lambda: collector.feed.all_live(), "all live")
        collector.exchange.simulator.jump(codes[1], 7.0, 1.0)
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if msg:
                received.append(AlertEvent.from_dict(json.loads(msg["data"])))
    finally:
        await collector.stop()
        await pubsub.aclose()
        await client.aclose()
    assert received, "no alert reached the Redis subscriber"
    alert = received[0]
    assert alert.stock_code == codes[1] and alert.direction == "up" and alert.change_pct >= 5.0
    assert alert.alert_id in {a.alert_id for a in bus_alerts}
    stored = collector.repository.alerts_on(alert.trigger_time.date())
    assert alert.alert_id in {s.alert.alert_id for s in stored}


async def test_watchlist_change_applies_live(tmp_path):
    codes = default_watchlist()[:5]
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=200, paths=_paths(tmp_path),
                          db_url=f"sqlite:///{tmp_path / 't.sqlite3'}")
    collector = build_collector(cfg)
    await collector.start()
    try:
        assert collector.exchange.simulator.config.spikes is DEMO_SPIKES   # the demo's embedded simulator
        await _wait(lambda: collector.feed.all_live(), "all live")
        new = codes[2:] + ["123456"]
        await collector.set_watchlist(new)
        await _wait(lambda: set(collector.feed.symbol_states()) == set(new) and collector.feed.all_live(),
                    "new watchlist live")
        subscribed = {key for s in collector.exchange.simulator.sessions() for tr, key in s["subscriptions"]}
        assert subscribed == set(new)  # removed symbols were unsubscribed on the server too
    finally:
        await collector.stop()


async def test_real_environment_without_keys_is_a_clear_error(tmp_path, monkeypatch):
    for k in list(os.environ):
        if k.startswith("KIS_APP_"):
            monkeypatch.delenv(k)
    cfg = CollectorConfig(env="real", codes=["005930"], paths=_paths(tmp_path),
                          db_url=f"sqlite:///{tmp_path / 't.sqlite3'}")
    with pytest.raises(ConfigError, match="KIS_APP_KEY"):
        await build_collector(cfg).start()


# -- the headless CLI --------------------------------------------------------------------------

def _cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KIS_DESK_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "kis_desk", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("args, reason", [
    (["--codes", "12345"], "invalid stock code"),
    (["--codes", "005930", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/nope"], "database"),
    (["--codes", "005930", "--env", "real"], "KIS_APP_KEY"),
    (["--codes", "005930", "--ws-url", "ws://127.0.0.1:1"], "go together"),
])
def test_collect_bad_arguments_exit_nonzero_with_one_line(tmp_path, args, reason, monkeypatch):
    for k in list(os.environ):
        if k.startswith("KIS_APP_"):
            monkeypatch.delenv(k)
    result = _cli("collect", "--duration", "1", *args, home=tmp_path)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.startswith("kis-desk")]
    assert len(lines) == 1 and reason in lines[0], result.stderr


@pytest.mark.skipif(os.name == "nt", reason="SIGTERM to another process is TerminateProcess on Windows: no clean stop to test")
def test_collect_sigterm_mid_stream_flushes_and_prints_summary(tmp_path):
    env = {**os.environ, "KIS_DESK_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "kis_desk", "collect", "--codes",
                             ",".join(default_watchlist()[:20]), "--sim-rate", "2000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        db = tmp_path / "data" / "kis-desk-demo.sqlite3"
        while time.monotonic() < deadline and not db.exists():
            time.sleep(0.1)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("received", "stored", "duplicates", "backfilled", "reconnects", "alerts", "journaled"):
        assert key in summary
    assert summary["received"] > 1000
    assert summary["stored"] + summary["duplicates"] == summary["received"]
    rows = _stored_rows(f"sqlite:///{db}")
    assert sum(len(v) for v in rows.values()) == summary["stored"]
    _assert_no_gaps(rows)


async def test_collect_with_a_rejected_app_key_exits_with_a_clear_reason(tmp_path):
    from kis_desk.sim import SimConfig, Simulator

    async with Simulator(SimConfig(codes=["005930"], app_keys={"GOODKEY123": "GOODSECRET456"})) as sim:
        env = {**os.environ, "KIS_DESK_HOME": str(tmp_path), "KIS_APP_KEY": "WRONGKEY99",
               "KIS_APP_SECRET": "WRONGSECRET99"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kis_desk", "collect", "--env", "mock", "--ws-url", sim.ws_url,
            "--rest-url", sim.rest_url, "--codes", "005930", "--duration", "30", "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 3
    assert "rejected" in err.decode() and "WRONGSECRET99" not in err.decode() + out.decode()
    assert json.loads(out.decode().strip().splitlines()[-1])["stored"] == 0


def punch_hole(conn: sa.Connection, code: str, lo: int, hi: int) -> None:
    """Make a stored SQLite day look as a crash mid back-fill leaves it: the trades with
    ``lo < cum_volume < hi`` missing, from the trades and from their 1-minute bars (the writer
    builds bars from the trades it inserts, in the same transaction; a deleted trade would keep
    its bar), so the bars are rebuilt from what is left (the trigger)."""
    conn.execute(sa.text("DELETE FROM stock_prices_realtime WHERE stock_code = :c AND "
                         "cum_volume > :lo AND cum_volume < :hi"), {"c": code, "lo": lo, "hi": hi})
    conn.execute(sa.text("CREATE TEMP TABLE kept AS SELECT * FROM stock_prices_realtime WHERE stock_code = :c"),
                 {"c": code})
    conn.execute(sa.text("DELETE FROM stock_prices_realtime WHERE stock_code = :c"), {"c": code})
    conn.execute(sa.text("DELETE FROM bars_1m WHERE stock_code = :c"), {"c": code})
    conn.execute(sa.text("INSERT INTO stock_prices_realtime SELECT * FROM kept"))
    conn.execute(sa.text("DROP TABLE kept"))


async def test_restart_back_fills_a_hole_an_interrupted_run_left_behind(tmp_path):
    """A crash mid back-fill leaves later trades stored but the outage's missing: the next start
    must back-fill from before the hole, not from the newest stored trade."""
    from kis_desk.sim import SimConfig, Simulator

    codes = default_watchlist()[:3]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    async with Simulator(SimConfig(codes=codes, rate=150)) as sim:
        def config() -> CollectorConfig:
            return CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, codes=codes,
                                   db_url=db, paths=_paths(tmp_path))

        await _run(build_collector(config()), 1.5)
        engine = sa.create_engine(db)
        with engine.begin() as conn:     # punch a hole into the first symbol's stored day
            cums = [r[0] for r in conn.execute(sa.text(
                "SELECT cum_volume FROM stock_prices_realtime WHERE stock_code = :c ORDER BY cum_volume"),
                {"c": codes[0]})]
            assert len(cums) > 20
            lo, hi = cums[5], cums[15]
            punch_hole(conn, codes[0], lo, hi)
        engine.dispose()
        with pytest.raises(AssertionError, match="gap"):
            _assert_no_gaps(_stored_rows(db))
        second = build_collector(config())
        await second.start()
        try:
            await _wait(lambda: second.feed.all_live(), "live")
            await _wait(lambda: second.feed.backfills_pending() == 0 and second.feed.stats().backfilled > 0,
                        "back-fill of the hole")
        finally:
            await second.stop()
    rows = _stored_rows(db)
    _assert_no_gaps(rows)
    assert {c for c, _, _ in rows[codes[0]]} >= set(cums[:16])


@pytest.mark.redis
async def test_ticks_are_published_on_redis_for_other_hosts(tmp_path, redis_url):
    import redis.asyncio as aioredis

    from kis_desk.core.events import TicksEvent, event_from_json

    channel = f"kis:ticks:{uuid.uuid4().hex[:8]}"
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    cfg = CollectorConfig(env="sim", codes=default_watchlist()[:3], sim_rate=200, paths=_paths(tmp_path),
                          db_url=f"sqlite:///{tmp_path / 't.sqlite3'}", redis_url=redis_url,
                          redis_tick_channel=channel)
    collector = build_collector(cfg)
    received = []
    await collector.start()
    try:
        deadline = time.monotonic() + 30
        while sum(len(e.ticks) for e in received) < 50 and time.monotonic() < deadline:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
            if msg:
                event = event_from_json(msg["data"])
                assert isinstance(event, TicksEvent)
                received.append(event)
    finally:
        await collector.stop()
        await pubsub.aclose()
        await client.aclose()
    ticks = [t for e in received for t in e.ticks]
    assert len(ticks) >= 50
    stored = _stored_rows(cfg.db_url)
    assert all(t.cum_volume in {c for c, _, _ in stored[t.stock_code]} for t in ticks)
