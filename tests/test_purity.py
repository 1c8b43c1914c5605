"""The pure core does no I/O and reads no clock: checked on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "src" / "rtproto"
FORBIDDEN_MODULES = {
    "socket",
    "ssl",
    "asyncio",
    "anyio",
    "trio",
    "threading",
    "selectors",
    "subprocess",
}
FORBIDDEN_CALLS = {("time", name) for name in ("time", "monotonic", "sleep", "perf_counter")}


def _core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def violations(source: str) -> list[str]:
    """Every forbidden import or clock call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "time":
                names += [f"time.{a.name}" for a in node.names]
        else:
            names = []
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: import {name}")
            if tuple(name.split(".")) in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: import {name}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            value = node.func.value
            if isinstance(value, ast.Name) and (value.id, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: call {value.id}.{node.func.attr}()")
    return found


def test_core_has_modules() -> None:
    assert len(_core_modules()) >= 5


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_is_pure(path: Path) -> None:
    assert violations(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import asyncio.events",
        "from trio import sleep",
        "from anyio.abc import TaskGroup",
        "import threading as t",
        "import ssl, json",
        "import subprocess",
        "import selectors",
        "import time\ntime.monotonic()",
        "import time\ntime.sleep(1)",
        "from time import perf_counter",
    ],
)
def test_checker_catches(source: str) -> None:
    assert violations(source)


def test_checker_allows_pure_code() -> None:
    assert violations("import json\nfrom .errors import X\nimport numpy as np\n") == []
