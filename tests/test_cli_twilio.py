"""``rtproto twilio`` tried as an operator would: a real process, a simulated Twilio call
(``streamdouble``) on 127.0.0.1, Ctrl-C to stop."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pytest
import websockets
from streamdouble.api import call_sync
from streamdouble.session import SessionConfig

from rtproto.cli.main import UsageError, main
from rtproto.cli.twilio import describe, run, session_config
from rtproto.session import ConnectionChange, ConnectionStatus

from .test_twilio_driver import hello_frames

STARTUP_TIMEOUT = 20.0


class Output:
    """The command's stderr lines, read by a thread as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._arrived:
                self.lines.append(line.rstrip("\n"))
                self._arrived.notify_all()

    def wait_for(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> re.Match[str]:
        """The first line matching ``pattern``, once it has been written."""
        with self._arrived:
            found: list[re.Match[str]] = []

            def seen() -> bool:
                found[:] = [m for line in self.lines if (m := re.search(pattern, line))][:1]
                return bool(found)

            assert self._arrived.wait_for(seen, timeout), "\n".join(self.lines)
            return found[0]

    def text(self) -> str:
        self._reader.join(STARTUP_TIMEOUT)
        return "\n".join(self.lines)


@contextmanager
def twilio_command(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Output]]:
    """``rtproto twilio --port 0 ...`` running: its URL and its output; stopped with Ctrl-C
    (SIGINT) after the block, which must end it cleanly."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtproto", "twilio", "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert proc.stderr is not None
        output = Output(proc.stderr)
        url = output.wait_for(r"on (ws://\S+)").group(1)
        yield url, output
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=STARTUP_TIMEOUT) == 0, output.text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_call_on_the_embedded_emulator() -> None:
    with twilio_command("--instructions", "Be brief.", "--frame-ms", "20") as (url, output):
        config = SessionConfig(custom_parameters={"tenant": "acme"})
        report = call_sync(url, frames=hello_frames(), config=config)
        assert report.exit_code == 0, report.to_dict()
        output.wait_for("call 1: ended")  # (Twilio's stop ended it; the server carries on)
    text = output.text()
    assert "Traceback" not in text
    assert re.search(r"call 1: started \(call CA\w+, stream MZ\w+\) \{'tenant': 'acme'\}", text)
    assert "call 1: turn completed" in text
    assert "call 1: Twilio stopped the stream" in text
    assert "call 1: ended" in text
    assert text.rstrip().endswith("rtproto twilio: stopped")


def stopping_command() -> Iterator[tuple[str, Output, subprocess.Popen[str]]]:
    """``rtproto twilio --port 0`` for the tests that send their own signals."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtproto", "twilio", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        output = Output(proc.stderr)
        yield output.wait_for(r"on (ws://\S+)").group(1), output, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_lets_the_calls_in_progress_end() -> None:
    """A deploy's SIGTERM (or Ctrl-C) takes no new calls and waits for those in progress."""
    with contextmanager(stopping_command)() as (url, output, proc):
        reports: list[object] = []
        caller = threading.Thread(
            target=lambda: reports.append(call_sync(url, frames=hello_frames())), daemon=True
        )
        caller.start()
        output.wait_for("call 1: started")
        proc.send_signal(signal.SIGTERM)
        output.wait_for("SIGTERM: no new calls; waiting for 1 to end")
        turned_away = call_sync(url, frames=hello_frames()[:5])  # a new call: refused
        refused = turned_away.to_dict()
        assert (refused["closed_by"], refused["closed_before_audio"]) == ("agent", True)
        caller.join(STARTUP_TIMEOUT)
        assert proc.wait(timeout=STARTUP_TIMEOUT) == 0, output.text()
    report = reports[0]
    assert report.exit_code == 0, report.to_dict()  # type: ignore[attr-defined]
    text = output.text()
    assert "call 1: turn completed" in text and "Traceback" not in text
    assert text.rstrip().endswith("rtproto twilio: stopped")


def test_a_second_ctrl_c_cuts_the_calls() -> None:
    with contextmanager(stopping_command)() as (url, output, proc):
        caller = threading.Thread(
            target=lambda: call_sync(url, frames=hello_frames() * 20), daemon=True
        )
        caller.start()
        output.wait_for("call 1: started")
        proc.send_signal(signal.SIGINT)
        output.wait_for("SIGINT: no new calls")
        proc.send_signal(signal.SIGINT)
        output.wait_for("SIGINT: cutting 1 call")
        assert proc.wait(timeout=STARTUP_TIMEOUT) == 0, output.text()
        caller.join(STARTUP_TIMEOUT)
    assert "Traceback" not in output.text()


def test_signatures_are_required_with_the_auth_token() -> None:
    env = {"TWILIO_AUTH_TOKEN": "token-1"}
    public = ("--public-url", "wss://agent.example/media-stream")
    with twilio_command(*public, env=env) as (url, output):
        output.wait_for("a valid X-Twilio-Signature is required")
        with pytest.raises(websockets.InvalidStatus, match="403"):  # streamdouble: unsigned
            call_sync(url, frames=hello_frames()[:5])


def test_the_real_service_needs_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "rtproto", "twilio", "--url", "wss://api.openai.com/v1/realtime"],
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        env=env,
    )
    assert done.returncode == 2
    assert "--url needs OPENAI_API_KEY" in done.stderr


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--port", "70000"], "port 70000"),
        (["--path", "media"], "--path must start with"),
        (["--frame-ms", "0"], "--frame-ms must be 1 to 1000"),
    ],
)
def test_bad_arguments(argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["twilio", *argv]) == 2
    assert problem in capsys.readouterr().err


def test_a_port_taken_is_an_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rtproto", "twilio", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_lines_and_the_session() -> None:
    args = argparse.Namespace(instructions="Hi", voice="marin")
    assert session_config(args) == {"instructions": "Hi", "audio": {"output": {"voice": "marin"}}}
    assert session_config(argparse.Namespace(instructions=None, voice=None)) == {}
    ended = ConnectionChange(status=ConnectionStatus.DISCONNECTED, code=1000, reason="bye")
    assert describe("call 7", ended) == "call 7: Realtime session ended (1000 bye)"
    assert describe("call 7", ConnectionChange(status=ConnectionStatus.DISCONNECTED)) == (
        "call 7: Realtime session ended"
    )
    assert describe("call 7", ConnectionChange(status=ConnectionStatus.CONNECTED)) is None
    with pytest.raises(UsageError):
        run(argparse.Namespace(port=-1, path="/x"))


def test_a_line_for_each_event_that_matters() -> None:
    from rtproto import models as M
    from rtproto.events import ErrorEvent
    from rtproto.phone import TwilioMessageReceived
    from rtproto.session import AudioInterrupted, ServerError, TruncatedItem, TurnDone
    from rtproto.wire.twilio import parse_twilio_message

    def twilio(text: str) -> TwilioMessageReceived:
        return TwilioMessageReceived(message=parse_twilio_message(text))

    start = '{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1"}}'
    assert describe("c", twilio(start)) == "c: started (call CA1, stream MZ1)"
    dtmf = '{"event":"dtmf","dtmf":{"digit":"5"}}'
    assert describe("c", twilio(dtmf)) == "c: caller pressed 5"
    assert describe("c", twilio('{"event":"stop"}')) == "c: Twilio stopped the stream"
    assert describe("c", twilio('{"event":"connected"}')) is None
    done = TurnDone(response=M.Response(id="r", status="cancelled"), usage=None)
    assert describe("c", done) == "c: turn cancelled"
    cut = TruncatedItem(
        response_id="r", item_id="i", content_index=0, audio_end_ms=5, received_ms=9
    )
    assert describe("c", AudioInterrupted(response_id="r")) == "c: caller interrupted"
    assert describe("c", AudioInterrupted(response_id="r", truncated=(cut,))) == (
        "c: caller interrupted (cut at 5 of 9 ms)"
    )
    error = ErrorEvent(error=M.RealtimeError(type="invalid_request_error", message="no", code="x"))
    assert describe("c", ServerError(event=error)) == "c: server error x: no"
    typed = ErrorEvent(error=M.RealtimeError(type="server_error", message="oops"))
    assert describe("c", ServerError(event=typed)) == "c: server error server_error: oops"


def test_run_hands_the_arguments_to_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import types

    given: list[argparse.Namespace] = []
    fake = types.SimpleNamespace(run_command=lambda args: given.append(args) or 0)
    monkeypatch.setattr(importlib, "import_module", lambda name: fake)
    args = argparse.Namespace(port=0, path="/media-stream", frame_ms=20)
    assert run(args) == 0 and given == [args]


def test_the_ready_lines() -> None:
    from rtproto.cli.twilio import ready_lines

    lines = ready_lines("ws://h:1/media-stream", "wss://api.openai.com/v1/realtime", signed=True)
    assert lines[0] == "rtproto twilio: accepting Twilio media streams on ws://h:1/media-stream"
    assert lines[1].endswith("; a valid X-Twilio-Signature is required")
    assert (
        ready_lines("u", "r", signed=False)[1] == "  calls are bridged to r; signatures not checked"
    )
