"""Test-wide settings: on CI, hypothesis explores the same examples every run (no flakes);
elsewhere it explores new ones each time. With ``RTPROTO_EXPECT_COMPILED=1`` (set by
tests/test_compiled.py), the run stops at once unless the session core is the compiled one."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

if os.environ.get("RTPROTO_EXPECT_COMPILED") == "1":
    from rtproto import session

    if not session.COMPILED:
        raise RuntimeError(f"expected the compiled session core, imported {session.core.__file__}")
