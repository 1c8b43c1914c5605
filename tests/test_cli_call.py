"""``rtproto call`` tried as a new user would: real processes, real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from rtproto.adapters.server import ServerConfig, start_in_thread


def call(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtproto", "call", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_the_main_job_on_the_embedded_emulator(tmp_path: Path) -> None:
    reply = tmp_path / "reply.wav"
    done = call("--fast", "--output", str(reply))
    assert done.returncode == 0, done.stderr
    assert "emulator listening on ws://127.0.0.1:" in done.stderr
    assert "speech started" in done.stderr and "speech stopped" in done.stderr
    assert "Traceback" not in done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("reply: ") and f"written to {reply}" in summary
    with wave.open(str(reply)) as wav:  # a playable WAV
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() > 24000 // 2


@pytest.mark.parametrize("driver", ["trio", "thread"])
def test_other_drivers(tmp_path: Path, driver: str) -> None:
    done = call("--fast", "--driver", driver, "--output", str(tmp_path / "r.wav"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "r.wav").stat().st_size > 44


def test_json_lines(tmp_path: Path) -> None:
    done = call("--text", "Hello there", "--json", "--output", str(tmp_path / "r.wav"))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {
        "event": "connection_change",
        "status": "connecting",
        "reason": None,
        "code": None,
    }
    kinds = {line.get("event") or line["server_event"]["type"] for line in lines}
    assert {"audio", "turn_done", "session.created", "response.done"} <= kinds


def test_unreachable_server_fails_fast_with_one_line() -> None:
    done = call("--url", "ws://127.0.0.1:1", timeout=30)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("rtproto call: ")
    assert "Traceback" not in done.stderr


def test_unreadable_input_is_a_usage_error(tmp_path: Path) -> None:
    missing = call("--input", str(tmp_path / "nope.wav"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav file at all")
    bad = call("--input", str(junk))
    assert bad.returncode == 2 and "not a readable PCM WAV file" in bad.stderr
    both = call("--input", "a.wav", "--text", "hi")
    assert both.returncode == 2 and both.stderr.count("\n") == 1


@pytest.fixture
def keyed_server() -> Iterator[str]:
    with start_in_thread(ServerConfig(api_key="sk-right")) as running:
        yield running.url


def test_server_error_exits_4(keyed_server: str) -> None:
    done = call("--url", keyed_server, "--fast", env={"OPENAI_API_KEY": "sk-wrong-key-123456"})
    assert done.returncode == 4, done.stderr
    assert "invalid_api_key" in done.stderr.splitlines()[-1]
    assert "sk-wrong-key-123456" not in done.stderr  # the key is never printed


def test_stereo_44k_input_is_converted(tmp_path: Path) -> None:
    import numpy as np

    source = tmp_path / "stereo.wav"
    tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(44100) / 44100)).astype("<i2")
    silence = np.zeros(44100, dtype="<i2")
    mono = np.concatenate([silence[:4410], tone, silence])
    with wave.open(str(source), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(np.repeat(mono, 2).tobytes())
    done = call("--input", str(source), "--fast", "--output", str(tmp_path / "r.wav"))
    assert done.returncode == 0, done.stderr
    assert "speech started" in done.stderr


def test_in_process_call_and_its_timeout_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's own half (cli/call.py) in this process, where coverage sees it."""
    from rtproto.cli.main import main

    reply = tmp_path / "r.wav"
    assert main(["call", "--fast", "--text", "Hello there", "--output", str(reply)]) == 0
    assert f"written to {reply}" in capsys.readouterr().err.splitlines()[-1]
    assert main(["call", "--timeout", "0"]) == 2
    assert "--timeout must be positive" in capsys.readouterr().err
