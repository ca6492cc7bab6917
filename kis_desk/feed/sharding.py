"""Spread a watchlist over app-key sessions (≤41 registrations each); the rest is polled.

Pure functions, so the plan is easy to test and to explain. cryptofeed splits a subscription
over several connections when an endpoint's limit is exceeded; we do the same per app key, and
when the watchlist changes we move as few symbols as possible (a move costs an unsubscribe,
a subscribe and a back-fill).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PER_SESSION = 41  # KIS: 41 registrations per app key / session (kis-protocol.md §7.1)


@dataclass(frozen=True)
class ShardPlan:
    sessions: tuple[tuple[str, ...], ...]   # index = app key index
    polled: tuple[str, ...]
    keys_needed: int                        # ceil(n / per_session)

    def session_of(self, code: str) -> int | None:
        for i, codes in enumerate(self.sessions):
            if code in codes:
                return i
        return None

    @property
    def live(self) -> tuple[str, ...]:
        return tuple(c for s in self.sessions for c in s)


def keys_needed(n_codes: int, per_session: int = PER_SESSION) -> int:
    return math.ceil(n_codes / per_session) if n_codes else 0


def plan_shards(codes: Sequence[str], n_keys: int, per_session: int = PER_SESSION, *,
                current: Sequence[Sequence[str]] | None = None,
                capacity: Sequence[int] | Mapping[int, int] | None = None,
                exclude: Mapping[int, frozenset[str] | set[str]] | None = None,
                first: int | None = None) -> ShardPlan:
    """Assign ``codes`` (watchlist order, duplicates ignored) to ``n_keys`` sessions.

    * ``current``: the previous assignment; codes still wanted stay where they are (as long as
      their session has room), so a watchlist change moves only what must move.
    * ``capacity``: per-session limits below ``per_session`` (a session whose server refused
      a registration with OPSP0008 has less room than we thought).
    * ``exclude``: codes a given session must not carry (refused there before).
    * ``first``: the leading ``first`` codes (the watchlist on screen) are placed before the rest
      (other stored watchlists, collected in the background): when the budget is short, the
      background codes are the ones polled, even if they held a registration before.
    New codes go to the least-loaded session with room (balanced load, spread reconnect cost);
    what fits nowhere is polled, in watchlist order.
    """
    if n_keys < 0 or per_session < 0:
        raise ValueError("n_keys and per_session must be >= 0")
    wanted = list(dict.fromkeys(codes))
    caps = [per_session] * n_keys
    if capacity is not None:
        items = capacity.items() if isinstance(capacity, Mapping) else enumerate(capacity)
        for i, c in items:
            if 0 <= i < n_keys:
                caps[i] = max(0, min(per_session, int(c)))
    excl = {i: set(v) for i, v in (exclude or {}).items()}
    sessions: list[list[str]] = [[] for _ in range(n_keys)]
    placed: set[str] = set()
    polled: list[str] = []

    def place(group: list[str]) -> None:
        group_set = set(group)
        if current is not None:
            for i, prev in enumerate(current[:n_keys]):
                for c in prev:
                    if c in group_set and c not in placed and len(sessions[i]) < caps[i] \
                            and c not in excl.get(i, ()):
                        sessions[i].append(c)
                        placed.add(c)
        for c in group:
            if c in placed:
                continue
            best = None
            for i in range(n_keys):
                if len(sessions[i]) >= caps[i] or c in excl.get(i, ()):
                    continue
                if best is None or len(sessions[i]) < len(sessions[best]):
                    best = i
            if best is None:
                polled.append(c)
            else:
                sessions[best].append(c)
                placed.add(c)

    cut = len(wanted) if first is None else max(0, min(first, len(wanted)))
    place(wanted[:cut])
    place(wanted[cut:])
    return ShardPlan(tuple(tuple(s) for s in sessions), tuple(polled),
                     keys_needed(len(wanted), per_session))


def moves(old: ShardPlan | None, new: ShardPlan) -> dict[int, tuple[set[str], set[str]]]:
    """Per session index: (codes to subscribe, codes to unsubscribe) to go from old to new."""
    out: dict[int, tuple[set[str], set[str]]] = {}
    for i, codes in enumerate(new.sessions):
        before = set(old.sessions[i]) if old is not None and i < len(old.sessions) else set()
        after = set(codes)
        out[i] = (after - before, before - after)
    return out
