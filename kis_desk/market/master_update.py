"""Download the KIS master files at most once a day, cache them parsed, fall back offline.

Where from: ``https://new.real.download.dws.co.kr/common/master/<name>.mst.zip`` (kis-protocol.md
§9), overridable by the ``KIS_DESK_MASTER_URL`` environment variable or the ``master_url``
setting. Each zip holds one ``.mst`` file. KOSPI and KOSDAQ are required; KONEX and the NXT lists
are optional (a failure there is recorded, the rest is used).

Cache (``<data>/master``): ``symbols.csv`` (every symbol, compact, read at start-up in a few
milliseconds) and ``meta.json`` (when fetched, from where, counts, the last error, the last
attempt). At most once a day: after a successful download nothing is fetched again the same KST
day; after a failure the next attempt waits :data:`RETRY_AFTER_FAILURE`. Downloads are blocking
(urllib) and meant for a worker thread: :func:`update_master_async` runs one there.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from kis_desk.market.master import MASTER_FILES, NXT_FILES, MasterFormatError, parse_code_list, parse_master
from kis_desk.market.symbols import (
    MASTER_CACHE_FILE,
    MASTER_META_FILE,
    MasterStatus,
    SymbolDirectory,
    load_directory,
    master_cache_dir,
    read_master_meta,
    records_to_symbols,
)
from kis_desk.protocol.records import KST

log = logging.getLogger(__name__)

DEFAULT_MASTER_URL = "https://new.real.download.dws.co.kr/common/master"
MASTER_URL_ENV = "KIS_DESK_MASTER_URL"
REQUIRED = ("KOSPI", "KOSDAQ")
RETRY_AFTER_FAILURE = timedelta(hours=1)
MAX_ZIP_BYTES = 32 * 1024 * 1024
TIMEOUT_SECONDS = 30.0


def master_base_url(setting: str = "") -> str:
    """``KIS_DESK_MASTER_URL``, else the ``master_url`` setting, else KIS's public location."""
    return (os.environ.get(MASTER_URL_ENV) or setting or DEFAULT_MASTER_URL).rstrip("/")


class MasterDownloadError(RuntimeError):
    """One line saying which file could not be fetched or read, and why."""


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What :func:`update_master` did: ``fetched`` False when skipped or failed."""

    fetched: bool
    skipped: bool
    status: MasterStatus
    counts: dict[str, int]
    message: str


def fetch_zip_member(url: str, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """The bytes of the single ``.mst`` member of the zip at ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:   # noqa: S310 (http/https only, below)
            data = resp.read(MAX_ZIP_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise MasterDownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MasterDownloadError(f"{url}: {reason}") from None
    if len(data) > MAX_ZIP_BYTES:
        raise MasterDownloadError(f"{url}: larger than {MAX_ZIP_BYTES // 2**20} MiB")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".mst")]
            if not names:
                raise MasterDownloadError(f"{url}: the zip holds no .mst file")
            return z.read(names[0])
    except zipfile.BadZipFile:
        raise MasterDownloadError(f"{url}: not a zip file") from None


def _write_meta(cache_dir: Path, meta: dict[str, object]) -> None:
    tmp = cache_dir / (MASTER_META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(cache_dir / MASTER_META_FILE)


def is_due(meta: dict[str, object], now: datetime) -> tuple[bool, str]:
    """(download now?, why not). Once per KST day after a success; an hour after a failure."""
    now = now.astimezone(KST)
    fetched = meta.get("fetched_at")
    if isinstance(fetched, str) and datetime.fromisoformat(fetched).astimezone(KST).date() == now.date():
        return False, f"already downloaded today ({fetched})"
    attempt = meta.get("last_attempt")
    if meta.get("last_error") and isinstance(attempt, str):
        at = datetime.fromisoformat(attempt)
        if now - at < RETRY_AFTER_FAILURE:
            return False, f"last attempt failed at {at:%H:%M}; next try after {at + RETRY_AFTER_FAILURE:%H:%M}"
    return True, ""


def update_master(*, base_url: str = "", cache_dir: Path | None = None, force: bool = False,
                  now: datetime | None = None, timeout: float = TIMEOUT_SECONDS) -> UpdateResult:
    """Download, parse and cache the master files unless done today; never raises for network
    trouble (the result and ``meta.json`` say what went wrong, the old cache stays in use)."""
    cache_dir = master_cache_dir() if cache_dir is None else cache_dir
    cache_dir.mkdir(parents=True, exist_ok=True)
    now = (now or datetime.now(KST)).astimezone(KST)
    meta = read_master_meta(cache_dir)
    if not force:
        due, why = is_due(meta, now)
        if not due:
            return UpdateResult(False, True, load_directory(cache_dir).status, {}, f"skipped: {why}")
    base = master_base_url(base_url)
    if not base.startswith(("http://", "https://")):
        return _failed(cache_dir, meta, now, f"master URL must be http(s): {base!r}")
    records, counts, problems = [], {}, []
    try:
        for market, name in MASTER_FILES.items():
            try:
                data = fetch_zip_member(f"{base}/{name}", timeout)
                rows = parse_master(data, market, name)
            except (MasterDownloadError, MasterFormatError) as exc:
                if market in REQUIRED:
                    raise
                problems.append(str(exc))
                continue
            records += rows
            counts[market] = len(rows)
        nxt: set[str] | None = set()
        for market, name in NXT_FILES.items():
            try:
                codes = parse_code_list(fetch_zip_member(f"{base}/{name}", timeout), name)
            except (MasterDownloadError, MasterFormatError) as exc:
                problems.append(str(exc))
                nxt = None   # a partial NXT list would mark NXT stocks as KRX-only
                break
            nxt.update(codes)
            counts[f"NXT-{market}"] = len(codes)
    except (MasterDownloadError, MasterFormatError) as exc:
        return _failed(cache_dir, meta, now, str(exc))
    directory = SymbolDirectory(records_to_symbols(records, None if nxt is None else frozenset(nxt)))
    directory.to_csv(cache_dir / MASTER_CACHE_FILE)
    meta = {"fetched_at": now.isoformat(), "base_url": base, "count": len(directory), "counts": counts,
            "last_attempt": now.isoformat(), "last_error": "", "warnings": problems}
    _write_meta(cache_dir, meta)
    status = load_directory(cache_dir).status
    text = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    log.info("master files downloaded from %s: %s", base, text)
    return UpdateResult(True, False, status, counts,
                        f"downloaded {len(directory):,} symbols ({text})"
                        + (f"; skipped: {'; '.join(problems)}" if problems else ""))


def _failed(cache_dir: Path, meta: dict[str, object], now: datetime, error: str) -> UpdateResult:
    meta = {**meta, "last_attempt": now.isoformat(), "last_error": error}
    _write_meta(cache_dir, meta)
    log.warning("master files: %s (using %s)", error, "the cached list" if meta.get("fetched_at") else "the bundled list")
    status = load_directory(cache_dir).status
    return UpdateResult(False, False, status, {}, f"download failed: {error}; in use: {status.text}")


async def update_master_async(**kwargs: object) -> UpdateResult:
    """:func:`update_master` in a worker thread (the event loop never waits on the network)."""
    return await asyncio.to_thread(update_master, **kwargs)   # type: ignore[arg-type]


__all__ = ["DEFAULT_MASTER_URL", "MASTER_URL_ENV", "MasterDownloadError", "UpdateResult", "fetch_zip_member",
           "is_due", "master_base_url", "update_master", "update_master_async"]
