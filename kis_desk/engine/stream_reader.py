"""An attached desktop's reader of the collectors' Redis streams: resumes, never a silent hole.

The collectors ``XADD`` packed trade batches to the trade stream and alerts to the alert
stream (:mod:`.publisher`). :class:`StreamReader` follows both with ``XREAD BLOCK`` from the
last id it processed; after a dropped connection or a Redis restart it continues from that id,
so nothing within the streams' retention is lost. Duplicates (a publisher resending a pipeline
after an ambiguous failure) are dropped by the entry's ``(src, seq)``; alerts by ``alert_id``.

When entries may be missing — the last processed id was trimmed away (the desktop was gone
longer than the retention), Redis restarted (its ``run_id`` changed: a restarted server may not
have kept what was unread), or a publisher's ``seq`` skipped (it dropped trades from a full
outbox) — the reader says so (``on_gap``) and :class:`GapFiller` reloads the hole from the
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from ..config import redact_url
from ..core.backoff import Backoff, BackoffPolicy
from ..core.events import AlertEvent, event_from_json
from ..core.ticks import Tick
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
            self.client = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=3.0,
                socket_timeout=self._block_ms / 1000 + 5.0, health_check_interval=0,
                retry=Retry(NoBackoff(), 0), client_name=self.client_name)
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
            if isinstance(checks[0], ResponseError) and _scripts_refused(checks[0]):
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


class GapFiller:
    """Finds and fills, per symbol, the trades a stream gap hid, from the shared database.

    ``filter(ticks)`` sits between the reader and the desktop: it remembers each symbol's last
    trade, drops trades already delivered from the database, and after :meth:`gap` compares each
    symbol's next trade with the last one delivered; a break in the cumulative-volume chain is a
    hole, reloaded by ``load(code, start, end)`` (a repository's ``ticks_between``, run in a
    worker thread) and delivered through ``deliver`` once the database has all of it.
    Symbols that stay quiet for ``settle`` s after the gap are reloaded up to now (and their next
    trade is checked again). A symbol first seen after a gap has no baseline: its earlier trades
    are the database's (the desktop's history), not the reader's.
    """

    def __init__(self, load: Callable[[str, datetime, datetime], list[Tick]],
                 deliver: Callable[[Sequence[Tick]], None], stats: ReaderStats, *,
                 gap_wait: float = 15.0, settle: float = 2.0, retry_every: float = 0.25,
                 on_hole: Callable[[str], None] = lambda message: None) -> None:
        self._load, self._deliver, self.stats = load, deliver, stats
        self._gap_wait, self._settle, self._retry = gap_wait, settle, retry_every
        self._on_hole = on_hole
        self._last: dict[str, Tick] = {}             # last trade delivered per symbol (max cum)
        self._suspect: dict[str, Tick] = {}          # symbol → its last trade before the gap
        self._reloaded: dict[str, set[int]] = {}     # cum volumes delivered from the database
        self._live_since: dict[str, set[int]] = {}   # cum volumes delivered live while reloading
        self._tasks: set[asyncio.Task[None]] = set()
        self._settle_task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """A gap is being reloaded, or quiet symbols are still to be reloaded."""
        settling = self._settle_task is not None and not self._settle_task.done()
        return bool(self._tasks) or settling

    def gap(self) -> None:
        """Entries may be missing: check every symbol's next trade against its chain."""
        for code, last in self._last.items():
            self._suspect.setdefault(code, last)
        if self._settle_task is None or self._settle_task.done():
            self._settle_task = asyncio.create_task(self._settle_quiet(), name="gap-settle")

    def filter(self, ticks: Sequence[Tick]) -> list[Tick]:
        out: list[Tick] = []
        for t in ticks:
            code = t.stock_code
            done = self._reloaded.get(code)
            if done is not None and t.cum_volume in done:
                continue                     # already delivered from the database
            live = self._live_since.get(code)
            if live is not None:
                live.add(t.cum_volume)
            before = self._suspect.get(code)
            if before is not None and t.cum_volume > before.cum_volume:
                del self._suspect[code]
                if t.cum_volume - t.volume > before.cum_volume:     # a hole in the chain
                    self._reload(code, before, t)
            last = self._last.get(code)
            if last is None or t.cum_volume > last.cum_volume:
                self._last[code] = t
            out.append(t)
        return out

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._settle_task] if self._settle_task else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _reload(self, code: str, before: Tick, after: Tick | None) -> None:
        self._live_since.setdefault(code, set())
        task = asyncio.create_task(self._fill(code, before, after), name=f"gap-{code}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle_quiet(self) -> None:
        await asyncio.sleep(self._settle)
        for code, before in list(self._suspect.items()):
            del self._suspect[code]
            self._reload(code, before, None)

    async def _fill(self, code: str, before: Tick, after: Tick | None) -> None:
        """Load (before, after) from the database until the chain is whole or gap_wait ends."""
        start = before.timestamp
        end = (after.timestamp if after is not None else datetime.now(start.tzinfo)
               + timedelta(days=1)) + timedelta(microseconds=1)
        upto = after.cum_volume - after.volume if after is not None else None
        deadline = time.monotonic() + self._gap_wait
        rows: list[Tick] = []
        while True:
            try:
                found = await asyncio.to_thread(self._load, code, start, end)
            except Exception as exc:      # a database hiccup: retry within gap_wait
                log.warning("reloading %s from the database failed: %s", code, exc)
                found = []
            rows = _chain(found, before.cum_volume, upto)
            whole = upto is None or (rows and rows[-1].cum_volume == upto)
            if whole or time.monotonic() > deadline:
                break
            await asyncio.sleep(self._retry)
        live = self._live_since.pop(code, set())
        rows = [t for t in rows if t.cum_volume not in live]
        if rows:
            self._reloaded.setdefault(code, set()).update(t.cum_volume for t in rows)
            self.stats.reloaded += len(rows)
            last = self._last.get(code)
            if last is None or rows[-1].cum_volume > last.cum_volume:
                self._last[code] = rows[-1]
            self._deliver(rows)
        if upto is None:
            # reloaded "up to now": the symbol's next live trade is still checked against what
            # the database had, so trades it had not committed yet are not skipped silently
            self._suspect.setdefault(code, self._last.get(code) or before)
        elif not whole:
            self.stats.holes_left += 1
            have = rows[-1].cum_volume if rows else before.cum_volume
            self._on_hole(f"{code}: trades after cumulative volume {have} up to {upto} are not "
                          f"in the database after {self._gap_wait:.0f} s; the chart shows a gap")


def _chain(found: list[Tick], after_cum: int, upto: int | None) -> list[Tick]:
    """The trades continuing the chain from ``after_cum`` (up to ``upto``), in chain order."""
    by_start = {t.cum_volume - t.volume: t for t in found
                if t.cum_volume > after_cum and (upto is None or t.cum_volume <= upto)}
    out: list[Tick] = []
    cum = after_cum
    while (t := by_start.get(cum)) is not None:
        out.append(t)
        cum = t.cum_volume
    return out


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


def _scripts_refused(exc: ResponseError) -> bool:
    text = str(exc).lower()
    return ("unknown command" in text or "noperm" in text or "no permissions" in text
            or "disabled" in text)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


__all__ = ["GapFiller", "ReaderStats", "StreamReader"]
