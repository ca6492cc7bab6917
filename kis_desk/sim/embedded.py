"""The built-in simulator as the engine's ``EmbeddedExchange`` (see ``kis_desk.core.exchange``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from ..config import AppCredential, Secret
from ..core.exchange import ExchangeEndpoints, Resume
from .config import DEMO_SPIKES, DEMO_VI, SimConfig, ViSpec
from .server import Simulator

#: The simulator's REST limit is KIS's real-account 20/s; the client stays just under it.
_REST_RATE = 19.0


class EmbeddedSimulator:
    """Starts a ``Simulator`` on loopback with ``keys`` app keys and optional scripted jumps."""

    def __init__(self, rate: float, keys: int = 2,
                 jumps: Sequence[tuple[str, float, float]] = (), spikes: bool = True,
                 clock: Callable[[], datetime] | None = None,
                 tick_interval: float | None = None,
                 vi: ViSpec | bool | None = True, nxt: bool = True, always_open: bool = True) -> None:
        """``spikes``: the demo's news-like moves and VI auctions (off where a test counts exact
        alerts); ``clock``: the market's KST clock (None: wall time; tests run across midnight);
        ``tick_interval``: the market's step (None = ``SimConfig``'s default; the benchmark
        compares steps). ``vi``: True = the rule below; a ``ViSpec`` = that VI rule whatever the
        rest (tests compress its 2 minutes); None/False = no VI. ``nxt``: NXT trades too (a test
        that follows one KRX stream turns it off: a VI the simulator starts on an NXT trade
        prints its auction on NXT). ``always_open``: False = the venues trade by the session
        table on ``clock`` (``CollectorConfig.always_open`` False), not around the clock."""
        self.rate = rate
        self.keys = max(1, keys)
        self.jumps = list(jumps)
        self.spikes = spikes
        self.vi = vi
        self.nxt = nxt
        self.clock = clock
        self.always_open = always_open
        self.tick_interval = tick_interval
        self.simulator: Simulator | None = None

    async def start(self, codes: Sequence[str], resume: Mapping[str, Resume]) -> ExchangeEndpoints:
        # the demo's realism comes as one: news-like spikes and the VI auctions they can
        # trigger (off together where a test counts exact alerts). A scripted jump is there to
        # raise an alert at once (self-check, tests): a VI would hold it two minutes, so scripted
        # jumps switch VI off (unless a ViSpec is given). NXT trades unless told otherwise.
        vi = DEMO_VI if self.spikes and not self.jumps else None
        if isinstance(self.vi, ViSpec) or not self.vi:
            vi = self.vi or None
        step = {} if self.tick_interval is None else {"tick_interval": self.tick_interval}
        self.simulator = Simulator(SimConfig(codes=list(codes), rate=self.rate,
                                             always_open=self.always_open,
                                             resume=dict(resume), nxt=self.nxt,
                                             spikes=DEMO_SPIKES if self.spikes else None, vi=vi,
                                             clock=self.clock, **step))
        await self.simulator.start()
        for code, pct, seconds in self.jumps:
            self.simulator.jump(code, pct, seconds)
        credentials = tuple(AppCredential(f"key{i + 1}", Secret(f"SIMKEY{i + 1:02d}"),
                                          Secret(f"SIMSECRET{i + 1:02d}"))
                            for i in range(self.keys))
        return ExchangeEndpoints(self.simulator.ws_url, self.simulator.rest_url, credentials,
                                 _REST_RATE)

    def add_code(self, code: str) -> None:
        if self.simulator is not None:
            self.simulator.add_code(code)

    async def stop(self) -> None:
        if self.simulator is not None:
            await self.simulator.stop()   # stays referenced: its trade history is still readable
