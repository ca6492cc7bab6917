"""The "test alert" on Redis: one plainly marked message that checks the alert channel's wiring.

Why not through :class:`~kis_desk.engine.publisher.RedisPublisher`: its alerts are deduplicated,
added to the stream consumers replay and counted as delivered; a wiring check must be none of
that. The test message is a plain ``PUBLISH`` of the alert JSON plus ``"test": true`` on the same
channel, so a subscriber sees exactly what a real alert looks like and can tell it apart. It is
never written to the alerts table (the caller does not hand it to the writer).
"""

from __future__ import annotations

import json

from ..config import redact_url
from ..core.events import AlertEvent

TEST_MARKER = '"test":true'
TEST_ID_PREFIX = "test:"


def alert_check_json(alert: AlertEvent) -> str:
    """The alert's usual JSON with ``"test": true``."""
    payload = alert.to_dict()
    payload["test"] = True
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def is_test_message(data: bytes | str) -> bool:
    """True for a message made by :func:`alert_check_json` (cheap for every other message)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if TEST_MARKER not in text:
        return False
    try:
        return json.loads(text).get("test") is True
    except (ValueError, AttributeError):
        return False


async def publish_test_alert(redis_url: str, channel: str, alert: AlertEvent) -> int:
    """PUBLISH the test alert; returns how many subscribers received it.

    Raises ConnectionError with a redacted, one-line reason when Redis cannot be reached.
    """
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    client = aioredis.from_url(redis_url, socket_connect_timeout=3.0, socket_timeout=3.0)
    try:
        return int(await client.publish(channel, alert_check_json(alert)))
    except (RedisError, OSError) as exc:
        raise ConnectionError(f"{redact_url(redis_url)}: {type(exc).__name__}") from None
    finally:
        await client.aclose()
