"""Access tokens survive restarts, encrypted: no second issue within a minute, nothing in plain text."""

from __future__ import annotations

import asyncio
import time

from kis_desk.config import AppCredential, Secret, custom_environment
from kis_desk.feed import KisRestClient
from kis_desk.feed.token_cache import CachedToken, EncryptedTokenCache
from kis_desk.sim import SimConfig, Simulator

ENDPOINT = "https://openapi.example:9443"


def cred(secret: str = "secret-A1") -> AppCredential:
    return AppCredential("key1", Secret("APPKEY-123"), Secret(secret))


def test_round_trip_and_ciphertext_only(tmp_path):
    cache = EncryptedTokenCache(tmp_path)
    token = CachedToken("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.secret-token", time.time() + 86000)
    cache.save(ENDPOINT, cred(), token)
    [path] = list(tmp_path.iterdir())
    blob = path.read_bytes()
    for secret in (b"secret-token", b"APPKEY-123", b"secret-A1", b"eyJ0"):
        assert secret not in blob and secret not in path.name.encode()
    assert cache.load(ENDPOINT, cred()) == token
    assert cache.load("https://other:9443", cred()) is None          # per endpoint
    assert cache.load(ENDPOINT, cred("changed-secret")) is None        # key derived from the secret
    cache.clear(ENDPOINT, cred())
    assert cache.load(ENDPOINT, cred()) is None


def test_nearly_expired_or_corrupt_tokens_are_not_reused(tmp_path):
    cache = EncryptedTokenCache(tmp_path)
    cache.save(ENDPOINT, cred(), CachedToken("t", time.time() + 60))
    assert cache.load(ENDPOINT, cred()) is None
    cache.save(ENDPOINT, cred(), CachedToken("t", time.time() + 86000))
    [path] = list(tmp_path.iterdir())
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    assert cache.load(ENDPOINT, cred()) is None


async def test_token_reused_across_two_restarts_within_a_minute(tmp_path):
    """Three client lifetimes in a few seconds: one token issue, no EGW00133 wait, quotes work."""
    async with Simulator(SimConfig(codes=["005930"], rate=50.0)) as sim:
        env = custom_environment(sim.ws_url, sim.rest_url, 19.0, "sim")
        credential = AppCredential("key1", Secret("app1"), Secret("secret1"))
        issued = []
        started = time.monotonic()
        for _run in range(3):
            async with KisRestClient(env, credential, token_retry_wait=30.0,
                                     token_cache=EncryptedTokenCache(tmp_path)) as rest:
                await asyncio.sleep(0.2)
                quote = await rest.inquire_price("005930")
                assert quote.code == "005930" and quote.price > 0
                issued.append(rest.tokens_issued)
        assert issued == [1, 0, 0]
        assert time.monotonic() - started < 20      # never waited out the 1/min token limit


async def test_collector_restarts_reuse_the_kept_token(tmp_path):
    """Three collector runs against one KIS-compatible server within seconds: the first issues
    the access token, the next two reuse it (no EGW00133 wait, no notification to the holder)."""
    from kis_desk.config import UserPaths
    from kis_desk.engine.collector import CollectorConfig
    from kis_desk.wiring import build_collector

    async with Simulator(SimConfig(codes=["005930", "000660"], rate=100.0)) as sim:
        credentials = [AppCredential("key1", Secret("app1"), Secret("secret1"))]
        paths = UserPaths(tmp_path / "d", tmp_path / "l", tmp_path / "c")
        issued_at = []
        started = time.monotonic()
        for _run in range(3):
            collector = build_collector(CollectorConfig(
                env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, credentials=credentials,
                codes=["005930", "000660"], paths=paths, db_url=f"sqlite:///{tmp_path / 't.db'}"))
            before = sim.stats["rest_requests"]
            await collector.start()
            try:     # a drop makes the feed back-fill: quotation calls, which need the token
                deadline = time.monotonic() + 15
                while not collector.feed.all_live() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)
                sim.faults.drop_all()
                while sim.stats["rest_requests"] < before + 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                assert sim.stats["rest_requests"] >= before + 3
            finally:
                await collector.stop()
            issued_at.append(sim.stats["token_requests"])
        assert issued_at == [1, 1, 1] and sim.stats["tokens_issued"] == 1   # one issue, reused twice
        assert list(paths.token_dir.iterdir())                    # kept, encrypted (see above)
        assert time.monotonic() - started < 45
