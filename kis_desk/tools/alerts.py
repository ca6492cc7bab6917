"""``kis-desk alerts``: print live alerts from Redis, one JSON object per line.

    kis-desk alerts --redis redis://:pw@host:6379/0 [--channel kis:alerts] [--stream NAME]

Without ``--stream`` it subscribes to the pub/sub channel; with ``--stream`` it follows the
stream from its current end (``XREAD BLOCK``) and, after a dropped connection, resumes after the
last entry it printed, so nothing is missed. Each line is the alert's JSON exactly as published
(``AlertEvent.to_json``). Unreachable Redis at start: one line on stderr, exit status 2.
The URL may also come from ``KIS_DESK_REDIS_URL`` (keeps the password out of ``ps``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import redact_url
from ..core.backoff import Backoff
from ..core.errors import describe
from ..engine.redis_link import redis_client

EXIT_UNREACHABLE = 2


def add_alerts_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--redis", dest="redis_url", default=os.environ.get("KIS_DESK_REDIS_URL"),
                        help="redis:// or rediss:// URL (default: $KIS_DESK_REDIS_URL)")
    parser.add_argument("--channel", default="kis:alerts", help="pub/sub channel (default kis:alerts)")
    parser.add_argument("--stream", default=None,
                        help="read this Redis stream instead of the channel (survives reconnects)")
    parser.add_argument("--count", type=int, default=None,
                        help="exit after printing this many alerts (default: until interrupted)")
    return parser


def _client(url: str) -> aioredis.Redis:
    return redis_client(url, client_name="kis-desk-alerts", decode_responses=True)


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _say(message: str) -> None:
    print(f"kis-desk alerts: {message}", file=sys.stderr, flush=True)


async def alerts_main(args: argparse.Namespace) -> int:
    """Run until interrupted (or ``--count`` alerts printed). Returns the exit status."""
    url = getattr(args, "redis_url", None)
    if not url:
        _say("no Redis URL (use --redis or KIS_DESK_REDIS_URL)")
        return EXIT_UNREACHABLE
    target = redact_url(url)
    client = _client(url)
    try:
        await asyncio.wait_for(client.ping(), 5.0)
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        _say(f"cannot reach Redis at {target}: {describe(exc, url)}")
        await _close(client)
        return EXIT_UNREACHABLE
    remaining = [args.count] if getattr(args, "count", None) else None
    try:
        if args.stream:
            await _follow_stream(client, args.stream, remaining, target, url)
        else:
            await _follow_channel(client, args.channel, remaining, target, url)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await _close(client)
    return 0


def _done(remaining: list[int] | None) -> bool:
    if remaining is None:
        return False
    remaining[0] -= 1
    return remaining[0] <= 0


async def _follow_channel(client: aioredis.Redis, channel: str, remaining: list[int] | None,
                          target: str, url: str) -> None:
    backoff = Backoff()
    while True:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            backoff.reset()
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is None or msg.get("type") != "message":
                    continue
                _emit(msg["data"])
                if _done(remaining):
                    return
        except (RedisError, OSError) as exc:
            _say(f"lost Redis at {target} ({describe(exc, url)}); reconnecting "
                 "(alerts published meanwhile are missed; use --stream to avoid that)")
            await asyncio.sleep(backoff.next_delay())
        finally:
            try:
                await pubsub.aclose()
            except Exception:
                pass


async def _follow_stream(client: aioredis.Redis, stream: str, remaining: list[int] | None,
                         target: str, url: str) -> None:
    last_id = "$"
    backoff = Backoff()
    while True:
        try:
            if last_id == "$":   # pin the current end so a reconnect resumes from here
                info = await client.xrevrange(stream, count=1)
                last_id = info[0][0] if info else "0-0"
            reply = await client.xread({stream: last_id}, block=1000, count=100)
            backoff.reset()
        except (RedisError, OSError) as exc:
            _say(f"lost Redis at {target} ({describe(exc, url)}); reconnecting")
            await asyncio.sleep(backoff.next_delay())
            continue
        for _name, entries in reply or ():
            for entry_id, fields in entries:
                last_id = entry_id
                payload = fields.get("alert")
                if payload is None:
                    continue
                _emit(payload)
                if _done(remaining):
                    return


async def _close(client: aioredis.Redis) -> None:
    try:
        await client.aclose()
    except Exception:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = add_alerts_arguments(argparse.ArgumentParser(
        prog="kis-desk alerts", description="Print live kis-desk alerts from Redis as JSON lines."))
    args = parser.parse_args(argv)
    try:
        return asyncio.run(alerts_main(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
