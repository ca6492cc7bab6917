"""How kis-desk opens a Redis client, and how it reads a server that refuses scripts.

Why its own module: the publisher, an attached desktop's stream reader and ``kis-desk alerts``
each keep one client that must never retry on its own (each retries with its own
:class:`~kis_desk.core.backoff.Backoff`) and must tell "Lua scripts refused" from any other
error in the same way.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError


def redis_client(url: str, *, client_name: str, connect_timeout: float = 3.0,
                 socket_timeout: float | None = None, **options: Any) -> aioredis.Redis:
    """A client for ``url`` (``redis://`` / ``rediss://``) that retries nothing itself and
    names itself ``client_name`` (``CLIENT LIST`` shows who is who)."""
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout,
        health_check_interval=0, retry=Retry(NoBackoff(), 0), client_name=client_name, **options)


def scripts_refused(exc: ResponseError) -> bool:
    """The server does not run Lua (``EVAL`` disabled, renamed or denied by an ACL)."""
    text = str(exc).lower()
    return ("unknown command" in text or "noperm" in text or "no permissions" in text
            or "disabled" in text)


__all__ = ["redis_client", "scripts_refused"]
