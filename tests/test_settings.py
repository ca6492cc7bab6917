"""User settings: JSON for plain values, keyring for secrets (never plain text on disk)."""

from __future__ import annotations

import json

import keyring
import keyring.backends.fail
import pytest

from kis_desk.config import Secret, UserPaths
from kis_desk.settings import (
    SERVICE,
    SecretStore,
    SettingsStore,
    UserSettings,
    join_url_password,
    keyring_is_usable,
    split_url_password,
)
from test_ui_support import MemoryKeyring

APP_KEY = "PSKEYabcdef1234567890"
APP_SECRET = "SECRETxyz0987654321+/=="
DB_PW = "db-p@ss:word"
REDIS_PW = "r3disPW!"


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(previous)


def _file_text(store: SettingsStore) -> str:
    return store.path.read_text(encoding="utf-8")


def test_round_trip_keeps_secrets_out_of_the_json_file(memory_keyring):
    store = SettingsStore()
    s = UserSettings(environment="real", colour_scheme="western", sound=False, language="en",
                     alert_threshold_pct=3.5, alert_window_seconds=30, redis_channel="desk")
    store.set_credentials(s, [(Secret(APP_KEY), Secret(APP_SECRET)), (Secret(APP_KEY + "2"), Secret(APP_SECRET + "2"))])
    pw_quoted = "db-p%40ss%3Aword"
    store.set_database_url(s, f"postgresql+psycopg://kis:{pw_quoted}@db.example:5432/market")
    store.set_redis_url(s, f"redis://:{REDIS_PW}@cache.example:6379/0")
    store.save(s)

    text = _file_text(store)
    for secret in (APP_KEY, APP_SECRET, pw_quoted, DB_PW, REDIS_PW):
        assert secret not in text
    raw = json.loads(text)
    assert raw["database_url"] == "postgresql+psycopg://kis@db.example:5432/market"
    assert raw["redis_url"] == "redis://cache.example:6379/0"
    assert raw["key_count"] == 2
    assert (SERVICE, "app-key-1") in memory_keyring.passwords

    again = SettingsStore()   # a fresh process: everything comes back from file + keyring
    loaded = again.load()
    assert (loaded.environment, loaded.colour_scheme, loaded.sound, loaded.language) == ("real", "western", False, "en")
    assert (loaded.alert_threshold_pct, loaded.alert_window_seconds, loaded.redis_channel) == (3.5, 30, "desk")
    creds = again.credentials(loaded)
    assert [c.label for c in creds] == ["key1", "key2"]
    assert creds[0].app_key.reveal() == APP_KEY and creds[0].app_secret.reveal() == APP_SECRET
    assert again.database_url(loaded) == f"postgresql+psycopg://kis:{pw_quoted}@db.example:5432/market"
    assert again.redis_url(loaded) == f"redis://:{REDIS_PW}@cache.example:6379/0"
    assert APP_KEY not in repr(creds)

    again.set_credentials(loaded, [(Secret(APP_KEY), Secret(APP_SECRET))])   # fewer keys: extras deleted
    assert (SERVICE, "app-key-2") not in memory_keyring.passwords
    assert loaded.key_count == 1


def test_without_keyring_secrets_live_for_the_session_only(no_keyring):
    assert not keyring_is_usable()
    store = SettingsStore()
    assert store.secrets.persistent is False
    s = UserSettings(environment="mock")
    store.set_credentials(s, [(Secret(APP_KEY), Secret(APP_SECRET))])
    store.set_database_url(s, f"postgresql://kis:{DB_PW.replace('@', '%40').replace(':', '%3A')}@h/db")
    store.save(s)
    assert store.credentials(s)[0].app_secret.reveal() == APP_SECRET     # usable now
    assert "%40" in (store.database_url(s) or "")
    text = _file_text(store)
    assert APP_KEY not in text and APP_SECRET not in text and "p%40ss" not in text
    for f in UserPaths.default().config.rglob("*"):                     # nothing else written
        if f.is_file():
            assert APP_SECRET not in f.read_text(encoding="utf-8", errors="replace")
    fresh = SettingsStore()
    assert fresh.credentials(fresh.load()) == []                         # gone next session


def test_save_refuses_a_url_with_a_password(memory_keyring):
    store = SettingsStore()
    with pytest.raises(ValueError):
        store.save(UserSettings(database_url="postgresql://u:pw@h/db"))
    assert not store.path.exists()


def test_hand_edited_file_is_repaired(memory_keyring):
    store = SettingsStore()
    store.paths.config.mkdir(parents=True, exist_ok=True)
    store.path.write_text(json.dumps({"environment": "prod", "alert_threshold_pct": 500, "key_count": 9,
                                      "language": "fr", "unknown": 1}), encoding="utf-8")
    s = store.load()
    assert (s.environment, s.alert_threshold_pct, s.key_count, s.language) == ("sim", 5.0, 4, "ko")
    store.path.write_text("{not json", encoding="utf-8")
    assert store.load() == UserSettings()


@pytest.mark.parametrize("url, bare, pw", [
    ("postgresql+psycopg://u:pw@h:5432/db", "postgresql+psycopg://u@h:5432/db", "pw"),
    ("redis://:secret@h:6379/0", "redis://h:6379/0", "secret"),
    ("rediss://user:a%2Fb@h/1", "rediss://user@h/1", "a%2Fb"),
    ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3", ""),
    ("", "", ""),
])
def test_split_and_join_url_password(url, bare, pw):
    assert split_url_password(url) == (bare, pw)
    assert join_url_password(bare, pw) == url


def test_secret_store_falls_back_when_the_keyring_fails(memory_keyring):
    class Broken(MemoryKeyring):
        def set_password(self, service, username, password):
            raise keyring.errors.KeyringLocked("locked")

    keyring.set_keyring(Broken())
    secrets = SecretStore()
    assert secrets.persistent
    secrets.set("x", Secret("value"))
    assert secrets.persistent is False and secrets.get("x") == Secret("value")


def test_settings_dialog_stores_secrets_in_the_keyring(qtbot, memory_keyring):
    from kis_desk.ui.settings_dialog import SettingsDialog

    store = SettingsStore()
    dialog = SettingsDialog(store, store.load())
    qtbot.addWidget(dialog)
    dialog.environment.setCurrentIndex(2)     # real
    dialog.key_edits[0][0].setText(APP_KEY)
    dialog.key_edits[0][1].setText(APP_SECRET)
    dialog.db_url.setText("postgresql+psycopg://kis:topsecretpw@db/market")
    dialog.threshold.setValue(4.0)
    dialog.colours.setCurrentIndex(1)
    dialog.language.setCurrentIndex(1)
    dialog.apply()
    text = _file_text(store)
    assert "topsecretpw" not in text and APP_SECRET not in text and APP_KEY not in text
    s = store.load()
    assert (s.environment, s.alert_threshold_pct, s.colour_scheme, s.language) == ("real", 4.0, "western", "en")
    assert store.database_url(s) == "postgresql+psycopg://kis:topsecretpw@db/market"

    # reopening: stored secrets are not shown; empty fields keep them; the URL keeps its password
    dialog2 = SettingsDialog(store, s)
    qtbot.addWidget(dialog2)
    assert dialog2.key_edits[0][0].text() == "" and dialog2.key_edits[0][0].placeholderText()
    assert dialog2.db_url.text() == "postgresql+psycopg://kis@db/market"
    dialog2.apply()
    s2 = store.load()
    assert store.credentials(s2)[0].app_secret.reveal() == APP_SECRET
    assert store.database_url(s2) == "postgresql+psycopg://kis:topsecretpw@db/market"

    dialog3 = SettingsDialog(store, s2)
    qtbot.addWidget(dialog3)
    dialog3.key_edits[1][0].setText("only-a-key")
    with pytest.raises(ValueError, match="2"):
        dialog3.apply()


def test_settings_dialog_warns_without_keyring(qtbot, no_keyring):
    from kis_desk.ui.i18n import tr
    from kis_desk.ui.settings_dialog import SettingsDialog

    store = SettingsStore()
    dialog = SettingsDialog(store, store.load())
    qtbot.addWidget(dialog)
    assert dialog.keyring_label.text() == tr("settings.keyring_missing")
