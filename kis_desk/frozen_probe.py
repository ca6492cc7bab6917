"""Hidden probe of everything a frozen (PyInstaller) build tends to lose.

PyInstaller finds imports statically; whatever a package loads by name at run time (Qt plugins,
pyqtgraph's Qt shims, holidays' lazy country modules, keyring backends via entry points, SQLAlchemy
dialects, psycopg's binary implementation, data files) can silently go missing. Building is not
proof, so this exercises each piece for real and reports per item. Run it with
``KIS_DESK_FROZEN_PROBE=1 kis-desk`` (prints JSON, exit 1 on any failure); ``--self-check`` may
call :func:`probe` too. Works unfrozen as well, which is how failures are told apart from bugs.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def _qt_app() -> Any:
    # Offscreen unless the caller already chose a platform (the probe must run headless).
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "kis-desk"])


def _check_qt() -> str:
    from PySide6.QtCore import QLibraryInfo
    from PySide6.QtGui import QImageReader

    app = _qt_app()
    plugins = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    platforms = sorted(os.listdir(os.path.join(plugins, "platforms")))
    # The platforms we ship: offscreen (self-check, CI), xcb (X11 desktops), minimal (fallback);
    # Windows/macOS ship their own (qwindows / qcocoa).
    wanted = {"win32": ["windows"], "darwin": ["cocoa"]}.get(sys.platform, ["offscreen", "xcb", "minimal"])
    missing = [w for w in wanted if not any(w in p for p in platforms)]
    if missing:
        raise RuntimeError(f"Qt platform plugins missing: {missing} (have {platforms})")
    formats = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    need = {"png", "ico", "jpg", "svg"}
    if not need <= formats:
        raise RuntimeError(f"Qt image formats missing: {sorted(need - formats)}")
    return f"platform={app.platformName()} plugins={plugins}"


def _check_pyqtgraph() -> str:
    import numpy as np
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtGui import QImage

    _qt_app()
    # The pieces the detail chart uses (kis_desk/ui/chart.py): date axis, clip/downsample,
    # scatter markers, volume bars, a reference line.
    w = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(utcOffset=-9 * 3600)})
    try:
        w.resize(320, 200)
        w.setBackground("w")
        t = 1_750_000_000 + np.arange(2000.0) * 10
        w.setClipToView(True)
        w.setDownsampling(auto=True, mode="peak")
        w.plot(t, np.sin(np.arange(2000.0) / 80.0) * 10.0, pen=pg.mkPen("r", width=3))
        w.addItem(pg.InfiniteLine(pos=0, angle=0))
        w.addItem(pg.ScatterPlotItem(x=t[::500], y=np.zeros(4), size=11, symbol="t1"))
        w.addItem(pg.BarGraphItem(x=t[::100], height=np.ones(20), width=50))
        w.show()
        img: QImage = w.grab().toImage()
        if img.isNull() or img.width() < 100:
            raise RuntimeError("grab() returned an empty image")
        # The red curve must have been painted: count pure-ish red pixels.
        red = sum(1 for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)
                  if (c := img.pixelColor(x, y)).red() > 200 and c.green() < 80 and c.blue() < 80)
        if red < 20:
            raise RuntimeError(f"plot rendered without the curve ({red} red pixels)")
        exported = pyqtgraph.exporters.ImageExporter(w.plotItem).export(toBytes=True)
        if exported.isNull():
            raise RuntimeError("ImageExporter produced an empty image")
    finally:
        w.close()
        w.deleteLater()
    return f"pyqtgraph {pg.__version__}, {img.width()}x{img.height()}, {red} curve pixels"


def _check_qasync() -> str:
    import asyncio

    import qasync

    app = _qt_app()
    loop = qasync.QEventLoop(app)
    try:
        async def work() -> int:
            await asyncio.sleep(0.01)
            return 42
        if loop.run_until_complete(work()) != 42:
            raise RuntimeError("qasync loop returned the wrong value")
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return f"qasync {getattr(qasync, '__version__', '?')}"


def _check_sqlite() -> str:
    import sqlite3

    from sqlalchemy import create_engine, text

    con = sqlite3.connect(":memory:")
    con.execute("create table t (a integer)")
    con.executemany("insert into t values (?)", [(i,) for i in range(10)])
    assert con.execute("select sum(a) from t").fetchone()[0] == 45
    con.close()
    eng = create_engine("sqlite://")
    with eng.connect() as c:
        assert c.execute(text("select 1")).scalar() == 1
    eng.dispose()
    return f"sqlite {sqlite3.sqlite_version}"


def _check_postgres_driver() -> str:
    import psycopg
    from sqlalchemy import create_engine

    # No server needed: this loads the dialect and the driver (and its C implementation).
    eng = create_engine("postgresql+psycopg://probe@127.0.0.1:1/probe")
    dialect = type(eng.dialect).__module__
    eng.dispose()
    impl = psycopg.pq.__impl__
    if impl != "binary":
        raise RuntimeError(f"psycopg uses the {impl!r} implementation, not 'binary'")
    return f"{dialect}, psycopg {psycopg.__version__} ({impl}, libpq {psycopg.pq.version()})"


def _check_network() -> str:
    """Loopback round trips: websockets server+client, aiohttp server+client, redis.asyncio."""
    import asyncio

    import aiohttp
    import redis.asyncio as aioredis
    import websockets
    from aiohttp import web
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def run() -> str:
        async def echo(ws: Any) -> None:
            async for m in ws:
                await ws.send(m)

        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}") as ws:
                await ws.send("ping")
                assert await ws.recv() == "ping"

        async def hello(_req: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        webapp = web.Application()
        webapp.router.add_get("/", hello)
        runner = web.AppRunner(webapp)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/") as r:
                assert (await r.json()) == {"ok": True}
        finally:
            await runner.cleanup()

        client = aioredis.Redis.from_url("redis://127.0.0.1:1/0")  # constructed, never connected
        await client.aclose()
        return f"websockets {websockets.__version__}, aiohttp {aiohttp.__version__}"

    return asyncio.run(asyncio.wait_for(run(), 20))


def _check_tls() -> str:
    import ssl

    ctx = ssl.create_default_context()
    n = ctx.cert_store_stats()["x509_ca"]
    if sys.platform != "win32" and n == 0:  # Windows loads its store lazily per connection
        raise RuntimeError(f"no CA certificates loaded ({ssl.get_default_verify_paths()})")
    return f"{ssl.OPENSSL_VERSION}, {n} CA certificates"


def _check_keyring() -> str:
    import keyring
    import keyring.backend

    backends = sorted(type(b).__module__ + "." + type(b).__name__ for b in keyring.backend.get_all_keyring())
    # keyring discovers even its own backends through entry points: without the package metadata
    # in the bundle only chainer/fail remain and every machine looks headless.
    from importlib.metadata import entry_points

    eps = sorted(ep.name for ep in entry_points(group="keyring.backends"))
    if not eps:
        raise RuntimeError("no keyring.backends entry points (keyring metadata not bundled)")
    native = {"win32": "keyring.backends.Windows", "darwin": "keyring.backends.macOS"}.get(
        sys.platform, "keyring.backends.SecretService")
    __import__(native)
    kr = keyring.get_keyring()
    return f"active={type(kr).__module__}.{type(kr).__name__}; viable={backends}; entry points={eps}"


def _check_crypto() -> str:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key, iv = bytes(range(32)), bytes(range(16))
    padder = padding.PKCS7(128).padder()
    data = padder.update("삼성전자^005930".encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(data) + enc.finalize()
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpad = padding.PKCS7(128).unpadder()
    pt = unpad.update(dec.update(ct) + dec.finalize()) + unpad.finalize()
    if pt.decode() != "삼성전자^005930":
        raise RuntimeError("AES-256-CBC round trip mismatch")
    import cryptography
    return f"cryptography {cryptography.__version__}"


def _check_holidays() -> str:
    from datetime import date

    import holidays

    krx = holidays.financial_holidays("XKRX", years=2025, language="ko")
    if date(2025, 1, 1) not in krx or date(2025, 12, 31) not in krx:
        raise RuntimeError("XKRX calendar lacks 2025-01-01 or the year-end closure")
    en = holidays.financial_holidays("XKRX", years=2025, language="en_US")
    name_ko, name_en = krx.get(date(2025, 1, 1)), en.get(date(2025, 1, 1))
    if name_ko == name_en:  # translations (.mo files) not bundled
        raise RuntimeError(f"holidays translations missing ({name_ko!r} == {name_en!r})")
    return f"holidays {holidays.__version__}: {len(krx)} KRX holidays in 2025, {name_ko} / {name_en}"


def _check_resources() -> str:
    from kis_desk.paths import resource, resources_dir

    sizes = {}
    for name in ("symbols.csv", "default_watchlist.txt", "kis-desk.png", "kis-desk.ico"):
        p = resource(name)
        if not p.is_file() or p.stat().st_size == 0:
            raise RuntimeError(f"resource missing or empty: {p}")
        sizes[name] = p.stat().st_size
    resource("symbols.csv").read_text(encoding="utf-8")
    from PySide6.QtGui import QIcon, QPixmap

    _qt_app()
    if QPixmap(str(resource("kis-desk.png"))).isNull() or QIcon(str(resource("kis-desk.ico"))).isNull():
        raise RuntimeError("icon does not load")
    return f"{resources_dir()} {sizes}"


def _check_single_instance() -> str:
    """QtNetwork's local socket and filelock (the one-app-per-profile guard) work in the bundle."""
    import tempfile

    from filelock import FileLock, Timeout
    from PySide6.QtNetwork import QLocalSocket

    from kis_desk.ui.single_instance import LOCK_NAME, SingleInstance

    _qt_app()
    with tempfile.TemporaryDirectory(prefix="kis-desk-probe-", ignore_cleanup_errors=True) as tmp:
        inst = SingleInstance(Path(tmp))
        if not inst.acquire(wait=5):
            raise RuntimeError("a fresh profile reported a running instance")
        try:
            sock = QLocalSocket()
            sock.connectToServer(inst.name)
            if not sock.waitForConnected(3000):
                raise RuntimeError(f"cannot connect to {inst.name}: {sock.errorString()}")
            sock.abort()
            try:
                FileLock(Path(tmp) / LOCK_NAME, thread_local=False).acquire(timeout=0)
                raise RuntimeError("the profile lock was not exclusive")
            except Timeout:
                pass
        finally:
            inst.release()
    return f"local socket {inst.name} and exclusive profile lock"


def _check_kis_desk() -> str:
    import importlib
    import pkgutil

    import kis_desk
    names = [m.name for m in pkgutil.walk_packages(kis_desk.__path__, "kis_desk.")
             if not m.name.endswith("__main__")]
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # report them all, not just the first
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if failed:
        raise RuntimeError("; ".join(failed))
    if len(names) < 10:
        raise RuntimeError(f"only {len(names)} kis_desk modules found: {names}")
    return f"{len(names)} modules import"


def _check_frame_decoder() -> str:
    """The compiled frame decoder (a binary PyInstaller must carry) gives the Python path's ticks."""
    from kis_desk.core.frame_ticks import FRAME_TICKS, IMPLEMENTATION, frame_ticks_python
    from kis_desk.protocol.codec import build_data_frame

    fields = ("005930^112616^62700^2^400^0.64^62700.41^62700^63000^62300^62700^62600^125^9694968^"
              "607878273600^25807^15918^-9889^93.01^4614191^4291558^1^0.45^63.03^090013^3^0^090646^"
              "5^-300^100741^2^400^20230324^20^N^71292^244009^2795345^2044512^0.16^5367918^180.61^0^"
              "^62700").split("^")
    raw = build_data_frame("H0STCNT0", [fields, fields]).encode()
    expected = frame_ticks_python(raw, "H0STCNT0", 1.0, "krx")
    if expected is None or len(expected) != 2:
        raise RuntimeError("the Python frame decoder rejected a valid frame")
    if FRAME_TICKS is not None and FRAME_TICKS(raw, "H0STCNT0", 1.0, "krx") != expected:
        raise RuntimeError("compiled and Python frame decoders disagree")
    return IMPLEMENTATION


def _check_trade_insert() -> str:
    """The SQLite writer stores trades through its GIL-free INSERT (a compiled module that finds
    SQLite's functions in the bundled ``_sqlite3``) when the checkout has it built."""
    import tempfile
    from datetime import datetime
    from pathlib import Path

    import sqlalchemy as sa

    from kis_desk.core.ticks import Tick
    from kis_desk.engine.storage import raw_sqlite, schema
    from kis_desk.engine.storage.sqlite_backend import SQLiteBackend
    from kis_desk.protocol.records import KST

    with tempfile.TemporaryDirectory() as tmp:
        url = sa.make_url(f"sqlite:///{Path(tmp) / 'probe.sqlite3'}")
        engine = sa.create_engine(url)
        schema.migrate(engine)
        engine.dispose()
        backend = SQLiteBackend(url, 5.0, 5.0)
        backend.connect()
        try:
            t = datetime(2026, 3, 5, 9, 0, tzinfo=KST)
            ticks = [Tick("005930", t, 70000 + i, 1, i + 1, 0, 0.5, 100.0, 1.7e9, "ws")
                     for i in range(100)]
            if backend.write(ticks, []) != (100, 0) or backend.write(ticks, []) != (0, 0):
                raise RuntimeError("trades not stored exactly once")
            used = bool(backend._inserter)
        finally:
            backend.close()
    if used != (raw_sqlite.IMPLEMENTATION == "compiled"):
        raise RuntimeError(f"inserter {raw_sqlite.IMPLEMENTATION} but used={used}")
    return raw_sqlite.IMPLEMENTATION


CHECKS: dict[str, Callable[[], str]] = {
    "qt": _check_qt,
    "pyqtgraph": _check_pyqtgraph,
    "qasync": _check_qasync,
    "sqlite": _check_sqlite,
    "postgresql_driver": _check_postgres_driver,
    "network": _check_network,
    "tls": _check_tls,
    "keyring": _check_keyring,
    "crypto": _check_crypto,
    "holidays": _check_holidays,
    "resources": _check_resources,
    "single_instance": _check_single_instance,
    "kis_desk_modules": _check_kis_desk,
    "frame_decoder": _check_frame_decoder,
    "trade_insert": _check_trade_insert,
}


def probe() -> dict[str, Result]:
    """Run every check; ``{name: {"ok": bool, "detail": str}}`` (never raises)."""
    out: dict[str, Result] = {}
    for name, check in CHECKS.items():
        try:
            out[name] = {"ok": True, "detail": check()}
        except BaseException as exc:  # noqa: BLE001 - a probe reports, it does not crash
            if isinstance(exc, KeyboardInterrupt):
                raise
            out[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}",
                         "traceback": traceback.format_exc(limit=6)}
    return out


def main() -> int:
    """Print the probe as JSON (with ``frozen``) and return 0 only when every item is ok."""
    results = probe()
    report = {"frozen": bool(getattr(sys, "frozen", False)), "python": sys.version.split()[0],
              "ok": all(r["ok"] for r in results.values()), "items": results}
    print(json.dumps(report, ensure_ascii=False, indent=2), flush=True)
    return 0 if report["ok"] else 1
