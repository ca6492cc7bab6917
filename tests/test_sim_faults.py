"""Per-app-key faults (for the failover work): one key's sessions are refused, stalled, dropped or
its credentials made invalid, and the other key is unaffected. Client: the codec-only one."""

from __future__ import annotations

import asyncio

import aiohttp

from kis_desk.protocol.codec import build_approval_request, build_subscription, build_token_request, decode_message
from kis_desk.protocol.messages import AckKind
from kis_desk.sim import SimConfig, Simulator

from test_sim_support import (ControlReply, DataFrame, PingPong, access_token, approval_key, connect,
                             drain_until_closed, rest_get, subscribe)

HOT = "005930"
SILENT_TR = "H0STANC0"    # acknowledged, never streams: an idle session
KEYS = {"key1": "secret1", "key2": "secret2"}
PRICE_Q = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": HOT}


async def _approvals(sim: Simulator) -> dict[str, str]:
    return {k: await approval_key(sim.rest_url, k, s) for k, s in KEYS.items()}


async def _next_data(ws, timeout: float = 5.0) -> DataFrame:
    while True:
        m = decode_message(await asyncio.wait_for(ws.recv(), timeout))
        if isinstance(m, DataFrame):
            return m


async def _silent_for(ws, seconds: float) -> list[object]:
    """Whatever arrives within ``seconds`` (decoded)."""
    got: list[object] = []
    try:
        while True:
            got.append(decode_message(await asyncio.wait_for(ws.recv(), seconds)))
    except TimeoutError:
        return got


async def _both_subscribed(sim: Simulator, tr_id: str = "H0STCNT0"):
    """One session per key, each registered for HOT."""
    keys = await _approvals(sim)
    ws1, ws2 = await _connect(sim), await _connect(sim)
    assert (await subscribe(ws1, keys["key1"], HOT, tr_id=tr_id)).kind is AckKind.SUBSCRIBED
    assert (await subscribe(ws2, keys["key2"], HOT, tr_id=tr_id)).kind is AckKind.SUBSCRIBED
    return ws1, ws2


def _connect(sim: Simulator):
    """A client that does not wait long for the close handshake behind unread trades."""
    return connect(sim.ws_url, close_timeout=0.5)


def _label_of(sim: Simulator, app_key: str) -> str:
    (label,) = [s["label"] for s in sim.sessions() if s["app_key"] == app_key]
    return label


async def test_reject_sessions_for_one_app_key_only():
    async with Simulator(SimConfig(rate=1_000, seed=2)) as sim:
        keys = await _approvals(sim)
        sim.faults.reject_sessions(30, app_key="key1")
        assert sim.faults.rejecting_for("key1") and not sim.faults.rejecting_for("key2")
        assert not sim.faults.rejecting          # not every key
        ws1 = await _connect(sim)
        await ws1.send(build_subscription(keys["key1"], "H0STCNT0", HOT))
        reply = decode_message(await asyncio.wait_for(ws1.recv(), 5))
        assert isinstance(reply, ControlReply)
        assert (reply.msg_cd, reply.rt_cd, reply.msg1) == ("OPSP8996", "9", "ALREADY IN USE appkey")
        assert (await drain_until_closed(ws1)).rcvd is None
        ws2 = await _connect(sim)
        assert (await subscribe(ws2, keys["key2"], HOT)).kind is AckKind.SUBSCRIBED
        assert (await _next_data(ws2)).tr_id == "H0STCNT0"
        assert sim.stats["rejected_8996"] == 1
        # the window ends: key1 gets in again (compressed time)
        sim.faults.reject_sessions(0.3, app_key="key1")
        await asyncio.sleep(0.4)
        ws1 = await _connect(sim)
        assert (await subscribe(ws1, keys["key1"], HOT)).kind is AckKind.SUBSCRIBED
        assert {s["app_key"] for s in sim.sessions()} == {"key1", "key2"}
        await ws1.close()
        await ws2.close()


async def test_stall_one_app_key_sends_it_nothing_while_the_other_streams():
    async with Simulator(SimConfig(rate=2_000, seed=3)) as sim:
        ws1, ws2 = await _both_subscribed(sim)
        await _next_data(ws1)
        sim.faults.stall(1.5, app_key="key1")
        assert sim.faults.stalled_for("key1") and not sim.faults.stalled_for("key2")
        assert not sim.faults.stalled                     # not every key
        await _silent_for(ws1, 0.3)                       # what was on the wire before the stall
        label1, label2 = _label_of(sim, "key1"), _label_of(sim, "key2")
        sent1, sent2 = sim.sent_counts()[label1].get(HOT, 0), sim.sent_counts()[label2].get(HOT, 0)
        history_before = len(sim.history(HOT))
        assert await _silent_for(ws1, 0.5) == []          # open, but nothing arrives
        assert sim.sent_counts()[label1].get(HOT, 0) == sent1
        for _ in range(3):                                # key2 streams meanwhile
            await _next_data(ws2)
        assert sim.sent_counts()[label2].get(HOT, 0) > sent2
        assert len(sim.history(HOT)) > history_before    # and the market trades on
        # the stall ends by itself; key1 streams again
        frame = await _next_data(ws1, timeout=5)
        assert not sim.faults.stalled_for("key1")
        assert frame.tr_id == "H0STCNT0"
        await ws1.close()
        await ws2.close()


async def test_stall_one_app_key_suppresses_its_pingpong_only():
    async with Simulator(SimConfig(rate=100, ping_interval=0.2, pong_timeout=60)) as sim:
        ws1, ws2 = await _both_subscribed(sim, SILENT_TR)
        sim.faults.stall(None, app_key="key1")            # until cleared
        got1, got2 = await asyncio.gather(_silent_for(ws1, 1.0), _silent_for(ws2, 1.0))
        assert got1 == []
        assert got2 and all(isinstance(m, PingPong) for m in got2)
        pings = {s["app_key"]: s["pings_sent"] for s in sim.sessions()}
        assert pings["key1"] == 0 and pings["key2"] >= 1
        sim.faults.clear_stall("key1")
        m = decode_message(await asyncio.wait_for(ws1.recv(), 5))
        assert isinstance(m, PingPong)                    # the idle clock restarted at the clear
        await ws1.close()
        await ws2.close()


async def test_drop_one_app_key_leaves_the_other_streaming():
    async with Simulator(SimConfig(rate=1_000, seed=4)) as sim:
        ws1, ws2 = await _both_subscribed(sim)
        assert sim.faults.drop(app_key="key1") == 1
        exc = await drain_until_closed(ws1)
        assert exc.rcvd is None                           # abrupt: no close frame
        assert [s["app_key"] for s in sim.sessions()] == ["key2"]
        for _ in range(3):
            await _next_data(ws2)
        assert sim.faults.drop(app_key="nobody") == 0
        await ws2.close()


async def _post(http: aiohttp.ClientSession, url: str, body: dict) -> tuple[int, dict]:
    async with http.post(url, json=body) as r:
        return r.status, await r.json(content_type=None)


BAD_KEY = {"error_code": "EGW00103", "error_description": "유효하지 않은 AppKey입니다."}


async def test_reject_key_refuses_one_app_key_with_the_kis_error_others_work():
    async with Simulator(SimConfig(rate=500, app_keys=KEYS, token_min_interval=0)) as sim, \
            aiohttp.ClientSession() as http:
        keys = await _approvals(sim)
        token1 = await access_token(sim.rest_url, "key1", "secret1")
        sim.faults.reject_key("key1")
        assert sim.faults.key_rejected("key1") and not sim.faults.key_rejected("key2")
        # approval and token: HTTP 403 with the real wrong-app-key body
        assert await _post(http, sim.rest_url + "/oauth2/Approval",
                           build_approval_request("key1", "secret1")) == (403, BAD_KEY)
        assert await _post(http, sim.rest_url + "/oauth2/tokenP",
                           build_token_request("key1", "secret1")) == (403, BAD_KEY)
        status, body = await _post(http, sim.rest_url + "/oauth2/Approval",
                                   build_approval_request("key2", "secret2"))
        assert status == 200 and len(body["approval_key"]) == 36
        token2 = await access_token(sim.rest_url, "key2", "secret2")
        # quotations: key1's earlier token is refused like a wrong key, key2's works
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token1, "FHKST01010100",
                                      PRICE_Q, app_key="key1", secret="secret1")
        assert status == 500 and (body["rt_cd"], body["msg_cd"]) == ("1", "EGW00103")
        status, body = await rest_get(http, sim.rest_url, "inquire-price", token2, "FHKST01010100",
                                      PRICE_Q, app_key="key2", secret="secret2")
        assert status == 200 and body["rt_cd"] == "0"
        # WebSocket: key1's approval key is gone (OPSP0011); key2 subscribes
        ws1, ws2 = await _connect(sim), await _connect(sim)
        refused = await subscribe(ws1, keys["key1"], HOT)
        assert (refused.msg_cd, refused.rt_cd) == ("OPSP0011", "1")
        assert (await subscribe(ws2, keys["key2"], HOT)).kind is AckKind.SUBSCRIBED
        await _next_data(ws2)
        # accepted again
        sim.faults.accept_key("key1")
        key1_again = await approval_key(sim.rest_url, "key1", "secret1")
        assert (await subscribe(ws1, key1_again, HOT)).kind is AckKind.SUBSCRIBED
        await ws1.close()
        await ws2.close()


async def test_rejected_app_keys_in_the_config_stay_rejected():
    cfg = SimConfig(rate=100, rejected_app_keys=frozenset({"key1"}))
    async with Simulator(cfg) as sim, aiohttp.ClientSession() as http:
        assert await _post(http, sim.rest_url + "/oauth2/Approval",
                           build_approval_request("key1", "secret1")) == (403, BAD_KEY)
        sim.faults.clear()                                # run-time faults only
        assert await _post(http, sim.rest_url + "/oauth2/tokenP",
                           build_token_request("key1", "secret1")) == (403, BAD_KEY)
        ws = await _connect(sim)
        key2 = await approval_key(sim.rest_url, "key2", "secret2")
        assert (await subscribe(ws, key2, HOT)).kind is AckKind.SUBSCRIBED
        await ws.close()
