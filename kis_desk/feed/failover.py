"""Failover: which app keys can carry their symbols now, and where a down key's symbols go.

KIS blocks app keys that reconnect in a loop, so a key in trouble keeps its own reconnect
back-off (and keeps wanting its symbols: the first successful subscribe proves it is back);
its symbols are *also* carried elsewhere meanwhile — on free registrations of the healthy keys
first, the rest by REST polling — and given back once it has stayed live for a while.
Duplicates during the overlap are harmless (storage dedupes on cumulative volume).

A key's *first* connection of a run is judged by progress, not by the clock alone: while its
handshake completes and its subscriptions are being acknowledged it is connecting, not down (on
a busy start-up 25 acknowledgements can take longer than ``after``; moving them to polling then
only adds load and a false "disconnected" warning). A first connection that makes no progress
for ``after`` (+ grace), a refused key or one whose back-off says it will be long is down as
before; once a key has been live, any drop is judged by the clock from that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .config import FailoverConfig
from .session_types import CONNECTING, FAILED, LIVE, STALLED


@dataclass
class KeyHealth:
    label: str
    state: str = "stopped"
    detail: str = ""
    not_live_since: float | None = None
    live_since: float | None = None
    retry_at: float | None = None      # when the session will try again (its back-off)
    grace: float = 0.0                 # time its (re)subscription needs on top of `after`
    stalled: bool = False              # the watchdog declared a stall; not live since
    silent: bool = False               # live but silent for half its stall limit: suspect
    down: bool = False
    reason: str = ""
    ever_live: bool = False            # live at least once in this run
    connected: bool = False            # its socket is open (handshake done)
    acked: int = 0                     # registrations acknowledged on its current connection
    progress_at: float | None = None   # when the last one was (first connection only)


@dataclass
class Failover:
    labels: Sequence[str]
    config: FailoverConfig = field(default_factory=FailoverConfig)

    def __post_init__(self) -> None:
        self.keys = [KeyHealth(label) for label in self.labels]
        self.failovers = 0

    def observe(self, index: int, state: str, detail: str, now: float,
                retry_in: float | None = None, grace: float = 0.0) -> None:
        """``grace``: how long subscribing its symbols takes (a healthy resubscribe of 41
        symbols is not an outage)."""
        k = self.keys[index]
        k.grace = grace
        k.state, k.detail = state, detail or k.detail
        k.retry_at = None if retry_in is None else now + retry_in
        if state == STALLED:
            k.stalled = True
        if state == LIVE:
            k.stalled = False
            k.ever_live = True
            k.not_live_since = None
            if k.live_since is None:
                k.live_since = now
        else:
            k.live_since = None
            if k.not_live_since is None:
                k.not_live_since = now
            if state != CONNECTING:          # this connection is over: its progress with it
                k.connected, k.acked, k.progress_at = False, 0, None

    def observe_silence(self, index: int, silent: bool, now: float) -> None:
        """A live socket that normally trades every few seconds has been silent for half its
        stall limit: its symbols are carried elsewhere already (no reconnect yet — that is the
        watchdog's call). Data again restarts the recovery hold."""
        k = self.keys[index]
        if k.silent and not silent and k.live_since is not None:
            k.live_since = now
        if silent and not k.silent:
            k.detail = "live but silent (suspected stall)"
        k.silent = silent

    def observe_progress(self, index: int, connected: bool, acked: int, now: float) -> None:
        """Whether the key's socket is connected and how many of its registrations it has
        acknowledged so far: while it connects for the first time, the handshake and each
        acknowledgement are progress (see the module docstring)."""
        k = self.keys[index]
        if not k.ever_live and ((connected and not k.connected) or acked > k.acked):
            k.progress_at = now
        k.connected, k.acked = connected, acked

    def started(self, now: float) -> None:
        for k in self.keys:
            if k.not_live_since is None and k.live_since is None:
                k.not_live_since = now

    def evaluate(self, now: float) -> list[tuple[KeyHealth, bool]]:
        """Mark keys down/up by the rule in ``FailoverConfig``; returns the (key, now_down)
        transitions."""
        changes: list[tuple[KeyHealth, bool]] = []
        cfg = self.config
        for k in self.keys:
            if not k.down:
                # stuck for `after` seconds already, or its own back-off says it will be
                since = k.not_live_since
                if (since is not None and k.progress_at is not None and not k.ever_live
                        and k.state == CONNECTING):
                    since = max(since, k.progress_at)    # first connection, still acknowledging
                limit = cfg.after + k.grace
                stuck = since is not None and (now - since >= limit or (
                    k.retry_at is not None and k.retry_at - since >= limit))
                # a stall was silence for ≥ 10 s already: its symbols must not wait for more
                if stuck or k.stalled or k.silent or k.state == FAILED:
                    k.down, k.reason = True, k.detail or k.state
                    self.failovers += 1
                    changes.append((k, True))
            elif (not k.silent and k.live_since is not None
                  and now - k.live_since >= cfg.recover_hold):
                k.down, k.reason = False, ""
                changes.append((k, False))
        return changes

    def down(self) -> frozenset[int]:
        return frozenset(i for i, k in enumerate(self.keys) if k.down)

    def rejected(self) -> frozenset[int]:
        """Keys whose credentials were refused: their REST budget is unusable too."""
        return frozenset(i for i, k in enumerate(self.keys) if k.state == FAILED)


@dataclass(frozen=True)
class Routing:
    """What each session should want and what each poller should poll."""

    sessions: tuple[tuple[str, ...], ...]       # primary codes + borrowed ones
    borrowed: tuple[tuple[str, ...], ...]       # codes carried for a down key
    polled: tuple[str, ...]                     # everything without a working registration
    pollers: tuple[tuple[str, ...], ...]        # polled codes per app key

    def carriers(self, code: str) -> list[int]:
        return [i for i, codes in enumerate(self.sessions) if code in codes]


def route(primary: Sequence[Sequence[str]], polled: Sequence[str], per_session: int,
          capacity: dict[int, int], down: frozenset[int], no_rest: frozenset[int],
          previous: Routing | None = None,
          exclude: dict[int, set[str]] | None = None) -> Routing:
    """Primary plan + failover overlay. A down key keeps its primary codes (so it can prove it
    is back) and lends nothing; its codes go to the healthy key with the most free room
    (keeping last round's placement where still possible; never where KIS refused that code
    before, ``exclude``), the rest to polling on keys whose REST works (all keys if none does)."""
    excl = exclude or {}
    n = len(primary)
    caps = [min(per_session, capacity.get(i, per_session)) for i in range(n)]
    displaced = [c for i in sorted(down) if i < n for c in primary[i]]
    up = [i for i in range(n) if i not in down]
    borrowed: list[list[str]] = [[] for _ in range(n)]
    placed: set[str] = set()
    if previous is not None:
        for i in up:
            for c in previous.borrowed[i] if i < len(previous.borrowed) else ():
                if c in displaced and len(primary[i]) + len(borrowed[i]) < caps[i] \
                        and c not in excl.get(i, ()):
                    borrowed[i].append(c)
                    placed.add(c)
    extra_polled: list[str] = []
    for c in displaced:
        if c in placed:
            continue
        room = [(caps[i] - len(primary[i]) - len(borrowed[i]), -i) for i in up
                if c not in excl.get(i, ())]
        best = max(room, default=(0, 0))
        if best[0] > 0:
            borrowed[-best[1]].append(c)
            placed.add(c)
        else:
            extra_polled.append(c)
    all_polled = list(dict.fromkeys([*polled, *extra_polled]))
    rest_keys = [i for i in range(n) if i not in no_rest] or list(range(n))
    per_poller: list[list[str]] = [[] for _ in range(n)]
    for k, c in enumerate(all_polled):
        per_poller[rest_keys[k % len(rest_keys)]].append(c)
    return Routing(
        sessions=tuple(tuple([*primary[i], *borrowed[i]]) for i in range(n)),
        borrowed=tuple(tuple(b) for b in borrowed),
        polled=tuple(all_polled),
        pollers=tuple(tuple(p) for p in per_poller))


def describe_move(key: KeyHealth, index: int, primary: Sequence[str], routing: Routing,
                  labels: Sequence[str]) -> str:
    """One line for the log and the status bar: why a key is down and where its symbols went."""
    moved = {labels[j]: sum(1 for c in routing.borrowed[j] if c in primary)
             for j in range(len(labels)) if j != index}
    polled = sum(1 for c in primary if c in routing.polled)
    where = ", ".join(f"{n} to {lbl}" for lbl, n in moved.items() if n)
    return (f"cannot carry its {len(primary)} symbol(s) ({key.reason}); moved "
            f"{where or 'none to other keys'}{f', {polled} to REST polling' if polled else ''}; "
            "it keeps retrying with its back-off")


__all__ = ["Failover", "KeyHealth", "Routing", "describe_move", "route"]
