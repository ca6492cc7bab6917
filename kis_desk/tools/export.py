"""``kis-desk export``: stored trades (or 1-minute bars) of a date range to CSV or Parquet.

    kis-desk export --codes 005930,000660 --from 2026-03-02 --to 2026-03-06 [--venue krx|nxt|total]
                    [--bars 1m] [--db URL] [--format csv|parquet] FILE      (FILE "-" = stdout, CSV)

Streaming: the repository hands out bounded chunks (``Repository.trade_chunks`` /
``bar_chunks``) and each chunk is written before the next is read (a Parquet row group per
chunk), so memory stays flat whatever the range. A file is written as ``FILE.partial`` and
renamed when complete: an interrupted export never leaves a file that looks whole.
Progress goes to stderr only when stderr is a terminal (a one-line counter: the total is not
known without a second pass over the range, so a bar library would add a dependency and no
information). Bad arguments, a missing database or a missing pyarrow: one line, exit 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..config import UserPaths, parse_codes, redact_url
from ..core.errors import describe
from ..core.ticks import VENUE_KRX, VENUE_NXT, VENUE_TOTAL, Tick
from ..protocol.records import KST

if TYPE_CHECKING:   # storage (SQLAlchemy) loads only when the command runs, not for `kis-desk --help`
    from ..engine.storage import Repository

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_ARGUMENTS = 2

VENUES = (VENUE_KRX, VENUE_NXT, VENUE_TOTAL)
FORMATS = ("csv", "parquet")
TRADE_COLUMNS = ("stock_code", "venue", "business_date", "timestamp", "price", "volume", "cum_volume",
                 "change", "change_rate", "strength", "received_at", "source")
BAR_COLUMNS = ("stock_code", "venue", "minute", "open", "high", "low", "close", "volume", "trades")


class UsageError(ValueError):
    """An argument the export cannot run with; the message is the one line the user reads."""


def add_export_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # Choices are checked in run(), not by argparse, so a bad value is one line, not usage + line.
    p.add_argument("--codes", required=True, help="comma-separated stock codes, e.g. 005930,000660")
    p.add_argument("--from", dest="first", required=True, metavar="DATE", help="first business date (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", required=True, metavar="DATE", help="last business date, included")
    p.add_argument("--venue", default=VENUE_KRX, help="krx (default), nxt or total (KIS's integrated stream)")
    p.add_argument("--bars", metavar="1m", help="export the 1-minute bars (kept forever) instead of trades")
    p.add_argument("--db", metavar="URL", help="database URL (default: SQLite in the user data directory)")
    p.add_argument("--format", help="csv or parquet (default: parquet for a .parquet FILE, else csv)")
    p.add_argument("file", metavar="FILE", help='output file; "-" writes CSV to stdout')
    return p


def add_export_command(sub: Any) -> None:
    add_export_arguments(sub.add_parser("export", help="export stored trades or 1-minute bars to CSV/Parquet"))


# -- rows ------------------------------------------------------------------------------------------

def trade_row(t: Tick) -> tuple:
    return (t.stock_code, t.venue, t.business_date, t.timestamp, t.price, t.volume, t.cum_volume, t.change,
            t.change_rate, t.strength, datetime.fromtimestamp(t.received_at, KST), t.source)


def _csv_value(v: Any) -> Any:
    if isinstance(v, datetime):   # always with µs so every row has one format (pandas parses fast)
        return v.astimezone(KST).isoformat(timespec="microseconds")
    if isinstance(v, date):
        return v.isoformat()
    return v


class CsvSink:
    def __init__(self, out: IO[str], columns: Sequence[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow(columns)

    def write(self, rows: Sequence[tuple]) -> None:
        self._writer.writerows([[_csv_value(v) for v in r] for r in rows])

    def close(self) -> None:
        pass


def _arrow_schema(bars: bool) -> Any:
    import pyarrow as pa

    stamp = pa.timestamp("us", tz="+09:00")   # a fixed offset: no time-zone database needed
    if bars:
        return pa.schema([("stock_code", pa.string()), ("venue", pa.string()), ("minute", stamp),
                          *((c, pa.int64()) for c in BAR_COLUMNS[3:])])
    return pa.schema([("stock_code", pa.string()), ("venue", pa.string()), ("business_date", pa.date32()),
                      ("timestamp", stamp), ("price", pa.int64()), ("volume", pa.int64()),
                      ("cum_volume", pa.int64()), ("change", pa.int64()), ("change_rate", pa.float64()),
                      ("strength", pa.float64()), ("received_at", stamp), ("source", pa.string())])


class ParquetSink:
    """One Parquet row group per chunk written."""

    def __init__(self, path: Path, bars: bool) -> None:
        import pyarrow.parquet as pq

        self._schema = _arrow_schema(bars)
        self._writer = pq.ParquetWriter(path, self._schema, compression="zstd")

    def write(self, rows: Sequence[tuple]) -> None:
        import pyarrow as pa

        columns = list(zip(*rows))
        self._writer.write_table(pa.Table.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, self._schema)], schema=self._schema))

    def close(self) -> None:
        self._writer.close()


class Progress:
    """``exported 120,000 rows (005930 …)`` redrawn on a terminal's stderr, ≤ 5 times a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows = 0
        self._shown = 0.0

    def add(self, n: int, what: str) -> None:
        self.rows += n
        now = time.monotonic()
        if self.enabled and now - self._shown >= 0.2:
            self._shown = now
            sys.stderr.write(f"\rexported {self.rows:,} rows ({what})\x1b[K")
            sys.stderr.flush()

    def done(self, target: str) -> None:
        if self.rows == 0:
            sys.stderr.write(("\r\x1b[K" if self.enabled else "") + f"kis-desk export: 0 rows (wrote a header-only {target})\n")
        elif self.enabled:
            sys.stderr.write(f"\rexported {self.rows:,} rows to {target}\x1b[K\n")
        sys.stderr.flush()


# -- the command -----------------------------------------------------------------------------------

def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def _database_url(text: str | None) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if text is None:
        text = UserPaths.default().default_database_url
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise UsageError(f"--db {redact_url(text)!r} is not a database URL "
                         "(sqlite:///path or postgresql://user@host/db)") from None
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise UsageError(f"--db: {backend!r} databases are not supported (sqlite:///path or postgresql://…)")
    if backend == "sqlite" and url.database not in (None, "", ":memory:") and not Path(url.database).is_file():
        raise UsageError(f"no database at {url.database} (use --db URL)")
    return text


def _chunks(repo: Repository, codes: Sequence[str], first: date, last: date, venue: str, bars: bool,
            chunk_rows: int) -> Iterator[tuple[str, list[tuple]]]:
    for code in codes:
        if bars:
            for chunk in repo.bar_chunks(code, first, last, venue, chunk_rows):
                yield code, [tuple(b) for b in chunk]
        else:
            for chunk in repo.trade_chunks(code, first, last, venue, chunk_rows):
                yield code, [trade_row(t) for t in chunk]


def _validated(args: argparse.Namespace) -> tuple[list[str], date, date, str, bool, str, str]:
    try:
        codes = parse_codes(args.codes)
    except ValueError as exc:
        raise UsageError(f"--codes: {exc}") from None
    if not codes:
        raise UsageError("--codes: no stock code given")
    first, last = _date(args.first, "--from"), _date(args.last, "--to")
    if first > last:
        raise UsageError(f"--from {first} is after --to {last}")
    venue = args.venue.lower()
    if venue not in VENUES:
        raise UsageError(f"--venue: unknown venue {args.venue!r} (krx, nxt or total)")
    if args.bars not in (None, "1m"):
        raise UsageError(f"--bars {args.bars!r} is unknown (only 1m bars are stored)")
    fmt = (args.format or ("parquet" if args.file.lower().endswith((".parquet", ".pq")) else "csv")).lower()
    if fmt not in FORMATS:
        raise UsageError(f"--format {args.format!r} is unknown (csv or parquet)")
    if fmt == "parquet":
        if args.file == "-":
            raise UsageError("parquet needs a FILE (stdout is for csv)")
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise UsageError("parquet needs pyarrow: pip install 'kis-desk[parquet]'") from None
    return codes, first, last, venue, args.bars is not None, fmt, _database_url(args.db)


def run(args: argparse.Namespace, chunk_rows: int | None = None) -> int:
    """Run the export; returns the exit status. ``chunk_rows``: rows per read (tests make it small)."""
    from ..engine.storage import LATEST_VERSION, Repository, current_version

    def fail(message: str, code: int) -> int:
        print(f"kis-desk export: {message}", file=sys.stderr, flush=True)
        return code

    try:
        codes, first, last, venue, bars, fmt, url = _validated(args)
    except UsageError as exc:
        return fail(str(exc), EXIT_BAD_ARGUMENTS)
    try:
        repo = Repository(url, migrate=False)
        with repo.engine.connect() as conn:
            version = current_version(conn)
    except Exception as exc:   # unreachable server, bad credentials, not a database file
        return fail(f"cannot open {redact_url(url)}: {describe(exc)}", EXIT_BAD_ARGUMENTS)
    try:
        if version < LATEST_VERSION:
            return fail(f"{redact_url(url)} has schema v{version}, this kis-desk reads v{LATEST_VERSION}: "
                        "open it once with `kis-desk collect` or the app to migrate it", EXIT_BAD_ARGUMENTS)
        chunks = _chunks(repo, codes, first, last, venue, bars, chunk_rows or repo.EXPORT_CHUNK_ROWS)
        columns = BAR_COLUMNS if bars else TRADE_COLUMNS
        progress = Progress(sys.stderr.isatty())
        if args.file == "-":
            out = sys.stdout
            if hasattr(out, "reconfigure"):
                out.reconfigure(encoding="utf-8")
            _write(CsvSink(out, columns), chunks, progress)
            out.flush()
            progress.done("CSV on stdout")
            return EXIT_OK
        target = Path(args.file)
        partial = target.with_name(target.name + ".partial")
        try:
            if fmt == "csv":
                with open(partial, "w", encoding="utf-8", newline="") as f:
                    _write(CsvSink(f, columns), chunks, progress)
            else:
                _write(ParquetSink(partial, bars), chunks, progress)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        progress.done(str(target))
        return EXIT_OK
    except KeyboardInterrupt:
        return fail("interrupted (no FILE left behind)", EXIT_FAILED)
    except BrokenPipeError:   # `… - | head`: the reader has what it wanted; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # so the interpreter's final flush stays quiet
        return EXIT_OK
    except Exception as exc:
        return fail(describe(exc), EXIT_FAILED)
    finally:
        repo.close()


def _write(sink: CsvSink | ParquetSink, chunks: Iterator[tuple[str, list[tuple]]], progress: Progress) -> None:
    try:
        for code, rows in chunks:
            sink.write(rows)
            progress.add(len(rows), code)
    finally:
        sink.close()


def main(argv: list[str] | None = None) -> int:
    parser = add_export_arguments(argparse.ArgumentParser(
        prog="kis-desk export", description="Export stored kis-desk trades or 1-minute bars."))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
