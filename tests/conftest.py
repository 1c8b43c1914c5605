"""Test-wide settings: on CI, hypothesis explores the same examples every run (no flakes);
elsewhere it explores new ones each time."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
