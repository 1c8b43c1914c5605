"""Test-wide settings: on CI, hypothesis explores the same examples every run (no flakes);
elsewhere it explores new ones each time. With ``RTPROTO_EXPECT_COMPILED=1`` (set by
tests/test_compiled.py), the run stops at once unless the session core is the compiled one.
A command run in-process (``rtproto serve``) sets up its loggers; each test gets them back
as they were, so no later test logs to a stream pytest has closed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

_COMMAND_LOGGERS = ("rtproto.server", "rtproto.adapters")


@pytest.fixture(autouse=True)
def _restore_command_loggers() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _COMMAND_LOGGERS]
    saved = [(lg, lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    yield
    for logger, handlers, propagate, level in saved:
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

if os.environ.get("RTPROTO_EXPECT_COMPILED") == "1":
    from rtproto import session

    if not session.COMPILED:
        raise RuntimeError(f"expected the compiled session core, imported {session.core.__file__}")
