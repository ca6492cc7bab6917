"""What the desktop needs from an engine — and nothing more.

The window talks to the in-process :class:`kis_desk.engine.collector.Collector` today, but only
through these protocols, so a desktop could later attach to a remote collector (events over
Redis, reads over a small API) without touching the widgets. Live data arrives exclusively as
engine events on ``bus``; the repository is read from worker threads (``asyncio.to_thread``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from ..core.events import EventBus
from ..core.ticks import Tick


@runtime_checkable
class RepositoryReader(Protocol):
    """The storage read side the UI uses. Synchronous: call via ``asyncio.to_thread`` only."""

    def ticks_between(self, code: str, start: datetime, end: datetime) -> list[Tick]: ...

    def last_trade(self, code: str, business_date: date) -> Tick | None: ...

    def first_trade(self, code: str, business_date: date) -> Tick | None: ...

    def price_buckets(self, code: str, start: datetime, end: datetime,
                      bucket_seconds: int) -> list[tuple[datetime, int, int]]: ...

    def alerts_on(self, business_date: date) -> list[Any]: ...   # StoredAlert(alert, acknowledged, …)

    def list_watchlists(self) -> list[str]: ...

    def create_watchlist(self, name: str, codes: Sequence[str] = ()) -> None: ...

    def watchlist_codes(self, name: str) -> list[str]: ...

    def set_watchlist_codes(self, name: str, codes: Sequence[str]) -> None: ...

    def rename_watchlist(self, old: str, new: str) -> None: ...

    def delete_watchlist(self, name: str) -> None: ...


class SymbolLookup(Protocol):
    """The bundled symbol directory (kis_desk.market.symbols.SymbolDirectory)."""

    def get(self, code: str) -> Any: ...          # SymbolInfo | None (.code .name_ko .name_en)

    def name(self, code: str) -> str: ...

    def search(self, query: str, limit: int = 20) -> list[Any]: ...

    def __contains__(self, code: object) -> bool: ...


class EngineHandle(Protocol):
    """The collector as the desktop sees it."""

    bus: EventBus
    symbols: SymbolLookup

    @property
    def simulated(self) -> bool: ...                       # built-in market, always open

    @property
    def repository(self) -> RepositoryReader | None: ...   # None until start() has run

    async def start(self) -> None: ...

    async def stop(self) -> None: ...                      # flushes storage

    async def set_watchlist(self, codes: Sequence[str]) -> None: ...

    async def acknowledge_alert(self, alert_id: str) -> None: ...

    async def apply_settings(self, settings: Any, store: Any, previous: Any = None) -> list[str]:
        """Apply what the user changed in Settings (UserSettings ``previous`` → ``settings``,
        secrets in ``store``) to the running engine at once; returns the fields changed.
        An attached desktop (RemoteEngine) changes only its database and Redis."""
        ...
