"""One grid row's state: current values, the 1-minute window and a bounded sparkline.

Plain Python, updated per trade and read per paint. Memory stays flat whatever the tick count:
each row keeps its current values, at most ~62 one-second samples for the 1-minute change and a
sparkline of at most ``SPARK_POINTS`` points whose bucket width doubles whenever it fills (1 s,
2 s, 4 s … — a full trading day ends at ~128 s per point).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime

from ..core.events import AlertEvent, MarketStateEvent
from ..core.ticks import Tick
from ..engine.handle import bucket_width
from ..market.ticks import price_limits
from .feed_state import WAITING, SymbolFeed

SPARK_POINTS = 240
FLASH_SECONDS = 0.6
MINUTE_SECONDS = 60


def minute_add(window: deque[list[int]], epoch: int, price: int) -> None:
    """Keep ``window`` = per-second last price, oldest first, spanning just over a minute."""
    if window and window[-1][0] >= epoch:
        window[-1][1] = price
        return
    window.append([epoch, price])
    cutoff = epoch - MINUTE_SECONDS
    while len(window) > 1 and window[1][0] <= cutoff:
        window.popleft()


def row_sign(price: int | None, change: int | None) -> int:
    """-2 limit down, -1 down, 0, 1 up, 2 limit up (KRX limits from the previous close)."""
    c = change or 0
    if c == 0 or price is None:
        return 0
    prev_close = price - c
    if prev_close <= 0:
        return 1 if c > 0 else -1
    upper, lower = price_limits(prev_close)
    if c > 0:
        return 2 if price >= upper else 1
    return -2 if price <= lower else -1


class Sparkline:
    """Last price per time bucket; the bucket doubles when ``SPARK_POINTS`` is reached."""

    __slots__ = ("points", "width", "bucket", "version")

    def __init__(self) -> None:
        self.points: list[float] = []
        self.width = 1             # seconds per point
        self.bucket = -1           # bucket number of the last point
        self.version = 0           # bumped whenever ``points`` change (the delegate's cache key)

    def add(self, epoch: int, price: float) -> None:
        b = epoch // self.width
        if b == self.bucket and self.points:
            if self.points[-1] != price:
                self.points[-1] = price
                self.version += 1
            return
        if b < self.bucket:        # late trade (back-fill): it belongs to a past bucket; keep order
            return
        self.version += 1
        self.points.append(price)
        self.bucket = b
        if len(self.points) > SPARK_POINTS:
            self.points = self.points[1::2]   # keep each pair's later (closing) price
            self.width *= 2
            self.bucket = epoch // self.width

    def seed(self, history: Iterable[tuple[int, float]], min_width: int = 1) -> None:
        """Replace the points with stored history ``(epoch second, price)`` in trade order.

        The width is the smallest power of two ≥ ``min_width`` that fits the history into
        ``SPARK_POINTS`` buckets (epoch-aligned, like :meth:`add`), so live trades that follow
        continue at the same density instead of squeezing the history into the left edge.
        """
        history = list(history)
        width = max(1, min_width)
        while True:
            last: dict[int, float] = {}
            for epoch, price in history:
                last[epoch // width] = price          # dicts keep first-insertion order
            if len(last) <= SPARK_POINTS:
                break
            width *= 2
        self.width = width
        self.points = list(last.values())
        self.version += 1
        self.bucket = next(reversed(last)) if last else -1


def spark_width(first_epoch: int, last_epoch: int) -> int:
    """Smallest power-of-two bucket (s) that spans ``first..last`` in ≤ ``SPARK_POINTS`` buckets."""
    return bucket_width(first_epoch, last_epoch, SPARK_POINTS)


def symbol_flags(info: object | None) -> tuple[str, ...]:
    """Warning flags of a ``SymbolInfo`` (master file): administrative issue, investment
    caution/warning/danger, trading halt — as keys ("admin", "caution", …) for the badge column."""
    if info is None:
        return ()
    flags = []
    if getattr(info, "administrative", False):
        flags.append("admin")
    warning = str(getattr(info, "warning", "") or "")
    if warning in ("caution", "warning", "danger"):
        flags.append(warning)
    if getattr(info, "halted", False):
        flags.append("halted")
    return tuple(flags)


class RowState:
    """Everything shown for one symbol (plain Python: updated per tick, read per paint)."""

    __slots__ = ("code", "name", "price", "change", "change_rate", "cum_volume", "strength",
                 "time", "epoch", "minute", "spark", "flash_until", "flash_sign", "alerts",
                 "feed", "cache", "pending", "_sign", "open", "high", "low", "value", "venue",
                 "market", "flags")

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name
        self.price: int | None = None
        self.change: int | None = None
        self.change_rate: float | None = None
        self.cum_volume: int | None = None
        self.strength: float | None = None
        self.time: datetime | None = None
        self.epoch = 0
        self.minute: deque[list[int]] = deque()   # [epoch second, price], oldest first
        self.spark = Sparkline()
        self.flash_until = 0.0
        self.flash_sign = 0
        self.alerts: list[AlertEvent] = []        # unacknowledged, oldest first
        self.feed = SymbolFeed(WAITING)            # from FeedStates (the one source)
        self.cache: tuple | None = None            # per-column cell values (grid_columns.build_row)
        self._sign: tuple[int | None, int | None, int] = (None, None, 0)   # (price, change, sign)
        # while today's history loads: live trades seen meanwhile, one [epoch, price, cum] per
        # second (bounded), merged by seed(); None once seeded (or never asked for)
        self.pending: deque[list[int]] | None = None
        # the day's open/high/low and traded value (거래대금, won): from the trades this row saw
        # (with stored history after a restart). Value adds price × the cumulative-volume step,
        # so a duplicate or out-of-order trade never counts twice and a gap counts at its price.
        self.open: int | None = None
        self.high: int | None = None
        self.low: int | None = None
        self.value = 0
        self.venue = ""            # KRX / NXT / integrated, from the trade (Tick.venue when present)
        self.market: MarketStateEvent | None = None   # halted / in VI now (the engine's event)
        self.flags: tuple[str, ...] = ()   # symbol-directory flags (admin/caution/warning/danger/halted)

    def apply(self, t: Tick, now: float, epoch: int | None = None) -> None:
        """One trade. Back-filled trades older than the current one only feed history.

        ``epoch``: the trade's epoch second if the caller knows it (trades of one second share
        their timestamp; the model converts each once). Every trade of the grid passes here:
        the open/high/low, value and 1-minute steps are written out inline.
        """
        self.cache = None
        if epoch is None:
            epoch = int(t.timestamp.timestamp())
        price, cum = t.price, t.cum_volume
        pending = self.pending
        if pending is not None:
            if pending and pending[-1][0] == epoch and pending[-1][2] < cum:
                pending[-1][1:] = (price, cum)
            else:
                pending.append([epoch, price, cum])
        last_cum = self.cum_volume
        if last_cum is not None and cum < last_cum:
            self.spark.add(epoch, price)
            self._extremes(price)
            return
        shown = self.price
        if shown is not None and price != shown:
            self.flash_until = now + FLASH_SECONDS
            self.flash_sign = 1 if price > shown else -1
        # open / high / low / traded value
        if self.open is None:
            self.open = price
        if self.high is None or price > self.high:
            self.high = price
        if self.low is None or price < self.low:
            self.low = price
        step = cum if last_cum is None else cum - last_cum
        if step > 0:
            self.value += price * step
        # the venue badge's source; a trade's ``Tick.state`` is not read here: whether a symbol
        # is halted or in VI is the engine's word (MarketStateEvent, set by the model), since
        # the print that ends a VI says VI when the VI is over
        self.venue = t.venue or ""
        self.price = price
        if t.change is not None:
            self.change = t.change
        if t.change_rate is not None:
            self.change_rate = t.change_rate
        self.cum_volume = cum
        if t.strength is not None:
            self.strength = t.strength
        self.time = t.timestamp
        self.epoch = epoch
        minute = self.minute
        if minute and minute[-1][0] >= epoch:      # the same second: minute_add's first case
            minute[-1][1] = price
        else:
            minute_add(minute, epoch, price)
        self.spark.add(epoch, price)

    def seed(self, last: Tick | None, history: Sequence[tuple[int, int, int]], width: int = 1) -> None:
        """Merge today's stored history into this row (restart, watchlist switch, added symbol).

        ``history`` is ``(epoch second, price, cum_volume)`` — the last trade per bucket over the
        day plus a 1-second tail for the 1-minute change — and ``last`` the day's last stored
        trade. Live trades that arrived while it loaded (``pending``) are merged by cumulative
        volume (a trade's identity), so nothing is counted twice and nothing live is lost.
        """
        pending, self.pending = self.pending, None
        merged: dict[int, tuple[int, int]] = {cum: (epoch, price) for epoch, price, cum in history}
        for epoch, price, cum in pending or ():
            merged[cum] = (epoch, price)
        if last is not None:
            merged.setdefault(last.cum_volume, (int(last.timestamp.timestamp()), last.price))
        if not merged:
            return
        order = sorted(merged.items())                          # trade order
        self.spark.seed(((e, p) for _, (e, p) in order), width)
        self._seed_ohlc(order)
        if last is not None and (self.cum_volume is None or last.cum_volume > self.cum_volume):
            # the stored trade is newer than anything live: show it (no flash, it is not news)
            self.price, self.cum_volume, self.time = last.price, last.cum_volume, last.timestamp
            self.epoch = int(last.timestamp.timestamp())
            for name in ("change", "change_rate", "strength"):
                value = getattr(last, name)
                if value is not None:
                    setattr(self, name, value)
        # the 1-minute base: per-second last price up to the current trade, as apply() keeps it
        m: deque[list[int]] = deque()
        head = self.cum_volume if self.cum_volume is not None else order[-1][0]
        for cum, (epoch, price) in order:
            if cum > head:
                break
            minute_add(m, epoch, price)
        self.minute = m
        self.cache = None

    # -- open / high / low / traded value -------------------------------------------------------
    def _extremes(self, price: int) -> None:
        if self.high is None or price > self.high:
            self.high = price
        if self.low is None or price < self.low:
            self.low = price

    def _seed_ohlc(self, order: Sequence[tuple[int, tuple[int, int]]]) -> None:
        """From stored history (last trade per bucket, by cumulative volume): open = the first
        bucket's price, high/low over the buckets, value = Σ price × volume step (≈: a bucket's
        trades are valued at its last price)."""
        prev = 0
        value = 0
        for cum, (_epoch, price) in order:
            if cum > prev:
                value += price * (cum - prev)
                prev = cum
            self._extremes(price)
        self.open = order[0][1][1]
        self.value = max(self.value, value)

    @property
    def sign(self) -> int:
        """-2 limit down, -1 down, 0, 1 up, 2 limit up (KRX limits from the previous close).

        Read several times per row build: remembered for the current price and change.
        """
        price, change, sign = self._sign
        if price == self.price and change == self.change:
            return sign
        sign = row_sign(self.price, self.change)
        self._sign = (self.price, self.change, sign)
        return sign

    @property
    def change_1m(self) -> float | None:
        if self.price is None or not self.minute:
            return None
        base = self.minute[0][1]
        return (self.price - base) / base * 100.0 if base else None

    @property
    def prev_close(self) -> int | None:
        if self.price is None or self.change is None:
            return None
        return self.price - self.change
