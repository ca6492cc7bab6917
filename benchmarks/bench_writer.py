"""TickWriter throughput vs the raw driver floor, and trade→committed latency.

Throughput: the same N Ticks through ``TickWriter`` (submit in 1,000-tick chunks, then flush)
vs raw sqlite3 ``executemany`` (SQLite) / raw psycopg binary ``COPY`` (PostgreSQL) of the
*pre-converted* rows into the same table — the floor; ratio = floor time ÷ writer time. The
SQLite floor includes the table's bars_1m trigger (it is part of the table); the PostgreSQL
floor is a bare COPY into the day's partition, while the writer also merges duplicates and
maintains bars_1m.

Latency: ticks submitted at a fixed rate (2,000/s and 20,000/s) for a few seconds; for each tick
``commit wall time − received_at`` via the writer's ``on_committed`` hook.
``python -m benchmarks.bench_writer`` prints a table and JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import Repository, TickWriter, layout
from kis_desk.engine.storage.postgres_backend import PG_COLS as _COLS, pg_rows
from kis_desk.engine.storage.sqlite_backend import SQLITE_INSERT as _SQLITE_INSERT, sqlite_rows
from kis_desk.protocol.records import KST

PG_URL = os.environ.get("KIS_DESK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_ticks(n: int, offset: int = 0, now: float | None = None) -> list[Tick]:
    base = datetime(2026, 3, 5, 9, 0, 0, tzinfo=KST)
    now = time.time() if now is None else now
    codes = ["005930", "000660", "035720", "005380", "051910"]
    return [Tick(codes[i % 5], base + timedelta(seconds=(offset + i) // 50), 70000 + (i % 40) * 100, 10,
                 10 * (offset + i + 1), -300, -0.42, 101.25, now, "ws") for i in range(n)]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _writer_throughput(url: str, ticks: list[Tick], journal: Path) -> float:
    w = TickWriter(url, journal_dir=journal)
    await w.start()
    t0 = time.perf_counter()
    for i in range(0, len(ticks), 1000):
        w.submit(ticks[i:i + 1000])
    await w.flush()
    dt = time.perf_counter() - t0
    assert w.stats().stored == len(ticks), w.stats()
    await w.stop()
    return dt


async def _latency(url: str, rate: int, seconds: float, journal: Path) -> dict[str, float]:
    w = TickWriter(url, journal_dir=journal)
    lat: list[float] = []

    def hook(what, wall: float) -> None:
        if not isinstance(what, int):
            lat.extend(wall - t.received_at for t in what)

    w.on_committed.append(hook)
    await w.start()
    total = int(rate * seconds)
    tick_period = 0.005                                    # a "network read" every 5 ms
    per_read = max(1, int(rate * tick_period))
    start = time.perf_counter()
    sent = 0
    while sent < total:
        target = int((time.perf_counter() - start) * rate)
        n = min(max(target - sent, 0), total - sent)
        if n:
            now = time.time()
            w.submit(make_ticks(n, offset=sent, now=now))
            sent += n
        await asyncio.sleep(tick_period if n < per_read * 4 else 0)
    await w.flush()
    await asyncio.sleep(0.05)                              # let the last hook calls run
    await w.stop()
    return {"rate": rate, "ticks": sent, "committed_seen": len(lat),
            "p50_ms": _pct(lat, 0.50) * 1000, "p99_ms": _pct(lat, 0.99) * 1000,
            "max_ms": max(lat) * 1000 if lat else float("nan")}


def _sqlite_floor(path: Path, ticks: list[Tick]) -> float:
    rows = sqlite_rows(ticks)                              # conversion excluded: the pure floor
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(_SQLITE_INSERT, rows)
    conn.execute("COMMIT")
    dt = time.perf_counter() - t0
    conn.close()
    return dt


def _pg_floor(url: str, ticks: list[Tick]) -> float:
    import psycopg
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    args, kwargs = engine.dialect.create_connect_args(engine.url)
    engine.dispose()
    rows = pg_rows(ticks)
    with psycopg.connect(*args, **kwargs) as conn:
        for day in {r[layout.DAY_INDEX] for r in rows}:                   # the day's partition, as the writer does
            conn.execute(layout.pg_create_partition(day))
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY stock_prices_realtime ({_COLS}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(layout.PG_COLUMN_TYPES)
            for r in rows:
                cp.write_row(r)
        conn.commit()
        return time.perf_counter() - t0


def _pg_available(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL unreachable ({type(exc).__name__}); skipped"


def run(quick: bool = False) -> dict[str, Any]:
    n = 50_000 if quick else 200_000
    seconds = 1.5 if quick else 5.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-writer-"))
    out: dict[str, Any] = {"rows": n, "notes": []}
    try:
        ticks = make_ticks(n)
        # SQLite
        floor_path = tmp / "floor.sqlite3"
        Repository(f"sqlite:///{floor_path}").close()
        floor = _sqlite_floor(floor_path, ticks)
        writer = asyncio.run(_writer_throughput(f"sqlite:///{tmp / 'w.sqlite3'}", ticks, tmp / "j1"))
        out["sqlite"] = {"writer_rows_per_s": n / writer, "raw_executemany_rows_per_s": n / floor,
                         "ratio": floor / writer, "goal_ratio": 0.5}
        out["sqlite"]["latency"] = [
            asyncio.run(_latency(f"sqlite:///{tmp / f'lat{r}.sqlite3'}", r, seconds, tmp / f"jl{r}"))
            for r in (2000, 20000)]
        # PostgreSQL
        skip = _pg_available(PG_URL)
        if skip:
            out["postgresql"] = None
            out["notes"].append(skip)
        else:
            out["postgresql"] = _run_pg(ticks, seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["name"] = "writer"
    out["results"] = _table_rows(out)
    out["ratios"] = {db: out[db]["ratio"] for db in ("sqlite", "postgresql") if out.get(db)}
    return out


def _table_rows(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The common ``results`` rows that ``python -m benchmarks`` prints."""
    rows: list[dict[str, Any]] = []
    for db, base_key, base_name in (("sqlite", "raw_executemany_rows_per_s", "raw executemany"),
                                    ("postgresql", "raw_copy_rows_per_s", "raw COPY")):
        r = out.get(db)
        if not r:
            continue
        rows.append({"metric": f"{db}: {base_name}", "value": r[base_key], "unit": "rows/s"})
        rows.append({"metric": f"{db}: TickWriter", "value": r["writer_rows_per_s"], "unit": "rows/s",
                     "baseline": r[base_key], "ratio": r["ratio"], "goal": ">= 0.5"})
        for lat in r.get("latency", []):
            rows.append({"metric": f"{db}: submit→committed p99 @ {lat['rate']}/s", "value": lat["p99_ms"],
                         "unit": "ms", "goal": "< 100" if lat["rate"] == 2000 else ""})
    for note in out.get("notes", []):
        rows.append({"metric": "note", "value": note, "unit": ""})
    return rows


def _run_pg(ticks: list[Tick], seconds: float, tmp: Path) -> dict[str, Any]:
    admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
    schemas = [f"bench_{uuid.uuid4().hex[:10]}" for _ in range(4)]
    urls = []
    for s in schemas:
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {s}"))
        url = sa.make_url(PG_URL)
        urls.append(url.set(query={**url.query, "options": f"-csearch_path={s}"})
                    .render_as_string(hide_password=False))
    try:
        n = len(ticks)
        Repository(urls[0]).close()
        floor = _pg_floor(urls[0], ticks)
        writer = asyncio.run(_writer_throughput(urls[1], ticks, tmp / "pj1"))
        res: dict[str, Any] = {"writer_rows_per_s": n / writer, "raw_copy_rows_per_s": n / floor,
                               "ratio": floor / writer, "goal_ratio": 0.5}
        res["latency"] = [asyncio.run(_latency(u, r, seconds, tmp / f"pjl{r}"))
                          for u, r in ((urls[2], 2000), (urls[3], 20000))]
        return res
    finally:
        with admin.begin() as conn:
            for s in schemas:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {s} CASCADE"))
        admin.dispose()


def _table(res: dict[str, Any]) -> str:
    lines = [f"TickWriter, {res['rows']:,} rows"]
    for db, floor_key in (("sqlite", "raw_executemany_rows_per_s"), ("postgresql", "raw_copy_rows_per_s")):
        r = res.get(db)
        if not r:
            lines.append(f"  {db:<10} skipped")
            continue
        lines.append(f"  {db:<10} writer {r['writer_rows_per_s']:>10,.0f} rows/s   raw {r[floor_key]:>10,.0f} rows/s"
                     f"   ratio {r['ratio']:.2f} (goal ≥ 0.5)")
        for lat in r["latency"]:
            lines.append(f"  {'':<10} {lat['rate']:>6,}/s  trade→committed p50 {lat['p50_ms']:6.1f} ms"
                         f"  p99 {lat['p99_ms']:6.1f} ms  max {lat['max_ms']:6.1f} ms")
    lines += [f"  note: {n}" for n in res["notes"]]
    return "\n".join(lines)


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    print(_table(result))
    print(json.dumps(result, indent=2))
