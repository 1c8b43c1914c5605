"""``rtproto <command> ...``: finds the subcommands and dispatches to one.

A subcommand is a module of :mod:`rtproto.cli` with a module-level ``COMMAND``::

    # rtproto/cli/hello.py
    from .main import Command

    def add_arguments(parser): parser.add_argument("--name", default="world")
    def run(args): print(f"hello {args.name}"); return 0

    COMMAND = Command("hello", "say hello", add_arguments, run)

Nothing else has to change: :func:`commands` discovers it. ``run`` returns the exit code;
it raises :class:`UsageError` for a bad combination of arguments, which ends the program
with one line on stderr and exit code 2, like argparse's own errors (reported here in one
line too, without the usage block).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

__all__ = ["EXIT_USAGE", "Command", "UsageError", "build_parser", "commands", "main"]

#: The exit code of a usage error.
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line is wrong; the message is the one line shown to the user."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, its arguments, and what it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    #: A longer description for ``rtproto <name> --help``.
    description: str | None = None


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors by raising :class:`UsageError` (one line, no usage)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def commands() -> dict[str, Command]:
    """Every subcommand of :mod:`rtproto.cli`, by name (modules defining ``COMMAND``)."""
    package = importlib.import_module(__package__ or "rtproto.cli")
    found: dict[str, Command] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        command = getattr(module, "COMMAND", None)
        if isinstance(command, Command):
            found[command.name] = command
    return found


def build_parser(available: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    """The ``rtproto`` parser with one subparser per command."""
    from .. import __version__

    available = commands() if available is None else available
    parser = _Parser(
        prog="rtproto",
        description="rtproto: the OpenAI Realtime protocol, sans-I/O, with drivers and an "
        "emulator.",
    )
    parser.add_argument("--version", action="version", version=f"rtproto {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command in sorted(available.items()):
        child = sub.add_parser(
            name, help=command.help, description=command.description or command.help
        )
        command.add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (``argv`` without the program name); return the exit code."""
    available = commands()
    parser = build_parser(available)
    arguments = list(sys.argv[1:] if argv is None else argv)
    prog = "rtproto"
    try:
        args = parser.parse_args(arguments)
        name = args.command
        if name is None:
            names = ", ".join(sorted(available)) or "none"
            raise UsageError(f"rtproto: error: give a command ({names}); see rtproto --help")
        prog = f"rtproto {name}"
        return available[name].run(args)
    except UsageError as exc:
        message = str(exc)
        if not message.startswith("rtproto"):
            message = f"{prog}: error: {message}"
        print(message.replace("\n", " "), file=sys.stderr)
        return EXIT_USAGE
