"""Composition root: builds the engine with what it needs (the built-in simulator, when asked).

The engine never imports the simulator; the entry points (``kis-desk`` app, ``collect``,
self-check, benchmarks and tests) build collectors here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .core.events import EventBus
from .core.exchange import EmbeddedExchange
from .engine.collector import Collector, CollectorConfig, kst_now


def build_collector(config: CollectorConfig, bus: EventBus | None = None, *,
                    clock: Callable[[], datetime] | None = None) -> Collector:
    """A collector; with ``config.embedded_sim`` it gets its own in-process simulator (and
    can build one later, when Settings switch it to the simulator). ``clock``: KST wall time
    for the collector and its simulator (tests run across midnight with a fake one)."""

    def simulator(cfg: CollectorConfig) -> EmbeddedExchange:
        from .sim.embedded import EmbeddedSimulator

        return EmbeddedSimulator(cfg.sim_rate, cfg.sim_keys, cfg.sim_jumps, spikes=cfg.sim_spikes,
                                 clock=clock, always_open=cfg.always_open is not False)

    exchange = simulator(config) if config.embedded_sim else None
    return Collector(config, bus=bus, exchange=exchange, exchange_factory=simulator,
                     clock=clock or kst_now)
