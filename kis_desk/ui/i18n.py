"""Korean and English UI strings.

Every visible string goes through :func:`tr`, so switching the language is one table lookup and a
missing translation is caught by a test (every key has both languages). Keys are English
identifiers; values are ``(english, korean)``. Placeholders use ``str.format`` names.
"""

from __future__ import annotations

LANGUAGES = ("ko", "en")
_lang = "ko"

STRINGS: dict[str, tuple[str, str]] = {
    # window and menus
    "app.title": ("KIS Desk — market monitor", "KIS Desk — 시세 모니터"),
    "menu.file": ("&File", "파일(&F)"),
    "menu.view": ("&View", "보기(&V)"),
    "menu.help": ("&Help", "도움말(&H)"),
    "action.settings": ("&Settings…", "설정(&S)…"),
    "action.quit": ("&Quit", "종료(&Q)"),
    "action.about": ("&About", "정보(&A)"),
    "about.text": ("KIS Desk {version}\nA desktop market monitor for the KIS Open API.",
                   "KIS Desk {version}\n한국투자증권 Open API 시세 모니터입니다."),
    "dock.alerts": ("Alerts", "알림"),
    "dock.watchlist": ("Watchlist", "관심종목"),
    "dock.chart": ("Chart", "차트"),
    # grid columns
    "col.code": ("Code", "종목코드"),
    "col.name": ("Name", "종목명"),
    "col.price": ("Price", "현재가"),
    "col.change": ("Change", "대비"),
    "col.change_pct": ("Chg %", "등락률"),
    "col.change_1m": ("1m %", "1분 등락"),
    "col.volume": ("Volume", "누적거래량"),
    "col.strength": ("Strength", "체결강도"),
    "col.time": ("Time", "체결시각"),
    "col.spark": ("Intraday", "당일추이"),
    "col.feed": ("Feed", "수신"),
    "grid.natural_order": ("Watchlist order (unsorted)", "관심종목 순서 (정렬 해제)"),
    "feed.live": ("live", "실시간"),
    "feed.polled": ("polled", "조회"),
    "feed.stale": ("stale", "지연"),
    "feed.waiting": ("waiting", "대기"),
    "feed.live.tip": ("Real-time over session {session}", "{session} 세션 실시간 수신"),
    "feed.polled.tip": ("Not enough app keys for real time: refreshed by REST polling",
                        "앱키가 부족해 REST 조회로 갱신합니다"),
    "feed.stale.tip": ("Session {session} is {state}: prices may be old",
                       "{session} 세션 상태 {state}: 시세가 지연될 수 있습니다"),
    "limit.up": ("limit up", "상한가"),
    "limit.down": ("limit down", "하한가"),
    # alerts
    "alert.col.time": ("Time", "시각"),
    "alert.col.code": ("Code", "종목코드"),
    "alert.col.name": ("Name", "종목명"),
    "alert.col.direction": ("Move", "방향"),
    "alert.col.change": ("Change %", "변동률"),
    "alert.col.price": ("Price", "가격"),
    "alert.up": ("▲ surge", "▲ 급등"),
    "alert.down": ("▼ plunge", "▼ 급락"),
    "alert.ack": ("Acknowledge", "확인"),
    "alert.ack_all": ("Acknowledge all", "모두 확인"),
    "alert.acked": ("acknowledged", "확인됨"),
    "alert.toast": ("{name} ({code}) {direction} {change:+.2f}% in {window:.0f}s → {price}",
                    "{name} ({code}) {window:.0f}초 {direction} {change:+.2f}% → {price}"),
    "alert.tray_title": ("KIS Desk alert", "KIS Desk 알림"),
    "alert.late": ("late alert · {delay:.0f} s late", "지연 알림 · {delay:.0f}초 늦음"),
    "alert.vi.static_vi": ("static VI triggered", "정적 VI 발동"),     # AlertEvent.vi
    "alert.vi.dynamic_vi": ("dynamic VI triggered", "동적 VI 발동"),
    "alert.vi_mark": ("VI", "VI"),                                # the same, in the dock's narrow cell
    "toast.close": ("Close", "닫기"),
    # status bar
    "status.session": ("{session}: {state}", "{session}: {state}"),
    "status.plan": ("{live} live / {polled} polled", "실시간 {live} / 조회 {polled}"),
    "status.plan.tip": ("{needed} app key(s) needed for all symbols live, {configured} configured",
                        "모든 종목 실시간 수신에 앱키 {needed}개 필요, {configured}개 설정됨"),
    "status.rate": ("{rate:,.0f} ticks/s", "{rate:,.0f} 체결/초"),
    "status.storage": ("DB {state} · backlog {backlog:,}", "DB {state} · 대기 {backlog:,}"),
    "status.storage.tip": ("{database}\nstored {stored:,}, duplicates {duplicates:,}, "
                           "journaled {journaled:,}, failed {failed:,}{error}",
                           "{database}\n저장 {stored:,}, 중복 {duplicates:,}, "
                           "임시저장 {journaled:,}, 실패 {failed:,}{error}"),
    "status.ok": ("ok", "정상"),
    "status.down": ("down", "장애"),
    "status.redis": ("Redis {state} · sent {delivered:,}", "Redis {state} · 전송 {delivered:,}"),
    "status.redis.tip": ("{target}\npending {pending:,}, dropped {dropped:,}{error}",
                         "{target}\n대기 {pending:,}, 버림 {dropped:,}{error}"),
    "status.redis.off": ("Redis off", "Redis 사용 안 함"),
    "status.phase": ("Market: {phase}", "장 상태: {phase}"),
    "status.phase.closed": ("Market closed · opens {when}", "장 마감 · 다음 개장 {when}"),
    "status.phase.holiday": ("Market holiday · opens {when}", "휴장일 · 다음 개장 {when}"),
    "status.phase.sim": ("Simulator: always open", "시뮬레이터: 항상 개장"),
    "status.when": ("{weekday} {date} {time} KST", "{date}({weekday}) {time}"),
    "weekday.0": ("Mon", "월"),
    "weekday.1": ("Tue", "화"),
    "weekday.2": ("Wed", "수"),
    "weekday.3": ("Thu", "목"),
    "weekday.4": ("Fri", "금"),
    "weekday.5": ("Sat", "토"),
    "weekday.6": ("Sun", "일"),
    "status.error": ("⚠ {source}: {message}", "⚠ {source}: {message}"),
    "status.no_error": ("", ""),
    "state.connecting": ("connecting", "연결 중"),
    "state.live": ("live", "실시간"),
    "state.backoff": ("reconnecting", "재연결 대기"),
    "state.stalled": ("stalled", "수신 정지"),
    "state.stopped": ("stopped", "중지"),
    "state.failed": ("failed", "실패"),
    "phase.pre_market": ("NXT pre-market", "NXT 프리마켓"),
    "phase.pre_open": ("pre-open", "장 시작 전"),
    "phase.open": ("open", "정규장"),
    "phase.continuous": ("open", "정규장"),
    "phase.closing_auction": ("closing auction", "장 마감 동시호가"),
    "phase.after_hours": ("after hours", "시간외"),
    "phase.after_market": ("NXT after-market", "NXT 애프터마켓"),
    "phase.closed": ("closed", "장 마감"),
    "phase.holiday": ("holiday", "휴장"),
    # watchlist editor
    "wl.add_placeholder": ("Add code or name (e.g. 005930, 삼성전자, Samsung)",
                           "종목코드 또는 종목명 입력 (예: 005930, 삼성전자)"),
    "wl.add": ("Add", "추가"),
    "wl.remove": ("Remove", "삭제"),
    "wl.up": ("Up", "위로"),
    "wl.down": ("Down", "아래로"),
    "wl.new": ("New…", "새로 만들기…"),
    "wl.rename": ("Rename…", "이름 변경…"),
    "wl.delete": ("Delete", "목록 삭제"),
    "wl.import": ("Import CSV…", "CSV 가져오기…"),
    "wl.export": ("Export CSV…", "CSV 내보내기…"),
    "wl.name_prompt": ("Watchlist name:", "관심종목 이름:"),
    "wl.new_title": ("New watchlist", "새 관심종목"),
    "wl.rename_title": ("Rename watchlist", "관심종목 이름 변경"),
    "wl.delete_confirm": ("Delete watchlist “{name}”?", "관심종목 “{name}”을(를) 삭제할까요?"),
    "wl.name_taken": ("A watchlist named “{name}” already exists.", "“{name}” 관심종목이 이미 있습니다."),
    "wl.name_empty": ("The name is empty.", "이름이 비어 있습니다."),
    "wl.last_list": ("The last watchlist cannot be deleted.", "마지막 관심종목은 삭제할 수 없습니다."),
    "wl.invalid": ("“{text}” is not a stock code or a known name. Codes are 6 digits "
                   "(ETN: Q + 6 digits).",
                   "“{text}”은(는) 종목코드나 알려진 종목명이 아닙니다. 종목코드는 숫자 6자리"
                   "(ETN은 Q + 6자리)입니다."),
    "wl.unknown": ("{code} is not in the bundled symbol list; added anyway — check that the code "
                   "is right (prices appear only if KIS knows it).",
                   "{code}은(는) 내장 종목 목록에 없습니다. 일단 추가했으니 코드가 맞는지 확인하세요 "
                   "(KIS에 있는 종목만 시세가 표시됩니다)."),
    "wl.duplicate": ("{code} is already in the watchlist.", "{code}은(는) 이미 관심종목에 있습니다."),
    "wl.added": ("Added {code} {name}.", "{code} {name} 추가됨."),
    "wl.imported": ("Imported {count} symbol(s).", "{count}개 종목을 가져왔습니다."),
    "wl.import_bad": ("Skipped {count} line(s): {lines}", "{count}줄 건너뜀: {lines}"),
    "wl.exported": ("Exported {count} symbol(s) to {path}.", "{count}개 종목을 {path}에 저장했습니다."),
    "wl.csv_filter": ("CSV files (*.csv);;All files (*)", "CSV 파일 (*.csv);;모든 파일 (*)"),
    "wl.count": ("{count} symbols", "{count}개 종목"),
    "wl.error_title": ("Watchlist", "관심종목"),
    "wl.polled_note": ("{count} symbol(s) polled (not enough app keys for real time)",
                       "{count}개 종목은 조회 방식 (실시간 앱키 부족)"),
    # settings
    "settings.title": ("Settings", "설정"),
    "settings.environment": ("Environment", "접속 환경"),
    "env.sim": ("Simulator (built in)", "시뮬레이터 (내장)"),
    "env.mock": ("KIS paper trading (mock)", "한국투자 모의투자"),
    "env.real": ("KIS real account", "한국투자 실전투자"),
    "settings.venue": ("Trades of", "체결 시장"),
    "venue.krx": ("KRX", "KRX"),
    "venue.nxt": ("Nextrade (NXT)", "넥스트레이드(NXT)"),
    "venue.total": ("Integrated (KRX+NXT)", "통합(KRX+NXT)"),
    "settings.venue_note": ("KIS paper trading offers KRX trades only: another choice falls back "
                            "to KRX there, with a notice.",
                            "모의투자는 KRX 체결만 제공합니다: 다른 선택은 안내와 함께 KRX로 전환됩니다."),
    "settings.keys": ("App keys", "앱키"),
    "settings.app_key": ("App key {n}", "앱키 {n}"),
    "settings.app_secret": ("App secret {n}", "앱 시크릿 {n}"),
    "settings.keys_note": ("Each key pair carries up to 41 real-time symbols.",
                           "앱키 하나당 실시간 종목 41개까지 수신합니다."),
    "settings.keyring_ok": ("Secrets are stored in the system keyring ({backend}).",
                            "비밀 정보는 시스템 키링({backend})에 저장됩니다."),
    "settings.keyring_missing": ("No system keyring is available: app secrets and passwords are "
                                 "kept for this session only and must be entered again next time. "
                                 "They are never written to disk.",
                                 "시스템 키링을 사용할 수 없습니다. 앱 시크릿과 비밀번호는 이번 실행 "
                                 "동안만 보관되며 다음 실행 때 다시 입력해야 합니다. 디스크에는 "
                                 "절대 저장하지 않습니다."),
    "settings.storage": ("Storage and Redis", "저장소 및 Redis"),
    "settings.db_url": ("Database URL", "데이터베이스 URL"),
    "settings.db_placeholder": ("empty = SQLite in the user data folder",
                                "비워두면 사용자 데이터 폴더의 SQLite"),
    "settings.redis_url": ("Redis URL", "Redis URL"),
    "settings.redis_placeholder": ("empty = no Redis", "비워두면 Redis 사용 안 함"),
    "settings.redis_channel": ("Redis channel", "Redis 채널"),
    "settings.alerts": ("Alerts", "알림"),
    "settings.threshold": ("Threshold (%)", "기준 변동률 (%)"),
    "settings.window": ("Window (seconds)", "감시 구간 (초)"),
    "settings.sound": ("Sound on alert", "알림 소리"),
    "settings.appearance": ("Appearance", "화면"),
    "settings.colours": ("Colours", "색상"),
    "colours.korean": ("Korean (up red, down blue)", "한국식 (상승 빨강, 하락 파랑)"),
    "colours.western": ("Western (up green, down red)", "서양식 (상승 초록, 하락 빨강)"),
    "settings.language": ("Language", "언어"),
    "lang.ko": ("한국어", "한국어"),
    "lang.en": ("English", "English"),
    "settings.live_note": ("Changes apply at once to the running collector.",
                           "변경 사항은 실행 중인 수집기에 바로 적용됩니다."),
    "settings.remote_note": ("Attached to a remote collector: the alert rule, environment and keys "
                             "are the remote collector's; database and Redis apply here at once.",
                             "원격 수집기에 연결됨: 알림 기준·환경·앱키는 원격 수집기의 설정을 따르며, "
                             "데이터베이스와 Redis는 바로 적용됩니다."),
    "settings.tray": ("Keep collecting in the tray when the window is closed",
                      "창을 닫아도 트레이에서 계속 수집"),
    "settings.applied": ("Settings applied: {what}", "설정 적용됨: {what}"),
    "settings.apply_failed": ("Settings not applied: {message}", "설정을 적용하지 못했습니다: {message}"),
    "tray.still_running": ("KIS Desk keeps collecting in the tray. Quit from the tray menu or File ▸ Quit.",
                           "KIS Desk는 트레이에서 계속 수집합니다. 트레이 메뉴나 파일 ▸ 종료로 끝낼 수 있습니다."),
    "tray.show": ("Show window", "창 보이기"),
    "day.rolled": ("New business day {day}: day values and alerts reset",
                   "새 영업일 {day}: 당일 시세와 알림을 초기화했습니다"),
    "settings.bad_url": ("{what}: “{url}” is not a valid URL.", "{what}: “{url}”은(는) 올바른 URL이 아닙니다."),
    "settings.key_pair_incomplete": ("App key {n}: enter both the key and the secret.",
                                     "앱키 {n}: 키와 시크릿을 모두 입력하세요."),
    "settings.secret_unchanged": ("(stored — leave empty to keep)", "(저장됨 — 비워두면 유지)"),
    # errors and start-up
    "error.title": ("KIS Desk", "KIS Desk"),
    "error.start": ("The market data engine could not start:\n{message}",
                    "시세 엔진을 시작할 수 없습니다:\n{message}"),
    "error.keyring_session": ("No system keyring: secrets are kept for this session only.",
                              "시스템 키링 없음: 비밀 정보는 이번 실행 동안만 보관됩니다."),
    "chart.price": ("Price", "가격"),
    "chart.volume": ("Volume", "거래량"),
    "chart.empty": ("Select a symbol to see its chart", "종목을 선택하면 차트가 표시됩니다"),
    "chart.title": ("{code} {name}", "{code} {name}"),
}

# trader's-desk features (sound, test alert, alert history, theme): their own table
from .i18n_desk import DESK_STRINGS  # noqa: E402

STRINGS.update(DESK_STRINGS)
from .i18n_alerts import ALERT_STRINGS  # noqa: E402

STRINGS.update(ALERT_STRINGS)

# engine messages and the grid's desk features
from .i18n_grid import GRID_STRINGS  # noqa: E402

STRINGS.update(GRID_STRINGS)


def set_language(lang: str) -> None:
    """Switch the table; widgets re-read their texts in ``retranslate`` handlers."""
    global _lang
    _lang = lang if lang in LANGUAGES else "ko"


def language() -> str:
    return _lang


def tr(key: str, **kwargs: object) -> str:
    """The string for ``key`` in the current language; an unknown key shows itself (visible bug)."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if _lang == "ko" else pair[0]
    return text.format(**kwargs) if kwargs else text


def error_text(event: object) -> str:
    """What the UI says for an engine ``ErrorEvent``: a short text in the UI's language.

    By ``event.code`` (values from ``event.params``); without a mapping, a per-source text
    (``message`` stays English: it is for the log and the tooltip). Never raises: a text with a
    missing parameter falls back to the source's text.
    """
    code = getattr(event, "code", "") or ""
    params = dict(getattr(event, "params", None) or {})
    source = str(getattr(event, "source", ""))
    more = params.pop("more", 0)
    fatal = bool(getattr(event, "fatal", False))
    text = ""
    if code and f"err.{code}" in STRINGS:
        try:
            text = tr(f"err.{code}", **params)
        except (KeyError, ValueError, IndexError):
            text = ""
    if not text:
        key = f"err.source.{source}"
        if fatal and f"{key}.fatal" in STRINGS:
            text = tr(f"{key}.fatal")
            fatal = False                   # already says it stopped
        elif key in STRINGS:                # the kind in the UI's words, the details as sent
            message = str(getattr(event, "message", ""))
            text = tr(key) + (f" — {message}" if message else "")
        else:                               # an app key's own words (its REST/WebSocket reply)
            text = str(getattr(event, "message", ""))
    if more:
        text += tr("err.more", more=more)
    if fatal:
        text = tr("err.fatal", text=text)
    return text
