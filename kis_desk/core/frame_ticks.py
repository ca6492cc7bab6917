"""Frame → Ticks in one step: the compiled kernel when it is built, else the Python path.

Why: on a busy stream the event loop spends more time turning frames into ``Tick`` values
(``decode_message`` → ``TradeRecord`` with 46 strings → ``ticks_from_records``) than receiving
them. ``kis_desk/core/_frame_ticks.pyx`` (Cython, built by ``pip install`` when a C compiler is
there) does it in one pass over the frame's bytes for the common case — a plain trade frame
whose records are all valid — and answers ``None`` for everything else.

``FRAME_TICKS`` is that kernel, or ``None`` when it is not built or ``KIS_DESK_PURE_PYTHON=1``
is set; callers then decode as before. :func:`frame_ticks_python` is the same contract in pure
Python (the reference the kernel is tested against). Pure functions, no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..protocol.codec import decode_message
from ..protocol.fields import (
    IDX_BUSINESS_DATE, IDX_CHANGE, IDX_CHANGE_RATE, IDX_CODE, IDX_CUM_VOLUME, IDX_PRICE,
    IDX_STRENGTH, IDX_TIME, IDX_VOLUME, TRADE_TR_IDS, H0STCNT0_WIDTH,
)
from ..protocol.messages import DataFrame
from ..protocol.records import KST_TIMESTAMP_CACHE, kst_timestamp
from ..protocol.states import IDX_HALT, IDX_HOUR_CLS, IDX_MKOP
from .compiled import pure_python_requested
from .ticks import SOURCE_WS, Tick, _state_of, ticks_from_records

log = logging.getLogger(__name__)

#: (raw frame, trade TR id, received_at, venue) → the frame's ticks, or None: decode it the long way.
FrameTicks = Callable[[bytes | str, str, float, str], "list[Tick] | None"]

_POSITIONS = (IDX_CODE, IDX_TIME, IDX_PRICE, IDX_CHANGE, IDX_CHANGE_RATE, IDX_VOLUME, IDX_CUM_VOLUME,
              IDX_STRENGTH, IDX_BUSINESS_DATE, IDX_MKOP, IDX_HALT, IDX_HOUR_CLS, H0STCNT0_WIDTH)


def frame_ticks_python(raw: bytes | str, tr_id: str, received_at: float, venue: str) -> list[Tick] | None:
    """The kernel's contract in Python: the ticks of a plain ``tr_id`` frame whose records are
    all valid, else None."""
    if tr_id not in TRADE_TR_IDS:
        return None
    msg = decode_message(raw)
    if msg.__class__ is not DataFrame or msg.encrypted or msg.errors or msg.tr_id != tr_id \
            or not msg.records:
        return None
    return ticks_from_records(msg.records, received_at, venue=venue)


def _load_compiled() -> FrameTicks | None:
    if pure_python_requested():
        return None
    try:
        from . import _frame_ticks  # type: ignore[attr-defined]
    except ImportError:
        return None
    if tuple(_frame_ticks.FIELD_POSITIONS) != _POSITIONS:   # built from an older field table
        log.warning("compiled frame decoder does not match the field table; using Python")
        return None
    _frame_ticks.configure(Tick, KST_TIMESTAMP_CACHE, kst_timestamp, _state_of, SOURCE_WS,
                           TRADE_TR_IDS)
    return _frame_ticks.frame_ticks


#: The compiled kernel, or None (not built, or KIS_DESK_PURE_PYTHON=1).
FRAME_TICKS: FrameTicks | None = _load_compiled()
#: What the feed runs: "compiled" or "python" (self-check, benchmarks).
IMPLEMENTATION = "compiled" if FRAME_TICKS is not None else "python"

__all__ = ["FRAME_TICKS", "FrameTicks", "IMPLEMENTATION", "frame_ticks_python"]
