"""A minimal KIS client built only from ``kis_desk.protocol.codec`` + websockets + aiohttp.

Shared by the simulator tests (no tests here). It deliberately does not use ``kis_desk.feed``:
the simulator is checked against the protocol spec, not against our own client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from kis_desk.market.ticks import is_on_tick
from kis_desk.protocol.codec import (
    build_approval_request,
    build_subscription,
    build_token_request,
    decode_message,
)
from kis_desk.protocol.messages import ControlReply, DataFrame, PingPong, ProtocolError


async def approval_key(rest_url: str, app_key: str = "key1", secret: str = "secret1") -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(rest_url + "/oauth2/Approval",
                             json=build_approval_request(app_key, secret)) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["approval_key"]


async def access_token(rest_url: str, app_key: str = "key1", secret: str = "secret1") -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(rest_url + "/oauth2/tokenP", json=build_token_request(app_key, secret)) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["access_token"]


def rest_headers(token: str, tr_id: str, app_key: str = "key1", secret: str = "secret1") -> dict[str, str]:
    return {"content-type": "application/json; charset=utf-8", "authorization": f"Bearer {token}",
            "appkey": app_key, "appsecret": secret, "tr_id": tr_id, "custtype": "P"}


async def rest_get(http: aiohttp.ClientSession, rest_url: str, path: str, token: str, tr_id: str,
                   params: dict[str, str], **kw: str) -> tuple[int, dict[str, Any]]:
    async with http.get(rest_url + "/uapi/domestic-stock/v1/quotations/" + path, params=params,
                        headers=rest_headers(token, tr_id, **kw)) as r:
        return r.status, await r.json(content_type=None)


async def connect(ws_url: str, **kw: Any) -> ClientConnection:
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    return await websockets.connect(ws_url + "/tryitout", **kw)


async def recv_control(ws: ClientConnection, timeout: float = 5.0,
                       sink: list[DataFrame] | None = None) -> ControlReply:
    """Next control reply; data frames met on the way go to ``sink``."""
    while True:
        m = decode_message(await asyncio.wait_for(ws.recv(), timeout))
        if isinstance(m, ControlReply):
            return m
        if isinstance(m, DataFrame) and sink is not None:
            sink.append(m)


async def subscribe(ws: ClientConnection, key: str, code: str, *, subscribe: bool = True,
                    tr_id: str = "H0STCNT0", sink: list[DataFrame] | None = None) -> ControlReply:
    await ws.send(build_subscription(key, tr_id, code, subscribe=subscribe))
    return await recv_control(ws, sink=sink)


async def drain_until_closed(ws: ClientConnection, timeout: float = 5.0) -> ConnectionClosed:
    """Read until the server closes (or drops) the socket; the close exception."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        return exc
    raise AssertionError("socket stayed open")


def check_record_fields(records: list[Any]) -> None:
    """Field consistency of H0STCNT0 records (kis-protocol.md §6), per code in order."""
    last: dict[str, Any] = {}
    for r in records:
        f = r.fields
        assert len(f) >= 46
        price, prev_close = int(f[2]), int(f[2]) - int(f[4])
        change = int(f[4])
        sign = f[3]
        if change > 0:
            assert sign in ("1", "2"), f
        elif change < 0:
            assert sign in ("4", "5"), f
        else:
            assert sign == "3", f
        assert abs(float(f[5]) - change * 100 / prev_close) <= 0.0051, f
        assert len(f[5].split(".")[1]) == 2
        high, low, opn = int(f[8]), int(f[9]), int(f[7])
        assert high >= price >= low and high >= opn >= low, f
        assert int(f[26]) == price - opn and int(f[29]) == price - high and int(f[32]) == price - low
        for sign_pos, diff_pos in ((25, 26), (28, 29), (31, 32)):
            d = int(f[diff_pos])
            assert f[sign_pos] == ("2" if d > 0 else "5" if d < 0 else "3")
        ask, bid = int(f[10]), int(f[11])
        assert is_on_tick(price) and is_on_tick(ask) and is_on_tick(bid), f
        assert bid < ask and bid <= price <= ask, f
        vol, cum_vol, cum_val = int(f[12]), int(f[13]), int(f[14])
        assert vol >= 1
        assert f[21] in ("1", "5")
        assert int(f[15]) + int(f[16]) >= 1 and int(f[17]) == int(f[16]) - int(f[15])
        assert int(f[19]) + int(f[20]) == cum_vol
        assert abs(float(f[6]) - cum_val / cum_vol) <= 0.0051
        assert len(f[33]) == 8 and f[34] == "20" and f[35] == "N" and f[43] == "0" and f[44] == ""
        assert f[24] <= f[1] and f[27] <= f[1] and f[30] <= f[1]
        upper_ok = prev_close * 13 // 10
        lower_ok = -(-prev_close * 7 // 10)
        assert lower_ok <= price <= upper_ok
        prev = last.get(f[0])
        if prev is not None:
            p = prev.fields
            assert cum_vol == int(p[13]) + vol, (p[13], f[12], f[13])
            assert cum_val == int(p[14]) + price * vol
            assert f[1] >= p[1]
            assert int(f[4]) - int(f[2]) == int(p[4]) - int(p[2])  # same previous close
        last[f[0]] = r


__all__ = ["ControlReply", "DataFrame", "PingPong", "ProtocolError", "access_token", "approval_key",
           "check_record_fields", "connect", "drain_until_closed", "recv_control", "rest_get", "rest_headers", "subscribe"]
