"""``kis-desk export`` on real SQLite and PostgreSQL: trades written by the real TickWriter come
back out of CSV and Parquet with every value equal, bars match a brute-force reference, reads
really go in bounded chunks, and bad arguments are one line with exit status 2."""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from kis_desk.cli import main
from kis_desk.core.ticks import Tick
from kis_desk.engine.storage import Repository
from kis_desk.protocol.records import KST
from kis_desk.tools import export
from test_storage import db_url, pg_schema  # noqa: F401  (fixtures)
from test_storage_layout import brute_bars, store, varied_ticks

ROOT = Path(__file__).resolve().parent.parent
DAYS = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 9)]   # the last is outside
CODES = ("005930", "000660")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

try:
    import pyarrow.parquet as pq
except ImportError:   # the optional extra: pip install 'kis-desk[parquet]'
    pq = None
needs_pyarrow = pytest.mark.skipif(pq is None, reason="pyarrow not installed (the optional "
                                   "kis-desk[parquet] extra); the Parquet path cannot run")


def sample_ticks() -> list[Tick]:
    """Two symbols on four days, KRX and NXT, with every kind of value (µs times, None rates …)."""
    return [t for i, d in enumerate(DAYS) for j, code in enumerate(CODES) for venue in ("krx", "nxt")
            for t in varied_ticks(code, d, 230, seed=i * 10 + j + (venue == "nxt") * 100, venue=venue)]


async def stored(url: str, tmp_path: Path) -> list[Tick]:
    ticks = sample_ticks()
    await store(url, tmp_path / "journal", ticks[: len(ticks) // 2], ticks[len(ticks) // 2:])
    return ticks


def expected_rows(ticks: list[Tick], venue: str = "krx", last: date = date(2026, 3, 6)) -> list[tuple]:
    """What the export must contain, in its order (codes as asked, then day, then trade)."""
    chosen = [t for t in ticks if t.venue == venue and t.business_date <= last]
    chosen.sort(key=lambda t: (CODES.index(t.stock_code), t.business_date, t.cum_volume))
    return [(t.stock_code, t.venue, t.business_date, t.timestamp, t.price, t.volume, t.cum_volume, t.change,
             t.change_rate, t.strength, EPOCH + timedelta(microseconds=round(t.received_at * 1_000_000)),
             t.source) for t in chosen]


def parse_csv_row(r: dict[str, str]) -> tuple:
    def opt(v: str, kind):  # noqa: ANN001
        return None if v == "" else kind(v)
    return (r["stock_code"], r["venue"], date.fromisoformat(r["business_date"]),
            datetime.fromisoformat(r["timestamp"]), int(r["price"]), int(r["volume"]), int(r["cum_volume"]),
            opt(r["change"], int), opt(r["change_rate"], float), opt(r["strength"], float),
            datetime.fromisoformat(r["received_at"]), r["source"])


def run_export(*argv: str, chunk_rows: int | None = None) -> int:
    args = export.add_export_arguments(argparse.ArgumentParser()).parse_args(list(argv))
    return export.run(args, chunk_rows=chunk_rows)


def common(url: str, *more: str) -> list[str]:
    return ["--codes", ",".join(CODES), "--from", "2026-03-02", "--to", "2026-03-06", "--db", url, *more]


# -- round trips ----------------------------------------------------------------------------------

async def test_csv_round_trip_keeps_every_value(db_url, tmp_path, capsys):
    ticks = await stored(db_url, tmp_path)
    out = tmp_path / "trades.csv"
    capsys.readouterr()                                               # the writer's log lines
    assert run_export(*common(db_url, "--format", "csv", str(out)), chunk_rows=97) == 0
    raw = out.read_bytes()
    raw.decode("utf-8")
    with open(out, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == export.TRADE_COLUMNS
        rows = [parse_csv_row(r) for r in reader]
    want = expected_rows(ticks)
    assert len(want) == 2 * 3 * 230
    assert rows == want
    first = raw.decode().splitlines()[1].split(",")
    assert first[3].endswith("+09:00") and "T" in first[3]          # readable KST ISO time
    err = capsys.readouterr().err   # silent when not a terminal (exactly "" in the subprocess test;
    assert "kis-desk export" not in err and "exported" not in err   # here a stale log handler may add noise)
    assert not list(tmp_path.glob("*.partial"))


async def test_nxt_venue_exports_only_nxt_trades(tmp_path):
    url = f"sqlite:///{(tmp_path / 'v.sqlite3').as_posix()}"
    ticks = await stored(url, tmp_path)
    out = tmp_path / "nxt.csv"
    assert run_export(*common(url, "--venue", "NXT", str(out))) == 0
    with open(out, encoding="utf-8", newline="") as f:
        assert [parse_csv_row(r) for r in csv.DictReader(f)] == expected_rows(ticks, "nxt")


@needs_pyarrow
async def test_parquet_round_trip_in_row_groups_per_chunk(tmp_path):
    url = f"sqlite:///{(tmp_path / 'p.sqlite3').as_posix()}"
    ticks = await stored(url, tmp_path)
    out = tmp_path / "trades.parquet"
    assert run_export(*common(url, str(out)), chunk_rows=200) == 0          # format from the suffix
    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups == 2 * math.ceil(3 * 230 / 200)     # one per chunk, per code
    table = f.read()
    assert table.column_names == list(export.TRADE_COLUMNS)
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=+09:00]"
    got = [tuple(r[c] for c in export.TRADE_COLUMNS) for r in table.to_pylist()]
    assert got == expected_rows(ticks)


async def test_bars_export_matches_the_trades(tmp_path):
    url = f"sqlite:///{(tmp_path / 'b.sqlite3').as_posix()}"
    ticks = await stored(url, tmp_path)
    want = {k: v for k, v in brute_bars(ticks).items()
            if k[1] == "krx" and datetime.fromtimestamp(k[2], KST).date() <= date(2026, 3, 6)}
    out = tmp_path / "bars.csv"
    assert run_export(*common(url, "--bars", "1m", str(out)), chunk_rows=7) == 0
    with open(out, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == export.BAR_COLUMNS
        rows = list(reader)
    got = {(r["stock_code"], r["venue"], int(datetime.fromisoformat(r["minute"]).timestamp())):
           tuple(int(r[c]) for c in export.BAR_COLUMNS[3:]) for r in rows}
    assert len(rows) == len(got) == len(want) > 7
    assert got == want
    minutes = [datetime.fromisoformat(r["minute"]) for r in rows if r["stock_code"] == CODES[0]]
    assert minutes == sorted(minutes) and all(m.second == 0 and m.utcoffset() == timedelta(hours=9) for m in minutes)
    if pq is not None:
        pout = tmp_path / "bars.parquet"
        assert run_export(*common(url, "--bars", "1m", "--format", "parquet", str(pout)), chunk_rows=7) == 0
        table = pq.read_table(pout).to_pylist()
        assert {(r["stock_code"], r["venue"], int(r["minute"].timestamp())):
                tuple(r[c] for c in export.BAR_COLUMNS[3:]) for r in table} == want


async def test_reads_really_go_in_bounded_chunks(tmp_path):
    """SQLite: keyset pages of at most chunk_rows, one SELECT each; every trade exactly once."""
    url = f"sqlite:///{(tmp_path / 'c.sqlite3').as_posix()}"
    ticks = await stored(url, tmp_path)
    repo = Repository(url)
    selects: list[str] = []
    sa.event.listen(repo.engine, "before_cursor_execute",
                    lambda conn, cur, stmt, *a: selects.append(stmt) if "stock_prices_realtime" in stmt else None)
    try:
        chunks = list(repo.trade_chunks(CODES[0], DAYS[0], DAYS[2], "krx", chunk_rows=50))
    finally:
        repo.close()
    assert [len(c) for c in chunks] == [50] * 13 + [40]                  # 690 trades
    assert len(selects) == len(chunks)
    got = [(t.business_date, t.cum_volume) for c in chunks for t in c]
    want = [(r[2], r[6]) for r in expected_rows(ticks) if r[0] == CODES[0]]
    assert got == want


@pytest.mark.postgres
async def test_postgres_reads_through_one_server_side_cursor(pg_schema, tmp_path):
    url = pg_schema[0]
    ticks = await stored(url, tmp_path)
    repo = Repository(url)
    try:
        chunks = list(repo.trade_chunks(CODES[1], DAYS[0], DAYS[2], "krx", chunk_rows=64))
    finally:
        repo.close()
    assert [len(c) for c in chunks] == [64] * 10 + [50]
    assert [t.cum_volume for c in chunks for t in c] == [r[6] for r in expected_rows(ticks) if r[0] == CODES[1]]
    if pq is not None:
        out = tmp_path / "pg.parquet"
        assert run_export(*common(url, str(out)), chunk_rows=300) == 0
        got = [tuple(r[c] for c in export.TRADE_COLUMNS) for r in pq.read_table(out).to_pylist()]
        assert got == expected_rows(ticks)


# -- stdout, empty results, errors -----------------------------------------------------------------

async def test_csv_to_stdout_and_silent_stderr(tmp_path):
    url = f"sqlite:///{(tmp_path / 's.sqlite3').as_posix()}"
    ticks = await stored(url, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "kis_desk", "export", *common(url, "-")],
                          capture_output=True, text=True, encoding="utf-8", cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rows = [parse_csv_row(r) for r in csv.DictReader(proc.stdout.splitlines())]
    assert rows == expected_rows(ticks)


async def test_empty_result_writes_a_header_only_file(tmp_path, capsys):
    url = f"sqlite:///{(tmp_path / 'e.sqlite3').as_posix()}"
    await stored(url, tmp_path)
    out = tmp_path / "empty.csv"
    assert run_export("--codes", "035720", "--from", "2026-03-02", "--to", "2026-03-06", "--db", url, str(out)) == 0
    assert out.read_text(encoding="utf-8") == ",".join(export.TRADE_COLUMNS) + "\n"
    assert "0 rows" in capsys.readouterr().err
    if pq is not None:
        pout = tmp_path / "empty.parquet"
        assert run_export(*common(url, "--from", "2026-04-01", "--to", "2026-04-02", str(pout))) == 0
        table = pq.read_table(pout)
        assert table.num_rows == 0 and table.column_names == list(export.TRADE_COLUMNS)
        assert "0 rows" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["--codes", "5930", "--from", "2026-03-02", "--to", "2026-03-06"], "invalid stock code"),
    (["--codes", "005930", "--from", "2026-03-06", "--to", "2026-03-02"], "is after"),
    (["--codes", "005930", "--from", "2026-3-x", "--to", "2026-03-02"], "not a date"),
    (["--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06", "--venue", "nyse"], "unknown venue"),
    (["--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06", "--db", "not a url"], "not a database URL"),
    (["--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06", "--db", "mysql://u@h/d"], "not supported"),
    (["--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06", "--format", "xlsx"], "unknown"),
    (["--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06", "--bars", "5m"], "only 1m"),
])
def test_bad_arguments_are_one_line_and_exit_2(argv, says, tmp_path, capsys):
    db = tmp_path / "x.sqlite3"
    Repository(f"sqlite:///{db.as_posix()}").close()
    if "--db" not in argv:
        argv = [*argv, "--db", f"sqlite:///{db.as_posix()}"]
    capsys.readouterr()
    out = tmp_path / "out.csv"
    assert main(["export", *argv, str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert not out.exists()


def test_missing_database_and_parquet_to_stdout_are_refused(tmp_path, capsys):
    base = ["export", "--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06"]
    assert main([*base, "--db", f"sqlite:///{(tmp_path / 'none.sqlite3').as_posix()}", "x.csv"]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()                    # never created by an export
    assert main([*base, "--format", "parquet", "-"]) == 2
    assert "needs a FILE" in capsys.readouterr().err


def test_unreachable_postgres_is_one_line(tmp_path, capsys):
    url = "postgresql+psycopg://postgres:secret-pw@127.0.0.1:1/test"
    assert main(["export", "--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06", "--db", url,
                 str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "cannot open" in err and "secret-pw" not in err


def test_missing_pyarrow_is_one_clear_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)                  # import pyarrow → ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    db = tmp_path / "x.sqlite3"
    Repository(f"sqlite:///{db.as_posix()}").close()
    capsys.readouterr()
    assert run_export("--codes", "005930", "--from", "2026-03-02", "--to", "2026-03-06",
                      "--db", f"sqlite:///{db.as_posix()}", str(tmp_path / "x.parquet")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip install 'kis-desk[parquet]'" in err


async def test_progress_on_a_terminal_goes_to_stderr(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{(tmp_path / 't.sqlite3').as_posix()}"
    await stored(url, tmp_path)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    capsys.readouterr()
    out = tmp_path / "t.csv"
    assert run_export(*common(url, str(out)), chunk_rows=100) == 0
    err = capsys.readouterr().err
    # (`in`, not startswith: an earlier in-process main() may leave a logging handler on a closed stream)
    assert "\rexported 100 rows (005930)\x1b[K" in err                    # the first chunk, at once
    assert err.endswith(f"\rexported 1,380 rows to {out}\x1b[K\n")         # and the total, last


async def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """``kis-desk export … - | head``: the closed pipe ends the export quietly, exit 0."""
    url = f"sqlite:///{(tmp_path / 'h.sqlite3').as_posix()}"
    await stored(url, tmp_path)                                       # ~150 kB of CSV > a pipe buffer
    proc = subprocess.Popen([sys.executable, "-m", "kis_desk", "export", *common(url, "-")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout.readline().decode().strip() == ",".join(export.TRADE_COLUMNS)
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""
