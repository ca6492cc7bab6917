"""``kis-desk sessions`` and ``kis-desk symbols``: the session table and the symbol lists.

Registered on the main parser by :func:`add_market_commands`; :func:`run_market_command` runs
one (``None`` when the command is not one of these).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import Any, TextIO

COMMANDS = ("sessions", "symbols")


def add_market_commands(sub: Any) -> None:
    """Add ``sessions`` and ``symbols`` to the main parser's subparsers."""
    from ..market.sessions import VENUES

    sessions = sub.add_parser("sessions", help="print a trading day's sessions (from the session table)")
    sessions.add_argument("date", nargs="?", default=None,
                          help="YYYY-MM-DD (default: today in KST)")
    sessions.add_argument("--venue", choices=VENUES, default="krx",
                          help="krx (default), nxt, or total (either venue trades)")
    sessions.add_argument("--json", action="store_true", help="print JSON instead of a table")

    symbols = sub.add_parser("symbols", help="symbol lists: update from the KIS master files, search")
    ssub = symbols.add_subparsers(dest="symbols_command", metavar="ACTION", required=True)
    update = ssub.add_parser("update", help="download the KIS master files (at most once a day)")
    update.add_argument("--force", action="store_true", help="download even if done today")
    update.add_argument("--url", default=None,
                        help="master-file base URL (default: KIS_DESK_MASTER_URL, the setting, or KIS's)")
    search = ssub.add_parser("search", help="find symbols by code, Korean/English name or 초성")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status = ssub.add_parser("status", help="which symbol list is in use and from when")
    status.add_argument("--json", action="store_true")


def run_market_command(args: argparse.Namespace, out: TextIO | None = None) -> int | None:
    out = out or sys.stdout
    if args.command == "sessions":
        return sessions_main(args, out)
    if args.command == "symbols":
        return symbols_main(args, out)
    return None


# -- sessions --------------------------------------------------------------------------------

def _parse_day(text: str | None) -> date:
    from ..protocol.records import KST

    if not text or text == "today":
        return datetime.now(KST).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date must be YYYY-MM-DD, not {text!r}") from None


def sessions_report(day: date, venue: str) -> dict[str, Any]:
    """Everything ``kis-desk sessions`` prints, as data."""
    from ..market.calendar import default_calendar
    from ..protocol.records import KST

    cal = default_calendar()
    plan = cal.day_plan(day, venue)
    report = plan.as_dict()
    report["phases"] = [{"from": at.time().isoformat(), "phase": p.value, "trading": p.trading}
                        for at, p in cal.phases(day, venue)]
    midnight = datetime(day.year, day.month, day.day, tzinfo=KST)
    report["next_open"] = cal.next_open(midnight, venue).isoformat() if not plan.sessions else None
    report["announced"] = [{"venue": s.venue, "label": s.label} for s in cal.table.announced]
    return report


def sessions_main(args: argparse.Namespace, out: TextIO) -> int:
    try:
        day = _parse_day(args.date)
        report = sessions_report(day, args.venue)
    except (ValueError, RuntimeError) as exc:
        print(f"kis-desk sessions: {exc}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0
    d = date.fromisoformat(report["date"])
    out.write(f"{d:%Y-%m-%d (%a)}  venue {report['venue']}: {report['description']}\n")
    if not report["sessions"]:
        out.write("  no trading" + (f"; next open {report['next_open'][:16].replace('T', ' ')} KST"
                                    if report["next_open"] else "") + "\n")
    else:
        out.write(f"  {'start':<9} {'end':<9} {'venue':<6} {'session':<16} phase\n")
        for s in report["sessions"]:
            note = f"  ({s['note']})" if s.get("note") else ""
            out.write(f"  {s['start']:<9} {s['end']:<9} {s['venue']:<6} {s['kind'].replace('_', '-'):<16} "
                      f"{s['phase']}{note}\n")
        out.write("  phases: " + " · ".join(f"{p['from'][:8]} {p['phase']}" for p in report["phases"]) + "\n")
    for a in report["announced"]:
        out.write(f"  announced, not in force: {a['venue']} — {a['label']}\n")
    return 0


# -- symbols ---------------------------------------------------------------------------------

def _symbol_row(s: Any) -> dict[str, Any]:
    return {"code": s.code, "name_ko": s.name_ko, "name_en": s.name_en, "market": s.market,
            "kind": s.kind, "nxt": s.nxt, "halted": s.halted, "warning": s.warning,
            "administrative": s.administrative}


def symbols_main(args: argparse.Namespace, out: TextIO) -> int:
    from ..market.symbols import default_directory

    if args.symbols_command == "update":
        from ..market.master_update import update_master
        from ..settings import SettingsStore

        setting = SettingsStore().load().master_url
        result = update_master(base_url=args.url or setting, force=args.force)
        default_directory.cache_clear()
        out.write(result.message + "\n")
        out.write(f"in use: {result.status.text}\n")
        return 0 if (result.fetched or result.skipped) else 1
    directory = default_directory()
    if args.symbols_command == "status":
        if args.json:
            json.dump(directory.status.as_dict(), out, ensure_ascii=False, indent=1)
            out.write("\n")
        else:
            out.write(directory.status.text + "\n")
        return 0
    results = directory.search(args.query, limit=args.limit)
    if args.json:
        json.dump({"query": args.query, "status": directory.status.as_dict(),
                   "results": [_symbol_row(s) for s in results]}, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0 if results else 1
    if not results:
        out.write(f"no symbol matches {args.query!r} ({directory.status.text})\n")
        return 1
    for s in results:
        flags = [f for f, on in (("ETF", s.kind == "etf"), ("ETN", s.kind == "etn"), ("NXT", s.nxt),
                                 ("halted", s.halted), (s.warning, bool(s.warning)),
                                 ("administrative", s.administrative)) if on]
        out.write(f"{s.code:<8} {s.name_ko}  {s.name_en}  [{s.market}{' ' + ' '.join(flags) if flags else ''}]\n")
    return 0
