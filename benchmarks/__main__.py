"""``python -m benchmarks [--quick] [--only NAME,…]``: run every benchmark, print a table, write JSON.

Each module exposes ``run(quick: bool) -> dict`` returning ``{"name", "results": [...],
"ratios": {...}}``; results are rows of ``{"metric", "value", "unit", "baseline"?, "ratio"?,
"goal"?}``. Speed is reported as ratios against a baseline measured in the same run, because
absolute numbers on a shared 2-core machine mean little.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

MODULES = ("codec", "writer", "storage", "startup", "detector", "pipeline", "alerts_faults", "gui", "fanout")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def print_table(report: dict) -> None:
    rows = [("benchmark", "metric", "value", "unit", "ratio", "goal")]
    for bench in report["benchmarks"]:
        if bench.get("error"):
            rows.append((bench["name"], "ERROR", bench["error"][:60], "", "", ""))
            continue
        for r in bench.get("results", []):
            rows.append((bench["name"], r.get("metric", ""), _fmt(r.get("value")), r.get("unit", ""),
                         _fmt(r.get("ratio")), str(r.get("goal", ""))))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    parser.add_argument("--only", help="comma-separated subset of: " + ",".join(MODULES))
    parser.add_argument("--out", default="benchmarks/results/latest.json")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(MODULES)
    report = {
        "started": datetime.now(timezone.utc).isoformat(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "quick": args.quick,
        "benchmarks": [],
    }
    for name in names:
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            result = module.run(quick=args.quick)
        except Exception as exc:
            traceback.print_exc()
            result = {"name": name, "error": f"{type(exc).__name__}: {exc}"}
        result.setdefault("name", name)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        report["benchmarks"].append(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    print_table(report)
    print(f"\nJSON: {out}")
    return 1 if any(b.get("error") for b in report["benchmarks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
