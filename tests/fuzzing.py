"""Load the scripts of ``fuzz/`` (not a package) for the tests that replay their corpora."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"


def load_fuzz_module(stem: str) -> ModuleType:
    """The module ``fuzz/<stem>.py``, imported as ``rtproto_<stem>``."""
    spec = importlib.util.spec_from_file_location(f"rtproto_{stem}", FUZZ / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_harness(name: str) -> ModuleType:
    """The harness ``fuzz/fuzz_<name>.py``."""
    return load_fuzz_module(f"fuzz_{name}")
