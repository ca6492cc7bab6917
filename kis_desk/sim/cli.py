"""``kis-desk sim``: serve the simulator until interrupted (the lead wires it into kis_desk.cli)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from ..aio import on_stop_signals
from ..config import parse_codes
from .config import DEMO_SPIKES, DEMO_VI, SimConfig
from .server import Simulator
from .universe import DEFAULT_CODES


def add_sim_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``sim`` subcommand."""
    parser.add_argument("--ws-port", type=int, default=21000, help="WebSocket port (0 = any free port)")
    parser.add_argument("--rest-port", type=int, default=9443, help="REST port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--rate", type=float, default=200.0, help="trades per second across all symbols")
    parser.add_argument("--codes", default="", help="comma-separated codes that trade from the start "
                                                    "(default: ~50 large KOSPI names)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=("real", "mock"), default="real",
                        help="REST rate limit: real 20/s, mock 2/s per app key")
    parser.add_argument("--market-hours", action="store_true",
                        help="follow the session table: KRX 08:30-18:00 with auctions as single "
                             "prints, NXT 08:00-20:00 on trading days (default: always open)")
    parser.add_argument("--ping-interval", type=float, default=30.0)
    parser.add_argument("--pong-timeout", type=float, default=100.0)
    parser.add_argument("--app-key", action="append", default=[], metavar="KEY:SECRET",
                        help="accepted app key and secret (repeatable; default: accept any)")
    parser.add_argument("--extra-field", action="store_true",
                        help="append a 47th field to every H0STCNT0 record (mock-server variant)")
    parser.add_argument("--no-spikes", action="store_true",
                        help="no news-like ±5.5-9%% spikes (default: the first after 60-90 s, "
                             "then every few minutes)")
    parser.add_argument("--no-vi", action="store_true",
                        help="no VI auctions (default: a move beyond the static ±10%% or dynamic "
                             "±3%%/6%% band pauses the symbol 2 minutes, then one auction print)")
    parser.add_argument("--krx-only", action="store_true",
                        help="no Nextrade trades (default: NXT-eligible symbols trade on both venues)")


async def run_simulator_cli(ws_port: int, rest_port: int, rate: float, codes: Sequence[str] | None = None,
                            *, host: str = "127.0.0.1", seed: int = 1, mode: str = "real",
                            always_open: bool = True, ping_interval: float = 30.0,
                            pong_timeout: float = 100.0, app_keys: dict[str, str] | None = None,
                            extra_fields: tuple[str, ...] = (), spikes: bool = True,
                            vi: bool = True, nxt: bool = True,
                            stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), printing the two URLs first."""
    cfg = SimConfig(host=host, ws_port=ws_port, rest_port=rest_port, rate=rate,
                    codes=tuple(codes) if codes else DEFAULT_CODES, seed=seed, mode=mode,
                    always_open=always_open, ping_interval=ping_interval, pong_timeout=pong_timeout,
                    app_keys=app_keys, extra_fields=extra_fields,
                    spikes=DEMO_SPIKES if spikes else None, vi=DEMO_VI if vi else None, nxt=nxt)
    stop = stop or asyncio.Event()
    undo_signals = on_stop_signals(asyncio.get_running_loop(), stop.set)   # Windows too
    try:
        async with Simulator(cfg) as sim:
            print(f"WebSocket: {sim.ws_url}", flush=True)
            print(f"REST:      {sim.rest_url}", flush=True)
            await stop.wait()
    finally:
        undo_signals()


def sim_main(args: argparse.Namespace) -> int:
    """Entry point of ``kis-desk sim``; returns the process exit code."""
    try:
        codes = parse_codes(args.codes) if args.codes else None
    except ValueError as exc:
        print(f"kis-desk sim: {exc}", file=sys.stderr)
        return 2
    app_keys: dict[str, str] | None = None
    if args.app_key:
        app_keys = {}
        for item in args.app_key:
            key, sep, secret = item.partition(":")
            if not sep or not key or not secret:
                print("kis-desk sim: --app-key expects KEY:SECRET", file=sys.stderr)
                return 2
            app_keys[key] = secret
    try:
        asyncio.run(run_simulator_cli(
            args.ws_port, args.rest_port, args.rate, codes, host=args.host, seed=args.seed,
            mode=args.mode, always_open=not args.market_hours, ping_interval=args.ping_interval,
            pong_timeout=args.pong_timeout, app_keys=app_keys,
            extra_fields=("2",) if args.extra_field else (), spikes=not args.no_spikes,
            vi=not args.no_vi, nxt=not args.krx_only))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"kis-desk sim: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kis_desk.sim`` (standalone, without the main CLI)."""
    parser = argparse.ArgumentParser(prog="kis-desk sim", description="KIS-compatible market simulator")
    add_sim_arguments(parser)
    return sim_main(parser.parse_args(argv))


__all__ = ["add_sim_arguments", "main", "run_simulator_cli", "sim_main"]
