"""``kis-desk decode [FILE]``: raw KIS WebSocket frames in, JSON lines out.

Input: one raw message per line (FILE or stdin; trailing CR/LF stripped, blank lines skipped,
bytes decoded leniently like the live client). Output (stdout, UTF-8, ``ensure_ascii=False``),
one JSON object per line:

* each trade record (H0STCNT0/H0UNCNT0/H0NXCNT0): ``TradeRecord.to_dict()`` — ``tr_id``,
  ``stock_code``, ``timestamp`` (ISO 8601, ``+09:00``), ``price``, ``volume``, ``cum_volume``, …;
* each record of a TR we do not model: ``{"tr_id": …, "fields": [...]}``;
* a control reply: ``{"type": "control", "kind", "ok", "tr_id", "tr_key", "rt_cd", "msg_cd",
  "msg1", "encrypt", "has_key"}`` — the AES key/iv themselves are not printed, but they are
  remembered, so encrypted frames later in the same input decrypt (``--key`` adds more);
* a PINGPONG: ``{"type": "pingpong", "datetime": …}``.

A bad line, or a bad record inside a frame, prints ``line N: reason`` to stderr and processing
continues. Exit status: 0 all good, 1 some line/record failed, 2 the input could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any

from kis_desk.protocol.codec import decode_message
from kis_desk.protocol.messages import ControlReply, DataFrame, PingPong, ProtocolError

EXIT_OK, EXIT_BAD_INPUT, EXIT_UNREADABLE = 0, 1, 2


def control_to_dict(msg: ControlReply) -> dict[str, Any]:
    return {
        "type": "control", "kind": msg.kind.value, "ok": msg.ok, "tr_id": msg.tr_id,
        "tr_key": msg.tr_key, "rt_cd": msg.rt_cd, "msg_cd": msg.msg_cd, "msg1": msg.msg1,
        "encrypt": msg.encrypt, "has_key": msg.key is not None and msg.iv is not None,
    }


def _lines(stream: Iterable[bytes] | Iterable[str]) -> Iterator[bytes | str]:
    for line in stream:
        if isinstance(line, bytes):
            line = line.rstrip(b"\r\n")
        else:
            line = line.rstrip("\r\n")
        yield line


def decode_main(argv_file: str | None, stdin: IO[Any], stdout: IO[str], stderr: IO[str], *,
                keys: dict[str, tuple[str, str]] | None = None) -> int:
    """Decode FILE (or ``stdin``) line by line; see the module docstring for the formats."""
    keys = dict(keys or {})
    failed = False
    dumps = json.dumps
    try:
        if argv_file is not None:
            source: IO[Any] = open(argv_file, "rb")  # noqa: SIM115 - closed below
        else:
            source = getattr(stdin, "buffer", stdin)  # bytes when possible: lenient decoding
    except OSError as exc:
        print(f"kis-desk decode: cannot read {argv_file}: {exc.strerror or exc}", file=stderr)
        return EXIT_UNREADABLE
    try:
        for number, line in enumerate(_lines(source), start=1):
            if not line.strip():
                continue
            msg = decode_message(line, keys)
            if isinstance(msg, DataFrame):
                for rec in msg.records:
                    stdout.write(dumps(rec.to_dict(), ensure_ascii=False) + "\n")
                for err in msg.errors:
                    print(f"line {number}: {msg.tr_id}: {err}", file=stderr)
                    failed = True
            elif isinstance(msg, ControlReply):
                if msg.key is not None and msg.iv is not None and msg.tr_id:
                    keys[msg.tr_id] = (msg.key, msg.iv)
                stdout.write(dumps(control_to_dict(msg), ensure_ascii=False) + "\n")
            elif isinstance(msg, PingPong):
                stdout.write(dumps({"type": "pingpong", "datetime": msg.datetime_text}) + "\n")
            else:
                assert isinstance(msg, ProtocolError)
                print(f"line {number}: {msg.reason}", file=stderr)
                failed = True
    except OSError as exc:  # e.g. EIO while reading, or a directory given as FILE
        print(f"kis-desk decode: cannot read {argv_file or '<stdin>'}: {exc.strerror or exc}", file=stderr)
        return EXIT_UNREADABLE
    finally:
        if argv_file is not None:
            source.close()
    return EXIT_BAD_INPUT if failed else EXIT_OK


def _key_arg(text: str) -> tuple[str, str, str]:
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError("expected TR_ID:KEY:IV (32-char key, 16-char iv from the ack)")
    return parts[0], parts[1], parts[2]


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help="raw frames, one per line (default: stdin)")
    parser.add_argument("--key", action="append", type=_key_arg, default=[], metavar="TR_ID:KEY:IV",
                        help="AES key/iv for an encrypted TR (acks in the input are used as well)")


def run(args: argparse.Namespace) -> int:
    """Entry point for the ``decode`` subcommand (args from :func:`add_decode_arguments`)."""
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")  # JSON lines are UTF-8 whatever the locale says
    keys = {tr: (key, iv) for tr, key, iv in getattr(args, "key", [])}
    try:
        return decode_main(args.file, sys.stdin, out, sys.stderr, keys=keys)
    except BrokenPipeError:  # `kis-desk decode x | head`: stop quietly (Python docs' recipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kis-desk decode", description=__doc__.split("\n\n")[0])
    add_decode_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
