"""Desktop start-up glue: saved settings under command-line options, which watchlist opens."""

from __future__ import annotations

import argparse

import pytest

from kis_desk.config import Secret, UserPaths
from kis_desk.engine.collector import CollectorConfig, ConfigError
from kis_desk.engine.storage import Repository
from kis_desk.market.symbols import default_watchlist
from kis_desk.settings import SettingsStore, UserSettings
from kis_desk.ui.app import CLI_WATCHLIST, merge_settings, resolve_watchlist

pytestmark = pytest.mark.usefixtures("memory_keyring")


def _args(**kw) -> argparse.Namespace:
    base = dict(env=None, db=None, redis=None, redis_channel=None, threshold=None, window=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_saved_settings_fill_what_the_command_line_leaves_open():
    store = SettingsStore()
    s = UserSettings(environment="mock", alert_threshold_pct=3.0, alert_window_seconds=20,
                     redis_channel="desk:alerts")
    store.set_credentials(s, [(Secret("KEY-one-123"), Secret("SECRET-one-123"))])
    store.set_redis_url(s, "redis://:pw123@cache:6379/0")
    store.save(s)
    cfg = merge_settings(CollectorConfig(), _args(), store.load(), store)
    assert (cfg.env, cfg.threshold_pct, cfg.window_seconds, cfg.redis_channel) == ("mock", 3.0, 20, "desk:alerts")
    assert cfg.redis_url == "redis://:pw123@cache:6379/0"
    assert cfg.credentials and cfg.credentials[0].app_secret.reveal() == "SECRET-one-123"
    cli = CollectorConfig(env="sim", threshold_pct=7.0)
    cfg = merge_settings(cli, _args(env="sim", threshold=7.0), store.load(), store)
    assert (cfg.env, cfg.threshold_pct, cfg.credentials) == ("sim", 7.0, None)


def test_first_run_creates_the_default_watchlist_then_reopens_the_last_one():
    url = UserPaths.default().ensure().default_database_url
    name, codes = resolve_watchlist(url, None, [], UserSettings(language="ko"))
    assert name == "기본" and codes == default_watchlist() and len(codes) == 50
    repo = Repository(url)
    repo.create_watchlist("반도체", ["000660", "005930"])
    repo.close()
    assert resolve_watchlist(url, None, [], UserSettings(watchlist="반도체")) == ("반도체", ["000660", "005930"])
    assert resolve_watchlist(url, "반도체", [], UserSettings()) == ("반도체", ["000660", "005930"])
    with pytest.raises(ConfigError):
        resolve_watchlist(url, "없는목록", [], UserSettings())
    assert resolve_watchlist(url, None, ["035420"], UserSettings()) == (CLI_WATCHLIST, ["035420"])
    assert resolve_watchlist(url, None, ["035720"], UserSettings()) == (CLI_WATCHLIST, ["035720"])
