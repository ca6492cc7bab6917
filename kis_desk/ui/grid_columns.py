"""The watchlist grid's columns as one table (in the spirit of vnpy's monitor ``headers``).

Each :class:`Column` says everything about one column: its header, alignment, default width,
and how a row shows in it — text, colour, background, font, sort value and tooltip. The model
(``watchlist_model``) only walks this table; adding a column is one entry here.

Sort values are plain numbers rounded to what the cell shows, so a numeric column sorts by value
(+0.86 above +0.85) and never disagrees with its text; empty cells sort as −∞.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont

from .feed_state import LIVE, POLLED, STALE, SymbolFeed
from .i18n import tr
from .market_badges import badge_text, badge_tooltip
from .notifications import alert_text
from .row_state import FLASH_SECONDS, RowState
from .theme import Palette


class Col(IntEnum):
    CODE = 0
    NAME = 1
    PRICE = 2
    CHANGE = 3
    CHANGE_PCT = 4
    CHANGE_1M = 5
    VOLUME = 6
    STRENGTH = 7
    VALUE = 8         # 거래대금 (million won)
    OPEN = 9
    HIGH = 10
    LOW = 11
    BADGE = 12        # venue · VI/halt · symbol-directory warning flags
    TIME = 13         # trade-driven columns stay contiguous (PRICE..TIME): one repaint run
    SPARK = 14
    FEED = 15


class Look(Protocol):
    """What a column needs from the model: colours, fonts and each row's feed state."""

    palette: Palette
    bold: QFont

    def feed(self, row: RowState) -> SymbolFeed: ...


Fn = Callable[[RowState, Look], Any]
NEG_INF = float("-inf")
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)
_LEFT = int((Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter).value)
_CENTER = int(Qt.AlignmentFlag.AlignCenter.value)
_FEED_COLOURS = {LIVE: QColor(0, 130, 60), STALE: QColor(200, 110, 0)}
_FEED_OTHER = QColor(120, 120, 120)


def _none(row: RowState, look: Look) -> None:
    return None


def _number(value: float | int | None, digits: int | None = None) -> float:
    if value is None:
        return NEG_INF
    return float(value) if digits is None else round(float(value), digits)


def _alert_background(row: RowState, look: Look) -> QColor | None:
    return look.palette.alert if row.alerts else None


def _alert_tooltip(row: RowState, look: Look) -> str | None:
    return alert_text(row.alerts[-1]) if row.alerts else None


def _direction(row: RowState, look: Look) -> QColor:
    return look.palette.direction(row.sign)


def _limit_font(row: RowState, look: Look) -> QFont | None:
    return look.bold if abs(row.sign) == 2 else None


def _valued(fmt: Callable[[RowState], str | None]) -> Fn:
    """Text only once the row has a price (before that the cell is empty)."""
    return lambda row, look: None if row.price is None else fmt(row)


def _change_text(row: RowState) -> str | None:
    c = row.change
    if c is None:
        return None
    arrow = "▲" if c > 0 else "▼" if c < 0 else ""
    return f"{arrow} {abs(c):,}" if arrow else "0"


def _change_colour(row: RowState, look: Look) -> QColor:
    return look.palette.marker_text if abs(row.sign) == 2 else look.palette.direction(row.sign)


def _change_background(row: RowState, look: Look) -> QColor | None:
    if abs(row.sign) == 2:
        return look.palette.direction(row.sign)     # filled ▲/▼ marker for limit up/down
    return _alert_background(row, look)


def _change_tooltip(row: RowState, look: Look) -> str | None:
    if abs(row.sign) == 2:
        return tr("limit.up" if row.sign > 0 else "limit.down")
    return _alert_tooltip(row, look)


def _price_background(row: RowState, look: Look) -> QColor | None:
    """The alert colour, else the fading up/down flash of a price change."""
    if row.alerts:
        return look.palette.alert
    left = row.flash_until - time.monotonic()
    if left <= 0:
        return None
    return _faded(look.palette.flash_up if row.flash_sign > 0 else look.palette.flash_down,
                  int(140 * min(left, FLASH_SECONDS) / FLASH_SECONDS))


_FADED: dict[tuple[int, int], QColor] = {}


def _faded(colour: QColor, alpha: int) -> QColor:
    """``colour`` at ``alpha``: one of at most 141 shades per flash colour, made once each (a
    new QColor per flashing cell and flush was the dearest part of a row's rebuild)."""
    key = (colour.rgba(), alpha)
    faded = _FADED.get(key)
    if faded is None:
        if len(_FADED) > 2048:       # palettes changed many times: start over
            _FADED.clear()
        faded = _FADED[key] = QColor(colour)
        faded.setAlpha(alpha)
    return faded


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:+.2f}%"


def _minute_colour(row: RowState, look: Look) -> QColor:
    m = row.change_1m
    return look.palette.direction(0 if not m else 1 if m > 0 else -1)


def _clock_text(t: datetime) -> str:
    """HH:MM:SS of the trade's own (KST) clock; ``strftime`` on an aware datetime took ~5 µs,
    the largest single cost of a row's rebuild."""
    return f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def _feed_tooltip(row: RowState, look: Look) -> str | None:
    feed = look.feed(row)
    if feed.state == LIVE:
        return tr("feed.live.tip", session=feed.session)
    if feed.state == POLLED:
        return tr("feed.polled.tip")
    if feed.state == STALE:
        return tr("feed.stale.tip", session=feed.session, state=tr(f"state.{feed.session_state}"))
    return None


def _won(value: int | None) -> str | None:
    return None if value is None else f"{value:,}"


def _level_colour(row: RowState, level: int | None, look: Look) -> QColor:
    """Open/high/low coloured against the previous close, as an HTS shows them."""
    prev = row.prev_close
    if level is None or prev is None:
        return look.palette.direction(0)
    return look.palette.direction(0 if level == prev else 1 if level > prev else -1)


def _value_tooltip(row: RowState, look: Look) -> str | None:
    """Static text: the store copies a tooltip only when the cell's text or colour changes."""
    return _alert_tooltip(row, look) or tr("col.value.tip")


_VENUES = {"krx": "KRX", "nxt": "NXT", "total": "col.badge.total", "integrated": "col.badge.total",
           "un": "col.badge.total"}
_BADGE_WARN = QColor(200, 80, 0)


def _badge_parts(row: RowState) -> list[str]:
    """A VI/halt state or a warning flag says more than the venue: with one, the venue is left
    to the tooltip (so the column stays narrow enough for the sparkline at 1366 px)."""
    state = badge_text(row.market)                 # "VI 09:31" / "정지" (ui/market_badges)
    parts = ([state] if state else []) + [tr(f"flag.{f}") for f in row.flags]
    venue = _VENUES.get(row.venue.lower())
    if not parts and venue and venue != "KRX":     # KRX is the default: no badge for it
        parts.append(tr(venue) if venue.startswith("col.") else venue)
    return parts


def _badge_text(row: RowState, look: Look) -> str | None:
    parts = _badge_parts(row)
    return " ".join(parts) if parts else None


def _badge_colour(row: RowState, look: Look) -> QColor | None:
    return _BADGE_WARN if row.flags or badge_text(row.market) else None


def _badge_tooltip(row: RowState, look: Look) -> str | None:
    words = []
    if row.venue:
        label = _VENUES.get(row.venue.lower(), row.venue)
        words.append(tr("col.badge.venue_tip", venue=tr(label) if label.startswith("col.") else label))
    state = badge_tooltip(row.market)
    if state:
        words.append(state)
    words += [tr(f"flag.{f}.tip") for f in row.flags]
    return "\n".join(words) if words else _alert_tooltip(row, look)


@dataclass(frozen=True, slots=True)
class Column:
    key: Col
    header: str                       # i18n key
    align: int
    width: int                        # default pixels
    text: Fn
    sort: Fn
    colour: Fn = _none
    background: Fn = _alert_background
    font: Fn = _none
    tooltip: Fn = _alert_tooltip
    trades: bool = True               # a trade can change this cell (else only alerts, feed, palette)
    hidden: bool = False              # hidden until the user shows it (header menu)
    after: Col | None = None          # default visual place: right after this column


COLUMNS: tuple[Column, ...] = (
    Column(Col.CODE, "col.code", _LEFT, 56, lambda r, k: r.code, lambda r, k: r.code, trades=False),
    Column(Col.NAME, "col.name", _LEFT, 110, lambda r, k: r.name, lambda r, k: r.name, trades=False),
    Column(Col.PRICE, "col.price", _RIGHT, 74, _valued(lambda r: f"{r.price:,}"),
           lambda r, k: _number(r.price), _direction, _price_background, _limit_font),
    Column(Col.CHANGE, "col.change", _RIGHT, 66, _valued(_change_text), lambda r, k: _number(r.change),
           _change_colour, _change_background, _limit_font, _change_tooltip),
    Column(Col.CHANGE_PCT, "col.change_pct", _RIGHT, 60, _valued(lambda r: _pct(r.change_rate)),
           lambda r, k: _number(r.change_rate, 2), _direction),
    Column(Col.CHANGE_1M, "col.change_1m", _RIGHT, 56, _valued(lambda r: _pct(r.change_1m)),
           lambda r, k: _number(r.change_1m, 2), _minute_colour),
    Column(Col.VOLUME, "col.volume", _RIGHT, 88,
           _valued(lambda r: None if r.cum_volume is None else f"{r.cum_volume:,}"),
           lambda r, k: _number(r.cum_volume)),
    Column(Col.STRENGTH, "col.strength", _RIGHT, 56,
           _valued(lambda r: None if r.strength is None else f"{r.strength:.2f}"),
           lambda r, k: _number(r.strength, 2)),
    Column(Col.VALUE, "col.value", _RIGHT, 86, _valued(lambda r: f"{r.value / 1e6:,.0f}" if r.value else None),
           lambda r, k: _number(r.value or None), tooltip=_value_tooltip, after=Col.SPARK),
    Column(Col.OPEN, "col.open", _RIGHT, 70, _valued(lambda r: _won(r.open)), lambda r, k: _number(r.open),
           lambda r, k: _level_colour(r, r.open, k), hidden=True),
    Column(Col.HIGH, "col.high", _RIGHT, 70, _valued(lambda r: _won(r.high)), lambda r, k: _number(r.high),
           lambda r, k: _level_colour(r, r.high, k), hidden=True),
    Column(Col.LOW, "col.low", _RIGHT, 70, _valued(lambda r: _won(r.low)), lambda r, k: _number(r.low),
           lambda r, k: _level_colour(r, r.low, k), hidden=True),
    Column(Col.BADGE, "col.badge", _CENTER, 72, _badge_text, lambda r, k: _badge_text(r, k) or "",  # "VI 16:40"
           _badge_colour, tooltip=_badge_tooltip),
    Column(Col.TIME, "col.time", _CENTER, 60,
           _valued(lambda r: None if r.time is None else _clock_text(r.time)),
           lambda r, k: _number(r.epoch or None)),
    Column(Col.SPARK, "col.spark", _CENTER, 130, _none, lambda r, k: _number(r.change_rate, 2), _direction,
           after=Col.VOLUME),
    Column(Col.FEED, "col.feed", _CENTER, 44, lambda r, k: tr(f"feed.{k.feed(r).state}"),
           lambda r, k: k.feed(r).state, lambda r, k: _FEED_COLOURS.get(k.feed(r).state, _FEED_OTHER),
           tooltip=_feed_tooltip, trades=False),
)
assert [c.key for c in COLUMNS] == list(Col), "COLUMNS must list every Col in order"
DEFAULT_HIDDEN = tuple(c.key for c in COLUMNS if c.hidden)
NCOLS = len(COLUMNS)
ALIGNMENTS = tuple(c.align for c in COLUMNS)     # plain ints: data() is hot
TRADE_COLUMNS = tuple(c.key for c in COLUMNS if c.trades and c.key != Col.SPARK)


def _cell(c: Column, row: RowState, look: Look) -> tuple:
    return c.text(row, look), c.colour(row, look), c.background(row, look), c.font(row, look)


def build_row(row: RowState, look: Look, previous: tuple | None = None) -> tuple[tuple, ...]:
    """Per column: (text, colour, background, font) — what a paint asks for, computed once.

    With ``previous`` (the row's cells before a trade), cells a trade cannot change are kept.
    """
    if previous is None:
        return tuple(_cell(c, row, look) for c in COLUMNS)
    return tuple(_cell(c, row, look) if c.trades else previous[c.key] for c in COLUMNS)


def sorted_order(rows: Sequence[RowState], natural: dict[str, int], column: int, descending: bool,
                 look: Look) -> list[int]:
    """Row numbers in display order: by ``column``'s sort value (-1: none), ties in watchlist order."""
    order = sorted(range(len(rows)), key=lambda i: natural.get(rows[i].code, i))
    if 0 <= column < NCOLS:
        values = [COLUMNS[column].sort(r, look) for r in rows]
        order.sort(key=values.__getitem__, reverse=descending)   # stable: ties keep watchlist order
    return order
