"""MoveDetector: exact thresholds, window boundary, re-arm, steps, replay/out-of-order, days,
overrides, and a property test against a brute-force reference."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis_desk.engine.detector import MoveDetector
from kis_desk.core.events import AlertEvent, event_from_json
from kis_desk.core.ticks import Tick
from kis_desk.protocol.records import KST

T0 = datetime(2024, 1, 2, 9, 0, 0, tzinfo=KST)
FIXED_NOW = datetime(2024, 1, 2, 0, 0, 5, tzinfo=timezone.utc)


def tick(code: str, ts: datetime, price: int, cum: int, source: str = "ws", state: str = "",
         volume: int = 1) -> Tick:
    return Tick(code, ts, price, volume, cum, None, None, None, 0.0, source, "krx", state)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def det(**kw) -> MoveDetector:
    kw.setdefault("clock", lambda: FIXED_NOW)
    return MoveDetector(**kw)


class Feed:
    """Builds one symbol's trades with growing cumulative volume (10 shares each, no trade
    missing: each trade's ``cum_volume - volume`` is the previous one's ``cum_volume``)."""

    def __init__(self, code: str = "005930") -> None:
        self.code, self.cum = code, 0

    def __call__(self, seconds: float, price: int) -> Tick:
        self.cum += 10
        return tick(self.code, at(seconds), price, self.cum, volume=10)


# -- exact boundaries --------------------------------------------------------------------------

def test_up_exact_boundary_499_vs_500():
    f = Feed()
    d = det()
    assert d.process([f(0, 10_000), f(1, 10_499)]) == []        # +4.99 %
    alerts = d.process([f(2, 10_500)])                         # +5.00 %
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.direction, a.change_pct, a.base_price, a.trigger_price, a.step) == ("up", 5.0, 10_000, 10_500, 1)
    assert a.base_time == at(0) and a.trigger_time == at(2)
    assert a.alert_id == "005930:20240102:up:1:30"
    assert a.detected_at == FIXED_NOW and a.window_seconds == 60.0 and a.threshold_pct == 5.0


def test_down_exact_boundary_499_vs_500():
    f = Feed()
    d = det()
    assert d.process([f(0, 10_000), f(1, 9_501)]) == []          # −4.99 %
    [a] = d.process([f(2, 9_500)])                              # −5.00 %
    assert (a.direction, a.change_pct, a.base_price, a.step) == ("down", -5.0, 10_000, 1)
    assert a.alert_id == "005930:20240102:down:1:30"


def test_fractional_threshold_is_exact():
    # 4.99 % is not representable in binary floating point; the comparison must still be exact.
    f = Feed()
    d = det(threshold_pct=4.99)
    assert d.process([f(0, 10_000), f(1, 10_498)]) == []         # +4.98 %
    [a] = d.process([f(2, 10_499)])                             # +4.99 % exactly
    assert a.change_pct == 4.99 and a.threshold_pct == 4.99
    f2 = Feed("000660")
    [u] = det(threshold_pct=0.1).process([f2(0, 1000), f2(1, 1001)])    # +0.1 % exactly
    assert u.direction == "up" and u.change_pct == 0.1
    f3 = Feed("000660")
    [b] = det(threshold_pct=0.1).process([f3(0, 1000), f3(1, 999)])   # −0.1 % exactly
    assert b.direction == "down" and b.change_pct == -0.1


def test_move_from_any_point_not_only_first_trade():
    f = Feed()
    d = det()
    # The window opens at 10 000 but the move starts from the later low of 9 600.
    assert d.process([f(0, 10_000), f(5, 9_800), f(10, 9_600), f(20, 9_900)]) == []
    [a] = d.process([f(30, 10_080)])                              # +5.00 % from 9 600
    assert (a.direction, a.base_price, a.base_time) == ("up", 9_600, at(10))


def test_base_is_latest_occurrence_of_extreme():
    f = Feed()
    [a] = det().process([f(0, 100), f(5, 100), f(7, 102), f(9, 100), f(11, 105)])
    assert a.base_time == at(9)


# -- window boundary ---------------------------------------------------------------------------

def test_window_lower_bound_is_exclusive():
    # The window holds (T - window, T] plus the ONE trade that stood at its start (the last at
    # or before T - window): a trade before that standing trade is outside the window.
    f = Feed()
    d = det()
    assert d.process([f(0, 10_000), f(30, 10_400), f(90, 10_500)]) == []   # stands: 10 400
    f = Feed()
    d = det()
    assert d.process([f(0, 10_000), f(60, 10_400), f(120, 10_500)]) == []  # 60 = T - window
    f = Feed()
    d = det()
    [a] = d.process([f(0, 10_000), f(31, 10_400), f(90, 10_500)])           # 10 000 stood at 30
    assert a.base_time == at(0)
    f = Feed()
    d = det()
    [a] = d.process([f(0, 10_000), f(59, 10_500)])
    assert a.base_time == at(0)


def test_price_standing_at_window_start_is_a_base():
    # The last trade at or before T - window is the price that stood when the window opened.
    f = Feed()
    [a] = det().process([f(0, 10_000), f(60, 10_500)])
    assert (a.base_price, a.base_time, a.trigger_time) == (10_000, at(0), at(60))
    f = Feed()
    [a] = det().process([f(0, 10_000), f(600, 9_500)])        # stood there for ten minutes
    assert (a.direction, a.base_price, a.base_time) == ("down", 10_000, at(0))


def test_vi_auction_print_completes_a_move_from_the_standing_price():
    """Trades at 100 until 09:10:00, a 2-minute VI (no trades), the auction print at 106 at
    09:12:05: one up alert from 100, marked as a VI move."""
    f = Feed()
    d = det()
    quiet = [f(s, 100) for s in range(0, 601, 5)]                   # 09:00:00 … 09:10:00
    assert d.process(quiet) == []
    f.cum += 10
    auction = Tick("005930", at(725), 106, 10, f.cum, None, None, None, 0.0, "ws",
                   "krx", "dynamic_vi")
    [a] = d.process([auction])
    assert (a.direction, a.base_price, a.base_time, a.trigger_price, a.step, a.change_pct) == (
        "up", 100, at(600), 106, 1, 6.0)
    assert a.vi == "dynamic_vi" and a.trigger_time == T0.replace(minute=12, second=5)
    # the next trades at the new price are the same episode: nothing more
    assert d.process([f(726, 106), f(727, 107)]) == []


def test_vi_of_an_alert_from_a_vi_print_inside_the_window():
    # The VI print is not the trigger but lies between the base and the trigger.
    f = Feed()
    d = det()
    assert d.process([f(0, 1000)]) == []
    f.cum += 10
    vi_print = Tick("005930", at(10), 1030, 1, f.cum, None, None, None, 0.0, "ws", "krx",
                    "static_vi")
    assert d.process([vi_print]) == []
    [a] = d.process([f(12, 1050)])
    assert a.vi == "static_vi" and a.base_price == 1000
    # a move that does not go through a VI print says nothing
    g = Feed("000660")
    [b] = det().process([g(0, 1000), g(1, 1050)])
    assert b.vi == ""


def test_a_price_behind_missing_trades_stands_only_once_they_are_back_filled():
    """A stall: the first trade after it says trades are missing before it (cum_volume - volume
    beyond the last known one). Against the price before the stall it would be +6 %, but what
    stood at the window's start is unknown: no alert. The back-fill brings the missing trades;
    the window is evaluated again, and the move from the price that stood alerts then, once."""
    f = Feed()
    d = det()
    assert d.process([f(0, 10_000)]) == []                                      # cum 10
    after = tick("005930", at(90), 10_600, 40, volume=10)                        # 20, 30 missing
    assert d.process([after]) == []
    st = d._states["005930"]
    assert st.stand is None and [e[2] for e in st.hist] == [10, 40]
    missing = [tick("005930", at(50), 10_050, 20, "backfill", volume=10),
               tick("005930", at(60), 10_100, 30, "backfill", volume=10)]
    [a] = d.process(missing)
    assert (a.base_price, a.base_time, a.trigger_price, a.trigger_cum_volume) == (10_000, at(0), 10_600, 40)
    assert a.change_pct == 6.0 and a.source == "ws"            # the trigger is the live trade
    assert d.process(missing + [after]) == []                                    # replays: nothing
    # a hole inside the window changes nothing: the window's own trades are all known
    g = Feed("000660")
    d2 = det()
    assert d2.process([g(0, 1000), g(10, 1000)]) == []
    [b] = d2.process([tick("000660", at(20), 1060, 100, volume=1)])              # 30…99 missing
    assert (b.base_price, b.base_time) == (1000, at(10))


def test_window_boundary_down_and_custom_window():
    f = Feed()
    d = det(window_seconds=10)
    assert d.process([f(0, 10_000), f(5, 9_900), f(15, 9_500)]) == []     # 9 900 stood at 5
    f = Feed()
    d = det(window_seconds=10)
    assert len(d.process([f(0, 10_000), f(9, 9_500)])) == 1
    f = Feed()
    d = det(window_seconds=10)
    assert len(d.process([f(0, 10_000), f(6, 9_900), f(15, 9_500)])) == 1  # 10 000 stood at 5


def test_same_second_trades_are_in_order():
    f = Feed()
    [a] = det().process([f(5, 1000), f(5, 1020), f(5, 1050)])
    assert a.base_time == a.trigger_time == at(5)


# -- storms, re-arm, steps ---------------------------------------------------------------------

def test_one_alert_per_direction_until_rearmed():
    f = Feed()
    d = det()
    alerts = d.process([f(0, 1000), f(1, 1050), f(2, 1060), f(3, 1051), f(4, 1070), f(5, 1040)])
    assert [a.step for a in alerts] == [1]
    # Still ≥ 2.5 % above the window minimum (1000): not re-armed.
    assert d.process([f(6, 1026), f(7, 1060)]) == []
    # Below half the threshold (< 2.5 % above the minimum): re-armed; the next 5 % alerts again.
    assert d.process([f(8, 1024)]) == []
    [a] = d.process([f(9, 1050)])
    assert (a.step, a.base_price, a.alert_id) == (1, 1000, "005930:20240102:up:1:100")


def test_rearm_when_window_slides_past_base():
    f = Feed()
    d = det()
    assert len(d.process([f(0, 1000), f(10, 1060)])) == 1
    assert d.process([f(71, 1060)]) == []          # 1060 stood at 11 and since: move 0 → re-armed
    [a] = d.process([f(80, 1113)])                  # +5.00 % from 1060
    assert (a.base_price, a.step) == (1060, 1)


def test_steps_from_same_base():
    f = Feed()
    d = det()
    alerts = d.process([f(0, 1000), f(1, 1050), f(2, 1099), f(3, 1100), f(4, 1120), f(5, 1150)])
    assert [(a.step, a.base_price, a.change_pct) for a in alerts] == [
        (1, 1000, 5.0), (2, 1000, 10.0), (3, 1000, 15.0)]
    assert [a.alert_id.split(":")[3] for a in alerts] == ["1", "2", "3"]


def test_gap_over_two_steps_is_one_alert():
    f = Feed()
    [a] = det().process([f(0, 1000), f(1, 1120)])
    assert (a.step, a.change_pct) == (2, 12.0)


def test_down_steps_and_both_directions_in_one_window():
    f = Feed()
    d = det()
    alerts = d.process([f(0, 1000), f(1, 950), f(2, 900), f(3, 1000)])
    assert [(a.direction, a.step) for a in alerts] == [("down", 1), ("down", 2), ("up", 2)]
    # 900 → 1000 is +11.11 %; and the down episode re-armed when the price went back to its max.
    assert alerts[2].change_pct == 11.11 and alerts[2].base_price == 900


# -- replay, out of order, days ----------------------------------------------------------------

def test_replayed_trades_never_alert_twice():
    f = Feed()
    trades = [f(0, 1000), f(1, 1050), f(2, 1000), f(3, 1020)]
    d = det()
    first = d.process(trades)
    assert len(first) == 1
    # The same trades again (socket + back-fill overlap): all ignored.
    assert d.process(trades) == []
    assert d.stats()["replayed"] == 4
    # A lower cum_volume not seen yet is a late trade (merged in exchange order, below); seen
    # twice, the second copy is a replay.
    late = tick("005930", at(2), 1010, 35)
    assert d.process([late]) == [] and d.stats()["late"] == 1
    assert d.process([late]) == []
    assert d.stats()["replayed"] == 5


def test_out_of_order_trades_are_ignored():
    f = Feed()
    d = det()
    d.process([f(0, 1000), f(10, 1000)])
    late = tick("005930", at(5), 1200, 1000)                          # older than 09:00:10
    assert d.on_tick(late) == []
    assert d.stats()["out_of_order"] == 1
    # ... and it did not enter the window: 1000 → 1049 is still < 5 % from the min.
    assert d.on_tick(tick("005930", at(11), 1049, 1001)) == []


def test_new_business_date_resets_state():
    d = det()
    assert len(d.process([tick("005930", at(0), 1000, 10), tick("005930", at(1), 1050, 20)])) == 1
    next_day = T0 + timedelta(days=1)
    # cum_volume restarts on a new day: not a replay; the window and the episode restart too.
    assert d.on_tick(tick("005930", next_day, 1100, 5)) == []
    [a] = d.process([tick("005930", next_day + timedelta(seconds=1), 1155, 6)])
    assert a.alert_id == "005930:20240103:up:1:6" and a.base_price == 1100
    # A late trade from the previous day is out of order.
    assert d.on_tick(tick("005930", at(30), 500, 99)) == []


def test_symbols_are_independent_and_names_used():
    d = det(names={"005930": "삼성전자"}.get)
    a_, b_ = Feed("005930"), Feed("000660")
    alerts = d.process([a_(0, 1000), b_(0, 2000), a_(1, 1020), b_(1, 2100), a_(2, 1050)])
    assert [(a.stock_code, a.stock_name) for a in alerts] == [("000660", ""), ("005930", "삼성전자")]


def test_names_failure_does_not_lose_alert():
    def boom(code: str) -> str:
        raise KeyError(code)
    f = Feed()
    [a] = det(names=boom).process([f(0, 1000), f(1, 1050)])
    assert a.stock_name == ""


def test_per_symbol_overrides():
    d = det(overrides={"000660": (10.0, 5.0)})
    assert d.params_for("000660") == (10.0, 5.0) and d.params_for("005930") == (5.0, 60.0)
    h = Feed("000660")
    assert d.process([h(0, 1000), h(1, 1050), h(2, 1099)]) == []
    assert d.process([h(10, 1000), h(14, 1100)])[0].threshold_pct == 10.0
    h2 = Feed("000661")
    d.set_override("000661", 2.0, 3.0)
    # +2.0 % from 1000 at 4 s, but 1000 neither stood at 1 s nor traded after: a 3 s window
    assert d.process([h2(0, 1000), h2(1, 1019), h2(4, 1020), h2(5, 1020)]) == []
    [a] = d.process([h2(8, 1041)])                             # +2.06 % from 1020 (stood at 5)
    assert (a.threshold_pct, a.window_seconds, a.base_price) == (2.0, 3.0, 1020)
    d.clear_override("000661")
    assert d.params_for("000661") == (5.0, 60.0)


def test_reset_forgets_replay_marks():
    f = Feed()
    trades = [f(0, 1000), f(1, 1050)]
    d = det()
    assert len(d.process(trades)) == 1
    d.reset("005930")
    assert len(d.process(trades)) == 1
    d.reset()
    assert d.stats()["symbols"] == 0


def test_invalid_parameters_rejected():
    import pytest
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError):
            MoveDetector(threshold_pct=bad)
    with pytest.raises(ValueError):
        MoveDetector(window_seconds=0)


def test_alert_json_round_trip():
    f = Feed()
    [a] = det(names=lambda c: "삼성전자").process([f(0, 71_000), f(30, 74_600)])
    text = a.to_json()
    d = json.loads(text)
    assert d == {
        "type": "alert", "alert_id": "005930:20240102:up:1:20", "stock_code": "005930",
        "stock_name": "삼성전자", "direction": "up", "change_pct": 5.07, "base_price": 71000,
        "base_time": "2024-01-02T09:00:00+09:00", "trigger_price": 74600,
        "trigger_time": "2024-01-02T09:00:30+09:00", "trigger_cum_volume": 20,
        "detected_at": "2024-01-02T00:00:05+00:00", "window_seconds": 60.0,
        "threshold_pct": 5.0, "step": 1, "late": False, "delay_s": 0.0, "source": "ws",
        "kind": "move", "muted": False, "vi": "",
    }
    assert event_from_json(text) == a and isinstance(event_from_json(text), AlertEvent)
    # An old reader's JSON (no late fields) still reads, with the defaults.
    for k in ("late", "delay_s", "source", "vi"):
        del d[k]
    assert event_from_json(json.dumps(d)) == a


# -- property test against a brute-force reference -----------------------------------------------

class Reference:
    """Recomputes the whole window for every trade, with Fractions. Same rules, no deques.
    The base candidates are the trades in (T - window, T] and the last trade at or before
    T - window (the price that stood when the window opened) — when no trade is missing between
    it and the window's first trade (``cum_volume - volume`` of that one is its ``cum_volume``)."""

    def __init__(self, pct: float, window: float) -> None:
        self.pct = Fraction(Decimal(str(pct)))
        self.window = timedelta(seconds=window)
        self.state: dict[str, dict] = {}
        # alert_id -> [cum_volume opening its episode, cum_volume re-arming it (None: open)]
        self.episodes: dict[str, list] = {}
        self.vi: dict[str, str] = {}    # alert_id -> the VI state of a print from base to trigger

    def feed(self, ticks: list[Tick]) -> list[tuple]:
        out = []
        for t in ticks:
            s = self.state.get(t.stock_code)
            day = t.timestamp.date()
            if s is not None and day < s["day"]:
                continue
            if s is None or day > s["day"]:
                s = self.state[t.stock_code] = {"day": day, "trades": [], "last_ts": None,
                                                "last_cum": -1, "up": 0, "down": 0,
                                                "up_ep": [], "down_ep": []}
            elif t.timestamp < s["last_ts"]:
                continue
            if t.price <= 0 or t.cum_volume <= s["last_cum"]:
                continue
            s["last_ts"], s["last_cum"] = t.timestamp, t.cum_volume
            s["trades"].append(t)
            start = t.timestamp - self.window
            stood = [x for x in s["trades"] if x.timestamp <= start][-1:]   # the price at the start
            inside = [x for x in s["trades"] if x.timestamp > start]
            if stood and inside[0].cum_volume - inside[0].volume != stood[0].cum_volume:
                stood = []                      # trades missing in between: it is not known
            win = stood + inside
            lo = min(x.price for x in win)
            hi = max(x.price for x in win)
            lo_t = [x for x in win if x.price == lo][-1]
            hi_t = [x for x in win if x.price == hi][-1]
            for direction, base_t, key in (("up", lo_t, "up"), ("down", hi_t, "down")):
                base = base_t.price
                move = Fraction(abs(t.price - base), base) * 100
                if s[key] and move < self.pct / 2:
                    s[key] = 0
                    for span in s[key + "_ep"]:
                        span[1] = t.cum_volume
                    s[key + "_ep"] = []
                level = math.floor(move / self.pct)
                if level > s[key]:
                    if not s[key]:
                        s[key + "_ep"] = []
                        since = t.cum_volume
                    else:
                        since = s[key + "_ep"][0][0]
                    span = [since, None]
                    s[key + "_ep"].append(span)
                    aid = f"{t.stock_code}:{day:%Y%m%d}:{direction}:{level}:{t.cum_volume}"
                    self.episodes[aid] = span
                    through = [x.state for x in s["trades"]
                               if base_t.cum_volume <= x.cum_volume <= t.cum_volume
                               and x.state in ("static_vi", "dynamic_vi")]
                    self.vi[aid] = t.state if t.state in ("static_vi", "dynamic_vi") else (
                        through[-1] if through else "")
                    s[key] = level
                    cents = math.floor(move * 100 + Fraction(1, 2))     # half-up, exact
                    signed = Fraction(cents if direction == "up" else -cents, 100)
                    out.append((f"{t.stock_code}:{day:%Y%m%d}:{direction}:{level}:{t.cum_volume}",
                                float(signed),
                                base, base_t.timestamp, t.timestamp, level))
        return out


@st.composite
def trade_streams(draw, consistent: bool = False):
    """Trades of two symbols with replays, new days, VI auctions (a pause of 2 minutes or more,
    longer than every window, then one print, often a jump, marked with a VI state) and holes
    (trades missing before a trade: its ``cum_volume - volume`` is beyond the previous one's);
    unless ``consistent``, also trades whose timestamp is older than their predecessor's
    (inconsistent data the detector must reject)."""
    codes = ["005930", "000660"]
    clock = {c: T0 for c in codes}
    price = {c: draw(st.integers(20, 200)) for c in codes}
    cum = {c: 0 for c in codes}
    out: list[Tick] = []
    for _ in range(draw(st.integers(1, 150))):
        kind = draw(st.sampled_from(["trade"] * 12 + ["replay", "day", "vi", "vi", "hole"]
                                    + ([] if consistent else ["old"])))
        c = draw(st.sampled_from(codes))
        if kind == "trade":
            clock[c] += timedelta(seconds=draw(st.integers(0, 40)))
            price[c] = max(1, price[c] + draw(st.integers(-12, 12)))
            step = draw(st.integers(1, 3))
            cum[c] += step
            out.append(tick(c, clock[c], price[c], cum[c], volume=step))
        elif kind == "hole":
            clock[c] += timedelta(seconds=draw(st.integers(0, 150)))
            price[c] = max(1, price[c] + draw(st.integers(-30, 30)))
            cum[c] += draw(st.integers(2, 5))
            out.append(tick(c, clock[c], price[c], cum[c]))
        elif kind == "vi":
            clock[c] += timedelta(seconds=draw(st.integers(120, 150)))
            price[c] = max(1, price[c] + draw(st.integers(-30, 30)))
            cum[c] += 1
            out.append(tick(c, clock[c], price[c], cum[c],
                            state=draw(st.sampled_from(["static_vi", "dynamic_vi", "halted", ""]))))
        elif kind == "replay" and out:
            out.append(draw(st.sampled_from(out)))
        elif kind == "old":
            cum[c] += 1
            out.append(tick(c, clock[c] - timedelta(seconds=draw(st.integers(1, 30))),
                            draw(st.integers(1, 300)), cum[c]))
        elif kind == "day":
            clock[c] = (clock[c] + timedelta(days=1)).replace(hour=9, minute=0, second=0)
            cum[c] = 0
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trades=trade_streams(),
       pct=st.sampled_from([5.0, 4.99, 2.5, 10.0, 1.0, 0.5, 7.25]),
       window=st.sampled_from([1.0, 5.0, 30.0, 60.0, 2.5]))
def test_matches_brute_force_reference(trades, pct, window):
    got = [(a.alert_id, a.base_price, a.base_time, a.trigger_time, a.step, a.change_pct, a.vi)
           for a in det(threshold_pct=pct, window_seconds=window).process(trades)]
    ref = Reference(pct, window)
    want = [(aid, base, bt, tt, step, chg, ref.vi[aid]) for aid, chg, base, bt, tt, step
            in ref.feed(trades)]
    assert got == want


@settings(max_examples=200, deadline=None)
@given(trades=trade_streams())
def test_feeding_twice_or_in_chunks_changes_nothing(trades):
    d1 = det()
    whole = [a.alert_id for a in d1.process(trades)]
    assert d1.process(trades) == []                     # a full replay never alerts
    d2 = det()
    chunked = []
    for i in range(0, len(trades), 7):
        chunked += [a.alert_id for a in d2.process(trades[i:i + 7])]
    assert whole == chunked
    assert len(set(whole)) == len(whole)                # alert ids are unique


# -- out-of-order arrival (late trades merged in exchange order) ---------------------------------

def _epochs(trades: list[Tick]) -> list[int]:
    """Per trade, how many business dates its symbol had started before it (arrival keeps
    this order: a trade of a past business date is never alerted)."""
    day: dict[str, object] = {}
    epoch: dict[str, int] = {}
    out = []
    for t in trades:
        d = t.timestamp.date()
        if day.get(t.stock_code) is None or d > day[t.stock_code]:
            day[t.stock_code] = d
            epoch[t.stock_code] = epoch.get(t.stock_code, -1) + 1
        out.append(epoch[t.stock_code])
    return out


@st.composite
def late_arrivals(draw, consistent: bool = True):
    """A trade stream and the same trades in another arrival order (within each business date
    of a symbol: shuffled, or whole chunks delayed as after a stall), split into batches.

    ``consistent``: exchange data (time never goes back along cum_volume). With inconsistent
    timestamps which trades are rejected depends on what arrived before them, so "the move the
    market made" is not defined; those streams are checked for convergence and no duplicates only."""
    trades = draw(trade_streams(consistent=consistent))
    epochs = _epochs(trades)
    if draw(st.booleans()):
        keys = [draw(st.integers(0, 1_000)) for _ in trades]
    else:   # delayed chunks: a run of trades arrives after the trades that followed it
        keys, k, i = [], 0, 0
        while i < len(trades):
            n = draw(st.integers(1, 20))
            delay = draw(st.integers(0, 60))
            keys += [k + delay] * min(n, len(trades) - i)
            i += n
            k += n
    order = sorted(range(len(trades)), key=lambda i: (epochs[i], keys[i], i))
    arrived = [trades[i] for i in order]
    cuts = sorted(draw(st.lists(st.integers(0, len(arrived)), max_size=8)))
    batches = [arrived[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrived)])]
    return trades, batches


def _state(d: MoveDetector) -> dict:
    return {code: (s.day, [e[:3] for e in s.hist], s.up_level, s.down_level, s.up_since,
                   s.down_since, s.mins[0][:3] if s.mins else None,
                   s.maxs[0][:3] if s.maxs else None, s.stand[:3] if s.stand else None,
                   {e[0]: e for e in s.log})        # the state after each trade that changed it
            for code, s in d._states.items()}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=late_arrivals(consistent=False), pct=st.sampled_from([5.0, 2.5, 1.0, 7.25]),
       window=st.sampled_from([5.0, 30.0, 60.0]))
def test_late_arrival_of_inconsistent_data_converges_without_duplicates(case, pct, window):
    trades, batches = case
    in_order = det(threshold_pct=pct, window_seconds=window)
    in_order.process(trades)
    d = det(threshold_pct=pct, window_seconds=window)
    ids = [a.alert_id for b in batches for a in d.process(b)]
    assert _state(d) == _state(in_order)
    assert len(set(ids)) == len(ids)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=late_arrivals(), pct=st.sampled_from([5.0, 2.5, 1.0, 7.25]),
       window=st.sampled_from([5.0, 30.0, 60.0]))
def test_late_arrival_converges_and_misses_no_move(case, pct, window):
    trades, batches = case
    in_order = det(threshold_pct=pct, window_seconds=window)
    in_order.process(trades)
    d = det(threshold_pct=pct, window_seconds=window)
    raised = [a for b in batches for a in d.process(b)]
    # 1. After every trade arrived, the state is the one in-order arrival gives.
    assert _state(d) == _state(in_order)
    # 2. No alert twice.
    ids = [a.alert_id for a in raised]
    assert len(set(ids)) == len(ids)
    # 3. Every move the reference finds is alerted: by its own id, or by an alert raised
    #    earlier in the same episode (same direction, step at least as high).
    ref = Reference(pct, window)
    want = ref.feed(trades)
    by_key: dict[tuple, list] = {}
    for a in raised:
        by_key.setdefault((a.stock_code, a.trigger_time.date(), a.direction), []).append(a)
    for aid, *_ in want:
        if aid in ids:
            continue
        code, day, direction, step, cum = aid.split(":")
        since, until = ref.episodes[aid]
        cover = [a for a in by_key.get((code, datetime.strptime(day, "%Y%m%d").date(), direction), [])
                 if a.step >= int(step) and since <= a.trigger_cum_volume
                 and (until is None or a.trigger_cum_volume < until)]
        assert cover, f"move {aid} not alerted"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=late_arrivals(consistent=False))
def test_every_alert_is_right_for_the_trades_known_then(case):
    """Trade by trade: an alert raised is one the reference finds in the trades known at that
    moment (in exchange order); nothing is invented by the merge."""
    trades, batches = case
    arrived = [t for b in batches for t in b]
    d = det()
    known: list[Tick] = []
    for t in arrived:
        known.append(t)
        got = d.process([t])
        if got:
            canon = sorted(known, key=lambda x: (x.stock_code, x.timestamp.date(), x.cum_volume))
            ref_ids = {aid for aid, *_ in Reference(5.0, 60.0).feed(_dedupe(canon))}
            for a in got:
                assert a.alert_id in ref_ids


def _dedupe(ticks: list[Tick]) -> list[Tick]:
    seen, out = set(), []
    for t in ticks:
        k = (t.stock_code, t.timestamp.date(), t.cum_volume)
        if k not in seen:
            seen.add(k)
            out.append(t)
    return out


@settings(max_examples=200, deadline=None)
@given(case=late_arrivals(consistent=False))
def test_in_order_arrival_of_a_permuted_batch_list_equals_reference_when_no_trade_is_late(case):
    """Batches that are each in exchange order and arrive in order: exactly the reference."""
    trades, _ = case
    got = [a.alert_id for a in det().process(trades)]
    assert got == [aid for aid, *_ in Reference(5.0, 60.0).feed(trades)]


def test_jump_inside_a_stall_longer_than_the_window_is_alerted_once_late():
    """Live trades, then 70 s of nothing live (a +8 % jump happens inside), live resumes
    back at the old price, then the back-fill of the stall arrives: one late alert."""
    clock = {"now": T0}
    d = MoveDetector(clock=lambda: clock["now"])
    f = Feed()
    live_before = [f(s, 10_000) for s in range(0, 10)]
    stalled = [f(10 + s, 10_000 if s < 20 else 10_800 if s < 40 else 10_000) for s in range(70)]
    live_after = [f(80 + s, 10_000) for s in range(20)]
    clock["now"] = at(80).astimezone(timezone.utc)
    assert d.process(live_before) == []
    assert d.process(live_after) == []           # nothing moved, as far as live data tell
    clock["now"] = at(108).astimezone(timezone.utc)
    backfilled = [t._replace(source="backfill") for t in stalled]
    alerts = [a for page in (backfilled[:30], backfilled[30:]) for a in d.process(page)]
    # The jump once, late, from the back-fill; the fall back once (found on the live trades
    # after the first page: the second page's crossing is the same episode, not raised again).
    assert [(a.direction, a.step, a.late) for a in alerts] == [("up", 1, True), ("down", 1, True)]
    up = alerts[0]
    assert (up.trigger_time, up.source, up.delay_s, up.change_pct) == (at(30), "backfill", 78.0, 8.0)
    # The same back-fill again (a retry) and the live trades again: nothing twice.
    assert d.process(backfilled) == [] and d.process(live_after) == []


def test_seeded_alerts_are_not_raised_again_after_a_restart():
    f = Feed()
    trades = [f(0, 1000), f(1, 1050), f(2, 1100)]
    first = det().process(trades)
    assert [a.step for a in first] == [1, 2]
    d = det()
    assert d.seed([a.alert_id for a in first] + ["garbage"]) == 2
    assert d.process(trades) == []               # replayed from the journal / back-filled again
    assert d.stats()["suppressed"] == 2


def test_late_spurious_free_merge_suppresses_same_episode_alert():
    """Live data skipped the first crossing (it arrives late); the alert raised on the live
    trade covers the move: the late crossing of the same episode is not raised again."""
    f = Feed()
    t1, t2, t3 = f(0, 100), f(1, 105), f(2, 106)
    d = det()
    [a] = d.process([t1, t3])
    assert (a.step, a.trigger_cum_volume) == (1, 30)
    assert d.process([t2]) == []
    assert d.stats()["suppressed"] == 1


def test_late_trades_of_one_batch_are_judged_together_not_one_by_one():
    """A restart's back-fill arrives after the new run's first live trades (all of it late).
    Merged one trade at a time, the windows were judged on a part of the stretch: the pre-jump
    trades alone made the first live trade look like a fresh +8 % crossing, and the move run 1
    had alerted (seeded) was alerted again under a new id. Judged as one stretch, the move's
    real start lies in the back-fill and the seeded alert covers the episode: no second alert
    (the e2e case: test_alert_completeness clean stop mid back-fill)."""
    before = [tick("000660", at(s * 0.5), 210_000, 100 + s) for s in range(26)]          # 09:00:00–12
    jump = [tick("000660", at(13 + s * 0.5), 227_000, 200 + s) for s in range(20)]     # +8.1 %
    live = [tick("000660", at(30 + s * 0.5), 227_000, 400 + s) for s in range(20)]
    run1_alert = f"000660:{T0:%Y%m%d}:up:1:{jump[5].cum_volume}"       # run 1 saw it live, later
    d = det()
    d.seed([run1_alert])
    assert d.process(live) == []                       # the new run's live trades first
    assert d.process(before + jump) == []              # then the back-fill, all late, in one call
    assert d.stats()["late"] == len(before) + len(jump)
    # the same trades complete and in order: the move's one alert is run 1's
    ref = det()
    assert [a.alert_id for a in ref.process(before + jump + live)] == [f"000660:{T0:%Y%m%d}:up:1:200"]
