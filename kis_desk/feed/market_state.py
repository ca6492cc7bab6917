"""Which symbols are halted or in a VI auction, learnt without spending registrations.

During a halt or a VI auction nothing trades, so the trade stream is silent exactly when the
state matters; the expected-price TRs (H0STANC0 …) would say it but cost one of the 41
registrations per key each. So the watcher asks ``inquire-price`` (``temp_stop_yn``,
``vi_cls_code``) about a symbol only when it has been *quiet*: no trade for ``quiet_after``
seconds during continuous trading (once per quiet stretch, and again every ``quiet_recheck``
seconds while it stays quiet). A symbol found halted or in VI is asked again every
``recheck`` seconds until it says normal; its next trade ends the state at once (a VI ends with
its auction print). At most ``max_probes`` calls per round go through the keys' REST rate
limiters: a busy watchlist costs nothing (busy symbols are never quiet), a quiet one a few
calls per ``quiet_recheck`` seconds. A VI found that way is looked up once in the VI-status
endpoint (``details``; real accounts only — after one refusal it is not asked again) for its
kind, start time and standard price.

A trade record that says "halted" (TRHT_YN Y, reading (a) of protocol.states) sets the state
too. States: ``""`` (normal), ``"halted"``, ``"vi"``; every change is one
:class:`~kis_desk.core.events.MarketStateEvent`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..core.events import Event, MarketStateEvent
from ..core.ticks import Tick
from ..protocol.records import KST
from ..protocol.states import ViStatus
from .rest import PriceQuote

log = logging.getLogger(__name__)

HALTED = "halted"
VI = "vi"
_VI_PRINTS = frozenset({"static_vi", "dynamic_vi"})
_KINDS = {"static_vi": "static", "dynamic_vi": "dynamic"}


@dataclass(frozen=True)
class MarketStateConfig:
    """Probing quiet symbols for halts and VI with inquire-price."""

    interval: float = 1.0         # how often quiet symbols are looked at
    quiet_after: float = 10.0     # no trade this long (continuous trading): ask inquire-price
    quiet_recheck: float = 30.0   # a quiet symbol that was normal: ask again after this long
    recheck: float = 5.0          # a halted / VI symbol: ask again this often
    max_probes: int = 2           # inquire-price calls per round at most (all keys)


def _status_start(row: ViStatus, fallback: datetime) -> datetime:
    """The VI's start (``cntg_vi_hour`` on ``bsop_date``, KST), else ``fallback``."""
    try:
        return datetime.strptime(row.business_date + row.start_hhmmss, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return fallback


class MarketStateWatch:
    """Market state per symbol from its trades and from probes of quiet symbols (see module)."""

    def __init__(self, probe: Callable[[str], Awaitable[PriceQuote]],
                 publish: Callable[[Event], None], *, config: MarketStateConfig | None = None,
                 active: Callable[[], bool] = lambda: True,
                 clock: Callable[[], datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 details: Callable[[str], Awaitable[list[ViStatus]]] | None = None) -> None:
        """``active``: continuous trading now (a closed market is quiet for every symbol);
        ``details``: the VI-status rows of a code (None: not available)."""
        self.config = config or MarketStateConfig()
        self._probe = probe
        self._details = details
        self._publish = publish
        self._active = active
        self._clock = clock or (lambda: datetime.now(KST))
        self._now = monotonic
        self._codes: list[str] = []
        self._last_trade: dict[str, float] = {}
        self._last_probe: dict[str, float] = {}
        self._state: dict[str, MarketStateEvent] = {}
        self._task: asyncio.Task[None] | None = None
        self.probes = 0
        self.probe_errors = 0
        self.detail_errors = 0

    # -- inputs --------------------------------------------------------------------------------
    def set_codes(self, codes: Iterable[str]) -> None:
        self._codes = list(dict.fromkeys(codes))
        now = self._now()
        keep = set(self._codes)
        for d in (self._last_trade, self._last_probe, self._state):
            for code in [c for c in d if c not in keep]:
                del d[code]
        for code in self._codes:
            self._last_trade.setdefault(code, now)     # quiet is measured from now on

    def on_ticks(self, ticks: Sequence[Tick]) -> None:
        """Live or polled trades of one read (hot path: one dict store per trade)."""
        now = self._now()
        last = self._last_trade
        for t in ticks:
            last[t.stock_code] = now
        if self._state:
            for t in ticks:
                held = self._state.get(t.stock_code)
                if held is not None and (t.state == "" or t.state in _VI_PRINTS):
                    # trading again / the VI's auction print (its kind, if we did not know it)
                    self._set(t.stock_code, "", "trade", t.timestamp,
                              kind=_KINDS.get(t.state, held.kind))
        for t in ticks:
            if t.state == HALTED:                    # a record that says so (reading (a))
                self._set(t.stock_code, HALTED, "trade", t.timestamp)

    # -- queries -------------------------------------------------------------------------------
    def states(self) -> dict[str, str]:
        """Symbols not in normal trading: code → "halted" | "vi"."""
        return {code: e.state for code, e in self._state.items()}

    def events(self) -> dict[str, MarketStateEvent]:
        """The event that set each symbol's current (not normal) state."""
        return dict(self._state)

    def state_of(self, code: str) -> str:
        e = self._state.get(code)
        return e.state if e is not None else ""

    # -- probing -------------------------------------------------------------------------------
    def due(self) -> list[str]:
        """The symbols to ask about now, most overdue first, at most ``max_probes``."""
        cfg = self.config
        now = self._now()
        out: list[tuple[float, str]] = []
        for code in self._codes:
            asked = self._last_probe.get(code)
            if code in self._state:
                if asked is None or now - asked >= cfg.recheck:
                    out.append((asked or 0.0, code))
            else:
                traded = self._last_trade.get(code, now)
                # quiet now; not asked yet in this quiet stretch, or long enough ago
                if now - traded >= cfg.quiet_after and (
                        asked is None or asked < traded or now - asked >= cfg.quiet_recheck):
                    out.append((asked or 0.0, code))
        out.sort()
        return [code for _, code in out[:cfg.max_probes]]

    async def probe_once(self) -> int:
        """One round; returns how many symbols were asked."""
        if not self._active():
            return 0
        codes = self.due()
        for code in codes:
            self._last_probe[code] = self._now()
            self.probes += 1
            try:
                quote = await self._probe(code)
            except asyncio.CancelledError:
                raise
            except Exception as exc:     # a failed probe costs nothing but the knowledge
                self.probe_errors += 1
                log.debug("market-state probe of %s failed: %s", code, exc)
                continue
            if code not in self._last_probe:        # no longer watched
                continue
            state = HALTED if quote.halted else VI if quote.vi else ""
            if state == VI and self.state_of(code) != VI:
                await self._vi_found(code)
            else:
                self._set(code, state, "probe", self._clock())
        return len(codes)

    async def _vi_found(self, code: str) -> None:
        seen = self._clock()
        row = None
        if self._details is not None:
            try:
                rows = await self._details(code)
                row = next((r for r in rows if r.code == code and r.active), None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:     # e.g. a mock account: no VI-status endpoint
                self.detail_errors += 1
                self._details = None
                log.info("VI details not available (%s); VI badges show when the VI was seen", exc)
        if row is None:
            self._set(code, VI, "probe", seen)
            return
        reference = row.static_reference if row.kind.startswith("static") else row.dynamic_reference
        self._set(code, VI, "probe", _status_start(row, seen), kind=row.kind,
                  reference=reference or row.static_reference or row.dynamic_reference or None)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="market-state")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            try:
                await self.probe_once()
            except asyncio.CancelledError:
                raise
            except Exception:                # never let one bad round end the watch
                log.exception("market-state round failed")

    def _set(self, code: str, state: str, source: str, since: datetime, *, kind: str = "",
             reference: int | None = None) -> None:
        held = self._state.get(code)
        if (held.state if held is not None else "") == state:
            return
        event = MarketStateEvent(code, state, since, source, kind, reference)
        if state:
            self._state[code] = event
        else:
            self._state.pop(code, None)
        log.info("%s: %s (%s)", code, state or "trading normally", source)
        self._publish(event)


__all__ = ["HALTED", "VI", "MarketStateConfig", "MarketStateWatch"]
