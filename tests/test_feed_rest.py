"""KisRestClient and Backfiller against the simulator's REST server."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kis_desk.config import AppCredential, Secret, custom_environment
from kis_desk.feed import Backfiller, CredentialError, KisRestClient, RateLimiter
from kis_desk.feed.poller import Poller
from kis_desk.sim import SimConfig, Simulator

CODES = ["005930", "000660", "035420"]


def cred(key: str = "app1", secret: str = "secret1", label: str = "key1") -> AppCredential:
    return AppCredential(label, Secret(key), Secret(secret))


def env_for(sim: Simulator, rate: float = 19.0):
    return custom_environment(sim.ws_url, sim.rest_url, rate, "sim")


async def test_approval_token_and_quotations():
    async with Simulator(SimConfig(codes=CODES, rate=300.0)) as sim:
        await asyncio.sleep(0.5)
        async with KisRestClient(env_for(sim), cred()) as rest:
            key = await rest.approval_key()
            assert len(key) == 36 and await rest.approval_key() == key       # cached
            assert await rest.approval_key(refresh=True) != key
            token = await rest.access_token()
            before = sim.stats["rest_requests"]
            assert await rest.access_token() == token                         # cached for the day
            assert sim.stats["rest_requests"] == before
            q = await rest.inquire_price("005930")
            hist = sim.history("005930")
            assert q.code == "005930" and q.cum_volume >= hist[-1].cum_volume and q.price > 0
            page = await rest.inquire_time_itemconclusion("005930", "235959")
            assert page.rows and page.rows[0].cum_volume >= page.rows[-1].cum_volume   # newest first
            by_cum = {t.cum_volume: t for t in sim.history("005930")}
            for r in page.rows:
                t = by_cum[r.cum_volume]
                assert (r.hhmmss, r.price, r.volume) == (t.time, t.price, t.volume)
            ccnl = await rest.inquire_ccnl("005930")
            assert 0 < len(ccnl) <= 30 and all(r.cum_volume is None for r in ccnl)


async def test_wrong_key_and_secret_raise_credential_error_without_the_secret(caplog):
    caplog.set_level(logging.DEBUG)
    async with Simulator(SimConfig(codes=CODES, rate=10.0, app_keys={"good": "s3cr3t-good"})) as sim:
        async with KisRestClient(env_for(sim), cred("bad", "s3cr3t-bad")) as rest:
            with pytest.raises(CredentialError, match=r"app key/secret rejected by KIS \(EGW00103"):
                await rest.approval_key()
            with pytest.raises(CredentialError, match="EGW00103"):
                await rest.access_token()
        async with KisRestClient(env_for(sim), cred("good", "wrong-secret")) as rest:
            with pytest.raises(CredentialError, match="EGW00105") as info:
                await rest.approval_key()
            assert "wrong-secret" not in str(info.value) and "good" not in str(info.value).split("(")[0]
        assert "s3cr3t" not in caplog.text and "wrong-secret" not in caplog.text


async def test_token_rate_limit_waits_instead_of_hammering():
    async with Simulator(SimConfig(codes=CODES, rate=10.0, token_min_interval=0.6)) as sim:
        env = env_for(sim)
        async with KisRestClient(env, cred()) as a, \
                KisRestClient(env, cred(), token_retry_wait=0.7) as b:
            await a.access_token()
            before = sim.stats["rest_requests"]
            token = await b.access_token(refresh=True)      # EGW00133 once, waits, then succeeds
            assert token
            assert sim.stats["rest_requests"] - before == 2  # one refusal, one success: no hammering


async def test_rate_limit_egw00201_is_waited_out():
    async with Simulator(SimConfig(codes=CODES, rate=10.0, mode="mock")) as sim:
        # a limiter far above the mock's 2/s: the server refuses, the client waits and retries
        async with KisRestClient(env_for(sim), cred(), limiter=RateLimiter(50.0),
                                 rate_limit_wait=0.5) as rest:
            quotes = await asyncio.gather(*(rest.inquire_price(c) for c in CODES * 2))
            assert len(quotes) == 6 and rest.rate_limited > 0
        # the environment's own rate (1.8/s for mock) never trips it
        async with KisRestClient(env_for(sim, 1.8), cred("app2")) as rest:
            await asyncio.gather(*(rest.inquire_price(c) for c in CODES))
            assert rest.rate_limited == 0


@pytest.mark.parametrize("rate,seconds", [(150.0, 2.5), (8.0, 4.0)])
async def test_backfiller_pages_back_and_accounts_for_every_trade(rate, seconds):
    # 150/s with 7-row pages: nearly every second overflows a page; 8/s: most seconds fit
    async with Simulator(SimConfig(codes=["005930"], rate=rate, page_size=7)) as sim:
        await asyncio.sleep(seconds)
        sim.faults.stall(None)
        hist = sim.history("005930")
        assert len(hist) > 20
        after = hist[len(hist) // 4].cum_volume
        async with KisRestClient(env_for(sim), cred()) as rest:
            bf = Backfiller()
            r = await bf.fill(rest, "005930", hist[0].timestamp.date(), after_cum=after)
        assert r.pages > 1
        assert r.reached or r.gaps        # either it got back to `after`, or it says what it missed
        got = {t.cum_volume for t in r.ticks}
        newest = max(got)   # trades keep coming while we page; compare up to the newest fetched
        want = [t for t in sim.history("005930") if after < t.cum_volume <= newest]
        missing = [t for t in want if t.cum_volume not in got]
        # every trade is either recovered or inside a reported gap — exactly
        assert sum(t.volume for t in missing) == r.gap_volume
        assert [t.cum_volume for t in r.ticks] == sorted(got)
        assert all(t.source == "backfill" for t in r.ticks)
        for t in r.ticks:
            h = next(x for x in want if x.cum_volume == t.cum_volume)
            assert (t.timestamp, t.price, t.volume) == (h.timestamp, h.price, h.volume)


async def test_price_mode_poller_emits_one_aggregated_tick_per_poll():
    async with Simulator(SimConfig(codes=["005930"], rate=200.0)) as sim:
        async with KisRestClient(env_for(sim), cred()) as rest:
            emitted: list[tuple[list, str, int]] = []
            last: dict[str, int] = {}

            def emit(ticks, code, newest):
                emitted.append((ticks, code, newest))
                last[code] = newest

            p = Poller(rest, Backfiller(), emit=emit, last_cum=last.get,
                       business_date=lambda: sim.history("005930")[0].timestamp.date(), mode="price")
            assert await p.poll_once("005930") == []       # baseline only
            await asyncio.sleep(0.5)
            ticks = await p.poll_once("005930")
            assert len(ticks) == 1 and ticks[0].source == "poll"
            assert ticks[0].volume == ticks[0].cum_volume - emitted[0][2] > 0


async def test_trades_poller_hands_what_its_page_bound_cannot_reach_to_the_back_fill():
    """A busy symbol polled after seconds without data: the poll's page bound stops short of
    the last trade held. Those trades are still on the server — handed to the back-fill, not
    counted as an unrecoverable gap (they were lost for good before; found end to end in
    tests/test_alert_completeness.py)."""
    async with Simulator(SimConfig(codes=["005930"], rate=400.0, page_size=30)) as sim:
        async with KisRestClient(env_for(sim), cred()) as rest:
            await asyncio.sleep(1.5)
            hist = sim.history("005930")
            assert len(hist) > 120
            after = hist[0].cum_volume
            requested: list[tuple[str, int]] = []
            emitted: list[tuple[list, str, int]] = []
            p = Poller(rest, Backfiller(), emit=lambda t, c, n: emitted.append((t, c, n)),
                       last_cum=lambda code: after,
                       business_date=lambda: hist[0].timestamp.date(), max_pages_per_poll=1,
                       request_backfill=lambda code, cum: requested.append((code, cum)))
            ticks = await p.poll_once("005930")
    assert ticks and ticks[0].cum_volume - ticks[0].volume > after   # the page did not reach it
    assert requested == [("005930", after)]
    assert p.gaps == 0 and p.gap_volume == 0


async def test_an_empty_page_while_the_day_counts_more_than_we_hold_is_a_gap():
    """A day the server resumed at cumulative volume 5,000 (a restarted simulator, or any
    server missing the earlier trades) and nothing traded since: no row, but ``acml_vol`` says
    5,000. From 4,200 that is a break of 800 shares — reported, not read as "nothing missed"
    (which hid a restart's unfillable hole: the restart-quiet race). From 5,000 nothing is missing."""
    from datetime import datetime

    from kis_desk.protocol.records import KST

    today = datetime.now(KST)
    resume = {"005930": (today.strftime("%Y%m%d"), 70_000, 5_000, 70_000 * 5_000)}
    async with Simulator(SimConfig(codes=["005930"], rate=0.0, resume=resume)) as sim:
        assert sim.history("005930") == []
        async with KisRestClient(env_for(sim), cred()) as rest:
            bf = Backfiller()
            lost = await bf.fill(rest, "005930", today.date(), after_cum=4_200)
            assert (lost.ticks, lost.reached, lost.gap_ranges, lost.gap_volume) == ([], False, [(4_200, 5_000)], 800)
            quiet = await bf.fill(rest, "005930", today.date(), after_cum=5_000)
            assert (quiet.ticks, quiet.gap_ranges) == ([], [])
