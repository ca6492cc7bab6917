"""MoveDetector while running for days: reconfigure in place, roll over to a new business date."""

from __future__ import annotations

from datetime import datetime, timedelta

from kis_desk.core.ticks import Tick
from kis_desk.engine.detector import MoveDetector
from kis_desk.protocol.records import KST

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=KST)


def tick(ts: datetime, price: int, cum: int, code: str = "005930") -> Tick:
    return Tick(code, ts, price, 1, cum, 0, 0.0, 100.0, 0.0, "ws")


def feed(det: MoveDetector, prices: list[int], start_s: int = 0, start_cum: int = 1, day: datetime = T0):
    out = []
    for k, p in enumerate(prices):
        out += det.process([tick(day + timedelta(seconds=start_s + k), p, start_cum + k)])
    return out


def test_lowering_the_threshold_applies_to_moves_from_now_on_without_a_burst():
    det = MoveDetector(5.0, 60)
    assert feed(det, [10_000, 10_050, 10_100]) == []          # +1 %: nothing at 5 %
    det.reconfigure(0.5, 60)
    assert (det.threshold_pct, det.window_seconds) == (0.5, 60.0)
    # the +1 % already under way is level 2 at 0.5 %: not raised as a burst on the next trade
    assert feed(det, [10_100], start_s=3, start_cum=4) == []
    # the next crossing of the new threshold (level 3: +1.5 %) alerts at once
    alerts = feed(det, [10_150], start_s=4, start_cum=5)
    assert [(a.direction, a.step, a.threshold_pct) for a in alerts] == [("up", 3, 0.5)]


def test_a_shorter_window_is_rebuilt_from_the_days_history():
    det = MoveDetector(5.0, 60)
    feed(det, [10_000] + [10_300] * 30)                         # base 10 000 at 10:00:00
    det.reconfigure(5.0, 10)
    # the old base is outside the new 10 s window: +5 % from it no longer counts
    assert feed(det, [10_500], start_s=31, start_cum=32) == []
    det.reconfigure(5.0, 60)                                     # longer again: base back in the window
    assert feed(det, [10_510], start_s=32, start_cum=33) == []   # the move under way is not a burst
    alerts = feed(det, [11_000], start_s=33, start_cum=34)       # +10 %: step 2 at 5 %
    assert [(a.direction, a.step) for a in alerts] == [("up", 2)]


def test_roll_over_forgets_the_old_day_and_ignores_its_late_trades():
    det = MoveDetector(5.0, 60)
    old = feed(det, [10_000, 10_600], start_s=0)
    assert len(old) == 1
    day2 = T0 + timedelta(days=1)
    det.roll_over(day2.date())
    assert det.last_trade("005930") is None and det.codes() == set()
    assert feed(det, [10_700], start_s=5, start_cum=3) == []     # a late trade of the old day
    assert det.out_of_order == 1 and det.last_trade("005930") is None
    # the same code, direction, step and cumulative volume on the new day: a new alert
    new = feed(det, [10_000, 10_600], day=day2)
    assert len(new) == 1 and new[0].alert_id != old[0].alert_id
    assert new[0].alert_id.split(":")[1] == f"{day2:%Y%m%d}"
    assert det.last_trade("005930") == (day2.date(), 2, day2 + timedelta(seconds=1))
