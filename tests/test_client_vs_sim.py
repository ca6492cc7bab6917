"""A client built only from the codec + websockets + aiohttp talks to the simulator over loopback."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosedError

from kis_desk.protocol.codec import build_subscription, decode_message
from kis_desk.protocol.messages import AckKind
from kis_desk.sim import SimConfig, Simulator

from test_sim_support import (
    ControlReply,
    DataFrame,
    PingPong,
    access_token,
    approval_key,
    check_record_fields,
    connect,
    drain_until_closed,
    recv_control,
    rest_get,
    subscribe,
)

HOT = "005930"   # the busiest default symbol


async def test_approval_41_subscriptions_and_42nd_refused():
    cfg = SimConfig(rate=2_000, seed=3, invent_unknown_codes=True)   # the made-up codes trade
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        frames: list[DataFrame] = []
        codes = [f"{100000 + i:06d}" for i in range(41)]   # unknown codes trade too
        pairs = set()
        for code in codes:
            ack = await subscribe(ws, key, code, sink=frames)
            assert ack.kind is AckKind.SUBSCRIBED and ack.rt_cd == "0" and ack.msg_cd == "OPSP0000"
            assert ack.tr_key == code and not ack.encrypt
            assert len(ack.iv) == 16 and len(ack.key) == 32 and ack.key.islower()
            pairs.add((ack.iv, ack.key))
        assert len(pairs) == 41                     # fresh iv/key per ack
        over = await subscribe(ws, key, "005930", sink=frames)
        assert (over.msg_cd, over.rt_cd, over.msg1) == ("OPSP0008", "1", "MAX SUBSCRIBE OVER")
        assert over.tr_id == "H0STCNT0" and over.tr_key == "005930"
        dup = await subscribe(ws, key, codes[0], sink=frames)
        assert (dup.msg_cd, dup.rt_cd, dup.msg1) == ("OPSP0002", "1", "ALREADY IN SUBSCRIBE")
        nf = await subscribe(ws, key, "005930", subscribe=False, sink=frames)
        assert (nf.msg_cd, nf.rt_cd, nf.msg1) == ("OPSP0003", "1", "UNSUBSCRIBE ERROR(not found!)")
        # the session stays up and keeps streaming the accepted codes
        got: set[str] = set()
        for _ in range(400):
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            if isinstance(m, DataFrame):
                got.update(r.fields[0] for r in m.records)
            if len(got) >= 5:
                break
        assert got and got <= set(codes)
        un = await subscribe(ws, key, codes[0], subscribe=False, sink=frames)
        assert (un.msg_cd, un.rt_cd, un.msg1) == ("OPSP0001", "0", "UNSUBSCRIBE SUCCESS")
        # a freed slot can be used again
        again = await subscribe(ws, key, "005930", sink=frames)
        assert again.kind is AckKind.SUBSCRIBED
        bad = await subscribe(ws, "no-such-key", "005930")
        assert (bad.msg_cd, bad.rt_cd, bad.msg1) == ("OPSP0011", "1", "invalid approval : NOT FOUND")
        await ws.close()


async def test_request_validation_errors():
    async with Simulator(SimConfig(rate=100)) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        await ws.send("not json")
        assert (await recv_control(ws)).msg_cd == "OPSP9999"
        await ws.send(build_subscription(key, "H0STCNT0", "12345"))
        assert (await recv_control(ws)).msg_cd == "OPSP8992"
        await ws.send(build_subscription(key, "H0XXXXX0", "005930"))
        assert (await recv_control(ws)).msg_cd == "OPSP8991"
        raw = json.loads(build_subscription(key, "H0STCNT0", "005930"))
        raw["header"]["tr_type"] = "0"
        await ws.send(json.dumps(raw))
        assert (await recv_control(ws)).msg_cd == "OPSP8997"
        # encrypted order-notice TR: acked with encrypt "Y"
        ack = await subscribe(ws, key, "HTSID01", tr_id="H0STCNI0")
        assert ack.kind is AckKind.SUBSCRIBED and ack.encrypt
        await ws.close()


@pytest.mark.parametrize("answer", ["text", "pong"])
async def test_pingpong_answered_keeps_socket_alive(answer):
    cfg = SimConfig(rate=500, ping_interval=0.3, pong_timeout=0.6)
    async with Simulator(cfg) as sim:
        ws = await connect(sim.ws_url)
        pings = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.5     # well past the pong timeout
        while loop.time() < end:
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            m = decode_message(raw)
            assert isinstance(m, PingPong), m
            assert m.datetime_text and len(m.datetime_text) == 14 and m.datetime_text.isdigit()
            pings += 1
            if answer == "text":
                await ws.send(m.raw)
            else:
                await ws.pong(raw.encode())
        assert pings >= 3
        assert sim.stats["pong_timeouts"] == 0
        await ws.send(build_subscription(await approval_key(sim.rest_url), "H0STCNT0", HOT))
        assert (await recv_control(ws)).kind is AckKind.SUBSCRIBED     # still alive
        await ws.close()


async def test_pingpong_unanswered_aborts_socket():
    cfg = SimConfig(rate=100, ping_interval=0.3, pong_timeout=0.5)
    async with Simulator(cfg) as sim:
        ws = await connect(sim.ws_url)
        first = decode_message(await asyncio.wait_for(ws.recv(), 5))
        assert isinstance(first, PingPong)
        exc = await drain_until_closed(ws)
        assert isinstance(exc, ConnectionClosedError) and exc.rcvd is None   # no close frame
        assert sim.stats["pong_timeouts"] == 1


async def test_multi_record_frames_counted_exactly():
    cfg = SimConfig(rate=6_000, seed=11)
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        codes = sim.codes()[:6]
        frames: list[DataFrame] = []
        for code in codes:
            assert (await subscribe(ws, key, code, sink=frames)).kind is AckKind.SUBSCRIBED
        loop = asyncio.get_running_loop()
        end = loop.time() + 1.5
        while loop.time() < end:
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            if isinstance(m, DataFrame):
                frames.append(m)
        for code in codes:          # after each UNSUBSCRIBE ack, nothing more of that code
            assert (await subscribe(ws, key, code, subscribe=False, sink=frames)).msg_cd == "OPSP0001"
        await ws.close()
        records = [r for f in frames for r in f.records]
        assert all(not f.errors and f.declared_count == len(f.records) for f in frames)
        assert max(f.declared_count for f in frames) > 1
        sent = sim.sent_counts()
        label = sim.session_labels()[0]
        for code in codes:
            decoded = [r for r in records if r.fields[0] == code]
            assert len(decoded) == sent[label][code] > 0
            assert [int(r.fields[13]) for r in decoded] == \
                [t.cum_volume for t in sim.sent_trades(code, label)]
        check_record_fields(records)


async def test_second_session_same_app_key_is_refused_and_dropped():
    async with Simulator(SimConfig(rate=1_000)) as sim:
        key1 = await approval_key(sim.rest_url, "keyA", "secretA")
        key2 = await approval_key(sim.rest_url, "keyA", "secretA")   # same app key, new approval
        ws1 = await connect(sim.ws_url)
        assert (await subscribe(ws1, key1, HOT)).kind is AckKind.SUBSCRIBED
        ws2 = await connect(sim.ws_url)
        await ws2.send(build_subscription(key2, "H0STCNT0", HOT))
        reply = decode_message(await asyncio.wait_for(ws2.recv(), 5))
        assert isinstance(reply, ControlReply)
        assert (reply.tr_id, reply.rt_cd, reply.msg_cd, reply.msg1) == \
            ("(null)", "9", "OPSP8996", "ALREADY IN USE appkey")
        exc = await drain_until_closed(ws2)
        assert isinstance(exc, ConnectionClosedError) and exc.rcvd is None
        # the first session is unaffected
        for _ in range(50):
            if isinstance(decode_message(await asyncio.wait_for(ws1.recv(), 5)), DataFrame):
                break
        else:
            raise AssertionError("first session stopped streaming")
        # another app key gets its own session
        key3 = await approval_key(sim.rest_url, "keyB", "secretB")
        ws3 = await connect(sim.ws_url)
        assert (await subscribe(ws3, key3, HOT)).kind is AckKind.SUBSCRIBED
        await ws1.close()
        await ws3.close()


async def _backfill(http, sim, token, code, last_cum, until_hour):
    """Trades after ``last_cum`` up to ``until_hour`` via inquire-time-itemconclusion, oldest first."""
    rows: dict[int, dict] = {}
    hour = until_hour
    while True:
        status, body = await rest_get(http, sim.rest_url, "inquire-time-itemconclusion", token,
                                      "FHPST01060000", {"FID_COND_MRKT_DIV_CODE": "J",
                                                        "FID_INPUT_ISCD": code,
                                                        "FID_INPUT_HOUR_1": hour})
        assert status == 200 and body["rt_cd"] == "0" and body["msg_cd"] == "MCA00000", body
        page = body["output2"]
        assert isinstance(page, list) and isinstance(body["output1"], dict)
        for r in page:
            rows[int(r["acml_vol"])] = r
        if not page or int(page[-1]["acml_vol"]) <= last_cum or len(page) < sim.config.page_size:
            break
        oldest = page[-1]["stck_cntg_hour"]
        hour = f"{int(oldest[:2]) * 3600 + int(oldest[2:4]) * 60 + int(oldest[4:]) - 1:06d}"
        hour = f"{int(hour) // 3600:02d}{int(hour) % 3600 // 60:02d}{int(hour) % 60:02d}"
    return [rows[c] for c in sorted(rows) if c > last_cum]


async def test_backfill_returns_exactly_the_trades_missed_during_a_drop():
    cfg = SimConfig(rate=300, seed=5, page_size=1_000)
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        token = await access_token(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        seen = []
        while len(seen) < 20:
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            if isinstance(m, DataFrame):
                seen.extend(m.records)
        sim.faults.drop_all()
        exc = await drain_until_closed(ws)
        assert exc.rcvd is None
        last_cum = max(int(r.fields[13]) for r in seen)
        await asyncio.sleep(1.2)              # the market keeps trading meanwhile
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        first_new = None
        while first_new is None:
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            if isinstance(m, DataFrame):
                first_new = m.records[0]
        await ws.close()
        new_cum = int(first_new.fields[13]) - int(first_new.fields[12])   # cum before it
        async with aiohttp.ClientSession() as http:
            rows = await _backfill(http, sim, token, HOT, last_cum, first_new.fields[1])
        missed = [r for r in rows if int(r["acml_vol"]) <= new_cum]
        expected = [t for t in sim.history(HOT) if last_cum < t.cum_volume <= new_cum]
        assert len(expected) > 5
        assert [(int(r["acml_vol"]), int(r["cnqn"]), int(r["stck_prpr"]), r["stck_cntg_hour"])
                for r in missed] == [(t.cum_volume, t.volume, t.price, t.time) for t in expected]
        # what the socket carried plus the back-fill is the whole history, without overlap
        received = {int(r.fields[13]) for r in seen}
        filled = {int(r["acml_vol"]) for r in missed}
        assert received.isdisjoint(filled)
        first_seen = min(received)
        assert received | filled == {t.cum_volume for t in sim.history(HOT)
                                     if first_seen <= t.cum_volume <= new_cum}


async def test_faults_are_observable_by_the_client():
    async with Simulator(SimConfig(rate=2_000)) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        # garbage frame → the codec reports a protocol error
        sim.faults.send_garbage()
        for _ in range(500):
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            if not isinstance(m, DataFrame):
                break
        assert type(m).__name__ == "ProtocolError"
        # invalid UTF-8 in a text frame: bytes that do not decode; the codec stays lenient
        sim.faults.send_invalid_utf8()
        for _ in range(500):
            raw = await asyncio.wait_for(ws.recv(decode=False), 5)
            if not raw.startswith(b"0|"):
                break
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        assert type(decode_message(raw)).__name__ == "ProtocolError"
        # stall: the socket stays open but nothing arrives; trading continues
        before = len(sim.history(HOT))
        sim.faults.stall()
        await asyncio.sleep(0.2)
        while True:   # drain what was queued before the stall
            try:
                await asyncio.wait_for(ws.recv(), 0.3)
            except TimeoutError:
                break
        sent_before = sim.sent_counts()[sim.session_labels()[0]].get(HOT, 0)
        await asyncio.sleep(0.5)
        assert len(sim.history(HOT)) > before
        assert sim.sent_counts()[sim.session_labels()[0]].get(HOT, 0) == sent_before
        sim.faults.clear_stall()
        m = decode_message(await asyncio.wait_for(ws.recv(), 5))
        assert isinstance(m, DataFrame)
        await ws.close()
        # oversized frame: a client with a 1 MiB limit fails with 1009
        ws = await connect(sim.ws_url, max_size=2**20)
        await ws.send(build_subscription(key, "H0STCNT0", HOT))
        await asyncio.sleep(0.2)
        sim.faults.send_oversized(2 * 1024 * 1024)
        exc = await drain_until_closed(ws)
        assert exc.sent is not None and exc.sent.code == 1009
        # OPSP8996 on (re)connect for a while
        await asyncio.sleep(0.1)
        sim.faults.reject_sessions(30)
        ws = await connect(sim.ws_url)
        await ws.send(build_subscription(key, "H0STCNT0", HOT))
        reply = decode_message(await asyncio.wait_for(ws.recv(), 5))
        assert isinstance(reply, ControlReply) and reply.msg_cd == "OPSP8996"
        assert (await drain_until_closed(ws)).rcvd is None
        sim.faults.clear()
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        await ws.close()


async def test_slow_consumer_is_dropped_and_counted():
    cfg = SimConfig(rate=20_000, send_queue_limit=50, seed=2)
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url, max_queue=1, close_timeout=0.1)
        for code in sim.codes()[:20]:
            await ws.send(build_subscription(key, "H0STCNT0", code))
        # never read: TCP buffers fill, the send queue overflows, the server drops the socket
        for _ in range(100):
            await asyncio.sleep(0.1)
            if sim.stats["overflow_drops"]:
                break
        assert sim.stats["overflow_drops"] == 1
        assert not sim.sessions()
        await ws.close()     # the client paused reading, so it cannot see the reset: short timeout


async def test_market_hours_closed_still_pings_and_sends_no_trades():
    from datetime import datetime

    from kis_desk.protocol.records import KST

    evening = datetime(2026, 11, 24, 20, 0, 0, tzinfo=KST)
    cfg = SimConfig(rate=5_000, always_open=False, clock=lambda: evening,
                    ping_interval=0.3, pong_timeout=5)
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        kinds = []
        for _ in range(3):
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            kinds.append(type(m).__name__)
            await ws.send(m.raw)
        assert kinds == ["PingPong"] * 3
        assert m.datetime_text == "20261124200000"
        assert sim.history(HOT) == [] and sim.market.generated_total == 0
        await ws.close()


async def test_book_frames_share_the_socket_with_trades():
    async with Simulator(SimConfig(rate=2_000)) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, HOT, tr_id="H0STASP0")).kind is AckKind.SUBSCRIBED
        assert (await subscribe(ws, key, HOT)).kind is AckKind.SUBSCRIBED
        seen = set()
        for _ in range(500):
            m = decode_message(await asyncio.wait_for(ws.recv(), 5))
            if isinstance(m, DataFrame):
                seen.add(m.tr_id)
                if m.tr_id == "H0STASP0":
                    f = m.records[0].fields
                    assert len(f) == 62 and f[0] == HOT
                    assert int(f[3]) > int(f[13]) > 0       # ASKP1 > BIDP1
            if seen == {"H0STCNT0", "H0STASP0"}:
                break
        assert seen == {"H0STCNT0", "H0STASP0"}
        await ws.close()
