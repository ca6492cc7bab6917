"""Durable fan-out: trades and alerts to attached desktops over Redis Streams.

Real Redis (the shared server with unique stream keys, or a private redis-server that the test
restarts), real SQLite/PostgreSQL, real collectors on the built-in simulator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
import redis.asyncio as aioredis

from kis_desk.config import UserPaths
from kis_desk.core.events import AlertEvent, ErrorEvent, TicksEvent
from kis_desk.engine.collector import CollectorConfig
from kis_desk.engine.publisher import RedisPublisher
from kis_desk.engine.remote import RemoteEngine
from kis_desk.engine.storage import Repository, TickWriter
from kis_desk.engine.stream_reader import StreamReader
from kis_desk.engine.trade_batch import pack_trades, unpack_trades
from kis_desk.market.symbols import default_watchlist
from kis_desk.wiring import build_collector
from test_publisher import make_alert, needs_server, private_redis, wait_until  # noqa: F401
from test_storage import make_ticks, pg_schema  # noqa: F401

pytestmark = pytest.mark.redis

DESK_USER = ("--user", "desk", "on", ">deskpw", "~*", "&*", "+@all")


def keys() -> tuple[str, str, str]:
    tag = uuid.uuid4().hex[:10]
    return f"test:trades:{tag}", f"test:alerts:{tag}", f"test:ach:{tag}"


async def kill_clients(url: str, name: str) -> int:
    """CLIENT KILL every connection of one reader (found by its unique client name)."""
    admin = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        killed = 0
        for c in await admin.client_list():
            if c.get("name") == name:
                killed += int(await admin.client_kill_filter(_id=c["id"]))
        return killed
    finally:
        await admin.aclose()


def test_packed_batch_round_trip():
    ticks = make_ticks(50) + make_ticks(3, code="000660", source="backfill")
    assert unpack_trades(pack_trades(ticks)) == tuple(ticks)
    assert unpack_trades(pack_trades(ticks))[0].timestamp.utcoffset() == ticks[0].timestamp.utcoffset()
    assert unpack_trades(pack_trades([])) == ()


async def test_stream_reader_resumes_from_its_last_id_after_client_kill(redis_url):
    trade_stream, alert_stream, channel = keys()
    pub = RedisPublisher(redis_url, channel=channel, stream=alert_stream, trade_stream=trade_stream,
                         backoff_initial=0.05, backoff_max=0.2, trade_linger=0.0)
    got: list = []
    alerts: list[AlertEvent] = []
    gaps: list[str] = []
    reader = StreamReader(redis_url, trade_stream=trade_stream, alert_stream=alert_stream,
                          on_trades=got.extend, on_alert=alerts.append, on_gap=gaps.append,
                          block_ms=200)
    await pub.start()
    task = asyncio.create_task(reader.run())
    try:
        await wait_until(lambda: len(reader.last_ids) == 2, what="reader attached")
        ticks = make_ticks(3000)
        pub.publish_ticks(ticks[:1000])
        pub.publish_alert(make_alert(0))
        await wait_until(lambda: len(got) == 1000 and alerts, what="first part")
        for part in (ticks[1000:2000], ticks[2000:]):
            assert await kill_clients(redis_url, reader.client_name) >= 1
            pub.publish_ticks(part)               # written while the reader is reconnecting
            pub.publish_alert(make_alert(len(alerts)))
            await wait_until(lambda: reader.stats.reconnects >= 1, what="reader reconnected")
        await wait_until(lambda: len(got) == 3000 and len(alerts) == 3, what="everything")
        await asyncio.sleep(0.3)                  # room for a (wrong) duplicate to show up
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        st = await pub.stop()
        admin = aioredis.Redis.from_url(redis_url)
        await admin.delete(trade_stream, alert_stream)
        await admin.aclose()
    assert got == ticks                           # all, in order, none twice
    assert [a.alert_id for a in alerts] == [make_alert(i).alert_id for i in range(3)]
    assert reader.stats.reconnects >= 2 and reader.stats.gaps == 0 and not gaps
    assert st.trades_streamed == 3000 and st.trades_dropped == 0
    assert st.trade_batches < 3000 / 10           # packed batches, not one entry per trade


NO_SCRIPTS = ("--rename-command", "EVAL", "", "--rename-command", "EVALSHA", "")


@needs_server
@pytest.mark.parametrize("scripts", [True, False], ids=["lua-check", "no-scripts"])
async def test_trimmed_past_the_last_id_says_so_and_reloads_the_gap_from_the_database(
        private_redis, tmp_path, scripts):
    srv = private_redis(*DESK_USER, *(() if scripts else NO_SCRIPTS))
    srv.start()
    desk_url = f"redis://desk:deskpw@127.0.0.1:{srv.port}/0"
    db = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    writer = TickWriter(db, journal_dir=tmp_path / "journal")
    await writer.start()
    trade_stream, alert_stream, channel = keys()
    pub = RedisPublisher(srv.url, channel=channel, stream=alert_stream, trade_stream=trade_stream,
                         backoff_initial=0.05, backoff_max=0.2, trade_linger=0.0)
    await pub.start()
    remote = RemoteEngine(desk_url, db, alert_channel=channel, tick_channel=None,
                          trade_stream=trade_stream, alert_stream=alert_stream)
    seen: list = []
    errors: list[ErrorEvent] = []
    remote.bus.subscribe(TicksEvent, lambda e: seen.extend(e.ticks))
    remote.bus.subscribe(ErrorEvent, errors.append)
    await remote.start()
    admin = aioredis.Redis.from_url(srv.url)
    ticks = make_ticks(900, code="005930") + make_ticks(900, code="000660")
    parts = [ticks[i::3] for i in range(3)]       # interleaved: each part has both symbols

    def send(part):
        part = sorted(part, key=lambda t: (t.stock_code, t.cum_volume))
        writer.submit(part)                       # the collector stores and publishes each trade
        pub.publish_ticks(part)
    try:
        await wait_until(lambda: remote.reader is not None and len(remote.reader.last_ids) == 2,
                         what="desktop attached")
        first = make_ticks(300, code="005930") + make_ticks(300, code="000660")
        send(first)
        await wait_until(lambda: len(seen) == 600, what="first trades")
        # the desktop goes away (its user is locked out) for longer than the retention
        await admin.execute_command("ACL", "SETUSER", "desk", "off")
        await kill_clients(srv.url, remote.reader.client_name)
        away = make_ticks(300, code="005930", start_cum=3000) + \
            make_ticks(300, code="000660", start_cum=3000)
        send(away)
        await wait_until(lambda: pub.stats().trades_streamed == 1200, what="away trades in Redis")
        await admin.xtrim(trade_stream, maxlen=0, approximate=False)     # retention ran out
        back = make_ticks(300, code="005930", start_cum=6000) + \
            make_ticks(300, code="000660", start_cum=6000)
        send(back)
        await writer.flush()
        await wait_until(lambda: pub.stats().trades_streamed == 1800, what="later trades in Redis")
        await admin.execute_command("ACL", "SETUSER", "desk", "on")
        await wait_until(lambda: len(seen) >= 1800 and not remote._gaps.busy, what="gap filled")
        await asyncio.sleep(0.3)
    finally:
        await remote.stop()
        await pub.stop()
        await writer.stop()
        await admin.aclose()
    key = lambda t: (t.stock_code, t.cum_volume)   # noqa: E731
    assert Counter(map(key, seen)) == Counter(map(key, first + away + back))   # none lost, none twice
    assert remote.reader.stats.reloaded == 600 and remote.reader.stats.holes_left == 0
    assert any("trimmed past the last entry read" in e.message for e in errors)
    assert remote.summary()["stream_gaps"] >= 1
    assert remote.reader._use_script is scripts


def _chain_counts(seen, stored) -> dict[str, tuple[int, int, int]]:
    """Per symbol: (stored, seen distinct, seen twice) — the desktop's view vs the database."""
    out = {}
    for code, rows in stored.items():
        mine = Counter(t.cum_volume for t in seen if t.stock_code == code)
        want = {t.cum_volume for t in rows}
        out[code] = (len(want), len(want & set(mine)), sum(n - 1 for n in mine.values()))
    return out


@needs_server
@pytest.mark.postgres
async def test_two_collectors_two_desktops_lose_no_trade_across_a_redis_restart(
        private_redis, pg_schema, tmp_path):
    """Two collectors (disjoint symbols, own simulators/app keys) → one PostgreSQL and one
    Redis; two attached desktops. Redis is killed while the desktops are cut off (so entries
    they never read die with it) and restarted: trades lost by each desktop = 0."""
    srv = private_redis(*DESK_USER)
    srv.start()
    pg, _ = pg_schema
    desk_url = f"redis://desk:deskpw@127.0.0.1:{srv.port}/0"
    trade_stream, alert_stream, channel = keys()
    codes = default_watchlist()[:6]
    sets = [codes[:3], codes[3:]]
    collectors = [build_collector(CollectorConfig(
        env="sim", codes=s, sim_rate=250, db_url=pg, redis_url=srv.url, redis_channel=channel,
        redis_stream=alert_stream, redis_trade_stream=trade_stream, sim_spikes=False,
        paths=UserPaths(tmp_path / f"d{i}", tmp_path / f"l{i}", tmp_path / f"c{i}")))
        for i, s in enumerate(sets)]
    desktops = [RemoteEngine(desk_url, pg, alert_channel=channel, tick_channel=None,
                             trade_stream=trade_stream, alert_stream=alert_stream)
                for _ in range(2)]
    seen: list[list] = [[], []]
    alerts: list[list[AlertEvent]] = [[], []]
    for d, s, a in zip(desktops, seen, alerts):
        d.bus.subscribe(TicksEvent, lambda e, s=s: s.extend(e.ticks))
        d.bus.subscribe(AlertEvent, a.append)
        await d.start()
    await wait_until(lambda: all(d.reader and len(d.reader.last_ids) == 2 for d in desktops),
                     what="desktops attached")
    for c in collectors:                          # one at a time: each migrates the schema
        await c.start()
    admin = aioredis.Redis.from_url(srv.url)
    try:
        await wait_until(lambda: all(len(s) > 300 for s in seen), 60, what="trades on both desktops")
        await admin.execute_command("ACL", "SETUSER", "desk", "off")    # desktops cut off …
        for d in desktops:
            await kill_clients(srv.url, d.reader.client_name)
        collectors[0].exchange.simulator.jump(sets[0][1], -8.0, 1.0)
        before = [c.publisher.stats().trades_streamed for c in collectors]
        await wait_until(lambda: all(c.publisher.stats().trades_streamed > b + 200
                                     for c, b in zip(collectors, before)), 60,
                         what="trades the desktops never read")
        await admin.aclose()
        srv.kill()                                # … and Redis dies with those entries
        await asyncio.sleep(1.0)                  # collectors keep storing; publishers queue
        srv.start()                               # fresh: nothing of the old stream left
        admin = aioredis.Redis.from_url(srv.url)
        await wait_until(lambda: all(d.reader.stats.reconnects >= 1 for d in desktops), 60,
                         what="desktops back")
        await wait_until(lambda: all(len(a) >= 1 for a in alerts), 60, what="the alert")
        n = [len(s) for s in seen]
        await wait_until(lambda: all(len(s) > m + 300 for s, m in zip(seen, n)), 60,
                         what="live again")
    finally:
        for c in collectors:
            await c.stop()                        # flushes the database and the streams
        await admin.aclose()
    summaries = [c.summary() for c in collectors]
    assert all(s["trades_streamed"] > 0 and s["trades_stream_dropped"] == 0 for s in summaries)
    repo = Repository(pg)
    try:
        stored = {c: repo.ticks_between(c, *_whole_day(seen[0])) for c in codes}
        stored_alerts = {s.alert.alert_id for s in repo.alerts_on(alerts[0][0].trigger_time.date())}
    finally:
        repo.close()
    try:
        for s in seen:
            await wait_until(lambda s=s: all(v[0] == v[1] for v in _chain_counts(s, stored).values())
                             and not any(d._gaps.busy for d in desktops), 60,
                             what="desktops caught up with the database")
    finally:
        for d in desktops:
            await d.stop()
    for i, s in enumerate(seen):
        counts = _chain_counts(s, stored)
        lost = {c: v[0] - v[1] for c, v in counts.items()}
        twice = {c: v[2] for c, v in counts.items()}
        assert all(v[0] > 0 for v in counts.values()), counts
        assert lost == dict.fromkeys(codes, 0), f"desktop {i} lost {lost}"
        assert twice == dict.fromkeys(codes, 0), f"desktop {i} saw twice {twice}"
        assert sorted(a.alert_id for a in alerts[i]) == sorted(stored_alerts)
        assert desktops[i].reader.stats.gaps >= 1         # the restart was noticed and checked
    assert sum(d.reader.stats.reloaded for d in desktops) > 0   # some came from the database


def _whole_day(ticks):
    import datetime as dt

    day = ticks[0].timestamp
    start = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(days=1)


def _config(*argv: str):
    from kis_desk.cli import build_parser
    from kis_desk.headless import config_from_args

    return config_from_args(build_parser().parse_args(list(argv)))


def test_cli_stream_options():
    from kis_desk.defaults import DEFAULT_ALERT_STREAM, DEFAULT_TRADE_STREAM
    from kis_desk.engine.collector import ConfigError

    r, db = "redis://127.0.0.1:6379/0", "sqlite:///x.sqlite3"
    attach = _config("app", "--attach", "--redis", r, "--db", db)
    assert (attach.redis_trade_stream, attach.redis_stream, attach.redis_tick_channel) == (
        DEFAULT_TRADE_STREAM, DEFAULT_ALERT_STREAM, None)
    pubsub = _config("app", "--attach", "--redis", r, "--db", db, "--redis-ticks", "kis:ticks")
    assert (pubsub.redis_trade_stream, pubsub.redis_tick_channel) == (None, "kis:ticks")
    custom = _config("app", "--attach", "--redis", r, "--db", db, "--redis-trades", "desk:t",
                     "--redis-stream", "desk:a")
    assert (custom.redis_trade_stream, custom.redis_stream) == ("desk:t", "desk:a")
    collect = _config("collect", "--redis", r, "--redis-trades", "--redis-retention", "20000")
    assert (collect.redis_trade_stream, collect.redis_trade_maxlen) == (DEFAULT_TRADE_STREAM, 20_000)
    assert _config("collect", "--redis", r).redis_trade_stream is None     # trades: opt-in
    assert _config("collect").redis_stream is None
    for bad in (("collect", "--redis-trades"), ("collect", "--redis", r, "--redis-retention", "5")):
        with pytest.raises(ConfigError):
            _config(*bad)


@pytest.mark.slow
@pytest.mark.usefixtures("memory_keyring")
def test_desktop_window_attached_over_streams(qloop, tmp_path, redis_url):
    """The app's --attach wiring (ui/app.py → RemoteEngine on streams) shows trades and alerts."""
    from kis_desk.settings import SettingsStore, UserSettings
    from kis_desk.ui.app import run_window
    from test_ui_support import until

    store = SettingsStore()
    store.save(UserSettings(sound=False))
    shared_db = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    trade_stream, alert_stream, channel = keys()
    codes = ["005930", "000660"]
    remote_host = build_collector(CollectorConfig(
        env="sim", codes=codes, sim_rate=300, db_url=shared_db, redis_url=redis_url,
        redis_channel=channel, redis_stream=alert_stream, redis_trade_stream=trade_stream,
        sim_spikes=False, paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c")))
    desktop = CollectorConfig(env="sim", codes=codes, db_url=shared_db, redis_url=redis_url,
                              redis_channel=channel, redis_stream=alert_stream,
                              redis_trade_stream=trade_stream, attach=True)
    engines: list = []

    async def script(window) -> None:
        engines.append(window.engine)
        await remote_host.start()
        try:
            model = window.model
            await until(lambda: all(model.state(c).price is not None for c in codes),
                        what="prices via the trade stream")
            remote_host.exchange.simulator.jump("000660", 7.0, 1.0)
            await until(lambda: model.pending_alerts("000660"), timeout=30,
                        what="alert via the alert stream")
        finally:
            await remote_host.stop()
        window.close()

    try:
        code = qloop.run_until_complete(asyncio.wait_for(
            run_window(desktop, store=store, on_started=script), 120))
    finally:
        async def cleanup() -> None:
            admin = aioredis.Redis.from_url(redis_url)
            await admin.delete(trade_stream, alert_stream)
            await admin.aclose()
        qloop.run_until_complete(cleanup())
    assert code == 0
    assert type(engines[0]).__name__ == "RemoteEngine" and engines[0].reader is not None


async def test_gap_filler_reloads_busy_and_quiet_symbols_by_the_chain(tmp_path):
    """No Redis: the database side of a gap. A trades on after the gap (hole up to its next
    trade), B stays quiet (reloaded up to now, then its next trade is checked again)."""
    from kis_desk.engine.gap_filler import GapFiller
    from kis_desk.engine.stream_reader import ReaderStats

    db = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    writer = TickWriter(db, journal_dir=tmp_path / "journal")
    await writer.start()
    repo = Repository(db)
    a, b = make_ticks(60, code="005930"), make_ticks(60, code="000660")
    delivered: list = []
    stats = ReaderStats()
    gaps = GapFiller(repo.ticks_between, delivered.extend, stats, settle=0.1, retry_every=0.05)
    try:
        writer.submit(a[:40] + b[:30])
        await writer.flush()
        delivered.extend(gaps.filter(a[:10] + b[:10]))     # live, then the stream loses entries
        gaps.gap()
        delivered.extend(gaps.filter(a[40:41]))           # A's next live trade: hole 10..39
        await wait_until(lambda: not gaps.busy and len(delivered) >= 71, what="reloads")
        assert gaps.filter(b[15:16]) == []                # delivered from the database already
        writer.submit(b[30:45])                           # B trades on; the stream loses them too
        await writer.flush()
        delivered.extend(gaps.filter(b[45:46]))           # B's next live trade is checked again
        await wait_until(lambda: len(delivered) >= 87 and not gaps.busy, what="B's second hole")
    finally:
        await gaps.stop()
        await writer.stop()
        repo.close()
    key = lambda t: (t.stock_code, t.cum_volume)   # noqa: E731
    assert Counter(map(key, delivered)) == Counter(map(key, a[:41] + b[:46]))
    assert stats.reloaded == 30 + 20 + 15 and stats.holes_left == 0
