"""Issue 11 item 1 end to end: the venue (krx / nxt / total) chosen by ``--venue``, Settings or
``CollectorConfig.venue`` decides the TR every session subscribes, the REST market code of
polling and back-fill and the venue every stored trade carries; a server that does not offer the
venue's TR makes the run fall back to KRX, saying so, without losing trades.

Every end-to-end test counts trades: stored rows (per venue) against the simulator's history of
the matching tape. Compressed time: the simulator's KST clock is moved by the test (15:19 →
15:35 in seconds) and its trade rate is high.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from kis_desk.cli import build_parser, main
from kis_desk.config import AppCredential, Secret
from kis_desk.core.events import AlertEvent, ErrorEvent
from kis_desk.engine.collector import CollectorConfig
from kis_desk.engine.user_settings import merge_settings
from kis_desk.feed.config import FeedConfig
from kis_desk.headless import config_from_args
from kis_desk.market.calendar import phase_at
from kis_desk.market.symbols import default_watchlist
from kis_desk.market.venues import VENUE_TABLE, venue, venue_of_market_code, venue_of_tr
from kis_desk.protocol.fields import TRADE_TR_IDS
from kis_desk.protocol.messages import AckKind, ControlReply, refuses_tr
from kis_desk.protocol.records import KST
from kis_desk.settings import SettingsStore, UserSettings
from kis_desk.sim import SimConfig, Simulator
from kis_desk.sim.market import TR_TOTAL, TR_TRADES
from kis_desk.wiring import build_collector
from test_collector import _paths, _wait

VENUE_NO = {"krx": 0, "nxt": 1, "total": 2}
TUESDAY = datetime(2026, 11, 24, tzinfo=KST)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return TUESDAY.replace(hour=hh, minute=mm, second=ss)


def _keys(n: int = 2) -> list[AppCredential]:
    return [AppCredential(f"key{i}", Secret(f"SIMKEY{i:02d}"), Secret(f"SIMSECRET{i:02d}"))
            for i in range(1, n + 1)]


def _rows(db_url: str) -> dict[tuple[int, str], list[tuple[int, int, str]]]:
    """(venue, code) → [(cum_volume, volume, HHMMSS)] in chain order."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT venue, stock_code, cum_volume, volume, ts FROM stock_prices_realtime "
                "ORDER BY venue, stock_code, cum_volume")).all()
    finally:
        engine.dispose()
    out: dict[tuple[int, str], list[tuple[int, int, str]]] = {}
    for v, code, cum, vol, ts in rows:
        hhmmss = datetime.fromtimestamp(int(ts), KST).strftime("%H%M%S")
        out.setdefault((int(v), code), []).append((int(cum), int(vol), hhmmss))
    return out


def _assert_chain(trades: list[tuple[int, int, str]], what: str) -> None:
    for (prev, _, _), (cum, vol, _) in zip(trades, trades[1:]):
        assert cum - vol == prev, f"{what}: gap after cumulative volume {prev}"


def _history(sim: Simulator, code: str, venue_name: str) -> list[tuple[int, int, str]]:
    return [(t.cum_volume, t.volume, t.time) for t in sim.history(code, venue_name)]


# -- the table, the refusal rule, the CLI ------------------------------------------------------
def test_the_venue_table_is_the_one_mapping():
    assert {(v.name, v.tr_id, v.market_code) for v in VENUE_TABLE.values()} == {
        ("krx", "H0STCNT0", "J"), ("nxt", "H0NXCNT0", "NX"), ("total", "H0UNCNT0", "UN")}
    assert {v.tr_id for v in VENUE_TABLE.values()} == TRADE_TR_IDS
    assert venue("TOTAL") is VENUE_TABLE["total"] and venue_of_tr("H0NXCNT0").name == "nxt"
    assert venue_of_market_code("un").name == "total" and venue_of_tr("H0STASP0") is None
    with pytest.raises(ValueError, match="krx, nxt, total"):
        venue("kospi")
    assert FeedConfig(venue="nxt").market == "NX" and FeedConfig().market == "J"
    with pytest.raises(ValueError):
        FeedConfig(venue="x")


def _reply(msg_cd: str, msg1: str, tr_id: str = TR_TOTAL, rt_cd: str = "9") -> ControlReply:
    return ControlReply(AckKind.INVALID_REQUEST, tr_id, "005930", rt_cd, msg_cd, msg1)


def test_which_replies_refuse_a_whole_tr():
    assert refuses_tr(_reply("OPSP8991", "SUBSCRIBE ERROR : invalid tr_id"))
    assert refuses_tr(_reply("OPSP0009", "SUBSCRIBE ERROR : mci send failed"))
    assert refuses_tr(_reply("OPSP9999", "invalid tr_id"))                 # the text decides too
    assert not refuses_tr(_reply("OPSP8992", "SUBSCRIBE ERROR : invalid tr_key"))   # one symbol
    assert not refuses_tr(_reply("OPSP0008", "MAX SUBSCRIBE OVER", rt_cd="1"))
    assert not refuses_tr(_reply("OPSP8996", "ALREADY IN USE appkey", tr_id="(null)"))
    ok = ControlReply(AckKind.SUBSCRIBED, TR_TOTAL, "005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS")
    assert not refuses_tr(ok)


async def test_session_hands_a_refused_tr_over_once_and_switches_on_its_connection():
    """Subscriptions bookkeeping: a refusal of the venue's TR goes to the listener (not the
    per-symbol rejection that moves a code to another key); after ``use_tr`` what was acked on
    the old TR is unsubscribed there, every wanted code is registered on the new one, and late
    replies of the old TR change nothing."""
    from test_feed_units import _reply as reply, _session

    s, rec = _session(["005930", "000660"])
    refused: list[tuple[str, str]] = []
    rec.on_tr_refused = lambda session, tr_id, r: refused.append((tr_id, r.msg_cd))
    s.use_tr(TR_TOTAL)
    assert (s.tr_id, s.venue) == (TR_TOTAL, "total")
    s._ws = object()                  # "connected": use_tr queues on the outbox
    s._on_control(None, reply("005930", "0", "OPSP0000", "SUBSCRIBE SUCCESS", tr_id=TR_TOTAL))
    s._on_control(None, reply("000660", "9", "OPSP8991", "SUBSCRIBE ERROR : invalid tr_id",
                              tr_id=TR_TOTAL))
    assert refused == [(TR_TOTAL, "OPSP8991")] and rec.rejected == [] and "000660" in s.wanted
    s.use_tr(TR_TRADES)
    queued = []
    while not s._outbox.empty():
        queued.append(s._outbox.get_nowait())
    assert queued == [("005930", False, TR_TOTAL), ("005930", True, TR_TRADES),
                      ("000660", True, TR_TRADES)]
    assert s.acked == set() and s.venue == "krx"
    # late replies about the TR left: ignored (a late SUBSCRIBED is unsubscribed there)
    s._on_control(None, reply("000660", "9", "OPSP8991", "SUBSCRIBE ERROR : invalid tr_id",
                              tr_id=TR_TOTAL))
    s._on_control(None, reply("000660", "0", "OPSP0000", "SUBSCRIBE SUCCESS", tr_id=TR_TOTAL))
    assert refused == [(TR_TOTAL, "OPSP8991")] and rec.rejected == [] and s.acked == set()
    assert s._outbox.get_nowait() == ("000660", False, TR_TOTAL)
    s._on_control(None, reply("000660", "0", "OPSP0000", "SUBSCRIBE SUCCESS"))
    assert s.acked == {"000660"}
    s._ws = None
    await s.rest.close()


@pytest.mark.parametrize("command", ["collect", "app"])
def test_bad_venue_is_one_line_and_exit_2(command, capsys):
    assert main([command, "--venue", "kospi", "--codes", "005930"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--venue must be one of krx, nxt, total, not 'kospi'" in err[0], err


@pytest.mark.parametrize("given, expected", [(None, "total"), ("krx", "krx"), ("nxt", "nxt"),
                                             ("total", "total"), ("KRX", "krx")])
def test_venue_option_parses(given, expected, tmp_path):
    for command in ("collect", "app"):
        argv = [command] + (["--venue", given] if given else [])
        args = build_parser().parse_args(argv)
        assert config_from_args(args).venue == expected
    # the app: a --venue wins over the saved setting; without one the setting decides
    store = SettingsStore(_paths(tmp_path))
    saved = UserSettings(venue="nxt")
    args = build_parser().parse_args(["app"] + (["--venue", given] if given else []))
    cfg = merge_settings(config_from_args(args), args, saved, store)
    assert cfg.venue == (expected if given else "nxt")


def test_settings_venue_default_and_repair(tmp_path):
    store = SettingsStore(_paths(tmp_path))
    assert store.load().venue == "total"
    s = UserSettings(venue="bogus")
    s.validate()
    assert s.venue == "total"


def test_total_trades_08_to_20():
    """With venue total the session table opens at 08:00 (NXT pre-market) and closes at 20:00."""
    assert not phase_at(at(7, 59, 59), "total").trading and phase_at(at(8, 0), "total").trading
    assert phase_at(at(19, 59, 59), "total").trading and not phase_at(at(20, 0), "total").trading
    assert not phase_at(at(19, 0), "krx").trading and phase_at(at(19, 0), "total").trading


# -- end to end --------------------------------------------------------------------------------
async def _settled(collector, sim: Simulator, venue_name: str, codes) -> None:
    """Wait until every symbol's newest trade on ``venue_name`` reached the collector."""
    def done() -> bool:
        feed = collector.feed
        return feed.backfills_pending() == 0 and all(
            not sim.history(c, venue_name)
            or (feed.symbols.get(c) is not None
                and feed.symbols.get(c).last_cum == sim.history(c, venue_name)[-1].cum_volume)
            for c in codes)
    await _wait(done, f"every {venue_name} trade delivered", limit=40)
    await asyncio.sleep(0.3)       # the writer's next flush


async def test_total_fifty_symbols_two_keys_through_the_krx_close_into_the_nxt_after_market(tmp_path):
    """Venue total, 50 symbols on two keys, the clock moved from 15:19:50 (both venues trade)
    through KRX's closing auction (nothing), its single print at 15:30 and NXT's after-market:
    every integrated trade the simulator made is stored exactly once, as venue total."""
    codes = default_watchlist()[:50]
    clock = {"now": at(15, 19, 50)}
    sim = Simulator(SimConfig(rate=0, seed=11, nxt=True, always_open=False, codes=codes,
                              clock=lambda: clock["now"]))
    await sim.start()
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    cfg = CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, credentials=_keys(),
                          codes=codes, venue="total", db_url=db, paths=_paths(tmp_path),
                          always_open=False)
    collector = build_collector(cfg, clock=lambda: clock["now"])
    errors: list[ErrorEvent] = []
    collector.bus.subscribe(ErrorEvent, errors.append)
    try:
        await collector.start()
        await _wait(lambda: collector.feed.all_live(), "all 50 live")
        sessions = sim.sessions()
        assert len(sessions) == 2 and sum(len(s["subscriptions"]) for s in sessions) == 50
        assert {tr for s in sessions for tr, _ in s["subscriptions"]} == {TR_TOTAL}
        sim.set_rate(800)
        for when, seconds in ((at(15, 19, 55), 1.5), (at(15, 25), 0.8), (at(15, 30, 0), 0.6),
                              (at(15, 35), 2.0)):
            clock["now"] = when
            await asyncio.sleep(seconds)
        sim.set_rate(0)
        await _settled(collector, sim, "total", codes)
        assert collector.venue == "total"
    finally:
        await collector.stop()
        await sim.stop()
    rows = _rows(db)
    assert {v for v, _ in rows} == {VENUE_NO["total"]}
    made = stored = krx_close = after_market = 0
    for code in codes:
        hist = _history(sim, code, "total")
        have = rows.get((VENUE_NO["total"], code), [])
        assert have == hist, code                     # every integrated trade, once, in order
        _assert_chain(have, code)
        made += len(hist)
        stored += len(have)
        trades = sim.history(code, "total")
        krx_close += sum(1 for t in trades if t.venue == "krx" and t.time >= "153000")
        after_market += sum(1 for t in trades if t.venue == "nxt" and t.time >= "153000")
        assert not [t for t in trades if "152000" <= t.time < "153000"]    # the closing auction
    assert made == stored > 1_000
    assert krx_close == len(codes)                    # one closing print each
    assert after_market > 50                          # NXT kept trading after the KRX close
    assert not [e for e in errors if e.code == "feed.venue_fallback"]


async def test_venue_switch_mid_run_loses_and_duplicates_nothing(tmp_path):
    """krx → total through the live settings path (Settings → Collector.apply): the KRX chain up
    to the switch and the integrated chain from before it are each complete and gap-free, the
    switch leaves no stretch of time uncovered, and a move alerted on KRX is not alerted again
    when the integrated back-fill replays it."""
    codes = default_watchlist()[:12]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    # a rate at which no second of a symbol holds more trades than one back-fill page (KIS's
    # time paging cannot reach the rest of such a second: an unrecoverable gap, reported)
    cfg = CollectorConfig(env="sim", codes=codes, sim_rate=150, sim_keys=2, sim_spikes=False,
                          venue="krx", db_url=db, paths=_paths(tmp_path))
    collector = build_collector(cfg)
    alerts: list[AlertEvent] = []
    collector.bus.subscribe(AlertEvent, alerts.append)
    jumped = codes[1]
    try:
        await collector.start()
        sim = collector.exchange.simulator
        await _wait(lambda: collector.feed.all_live(), "all live on krx")
        await asyncio.sleep(1.0)
        sim.jump(jumped, 8.0, 1.0)
        await _wait(lambda: [a for a in alerts if a.stock_code == jumped], "the KRX alert")
        await asyncio.sleep(0.5)
        changed = await collector.apply(replace(collector.config, venue="total"))
        assert changed == ["venue"]
        assert collector.venue == "total"
        await _wait(lambda: collector.feed.all_live(), "all live on total")
        await _wait(lambda: {tr for s in sim.sessions() for tr, _ in s["subscriptions"]} == {TR_TOTAL},
                    "only H0UNCNT0 registered")
        await asyncio.sleep(1.5)
        sim.set_rate(0)
        await _settled(collector, sim, "total", codes)
        summary = collector.summary()
    finally:
        await collector.stop()
    rows = _rows(db)
    assert {v for v, _ in rows} == {VENUE_NO["krx"], VENUE_NO["total"]}
    for code in codes:
        krx = rows[(VENUE_NO["krx"], code)]
        total = rows[(VENUE_NO["total"], code)]
        _assert_chain(krx, f"{code} krx")
        _assert_chain(total, f"{code} total")
        hist = _history(sim, code, "krx")
        first = hist.index(krx[0])
        assert krx == hist[first:first + len(krx)]                    # up to the switch
        hist = _history(sim, code, "total")
        first = hist.index(total[0])
        assert total == hist[first:]                                  # to the last trade made
        assert total[0][2] <= krx[-1][2]     # the integrated chain starts before KRX's ended
    assert [a.stock_code for a in alerts].count(jumped) == 1, alerts  # not alerted twice
    assert summary["venue"] == "total" and summary["alerts_quieted"] >= 1


async def test_venue_switch_by_a_restart_on_the_same_database(tmp_path):
    """Run 1 streams krx, run 2 (same database, same market) total: run 2 has no integrated
    trade stored today, so it back-fills the integrated chain by time from the alert window
    before run 1's last KRX trade — the stretch of the restart is covered, nothing collides."""
    codes = default_watchlist()[:8]
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    async with Simulator(SimConfig(rate=120, seed=3, nxt=True, codes=codes)) as sim:
        def config(v: str) -> CollectorConfig:     # a 2 s alert window: the back-fill's reach
            return CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url,
                                   credentials=_keys(1), codes=codes, venue=v, db_url=db,
                                   paths=_paths(tmp_path), always_open=True, window_seconds=2)
        first = build_collector(config("krx"))
        await first.start()
        try:
            await _wait(lambda: first.feed.all_live(), "run 1 live")
            await asyncio.sleep(4.0)
        finally:
            await first.stop()
        await asyncio.sleep(1.0)                   # trades nobody streams: run 2 back-fills them
        second = build_collector(config("total"))
        await second.start()
        try:
            await _wait(lambda: second.feed.all_live(), "run 2 live")
            await asyncio.sleep(1.0)
            sim.set_rate(0)
            await _settled(second, sim, "total", codes)
        finally:
            await second.stop()
        rows = _rows(db)
        for code in codes:
            krx, total = rows[(VENUE_NO["krx"], code)], rows[(VENUE_NO["total"], code)]
            _assert_chain(krx, f"{code} krx")
            _assert_chain(total, f"{code} total")
            hist = _history(sim, code, "total")
            assert total == hist[hist.index(total[0]):], code
            last = datetime.strptime(krx[-1][2], "%H%M%S")
            since = (last - timedelta(seconds=2)).strftime("%H%M%S")
            assert since <= total[0][2] <= krx[-1][2], code    # from the window before: covered
            first_at = hist.index(total[0])
            assert first_at == 0 or hist[first_at - 1][2] < since, code


async def _fallback_run(tmp_path, fault: str, caplog) -> None:
    """Venue total on a server that does not offer H0UNCNT0 (``fault``: refuse_tr = OPSP8991,
    mute_tr = acknowledged but silent and REST UN refused): one WARNING, one ErrorEvent, KRX
    for the run, every KRX trade since the feed started stored."""
    codes = default_watchlist()[:45]                 # 41 + 4: both keys carry symbols
    sim = Simulator(SimConfig(rate=300, seed=4, nxt=True, codes=codes))
    await sim.start()
    getattr(sim.faults, fault)(TR_TOTAL)
    db = f"sqlite:///{tmp_path / 'ticks.sqlite3'}"
    cfg = CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url, credentials=_keys(),
                          codes=codes, venue="total", db_url=db, paths=_paths(tmp_path),
                          always_open=True)
    collector = build_collector(cfg)
    errors: list[ErrorEvent] = []
    collector.bus.subscribe(ErrorEvent, errors.append)
    await asyncio.sleep(1.0)                         # trades the back-fill must find
    caplog.set_level(logging.WARNING, logger="kis_desk")
    try:
        await collector.start()
        started = collector.feed.started_hhmmss      # the back-fill anchor of the fallback
        await _wait(lambda: collector.venue == "krx", "the fallback")
        await _wait(lambda: collector.feed.all_live(), "all live on krx")
        # registrations acknowledged on H0UNCNT0 after the switch are unsubscribed there too
        await _wait(lambda: {tr for s in sim.sessions() for tr, _ in s["subscriptions"]} == {TR_TRADES},
                    "only H0STCNT0 registered")
        assert sum(len(s["subscriptions"]) for s in sim.sessions()) == len(codes)
        await asyncio.sleep(1.5)
        sim.set_rate(0)
        await _settled(collector, sim, "krx", codes)
        summary = collector.summary()
    finally:
        await collector.stop()
        await sim.stop()
    fallbacks = [e for e in errors if e.code == "feed.venue_fallback"]
    assert len(fallbacks) == 1 and fallbacks[0].params["venue"] == "total"
    lines = [r for r in caplog.records if "falling back to krx" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "not offered" in lines[0].getMessage()
    assert summary["venue"] == "krx" and summary["venue_fallback_from"] == "total"
    rows = _rows(db)
    assert {v for v, _ in rows} == {VENUE_NO["krx"]}
    for code in codes:
        have = rows[(VENUE_NO["krx"], code)]
        _assert_chain(have, code)
        hist = _history(sim, code, "krx")
        first = hist.index(have[0])
        assert have == hist[first:], code
        # the interval since the feed started is back-filled: the trade before the first stored
        # one is older than that
        assert first == 0 or hist[first - 1][2] < started, (code, hist[first - 1], started)


async def test_refused_integrated_tr_falls_back_to_krx_without_losing_trades(tmp_path, caplog):
    await _fallback_run(tmp_path, "refuse_tr", caplog)


async def test_silent_integrated_tr_with_refused_market_code_falls_back_too(tmp_path, caplog):
    await _fallback_run(tmp_path, "mute_tr", caplog)


async def test_mock_server_falls_back_from_nxt(tmp_path, caplog):
    """The simulator's mock mode (H0NXCNT0 not offered, REST NX refused, 2 requests/s): venue nxt
    falls back to krx with one notice and streams KRX."""
    codes = default_watchlist()[:3]
    async with Simulator(SimConfig(rate=200, seed=6, nxt=True, mode="mock", codes=codes)) as sim:
        cfg = CollectorConfig(env="sim", ws_url=sim.ws_url, rest_url=sim.rest_url,
                              credentials=_keys(1), codes=codes, venue="nxt", always_open=True,
                              db_url=f"sqlite:///{tmp_path / 't.sqlite3'}", paths=_paths(tmp_path))
        collector = build_collector(cfg)
        errors: list[ErrorEvent] = []
        collector.bus.subscribe(ErrorEvent, errors.append)
        await collector.start()
        try:
            await _wait(lambda: collector.venue == "krx" and collector.feed.all_live(), "KRX live")
            await _wait(lambda: collector.ticks_total > 20, "KRX trades")
        finally:
            await collector.stop()
    assert [e.params["venue"] for e in errors if e.code == "feed.venue_fallback"] == ["nxt"]
    assert set(_rows(cfg.db_url)) == {(0, c) for c in codes}


def test_the_fallback_notice_in_both_languages():
    from kis_desk.ui.i18n import error_text, set_language

    event = ErrorEvent("feed", "total trades … falling back to krx", code="feed.venue_fallback",
                       params={"venue": "total", "tr_id": TR_TOTAL, "msg_cd": "OPSP8991"})
    try:
        set_language("ko")
        assert "NXT·통합 체결을 제공하지 않습니다" in error_text(event) and "KRX" in error_text(event)
        set_language("en")
        assert error_text(event).startswith("NXT/integrated trades are not offered")
    finally:
        set_language("ko")


def test_settings_dialog_change_of_venue_reaches_the_collector_config(tmp_path):
    """What Settings → apply_settings hands to Collector.apply: only the venue changed."""
    from kis_desk.engine.user_settings import settings_changes

    store = SettingsStore(_paths(tmp_path))
    running = CollectorConfig(env="sim", venue="krx")
    new = settings_changes(running, UserSettings(venue="krx"), UserSettings(venue="total"), store)
    assert new.venue == "total" and replace(new, venue="krx") == running
    same = settings_changes(running, UserSettings(venue="nxt"), UserSettings(venue="nxt"), store)
    assert same.venue == "krx"          # --venue given at start stays unless the user changes it
