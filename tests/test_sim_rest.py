"""The simulator's REST side: OAuth endpoints, quotations, limits, REST faults, and the CLI."""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import pytest

from kis_desk.market.ticks import price_limits, tick_size
from kis_desk.protocol.codec import build_approval_request, build_token_request
from kis_desk.sim import SimConfig, Simulator, add_sim_arguments, run_simulator_cli, sim_main

from test_sim_support import access_token, rest_get

PRICE = "inquire-price"
CCNL = "inquire-ccnl"
ITEM = "inquire-time-itemconclusion"
Q = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


async def test_oauth_endpoints_and_token_rate():
    cfg = SimConfig(rate=100, app_keys={"key1": "secret1"})
    async with Simulator(cfg) as sim, aiohttp.ClientSession() as http:
        async with http.post(sim.rest_url + "/oauth2/Approval",
                             json=build_approval_request("key1", "secret1")) as r:
            key = (await r.json())["approval_key"]
            assert r.status == 200 and len(key) == 36 and key.count("-") == 4
        async with http.post(sim.rest_url + "/oauth2/Approval",
                             json=build_approval_request("nope", "secret1")) as r:
            assert r.status == 403
            assert (await r.json()) == {"error_code": "EGW00103",
                                        "error_description": "유효하지 않은 AppKey입니다."}
        async with http.post(sim.rest_url + "/oauth2/tokenP",
                             json=build_token_request("key1", "wrong")) as r:
            assert r.status == 403 and (await r.json())["error_code"] == "EGW00105"
        async with http.post(sim.rest_url + "/oauth2/tokenP",
                             json=build_token_request("key1", "secret1")) as r:
            body = await r.json()
            assert r.status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 86400
            assert len(body["access_token_token_expired"]) == 19
        async with http.post(sim.rest_url + "/oauth2/tokenP",
                             json=build_token_request("key1", "secret1")) as r:
            assert r.status == 403 and (await r.json())["error_code"] == "EGW00133"


async def test_quotations_served_from_history():
    # invent_unknown_codes: the unlisted Q500001 below is asked to trade
    async with Simulator(SimConfig(rate=3_000, seed=4, invent_unknown_codes=True)) as sim, \
            aiohttp.ClientSession() as http:
        token = await access_token(sim.rest_url)
        await asyncio.sleep(0.5)
        status, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100", Q)
        assert status == 200 and (body["rt_cd"], body["msg_cd"], body["msg1"]) == \
            ("0", "MCA00000", "정상처리 되었습니다.")
        out = body["output"]
        assert all(isinstance(v, str) for v in out.values())
        hist = sim.history("005930")
        assert int(out["acml_vol"]) >= hist[-1].cum_volume > 0
        price = int(out["stck_prpr"])
        assert int(out["aspr_unit"]) == tick_size(price) and out["stck_shrn_iscd"] == "005930"
        prev = sim.market.get("005930").prev_close
        assert (int(out["stck_mxpr"]), int(out["stck_llam"])) == price_limits(prev)
        assert out["stck_sdpr"] == str(prev) and int(out["prdy_vrss"]) == price - prev
        assert int(out["stck_hgpr"]) >= price >= int(out["stck_lwpr"])
        status, body = await rest_get(http, sim.rest_url, CCNL, token, "FHKST01010300", Q)
        rows = body["output"]
        assert status == 200 and len(rows) == 30
        cums = [r["acml_vol"] for r in rows] if "acml_vol" in rows[0] else None
        assert cums is None
        hist = sim.history("005930")
        newest = {(t.time, str(t.price), str(t.volume)) for t in hist[-200:]}
        assert all((r["stck_cntg_hour"], r["stck_prpr"], r["cntg_vol"]) in newest for r in rows)
        assert [r["stck_cntg_hour"] for r in rows] == sorted((r["stck_cntg_hour"] for r in rows), reverse=True)
        # time-itemconclusion: rows at or before the hour, newest first, exactly the history
        hour = hist[len(hist) // 2].time
        status, body = await rest_get(http, sim.rest_url, ITEM, token, "FHPST01060000",
                                      {**Q, "FID_INPUT_HOUR_1": hour})
        rows = body["output2"]
        assert status == 200 and isinstance(rows, list) and 0 < len(rows) <= 100
        expected = [t for t in sim.history("005930") if t.time <= hour][-len(rows):][::-1]
        assert [(r["stck_cntg_hour"], int(r["stck_prpr"]), int(r["acml_vol"]), int(r["cnqn"]),
                 int(r["askp"]), int(r["bidp"])) for r in rows] == \
            [(t.time, t.price, t.cum_volume, t.volume, t.ask, t.bid) for t in expected]
        assert set(body["output1"]) >= {"stck_prpr", "prdy_vrss", "prdy_vrss_sign", "prdy_ctrt",
                                        "acml_vol", "prdy_vol", "rprs_mrkt_kor_name"}
        # unknown but well-formed code: it starts trading; malformed code: KIS-like error
        status, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100",
                                      {**Q, "FID_INPUT_ISCD": "Q500001"})
        assert status == 200 and body["rt_cd"] == "0" and "Q500001" in sim.codes()
        status, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100",
                                      {**Q, "FID_INPUT_ISCD": "59"})
        assert body["rt_cd"] == "1"


async def test_auth_errors_and_rate_limit():
    async with Simulator(SimConfig(rate=100, mode="mock")) as sim, aiohttp.ClientSession() as http:
        token = await access_token(sim.rest_url)
        status, body = await rest_get(http, sim.rest_url, PRICE, "bogus", "FHKST01010100", Q)
        assert status == 500 and (body["rt_cd"], body["msg_cd"]) == ("1", "EGW00121")
        status, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100", Q,
                                      app_key="other")
        assert body["rt_cd"] == "1" and body["msg_cd"] == "EGW00103"
        await asyncio.sleep(1.05)           # a fresh one-second window
        results = await asyncio.gather(*(rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100", Q)
                                         for _ in range(6)))
        ok = [b for s, b in results if s == 200 and b["rt_cd"] == "0"]
        limited = [b for s, b in results if s == 500]
        assert len(ok) == 2 and len(limited) == 4
        assert limited[0] == {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}


async def test_rest_faults():
    async with Simulator(SimConfig(rate=100)) as sim, aiohttp.ClientSession() as http:
        token = await access_token(sim.rest_url)
        sim.faults.fail_rest(30)
        status, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100", Q)
        assert status == 500 and body["rt_cd"] == "1"
        sim.faults.clear()
        sim.faults.slow_rest(1.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100", Q), 0.3)
        sim.faults.clear()
        status, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100", Q)
        assert status == 200 and body["rt_cd"] == "0"


async def test_jump_visible_in_quotes():
    async with Simulator(SimConfig(rate=2_000, codes=("005930", "000660"))) as sim, \
            aiohttp.ClientSession() as http:
        token = await access_token(sim.rest_url)
        sim.jump("000660", pct=8.0, over_seconds=0.5)
        await asyncio.sleep(1.0)
        _, body = await rest_get(http, sim.rest_url, PRICE, token, "FHKST01010100",
                                 {**Q, "FID_INPUT_ISCD": "000660"})
        assert float(body["output"]["prdy_ctrt"]) > 5.0


def test_cli_arguments_and_bad_codes(capsys):
    parser = argparse.ArgumentParser()
    add_sim_arguments(parser)
    args = parser.parse_args(["--ws-port", "0", "--rest-port", "0", "--rate", "50",
                              "--codes", "005930,XYZ"])
    assert sim_main(args) == 2
    assert "XYZ" in capsys.readouterr().err


async def test_run_simulator_cli_prints_urls(capsys):
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulator_cli(0, 0, 50.0, ["005930"], stop=stop))
    for _ in range(100):
        await asyncio.sleep(0.05)
        out = capsys.readouterr().out
        if "REST" in out:
            break
    assert "ws://127.0.0.1:" in out and "http://127.0.0.1:" in out
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_configured_jump_and_slot_hold():
    from kis_desk.sim import JumpSpec
    from kis_desk.protocol.codec import build_subscription
    from kis_desk.protocol.messages import AckKind

    from test_sim_support import approval_key, connect, recv_control, subscribe

    cfg = SimConfig(rate=2_000, codes=("005930", "000660"), slot_hold_seconds=30,
                    jumps=(JumpSpec("000660", -9.0, over_seconds=0.3, after_seconds=0.1),))
    async with Simulator(cfg) as sim:
        key = await approval_key(sim.rest_url)
        ws = await connect(sim.ws_url)
        assert (await subscribe(ws, key, "005930")).kind is AckKind.SUBSCRIBED
        await asyncio.sleep(0.8)
        assert sim.history("000660")[-1].price <= sim.market.get("000660").prev_close * 0.94
        # after an abrupt end the app key stays "in use" for slot_hold_seconds
        sim.faults.drop_all()
        ws = await connect(sim.ws_url)
        await ws.send(build_subscription(key, "H0STCNT0", "005930"))
        assert (await recv_control(ws)).msg_cd == "OPSP8996"
