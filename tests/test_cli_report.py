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
    run_turn(report, audio_turn(Server()))
    assert report.finished and report.exit_code is ExitCode.OK
    assert report.audio_ms == 200 and len(b"".join(report.audio)) == 9600
    assert report.transcript == "w0 w1 "
    assert report.usage_tokens == 253  # the lines and summary: the next test
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
    assert report.finished and dropped.finished
    late = CallReport()
    late.timed_out(5)
    assert late.finished and late.summary(None) == "no complete reply within 5 s"


def test_the_end_of_a_finished_call_is_quiet() -> None:
    """The connection closing after the reply is how every call ends: nothing to say."""
    report = CallReport()
    run_turn(report, audio_turn(Server()))
    end = ConnectionChange(status=ConnectionStatus.DISCONNECTED, reason="done", code=1000)
    assert report.handle(end, 9.0) == []
    assert report.exit_code is ExitCode.OK and report.error is None


def test_times_and_lengths_are_scaled_exactly() -> None:
    """Milliseconds and seconds on values large enough for an off-by-one scale to show."""
    server = Server()
    report = CallReport(started_at=-1.0)  # 2 s before the first message
    lines = run_turn(
        report,
        [
            server.response_created("resp_1"),
            *server.assistant_audio("resp_1", "item_A1", None, [100]),
        ],
    )
    first = next(line for line in lines if line.startswith("first audio"))
    assert first == "first audio after 2040 ms"  # the first delta is the 5th message: 1.04 s
    quiet = CallReport(first_audio_at=2.0, audio_ms=10_000.0)
    assert quiet.summary(None) == (
        "reply: 10.00 s of audio; first audio 2000 ms; 0 tokens; transcript ''"
    )


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


def test_exit_codes_are_the_documented_numbers() -> None:
    """``rtproto call``: 0 ok, 2 usage, 3 connection, 4 server (its help says so)."""
    assert [(code.name, int(code)) for code in ExitCode] == [
        ("OK", 0),
        ("USAGE", 2),
        ("CONNECTION", 3),
        ("SERVER_ERROR", 4),
    ]


def test_the_lines_and_summary_of_an_audio_turn_exactly() -> None:
    """Messages arrive 10 ms apart from t=1.0: speech stops at 1.02 s, audio comes at 1.10 s,
    so the first audio is 80 ms after the end of the speech."""
    report = CallReport(started_at=1.0)
    lines = run_turn(report, audio_turn(Server()))
    assert lines == [
        "connecting",
        "connected",
        "session created (gpt-realtime)",
        "speech started at 100 ms",
        "speech stopped at 1500 ms",
        "reply started",
        "first audio after 80 ms",
        "reply completed: 'w0 w1 '",
    ]
    assert report.turns_done == 1
    assert report.summary("reply.wav") == (
        "reply: 0.20 s of audio, written to reply.wav; first audio 80 ms; 253 tokens;"
        " transcript 'w0 w1 '"
    )
    assert report.summary(None).startswith("reply: 0.20 s of audio; first audio 80 ms;")


def test_a_text_turn_reports_its_text() -> None:
    server = Server()
    where = {"response_id": "resp_1", "item_id": "item_T1", "output_index": 0, "content_index": 0}
    texts = [
        server.response_created("resp_1"),
        server.event("response.output_text.delta", **where, delta="Hello"),
        server.event("response.output_text.delta", **where, delta=" there"),
        server.response_done("resp_1"),
    ]
    live = CallReport(live=True)
    lines = run_turn(live, texts)
    assert lines[-3:] == [
        "\rreply [                    ]  0.00 s  Hello",
        "\rreply [                    ]  0.00 s  Hello there",
        "reply completed: 'Hello there'",
    ]
    assert live.finished and live.turns_done == 1 and live.text == "Hello there"
    assert live.summary("reply.wav") == (
        f"reply: 0.00 s of audio; first audio no audio; {live.usage_tokens} tokens;"
        " transcript 'Hello there'"
    )  # no audio: nothing is written, whatever the output


def test_progress_bar_and_tail() -> None:
    report = CallReport(audio_ms=2600.0, transcript="x" * 10 + "y" * 40)
    assert report.progress() == "\rreply [##########          ]  2.60 s  " + "y" * 40
    report.audio_ms = 6000.0  # 24 quarter seconds: the bar stops at 20
    assert report.progress().startswith("\rreply [" + "#" * 20 + "]  6.00 s")
