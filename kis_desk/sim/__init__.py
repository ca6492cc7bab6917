"""Built-in KIS-compatible simulator: WebSocket + REST on loopback, a believable KRX market.

Demo mode, the tests and the benchmarks all run against it.
"""

from .cli import add_sim_arguments, run_simulator_cli, sim_main
from .config import DEMO_SPIKES, JumpSpec, SimConfig, SpikeSpec
from .faults import Faults
from .market import SimTrade
from .server import Simulator
from .spikes import Move

__all__ = ["DEMO_SPIKES", "Faults", "JumpSpec", "Move", "SimConfig", "SimTrade", "Simulator",
           "SpikeSpec", "add_sim_arguments", "run_simulator_cli", "sim_main"]
