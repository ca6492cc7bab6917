"""The "테스트 알림" (test alert): one made-up alert through every notification channel.

Why: a trader must know before the open that an alert will reach them. The check shows the
banner, plays the sound, sends the tray message and — when Redis is configured — publishes one
message marked ``"test": true`` on the alert channel (engine ``send_test_alert``). It never goes
through the detector, the writer or the alert log, so no test alert is ever stored as a real one.
Its id starts with ``test:`` and its banner text with "[테스트]".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..core.events import AlertEvent
from ..engine.alert_probe import TEST_ID_PREFIX
from ..protocol.records import KST
from .i18n import tr
from .notifications import Notifier, alert_text

_serial = itertools.count(1)


def make_test_alert(code: str, name: str, direction: str = "up", price: int = 10_000) -> AlertEvent:
    """A plausible ±5 % move on ``code``; ``alert_id`` = ``test:<code>:<time>:<n>``."""
    now = datetime.now(KST).replace(microsecond=0)
    pct = 5.0 if direction == "up" else -5.0
    base = max(1, round(price / (1 + pct / 100)))
    return AlertEvent(alert_id=f"{TEST_ID_PREFIX}{code}:{now:%Y%m%d%H%M%S}:{next(_serial)}", stock_code=code,
                      stock_name=name, direction=direction, change_pct=pct, base_price=base,
                      base_time=now - timedelta(seconds=30), trigger_price=price, trigger_time=now,
                      trigger_cum_volume=0, detected_at=datetime.now(timezone.utc), window_seconds=60.0,
                      threshold_pct=5.0)


@dataclass
class AlertCheckResult:
    alert: AlertEvent
    banner: bool = False
    tray: bool = False
    sound: str = ""                 # backend name, "beep", "muted" or "" (sound off)
    redis: str = "off"              # off | sent | failed
    redis_channel: str = ""
    redis_receivers: int = 0
    redis_error: str = ""
    lines: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [tr("test_alert.banner"),
                 tr("test_alert.tray_yes") if self.tray else tr("test_alert.tray_no"),
                 tr("test_alert.sound", backend=self.sound) if self.sound else tr("test_alert.sound_off")]
        if self.redis == "sent":
            lines.append(tr("test_alert.redis_ok", channel=self.redis_channel, receivers=self.redis_receivers))
        elif self.redis == "failed":
            lines.append(tr("test_alert.redis_failed", error=self.redis_error))
        else:
            lines.append(tr("test_alert.redis_off"))
        return lines


def show_test_alert(notifier: Notifier, alert: AlertEvent) -> AlertCheckResult:
    """The local channels (banner, tray, sound), synchronously on the GUI thread."""
    done = notifier.notify(alert, tr("test_alert.prefix") + alert_text(alert))
    return AlertCheckResult(alert, banner=bool(done["banner"]), tray=bool(done["tray"]), sound=str(done["sound"]))


async def send_to_redis(engine: Any, result: AlertCheckResult) -> AlertCheckResult:
    """Publish the test alert when the engine has Redis (``send_test_alert``); fills ``result``."""
    send = getattr(engine, "send_test_alert", None)
    if send is None:
        return result
    try:
        sent = await send(result.alert)
    except (ConnectionError, OSError, RuntimeError) as exc:
        result.redis, result.redis_error = "failed", str(exc)
        return result
    if sent is not None:
        result.redis = "sent"
        result.redis_channel, result.redis_receivers = sent
    return result


async def run_alert_check(notifier: Notifier, engine: Any, code: str, name: str,
                          direction: str = "up") -> AlertCheckResult:
    result = show_test_alert(notifier, make_test_alert(code, name, direction))
    return await send_to_redis(engine, result)
