"""UI strings of the trader's-desk features (sound, test alert, alert history, theme).

Kept apart from :mod:`kis_desk.ui.i18n` so these features merge without touching its table;
``i18n`` folds this dict into ``STRINGS`` (same ``(english, korean)`` form).
"""

from __future__ import annotations

DESK_STRINGS: dict[str, tuple[str, str]] = {
    # settings
    "settings.volume": ("Volume", "소리 크기"),
    "settings.volume_value": ("{volume} %", "{volume} %"),
    "settings.theme": ("Theme", "테마"),
    "theme.system": ("Follow the system", "시스템 설정 따름"),
    "theme.light": ("Light", "밝게"),
    "theme.dark": ("Dark", "어둡게"),
    "menu.alerts": ("&Alerts", "알림(&A)"),
    # test alert
    "action.test_alert": ("&Test alert", "테스트 알림(&T)"),
    "test_alert.prefix": ("[TEST] ", "[테스트] "),
    "test_alert.title": ("Test alert", "테스트 알림"),
    "test_alert.banner": ("Banner: shown", "배너: 표시됨"),
    "test_alert.tray_yes": ("Tray: message sent", "트레이: 알림 보냄"),
    "test_alert.tray_no": ("Tray: no system tray on this desktop", "트레이: 이 데스크톱에는 시스템 트레이가 없음"),
    "test_alert.sound": ("Sound: {backend}", "소리: {backend}"),
    "test_alert.sound_off": ("Sound: off in Settings", "소리: 설정에서 꺼짐"),
    "test_alert.redis_off": ("Redis: not configured", "Redis: 설정 안 됨"),
    "test_alert.redis_ok": ("Redis: test message on “{channel}” ({receivers} subscriber(s))",
                            "Redis: “{channel}” 채널에 테스트 메시지 전송 (구독자 {receivers})"),
    "test_alert.redis_failed": ("Redis: failed — {error}", "Redis: 실패 — {error}"),
    "test_alert.redis_sending": ("Redis: sending…", "Redis: 전송 중…"),
    # alert history
    "action.alert_history": ("Alert &history…", "알림 내역(&H)…"),
    "history.title": ("Alert history", "알림 내역"),
    "history.from": ("From", "시작일"),
    "history.to": ("To", "종료일"),
    "history.symbol": ("Symbol", "종목"),
    "history.symbol_placeholder": ("code or name, empty = all", "종목코드 또는 종목명, 비우면 전체"),
    "history.direction": ("Move", "방향"),
    "history.direction.all": ("All", "전체"),
    "history.watchlist": ("Watchlist", "관심종목"),
    "history.watchlist.all": ("All symbols", "전체 종목"),
    "history.search": ("Search", "조회"),
    "history.export": ("Export CSV…", "CSV 내보내기…"),
    "history.ack": ("Acknowledge selected", "확인"),
    "history.count": ("{count} alert(s), {pending} not acknowledged",
                      "알림 {count}건, 미확인 {pending}건"),
    "history.acked": ("Acknowledged {count} alert(s).", "{count}건 확인 처리했습니다."),
    "history.exported": ("Exported {count} alert(s) to {path}.", "{count}건을 {path}에 저장했습니다."),
    "history.bad_range": ("The start date is after the end date.", "시작일이 종료일보다 늦습니다."),
    "history.unknown_symbol": ("“{text}” is not a known code or name.", "“{text}”은(는) 알 수 없는 종목입니다."),
    "history.col.date": ("Date", "일자"),
    "history.col.time": ("Time", "시각"),
    "history.col.code": ("Code", "종목코드"),
    "history.col.name": ("Name", "종목명"),
    "history.col.direction": ("Move", "방향"),
    "history.col.change": ("Change %", "변동률(%)"),
    "history.col.base": ("Base price", "기준가"),
    "history.col.price": ("Price", "발생가"),
    "history.col.window": ("Window (s)", "감시구간(초)"),
    "history.col.acked": ("Acknowledged", "확인"),
    "history.col.acked_at": ("Acknowledged at", "확인시각"),
    "history.yes": ("yes", "예"),
    "history.no": ("no", "아니오"),
}
