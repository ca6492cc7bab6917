"""Composition root: builds the engine with what it needs (the built-in simulator, when asked).

The engine never imports the simulator; the entry points (``kis-desk`` app, ``collect``,
self-check, benchmarks and tests) build collectors here.
"""

from __future__ import annotations

from .core.events import EventBus
from .engine.collector import Collector, CollectorConfig


def build_collector(config: CollectorConfig, bus: EventBus | None = None) -> Collector:
    """A collector; with ``config.embedded_sim`` it gets its own in-process simulator."""
    exchange = None
    if config.embedded_sim:
        from .sim.embedded import EmbeddedSimulator

        exchange = EmbeddedSimulator(config.sim_rate, config.sim_keys, config.sim_jumps,
                                     spikes=config.sim_spikes)
    return Collector(config, bus=bus, exchange=exchange)
