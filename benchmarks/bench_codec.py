"""Codec throughput vs the bare ``split`` floor.

    python -m benchmarks.bench_codec [--quick]

Frames are built from the two real H0STCNT0 records of kis-protocol.md §11.1 (times and
cumulative volumes varied, as in a live stream), as 1-record and 10-record frames. The floor is
``frame.split('|', 3)`` + ``payload.split('^')`` on the same frames — what a parser that validates
nothing and builds no objects costs. ``decode_message`` (classify, honour the count, validate the
core fields, build a DataFrame of TradeRecords) is reported in records/s and as a ratio to that
floor. Medians of several repetitions. Goal: ratio ≥ 0.5.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from kis_desk.protocol.codec import build_data_frame, decode_message

REAL_PAYLOADS = (
    "005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^607878273600^25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^5^-300^100741^2^400^20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^^62700",
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100",
)
GOAL = 0.5


def _records(n: int) -> list[list[str]]:
    """n realistic records: the real layouts, one trade per second from 09:00, chained ACML_VOL."""
    bases = [p.split("^") for p in REAL_PAYLOADS]
    cum = 1_000_000
    out = []
    for k in range(n):
        f = list(bases[k % 2])
        s = 9 * 3600 + k % (6 * 3600)
        f[1] = f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"
        vol = 1 + (k * 37) % 500
        cum += vol
        f[12], f[13] = str(vol), str(cum)
        out.append(f)
    return out


def make_frames(records_total: int, per_frame: int) -> list[str]:
    recs = _records(records_total)
    return [build_data_frame("H0STCNT0", recs[i:i + per_frame])
            for i in range(0, records_total - per_frame + 1, per_frame)]


def _floor(frames: list[str]) -> int:
    n = 0
    for frame in frames:
        parts = frame.split("|", 3)
        n += len(parts[3].split("^")) // 46
    return n


def _codec(frames: list[str]) -> int:
    n = 0
    decode = decode_message
    for frame in frames:
        n += len(decode(frame).records)
    return n


def _rate(fn, frames: list[str], expected: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        got = fn(frames)
        dt = time.perf_counter() - t
        if got != expected:
            raise AssertionError(f"{fn.__name__}: {got} records, expected {expected}")
        rates.append(expected / dt)
    return statistics.median(rates)


def run(quick: bool = False) -> dict:
    total = 20_000 if quick else 200_000
    repeats = 3 if quick else 7
    results, ratios = [], {}
    for per_frame in (1, 10):
        frames = make_frames(total, per_frame)
        expected = len(frames) * per_frame
        _codec(frames[:1000])  # warm the validation caches, as a live session would
        floor = _rate(_floor, frames, expected, repeats)
        codec = _rate(_codec, frames, expected, repeats)
        ratio = codec / floor
        key = f"{per_frame}_record"
        ratios[key] = round(ratio, 3)
        results.append({"metric": f"floor split, {per_frame}-record frames", "value": round(floor),
                        "unit": "records/s"})
        results.append({"metric": f"decode_message, {per_frame}-record frames", "value": round(codec),
                        "unit": "records/s", "baseline": round(floor), "ratio": round(ratio, 3),
                        "goal": f">= {GOAL}"})
    return {"name": "codec", "results": results, "ratios": ratios,
            "params": {"records": total, "repeats": repeats}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    report = run(quick="--quick" in argv)
    print(f"{'metric':<40} {'records/s':>12} {'ratio':>7}")
    for r in report["results"]:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else ""
        print(f"{r['metric']:<40} {r['value']:>12,} {ratio:>7}")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
