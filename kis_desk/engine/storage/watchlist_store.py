"""Stored watchlists: named, ordered lists of codes (create, rename, delete, reorder, edit).

Why its own module: the watchlists are small-table CRUD with their own rules (unique,
non-blank names; codes upper-cased, order kept, duplicates dropped) that nothing else in the
repository shares. A mixin of :class:`~.repository.Repository` (its ``engine``); blocking I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

import sqlalchemy as sa

from .schema import watchlist_items, watchlists


class WatchlistStore:
    """The watchlists and their codes (see the module docstring)."""

    def list_watchlists(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(watchlists.c.name)
                                     .order_by(watchlists.c.position, watchlists.c.id)).scalars())

    def create_watchlist(self, name: str, codes: Sequence[str] = ()) -> None:
        """Raises ValueError when the name is taken or blank."""
        name = name.strip()
        if not name:
            raise ValueError("watchlist name is empty")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(watchlists.c.id).where(watchlists.c.name == name)).first():
                raise ValueError(f"watchlist {name!r} already exists")
            pos = conn.execute(sa.select(sa.func.coalesce(sa.func.max(watchlists.c.position), -1))).scalar_one()
            conn.execute(sa.insert(watchlists).values(name=name, position=int(pos) + 1,
                                                      created=datetime.now(timezone.utc)))
            if codes:
                self._set_codes(conn, self._wl_id(conn, name), codes)

    def rename_watchlist(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise ValueError("watchlist name is empty")
        with self.engine.begin() as conn:
            wl_id = self._wl_id(conn, old)
            if new != old and conn.execute(sa.select(watchlists.c.id).where(watchlists.c.name == new)).first():
                raise ValueError(f"watchlist {new!r} already exists")
            conn.execute(sa.update(watchlists).where(watchlists.c.id == wl_id).values(name=new))

    def delete_watchlist(self, name: str) -> None:
        with self.engine.begin() as conn:
            wl_id = self._wl_id(conn, name)
            conn.execute(sa.delete(watchlist_items).where(watchlist_items.c.watchlist_id == wl_id))
            conn.execute(sa.delete(watchlists).where(watchlists.c.id == wl_id))

    def set_watchlist_order(self, names: Sequence[str]) -> None:
        """Reorder watchlists (names not given keep their relative order after these)."""
        with self.engine.begin() as conn:
            current = list(conn.execute(sa.select(watchlists.c.name)
                                        .order_by(watchlists.c.position, watchlists.c.id)).scalars())
            unknown = [n for n in names if n not in current]
            if unknown:
                raise KeyError(f"unknown watchlist(s): {', '.join(unknown)}")
            order = list(dict.fromkeys(names)) + [n for n in current if n not in names]
            for i, n in enumerate(order):
                conn.execute(sa.update(watchlists).where(watchlists.c.name == n).values(position=i))

    def watchlist_codes(self, name: str) -> list[str]:
        with self.engine.connect() as conn:
            wl_id = self._wl_id(conn, name)
            return list(conn.execute(sa.select(watchlist_items.c.code)
                                     .where(watchlist_items.c.watchlist_id == wl_id)
                                     .order_by(watchlist_items.c.position)).scalars())

    def set_watchlist_codes(self, name: str, codes: Sequence[str]) -> None:
        """Replace the watchlist's codes; their order is the display order (duplicates dropped)."""
        with self.engine.begin() as conn:
            self._set_codes(conn, self._wl_id(conn, name), codes)

    @staticmethod
    def _wl_id(conn: sa.Connection, name: str) -> int:
        wl_id = conn.execute(sa.select(watchlists.c.id).where(watchlists.c.name == name)).scalar()
        if wl_id is None:
            raise KeyError(f"no watchlist named {name!r}")
        return int(wl_id)

    @staticmethod
    def _set_codes(conn: sa.Connection, wl_id: int, codes: Iterable[str]) -> None:
        conn.execute(sa.delete(watchlist_items).where(watchlist_items.c.watchlist_id == wl_id))
        rows = [{"watchlist_id": wl_id, "code": c, "position": i}
                for i, c in enumerate(dict.fromkeys(c.strip().upper() for c in codes if c.strip()))]
        if rows:
            conn.execute(sa.insert(watchlist_items), rows)


__all__ = ["WatchlistStore"]
