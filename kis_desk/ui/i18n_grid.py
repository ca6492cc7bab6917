"""UI strings of the watchlist grid's desk features and the engine messages a trader reads.

Engine conditions arrive as ``ErrorEvent(source, message, code=…, params=…)``. ``message`` is
English for logs; here each ``code`` has a short text in both languages that says what happened
and what to do. Conditions without a code fall back to a per-source text, the engine's English
message staying in the tooltip and the log. Folded into ``i18n.STRINGS`` like ``i18n_desk``.
"""

from __future__ import annotations

GRID_STRINGS: dict[str, tuple[str, str]] = {
    # grid columns (grid_columns.COLUMNS)
    "col.value": ("Value (M)", "거래대금(백만)"),
    "col.value.tip": ("Traded value today, million won (approximate after a restart)",
                      "당일 거래대금, 백만원 (재시작 후에는 근사값)"),
    "col.open": ("Open", "시가"),
    "col.high": ("High", "고가"),
    "col.low": ("Low", "저가"),
    "col.badge": ("Flags", "구분"),
    "col.badge.total": ("INT", "통합"),
    "col.badge.vi": ("VI", "VI"),
    "col.badge.vi_at": ("VI {time}", "VI {time}"),          # ui/market_badges
    "col.badge.vi.tip": ("Volatility interruption: single-price auction", "변동성완화장치(VI) 발동: 단일가 매매"),
    "col.badge.vi.static": ("Static VI: single-price auction", "정적 VI 발동: 단일가 매매"),
    "col.badge.vi.dynamic": ("Dynamic VI: single-price auction", "동적 VI 발동: 단일가 매매"),
    "col.badge.vi.reference": ("standard price {price}", "기준가 {price}"),
    "col.badge.since": ("since {time}", "{time}부터"),
    "col.badge.halt": ("HALT", "정지"),
    "col.badge.halt.tip": ("Trading halted", "거래정지"),
    "col.badge.halt.since": ("Trading halted since {time}", "거래정지 · {time}부터"),
    "col.badge.venue_tip": ("Venue: {venue}", "시장: {venue}"),
    "flag.admin": ("ADM", "관리"),
    "flag.admin.tip": ("Administrative issue (관리종목)", "관리종목"),
    "flag.caution": ("CAU", "주의"),
    "flag.caution.tip": ("Investment caution", "투자주의"),
    "flag.warning": ("WARN", "경고"),
    "flag.warning.tip": ("Investment warning", "투자경고"),
    "flag.danger": ("RISK", "위험"),
    "flag.danger.tip": ("Investment danger", "투자위험"),
    "flag.halted": ("HALT", "정지"),
    "flag.halted.tip": ("Trading halted (master file)", "거래정지 (종목 마스터)"),
    # 관심종목 menu, shortcuts and the grid's row menu (ui/watchlist_actions.py)
    "menu.watchlist": ("&Watchlist", "관심종목(&W)"),
    "wla.open": ("Edit watchlist…", "관심종목 편집…"),
    "wla.add": ("Add symbol…", "종목 추가…"),
    "wla.delete": ("Remove from watchlist", "관심종목에서 삭제"),
    "wla.undo": ("Undo watchlist edit", "관심종목 편집 취소"),
    "wla.chart": ("Open chart", "차트 보기"),
    "wla.alert": ("Set alert…", "알림 설정…"),
    "wla.deleted": ("Removed {codes} (Ctrl+Z undoes)", "{codes} 삭제됨 (Ctrl+Z로 되돌리기)"),
    "wl.undone": ("Undone: the list has {count} symbol(s) again", "되돌림: 관심종목 {count}개"),
    # engine conditions by ErrorEvent.code
    "err.backfill.stop_cut": ("Closed during catch-up: {count} symbol(s) finish on the next start",
                              "종료 시 {count}종목 보충 미완료: 다음 실행 때 이어서 채웁니다"),
    "err.backfill.past_day": ("{count} gap(s) from an earlier day cannot be filled (KIS serves today only)",
                              "지난 거래일 누락 {count}건은 복구 불가 (KIS는 당일 체결만 제공)"),
    "err.backfill.failed": ("Catch-up of {symbol} failed; retrying in {seconds} s",
                            "{symbol} 체결 보충 실패: {seconds}초 후 재시도"),
    "err.backfill.unrecovered": ("{symbol}: {volume:,} shares of trades missing (too many in one second)",
                                 "{symbol}: 체결 {volume:,}주 누락 (1초 내 체결 과다)"),
    "err.feed.dark": ("{count} symbol(s) without data for {seconds} s — check keys and connection",
                      "{count}종목 {seconds}초 이상 시세 없음 — 앱 키와 연결을 확인하세요"),
    "err.feed.refused": ("{symbol} refused by KIS: moved to another key or polling",
                         "{symbol} 실시간 등록 거부: 다른 키 또는 조회로 전환"),
    "err.feed.protocol": ("Garbled data from KIS (skipped)", "수신 데이터 오류 (건너뜀)"),
    "err.feed.venue_fallback": ("NXT/integrated trades are not offered by this server ({tr_id}): "
                                "KRX trades for this run",
                                "이 서버는 NXT·통합 체결을 제공하지 않습니다 ({tr_id}): 이번 실행은 "
                                "KRX 체결로 전환합니다"),
    "err.feed.key_down": ("Key down: its symbols moved to other keys or polling",
                          "연결 끊김: 종목을 다른 키 또는 조회로 전환"),
    "err.feed.key_slow": ("Key slow to connect: its symbols go to other keys or polling meanwhile",
                          "연결 지연: 그동안 종목을 다른 키 또는 조회로 수신"),
    "err.ui.key_back": ("✓ {source}: live again", "✓ {source}: 다시 연결됨"),
    "err.redis.down": ("Redis unreachable: {pending} alert(s) queued, sent when it returns",
                       "Redis 연결 안 됨: 알림 {pending}건 대기 중 (복구되면 전송)"),
    "err.redis.overflow": ("Redis queue full: {dropped} oldest alert(s) dropped",
                           "Redis 대기열 가득 참: 오래된 알림 {dropped}건 버림"),
    "err.more": (" (+{more} more)", " (외 {more}건)"),
    # fallbacks by ErrorEvent.source (the English detail stays in the tooltip)
    "err.source.storage": ("Storage problem (trades kept, retrying)", "저장 문제 (체결 보관, 재시도 중)"),
    "err.source.storage.fatal": ("Storage stopped — see the log", "저장 중단 — 로그를 확인하세요"),
    "err.source.redis": ("Redis problem", "Redis 문제"),
    "err.source.remote": ("Collector connection lost (retrying)", "수집기 연결 끊김 (재시도 중)"),
    "err.source.calendar": ("Market calendar problem", "장 운영 일정 문제"),
    "err.source.backfill": ("Catch-up problem", "체결 보충 문제"),
    "err.source.feed": ("Feed problem", "시세 수신 문제"),
    "err.fatal": ("Engine stopped: {text}", "엔진 중지: {text}"),
}
