"""Append-only on-disk journal for ticks (and alerts) the database could not take in time.

Why: the database may be down, locked or full; the collector must never lose a trade.
The writer thread spills batches here (one ``write`` + ``fsync`` per batch) and replays them when
the database is back, or at the next start after a crash. Replays are idempotent because the
trade table's unique key ignores rows already stored.

Format: one segment file per spill episode (``seg-<time_ns>-<pid>.kjl``), UTF-8 lines::

    #kis-desk-journal 1
    T<TAB>code<TAB>iso-time<TAB>price<TAB>volume<TAB>cum_volume<TAB>change<TAB>rate<TAB>strength<TAB>received_at<TAB>source
    A<TAB>{alert event JSON}

Empty field = None. A torn last line (crash mid-write) is skipped on replay: it was never
acknowledged, because a batch is only reported as journaled after its fsync returned.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

from ...core.events import AlertEvent, event_from_dict
from ...core.ticks import VENUE_KRX, Tick

log = logging.getLogger(__name__)

HEADER = "#kis-desk-journal 1\n"
SUFFIX = ".kjl"
MAX_SEGMENT_BYTES = 64 * 1024 * 1024

def _opt(v: object) -> str:
    return "" if v is None else repr(v) if isinstance(v, float) else str(v)


def encode_tick(t: Tick) -> str:
    return (f"T\t{t.stock_code}\t{t.timestamp.isoformat()}\t{t.price}\t{t.volume}\t{t.cum_volume}\t"
            f"{_opt(t.change)}\t{_opt(t.change_rate)}\t{_opt(t.strength)}\t{t.received_at!r}\t{t.source}\t"
            f"{t.venue}\n")


def decode_tick(line: str) -> Tick:
    p = line.rstrip("\n").split("\t")
    if len(p) not in (11, 12) or p[0] != "T":      # 11: a journal written before venues
        raise ValueError("not a tick line")
    return Tick(p[1], datetime.fromisoformat(p[2]), int(p[3]), int(p[4]), int(p[5]),
                int(p[6]) if p[6] else None, float(p[7]) if p[7] else None,
                float(p[8]) if p[8] else None, float(p[9]), p[10], p[11] if len(p) == 12 else VENUE_KRX)


def encode_alert(a: AlertEvent) -> str:
    return "A\t" + json.dumps(a.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass
class Chunk:
    ticks: list[Tick]
    alerts: list[AlertEvent]
    bad_lines: int = 0


class JournalLockedError(RuntimeError):
    pass


class Journal:
    """Segments in one directory. Not thread-safe: used by the writer thread only
    (``open``/``close`` from whoever starts/stops the writer)."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self._fh = None           # current segment, binary append
        self._path: Path | None = None
        self._good_size = 0
        self._current_lines = 0
        # One writer per journal directory, on every OS (flock on POSIX, msvcrt.locking on Windows):
        # the OS drops it when the holder exits, even after kill -9, so a crash never blocks a start.
        # thread_local=False: open() and close() may run on different worker threads.
        self._lock = FileLock(self.dir / ".lock", thread_local=False)
        self.pending = 0          # tick lines in all segments not yet replayed (approximate for torn files)
        self._counts: dict[Path, int] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the directory, take the directory lock, count what a previous run left."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise JournalLockedError(f"journal directory {self.dir} is used by another running writer "
                                     "(another kis-desk collector or app on this database)") from None
        for p in self.segments():
            n = self._count_ticks(p)
            self._counts[p] = n
            self.pending += n

    def close(self) -> None:
        self._close_segment()
        if self._lock.is_locked:
            self._lock.release()

    @staticmethod
    def _count_ticks(path: Path) -> int:
        try:
            with open(path, "rb") as f:
                return sum(1 for line in f if line.startswith(b"T\t"))
        except OSError:
            return 0

    # -- writing ---------------------------------------------------------------------------------
    def append(self, ticks: Sequence[Tick], alerts: Sequence[AlertEvent] = ()) -> None:
        """Write and fsync one batch. Raises OSError (disk full, read-only, file too large);
        on failure the segment is cut back to its last good size, or abandoned, so a partial
        line never merges with a later one."""
        if not ticks and not alerts:
            return
        data = "".join([encode_tick(t) for t in ticks] + [encode_alert(a) for a in alerts]).encode()
        if self._fh is None or self._good_size + len(data) > MAX_SEGMENT_BYTES:
            self._close_segment()
            self._open_segment()
        fh = self._fh
        try:
            view = memoryview(data)
            while view:  # raw writes may be short (disk full, file size limit): loop or raise
                written = fh.write(view)
                if not written:
                    raise OSError(28, "short write to the journal")
                view = view[written:]
            os.fsync(fh.fileno())
        except OSError:
            try:
                fh.truncate(self._good_size)
                fh.seek(self._good_size)
            except (OSError, ValueError):
                self._abandon_segment()
            raise
        self._good_size += len(data)
        self._current_lines += len(ticks)
        self.pending += len(ticks)

    def _open_segment(self) -> None:
        path = self.dir / f"seg-{time.time_ns():020d}-{os.getpid()}{SUFFIX}"
        fh = open(path, "ab", buffering=0)
        try:
            if fh.write(HEADER.encode()) != len(HEADER):
                raise OSError(28, "short write to the journal")
            os.fsync(fh.fileno())
        except OSError:
            fh.close()
            try:
                path.unlink()
            except OSError:
                pass
            raise
        try:  # make the new file's directory entry durable
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
        self._fh, self._path, self._good_size, self._current_lines = fh, path, len(HEADER), 0

    def _close_segment(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            assert self._path is not None
            if self._current_lines == 0 and self._good_size <= len(HEADER):
                try:
                    self._path.unlink()
                except OSError:
                    pass
            else:
                self._counts[self._path] = self._current_lines
        self._fh, self._path, self._good_size, self._current_lines = None, None, 0, 0

    def _abandon_segment(self) -> None:
        # Keep the file (its complete lines are valid); the torn tail is skipped on replay.
        self._close_segment()

    # -- reading ---------------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        """Closed segments, oldest first (the open one is excluded)."""
        try:
            found = sorted(p for p in self.dir.glob(f"seg-*{SUFFIX}") if p != self._path)
        except OSError:
            return []
        return found

    def has_data(self) -> bool:
        return bool(self.segments()) or (self._fh is not None and self._current_lines > 0)

    def rotate(self) -> None:
        """Close the open segment so it can be replayed."""
        self._close_segment()

    @staticmethod
    def read(path: Path, chunk_size: int) -> Iterator[Chunk]:
        """Chunks of a segment, tolerating a torn or garbled line (counted in ``bad_lines``)."""
        with open(path, "rb") as f:
            chunk = Chunk([], [])
            for raw in f:
                if raw.startswith(b"#"):
                    continue
                try:
                    line = raw.decode()
                    if not line.endswith("\n"):
                        raise ValueError("torn line")
                    if line.startswith("T\t"):
                        chunk.ticks.append(decode_tick(line))
                    elif line.startswith("A\t"):
                        ev = event_from_dict(json.loads(line[2:]))
                        if not isinstance(ev, AlertEvent):
                            raise ValueError("not an alert")
                        chunk.alerts.append(ev)
                    else:
                        raise ValueError("unknown line")
                except (ValueError, KeyError, TypeError):
                    chunk.bad_lines += 1
                    log.warning("journal %s: skipping an unreadable line (%d bytes)", path.name, len(raw))
                    continue
                if len(chunk.ticks) + len(chunk.alerts) >= chunk_size:
                    yield chunk
                    chunk = Chunk([], [])
            if chunk.ticks or chunk.alerts or chunk.bad_lines:
                yield chunk

    def remove(self, path: Path) -> None:
        """A segment was fully replayed into the database."""
        n = self._counts.pop(path, None)
        if n is None:
            n = self._count_ticks(path)
        path.unlink(missing_ok=True)
        self.pending = max(0, self.pending - n)
