"""Row encoders of the v1–v4 trade layout (text times, rowid table).

Nothing in the application writes this layout any more; the migration test fills a v1 database
with it, and ``benchmarks/bench_storage.py`` measures it against the compact layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from ...core.ticks import Tick
from . import schema

_KST_OFFSET = schema._KST_OFFSET
_UTC = timezone.utc
V1_COLS = ", ".join(f'"{c}"' for c in schema.TICK_COLUMNS_V1)
V1_SQLITE_INSERT = (f"INSERT INTO {schema.TICKS} ({V1_COLS}) VALUES ({', '.join('?' * len(schema.TICK_COLUMNS_V1))}) "
                    "ON CONFLICT (stock_code, business_date, cum_volume) DO NOTHING")
V1_PG_COPY = f"COPY {schema.TICKS} ({V1_COLS}) FROM STDIN (FORMAT BINARY)"
V1_PG_COPY_TYPES = ["text", "date", "timestamptz", "int8", "int8", "int8", "int8", "float8", "float8",
                    "timestamptz", "text"]


def sqlite_rows(ticks: Sequence[Tick]) -> list[tuple]:
    """Tick → SQLite parameter tuple (times as normalised KST ISO text, see schema).

    Hot path: KIS trade times have 1-s resolution and the ticks of one network read share one
    receipt time, so both conversions are cached per batch instead of formatting every time.
    """
    out = []
    append = out.append
    ts_cache: dict[datetime, tuple[str, str]] = {}
    recv_cache: dict[float, str] = {}
    sec_cache: dict[int, str] = {}
    kst = schema.KST
    for t in ticks:
        ts = t[1]
        hit = ts_cache.get(ts)
        if hit is None:
            if ts.tzinfo is None:
                raise ValueError(f"naive timestamp in tick {t[0]} {ts}")
            local = ts if ts.utcoffset() == _KST_OFFSET else ts.astimezone(kst)
            text = local.isoformat(timespec="microseconds")
            hit = ts_cache[ts] = (text, text[:10])
        r = t[8]
        received = recv_cache.get(r)
        if received is None:
            sec = int(r // 1)
            prefix = sec_cache.get(sec)
            if prefix is None:
                prefix = sec_cache[sec] = datetime.fromtimestamp(sec, kst).isoformat()[:19] + "."
            micro = int((r - sec) * 1_000_000)
            received = recv_cache[r] = f"{prefix}{micro:06d}+09:00"
        append((t[0], hit[1], hit[0], t[2], t[3], t[4], t[5], t[6], t[7], received, t[9]))
    return out



def pg_rows(ticks: Sequence[Tick]) -> list[tuple]:
    """Tick → COPY row in ``PG_COPY_TYPES`` order."""
    out = []
    append = out.append
    last_ts = None
    day = None
    for t in ticks:
        ts = t[1]
        if ts is not last_ts:
            if ts.tzinfo is None:
                raise ValueError(f"naive timestamp in tick {t.stock_code} {ts}")
            day = schema.kst_date(ts)
            last_ts = ts
        rate, strength = t[6], t[7]
        append((t[0], day, ts, t[2], t[3], t[4], t[5],
                None if rate is None else float(rate), None if strength is None else float(strength),
                datetime.fromtimestamp(t[8], _UTC), t[9]))
    return out
