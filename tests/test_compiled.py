"""The compiled build (``RTPROTO_COMPILE=1``: the session core's modules through mypyc) is a
wheel of its own that passes the same tests as the pure-Python code."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import rtproto.session

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ("core", "history", "playback", "sequencer")
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation")
#: The session core's own tests and the main ones that drive it (the whole suite passed on
#: this build too, run by hand once).
SESSION_TESTS = (
    "tests/test_session.py",
    "tests/test_session_machine.py",
    "tests/test_history.py",
    "tests/test_playback.py",
    "tests/test_client_server.py",
    "tests/test_js_conformance.py",
    "tests/test_wire_websocket.py",
)


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled wheel, built from this tree and unpacked as a site folder."""
    out = tmp_path_factory.mktemp("compiled")
    build = subprocess.run(
        [*PIP_WHEEL, "-w", str(out), str(ROOT)],
        env={**os.environ, "RTPROTO_COMPILE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = out.glob("rtproto-*.whl")
    assert "-py3-none-any" not in wheel.name  # a platform wheel: it holds compiled code
    site = out / "site"
    zipfile.ZipFile(wheel).extractall(site)
    return site


def run_python(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # no coverage in the child (pytest-cov's COV_CORE_* variables): it cannot see compiled code
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE_")}
    env.update(PYTHONPATH=str(site), RTPROTO_EXPECT_COMPILED="1")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_session_core_is_compiled(compiled_site: Path) -> None:
    names = ", ".join(f"rtproto.session.{name}" for name in COMPILED)
    script = f"import {names}; print(*[m.__file__ for m in ({names})], sep=chr(10))"
    script += "; print(rtproto.session.COMPILED)"
    result = run_python(compiled_site, "-c", script)
    assert result.returncode == 0, result.stderr
    *files, flag = result.stdout.split()
    assert flag == "True" and not rtproto.session.COMPILED  # this process runs the .py core
    assert len(files) == len(COMPILED)
    for name, file in zip(COMPILED, files, strict=True):
        assert Path(file).parent == compiled_site / "rtproto" / "session"
        assert Path(file).name.startswith(f"{name}.") and file.endswith(".so"), file


def test_the_compiled_session_core_passes_the_session_tests(compiled_site: Path) -> None:
    result = run_python(
        compiled_site,
        *("-m", "pytest", "-x", "-p", "no:cacheprovider", "-m", "not pure_python"),
        *SESSION_TESTS,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_the_compiled_session_refuses_subclasses_and_new_attributes(compiled_site: Path) -> None:
    """What docs/session.md says differs in the compiled build."""
    script = """
from rtproto.session import ClientSession, SessionOptions
class Wrapped(ClientSession):
    pass
try:
    Wrapped(SessionOptions())
except TypeError as exc:
    print("subclass:", exc)
session = ClientSession(SessionOptions())
for name in ("receive", "note"):
    try:
        setattr(session, name, None)
    except AttributeError as exc:
        print(f"{name}:", exc)
"""
    result = run_python(compiled_site, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "subclass: interpreted classes cannot inherit from compiled",
        "receive: 'ClientSession' object attribute 'receive' is read-only",
        "note: 'ClientSession' object has no attribute 'note'",
    ]
