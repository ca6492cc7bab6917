"""pytest-qt: grouped alerts in the dock, muted alerts (greyed, no sound, no banner), the
alert-rules dialog and the Settings threshold applied live."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from PySide6.QtCore import Qt

from kis_desk.settings import UserSettings
from kis_desk.ui.alert_rules import open_alert_settings
from kis_desk.ui.alerts_view import MUTED_GREY, AlertLogModel
from kis_desk.ui.i18n import tr
from test_ui_window import alert, engine, run, window  # noqa: F401  (fixtures)


def step(a, n: int, seconds: float, **kw):
    """The same move a few seconds later (same base), ``n``: trigger cum volume."""
    return replace(a, alert_id=f"{a.stock_code}:x:{a.direction}:{n}:{n}", trigger_cum_volume=n,
                   trigger_time=a.trigger_time + timedelta(seconds=seconds), **kw)


def test_four_alerts_of_one_move_are_one_row_with_count_4(qtbot):
    model = AlertLogModel()
    first = alert("000660", 1)
    for n in range(4):      # re-armed and alerted again within seconds: the same base
        assert model.add(step(first, n + 1, 4.0 * n))
    assert model.rowCount() == 1 and model.count(0) == 4
    assert model.index(0, 3).data() == f"{tr('alert.up')} {tr('alert.count', count=4)}"
    assert model.index(0, 0).data() == (first.trigger_time + timedelta(seconds=12)).strftime("%H:%M:%S")
    assert len(model.alerts) == 4 and len(model.unacknowledged()) == 4   # each alert kept (own id)
    # another direction, another symbol, a level alert and a move long after: rows of their own
    model.add(replace(alert("000660", 9, "down")))
    model.add(alert("373220", 10))
    model.add(step(first, 11, 1.0, kind="level"))
    later = replace(first, alert_id="late-move", base_price=190_000,
                    base_time=first.trigger_time + timedelta(minutes=9),
                    trigger_time=first.trigger_time + timedelta(minutes=10))
    model.add(later)
    assert model.rowCount() == 5 and sorted(model.count(r) for r in range(5)) == [1, 1, 1, 1, 4]
    assert model.index(0, 0).data() == later.trigger_time.strftime("%H:%M:%S")   # newest first
    # acknowledging the grouped row acknowledges its four alerts
    row = next(r for r in range(5) if model.count(r) == 4)
    model.mark_acknowledged(model.ids_of([row]))
    assert model.row_acked(row) and len(model.unacknowledged()) == 4


def test_muted_alert_is_logged_greyed_but_not_sounded_or_bannered(qloop, window, engine):
    a = replace(alert("000660", 1), muted=True)
    engine.repository.save_alert(a)        # the collector stores muted alerts like any other
    engine.bus.publish(a)
    dock = window.alert_dock.model
    assert dock.rowCount() == 1 and tr("alert.muted") in dock.index(0, 3).data()
    assert dock.index(0, 1).data(Qt.ItemDataRole.ForegroundRole) == MUTED_GREY
    assert dock.index(0, 1).data(Qt.ItemDataRole.BackgroundRole) is None
    assert window.notifier.shown == 0 and window.notifier.beeps == 0 and not window.banner.isVisible()
    assert [s.alert.alert_id for s in engine.repository.alerts_on(a.trigger_time.date())] == [a.alert_id]
    engine.bus.publish(alert("373220", 2))    # not muted: banner and sound as always
    assert window.notifier.shown == 1 and window.banner.isVisible()


def test_rules_dialog_from_a_row_sets_an_override_a_level_and_a_mute(qloop, window, engine):
    dialog = open_alert_settings(window, "000660")
    assert dialog.isVisible() and not dialog.read_only
    row = dialog._row_of(dialog.overrides, 1, "000660")
    dialog.overrides.item(row, 2).setText("1")
    dialog.overrides.item(row, 3).setText("30")
    level = dialog._row_of(dialog.levels, 0, "000660")
    dialog.levels.item(level, 1).setText("220,000")
    dialog.levels.item(level, 3).setCheckState(Qt.CheckState.Checked)
    dialog.accept()
    run(qloop, window.idle())
    rules = engine.alert_rules
    assert ("set_alert_rules", rules) in engine.calls
    assert rules.symbols == {"000660": (1.0, 30.0)} and rules.levels == {"000660": (220_000, None)}
    assert rules.muted_codes == {"000660"} and rules.is_muted("000660")
    # a bad cell: one clear line, nothing applied
    dialog = open_alert_settings(window, "005930")
    dialog.overrides.item(dialog._row_of(dialog.overrides, 1, "005930"), 2).setText("abc")
    calls = len(engine.calls)
    assert not dialog.apply() and "abc" in dialog.message.text() and len(engine.calls) == calls
    dialog.reject()
    # 알림 → mute all for 30 minutes, then unmute
    window.desk.mute_action.trigger()
    run(qloop, window.idle())
    assert engine.alert_rules.is_muted("005930")
    window.desk.unmute_action.trigger()
    run(qloop, window.idle())
    assert not engine.alert_rules.is_muted("005930") and engine.alert_rules.is_muted("000660")


def test_settings_threshold_and_window_apply_at_once(qloop, window, engine):
    """Accepting Settings hands the new rule to the running engine at once (the engine side,
    Collector.apply → alert rules with overrides kept, is tested in test_settings_live)."""
    previous = window.settings
    settings = UserSettings(alert_threshold_pct=0.5, alert_window_seconds=30.0)
    window._settings_accepted(previous, settings)
    run(qloop, window.idle())
    applied = [args for name, args in engine.calls if name == "apply_settings"]
    assert applied and applied[-1][0].alert_threshold_pct == 0.5
    assert applied[-1][0].alert_window_seconds == 30.0


def test_row_menu_mutes_a_symbol_for_30_minutes_and_the_dialog_keeps_its_end(qloop, window, engine):
    import time

    code = "000660"
    window.select_code(code)
    run(qloop, window.idle())
    mute = window.desk.mute_menu(window.wl_actions.selected_codes())
    texts = [a.text() for a in mute.actions() if a.text()]
    assert texts == ["30분", "1시간", "해제할 때까지", "음소거 해제"] and mute.isEnabled()
    assert not mute.actions()[-1].isEnabled()            # nothing to unmute yet
    before = time.time()
    mute.actions()[0].trigger()                           # 30 minutes
    run(qloop, window.idle())
    rules = engine.alert_rules
    assert ("set_alert_rules", rules) in engine.calls
    end = rules.muted_for[code]
    assert before + 1800 <= end <= time.time() + 1800 and rules.is_muted(code)
    assert not rules.is_muted(code, now=end + 1) and rules.muted_codes == frozenset()
    again = window.desk.mute_menu([code])
    assert again.title().startswith("알림 음소거 — ") and again.actions()[-1].isEnabled()
    # the rules dialog shows until when, and OK keeps that end (not "until unmuted")
    dialog = open_alert_settings(window)
    row = dialog._row_of(dialog.levels, 0, code)
    assert row is not None and dialog.levels.item(row, 3).checkState() == Qt.CheckState.Checked
    assert dialog.levels.item(row, 3).text().endswith("까지")
    dialog.accept()
    run(qloop, window.idle())
    assert engine.alert_rules.muted_for == {code: end} and engine.alert_rules.muted_codes == frozenset()
    window.desk.mute_menu([code]).actions()[-1].trigger()    # 음소거 해제
    run(qloop, window.idle())
    assert not engine.alert_rules.is_muted(code)
