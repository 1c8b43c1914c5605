"""rtproto's Cloudflare driver in Pyodide, the Python runtime of Python Workers.

``tests/interop/cloudflare`` is a lock-filed Node project (``pyodide`` 314.0.8, CPython 3.14
compiled to WebAssembly; ``ws``; ``workerd``). ``pyodide_run.mjs`` loads Pyodide under Node,
installs rtproto's source and its dependencies' Pyodide wheels (downloaded from PyPI, pinned
in ``pyodide-requirements.txt``), and runs ``worker_turn.py`` there: the code of a Python
Worker, unchanged. Its driver calls ``js.fetch`` with the upgrade request, accepts the socket
and talks to the emulator through Pyodide's JavaScript proxies, the code path of a real
Worker. ``fetch`` itself is a Workers-style fetch over the ``ws`` package (events held until
``accept()``, nothing answers a close by itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

import rtproto

from .test_js_interop import _install_lock, node_with

ROOT = Path(__file__).resolve().parents[1]
PROJECT = Path(__file__).resolve().parent / "interop" / "cloudflare"
WHEELS = PROJECT / "wheels"
REQUIREMENTS = PROJECT / "pyodide-requirements.txt"
#: Pyodide's platform: the wheels must be built for it.
PLATFORM = ("pyemscripten_2026_0_wasm32", "3.14", "cp314")
KEY = "sk-test-cloudflare"
#: Loading Pyodide takes a few seconds; this only catches a hung process.
NODE_TIMEOUT = 120.0


def pyodide_wheels() -> Path:
    """The Pyodide wheels of ``pyodide-requirements.txt`` (downloaded once, from PyPI)."""
    stamp = WHEELS / ".requirements"
    wanted = REQUIREMENTS.read_text()
    with _install_lock(WHEELS):
        if stamp.is_file() and stamp.read_text() == wanted:
            return WHEELS
        WHEELS.mkdir(exist_ok=True)
        for old in WHEELS.glob("*.whl"):
            old.unlink()
        platform, version, abi = PLATFORM
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--only-binary=:all:", "--platform", platform, "--python-version", version),
                *("--implementation", "cp", "--abi", abi, "--abi", "none"),
                *("--dest", str(WHEELS), "-r", str(REQUIREMENTS)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            message = f"pip could not download the Pyodide wheels:\n{done.stderr[-2000:]}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        stamp.write_text(wanted)
    return WHEELS


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig(api_key=KEY)) as running:
        yield running


def run_in_pyodide(scenario: str, args: dict[str, Any]) -> dict[str, Any]:
    node = node_with(PROJECT)
    done = subprocess.run(
        [
            node,
            str(PROJECT / "pyodide_run.mjs"),
            str(ROOT / "src"),
            str(pyodide_wheels()),
            str(PROJECT / scenario),
            json.dumps(args),
        ],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )
    assert done.returncode == 0, f"node failed ({done.returncode}):\n{done.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_python_worker_runs_a_turn_in_pyodide(emulator: RunningServer) -> None:
    report = run_in_pyodide(
        "worker_turn.py", {"url": emulator.url + "?model=gpt-realtime", "key": KEY}
    )
    assert report["platform"] == "emscripten" and report["python"].startswith("3.14")
    # no key: the upgrade is refused, and the error carries the server's JSON message
    assert report["refused"]["status"] == 401
    assert "provide an API key" in report["refused"]["message"]
    # with the key: a whole text turn, every server event in order, then a clean close
    events = report["events"]
    assert events[:4] == [
        "connection_change",
        "connection_change",
        "SessionCreated",
        "SessionUpdated",
    ]
    assert events[-3:] == ["ResponseDone", "usage_update", "turn_done"]
    assert report["text"] == "You said: Hello from a Worker"
    assert report["history"] == ["message:user", "message:assistant"]
    assert report["usage"] > 0
    assert report["close_code"] == 1000 and report["after_close"] == ["connection_change"]
    # what was fetched: the plan's request, ws:// as http://
    plain, keyed = report["requests"]
    url = emulator.url.replace("ws://", "http://") + "?model=gpt-realtime"
    assert plain == {
        "url": url,
        "method": "GET",
        "headers": {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Protocol": "realtime",
            "User-Agent": f"rtproto/{rtproto.__version__}",
        },
    }
    assert keyed["headers"]["Authorization"] == f"Bearer {KEY}"
