"""The call report: what ``rtproto call`` prints, keeps and exits with."""

from __future__ import annotations

import json

import rtproto
from rtproto.cli.report import CallReport, ExitCode
from rtproto.session import ClientSession, ConnectionChange, ConnectionStatus, SessionOptions

from .scripts import Server


def run_turn(report: CallReport, texts: list[str]) -> list[str]:
    session = ClientSession(SessionOptions(model="gpt-realtime"))
    session.connection_made(0.0)
    lines = []
    for event in session.events():
        lines += report.handle(event, 0.0)
    for number, text in enumerate(texts):
        session.receive(text, 1.0 + number / 100)
        for event in session.events():
            lines += report.handle(event, 1.0 + number / 100)
    return lines


def audio_turn(server: Server) -> list[str]:
    return [
        server.session_created(),
        *server.user_turn("item_U1"),
        server.response_created("resp_1"),
        *server.assistant_audio("resp_1", "item_A1", "item_U1", [100, 100]),
        server.response_done("resp_1"),
    ]


def test_an_audio_turn() -> None:
    report = CallReport(started_at=1.0)
    lines = run_turn(report, audio_turn(Server()))
    assert report.finished and report.exit_code is ExitCode.OK
    assert report.audio_ms == 200 and len(b"".join(report.audio)) == 9600
    assert report.transcript == "w0 w1 "
    assert report.usage_tokens == 253
    assert "speech started at 100 ms" in lines and "reply started" in lines
    assert any(line.startswith("first audio after") for line in lines)
    summary = report.summary("reply.wav")
    assert "0.20 s of audio, written to reply.wav" in summary and "253 tokens" in summary
    assert report.progress().startswith("\rreply [") and report.progress().endswith("w0 w1 ")
    live = CallReport(started_at=1.0, live=True)
    lines = run_turn(live, audio_turn(Server()))
    assert [line for line in lines if line.startswith("\r")][-1].endswith("w0 w1 ")


def test_json_lines() -> None:
    report = CallReport(as_json=True)
    lines = run_turn(report, audio_turn(Server()))
    objects = [json.loads(line) for line in lines]
    assert {"event": "connection_change", "status": "connected", "reason": None, "code": None} in (
        objects
    )
    assert any(o.get("server_event", {}).get("type") == "response.done" for o in objects)
    audio = [o for o in objects if o.get("event") == "audio"]
    assert audio and audio[0]["bytes"] == 4800 and "event" in audio[0]
    assert report.finished


def test_server_error_and_disconnect() -> None:
    server = Server()
    report = CallReport()
    error = {
        "type": "invalid_request_error",
        "code": "invalid_api_key",
        "message": "Incorrect API key provided.",
        "param": None,
        "event_id": None,
    }
    run_turn(report, [server.event("error", error=error)])
    assert report.exit_code is ExitCode.SERVER_ERROR
    assert report.summary(None) == "server error invalid_api_key: Incorrect API key provided."
    dropped = CallReport()
    lines = dropped.handle(
        ConnectionChange(status=ConnectionStatus.DISCONNECTED, reason="lost", code=1006), 0.0
    )
    assert dropped.exit_code is ExitCode.CONNECTION and lines == [
        "disconnected before the reply ended: lost"
    ]
    late = CallReport()
    late.timed_out(5)
    assert late.summary(None) == "no complete reply within 5 s"


def test_tool_call_turn_waits_for_the_answer() -> None:
    server = Server()
    report = CallReport()
    lines = run_turn(
        report,
        [
            server.response_created("resp_1"),
            *server.function_call("resp_1", "item_F1", "call_1", None),
            server.response_done("resp_1"),
        ],
    )
    assert not report.finished and report.calls == ["get_weather"]
    assert 'function call get_weather({"city":"Paris"})' in lines
    assert rtproto.__version__
