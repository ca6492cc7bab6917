"""KIS REST client: one app key's HTTP access — approval key, access token, rate budget and the
three quotation calls the feed needs (each with the REST market code of the feed's venue).

Secrets leave their :class:`~kis_desk.config.Secret` wrapper only here, when the HTTP request
is built; they are never logged and never part of an exception message. What KIS answers
(errors, parsed quotation values) is ``rest_replies.py``, re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import aiohttp

from ..config import AppCredential, Environment
from ..logs import register_secret
from ..protocol.codec import build_approval_request, build_token_request
from ..protocol.records import KST
from ..protocol.states import VI_STATUS_PATH, VI_STATUS_TR_ID, ViStatus, vi_status_rows
from .ratelimit import RateLimiter
from .rest_replies import (  # noqa: F401  (re-exported: the client's vocabulary)
    CODE_RATE_LIMIT, CODE_TOKEN_RATE, CREDENTIAL_CODES, TOKEN_INVALID_CODES, ConclusionPage,
    ConclusionRow, CredentialError, KisApiError, KisError, KisTransportError, PriceQuote,
    RateLimitedError, TokenRateLimitedError, _int, describe_reply, hhmmss_minus,
    market_code_refused, parse_ccnl, parse_conclusion_row, parse_price, parse_time_conclusion,
)
from .token_cache import CachedToken, TokenCache

log = logging.getLogger(__name__)

PATH_APPROVAL = "/oauth2/Approval"
PATH_TOKEN = "/oauth2/tokenP"
PATH_PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
PATH_TIME_CONCLUSION = "/uapi/domestic-stock/v1/quotations/inquire-time-itemconclusion"
PATH_CCNL = "/uapi/domestic-stock/v1/quotations/inquire-ccnl"
TR_PRICE = "FHKST01010100"
TR_TIME_CONCLUSION = "FHPST01060000"
TR_CCNL = "FHKST01010300"

#: The approval key is nominally valid 24 h and checked only at session setup: re-issue it
#: before a long-running desk's next (re)connect could present an expired one.
APPROVAL_MAX_AGE_S = 20 * 3600.0


# -- client --------------------------------------------------------------------------------------

class KisRestClient:
    """One app key's REST access. Share one instance per key: it owns the key's rate budget."""

    def __init__(self, env: Environment, credential: AppCredential,
                 session: aiohttp.ClientSession | None = None, *,
                 limiter: RateLimiter | None = None, token_retry_wait: float = 61.0,
                 token_retries: int = 3, rate_limit_retries: int = 8,
                 rate_limit_wait: float = 1.0, timeout: float = 10.0, custtype: str = "P",
                 token_cache: TokenCache | None = None) -> None:
        """``token_cache`` keeps issued tokens across restarts (KIS: one issue a minute, and each
        issue notifies the account holder)."""
        self.env = env
        self.credential = credential
        self.label = credential.label
        self._session = session
        self._own_session = session is None
        self.limiter = limiter or RateLimiter(env.rest_rate_per_second)
        self.token_retry_wait = token_retry_wait
        self.token_retries = token_retries
        self.rate_limit_retries = rate_limit_retries
        self.rate_limit_wait = rate_limit_wait
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.custtype = custtype
        self._approval: str | None = None
        self._approval_lock = asyncio.Lock()
        self._token: str | None = None
        self._token_expires: float = 0.0
        self._token_lock = asyncio.Lock()
        self._token_cache = token_cache
        self._approval_issued = 0.0
        self.tokens_issued = 0
        self.calls = 0
        self.rate_limited = 0

    # -- lifecycle --
    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> KisRestClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- low level --
    async def _request(self, method: str, path: str, *, json_body: dict[str, str] | None = None,
                       params: dict[str, str] | None = None,
                       headers: dict[str, str] | None = None) -> tuple[int, Any]:
        url = self.env.rest_url.rstrip("/") + path
        try:
            async with self._http().request(method, url, json=json_body, params=params,
                                            headers=headers, timeout=self.timeout) as resp:
                status = resp.status
                text = await resp.text(errors="replace")
        except asyncio.TimeoutError as exc:
            raise KisTransportError(f"{self.label}: {path} timed out") from exc
        except aiohttp.ClientError as exc:
            raise KisTransportError(f"{self.label}: {path} failed: {type(exc).__name__}: {exc}") from exc
        self.calls += 1
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        if body is None and status == 200:
            raise KisTransportError(f"{self.label}: {path} answered HTTP 200 with a non-JSON body")
        return status, body

    def _credential_error(self, path: str, status: int, code: str, msg: str) -> CredentialError:
        detail = f"{code} {msg}".strip() or f"HTTP {status}"
        return CredentialError(f"{self.label}: app key/secret rejected by KIS ({detail}) at {path}",
                               msg_cd=code, status=status)

    async def _oauth(self, path: str, body: dict[str, str]) -> Mapping[str, Any]:
        """POST an OAuth request; classify errors (no rate limiter: these are not quotations)."""
        status, reply = await self._request("POST", path, json_body=body,
                                            headers={"content-type": "application/json; charset=utf-8"})
        code, msg = describe_reply(reply)
        if status == 200 and isinstance(reply, Mapping) and not code.startswith("EGW") \
                and str(reply.get("rt_cd", "0")) == "0":
            return reply
        if code == CODE_TOKEN_RATE:
            raise TokenRateLimitedError(f"{self.label}: token issued less than a minute ago ({code})",
                                        msg_cd=code, status=status)
        if code == CODE_RATE_LIMIT:
            raise RateLimitedError(f"{self.label}: {path} rate-limited ({code})", msg_cd=code, status=status)
        if code in CREDENTIAL_CODES or status in (401, 403):
            raise self._credential_error(path, status, code, msg)
        if status >= 500:
            raise KisTransportError(f"{self.label}: {path} HTTP {status} {code} {msg}".rstrip(),
                                    msg_cd=code, status=status)
        raise KisApiError(f"{self.label}: {path} failed: HTTP {status} {code} {msg}".rstrip(),
                          msg_cd=code, status=status)

    # -- auth --
    async def approval_key(self, *, refresh: bool = False) -> str:
        """WebSocket approval key (cached; valid for the day and only checked at session setup)."""
        async with self._approval_lock:
            stale = time.monotonic() - self._approval_issued > APPROVAL_MAX_AGE_S
            if self._approval is None or refresh or stale:
                body = build_approval_request(self.credential.app_key.reveal(),
                                              self.credential.app_secret.reveal())
                reply = await self._oauth(PATH_APPROVAL, body)
                key = reply.get("approval_key")
                if not isinstance(key, str) or not key:
                    raise KisApiError(f"{self.label}: /oauth2/Approval reply without approval_key")
                register_secret(key)    # masked in every log line from now on
                self._approval = key
                self._approval_issued = time.monotonic()
            return self._approval

    def invalidate_approval(self) -> None:
        self._approval = None

    async def access_token(self, *, refresh: bool = False) -> str:
        """Bearer token, cached until it expires (KIS: 1 issuance per minute, 24 h validity).

        On EGW00133 it waits ``token_retry_wait`` (a minute) instead of hammering the endpoint.
        """
        async with self._token_lock:
            if not refresh and self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            if not refresh and self._token is None and self._token_cache is not None:
                cached = await asyncio.to_thread(self._token_cache.load, self.env.rest_url,
                                                 self.credential)
                if cached is not None:
                    register_secret(cached.token)
                    self._token = cached.token
                    self._token_expires = time.monotonic() + (cached.expires_at - time.time())
                    log.info("%s: reusing the access token kept from an earlier run", self.label)
                    return cached.token
            attempt = 0
            while True:
                body = build_token_request(self.credential.app_key.reveal(),
                                           self.credential.app_secret.reveal())
                try:
                    reply = await self._oauth(PATH_TOKEN, body)
                    break
                except TokenRateLimitedError:
                    attempt += 1
                    if attempt > self.token_retries:
                        raise
                    log.warning("%s: access token rate-limited (EGW00133); retrying in %.0f s",
                                self.label, self.token_retry_wait)
                    await asyncio.sleep(self.token_retry_wait)
            token = reply.get("access_token")
            if not isinstance(token, str) or not token:
                raise KisApiError(f"{self.label}: /oauth2/tokenP reply without access_token")
            register_secret(token)
            lifetime = self._token_lifetime(reply)
            self._token = token
            self._token_expires = time.monotonic() + lifetime
            self.tokens_issued += 1
            if self._token_cache is not None:
                await asyncio.to_thread(self._token_cache.save, self.env.rest_url, self.credential,
                                        CachedToken(token, time.time() + lifetime))
            return token

    @staticmethod
    def _token_lifetime(reply: Mapping[str, Any]) -> float:
        lifetime = float(_int(reply.get("expires_in"), 86400) or 86400)
        exp = reply.get("access_token_token_expired")
        if isinstance(exp, str):
            try:
                at = datetime.strptime(exp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
                lifetime = min(lifetime, (at - datetime.now(KST)).total_seconds())
            except ValueError:
                pass
        return max(60.0, lifetime - 300.0)  # renew five minutes early

    # -- quotations --
    async def _quote(self, path: str, tr_id: str, params: dict[str, str]) -> Mapping[str, Any]:
        token_refreshed = False
        rate_retries = 0
        while True:
            token = await self.access_token()
            await self.limiter.acquire()
            headers = {
                "content-type": "application/json; charset=utf-8",
                "authorization": f"Bearer {token}",
                "appkey": self.credential.app_key.reveal(),
                "appsecret": self.credential.app_secret.reveal(),
                "tr_id": tr_id,
                "custtype": self.custtype,
            }
            status, reply = await self._request("GET", path, params=params, headers=headers)
            code, msg = describe_reply(reply)
            if code == CODE_RATE_LIMIT:
                self.rate_limited += 1
                rate_retries += 1
                self.limiter.penalize(self.rate_limit_wait)
                if rate_retries > self.rate_limit_retries:
                    raise RateLimitedError(f"{self.label}: {tr_id} still rate-limited after "
                                           f"{rate_retries - 1} retries ({code})", msg_cd=code, status=status)
                continue
            if code in TOKEN_INVALID_CODES and not token_refreshed:
                token_refreshed = True
                async with self._token_lock:
                    if self._token == token:
                        self._token = None
                        if self._token_cache is not None:
                            await asyncio.to_thread(self._token_cache.clear, self.env.rest_url,
                                                    self.credential)
                continue
            if status == 200 and isinstance(reply, Mapping) and str(reply.get("rt_cd", "")) == "0":
                return reply
            if code in CREDENTIAL_CODES or status in (401, 403):
                raise self._credential_error(path, status, code, msg)
            if status >= 500 and not code:
                raise KisTransportError(f"{self.label}: {tr_id} HTTP {status}", status=status)
            raise KisApiError(f"{self.label}: {tr_id} failed: HTTP {status} {code} {msg}".rstrip(),
                              msg_cd=code, status=status)

    async def inquire_price(self, code: str, market: str = "J") -> PriceQuote:
        body = await self._quote(PATH_PRICE, TR_PRICE,
                                 {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": code})
        return parse_price(code, body)

    async def inquire_time_itemconclusion(self, code: str, hour_hhmmss: str,
                                          market: str = "J") -> ConclusionPage:
        """Trades at or before ``hour_hhmmss`` today, newest first (one page; no tr_cont paging)."""
        body = await self._quote(PATH_TIME_CONCLUSION, TR_TIME_CONCLUSION,
                                 {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": code,
                                  "FID_INPUT_HOUR_1": hour_hhmmss})
        return parse_time_conclusion(code, hour_hhmmss, body)

    async def inquire_ccnl(self, code: str, market: str = "J") -> list[ConclusionRow]:
        """The latest (≈30) trades, newest first; rows carry no cumulative volume."""
        body = await self._quote(PATH_CCNL, TR_CCNL,
                                 {"FID_COND_MRKT_DIV_CODE": market, "FID_INPUT_ISCD": code})
        return parse_ccnl(body)

    async def inquire_vi_status(self, code: str = "", business_date: str = "") -> list[ViStatus]:
        """The day's latest VI events (every symbol, or ``code``'s), newest first; real accounts
        only (a mock account's server answers an error: KisApiError)."""
        body = await self._quote(VI_STATUS_PATH, VI_STATUS_TR_ID, {
            "FID_DIV_CLS_CODE": "0", "FID_COND_SCR_DIV_CODE": "20139", "FID_MRKT_CLS_CODE": "0",
            "FID_INPUT_ISCD": code, "FID_RANK_SORT_CLS_CODE": "0", "FID_INPUT_DATE_1": business_date,
            "FID_TRGT_CLS_CODE": "", "FID_TRGT_EXLS_CLS_CODE": ""})
        return vi_status_rows(body)


def kst_now() -> datetime:
    return datetime.now(KST)


__all__ = [
    "CREDENTIAL_CODES", "ConclusionPage", "ConclusionRow", "CredentialError", "KisApiError",
    "KisError", "KisRestClient", "KisTransportError", "PriceQuote", "RateLimitedError",
    "TokenRateLimitedError", "hhmmss_minus", "kst_now", "market_code_refused", "parse_ccnl",
    "parse_conclusion_row", "parse_price", "parse_time_conclusion",
]
