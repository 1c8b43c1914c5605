"""``rtproto call``: the main job. One voice turn, against the embedded emulator by default.

With no ``--url`` it starts the emulator in-process on a free port and talks to it; with
``--url`` (and ``OPENAI_API_KEY``) the same command talks to the real service. The I/O lives
in :mod:`rtproto.adapters.call`, imported when the command runs.
"""

from __future__ import annotations

import argparse
import importlib

from .main import Command, UsageError

__all__ = ["COMMAND", "add_arguments", "run"]

DRIVERS = ("asyncio", "trio", "thread")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``call`` options."""
    parser.add_argument("--url", help="a Realtime WebSocket URL (default: the embedded emulator)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="FILE.wav", help="speech to send (default: a demo)")
    source.add_argument("--text", help="send this text message instead of audio")
    parser.add_argument("--output", metavar="FILE.wav", default="reply.wav", help="the reply")
    parser.add_argument("--driver", choices=DRIVERS, default="asyncio")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--json", action="store_true", help="print events as JSON lines")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the reply")
    parser.add_argument(
        "--fast", action="store_true", help="send the input as fast as possible, not in real time"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace) -> int:
    """Run one call; the exit code says how it went (0, 2 usage, 3 connection, 4 server)."""
    if args.timeout <= 0:
        raise UsageError("rtproto call: error: --timeout must be positive")
    driver = importlib.import_module("rtproto.adapters.call")
    code: int = driver.run_command(args)
    return code


COMMAND = Command(
    "call",
    "one voice turn against the embedded emulator (or --url): the main job",
    add_arguments,
    run,
    description=__doc__,
)
