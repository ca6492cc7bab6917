"""An attached desktop's reader of the collectors' Redis streams: resumes, never a silent hole.

The collectors ``XADD`` packed trade batches to the trade stream and alerts to the alert
stream (:mod:`.publisher`). :class:`StreamReader` follows both with ``XREAD BLOCK`` from the
last id it processed; after a dropped connection or a Redis restart it continues from that id,
so nothing within the streams' retention is lost. Duplicates (a publisher resending a pipeline
after an ambiguous failure) are dropped by the entry's ``(src, seq)``; alerts by ``alert_id``.

When entries may be missing — the last processed id was trimmed away (the desktop was gone
longer than the retention), Redis restarted (its ``run_id`` changed: a restarted server may not
have kept what was unread), or a publisher's ``seq`` skipped (it dropped trades from a full
outbox) — the reader says so (``on_gap``) and :class:`~.gap_filler.GapFiller` reloads the hole from the
shared database: per symbol, the trades between the last one delivered and the first one
after the gap, found by the cumulative-volume chain (``cum_volume - volume`` of a trade is the
previous trade's ``cum_volume``). It waits for the collectors' writers to commit that range
(bounded by ``gap_wait``) and delivers it as one late batch; the alerts of the day are reloaded
and the ones not yet delivered are delivered.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from ..config import redact_url
from ..core.backoff import Backoff, BackoffPolicy
from ..core.events import AlertEvent, event_from_json
from ..core.ticks import Tick
from .redis_link import redis_client, scripts_refused
from .trade_batch import unpack_trades

log = logging.getLogger(__name__)

START = "0-0"

# KEYS: streams; ARGV: the last id read of each. Returns 1 per stream when nothing after that id
# was removed: the id is still there, or (before the first entry) nothing was ever removed.
# A script so that only a flag crosses the network, not the (large) last entry itself.
_CONTINUITY_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local last = ARGV[i]
  if last == '0-0' then
    if redis.call('EXISTS', key) == 0 then
      out[i] = 1
    else
      local info = redis.call('XINFO', 'STREAM', key)
      local added, length = 0, 0
      for j = 1, #info, 2 do
        if info[j] == 'entries-added' then added = info[j + 1] end
        if info[j] == 'length' then length = info[j + 1] end
      end
      out[i] = (added <= length) and 1 or 0
    end
  else
    out[i] = (#redis.call('XRANGE', key, last, last) > 0) and 1 or 0
  end
end
return out
"""


@dataclass
class ReaderStats:
    """Counters of one reader (what the desktop's summary and the tests read)."""

    entries: int = 0
    trades: int = 0
    alerts: int = 0
    duplicates: int = 0          # entries/alerts already delivered (publisher resends)
    reconnects: int = 0
    gaps: int = 0                # times entries may have been missing (trim, restart, seq hole)
    reloaded: int = 0            # trades delivered from the database to fill holes
    alerts_reloaded: int = 0
    holes_left: int = 0          # symbol holes the database could not fill within gap_wait
    last_ids: dict[str, str] = field(default_factory=dict)


class StreamReader:
    """Follows ``trade_stream`` and ``alert_stream`` (either may be None) from the last id.

    ``start`` is where a new reader begins: ``"$"`` (the streams' current ends, default: history
    comes from the database) or an explicit id. Callbacks run on the event loop:
    ``on_trades(ticks)``, ``on_alert(alert)``, ``on_gap(reason)``, ``on_state(state, detail,
    retry_in)`` with state ``live`` | ``backoff``.
    """

    def __init__(self, url: str, *, trade_stream: str | None, alert_stream: str | None,
                 on_trades: Callable[[Sequence[Tick]], None],
                 on_alert: Callable[[AlertEvent], None],
                 on_gap: Callable[[str], None] = lambda reason: None,
                 on_state: Callable[[str, str, float | None], None] = lambda s, d, r: None,
                 start: str = "$", block_ms: int = 1000, count: int = 200,
                 backoff: BackoffPolicy | None = None) -> None:
        self.url = url
        self.target = redact_url(url)
        self.streams = [s for s in (trade_stream, alert_stream) if s]
        if not self.streams:
            raise ValueError("StreamReader needs a trade or an alert stream")
        self.trade_stream = trade_stream
        self.alert_stream = alert_stream
        self._on_trades, self._on_alert = on_trades, on_alert
        self._on_gap, self._on_state = on_gap, on_state
        self._start = start
        self._block_ms = int(block_ms)
        self._count = int(count)
        self._backoff = backoff or BackoffPolicy(initial=0.2, cap=10.0)
        self.last_ids: dict[str, str] = {}
        self._run_id: str | None = None
        self._seqs: dict[str, int] = {}          # publisher src → last seq delivered
        self._alert_ids: set[str] = set()
        self._flagged: dict[str, str] = {}       # stream → last id already reported as a gap
        self._use_script = True                  # False when the server refuses EVAL
        self.stats = ReaderStats()
        self.client: aioredis.Redis | None = None
        self.client_name = f"kis-desk-desktop-{os.urandom(4).hex()}"   # CLIENT LIST shows it

    async def run(self) -> None:
        """Read until cancelled, reconnecting with backoff."""
        backoff = Backoff(self._backoff)
        connected_once = False
        while True:
            self.client = redis_client(self.url, client_name=self.client_name,
                                       socket_timeout=self._block_ms / 1000 + 5.0)
            try:
                await self._connected(self.client)
                if connected_once:
                    self.stats.reconnects += 1
                connected_once = True
                backoff.reset()
                while True:
                    await self._read_once(self.client)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                delay = backoff.next_delay()
                self._on_state("backoff", f"Redis {self.target}: {exc}", delay)
                await asyncio.sleep(delay)
            finally:
                try:
                    await self.client.aclose()
                except Exception:     # closing a dead connection may raise; nothing to do
                    pass

    async def _connected(self, client: aioredis.Redis) -> None:
        info = await client.info("server")
        run_id = str(info.get("run_id", ""))
        restarted = self._run_id is not None and run_id != self._run_id
        self._run_id = run_id
        for stream in self.streams:
            if stream not in self.last_ids:
                self.last_ids[stream] = await self._resolve_start(client, stream)
        self.stats.last_ids = self.last_ids
        where = ", ".join(f"{s} after {i}" for s, i in self.last_ids.items())
        self._on_state("live", f"attached to {self.target} ({where})", None)
        if restarted:
            self._gap(f"Redis at {self.target} restarted; entries not read before the restart "
                      "may be gone")

    async def _resolve_start(self, client: aioredis.Redis, stream: str) -> str:
        if self._start != "$":
            return self._start
        last = await client.xrevrange(stream, count=1)
        return _text(last[0][0]) if last else START

    async def _read_once(self, client: aioredis.Redis) -> None:
        # XREAD first, then in the same pipeline a check that nothing after our last ids was
        # trimmed before it ran: trimming removes the oldest entries first, so "our last id is
        # still there" (or, before the first entry, "nothing was ever removed") proves the
        # entries XREAD returned follow on without a hole.
        ids = dict(self.last_ids)
        async with client.pipeline(transaction=False) as pipe:
            pipe.xread(ids, block=self._block_ms, count=self._count)
            if self._use_script:
                pipe.eval(_CONTINUITY_LUA, len(ids), *ids, *ids.values())
            else:
                for stream, last in ids.items():
                    if last == START:
                        pipe.xinfo_stream(stream)
                    else:
                        pipe.xrange(stream, last, last, count=1)
            replies = await pipe.execute(raise_on_error=False)
        if isinstance(replies[0], Exception):
            raise replies[0]
        checks: list[Any] = replies[1:]
        if self._use_script:
            if isinstance(checks[0], ResponseError) and scripts_refused(checks[0]):
                log.warning("Redis refuses Lua scripts (%s); checking continuity with XRANGE",
                            checks[0])
                self._use_script = False
                checks = [True] * len(ids)       # checked from the next read on
            elif isinstance(checks[0], Exception):
                raise checks[0]
            else:
                checks = [bool(int(c)) for c in checks[0]]
        for (stream, last), check in zip(ids.items(), checks):
            if not _continuous(last, check) and self._flagged.get(stream) != last:
                self._flagged[stream] = last
                self._gap(f"stream {stream} was trimmed past the last entry read ({last}); "
                          "reloading the gap from the database")
        for stream, entries in replies[0] or ():
            stream = _text(stream)
            for entry_id, fields in entries:
                self.stats.entries += 1
                self._entry(stream, fields)
                self.last_ids[stream] = _text(entry_id)

    def _entry(self, stream: str, fields: dict[Any, Any]) -> None:
        f = {_text(k): v for k, v in fields.items()}
        if stream == self.alert_stream and "alert" in f:
            try:
                alert = event_from_json(f["alert"])
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring an undecodable alert entry on %s: %s", stream, exc)
                return
            if not isinstance(alert, AlertEvent):
                return
            self.deliver_alert(alert)
            return
        try:
            src, seq = _text(f["src"]), int(f["seq"])
            ticks = unpack_trades(f["t"])
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("ignoring an undecodable trade entry on %s: %s", stream, exc)
            return
        last = self._seqs.get(src)
        if last is not None and seq <= last:
            self.stats.duplicates += 1
            return
        if last is not None and seq > last + 1:
            self._gap(f"publisher {src} skipped {seq - last - 1} batch(es) (its queue overflowed "
                      "or Redis lost them); reloading the gap from the database")
        self._seqs[src] = seq
        self.stats.trades += len(ticks)
        self._on_trades(ticks)

    def deliver_alert(self, alert: AlertEvent) -> bool:
        """Deliver unless already delivered (stream resend, database reload)."""
        if alert.alert_id in self._alert_ids:
            self.stats.duplicates += 1
            return False
        self._alert_ids.add(alert.alert_id)
        self.stats.alerts += 1
        self._on_alert(alert)
        return True

    def _gap(self, reason: str) -> None:
        self.stats.gaps += 1
        log.warning("%s", reason)
        self._on_gap(reason)


def _continuous(last: str, check: Any) -> bool:
    if isinstance(check, bool):
        return check
    if isinstance(check, ResponseError):
        return last == START and "no such key" in str(check).lower()   # nothing written yet
    if isinstance(check, Exception):
        raise check
    if last == START:
        info = {_text(k): v for k, v in check.items()} if isinstance(check, dict) else {}
        return int(info.get("entries-added", 0)) <= int(info.get("length", 0))
    return bool(check)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


__all__ = ["ReaderStats", "StreamReader"]
