"""``kis-desk`` command line: the desktop app (default) and the headless tools.

Subcommand modules are imported lazily so headless commands never load Qt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

ENV_CHOICES = ("sim", "mock", "real")


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by the desktop app and ``collect``."""
    p.add_argument("--env", choices=ENV_CHOICES, default=None,
                   help="sim (built-in simulator, default), mock (KIS paper trading) or real")
    p.add_argument("--ws-url", help="WebSocket URL of any KIS-compatible server (with --rest-url)")
    p.add_argument("--rest-url", help="REST base URL of any KIS-compatible server (with --ws-url)")
    p.add_argument("--venue", metavar="{krx,nxt,total}", default=None,
                   help="whose trades: krx (KRX only, H0STCNT0), nxt (Nextrade, H0NXCNT0) or total "
                        "(KRX + NXT integrated, H0UNCNT0; the default). A server that does not "
                        "offer NXT/integrated trades (KIS paper trading) is said so once and the "
                        "run falls back to krx")
    p.add_argument("--codes", help="comma-separated stock codes, e.g. 005930,000660")
    p.add_argument("--watchlist", help="name of a stored watchlist to use")
    p.add_argument("--db", metavar="URL", help="database URL (default: SQLite in the user data directory)")
    p.add_argument("--redis", metavar="URL", help="Redis URL for alert events (redis:// or rediss://)")
    p.add_argument("--redis-channel", default=None, help="Redis channel for alerts (default kis:alerts)")
    p.add_argument("--redis-ticks", metavar="CHANNEL", default=None,
                   help="also publish every trade on this Redis pub/sub channel (best effort; with "
                        "--attach: read trades and alerts from pub/sub channels instead of streams)")
    p.add_argument("--redis-stream", metavar="STREAM", default=None,
                   help="Redis stream for alerts (default kis:alerts:stream; XADDed next to the "
                        "channel, read by attached desktops)")
    p.add_argument("--redis-trades", metavar="STREAM", nargs="?", const="kis:trades:stream",
                   default=None,
                   help="XADD every trade to this Redis stream (default kis:trades:stream) for "
                        "attached desktops; with --attach: the stream to read")
    p.add_argument("--redis-retention", metavar="ENTRIES", type=int, default=None,
                   help="trade stream length kept (XADD MAXLEN ~; one entry per batch of ≤ 500 "
                        "trades, ≤ 20 entries/s per collector; default 6000 ≈ 5 minutes)")
    p.add_argument("--threshold", type=float, default=None, help="alert threshold in percent (default 5)")
    p.add_argument("--window", type=float, default=None, help="alert window in seconds (default 60)")
    p.add_argument("--sim-rate", type=float, default=None,
                   help="trades per second of the built-in simulator (default 200)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kis-desk",
        description="Desktop market monitor for the Korea Investment & Securities Open API. "
                    "Without a subcommand it opens the desktop app (on the built-in simulator "
                    "unless an account is configured).",
    )
    parser.add_argument("--version", action="version", version=f"kis-desk {__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="logging level")
    parser.add_argument("--self-check", action="store_true",
                        help="exercise the whole stack briefly (simulator, storage, detector, "
                             "main window offscreen), print a report and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    app = sub.add_parser("app", help="open the desktop app (the default)")
    add_engine_arguments(app)
    app.add_argument("--attach", action="store_true",
                     help="show collectors running elsewhere: live trades and alerts from the "
                          "Redis streams on --redis (--redis-trades, default kis:trades:stream; "
                          "--redis-stream, default kis:alerts:stream; resumes after reconnects), "
                          "history from the shared --db; no KIS connection of its own. With "
                          "--redis-ticks CHANNEL it subscribes to pub/sub channels instead")

    collect = sub.add_parser("collect", help="headless collector: stream, store, detect, publish")
    add_engine_arguments(collect)
    collect.add_argument("--duration", type=float, default=None,
                         help="stop after this many seconds (default: until SIGINT/SIGTERM)")
    collect.add_argument("--quiet", action="store_true", help="log warnings only")

    sim = sub.add_parser("sim", help="run the KIS-compatible simulator on loopback")
    from .sim.cli import add_sim_arguments
    add_sim_arguments(sim)

    decode = sub.add_parser("decode", help="decode captured KIS frames (one per line) to JSON")
    from .tools.decode import add_decode_arguments
    add_decode_arguments(decode)

    alerts = sub.add_parser("alerts", help="print live alert events from Redis, one JSON per line")
    from .tools.alerts import add_alerts_arguments
    add_alerts_arguments(alerts)

    from .tools.market_cli import add_market_commands   # sessions, symbols
    add_market_commands(sub)
    from .tools.export import add_export_command
    add_export_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command is None and not args.self_check:
        args = parser.parse_args([*argv, "app"])   # the desktop app is the default command
    from .config import UserPaths
    from .logs import setup_logging

    paths = UserPaths.default()
    command = args.command or "app"
    log_dir = None if command in ("decode", "alerts", "sessions", "symbols", "export") else paths.logs
    setup_logging("WARNING" if getattr(args, "quiet", False) else args.log_level, log_dir)

    if args.self_check:
        from .selfcheck import self_check_main
        return self_check_main()
    if command == "decode":
        from .tools.decode import run as decode_run
        return decode_run(args)
    if command == "alerts":
        import asyncio

        from .tools.alerts import alerts_main
        try:
            return asyncio.run(alerts_main(args))
        except KeyboardInterrupt:
            return 0
    from .tools.market_cli import COMMANDS as MARKET_COMMANDS, run_market_command
    if command in MARKET_COMMANDS:
        return run_market_command(args) or 0
    if command == "export":
        from .tools.export import run as export_run
        return export_run(args)
    if command == "sim":
        from .sim.cli import sim_main
        return sim_main(args)
    if command == "collect":
        from .headless import collect_main
        return collect_main(args)
    from .ui.app import app_main
    return app_main(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
