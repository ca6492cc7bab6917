"""A minimal KIS-speaking server that replays pre-built trade frames, for throughput benchmarks.

The simulator generates a believable market in real time; to measure how fast a *consumer* is,
we need a producer that is not the bottleneck. This server speaks just enough of the protocol
(approval, token, subscribe acks, empty back-fill) and then sends a fixed list of frames either
as fast as the socket takes them or paced at a given rate, recording when each frame went out.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Sequence
from datetime import datetime

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from kis_desk.protocol.codec import build_control_reply, build_data_frame
from kis_desk.protocol.records import KST

TEMPLATE = ("005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^"
            "607878273600^25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^"
            "5^-300^100741^2^400^20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^"
            "^62700").split("^")


def make_frames(codes: Sequence[str], n_trades: int, *, seed: int = 7, max_batch: int = 10
                ) -> list[tuple[str, int]]:
    """Frames of today's trades over ``codes`` (1..max_batch records each); (frame, n_records)."""
    rng = random.Random(seed)
    today = datetime.now(KST).strftime("%Y%m%d")
    hhmmss = datetime.now(KST).strftime("%H%M%S")
    cum = {c: 1_000_000 for c in codes}
    price = {c: 50_000 + 100 * i for i, c in enumerate(codes)}
    frames: list[tuple[str, int]] = []
    made = 0
    while made < n_trades:
        code = rng.choice(codes)
        k = min(rng.choice((1, 1, 1, 2, 3, 5, max_batch)), n_trades - made)
        records = []
        for _ in range(k):
            vol = rng.randint(1, 500)
            cum[code] += vol
            price[code] += rng.choice((-100, 0, 100))
            f = list(TEMPLATE)
            f[0], f[1], f[2], f[12], f[13], f[33] = code, hhmmss, str(price[code]), str(vol), str(cum[code]), today
            records.append(f)
        frames.append((build_data_frame("H0STCNT0", records), k))
        made += k
    return frames


class BurstServer:
    def __init__(self, frames: list[tuple[str, int]], *, rate: float | None = None,
                 expected_subscriptions: int = 1) -> None:
        self.frames = frames
        self.rate = rate                      # trades/s, None = as fast as possible
        self.expected_subscriptions = expected_subscriptions
        self.sent_at: list[float] = []        # wall time each frame was handed to the socket
        self.done = asyncio.Event()
        self._ws_server = None
        self._runner: web.AppRunner | None = None
        self.ws_url = self.rest_url = ""

    async def start(self) -> None:
        self._ws_server = await serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None,
                                      ping_interval=None)
        port = self._ws_server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://127.0.0.1:{port}"
        app = web.Application()
        app.router.add_post("/oauth2/Approval", self._approval)
        app.router.add_post("/oauth2/tokenP", self._token)
        app.router.add_get("/uapi/domestic-stock/v1/quotations/{name}", self._quote)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        rport = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.rest_url = f"http://127.0.0.1:{rport}"

    async def stop(self) -> None:
        if self._ws_server is not None:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _approval(self, request: web.Request) -> web.Response:
        return web.json_response({"approval_key": str(uuid.uuid4())})

    async def _token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": uuid.uuid4().hex, "token_type": "Bearer",
                                  "expires_in": 86400,
                                  "access_token_token_expired": "2099-12-31 23:59:59"})

    async def _quote(self, request: web.Request) -> web.Response:
        ok = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다."}
        return web.json_response({**ok, "output": {}, "output1": {}, "output2": []})

    async def _handle(self, ws: ServerConnection) -> None:
        subscribed = 0
        async for message in ws:
            req = json.loads(message)
            body = req["body"]["input"]
            await ws.send(build_control_reply(body["tr_id"], body["tr_key"], "0", "OPSP0000",
                                              "SUBSCRIBE SUCCESS", iv="0123456789abcdef",
                                              key="abcdefghijklmnopqrstuvwxyzabcdef"))
            subscribed += 1
            if subscribed == self.expected_subscriptions:
                asyncio.create_task(self._blast(ws))

    async def _blast(self, ws: ServerConnection) -> None:
        start = time.perf_counter()
        sent_trades = 0
        for frame, k in self.frames:
            if self.rate:
                due = start + sent_trades / self.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.sent_at.append(time.time())
            await ws.send(frame)
            sent_trades += k
        self.done.set()


def _serve_in_child(conn, frames: list[tuple[str, int]], rate: float | None,
                    expected_subscriptions: int) -> None:
    """Child process body of :class:`ProcessBurstServer`."""

    async def main() -> None:
        server = BurstServer(frames, rate=rate, expected_subscriptions=expected_subscriptions)
        await server.start()
        conn.send((server.ws_url, server.rest_url))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)        # "stop"
        await server.stop()
        conn.send(server.sent_at)

    asyncio.run(main())


class ProcessBurstServer:
    """:class:`BurstServer` in its own process: the producer's CPU work (framing, sending) then
    does not run on the consumer's event loop thread, as with a real remote server."""

    def __init__(self, frames: list[tuple[str, int]], *, rate: float | None = None,
                 expected_subscriptions: int = 1) -> None:
        import multiprocessing

        self._ctx = multiprocessing.get_context("spawn")
        self._args = (frames, rate, expected_subscriptions)
        self._proc = None
        self._conn = None
        self.sent_at: list[float] = []
        self.ws_url = self.rest_url = ""

    async def start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._conn = parent
        self._proc = self._ctx.Process(target=_serve_in_child, args=(child, *self._args), daemon=True)
        self._proc.start()
        self.ws_url, self.rest_url = await asyncio.to_thread(parent.recv)

    async def stop(self) -> None:
        if self._proc is None:
            return
        try:
            self._conn.send("stop")
            self.sent_at = await asyncio.to_thread(self._conn.recv)
        finally:
            await asyncio.to_thread(self._proc.join, 10)
            self._proc = None
