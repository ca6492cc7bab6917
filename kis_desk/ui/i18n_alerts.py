"""UI strings of the alert rules (overrides, price levels, mutes), grouped alerts and the chart.

Kept apart from :mod:`kis_desk.ui.i18n` so these features merge without touching its table.
"""

from __future__ import annotations

ALERT_STRINGS: dict[str, tuple[str, str]] = {
    "alert.count": ("×{count}", "×{count}"),
    "alert.muted": ("muted", "음소거"),
    "alert.level_up": ("▲ target", "▲ 목표가"),
    "alert.level_down": ("▼ target", "▼ 목표가"),
    "action.alert_rules": ("Alert &rules…", "알림 규칙(&R)…"),
    "action.mute_30": ("&Mute all for 30 minutes", "30분간 모든 알림 음소거(&M)"),
    "action.unmute": ("&Unmute", "음소거 해제(&U)"),
    "rules.title": ("Alert rules", "알림 규칙"),
    "rules.defaults": ("Default: {threshold:.2f} % within {window:.0f} s",
                       "기본값: {window:.0f}초 안에 {threshold:.2f} %"),
    "rules.overrides": ("Thresholds per symbol / watchlist", "종목·관심종목별 기준"),
    "rules.levels": ("Price levels (target, once)", "목표가 (한 번 알림)"),
    "rules.col.target": ("Symbol or watchlist", "종목 또는 관심종목"),
    "rules.col.threshold": ("Threshold %", "기준 %"),
    "rules.col.window": ("Window s", "기간(초)"),
    "rules.col.code": ("Symbol", "종목"),
    "rules.col.above": ("At or above", "이상"),
    "rules.col.below": ("At or below", "이하"),
    "rules.col.mute": ("Muted", "음소거"),
    "rules.add": ("Add", "추가"),
    "rules.remove": ("Remove", "삭제"),
    "rules.mute_all": ("Mute all for", "모든 알림 음소거"),
    "rules.minutes": (" min", " 분"),
    "rules.muted_until": ("All alerts muted until {time}", "{time}까지 모든 알림 음소거"),
    "rules.not_muted": ("Alerts are not muted", "음소거 중이 아님"),
    "rules.remote": ("These rules are set on the collector's host (attached desktop: read only).",
                     "알림 규칙은 수집기 호스트에서 설정합니다 (연결된 데스크톱: 읽기 전용)."),
    "rules.bad": ("Not applied: {error}", "적용하지 못함: {error}"),
    "rules.applied": ("Applied", "적용됨"),
    "rules.apply": ("Apply", "적용"),
    "dialog.ok": ("OK", "확인"),
    "dialog.cancel": ("Cancel", "취소"),
    "chart.mode.candle1": ("1-min candles", "1분봉"),
    "chart.mode.candle5": ("5-min candles", "5분봉"),
    "chart.mode.tick": ("Tick line", "틱 차트"),
    "chart.prev_close": ("Prev. close {price}", "전일종가 {price}"),
    "chart.vi": ("VI", "VI"),
}
