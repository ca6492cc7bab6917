"""Watchlist CRUD for the window: the editor's requests → the engine's stored lists → the grid.

One lock orders the steps (read the names, change, read them back, apply): two quick clicks
never interleave their reads and writes. Every storage call goes through the ``EngineHandle``
(which does its own worker-thread hop); the grid is updated through ``show_codes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..engine.handle import EngineHandle
from .i18n import tr
from .watchlist_editor import WatchlistEditor


class WatchlistController:
    """Which list is open, and every change to the stored lists."""

    def __init__(self, engine: EngineHandle, editor: WatchlistEditor,
                 show_codes: Callable[[Sequence[str]], None], current_codes: Callable[[], list[str]]) -> None:
        self.engine = engine
        self.editor = editor
        self._show_codes = show_codes
        self._current_codes = current_codes
        self._lock = asyncio.Lock()
        self.names: list[str] = []
        self.name = ""

    async def open(self, name: str, codes: Sequence[str]) -> None:
        """Start-up: ``name`` (already applied to the engine) is shown; read the other names."""
        self.name = name
        async with self._lock:
            self.names = await self.engine.list_watchlists()
        self.editor.set_lists(self.names, name, codes)

    async def save_and_apply(self, name: str, codes: Sequence[str]) -> None:
        """The editor changed the open list's codes (the grid shows them already)."""
        async with self._lock:
            await self.engine.save_watchlist(name, list(codes))
            await self.engine.set_watchlist(list(codes))

    async def _show(self, name: str, codes: Sequence[str]) -> None:
        self.name = name
        self._show_codes(codes)
        self.editor.set_lists(self.names, name, codes)
        await self.engine.set_watchlist(list(codes))

    async def switch(self, name: str) -> None:
        async with self._lock:
            codes = await self.engine.watchlist_codes(name)
            await self._show(name, codes)

    async def create(self, name: str, codes: Sequence[str] = ()) -> None:
        async with self._lock:
            await self.engine.create_watchlist(name, list(codes))
            self.names = await self.engine.list_watchlists()
            await self._show(name, codes)

    async def rename(self, old: str, new: str) -> None:
        async with self._lock:
            await self.engine.rename_watchlist(old, new)
            self.names = await self.engine.list_watchlists()
        if self.name == old:
            self.name = new
        self.editor.set_lists(self.names, self.name, self._current_codes())

    async def delete(self, name: str) -> None:
        async with self._lock:
            names = await self.engine.list_watchlists()
            if len(names) <= 1:
                self.editor.show_message(tr("wl.last_list"), True)
                return
            await self.engine.delete_watchlist(name)
            self.names = await self.engine.list_watchlists()
            if name == self.name:
                nxt = self.names[0]
                await self._show(nxt, await self.engine.watchlist_codes(nxt))
            else:
                self.editor.set_lists(self.names, self.name, self._current_codes())
