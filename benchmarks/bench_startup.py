"""Constant-time start with weeks of trades stored (issue 13): the app against an empty table and
against 60 trading days × 1,000,000 trades (50 symbols), in the same run.

Data: :mod:`benchmarks.startup_data` (bulk generator, cached under ``benchmarks/results/``).
The app's clock is moved to the last generated day, 15:31 KST, so "today" is a full stored day
(the simulator resumes each symbol where its stored day ends, as after a restart).

Measured, each in a fresh process (``benchmarks/startup_probe.py``; imports are outside the measurement; both tables get the
same number of runs, alternating, medians reported):

* **app start to a live grid** — the real start path, ``ui.app.run_window`` under offscreen Qt
  on the built-in simulator: watchlist from the database, migrations check, the collector's
  start (writer, journal, retention check, today's last trades and back-fill resume points,
  today's alert ids for the detector, stored alert rules), the window's start (watchlists,
  today's alerts), until a grid flush paints the first live trade; milestones on the way;
* **sparklines and 1-minute changes of the 50 rows** — in the app (``MainWindow.seed_rows``,
  concurrent with everything else starting) and alone (``load_intraday``, median of 5);
* **one symbol's day chart** (the busiest, 22 % of the day) — in the app (the first row's chart
  at start, ``MainWindow._load_chart``) and alone (the chart's read, median of 5);
* the resume points of 50 symbols and Settings' ``storage_info`` alone.

PostgreSQL: the same on a binary COPY of the last generated days (``--pg-days``; default 10 of
the 60 — COPY runs at ~20 s per 1M-trade day here — and all of them in ``--quick``).
``--before PATH`` runs the same children (both backends) on another tree's ``kis_desk`` (e.g.
``git archive`` of the commit before the change) for a before/after table.

``--db sqlite|postgresql`` measures one backend (the SQLite file is still the source of the
PostgreSQL copy).

``python -m benchmarks.bench_startup [--quick] [--pg-days N] [--runs N] [--before PATH] [--db D]``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / "results" / "startup-cache"
PG_DAYS = 10              # PostgreSQL data set by default (the full run): see the note in run()


def _run_child(args: list[str], home: Path, tree: Path | None, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "KIS_DESK_HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join(str(p) for p in (tree, ROOT) if p)}
    # the working directory comes first on the child's path: the tree measured (benchmarks/ from ROOT)
    done = subprocess.run([sys.executable, "-m", "benchmarks.startup_probe", *args], cwd=tree or ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if tree is not None and f"kis_desk from {tree}" not in done.stderr:
        raise RuntimeError(f"bench_startup child did not import kis_desk from {tree}: {done.stderr[-500:]}")
    if done.returncode != 0:
        raise RuntimeError(f"bench_startup child {args[0]} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the run ---------------------------------------------------------------------------------------

def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _measure(label: str, full_url: str, empty_url: Callable[[Path], str], day: date, codes: list[str], runs: int,
             repeat: int, tree: Path | None, work: Path) -> dict[str, Any]:
    """Alternating app runs on the empty and the full table, then the reads alone."""
    from benchmarks.startup_data import clean_after_run

    app: dict[str, list[dict[str, Any]]] = {"empty": [], "full": []}
    loads = [_load()]
    for k in range(runs):
        for which in ("empty", "full"):
            home = work / f"{label}-{which}-{k}"
            home.mkdir(parents=True)
            url = empty_url(home) if which == "empty" else full_url
            try:
                app[which].append(_run_child(["app", url, day.isoformat(), "90"], home, tree, 300))
            finally:
                if which == "full":
                    clean_after_run(full_url, day, codes)
            loads.append(_load())
    reads = _run_child(["reads", full_url, day.isoformat(), str(repeat)], work / f"{label}-reads", tree, 1800)
    loads.append(_load())
    return {"app": app, "reads": reads, "load_average": loads}


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return round(statistics.median(values), 3) if values else None


def run(quick: bool = False, runs: int | None = None, pg_days: int | None = None,
        before: Path | None = None, db: str = "both") -> dict[str, Any]:
    from benchmarks.bench_writer import PG_URL, _pg_available
    from benchmarks.startup_data import pg_data_set, plan, sqlite_data_set

    days, per_day, symbols = (3, 100_000, 50) if quick else (60, 1_000_000, 50)
    runs = runs or (1 if quick else 3)
    repeat = 2 if quick else 5
    out: dict[str, Any] = {"name": "startup", "notes": [], "days": days, "per_day": per_day,
                           "symbols": symbols, "runs": runs, "cpus": os.cpu_count()}
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        path, meta = sqlite_data_set(CACHE, days, per_day, symbols)
        out["sqlite_data"] = {**meta, "file_bytes": path.stat().st_size,
                              "bytes_per_trade": round(path.stat().st_size / meta["trades"], 1)}
        day = date.fromisoformat(meta["last_day"])
        codes = plan(days, per_day, symbols)["codes"]
        trees = {"after": None} if before is None else {"after": None, "before": before}
        for name, tree in trees.items() if db in ("both", "sqlite") else ():
            out[f"sqlite_{name}"] = _measure(
                f"sqlite-{name}", f"sqlite:///{path}", lambda home: f"sqlite:///{home / 'empty.sqlite3'}",
                day, codes, runs, repeat, tree, work)
        skip = _pg_available(PG_URL) if db in ("both", "postgresql") else "PostgreSQL: not measured (--db sqlite)"
        if skip:
            out["notes"].append(skip)
        else:
            from benchmarks.bench_storage import _pg_schema_url
            import sqlalchemy as sa

            n = min(pg_days or (days if quick else PG_DAYS), days)
            if n < days:
                out["notes"].append(f"PostgreSQL: the last {n} of the {days} days (binary COPY takes ~20 s per "
                                    "1M-trade day on this 2-core machine and ~220 B per trade with bars: all "
                                    "60 days would be ~20 min and ~13 GB in the shared server; --pg-days 60)")
            url, pg_meta = pg_data_set(PG_URL, _pg_schema_url, path, n, per_day, symbols)
            out["pg_data"] = pg_meta
            admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
            empties: list[str] = []

            def empty_schema(_home: Path) -> str:
                name = f"bench_empty_{uuid.uuid4().hex[:10]}"
                with admin.begin() as conn:
                    conn.execute(sa.text(f"CREATE SCHEMA {name}"))
                empties.append(name)
                return _pg_schema_url(name)

            try:
                for name, tree in trees.items():
                    out[f"pg_{name}"] = _measure(f"pg-{name}", url, empty_schema, day, codes, runs, repeat, tree, work)
            finally:
                with admin.begin() as conn:
                    for name in empties:
                        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
                admin.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["results"] = _rows(out)
    out["ratios"] = {f"{key}_start_full_minus_empty_s": r["difference"] for key, r in
                     (("sqlite", _start_row(out, "sqlite")), ("postgresql", _start_row(out, "postgresql"))) if r}
    return out


def _start_row(out: dict[str, Any], db: str) -> dict[str, Any] | None:
    return next((r for r in out["results"] if r["metric"].startswith(f"{db}: same, ") and "difference" in r), None)


def _rows(out: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    d = out["sqlite_data"]
    size = f"{out['days']} days × {out['per_day']:,} trades, {out['symbols']} symbols"
    rows.append({"metric": f"sqlite: generate {size} ({d['trades']:,} trades){' (cached)' if d['cached'] else ''}",
                 "value": d["generation_s"], "unit": "s"})
    rows.append({"metric": "sqlite: bytes per trade of that file (bars_1m and alerts included)",
                 "value": d["bytes_per_trade"], "unit": "B", "goal": "<= 60"})
    if "pg_data" in out:
        p = out["pg_data"]
        rows.append({"metric": f"postgresql: COPY {p['days']} days ({p['trades']:,} trades) + bars + VACUUM"
                               f"{' (cached)' if p['cached'] else ''}", "value": p["generation_s"], "unit": "s"})
    for key, db in (("sqlite_before", "sqlite (before)"), ("sqlite_after", "sqlite"),
                    ("pg_before", "postgresql (before)"), ("pg_after", "postgresql")):
        m = out.get(key)
        if not m:
            continue
        empty, full = m["app"]["empty"], m["app"]["full"]
        e, f = _median(empty, "live"), _median(full, "live")
        rows.append({"metric": f"{db}: app start → first live trade in the grid, empty table", "value": e, "unit": "s"})
        diff = None if e is None or f is None else round(f - e, 3)
        rows.append({"metric": f"{db}: same, {out['days']} days stored (median of {len(full)})", "value": f,
                     "unit": "s", "baseline": e, "ratio": None if not e or f is None else round(f / e, 2),
                     "difference": diff})
        rows.append({"metric": f"{db}: … {out['days']} days stored minus empty", "value": diff, "unit": "s",
                     "goal": "<= 2 s"})
        for mark in ("watchlist", "collector_started", "window_started"):
            rows.append({"metric": f"{db}: … {mark.replace('_', ' ')} at, empty / {out['days']} days", "unit": "s",
                         "value": f"{_median(empty, mark)} / {_median(full, mark)}"})
        rows.append({"metric": f"{db}: sparklines + 1-minute changes of 50 rows, in the app",
                     "value": _median(full, "rows_seeded_took"), "unit": "s", "goal": "<= 1 s"})
        rows.append({"metric": f"{db}: same, alone (median)", "value": round(m["reads"]["intraday_s"], 3),
                     "unit": "s", "goal": "<= 1 s"})
        busiest = m["reads"]["busiest_trades"]
        rows.append({"metric": f"{db}: day chart of the busiest symbol ({busiest:,} trades that day), row "
                               "selected in the running app", "value": _ms(_median(full, "chart_clicked_took")),
                     "unit": "ms", "goal": "<= 200 ms"})
        rows.append({"metric": f"{db}: same, the first row's chart during the start (competes with it)",
                     "value": _ms(_median(full, "chart_loaded_took")), "unit": "ms"})
        rows.append({"metric": f"{db}: same, alone (median)", "value": _ms(m["reads"]["chart_s"]), "unit": "ms",
                     "goal": "<= 200 ms"})
        rows.append({"metric": f"{db}: back-fill resume points of 50 symbols, alone", "unit": "s",
                     "value": round(m["reads"]["resume_s"], 3)})
        if "storage_info_s" in m["reads"]:
            rows.append({"metric": f"{db}: storage_info (Settings), alone", "unit": "ms",
                         "value": _ms(m["reads"]["storage_info_s"])})
        rows.append({"metric": f"{db}: load average during the runs", "value": m["load_average"][-1], "unit": "",
                     "all": m["load_average"]})
    for note in out["notes"]:
        rows.append({"metric": "note", "value": note, "unit": ""})
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_startup")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--pg-days", type=int)
    parser.add_argument("--before", type=Path, help="a tree whose kis_desk to measure too")
    parser.add_argument("--db", choices=("both", "sqlite", "postgresql"), default="both",
                        help="measure one backend only (PostgreSQL still copies from the SQLite file)")
    args = parser.parse_args(argv)
    result = run(args.quick, args.runs, args.pg_days, args.before, args.db)
    for row in result["results"]:
        extra = f"  (empty {row['baseline']}, +{row['difference']})" if row.get("difference") is not None else ""
        print(f"{row['metric']:<92} {row['value']!s:>10} {row['unit']}{extra}")
    out = ROOT / "benchmarks" / "results" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
