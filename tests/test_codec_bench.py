"""The codec benchmark runs and reports the agreed shape (no timing assertions here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import bench_codec  # noqa: E402
from kis_desk.protocol.codec import decode_message  # noqa: E402


def test_bench_frames_are_valid_and_chained():
    for per_frame in (1, 10):
        frames = bench_codec.make_frames(200, per_frame)
        recs = [r for f in frames for r in decode_message(f).records]
        assert len(recs) == 200
        assert all(b.cum_volume == a.cum_volume + b.volume for a, b in zip(recs, recs[1:]))


def test_bench_run_shape(monkeypatch):
    monkeypatch.setattr(bench_codec, "make_frames", _small)  # keep the smoke run short
    report = bench_codec.run(quick=True)
    json.dumps(report)
    assert report["name"] == "codec"
    assert set(report["ratios"]) == {"1_record", "10_record"}
    assert all(r > 0 for r in report["ratios"].values())
    assert len(report["results"]) == 4 and all(r["unit"] == "records/s" for r in report["results"])


_orig_make_frames = bench_codec.make_frames


def _small(total: int, per: int) -> list[str]:
    return _orig_make_frames(2000, per)
