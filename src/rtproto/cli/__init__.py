"""The ``rtproto`` command line: argument parsing and output formatting only.

:mod:`rtproto.cli.main` dispatches subcommands; every module of this package that defines a
module-level ``COMMAND`` (a :class:`~rtproto.cli.main.Command`) is one. The I/O of a command
(sockets, event loops, signals, files) lives in :mod:`rtproto.adapters` and is imported
lazily by the command's ``run``, so that this package stays as pure as the rest of
``rtproto``.
"""

from __future__ import annotations

from .main import Command, UsageError

__all__ = ["Command", "UsageError"]
