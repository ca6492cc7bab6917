"""Storage layout and retention, measured in one run on the same realistic day.

Bytes per trade on disk: the same trades (50 symbols, Zipf-like activity, KIS 1-s times, live
receipt delays, realistic prices and volumes) in the v4 layout (text times, rowid + unique index
+ time index; rows inserted in network-read-sized chunks as the old writer did) and in the v5
layout (written by the real ``TickWriter``). SQLite: the database file after a WAL checkpoint
(``bars_1m`` included). PostgreSQL: ``pg_total_relation_size`` of every table of the schema
(partitions, indexes, TOAST, ``bars_1m``) after ``VACUUM``.

Retention cost during ingest: a database holding several old days; ticks submitted at 2,000/s
for a few seconds with retention off, then with retention on (removing the old days while the
ticks come in); trade→committed p99 for both, and how many old trades left during the run.

``python -m benchmarks.bench_storage [--quick]`` prints a table and JSON.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import MIGRATIONS, TickWriter, create_engine, layout, migrate
from kis_desk.engine.storage.legacy_rows import (V1_PG_COPY, V1_PG_COPY_TYPES, V1_SQLITE_INSERT, pg_rows,
                                                 sqlite_rows)
from kis_desk.engine.storage.retention import RetentionPolicy
from kis_desk.protocol.records import KST

from .bench_writer import PG_URL, _pct, _pg_available

BEFORE_V5 = max(n for n, _, _ in MIGRATIONS if n < 5)
CHUNK = 2_000                      # ticks per submit / per old-layout transaction


def realistic_day(n: int, day: date = date(2026, 3, 5), symbols: int = 50, seed: int = 7) -> list[Tick]:
    """``n`` interleaved trades of ``symbols`` large caps over one regular session."""
    rng = random.Random(seed)
    codes = [f"{rng.randint(1, 999_999):06d}" for _ in range(symbols)]
    price = {c: rng.choice([2_000, 15_000, 70_000, 180_000, 420_000, 900_000]) for c in codes}
    prev = dict(price)
    cum = dict.fromkeys(codes, 0)
    t0 = datetime(day.year, day.month, day.day, 9, 0, tzinfo=KST).timestamp()
    weights = [1 / (i + 1) for i in range(symbols)]
    out = []
    for i, code in enumerate(rng.choices(codes, weights, k=n)):
        sec = int(t0 + i * 23_400 / n)
        p = price[code]
        tick = max(1, p // 2000)
        price[code] = p = max(tick, p + rng.choice((-tick, 0, 0, tick)))
        vol = max(1, int(rng.paretovariate(1.3) * 5))
        cum[code] += vol
        ch = p - prev[code]
        out.append(Tick(code, datetime.fromtimestamp(sec, KST), p, vol, cum[code], ch,
                        round(ch / prev[code] * 100, 2), round(rng.uniform(60, 160), 2),
                        sec + rng.uniform(0.005, 0.9), "ws"))
    return out


# -- bytes per trade ------------------------------------------------------------------------------

def _sqlite_file(path: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path.stat().st_size


def _sqlite_v4(path: Path, ticks: list[Tick]) -> int:
    engine = create_engine(f"sqlite:///{path}")
    migrate(engine, target=BEFORE_V5)
    engine.dispose()
    import sqlite3
    conn = sqlite3.connect(path, isolation_level=None)
    for i in range(0, len(ticks), CHUNK):
        conn.execute("BEGIN")
        conn.executemany(V1_SQLITE_INSERT, sqlite_rows(ticks[i:i + CHUNK]))
        conn.execute("COMMIT")
    conn.close()
    return _sqlite_file(path)


async def _write(url: str, ticks: list[Tick], journal: Path) -> None:
    w = TickWriter(url, journal_dir=journal)
    await w.start()
    for i in range(0, len(ticks), CHUNK):
        w.submit(ticks[i:i + CHUNK])
        if i % (CHUNK * 20) == 0:
            await asyncio.sleep(0)
    await w.stop()
    assert w.stats().stored == len(ticks), w.stats()


def _pg_schema_url(schema: str) -> str:
    url = sa.make_url(PG_URL)
    return url.set(query={**url.query, "options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _pg_bytes(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")
        n = int(conn.exec_driver_sql(layout.PG_SIZE).scalar_one())
    engine.dispose()
    return n


def _pg_v4(url: str, ticks: list[Tick]) -> int:
    import psycopg
    engine = create_engine(url, poolclass=sa.NullPool)
    migrate(engine, target=BEFORE_V5)
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    engine.dispose()
    with psycopg.connect(*args, **kwargs) as conn:
        for i in range(0, len(ticks), CHUNK):
            with conn.cursor() as cur, cur.copy(V1_PG_COPY) as cp:
                cp.set_types(V1_PG_COPY_TYPES)
                for r in pg_rows(ticks[i:i + CHUNK]):
                    cp.write_row(r)
            conn.commit()
    return _pg_bytes(url)


def bytes_per_trade(n: int, tmp: Path, pg: bool) -> dict[str, Any]:
    ticks = realistic_day(n)
    out: dict[str, Any] = {"trades": n}
    v4 = _sqlite_v4(tmp / "v4.sqlite3", ticks)
    asyncio.run(_write(f"sqlite:///{tmp / 'v5.sqlite3'}", ticks, tmp / "j5"))
    v5 = _sqlite_file(tmp / "v5.sqlite3")
    out["sqlite"] = {"v4_bytes_per_trade": v4 / n, "v5_bytes_per_trade": v5 / n, "ratio": v5 / v4}
    if pg:
        admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
        schemas = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(2)]
        try:
            with admin.begin() as conn:
                for s in schemas:
                    conn.execute(sa.text(f"CREATE SCHEMA {s}"))
            old = _pg_v4(_pg_schema_url(schemas[0]), ticks)
            new_url = _pg_schema_url(schemas[1])
            asyncio.run(_write(new_url, ticks, tmp / "pj5"))
            new = _pg_bytes(new_url)
            out["postgresql"] = {"v4_bytes_per_trade": old / n, "v5_bytes_per_trade": new / n,
                                 "ratio": new / old}
        finally:
            with admin.begin() as conn:
                for s in schemas:
                    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {s} CASCADE"))
            admin.dispose()
    return out


# -- retention during ingest ----------------------------------------------------------------------

async def _ingest_latency(url: str, journal: Path, rate: int, seconds: float,
                          retention: RetentionPolicy | None) -> dict[str, float]:
    w = TickWriter(url, journal_dir=journal, retention=retention)
    lat: list[float] = []

    def hook(what, wall: float) -> None:
        if not isinstance(what, int):
            lat.extend(wall - t.received_at for t in what)

    w.on_committed.append(hook)
    await w.start()
    today = datetime.now(KST).date()
    live = realistic_day(int(rate * seconds), day=today, seed=99)
    start = time.perf_counter()
    sent = 0
    while sent < len(live):
        target = min(len(live), int((time.perf_counter() - start) * rate))
        if target > sent:
            now = time.time()
            w.submit([t._replace(received_at=now) for t in live[sent:target]])
            sent = target
        await asyncio.sleep(0.005)
    await w.flush()
    await asyncio.sleep(0.05)
    await w.stop()
    return {"p50_ms": _pct(lat, 0.5) * 1000, "p99_ms": _pct(lat, 0.99) * 1000,
            "max_ms": max(lat) * 1000 if lat else float("nan"), "purged": w.stats().purged,
            "ticks": len(live)}


async def _fill_old_days(url: str, journal: Path, days: int, per_day: int) -> None:
    today = datetime.now(KST).date()
    w = TickWriter(url, journal_dir=journal)
    await w.start()
    for k in range(days):
        day_ticks = realistic_day(per_day, day=today - timedelta(days=200 + k), seed=k)
        for i in range(0, per_day, 20_000):
            w.submit(day_ticks[i:i + 20_000])
        await w.flush()
    await w.stop()


def retention_during_ingest(url_for: Any, tmp: Path, days: int, per_day: int, seconds: float) -> dict[str, Any]:
    res: dict[str, Any] = {"old_days": days, "trades_per_old_day": per_day, "rate": 2000}
    for label, policy in (("without", None), ("with", RetentionPolicy(days=90, check_every=3600))):
        url = url_for(label)
        asyncio.run(_fill_old_days(url, tmp / f"jf-{label}", days, per_day))
        res[label] = asyncio.run(_ingest_latency(url, tmp / f"jl-{label}", 2000, seconds, policy))
    return res


# -- run ------------------------------------------------------------------------------------------

def run(quick: bool = False) -> dict[str, Any]:
    n = 200_000 if quick else 1_000_000
    days, per_day, seconds = (2, 100_000, 3.0) if quick else (4, 250_000, 8.0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    skip = _pg_available(PG_URL)
    out: dict[str, Any] = {"name": "storage", "notes": [skip] if skip else []}
    admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
    schemas: list[str] = []

    def pg_url_for(label: str) -> str:
        s = f"bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {s}"))
        schemas.append(s)
        return _pg_schema_url(s)

    try:
        out["size"] = bytes_per_trade(n, tmp, pg=skip is None)
        out["retention"] = {"sqlite": retention_during_ingest(
            lambda label: f"sqlite:///{tmp / f'ret-{label}.sqlite3'}", tmp, days, per_day, seconds)}
        if skip is None:
            out["retention"]["postgresql"] = retention_during_ingest(pg_url_for, tmp, days, per_day, seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if schemas:
            with admin.begin() as conn:
                for s in schemas:
                    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {s} CASCADE"))
        admin.dispose()
    out["results"] = _rows(out)
    out["ratios"] = {f"{db}_bytes_v5_vs_v4": r["ratio"] for db, r in out["size"].items() if db != "trades"}
    return out


def _rows(out: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    size = out["size"]
    for db in ("sqlite", "postgresql"):
        r = size.get(db)
        if not r:
            continue
        rows.append({"metric": f"{db}: bytes/trade, v4 layout ({size['trades']:,} trades)",
                     "value": r["v4_bytes_per_trade"], "unit": "B"})
        rows.append({"metric": f"{db}: bytes/trade, v5 layout", "value": r["v5_bytes_per_trade"], "unit": "B",
                     "baseline": r["v4_bytes_per_trade"], "ratio": r["ratio"],
                     "goal": "<= 60" if db == "sqlite" else ""})
    for db, r in out["retention"].items():
        rows.append({"metric": f"{db}: trade→DB p99 @ 2000/s, no retention", "value": r["without"]["p99_ms"],
                     "unit": "ms"})
        rows.append({"metric": f"{db}: trade→DB p99 @ 2000/s, removing {r['with']['purged']:,} old trades",
                     "value": r["with"]["p99_ms"], "unit": "ms", "baseline": r["without"]["p99_ms"],
                     "ratio": r["with"]["p99_ms"] / r["without"]["p99_ms"], "goal": "< 100"})
    for note in out["notes"]:
        rows.append({"metric": "note", "value": note, "unit": ""})
    return rows


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    for row in result["results"]:
        ratio = f"  ratio {row['ratio']:.2f}" if "ratio" in row else ""
        value = f"{row['value']:,.1f}" if isinstance(row["value"], float) else row["value"]
        print(f"{row['metric']:<62} {value:>10} {row['unit']}{ratio}")
    print(json.dumps(result, indent=2, default=str))
