"""The desktop user's saved settings over a collector configuration.

Shared by the app's start-up (``kis_desk.ui.app``) and the live apply of the Settings dialog
(``Collector.apply_settings``), so both read the settings the same way.
"""

from __future__ import annotations

import argparse
import dataclasses

from typing import Any

from ..settings import SettingsStore, UserSettings

#: ``kis_desk.engine.collector.CollectorConfig`` (not imported: the collector imports this module)
CollectorConfig = Any


def merge_settings(config: CollectorConfig, args: argparse.Namespace | None, settings: UserSettings,
                   store: SettingsStore) -> CollectorConfig:
    """Command-line options win; otherwise the user's saved settings (and keyring secrets)."""
    given = (lambda name: getattr(args, name, None) is not None) if args is not None else (lambda name: False)
    if not given("env"):
        config.env = settings.environment
    if not given("venue"):
        config.venue = settings.venue
    if config.env in ("mock", "real") and config.credentials is None:
        creds = store.credentials(settings)
        if creds:
            config.credentials = creds
    if not given("db"):
        config.db_url = store.database_url(settings) or config.db_url
    if not given("redis"):
        config.redis_url = store.redis_url(settings) or config.redis_url
    if not given("redis_channel") and settings.redis_channel:
        config.redis_channel = settings.redis_channel
    if not given("threshold"):
        config.threshold_pct = settings.alert_threshold_pct
    if not given("window"):
        config.window_seconds = settings.alert_window_seconds
    config.retention_days = settings.retention_days
    return config


def settings_changes(running: CollectorConfig, previous: UserSettings | None, settings: UserSettings,
                     store: SettingsStore) -> CollectorConfig:
    """The running configuration with what the user changed in Settings.

    Only fields whose settings-derived value differs between ``previous`` and ``settings``
    change (an option given on the command line stays unless the user changes that setting);
    without ``previous`` every settings-derived field is taken. Keys are the stored ones for
    mock/real (as at start-up, where stored keys win over environment variables): the keyring
    already holds the new ones when this runs, so they are compared with the running keys.
    """
    def derived(s: UserSettings) -> CollectorConfig:
        base = dataclasses.replace(running, credentials=None, db_url=None, redis_url=None)
        return merge_settings(base, None, s, store)

    after = derived(settings)
    if previous is None:
        new = dataclasses.replace(running, **{n: getattr(after, n) for n in _SETTINGS_FIELDS})
    else:
        before = derived(previous)
        new = dataclasses.replace(running, **{n: getattr(after, n) for n in _SETTINGS_FIELDS
                                              if getattr(before, n) != getattr(after, n)})
    if new.env != running.env and new.env == "sim":
        new.credentials = None
    if new.env in ("mock", "real") and after.credentials and after.credentials != running.credentials:
        new.credentials = after.credentials
    return new


#: CollectorConfig fields the Settings dialog decides (keys: see settings_changes).
_SETTINGS_FIELDS = ("env", "venue", "db_url", "redis_url", "redis_channel", "threshold_pct",
                    "window_seconds", "retention_days")
