"""rtproto's Cloudflare driver in Pyodide, the Python runtime of Python Workers.

``tests/interop/cloudflare`` is a lock-filed Node project (``pyodide`` 314.0.8, CPython 3.14
compiled to WebAssembly; ``ws``; ``workerd``). ``pyodide_run.mjs`` loads Pyodide under Node,
installs rtproto's source and its dependencies' Pyodide wheels (downloaded from PyPI, pinned
in ``pyodide-requirements.txt``), and runs ``worker_turn.py`` there: the code of a Python
Worker, unchanged. Its driver calls ``js.fetch`` with the upgrade request, accepts the socket
and talks to the emulator through Pyodide's JavaScript proxies, the code path of a real
Worker. ``fetch`` itself is ``workers_fetch.mjs``, a Workers-style fetch over the ``ws``
package (events held until ``accept()`` and delivered from the event loop).

``js_cloudflare.mjs`` runs OpenAI's own Cloudflare transport (``@openai/agents-extensions``,
from ``tests/interop/twilio``) through the same fetch: a check of that fetch against code
written for workerd, and of our upgrade request against the JS transport's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

import rtproto
from rtproto.wire import WebSocketOptions
from rtproto.wire.cloudflare import plan_fetch_upgrade

from .test_js_interop import _install_lock, node_with
from .test_twilio_conformance import PROJECT as JS_EXTENSIONS

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


def check_turn_report(report: dict[str, Any]) -> None:
    """What worker_turn.py reports of its turn, wherever it ran."""
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
    # the server closing first: its close code, once the error event was read
    assert report["wrong_key"] == {"errors": 1, "close_code": 3000}


def test_a_python_worker_runs_a_turn_in_pyodide(emulator: RunningServer) -> None:
    report = run_in_pyodide(
        "worker_turn.py", {"url": emulator.url + "?model=gpt-realtime", "key": KEY}
    )
    check_turn_report(report)
    # what was fetched: the plan's request, ws:// as http://
    plain, keyed, wrong = report["requests"]
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
    assert wrong["headers"]["Authorization"] == f"Bearer {KEY}-wrong"


def test_the_js_transport_asks_for_the_same_upgrade(emulator: RunningServer) -> None:
    node_with(JS_EXTENSIONS)
    node = node_with(PROJECT)
    url = emulator.url + "?model=gpt-realtime"
    done = subprocess.run(
        [node, str(PROJECT / "js_cloudflare.mjs"), url, KEY],
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
    )
    assert done.returncode == 0, f"node failed ({done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # the JS transport ran its text turn through workers_fetch.mjs, as it runs in workerd
    assert report["status"] == "connected"
    assert report["events"][-2:] == ["turn_done", "connection_change"]
    assert report["refused"].startswith("Failed to upgrade websocket: 404 {")
    # and asked for what rtproto asks for, but for the SDK's own name
    identity = {"user-agent", "x-openai-agents-sdk"}
    theirs = report["requests"][-1]
    ours = plan_fetch_upgrade(WebSocketOptions(url=url, api_key=KEY))
    assert theirs["url"] == ours.url and theirs["method"] == ours.method
    assert {
        (name.lower(), value)
        for name, value in theirs["headers"].items()
        if name.lower() not in identity
    } == {(name.lower(), value) for name, value in ours.headers if name.lower() not in identity}


# ---------------------------------------------------------------------------------- workerd --


def site_zip(path: Path) -> Path:
    """rtproto's source (``src/adapters`` as ``rtproto/adapters``) and the unpacked Pyodide
    wheels, as one zip to extract into site-packages."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as site:
        for wheel in sorted(pyodide_wheels().glob("*.whl")):
            with zipfile.ZipFile(wheel) as source:
                for info in source.infolist():
                    site.writestr(info.filename, source.read(info))
        for folder, package in (("rtproto", "rtproto"), ("adapters", "rtproto/adapters")):
            for file in sorted((ROOT / "src" / folder).rglob("*")):
                relative = file.relative_to(ROOT / "src" / folder)
                if file.is_file() and "__pycache__" not in relative.parts:
                    site.write(file, f"{package}/{relative.as_posix()}")
    return path


WORKERD_CONFIG = """using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:{port}", http = (), service = "main") ],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "pyodide.mjs", esModule = embed "pyodide.mjs"),
    (name = "pyodide.asm.mjs", esModule = embed "pyodide.asm.mjs"),
    (name = "pyodide.asm.wasm", wasm = embed "pyodide.asm.wasm"),
    (name = "python_stdlib.zip", data = embed "python_stdlib.zip"),
    (name = "pyodide-lock.json", json = embed "pyodide-lock.json"),
    (name = "site.zip", data = embed "site.zip"),
    (name = "scenario.py", text = embed "scenario.py"),
  ],
  bindings = [ (name = "UNSAFE_EVAL", unsafeEval = void) ],
  compatibilityDate = "2025-06-01",
  globalOutbound = "internet",
);
"""
#: Seconds for workerd to listen; a first request loads Pyodide (about 3 s here).
WORKERD_START = 30.0
WORKERD_REQUEST = 120.0


@pytest.fixture(scope="module")
def workerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """workerd serving workerd_worker.mjs with worker_turn.py as its scenario; its URL."""
    node_with(PROJECT)
    binary = PROJECT / "node_modules" / ".bin" / "workerd"
    folder = tmp_path_factory.mktemp("workerd")
    pyodide = PROJECT / "node_modules" / "pyodide"
    for name in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip"):
        shutil.copyfile(pyodide / name, folder / name)
    shutil.copyfile(pyodide / "pyodide-lock.json", folder / "pyodide-lock.json")
    shutil.copyfile(PROJECT / "workerd_worker.mjs", folder / "worker.mjs")
    shutil.copyfile(PROJECT / "worker_turn.py", folder / "scenario.py")
    site_zip(folder / "site.zip")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (folder / "config.capnp").write_text(WORKERD_CONFIG.replace("{port}", str(port)))
    log = (folder / "workerd.log").open("w")
    process = subprocess.Popen(
        [str(binary), "serve", "config.capnp", "--experimental"],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + WORKERD_START
        while True:
            assert process.poll() is None, (folder / "workerd.log").read_text()[-4000:]
            with socket.socket() as client, contextlib.suppress(OSError):
                client.connect(("127.0.0.1", port))
                break
            assert time.monotonic() < deadline, "workerd did not listen"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def test_a_python_worker_runs_a_turn_in_workerd(emulator: RunningServer, workerd: str) -> None:
    """The same Python Worker code inside workerd: its real ``fetch`` upgrade, its real
    accepted ``WebSocket``, against the emulator on 127.0.0.1."""
    args = {"url": emulator.url + "?model=gpt-realtime", "key": KEY}
    query = urllib.parse.urlencode({"args": json.dumps(args)})
    try:
        with urllib.request.urlopen(f"{workerd}?{query}", timeout=WORKERD_REQUEST) as response:
            body = response.read().decode()
    except urllib.error.HTTPError as exc:  # the worker's 500 carries the stack
        pytest.fail(f"the worker failed: {exc.read().decode()[-4000:]}")
    check_turn_report(json.loads(body))
