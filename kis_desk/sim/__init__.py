"""Built-in KIS-compatible simulator: WebSocket + REST on loopback, a believable KRX market.

Demo mode, the tests and the benchmarks all run against it.
"""

from .cli import add_sim_arguments, run_simulator_cli, sim_main
from .config import DEMO_SPIKES, DEMO_VI, HaltSpec, JumpSpec, SimConfig, SpikeSpec, ViSpec
from .faults import Faults
from .server import Simulator
from .spikes import Move
from .tape import SimTrade
from .vi import HaltEvent, ViEvent

__all__ = ["DEMO_SPIKES", "DEMO_VI", "Faults", "HaltEvent", "HaltSpec", "JumpSpec", "Move",
           "SimConfig", "SimTrade", "Simulator", "SpikeSpec", "ViEvent", "ViSpec",
           "add_sim_arguments", "run_simulator_cli", "sim_main"]
