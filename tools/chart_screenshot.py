"""``python -m tools.chart_screenshot``: the detail chart with 40 minutes of 1-minute candles,
an alert marker, a VI marker and the previous close, saved as ``docs/screenshot-chart.png``
(and ``-dark``). Trades are a seeded random walk with one scripted surge, so the picture is the
same on every run. Runs under ``xvfb-run`` (or ``QT_QPA_PLATFORM=offscreen``).
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def day_of_trades(minutes: int = 40, seed: int = 7):
    from kis_desk.core.ticks import Tick
    from kis_desk.protocol.records import KST

    rnd = random.Random(seed)
    t0 = datetime.now(KST).replace(hour=9, minute=0, second=0, microsecond=0)
    prev_close, price, cum, out = 70_000, 70_300, 0, []
    for s in range(0, minutes * 60, 2):
        drift = 60 if 1500 <= s < 1560 else 0          # a surge at 09:25
        price = max(1_000, price + drift + rnd.choice((-100, 0, 0, 100)))
        vol = rnd.randint(1, 40) * (4 if drift else 1)
        cum += vol
        out.append(Tick("005930", t0 + timedelta(seconds=s), price, vol, cum, price - prev_close,
                        None, None, 0.0, "ws"))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.chart_screenshot")
    p.add_argument("--out", type=Path, default=ROOT / "docs")
    args = p.parse_args(argv)
    from PySide6.QtWidgets import QApplication

    from kis_desk.core.events import AlertEvent
    from kis_desk.ui.appearance import apply_theme, style_charts
    from kis_desk.ui.chart import DetailChart, history_arrays
    from kis_desk.ui.i18n import set_language
    from kis_desk.ui.theme import palette_for

    app = QApplication.instance() or QApplication(sys.argv)
    set_language("ko")
    trades = day_of_trades()
    surge = next(t for t in trades if t.timestamp.minute == 25 and t.timestamp.second >= 50)
    base = next(t for t in trades if t.timestamp.minute == 25)
    alert = AlertEvent(f"005930:{surge.timestamp:%Y%m%d}:up:1:{surge.cum_volume}", "005930", "삼성전자", "up",
                       round((surge.price - base.price) / base.price * 100, 2), base.price, base.timestamp,
                       surge.price, surge.timestamp, surge.cum_volume, datetime.now(timezone.utc), 60, 1.0)
    for dark, suffix in ((False, ""), (True, "-dark")):
        apply_theme("dark" if dark else "light", "korean", app)     # the chart's own widgets too
        chart = DetailChart()
        chart.resize(900, 560)
        style_charts(chart, dark)
        chart.set_palette(palette_for("korean", dark))
        chart.show_symbol("005930", "삼성전자")
        chart.load_history("005930", history_arrays(trades), [alert])
        chart.add_vi(surge.timestamp.timestamp() + 30)
        chart.show()
        chart.redraw()
        for _ in range(5):
            app.processEvents()
        path = args.out / f"screenshot-chart{suffix}.png"
        chart.grab().save(str(path))
        print(path)
        chart.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
