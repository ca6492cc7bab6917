"""What Settings and ``collect`` say about the storage: size, days of raw trades kept, the oldest
and newest day, the retention — on SQLite and PostgreSQL, in the Settings dialog (through the
EngineHandle), applied live, and in ``collect``'s output."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import datetime, timedelta

from kis_desk.config import UserPaths
from kis_desk.engine.storage import Repository, TickWriter
from kis_desk.engine.storage.retention import RETENTION_SETTING
from kis_desk.engine.storage.stats import human_bytes
from kis_desk.engine.user_settings import settings_changes
from kis_desk.protocol.records import KST
from kis_desk.settings import SettingsStore, UserSettings
from kis_desk.wiring import build_collector
from test_collector import _cli, _paths, _wait
from test_day_reads import session, store
from test_settings_live import _config
from test_storage import db_url, pg_schema  # noqa: F401  (fixtures: sqlite + postgresql)
from test_ui_support import recording_engine

TODAY = datetime.now(KST).date()


def day_open(days_ago: int) -> datetime:
    d = TODAY - timedelta(days=days_ago)
    return datetime(d.year, d.month, d.day, 9, 0, tzinfo=KST)


async def test_storage_info_counts_the_days_kept(db_url, tmp_path):  # noqa: F811
    ticks = (session("005930", 300, 1, day_open(40)) + session("005930", 300, 2, day_open(3))
             + session("000660", 200, 3, day_open(3)) + session("000660", 100, 4, day_open(0)))
    await store(db_url, tmp_path, ticks)
    repo = Repository(db_url)
    try:
        info = repo.storage_info()
        assert info.trade_days == 3 and info.size_bytes > 0
        assert (info.oldest_trade_day, info.newest_trade_day) == (TODAY - timedelta(days=40), TODAY)
        assert info.retention_days == 0                   # what the writer above recorded: keep all
    finally:
        repo.close()
    writer = TickWriter(db_url, journal_dir=tmp_path / "j2", retention_days=90)
    await writer.start()
    writer.set_retention_days(30)                         # live (Settings): the 40-day-old day goes
    await _wait(lambda: writer.stats().purged == 300 and writer.stats().retention_days == 30, "retention 30")
    await writer.stop()
    repo = Repository(db_url)
    try:
        info = repo.storage_info()
        assert (info.trade_days, info.oldest_trade_day, info.retention_days) == (2, TODAY - timedelta(days=3), 30)
        assert repo.get_setting(RETENTION_SETTING) == "30"
    finally:
        repo.close()


def test_retention_setting_is_repaired_and_reaches_the_collector_config(tmp_path):
    s = UserSettings(retention_days="abc")              # hand-edited file
    s.validate()
    assert s.retention_days == 90
    s.retention_days = -5
    s.validate()
    assert s.retention_days == 90
    running = _config(tmp_path)
    changed = settings_changes(running, UserSettings(), UserSettings(retention_days=14), SettingsStore())
    assert changed.retention_days == 14 and changed.threshold_pct == running.threshold_pct


async def test_retention_applies_to_the_running_collector(tmp_path):
    collector = build_collector(_config(tmp_path))
    await collector.start()
    try:
        changed = await collector.apply(dataclasses.replace(collector.config, retention_days=7))
        assert changed == ["retention_days"]
        await _wait(lambda: collector.writer.stats().retention_days == 7, "retention 7 in effect")
        await _wait(lambda: collector.repository.get_setting(RETENTION_SETTING) == "7", "recorded")
        info = await collector.storage_info()               # what Settings reads, through the handle
        assert info.retention_days == 7 and info.size_bytes > 0
    finally:
        await collector.stop()


def test_settings_dialog_shows_the_storage_and_edits_the_retention(qtbot, qloop):
    from kis_desk.ui.main_window import MainWindow

    codes = ["005930", "000660"]
    engine = recording_engine(codes)
    ticks = session("005930", 200, 1, day_open(5)) + session("000660", 200, 2, day_open(1))
    qloop.run_until_complete(store(UserPaths.default().default_database_url, UserPaths.default().data, ticks))
    expected = engine.repository.storage_info()
    win = MainWindow(engine, SettingsStore())
    win.show()
    qloop.run_until_complete(win.start("기본", codes))
    try:
        dialog = win.open_settings()
        rows = dialog.storage
        assert rows.retention.value() == 90 and rows.retention.isEnabled()
        qloop.run_until_complete(asyncio.wait_for(win.idle(), 10))           # read through the engine
        assert rows.size.text() == human_bytes(expected.size_bytes)
        assert rows.days.text() == f"2일치: {TODAY - timedelta(days=5)} – {TODAY - timedelta(days=1)}"
        rows.retention.setValue(30)
        dialog.accept()
        qloop.run_until_complete(asyncio.wait_for(win.idle(), 10))
        (settings, previous), = [c[1] for c in engine.calls if c[0] == "apply_settings"]
        assert settings.retention_days == 30 and previous.retention_days == 90
        assert SettingsStore().load().retention_days == 30
        rows.retention.setValue(0)
        assert rows.retention.text() == "계속 보관"                               # 0 keeps everything
    finally:
        qloop.run_until_complete(win.shutdown())
        win.close()
        win.deleteLater()


def test_settings_storage_rows_without_storage_and_on_an_attached_desktop(qtbot):
    from kis_desk.ui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(SettingsStore(), UserSettings(retention_days=45), remote=True)
    qtbot.addWidget(dialog)
    assert not dialog.storage.retention.isEnabled() and dialog.storage.retention.value() == 45
    dialog.show_storage(None)
    assert dialog.storage.size.text() == "알 수 없음 (엔진이 시작되지 않음)"
    info = Repository(f"sqlite:///{UserPaths.default().ensure().data / 'x.sqlite3'}").storage_info()
    dialog.show_storage(info._replace(retention_days=60))
    assert dialog.storage.retention.value() == 60          # the remote collector's, in effect
    assert dialog.storage.days.text() == "아직 없음"
    dialog.apply()
    assert SettingsStore().load().retention_days == 45      # not ours to change


def test_collect_prints_the_database_size_and_retention(tmp_path):
    result = _cli("collect", "--codes", "005930,000660", "--duration", "2", home=tmp_path)
    assert result.returncode == 0, result.stderr
    start = [ln for ln in result.stderr.splitlines() if " on disk, " in ln and "kept 90 days" in ln]
    assert len(start) == 2, result.stderr                   # at start and in the closing summary
    assert "day(s) of raw trades" in start[0] or "no raw trades yet" in start[0]
    assert "removed by retention in this run" in start[1]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["retention_days"] == 90 and summary["database_bytes"] > 0
    assert human_bytes(summary["database_bytes"]) in start[1]
