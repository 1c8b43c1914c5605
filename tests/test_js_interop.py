"""OpenAI's own JavaScript client against ``rtproto serve`` (in a thread), under Node.

``tests/interop`` is a small, lock-filed Node project: ``@openai/agents-realtime`` (the Agents
SDK's realtime package) pinned exactly, installed with ``npm ci``, and ``ws_turn.mjs``, which
drives the package's WebSocket transport, ``OpenAIRealtimeWebSocket``, through one text turn:
``connect()`` (socket open with a bearer key, then ``session.update`` from
``initialSessionConfig``), ``sendMessage()`` (``conversation.item.create`` then
``response.create``), the transport's ``audio``, ``audio_transcript_delta``, ``turn_done`` and
``error`` events, close. It prints one JSON line, checked here. Server events the package's
own schema refuses (the transport would drop them silently) are reported as
``schema_rejects``.

``node_modules`` is installed on first use (``npm ci``, when missing or older than the lock
file). Without ``node``/``npm`` on PATH the tests skip, except on CI (``CI`` set), where they
fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

INTEROP = Path(__file__).resolve().parent / "interop"
SCRIPT = INTEROP / "ws_turn.mjs"
NPM_CI_TIMEOUT = 180.0
#: ws_turn.mjs gives up after its own 15 s; this only catches a hung process.
NODE_TIMEOUT = 30.0
MIN_NODE = 20


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        message = f"{missing} not on PATH: the JavaScript interop tests need Node {MIN_NODE}+"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: they must run there)")
        pytest.skip(message)
    assert node is not None and npm is not None
    return node, npm


def _stale(project: Path) -> bool:
    """npm writes ``node_modules/.package-lock.json`` after every install: missing, or older
    than the project's lock file, means a stale ``node_modules``."""
    installed = project / "node_modules" / ".package-lock.json"
    if not installed.is_file():
        return True
    return any(
        (project / name).stat().st_mtime > installed.stat().st_mtime
        for name in ("package.json", "package-lock.json")
    )


@contextlib.contextmanager
def _install_lock(project: Path) -> Iterator[None]:
    """One ``npm ci`` at a time for a project (several pytest runs may share it)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    digest = hashlib.sha256(str(project).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"rtproto-js-interop-{digest}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def node_with(project: Path) -> str:
    """``node``, with the Node project's ``node_modules`` installed from its lock file
    (``npm ci``, when missing or stale); skips without Node, except on CI."""
    node, npm = _tools()
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    assert match and int(match.group(1)) >= MIN_NODE, f"Node {MIN_NODE}+ needed, got {version}"
    with _install_lock(project):
        if _stale(project):
            env = {**os.environ, "npm_config_update_notifier": "false"}
            try:
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=project,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=NPM_CI_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                pytest.fail(f"npm ci in {project} took more than {NPM_CI_TIMEOUT:.0f} s")
            if done.returncode != 0:
                pytest.fail(f"npm ci failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
            assert not _stale(project), "npm ci left no node_modules/.package-lock.json"
    return node


@pytest.fixture(scope="module")
def node() -> str:
    """``node``, with ``tests/interop/node_modules`` installed from the lock file."""
    return node_with(INTEROP)


def replay_named(node: str, script: Path, runs: list[dict[str, Any]], timeout: float) -> Any:
    """Run a replay script of a Node project: ``runs`` (each with a ``name``) as JSON on
    stdin, one JSON list of results (each with its ``name``) on stdout; by name."""
    try:
        done = subprocess.run(
            [node, str(script)],
            input=json.dumps(runs),
            cwd=script.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} hung for {timeout:.0f} s:\n{exc.stderr!r}")
    assert done.returncode == 0, f"{script.name} exit {done.returncode}\n{done.stderr}"
    return {result["name"]: result for result in json.loads(done.stdout)}


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with start_in_thread(ServerConfig()) as running:
        yield running


def _turn(node: str, url: str, *options: str) -> dict[str, Any]:
    """Run ws_turn.mjs; its one JSON line (it must exit 0)."""
    try:
        done = subprocess.run(
            [node, str(SCRIPT), url, *options],
            cwd=INTEROP,
            capture_output=True,
            text=True,
            timeout=NODE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"ws_turn.mjs hung for {NODE_TIMEOUT:.0f} s:\n{exc.stdout!r}\n{exc.stderr!r}")
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 1, (
        f"ws_turn.mjs exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    )
    summary: dict[str, Any] = json.loads(lines[0])
    return summary


def _check_turn(summary: dict[str, Any]) -> None:
    assert summary["errors"] == []
    assert summary["schema_rejects"] == []
    assert summary["connected"] is True
    assert summary["model"] == "gpt-realtime"
    # the transport's session.update went through: the server echoed it
    assert summary["events"]["session.updated"] >= 1
    assert summary["audio_chunks"] >= 1
    assert summary["audio_bytes"] > 0
    assert summary["audio_bytes"] % 2 == 0  # PCM16
    assert summary["audio_done"] is True
    assert summary["transcript"]
    done = summary["turn_done"]
    assert done["status"] == "completed"
    assert done["response_id"].startswith("resp_")
    assert done["output_items"] >= 1
    usage = done["usage"]
    assert usage["inputTokens"] > 0
    assert usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def test_text_turn(node: str, server: RunningServer) -> None:
    summary = _turn(node, server.url)
    _check_turn(summary)
    assert "Hello from Node" in summary["transcript"]  # the echo responder repeats the text
    assert summary["events"]["response.output_audio.delta"] == summary["audio_chunks"]
    assert summary["events"]["response.done"] == 1


def test_session_update_instructions_and_voice(node: str, server: RunningServer) -> None:
    instructions = "Answer in one short sentence."
    summary = _turn(node, server.url, "--instructions", instructions, "--voice", "marin")
    _check_turn(summary)  # no error event reached the client's `error` hook
    session = summary["session"]  # the last session.updated the client parsed
    assert session["instructions"] == instructions
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["model"] == "gpt-realtime"
