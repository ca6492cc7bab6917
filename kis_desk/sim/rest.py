"""The simulator's KIS-like REST server (``aiohttp.web``): OAuth (approval key, token, revoke)
the three quotation endpoints the feed uses (per market code J / NX / UN) and the VI status, with KIS's credential checks, per-app-key rate
limit and error bodies (kis-protocol.md §1, §7). Quotations are served from the market's history,
so a back-fill returns exactly the trades the socket carried.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections import deque
from datetime import datetime
from typing import Any

from aiohttp import web

from ..config import is_valid_stock_code
from ..market.ticks import tick_size
from ..market.venues import VENUE_TABLE
from ..protocol.records import KST
from ..protocol.states import VI_STATUS_TR_ID
from .config import SimConfig
from .faults import Faults
from .frames import pct2, sign_code
from .market import Market
from .symbol import Symbol
from .tape import VENUE_KRX, VENUE_NXT, VENUE_TOTAL, SimTrade, Tape

#: FID_COND_MRKT_DIV_CODE -> tape (kis-protocol.md §8)
MARKET_CODE_VENUE = {"J": VENUE_KRX, "NX": VENUE_NXT, "UN": VENUE_TOTAL}
from .state import SimState

OK_MSG = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다."}
_BAD_APP_KEY = ("EGW00103", "유효하지 않은 AppKey입니다.")
_BAD_SECRET = ("EGW00105", "유효하지 않은 AppSecret입니다.")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _rest_error(status: int, rt_cd: str, msg_cd: str, msg1: str) -> web.Response:
    """The error body of a quotation call (``rt_cd``/``msg_cd``/``msg1``)."""
    return web.json_response({"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}, status=status,
                             dumps=_dumps)


def _oauth_error(error: tuple[str, str], status: int = 403) -> web.Response:
    """The error body of an /oauth2 call (``error_code``/``error_description``)."""
    return web.json_response({"error_code": error[0], "error_description": error[1]},
                             status=status, dumps=_dumps)


class RestServer:
    """The aiohttp application and its handlers; reads credentials and faults, writes tokens."""

    def __init__(self, config: SimConfig, state: SimState, faults: Faults) -> None:
        self.config = config
        self.state = state
        self.faults = faults
        self._hits: dict[str, deque[float]] = {}      # app key -> loop times of the last second
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> str:
        cfg = self.config
        app = web.Application(middlewares=[self._fault_middleware])
        app.router.add_post("/oauth2/Approval", self._approval)
        app.router.add_post("/oauth2/tokenP", self._token)
        app.router.add_post("/oauth2/revokeP", self._revoke)
        q = "/uapi/domestic-stock/v1/quotations/"
        app.router.add_get(q + "inquire-price", self._inquire_price)
        app.router.add_get(q + "inquire-ccnl", self._inquire_ccnl)
        app.router.add_get(q + "inquire-time-itemconclusion", self._inquire_time_itemconclusion)
        app.router.add_get(q + "inquire-vi-status", self._inquire_vi_status)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.rest_port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return f"http://{cfg.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def _market(self) -> Market:
        market = self.state.market
        assert market is not None, "start the simulator first"
        return market

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.state.stats["rest_requests"] += 1
        delay = self.faults.rest_delay_now()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.faults.rest_failing():
            return _rest_error(500, "1", "EGW00500", "시스템 오류가 발생하였습니다. (simulated)")
        return await handler(request)

    def _credential_problem(self, app_key: Any, secret: Any) -> tuple[str, str] | None:
        """KIS's error for a wrong app key or secret (or one the faults made invalid), else None."""
        keys = self.config.app_keys
        if not isinstance(app_key, str) or not app_key:
            return _BAD_APP_KEY
        if not isinstance(secret, str) or not secret:
            return _BAD_SECRET
        if self.faults.key_rejected(app_key) or (keys is not None and app_key not in keys):
            return _BAD_APP_KEY
        if keys is not None and keys[app_key] != secret:
            return _BAD_SECRET
        return None

    def _check_credentials(self, app_key: Any, secret: Any) -> web.Response | None:
        problem = self._credential_problem(app_key, secret)
        return _oauth_error(problem) if problem is not None else None

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json(loads=json.loads)
        except Exception:
            return {}
        return body if isinstance(body, dict) else {}

    async def _approval(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        problem = self._check_credentials(body.get("appkey"), body.get("secretkey"))
        if problem is not None:
            return problem
        return web.json_response({"approval_key": self.state.issue_approval_key(body["appkey"])})

    async def _token(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        app_key, secret = body.get("appkey"), body.get("appsecret")
        problem = self._check_credentials(app_key, secret)
        if problem is not None:
            return problem
        now = time.time()
        tokens = self.state.tokens
        last = self.state.token_issued.get(app_key)
        self.state.stats["token_requests"] += 1
        cfg = self.config
        if last is not None and now - last[0] < cfg.token_min_interval:
            return _oauth_error(("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"))
        if last is not None and now - last[0] < 6 * 3600 and last[1] in tokens:
            token = last[1]            # KIS returns the same token within 6 h
            expiry = tokens[token][1]
        else:
            claims = base64.urlsafe_b64encode(
                json.dumps({"sub": "sim", "jti": str(uuid.uuid4()), "iat": int(now)}).encode()
            ).decode().rstrip("=")
            token = f"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.{claims}.{secrets.token_urlsafe(32)}"
            expiry = now + cfg.token_expires_in
            tokens[token] = (app_key, expiry)
            self.state.stats["tokens_issued"] += 1
        self.state.token_issued[app_key] = (now, token)
        expired_text = datetime.fromtimestamp(expiry, KST).strftime("%Y-%m-%d %H:%M:%S")
        return web.json_response({
            "access_token": token, "access_token_token_expired": expired_text,
            "token_type": "Bearer", "expires_in": max(0, int(expiry - now)),
        })

    async def _revoke(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        token = body.get("token")
        if not isinstance(token, str) or token not in self.state.tokens:
            return web.json_response({"error_description": "유효하지 않은 token 입니다.",
                                      "error_code": "EGW00121"}, status=403, dumps=_dumps)
        del self.state.tokens[token]
        return web.json_response({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"},
                                 dumps=_dumps)

    def _authorize(self, request: web.Request, tr_id: str) -> web.Response | str:
        """Token, app key/secret, rate limit and tr_id checks; the app key when all pass."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        entry = self.state.tokens.get(token)
        if entry is None:
            return _rest_error(500, "1", "EGW00121", "유효하지 않은 token 입니다.")
        app_key, expiry = entry
        if time.time() >= expiry:
            return _rest_error(500, "1", "EGW00123", "기간이 만료된 token 입니다.")
        problem = _BAD_APP_KEY if request.headers.get("appkey") != app_key else \
            self._credential_problem(app_key, request.headers.get("appsecret", ""))
        if problem is not None:
            return _rest_error(500, "1", *problem)
        now = self.state.loop_time()
        hits = self._hits.setdefault(app_key, deque())
        while hits and now - hits[0] >= 1.0:
            hits.popleft()
        if len(hits) >= self.config.effective_rest_rate:
            self.state.stats["rest_rate_limited"] += 1
            return _rest_error(500, "1", "EGW00201", "초당 거래건수를 초과하였습니다.")
        hits.append(now)
        if request.headers.get("tr_id") != tr_id:
            return _rest_error(500, "1", "OPSQ0002", "없는 서비스 코드 입니다")
        return app_key

    def _quote_target(self, request: web.Request, tr_id: str) -> tuple[Symbol, Tape] | web.Response:
        """The symbol and tape a quotation call asks for, or the error response (auth first,
        like KIS). FID_COND_MRKT_DIV_CODE picks the tape: J = KRX, NX = NXT, UN = integrated
        (kis-protocol.md §8); missing = J. The mock server offers J only [I]."""
        auth = self._authorize(request, tr_id)
        if isinstance(auth, web.Response):
            return auth
        market_code = request.query.get("FID_COND_MRKT_DIV_CODE", "J").strip().upper() or "J"
        venue = MARKET_CODE_VENUE.get(market_code)
        if venue is None or (self.config.mode == "mock" and venue != VENUE_KRX) \
                or self.faults.tr_muted_for(VENUE_TABLE[venue].tr_id, auth):
            return web.json_response({"rt_cd": "1", "msg_cd": "OPSQ2001",
                                      "msg1": "ERROR : INPUT INVALID_CHECK_MRKT_DIV_CODE"}, dumps=_dumps)
        sym = self._symbol_for(request)
        if isinstance(sym, web.Response):
            return sym
        return sym, sym.tape(venue)

    def _symbol_for(self, request: web.Request) -> Symbol | web.Response:
        code = request.query.get("FID_INPUT_ISCD", "").strip().upper()
        if not is_valid_stock_code(code):
            return web.json_response({"rt_cd": "1", "msg_cd": "OPSQ2001",
                                      "msg1": "ERROR : INPUT INVALID_CHECK_ISCD"}, dumps=_dumps)
        sym = self._market.symbol_for(code, now=self.state.loop_time())
        if sym is None:      # in no symbol list: no invented market (KIS's exact answer: [I])
            return web.json_response({"rt_cd": "1", "msg_cd": "OPSQ2001",
                                      "msg1": "ERROR : INPUT INVALID_CHECK_ISCD"}, dumps=_dumps)
        return sym

    async def _inquire_price(self, request: web.Request) -> web.Response:
        target = self._quote_target(request, "FHKST01010100")
        if isinstance(target, web.Response):
            return target
        sym, tape = target
        price = tape.price
        change = price - sym.prev_close
        avg = f"{tape.cum_value / tape.cum_vol:.2f}" if tape.cum_vol else "0.00"
        out = {
            "iscd_stat_cls_code": "55", "marg_rate": "20.00", "rprs_mrkt_kor_name": "KOSPI200",
            "bstp_kor_isnm": "시뮬레이션", "temp_stop_yn": "Y" if sym.halted else "N", "oprc_rang_cont_yn": "N",
            "clpr_rang_cont_yn": "N", "crdt_able_yn": "Y", "grmn_rate_cls_code": "40",
            "elw_pblc_yn": "N", "stck_prpr": str(price), "prdy_vrss": str(change),
            "prdy_vrss_sign": sign_code(price, sym.prev_close, sym.upper, sym.lower),
            "prdy_ctrt": pct2(change, sym.prev_close), "acml_tr_pbmn": str(tape.cum_value),
            "acml_vol": str(tape.cum_vol), "prdy_vrss_vol_rate": pct2(tape.cum_vol, sym.prev_day_vol),
            "stck_oprc": str(tape.open or price), "stck_hgpr": str(tape.high or price),
            "stck_lwpr": str(tape.low or price), "stck_mxpr": str(sym.upper),
            "stck_llam": str(sym.lower), "stck_sdpr": str(sym.prev_close),
            "wghn_avrg_stck_prc": avg, "hts_frgn_ehrt": "50.00", "frgn_ntby_qty": "0",
            "pgtr_ntby_qty": "0", "pvt_scnd_dmrs_prc": "0", "pvt_frst_dmrs_prc": "0",
            "pvt_pont_val": "0", "pvt_frst_dmsp_prc": "0", "pvt_scnd_dmsp_prc": "0",
            "dmrs_val": "0", "dmsp_val": "0", "cpfn": "0", "rstc_wdth_prc": str(sym.upper - sym.prev_close),
            "stck_fcam": "100", "stck_sspr": str(int(price * 0.7)), "aspr_unit": str(tick_size(price)),
            "hts_deal_qty_unit_val": "1", "lstn_stcn": str(sym.listed_shares),
            "hts_avls": str(price * sym.listed_shares // 100_000_000), "per": "10.00",
            "pbr": "1.00", "stac_month": "12", "vol_tnrt": pct2(tape.cum_vol, sym.listed_shares),
            "eps": "0.00", "bps": "0.00", "d250_hgpr": str(sym.upper), "d250_lwpr": str(sym.lower),
            "w52_hgpr": str(sym.upper), "w52_lwpr": str(sym.lower), "vi_cls_code": "Y" if sym.in_vi else "N",
            "ovtm_vi_cls_code": "N", "last_ssts_cntg_qty": "0", "invt_caful_yn": "N",
            "mrkt_warn_cls_code": "00", "short_over_yn": "N", "sltr_yn": "N",
            "stck_shrn_iscd": sym.code,
        }
        return web.json_response({"output": out, **OK_MSG}, dumps=_dumps)

    @staticmethod
    def _change_fields(t: SimTrade, sym: Symbol) -> tuple[str, str, str]:
        return (str(t.change), sign_code(t.price, sym.prev_close, sym.upper, sym.lower),
                pct2(t.change, sym.prev_close))

    async def _inquire_ccnl(self, request: web.Request) -> web.Response:
        target = self._quote_target(request, "FHKST01010300")
        if isinstance(target, web.Response):
            return target
        sym, tape = target
        rows = []
        for t in self._market.latest(sym.code, self.config.ccnl_rows, tape.venue):
            change, sign, ctrt = self._change_fields(t, sym)
            rows.append({"stck_cntg_hour": t.time, "stck_prpr": str(t.price), "prdy_vrss": change,
                         "prdy_vrss_sign": sign, "cntg_vol": str(t.volume),
                         "tday_rltv": f"{t.strength:.2f}", "prdy_ctrt": ctrt})
        return web.json_response({"output": rows, **OK_MSG}, dumps=_dumps)

    async def _inquire_time_itemconclusion(self, request: web.Request) -> web.Response:
        target = self._quote_target(request, "FHPST01060000")
        if isinstance(target, web.Response):
            return target
        sym, tape = target
        hour = request.query.get("FID_INPUT_HOUR_1", "").strip()
        if not hour:
            hhmmss = 999_999
        elif len(hour) == 6 and hour.isdigit():
            hhmmss = int(hour)
        else:
            return web.json_response({"rt_cd": "1", "msg_cd": "OPSQ2001",
                                      "msg1": "ERROR : INPUT INVALID_CHECK_HOUR"}, dumps=_dumps)
        price = tape.price
        change = price - sym.prev_close
        output1 = {
            "stck_prpr": str(price), "prdy_vrss": str(change),
            "prdy_vrss_sign": sign_code(price, sym.prev_close, sym.upper, sym.lower),
            "prdy_ctrt": pct2(change, sym.prev_close), "acml_vol": str(tape.cum_vol),
            "prdy_vol": str(sym.prev_day_vol), "rprs_mrkt_kor_name": "KOSPI200",
        }
        rows = []
        for t in self._market.at_or_before(sym.code, hhmmss, self.config.page_size, tape.venue):
            change_s, sign, ctrt = self._change_fields(t, sym)
            rows.append({"stck_cntg_hour": t.time, "stck_prpr": str(t.price),
                         "prdy_vrss": change_s, "prdy_vrss_sign": sign, "prdy_ctrt": ctrt,
                         "askp": str(t.ask), "bidp": str(t.bid), "tday_rltv": f"{t.strength:.2f}",
                         "acml_vol": str(t.cum_volume), "cnqn": str(t.volume)})
        return web.json_response({"output1": output1, "output2": rows, **OK_MSG}, dumps=_dumps)

    async def _inquire_vi_status(self, request: web.Request) -> web.Response:
        """변동성완화장치(VI) 현황 (FHPST01390000, real accounts only): the 30 most recent VI
        events, newest first, optionally of one code (FID_INPUT_ISCD; empty = all) [V OFF
        examples_llm/domestic_stock/inquire_vi_status; row shape from a real capture]."""
        auth = self._authorize(request, VI_STATUS_TR_ID)
        if isinstance(auth, web.Response):
            return auth
        if self.config.mode == "mock":
            return _rest_error(500, "1", "OPSQ0002", "없는 서비스 코드 입니다")
        code = request.query.get("FID_INPUT_ISCD", "").strip().upper()
        market = self._market
        events = [e for e in reversed(market.vi_events()) if not code or e.code == code][:30]
        counts: dict[str, int] = {}
        for e in market.vi_events():
            counts[e.code] = counts.get(e.code, 0) + 1
        rows = []
        for e in events:
            sym = market.get(e.code)
            static = e.kind == "static"
            ref = e.reference
            rows.append({
                "hts_kor_isnm": sym.name if sym is not None else "", "mksc_shrn_iscd": e.code,
                "vi_cls_code": "Y" if e.active else "N", "bsop_date": market.business_date,
                "cntg_vi_hour": e.start_time, "vi_cncl_hour": e.end_time,
                "vi_kind_code": "1" if static else "2", "vi_prc": str(e.trigger_price),
                "vi_stnd_prc": str(ref) if static else "0",
                "vi_dprt": pct2(e.trigger_price - ref, ref) if static else "0.00",
                "vi_dmc_stnd_prc": "0" if static else str(ref),
                "vi_dmc_dprt": "0.00" if static else pct2(e.trigger_price - ref, ref),
                "vi_count": str(counts[e.code]),
            })
        return web.json_response({"output": rows, **OK_MSG}, dumps=_dumps)



__all__ = ["MARKET_CODE_VENUE", "OK_MSG", "RestServer"]
