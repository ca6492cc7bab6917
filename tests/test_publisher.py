"""RedisPublisher and `kis-desk alerts` against real Redis servers (shared and private)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from kis_desk.core.events import (
    AlertEvent, ErrorEvent, Event, EventBus, PublisherStatsEvent, event_from_json,
)
from kis_desk.core.ticks import Tick
from kis_desk.engine.publisher import RedisPublisher
from kis_desk.protocol.records import KST
from kis_desk.tools.alerts import add_alerts_arguments, alerts_main

pytestmark = pytest.mark.redis

HAVE_REDIS_SERVER = shutil.which("redis-server") is not None
needs_server = pytest.mark.skipif(not HAVE_REDIS_SERVER, reason="redis-server binary not on PATH")


def make_alert(i: int, code: str = "005930") -> AlertEvent:
    t0 = dt.datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)
    return AlertEvent(
        alert_id=f"{code}:20240102:up:1:{1000 + i}", stock_code=code, stock_name="삼성전자",
        direction="up", change_pct=5.0, base_price=70_000, base_time=t0,
        trigger_price=73_500, trigger_time=t0 + dt.timedelta(seconds=30 + i),
        trigger_cum_volume=1000 + i, detected_at=dt.datetime(2024, 1, 2, 0, 0, 31, tzinfo=dt.timezone.utc),
        window_seconds=60.0, threshold_pct=5.0, step=1)


def unique(prefix: str) -> str:
    return f"test:{prefix}:{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server on a free port that tests may kill and restart (never the shared one)."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        self.port = free_port()
        self.dir = tmp
        self.extra = list(extra)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *more: str) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), *self.extra, *more]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path):
    if not HAVE_REDIS_SERVER:
        pytest.skip("redis-server binary not on PATH")
    servers: list[PrivateRedis] = []

    def make(*extra: str) -> PrivateRedis:
        d = tmp_path / f"redis{len(servers)}"
        d.mkdir()
        s = PrivateRedis(d, *extra)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.kill()


async def wait_until(cond, timeout: float = 20.0, what: str = "condition") -> None:
    """Polls a condition (a correctness wait with a generous cap, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


class Collector:
    """A pub/sub subscriber collecting raw message payloads."""

    def __init__(self, url: str, channel: str, **kw) -> None:
        self.client = aioredis.Redis.from_url(url, decode_responses=True, **kw)
        self.channel = channel
        self.messages: list[str] = []
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(self.channel)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            msg = await self.pubsub.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                self.messages.append(msg["data"])

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.pubsub.aclose()
        except Exception:
            pass
        await self.client.aclose()


# -- shared Redis -------------------------------------------------------------------------------

async def test_subscriber_receives_exact_json_and_stream(redis_url):
    channel, stream = unique("alerts"), unique("stream")
    bus = EventBus()
    events: list = []
    bus.subscribe(Event, events.append)
    sub = Collector(redis_url, channel)
    await sub.start()
    pub = RedisPublisher(redis_url, channel=channel, stream=stream, stream_maxlen=100, bus=bus)
    try:
        assert await pub.start() is True
        alerts = [make_alert(i) for i in range(5)]
        for a in alerts:
            pub.publish_alert(a)
        await wait_until(lambda: len(sub.messages) >= 5, what="5 alerts")
        assert sub.messages == [a.to_json() for a in alerts]
        assert [event_from_json(m) for m in sub.messages] == alerts
        check = aioredis.Redis.from_url(redis_url, decode_responses=True)
        entries = await check.xrange(stream)
        assert [f["alert"] for _, f in entries] == [a.to_json() for a in alerts]
        # The same alert_id again is recognised by the server and not sent twice.
        pub.publish_alert(alerts[0])
        await wait_until(lambda: pub.stats().duplicates == 1, what="duplicate skipped")
        assert len(await check.xrange(stream)) == 5
        await check.delete(stream, *[f"{channel}:sent:{a.alert_id}" for a in alerts])
        await check.aclose()
    finally:
        st = await pub.stop()
        await sub.close()
    assert len(sub.messages) == 5
    assert (st.delivered, st.pending, st.dropped, st.mode) == (6, 0, 0, "script")
    assert any(isinstance(e, PublisherStatsEvent) and e.connected for e in events)


async def test_publish_ticks_to_tick_channel(redis_url):
    channel, tick_channel = unique("alerts"), unique("ticks")
    sub = Collector(redis_url, tick_channel)
    await sub.start()
    pub = RedisPublisher(redis_url, channel=channel, tick_channel=tick_channel, tick_batch=100)
    t0 = dt.datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)
    ticks = [Tick("005930", t0 + dt.timedelta(seconds=i), 70_000 + i, 1, i + 1, None, None, None,
                  1.0, "ws") for i in range(250)]
    try:
        await pub.start()
        pub.publish_ticks(ticks[:120])
        pub.publish_ticks(ticks[120:])
        await wait_until(lambda: pub.stats().ticks_sent == 250, what="ticks sent")
        await wait_until(lambda: sum(len(json.loads(m)["ticks"]) for m in sub.messages) == 250,
                         what="ticks received")
    finally:
        await pub.stop()
        await sub.close()
    got = [t for m in sub.messages for t in event_from_json(m).ticks]
    assert got == ticks
    assert all(len(json.loads(m)["ticks"]) <= 100 for m in sub.messages)


async def test_publish_alert_never_awaits_and_queues_before_start(redis_url):
    channel = unique("alerts")
    pub = RedisPublisher(redis_url, channel=channel)
    assert pub.publish_alert(make_alert(1)) is None      # plain function, no coroutine
    assert pub.stats().pending == 1
    sub = Collector(redis_url, channel)
    await sub.start()
    try:
        await pub.start()
        await wait_until(lambda: len(sub.messages) == 1, what="queued alert")
    finally:
        await pub.stop()
        await sub.close()
        c = aioredis.Redis.from_url(redis_url)
        await c.delete(f"{channel}:sent:{make_alert(1).alert_id}")
        await c.aclose()


# -- private servers: outage, overflow, auth, TLS --------------------------------------------------

@needs_server
async def test_redis_restart_mid_run_delivers_all_in_order_none_twice(private_redis):
    srv = private_redis()
    srv.start()
    channel, stream = "kis:alerts", "kis:alerts:stream"
    bus = EventBus()
    events: list = []
    bus.subscribe(Event, events.append)
    sub = Collector(srv.url, channel)
    await sub.start()
    pub = RedisPublisher(srv.url, channel=channel, stream=stream, bus=bus, backoff_initial=0.05,
                         backoff_max=0.3)
    await pub.start()
    alerts = [make_alert(i) for i in range(30)]
    for a in alerts[:10]:
        pub.publish_alert(a)
    await wait_until(lambda: len(sub.messages) == 10, what="first 10")
    await sub.close()

    srv.kill()                                     # Redis goes away mid-run
    for a in alerts[10:25]:
        pub.publish_alert(a)
        await asyncio.sleep(0.01)
    await wait_until(lambda: not pub.connected, what="publisher to notice the outage")
    for a in alerts[25:]:
        pub.publish_alert(a)
    assert pub.stats().pending == 20 and pub.stats().delivered == 10

    # Restart on the same port behind a temporary password, so our subscriber is listening
    # before the publisher (which has no password) can get through; then open the gate.
    srv.start("--requirepass", "gate")
    gated = f"redis://:gate@127.0.0.1:{srv.port}/0"
    sub2 = Collector(gated, channel)
    await sub2.start()
    admin = aioredis.Redis.from_url(gated, decode_responses=True)
    await admin.config_set("requirepass", "")
    await wait_until(lambda: len(sub2.messages) >= 20, what="20 queued alerts after restart")
    await asyncio.sleep(0.3)                       # room for a (wrong) duplicate to show up
    st = await pub.stop()
    entries = await admin.xrange(stream)
    await admin.aclose()
    await sub2.close()
    assert sub2.messages == [a.to_json() for a in alerts[10:]]      # all, in order, none twice
    assert [f["alert"] for _, f in entries] == [a.to_json() for a in alerts[10:]]
    assert (st.delivered, st.pending, st.dropped) == (30, 0, 0)
    assert st.reconnects >= 1
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors and "unreachable" in errors[0].message
    assert any(isinstance(e, PublisherStatsEvent) and not e.connected for e in events)


class CutReplyProxy:
    """TCP proxy that, when armed, forwards a request but cuts the connection instead of
    returning the reply: the ambiguous 'did my batch run?' failure."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.cuts = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, cr, cw) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def up():
            try:
                while data := await cr.read(65536):
                    uw.write(data)
                    await uw.drain()
            except Exception:
                pass
            finally:
                uw.close()

        async def down():
            try:
                while data := await ur.read(65536):
                    if self.armed and data[:1] == b":":
                        # integer reply of the delivery script: swallow it and cut
                        self.armed = False
                        self.cuts += 1
                        break
                    cw.write(data)
                    await cw.drain()
            except Exception:
                pass
            finally:
                cw.close()
                uw.close()

        await asyncio.gather(up(), down())

    async def close(self) -> None:
        self.server.close()


@needs_server
async def test_batch_applied_but_reply_lost_is_not_sent_twice(private_redis):
    srv = private_redis()
    srv.start()
    proxy = CutReplyProxy(srv.port)
    port = await proxy.start()
    channel, stream = "kis:alerts", "s"
    sub = Collector(srv.url, channel)
    await sub.start()
    pub = RedisPublisher(f"redis://127.0.0.1:{port}/0", channel=channel, stream=stream,
                         backoff_initial=0.05)
    await pub.start()
    proxy.armed = True
    alerts = [make_alert(i) for i in range(3)]
    for a in alerts:
        pub.publish_alert(a)
    await wait_until(lambda: pub.stats().delivered == 3, what="delivery after the cut")
    st = await pub.stop()
    await asyncio.sleep(0.1)
    await sub.close()
    await proxy.close()
    assert proxy.cuts == 1
    assert st.duplicates == 3 and st.reconnects >= 1      # the retry was skipped by Redis
    assert sub.messages == [a.to_json() for a in alerts]
    check = aioredis.Redis.from_url(srv.url)
    assert await check.xlen(stream) == 3
    await check.aclose()


@needs_server
async def test_max_pending_overflow_drops_oldest_and_reports(private_redis):
    srv = private_redis()                                 # not started yet: Redis is down
    bus = EventBus()
    events: list = []
    bus.subscribe(Event, events.append)
    pub = RedisPublisher(srv.url, max_pending=5, bus=bus, backoff_initial=0.05, backoff_max=0.2)
    assert await pub.start() is False
    alerts = [make_alert(i) for i in range(8)]
    for a in alerts:
        pub.publish_alert(a)
    assert (pub.stats().pending, pub.stats().dropped) == (5, 3)
    await wait_until(lambda: any(isinstance(e, ErrorEvent) and "queue full" in e.message
                                 for e in events), what="overflow ErrorEvent")
    assert any(isinstance(e, PublisherStatsEvent) and e.dropped == 3 for e in events)
    srv.start()
    sub = Collector(srv.url, "kis:alerts")
    await sub.start()
    # Gate-free here: verify through the stream-less dedupe keys instead of racing pub/sub.
    await wait_until(lambda: pub.stats().delivered == 5, what="5 newest delivered")
    st = await pub.stop()
    await sub.close()
    check = aioredis.Redis.from_url(srv.url, decode_responses=True)
    keys = sorted(await check.keys("kis:alerts:sent:*"))
    await check.aclose()
    assert keys == sorted(f"kis:alerts:sent:{a.alert_id}" for a in alerts[3:])   # oldest 3 dropped
    assert (st.delivered, st.dropped, st.pending) == (5, 3, 0)


@needs_server
async def test_password_auth_and_no_password_leak(private_redis, caplog):
    password = "s3cr:et/pw"
    srv = private_redis("--requirepass", password)
    srv.start()
    good = f"redis://:s3cr%3Aet%2Fpw@127.0.0.1:{srv.port}/0"
    bad = f"redis://:wrong-Pa55@127.0.0.1:{srv.port}/0"
    sub = Collector(good, "kis:alerts")
    await sub.start()
    pub = RedisPublisher(good)
    assert await pub.start() is True
    assert "s3cr" not in pub.target and "***" in pub.target
    pub.publish_alert(make_alert(1))
    await wait_until(lambda: len(sub.messages) == 1, what="alert via password auth")
    await pub.stop()
    await sub.close()

    bus = EventBus()
    events: list = []
    bus.subscribe(Event, events.append)
    caplog.set_level("DEBUG")
    pub2 = RedisPublisher(bad, bus=bus, backoff_initial=0.05)
    assert await pub2.start() is False
    pub2.publish_alert(make_alert(2))
    await asyncio.sleep(0.2)
    st = await pub2.stop(flush_timeout=0.2)
    assert st.pending == 1 and st.connected is False and st.last_error
    everything = caplog.text + json.dumps(st.as_dict()) + "".join(e.to_json() for e in events)
    assert "wrong-Pa55" not in everything and "s3cr" not in everything


def _make_tls_files(d: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kis-desk test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (d / "ca.pem", d / "server.pem", d / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@needs_server
async def test_tls_rediss_url_with_password(private_redis, tmp_path):
    ca, cert, key = _make_tls_files(tmp_path)
    tls_port = free_port()
    srv = private_redis("--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                        "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                        "--tls-auth-clients", "no", "--requirepass", "tlspw")
    srv.start()
    url = f"rediss://:tlspw@127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
    sub = Collector(url, "kis:alerts")
    await sub.start()
    pub = RedisPublisher(url)
    try:
        assert await pub.start() is True
        assert pub.target.startswith("rediss://:***@127.0.0.1")
        pub.publish_alert(make_alert(7))
        await wait_until(lambda: len(sub.messages) == 1, what="alert over TLS")
        assert sub.messages == [make_alert(7).to_json()]
    finally:
        await pub.stop()
        await sub.close()


# -- kis-desk alerts tool --------------------------------------------------------------------------

def _args(*argv: str) -> argparse.Namespace:
    return add_alerts_arguments(argparse.ArgumentParser()).parse_args(list(argv))


async def _numsub(url: str, channel: str) -> int:
    c = aioredis.Redis.from_url(url)
    try:
        return dict(await c.pubsub_numsub(channel)).get(channel.encode(), 0)
    finally:
        await c.aclose()


async def test_alerts_tool_prints_published_alert(redis_url, capsys):
    channel = unique("alerts")
    task = asyncio.create_task(alerts_main(_args("--redis", redis_url, "--channel", channel,
                                                 "--count", "2")))
    deadline = time.monotonic() + 20
    while await _numsub(redis_url, channel) < 1:
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.02)
    pub = RedisPublisher(redis_url, channel=channel)
    await pub.start()
    alerts = [make_alert(i, "000660") for i in range(2)]
    for a in alerts:
        pub.publish_alert(a)
    assert await asyncio.wait_for(task, 20) == 0
    await pub.stop()
    out = capsys.readouterr().out.splitlines()
    assert out == [a.to_json() for a in alerts]
    c = aioredis.Redis.from_url(redis_url)
    await c.delete(*[f"{channel}:sent:{a.alert_id}" for a in alerts])
    await c.aclose()


async def test_alerts_tool_follows_stream(redis_url, capsys):
    channel, stream = unique("alerts"), unique("stream")
    pub = RedisPublisher(redis_url, channel=channel, stream=stream)
    await pub.start()
    pub.publish_alert(make_alert(0))                       # before the tool: not printed
    await wait_until(lambda: pub.stats().delivered == 1, what="first alert")
    task = asyncio.create_task(alerts_main(_args("--redis", redis_url, "--stream", stream,
                                                 "--count", "1")))
    c = aioredis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 20
    while not any(cl.get("cmd") == "xread" and cl.get("name") == "kis-desk-alerts"
                  for cl in await c.client_list()):
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.02)                      # the tool is now blocked at the stream end
    await c.aclose()
    pub.publish_alert(make_alert(1))
    assert await asyncio.wait_for(task, 20) == 0
    await pub.stop()
    assert capsys.readouterr().out.splitlines() == [make_alert(1).to_json()]
    c = aioredis.Redis.from_url(redis_url)
    await c.delete(stream, *[f"{channel}:sent:{make_alert(i).alert_id}" for i in range(2)])
    await c.aclose()


def test_alerts_tool_unreachable_exits_2_one_line():
    port = free_port()
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-m", "kis_desk.tools.alerts", "--redis",
         f"redis://:hunter2@127.0.0.1:{port}/0"],
        capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Redis" in lines[0]
    assert "hunter2" not in proc.stderr and proc.stdout == ""


@needs_server
def test_alerts_tool_subprocess_prints_alert(private_redis):
    srv = private_redis()
    srv.start()
    proc = subprocess.Popen([sys.executable, "-m", "kis_desk.tools.alerts", "--redis", srv.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async def publish() -> None:
            deadline = time.monotonic() + 30
            while await _numsub(srv.url, "kis:alerts") < 1:
                assert time.monotonic() < deadline and proc.poll() is None
                await asyncio.sleep(0.05)
            pub = RedisPublisher(srv.url)
            await pub.start()
            pub.publish_alert(make_alert(3))
            await pub.stop()

        asyncio.run(publish())
        line = proc.stdout.readline()          # flushed per line, so this returns at once
        assert json.loads(line) == make_alert(3).to_dict()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_collect_summary_reads_the_publisher_stats_value(redis_url, tmp_path):
    """The collect summary's alerts_delivered/alerts_dropped come from the same frozen stats
    value as the status bar event (they read 0 with Redis when the summary looked for
    attributes on a dict)."""
    import dataclasses

    from kis_desk.config import UserPaths
    from kis_desk.engine.collector import Collector as EngineCollector, CollectorConfig
    from kis_desk.engine.publisher import PublisherStats

    channel = unique("alerts")
    pub = RedisPublisher(redis_url, channel=channel)
    try:
        assert await pub.start() is True
        for i in range(3):
            pub.publish_alert(make_alert(100 + i))
        await wait_until(lambda: pub.stats().delivered == 3, what="3 delivered")
    finally:
        st = await pub.stop()
    assert isinstance(st, PublisherStats) and dataclasses.is_dataclass(st)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.delivered = 0                                    # type: ignore[misc]
    collector = EngineCollector(CollectorConfig(paths=UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c")))
    collector.publisher = pub
    s = collector.summary()
    assert (s["alerts_delivered"], s["alerts_dropped"], s["alerts_undelivered"]) == (3, 0, 0)
    assert pub.stats_event() == st.event()
    check = aioredis.Redis.from_url(redis_url)
    await check.delete(*[f"{channel}:sent:{make_alert(100 + i).alert_id}" for i in range(3)])
    await check.aclose()
