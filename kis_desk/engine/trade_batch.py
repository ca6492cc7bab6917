"""Packed trade batches: one Redis stream entry carries many trades in a compact form.

A batch is a JSON array of rows ``[code, time_us, price, volume, cum_volume, change,
change_rate, strength, received_at, source, venue, state]`` (a batch of an older writer
without the last one or two reads with their defaults) with the trade time as integer microseconds
since the epoch (KST on the way back). Compared with one ``TicksEvent`` JSON object per trade
this drops the repeated field names and the ISO time strings, and one ``XADD`` per batch
instead of one per trade is what keeps the stream's cost near pub/sub (benchmarks/bench_fanout).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from ..core.ticks import Tick
from ..protocol.records import KST

_EPOCH = datetime(1970, 1, 1, tzinfo=KST) - timedelta(hours=9)   # the Unix epoch, as KST
_US = timedelta(microseconds=1)


def pack_trades(ticks: Sequence[Tick]) -> bytes:
    """The wire form of a batch (UTF-8 JSON)."""
    rows = [[t[0], (t[1] - _EPOCH) // _US, *t[2:]] for t in ticks]
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()


def unpack_trades(data: bytes | str) -> tuple[Tick, ...]:
    """Inverse of :func:`pack_trades`; raises ValueError/TypeError on a malformed batch."""
    epoch, us = _EPOCH, _US
    return tuple(Tick(r[0], epoch + r[1] * us, *r[2:]) for r in json.loads(data))


__all__ = ["pack_trades", "unpack_trades"]
