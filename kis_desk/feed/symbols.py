"""Per-symbol feed state: one record per watched symbol instead of parallel dicts.

``SymbolFeed`` holds what the feed knows about one symbol's trade chain (last cumulative volume,
where the live stream resumed) and its dark clock (how long it has had no data source).
``feed_state`` is THE rule for ``SymbolFeedState``; nothing else computes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..core.events import SymbolFeedState
from ..core.ticks import Tick

_NO_SOURCE = (SymbolFeedState.DARK, SymbolFeedState.WAITING)


@dataclass
class SymbolFeed:
    code: str
    last_cum: int | None = None        # highest cumulative volume delivered (any source)
    resync: bool = False               # (re)subscribed: the next live trade starts a new chain
    ever_acked: bool = False
    live_since: str | None = None      # HHMMSS it first went live (back-fill anchor without trades)
    live_from: int | None = None       # cum_volume where the live stream resumed after a gap
    backfill_since: str | None = None  # HHMMSS to back-fill from while no trade of the venue is known
    state: SymbolFeedState = SymbolFeedState.WAITING
    dark_since: float | None = None    # monotonic start of the current time without a source
    worst_dark: float = 0.0            # longest time without a source so far
    warned_dark: bool = False

    def advance(self, cum_volume: int) -> None:
        if self.last_cum is None or cum_volume > self.last_cum:
            self.last_cum = cum_volume

    def set_state(self, state: SymbolFeedState, now: float, quiet_since: float | None = None) -> bool:
        """Record the state; runs the dark clock. True when the state changed. ``quiet_since``:
        when the symbol's data actually stopped, if before ``now`` (its socket went silent)."""
        if state in _NO_SOURCE:
            if self.dark_since is None:
                self.dark_since = now if quiet_since is None else min(now, quiet_since)
            self.worst_dark = max(self.worst_dark, now - self.dark_since)
        else:
            self.dark_since = None
            self.warned_dark = False
        changed = state is not self.state
        self.state = state
        return changed

    def dark_for(self, now: float) -> float:
        return 0.0 if self.dark_since is None else now - self.dark_since


def feed_state(sym: SymbolFeed, *, live: bool, polled_ok: bool, backfilling: bool,
               carrier_down: bool) -> SymbolFeedState:
    """Live on a socket (back-filling its gap or not), else polled, else dark; ``waiting`` only
    until it first had a source while nothing is known to be wrong with its key."""
    if live:
        return SymbolFeedState.BACKFILLING if backfilling else SymbolFeedState.LIVE
    if polled_ok:
        return SymbolFeedState.POLLED
    if not sym.ever_acked and sym.state is SymbolFeedState.WAITING and not carrier_down:
        return SymbolFeedState.WAITING
    return SymbolFeedState.DARK


class SymbolTable:
    """The watched symbols, in watchlist order."""

    def __init__(self) -> None:
        self._by_code: dict[str, SymbolFeed] = {}

    def sync(self, codes: Iterable[str]) -> list[str]:
        """Keep exactly ``codes`` (new ones start empty); returns the codes that were added."""
        codes = list(dict.fromkeys(codes))
        old = self._by_code
        self._by_code = {c: old.get(c) or SymbolFeed(c) for c in codes}
        return [c for c in codes if c not in old]

    def get(self, code: str) -> SymbolFeed | None:
        return self._by_code.get(code)

    def __getitem__(self, code: str) -> SymbolFeed:
        return self._by_code[code]

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[SymbolFeed]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def codes(self) -> list[str]:
        return list(self._by_code)

    def follow_live(self, ticks: Sequence[Tick]) -> list[tuple[str, int]]:
        """Advance each symbol's chain by a live read's trades; returns the gaps it shows, as
        (code, last cumulative volume before the gap), in order.

        A trade whose volume starts past the chain's last cumulative volume means trades were
        missed; a resubscribed symbol starts a new chain at its first trade. Trades of a code
        no longer watched are skipped. The hot path of the feed (every live trade): one dict
        look-up per run of one code, no method call per trade.
        """
        by_code = self._by_code
        gaps: list[tuple[str, int]] = []
        code = None
        sym: SymbolFeed | None = None
        for t in ticks:
            if t.stock_code != code:
                code = t.stock_code
                sym = by_code.get(code)
            if sym is None:
                continue
            cum = t.cum_volume
            last = sym.last_cum
            if sym.resync:
                sym.resync = False
                sym.live_from = cum - t.volume
            elif last is not None and cum - t.volume > last:
                sym.live_from = cum - t.volume
                gaps.append((code, last))
            if last is None or cum > last:
                sym.last_cum = cum
        return gaps

    def last_cum(self, code: str) -> int | None:
        sym = self._by_code.get(code)
        return None if sym is None else sym.last_cum


__all__ = ["SymbolFeed", "SymbolTable", "feed_state"]
