"""Default symbols of the simulator: large KOSPI names with plausible previous closes.

The bundled directory (``resources/symbols.csv``, ``kis_desk.market.symbols``) is the first
source of names and reference prices; the small table below is the fallback (and the default
symbol list: the order sets which symbols are busiest). Codes neither knows get a
deterministic price derived from the code. Which codes are listed (and on Nextrade) comes from
the same directory.
"""

from __future__ import annotations

import functools
import math
import zlib
from typing import Any

from ..market.ticks import round_to_tick

#: code -> (name, previous close)
DEFAULT_SYMBOLS: dict[str, tuple[str, int]] = {
    "005930": ("삼성전자", 70_000),
    "000660": ("SK하이닉스", 200_000),
    "373220": ("LG에너지솔루션", 350_000),
    "207940": ("삼성바이오로직스", 1_000_000),
    "005380": ("현대차", 210_000),
    "000270": ("기아", 95_000),
    "068270": ("셀트리온", 180_000),
    "005490": ("POSCO홀딩스", 300_000),
    "035420": ("NAVER", 200_000),
    "051910": ("LG화학", 300_000),
    "006400": ("삼성SDI", 250_000),
    "105560": ("KB금융", 80_000),
    "055550": ("신한지주", 50_000),
    "012330": ("현대모비스", 240_000),
    "028260": ("삼성물산", 140_000),
    "035720": ("카카오", 40_000),
    "066570": ("LG전자", 80_000),
    "003670": ("포스코퓨처엠", 200_000),
    "096770": ("SK이노베이션", 110_000),
    "032830": ("삼성생명", 90_000),
    "086790": ("하나금융지주", 60_000),
    "015760": ("한국전력", 22_000),
    "034730": ("SK", 150_000),
    "017670": ("SK텔레콤", 55_000),
    "018260": ("삼성에스디에스", 140_000),
    "009150": ("삼성전기", 130_000),
    "033780": ("KT&G", 100_000),
    "316140": ("우리금융지주", 16_000),
    "010130": ("고려아연", 800_000),
    "011200": ("HMM", 20_000),
    "003550": ("LG", 75_000),
    "030200": ("KT", 45_000),
    "329180": ("HD현대중공업", 280_000),
    "012450": ("한화에어로스페이스", 600_000),
    "042660": ("한화오션", 70_000),
    "009540": ("HD한국조선해양", 220_000),
    "024110": ("기업은행", 15_000),
    "259960": ("크래프톤", 350_000),
    "010950": ("S-Oil", 60_000),
    "090430": ("아모레퍼시픽", 130_000),
    "011170": ("롯데케미칼", 70_000),
    "034020": ("두산에너빌리티", 60_000),
    "047050": ("포스코인터내셔널", 50_000),
    "000810": ("삼성화재", 380_000),
    "267260": ("HD현대일렉트릭", 350_000),
    "323410": ("카카오뱅크", 22_000),
    "352820": ("하이브", 250_000),
    "036570": ("엔씨소프트", 200_000),
    "251270": ("넷마블", 50_000),
    "000100": ("유한양행", 120_000),
    "005935": ("삼성전자우", 58_000),
}

DEFAULT_CODES: tuple[str, ...] = tuple(DEFAULT_SYMBOLS)


@functools.cache
def _directory() -> Any:
    """The bundled symbol directory (``kis_desk.market.symbols``), or None if unavailable."""
    try:
        from ..market.symbols import default_directory
        return default_directory()
    except Exception:   # missing module or resource: the built-in table still works
        return None


@functools.cache
def _directory_info(code: str) -> Any:
    directory = _directory()
    return directory.get(code) if directory is not None else None


def _bundled(code: str) -> tuple[str, int] | None:
    """(name, reference price) from the bundled directory; price 0 when it has none."""
    info = _directory_info(code)
    if info is None:
        return None
    return info.name_ko or info.name_en or f"SIM {code}", int(info.ref_price or 0)


def code_unit(code: str, salt: str = "") -> float:
    """A deterministic number in [0, 1) derived from the code."""
    return zlib.crc32(f"{salt}{code}".encode()) / 2**32


def reference_for(code: str) -> tuple[str, int]:
    """(name, previous close) for any code.

    Order: the bundled directory (``resources/symbols.csv`` via ``kis_desk.market.symbols``),
    then the built-in table, then a plausible price seeded by the code (log-uniform 1,000 to
    500,000 won). Prices are snapped to the KRX tick grid.
    """
    bundled = _bundled(code)
    known = DEFAULT_SYMBOLS.get(code)
    if bundled is not None and bundled[1] > 0:
        return bundled[0], round_to_tick(bundled[1])
    if known is not None:
        return (bundled[0] if bundled else known[0]), known[1]
    u = code_unit(code, "price")
    price = round_to_tick(math.exp(math.log(1_000) + u * math.log(500)))
    return (bundled[0] if bundled else f"SIM {code}"), price


def is_listed(code: str) -> bool:
    """The symbol directory in use (``default_directory().knows``) or the built-in table knows ``code``."""
    directory = _directory()
    return code in DEFAULT_SYMBOLS or (directory is not None and directory.knows(code))


def nxt_eligible(code: str) -> bool:
    """Traded on Nextrade: the directory's NXT flag when known, else the built-in large caps."""
    info = _directory_info(code)
    flag = getattr(info, "nxt", None)
    if flag is not None:
        return bool(flag)
    return code in DEFAULT_SYMBOLS


__all__ = ["DEFAULT_CODES", "DEFAULT_SYMBOLS", "code_unit", "is_listed", "nxt_eligible",
           "reference_for"]
