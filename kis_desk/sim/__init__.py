"""Built-in KIS-compatible simulator: WebSocket + REST on loopback, a believable KRX market.

Demo mode, the tests and the benchmarks all run against it.
"""

from .cli import add_sim_arguments, run_simulator_cli, sim_main
from .config import JumpSpec, SimConfig
from .market import SimTrade
from .server import Faults, Simulator

__all__ = ["Faults", "JumpSpec", "SimConfig", "SimTrade", "Simulator", "add_sim_arguments",
           "run_simulator_cli", "sim_main"]
