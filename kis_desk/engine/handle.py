"""What the desktop needs from an engine — and nothing more — plus the shared read side.

The window talks to the in-process :class:`~kis_desk.engine.collector.Collector` or to an
attached :class:`~kis_desk.engine.remote.RemoteEngine` only through :class:`EngineHandle`. Live
data arrives exclusively as engine events on ``bus``; history, watchlists and stored alerts come
from the handle's async methods, which do their own worker-thread hop (``asyncio.to_thread``),
so the UI never touches the repository or blocks the event loop. Both engines get that read
side from :class:`EngineReads` over their repository, written once here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from ..core.events import AlertEvent, EventBus, MarketStateEvent
from ..core.ticks import Tick
from ..protocol.records import KST

T = TypeVar("T")
TAIL_SECONDS = 600        # 1-second resolution kept before the last trade (1-minute change)


class SymbolLookup(Protocol):
    """The bundled symbol directory (kis_desk.market.symbols.SymbolDirectory)."""

    def get(self, code: str) -> Any: ...          # SymbolInfo | None (.code .name_ko .name_en)

    def name(self, code: str) -> str: ...

    def search(self, query: str, limit: int = 20) -> list[Any]: ...

    def __contains__(self, code: object) -> bool: ...


class Intraday(NamedTuple):
    """A symbol's day for a grid row: last trade, ``(epoch, price, cum_volume)`` buckets, width."""

    last: Tick
    history: list[tuple[int, int, int]]
    width: int


class StoredAlertView(NamedTuple):
    alert: AlertEvent
    acknowledged: bool


def bucket_width(first_epoch: int, last_epoch: int, max_points: int) -> int:
    """Smallest power-of-two bucket (s) that spans ``first..last`` in ≤ ``max_points`` buckets."""
    width = 1
    while last_epoch // width - first_epoch // width + 1 > max_points:
        width *= 2
    return width


def load_intraday(repo: Any, codes: Sequence[str], day: date, max_points: int) -> dict[str, Intraday]:
    """Per code with trades on ``day``: its :class:`Intraday` at ≤ ``max_points`` buckets.

    Blocking (database): worker thread only. The day is read from its 1-minute bars (the close
    of each bucket's last minute; the day's open, high and low) plus the last trade of every
    second for the last ``TAIL_SECONDS`` before the last trade (raw trades, a key range), so a
    symbol costs its buckets, not its trades (``storage/day_reads.py``); on PostgreSQL all
    ``codes`` together in a few statements (``storage/grid_reads.py``).
    """
    from .storage.grid_reads import many_day_points

    reads = many_day_points(repo, codes, day, TAIL_SECONDS, lambda a, b: bucket_width(a, b, max_points))
    return {code: Intraday(*read) for code, read in reads.items()}


class DaySeries(NamedTuple):
    """A symbol's day for the chart: times (epoch s), prices, volumes; the newest stored trade's
    cumulative volume (-1: none) and the previous close. Minutes before the last stored one
    are four points each (open, high, low, close; see ``storage/day_reads.day_series``)."""

    t: list[float]
    p: list[int]
    v: list[int]
    last_cum: int
    prev_close: int | None


class EngineReads:
    """History, watchlists and stored alerts over ``self.repository``, off the event loop.

    Mixed into every engine; ``repository`` is ``None`` until the engine has started.
    """

    repository: Any

    @staticmethod
    def clock() -> datetime:
        """The market's KST clock: wall time here; Collector and RemoteEngine keep the one they
        were built with (the screenshots' NXT scene and the tests move it). The window's business
        day follows it, so the grid never disagrees with the engine about which day it is."""
        return datetime.now(KST)

    def _repo(self) -> Any:
        repo = self.repository
        if repo is None:
            raise RuntimeError("the storage is not available (engine not started)")
        return repo

    @property
    def has_storage(self) -> bool:
        return self.repository is not None

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    # -- watchlists ---------------------------------------------------------------------------
    async def list_watchlists(self) -> list[str]:
        return await self._read(self._repo().list_watchlists)

    async def watchlist_codes(self, name: str) -> list[str]:
        return await self._read(self._repo().watchlist_codes, name)

    async def create_watchlist(self, name: str, codes: Sequence[str] = ()) -> None:
        await self._read(self._repo().create_watchlist, name, list(codes))

    async def save_watchlist(self, name: str, codes: Sequence[str]) -> None:
        await self._read(self._repo().set_watchlist_codes, name, list(codes))

    async def rename_watchlist(self, old: str, new: str) -> None:
        await self._read(self._repo().rename_watchlist, old, new)

    async def delete_watchlist(self, name: str) -> None:
        await self._read(self._repo().delete_watchlist, name)

    # -- history and alerts -------------------------------------------------------------------
    async def alerts_on(self, day: date) -> list[StoredAlertView]:
        stored = await self._read(self._repo().alerts_on, day)
        return [StoredAlertView(s.alert, s.acknowledged) if hasattr(s, "alert") else StoredAlertView(s, False)
                for s in stored]

    async def intraday(self, codes: Sequence[str], day: date, max_points: int) -> dict[str, Intraday]:
        return await self._read(load_intraday, self._repo(), list(codes), day, max_points)

    async def day_trades(self, code: str, day: date, convert: Callable[[list[Tick]], T]) -> T:
        """``convert(the day's trades)``, run in the worker thread too (no GUI stall on big days)."""
        repo = self._repo()
        start = datetime(day.year, day.month, day.day, tzinfo=KST)
        return await self._read(lambda: convert(repo.ticks_between(code, start, start + timedelta(days=1))))

    async def day_series(self, code: str, day: date, convert: Callable[[DaySeries], T]) -> T:
        """``convert(the day's chart series)`` in the worker thread: the day's 1-minute bars
        plus the last stored minute's trades, whatever the day's volume."""
        from .storage.day_reads import day_series

        repo = self._repo()
        return await self._read(lambda: convert(DaySeries(*day_series(repo, code, day))))

    async def storage_info(self) -> Any:
        """Database size, retention and the days of raw trades kept (``StorageInfo``)."""
        return await self._read(self._repo().storage_info)

    async def acknowledge_alert(self, alert_id: str) -> None:
        if self.repository is not None:
            await self._read(self.repository.acknowledge, alert_id)

    async def alerts_between(self, start_date: date, end_date: date,
                             codes: Sequence[str] | None = None,
                             direction: str | None = None) -> list[Any]:
        """Stored alerts of any past days (the alert history), oldest first."""
        return await self._read(self._repo().alerts_between, start_date, end_date,
                                None if codes is None else list(codes), direction)

    async def acknowledge_alerts(self, alert_ids: Sequence[str]) -> int:
        """Acknowledge many alerts in one transaction; returns how many changed."""
        return await self._read(self._repo().acknowledge_many, list(alert_ids))

    async def alert_watchlists(self) -> dict[str, list[str]]:
        """Watchlist name → codes, for the history's watchlist filter."""
        repo = self._repo()
        return await self._read(lambda: {n: repo.watchlist_codes(n) for n in repo.list_watchlists()})


@runtime_checkable
class EngineHandle(Protocol):
    """The collector as the desktop sees it (implemented by Collector and RemoteEngine)."""

    bus: EventBus
    symbols: SymbolLookup
    clock: Callable[[], datetime]                          # the market's KST clock (EngineReads.clock)

    @property
    def simulated(self) -> bool: ...                       # built-in market

    @property
    def always_open(self) -> bool: ...                     # ... trading around the clock (status bar)

    @property
    def attached(self) -> bool: ...                        # shows a collector on another host

    @property
    def has_storage(self) -> bool: ...                     # False until start() has run

    async def start(self) -> None: ...

    async def stop(self) -> None: ...                      # flushes storage

    async def set_watchlist(self, codes: Sequence[str]) -> None: ...

    def market_states(self) -> dict[str, MarketStateEvent]:
        """Symbols halted or in a VI auction now (code → the event that said so); changes
        arrive as ``MarketStateEvent`` on ``bus``."""
        ...

    async def acknowledge_alert(self, alert_id: str) -> None: ...

    async def apply_settings(self, settings: Any, store: Any, previous: Any = None) -> list[str]:
        """What the user changed in Settings (UserSettings ``previous`` → ``settings``, secrets
        in ``store``) applied to the running engine at once; returns the fields changed. An
        attached desktop (RemoteEngine) changes only its database and Redis."""
        ...

    async def list_watchlists(self) -> list[str]: ...

    async def watchlist_codes(self, name: str) -> list[str]: ...

    async def create_watchlist(self, name: str, codes: Sequence[str] = ()) -> None: ...

    async def save_watchlist(self, name: str, codes: Sequence[str]) -> None: ...

    async def rename_watchlist(self, old: str, new: str) -> None: ...

    async def delete_watchlist(self, name: str) -> None: ...

    async def alerts_on(self, day: date) -> list[StoredAlertView]: ...

    async def intraday(self, codes: Sequence[str], day: date, max_points: int) -> dict[str, Intraday]: ...

    async def day_trades(self, code: str, day: date, convert: Callable[[list[Tick]], T]) -> T: ...

    async def day_series(self, code: str, day: date, convert: Callable[[DaySeries], T]) -> T: ...

    async def storage_info(self) -> Any: ...               # StorageInfo (engine.storage)

    async def alerts_between(self, start_date: date, end_date: date,
                             codes: Sequence[str] | None = None,
                             direction: str | None = None) -> list[Any]: ...

    async def acknowledge_alerts(self, alert_ids: Sequence[str]) -> int: ...

    async def alert_watchlists(self) -> dict[str, list[str]]: ...

    async def send_test_alert(self, alert: Any) -> tuple[str, int] | None: ...   # (channel, receivers)

    # the alert rules in force (engine.alert_rules.AlertRules: overrides, levels, mutes)
    alert_rules: Any
    owns_alert_rules: bool                                 # False: read only (attached desktop)

    async def set_alert_rules(self, rules: Any) -> None: ...   # live; RemoteEngine: NotImplementedError
