"""Fuzz harness for the client session core (atheris / libFuzzer): server input and app
commands in any order never crash it or make it break the protocol.

Each input is split on newlines into up to 64 steps. A line starting with ``!`` is an
application command (its second byte picks which, the rest are its arguments: interrupt,
send a message, ask for a response, send or commit audio, report playback, answer a
function call, update the session (with any configuration), reset the history, let time
pass, the transport degrading or recovering, close, raw creates and cancels, forget the
playback); any other line is a server message for ``receive``. Steps are 50 ms apart and
due timers run in between.
Every input runs in the four profiles (GA) and the WebSocket profile in the beta dialect.
The contract:

* ``receive`` raises nothing but ``LocalProtocolError``, and that only once the session no
  longer receives (closed); text that is not an event is dropped with a ``ProtocolWarning``;
* commands raise nothing but ``LocalProtocolError`` / ``ConnectionClosed``;
* everything sent parses (rtproto's codec, that dialect) to a typed client event, within the
  outgoing size limit;
* a ``response.create`` is never sent while another awaits its answer (a ``response.created``
  or ``error``), nor a ``response.cancel`` of the core's own with no response running;
* every ``conversation.item.truncate`` has an integer ``audio_end_ms >= 0``, and every cut an
  ``AudioInterrupted`` reports ends within the audio received;
* every drained event is a server or transport event; a function call, and each hosted-MCP
  item's announcement, surfaces at most once;
* the history stays within its bound.

Usage::

    python fuzz/fuzz_session.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/session
    python fuzz/fuzz_session.py --corpus-only fuzz/corpus/session [MORE_DIRS_OR_FILES...]
    python fuzz/fuzz_session.py --write-seeds fuzz/corpus/session

Without atheris installed (or with ``--corpus-only``) every corpus file runs through
``TestOneInput`` once. ``tests/test_session.py`` imports :func:`check_one`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

try:
    import atheris  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

# The heavy dependencies are imported before instrumentation so that only rtproto is traced.
import msgspec  # noqa: F401
import numpy  # noqa: F401

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import harness_main, replay, target_imports  # noqa: E402

with target_imports(__name__, atheris):
    import rtproto
    from rtproto.session import (
        AudioInterrupted,
        ClientSession,
        FunctionCall,
        Limits,
        McpApprovalRequested,
        McpToolCallCompleted,
        McpToolsListed,
        Profile,
        ProtocolWarning,
        SessionOptions,
        SessionState,
        TransportEvent,
    )

__all__ = ["TestOneInput", "check_one", "main", "run_corpus", "seeds"]

MAX_STEPS = 64
STEP_S = 0.05
GA = rtproto.Dialect.GA
BETA = rtproto.Dialect.BETA
LIMITS = Limits(max_history_items=8, max_tracked_items=4)
CONFIGS = (
    (Profile.WEBSOCKET, GA),
    (Profile.WEBRTC, GA),
    (Profile.SIP, GA),
    (Profile.PHONE, GA),
    (Profile.WEBSOCKET, BETA),
)
_REFUSALS = (rtproto.LocalProtocolError, rtproto.ConnectionClosed)
_PNG = b"\x89PNG\r\n\x1a\n"
_MCP_ANNOUNCEMENTS = (McpToolsListed, McpApprovalRequested, McpToolCallCompleted)
_EVENT_CLASSES = (rtproto.events.Event, rtproto.UnknownEvent, rtproto.InvalidEvent, TransportEvent)


class _Run:
    """One session under test, with what the contract needs to remember."""

    def __init__(self, profile: Profile, dialect: rtproto.Dialect) -> None:
        self.session = ClientSession(
            SessionOptions(
                model="gpt-realtime",
                profile=profile,
                dialect=dialect,
                limits=LIMITS,
                session_update_timeout=0.2,
                disconnect_grace=0.3,
            )
        )
        self.dialect = dialect
        self.limit = 64 * 1024 if profile is Profile.WEBRTC else LIMITS.max_message_size
        self.now = 0.0
        self.create_in_flight = False
        self.active: set[str] = set()  # default-conversation responses running (server's view)
        self.raw_cancels = 0  # response.cancel sent raw by the app: not the core's decision
        self.calls: set[str] = set()
        self.mcp_items: set[str] = set()  # MCP items announced
        self.items: list[str] = []  # item ids seen, for commands that name one
        self.drains = 0
        self.drop_warned = True  # every message that is not an event was reported

    def drain(self) -> None:
        for text in self.session.messages_to_send():
            assert len(text.encode()) <= self.limit, "a message over the outgoing limit"
            event = rtproto.parse_client_event(text, dialect=self.dialect)
            assert not isinstance(event, (rtproto.UnknownEvent, rtproto.InvalidEvent)), text
            raw = json.loads(text)
            if raw["type"] == "response.create":
                assert not self.create_in_flight, "two response.create in flight"
                self.create_in_flight = True
            elif raw["type"] == "response.cancel":
                if self.raw_cancels:
                    self.raw_cancels -= 1
                else:
                    assert self.active, "response.cancel with no response running"
            elif raw["type"] == "conversation.item.truncate":
                end = raw["audio_end_ms"]
                assert type(end) is int and end >= 0, end
        self.drains += 1  # both ways of draining, in turn
        drained = self.session.take_events() if self.drains % 2 else self.session.events()
        for event in drained:
            assert isinstance(event, _EVENT_CLASSES), event
            if isinstance(event, FunctionCall):
                assert event.call_id not in self.calls, "a function call surfaced twice"
                self.calls.add(event.call_id)
            elif isinstance(event, _MCP_ANNOUNCEMENTS) and isinstance(event.item.id, str):
                assert event.item.id not in self.mcp_items, "an MCP item announced twice"
                self.mcp_items.add(event.item.id)
            elif isinstance(event, AudioInterrupted):
                for cut in event.truncated:
                    assert 0 <= cut.audio_end_ms <= cut.received_ms, cut
            elif isinstance(event, ProtocolWarning) and event.message.startswith("dropped"):
                self.drop_warned = True
            item_id = getattr(event, "item_id", None)
            if isinstance(item_id, str) and item_id not in self.items:
                self.items.append(item_id)
        assert len(self.session.history) <= LIMITS.max_history_items
        assert self.drop_warned, "a message that is not an event was dropped in silence"

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for _ in range(100):
            timer = self.session.get_timer()
            if timer is None or timer > self.now:
                return
            self.session.handle_timer(self.now)
            self.drain()
        raise AssertionError("timers do not settle")

    def receive(self, line: bytes) -> None:
        try:
            self.session.receive(line, self.now)
        except rtproto.LocalProtocolError:
            assert self.session.state is SessionState.CLOSED, "refused while open"
            return
        try:
            event = rtproto.parse_server_event(line, dialect=self.dialect)  # as the core saw it
        except rtproto.RemoteProtocolError:
            self.drop_warned = False  # the next drain must carry the warning
            return
        if isinstance(event, rtproto.InvalidEvent):  # the core salvages what it can, too
            event = rtproto.salvage(event, dialect=self.dialect) or event
        if isinstance(event, (rtproto.events.ResponseCreated, rtproto.events.ErrorEvent)):
            self.create_in_flight = False  # answered (a loose view: the core may wait more)
        if isinstance(event, (rtproto.events.ResponseCreated, rtproto.events.ResponseDone)):
            response = event.response
            response_id = response.id if isinstance(response.id, str) else ""  # (no id: "")
            if isinstance(event, rtproto.events.ResponseDone):
                self.active.discard(response_id)
            elif response.conversation_id is not None:
                self.active.add(response_id)

    def send_raw(self, kind: str) -> None:
        self.raw_cancels += kind == "response.cancel"
        self.session.send_event({"type": kind})

    def command(self, line: bytes) -> None:
        code = line[1] if len(line) > 1 else 0
        arg = line[2:]
        number = int.from_bytes(arg[:2].ljust(2, b"\0"), "little")
        session = self.session
        pick = self.items[number % len(self.items)] if self.items else "item_none"
        actions = (
            lambda: session.interrupt(self.now, cancel=bool(number & 1)),
            lambda: session.send_message(
                arg.decode("utf-8", "replace"), trigger_response=bool(number & 1)
            ),
            lambda: session.create_response({"instructions": "x"} if number & 1 else None),
            lambda: session.send_audio(bytes(number % 4801), commit=bool(number & 1)),
            lambda: session.commit_audio(),
            lambda: session.clear_audio(),
            lambda: session.playback_progress(pick, number / 7),
            lambda: session.send_function_call_output(
                f"call_{number % 4}", '{"ok":true}', start_response=bool(number & 1)
            ),
            lambda: session.update_session({"voice": "marin", "instructions": "be brief"}),
            lambda: session.reset_history(list(session.history)[: number % 3]),
            lambda: self.advance(number / 1000),
            lambda: session.connection_degraded(self.now),
            lambda: session.connection_recovered(self.now),
            lambda: session.close(),
            lambda: self.send_raw("response.cancel" if number & 1 else "response.create"),
            lambda: session.update_session(_json_object(arg)),  # any configuration at all
            lambda: session.update_session(
                {"audio": {"output": {"format": "g711_ulaw" if number & 1 else "pcm16"}}}
            ),
            lambda: session.send_mcp_response(pick, bool(number & 1), reason=arg.hex() or None),
            lambda: session.add_image(
                arg[2:] if number & 1 else _PNG + arg[2:],  # (the bytes mostly refused)
                detail=(None, "auto", "low", "high", "x")[number % 5],
                trigger_response=bool(number & 2),
            ),
            lambda: session.forget_playback(),
        )
        assert len(actions) == COMMANDS
        with contextlib.suppress(*_REFUSALS):  # the documented refusals of misuse
            actions[code % len(actions)]()


def _json_object(data: bytes) -> dict[str, object]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _run(lines: list[bytes], profile: Profile, dialect: rtproto.Dialect) -> None:
    run = _Run(profile, dialect)
    run.session.connection_made(run.now)
    run.drain()
    for line in lines:
        run.advance(STEP_S)
        if line.startswith(b"!"):
            run.command(line)
        else:
            run.receive(line)
        run.drain()
    run.advance(10.0)
    run.session.connection_lost("end of input", run.now)
    run.drain()


def check_one(data: bytes) -> None:
    """Check the session contract on one input; raises on any violation."""
    lines = data.split(b"\n")[:MAX_STEPS]
    for profile, dialect in CONFIGS:
        try:
            _run(lines, profile, dialect)
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"rtproto session fuzz: {profile.value}, {dialect.value}")
            raise


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    check_one(data)


# --------------------------------------------------------------------------- seed corpus --


#: Application commands a ``!`` line picks from (its second byte, modulo this).
COMMANDS = 20


def seeds() -> dict[str, bytes]:
    """Typical turns as the service sends them, with the commands that go with them."""
    sys.path.insert(0, str(_HERE.parent))
    from tests.scripts import Server

    s = Server()

    def command(code: int, arg: bytes = b"") -> bytes:
        # (code 10 is a newline, which would split the line: the same command, one lap on)
        line = b"!" + bytes([code + COMMANDS if code == 10 else code]) + arg
        assert b"\n" not in line, line
        return line

    audio = [s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [200] * 4)]
    sessions: dict[str, list[str | bytes]] = {
        "audio-turn": [
            s.session_created(),
            s.session_updated(),
            *s.user_turn("item_U1"),
            *audio,
            s.response_done("resp_1"),
        ],
        "barge-in": [
            s.session_created(),
            *audio,
            command(6, b"\x10\x00"),  # playback progress
            s.event("input_audio_buffer.speech_started", audio_start_ms=100, item_id="item_U2"),
            command(0, b"\x01\x00"),  # interrupt, cancel
            s.event(
                "conversation.item.truncated",
                item_id="item_A1",
                content_index=0,
                audio_end_ms=150,
            ),
            s.response_done("resp_1", status="cancelled"),
        ],
        "tool-call": [
            s.session_created(),
            command(1, b"\x01\x00what is the weather"),
            s.response_created("resp_1"),
            *s.function_call("resp_1", "item_F1", "call_0", None),
            s.response_done("resp_1"),
            command(7, b"\x01\x00"),  # function output, start a response
            command(2, b"\x00\x00"),  # another response request (coalesced / deferred)
            s.response_created("resp_2"),
            s.response_done("resp_2"),
        ],
        "rejected-create": [
            s.session_created(),
            command(2, b"\x00\x00"),
            s.event(
                "error",
                error={
                    "type": "invalid_request_error",
                    "code": "conversation_already_has_active_response",
                    "message": "Conversation already has an active response in progress.",
                    "param": None,
                    "event_id": "rtproto_response_create_2",
                },
            ),
            command(10, b"\xe8\x03"),  # a second passes
        ],
        "blip": [
            s.session_created(),
            command(11),  # degraded
            command(10, b"\x64\x00"),
            command(12),  # recovered
            command(11),
            command(10, b"\xf4\x01"),  # grace period over: closed
            s.response_created("resp_1"),
        ],
        "configs": [
            s.session_created(),
            command(15, b'{"voice":"marin","audio":{"output":{"format":"g711_ulaw","speed":1.1}}}'),
            command(15, b'{"turnDetection":{"type":"server_vad","silenceDurationMs":300}}'),
            command(15, b'{"modalities":["text"],"inputAudioFormat":"pcm16","tools":[]}'),
            command(16, b"\x01\x00"),  # output in G.711
            command(14, b"\x00\x00"),  # a raw response.create
            s.response_created("resp_1"),
            *s.assistant_audio("resp_1", "item_A1", None, [100, 100]),
            command(14, b"\x01\x00"),  # a raw response.cancel
            s.response_done("resp_1", status="cancelled"),
        ],
        "odd-events": [
            '{"type":"brand.new.event","event_id":"e"}',
            '{"type":"response.output_audio.delta","response_id":1}',
            "not json",
            s.event(
                "conversation.item.input_audio_transcription.completed",
                item_id="nope",
                content_index=0,
                transcript="hi",
            ),
            s.event("conversation.item.deleted", item_id="item_X"),
            *[  # an item created again with its own id: the service names itself as previous
                s.event(
                    "conversation.item.added",
                    previous_item_id=previous,
                    item={"id": "item_D", "type": "message", "role": "user", "content": []},
                )
                for previous in (None, "item_D")
            ],
            command(9, b"\x00\x00"),  # reset history
            command(13),  # close
            command(1, b"\x00\x00late"),
        ],
        "mcp": [
            s.session_created(),
            s.response_created("resp_1"),
            s.event("mcp_list_tools.in_progress", item_id="mcpl_1"),
            *[
                s.event(kind, previous_item_id=None, item=item)
                for item in (
                    {"id": "mcpl_1", "type": "mcp_list_tools", "server_label": "d", "tools": []},
                    {
                        "id": "mcpr_1",
                        "type": "mcp_approval_request",
                        "server_label": "d",
                        "name": "search",
                        "arguments": "{}",
                    },
                )
                for kind in ("conversation.item.added", "conversation.item.done")
            ],
            command(17, b"\x01\x00"),  # approve
            command(18, b"\x02\x00"),  # an image (PNG, detail low) and a response
            s.event("response.mcp_call.in_progress", item_id="mcp_1", output_index=0),
            s.event(
                "conversation.item.done",
                previous_item_id="mcpr_1",
                item={
                    "id": "mcp_1",
                    "type": "mcp_call",
                    "server_label": "d",
                    "name": "search",
                    "arguments": "{}",
                    "output": "ok",
                },
            ),
            s.response_done("resp_1"),
        ],
        "malformed": [  # known events with a mistyped detail: salvaged, not ignored
            s.session_created(),
            s.event(
                "session.updated",
                session={"type": "realtime", "audio": {"input": {"turn_detection": {"type": "x"}}}},
            ),
            s.response_created("resp_1"),
            command(1, b"\x00\x00hi"),  # a message: its create waits for the response
            s.event(
                "response.done",
                response={
                    "id": "resp_1",
                    "status": "completed",
                    "output": [7, {"type": "message", "role": "assistant", "content": [5]}],
                    "usage": {"input_tokens": None, "output_token_details": None},
                },
            ),
        ],
    }
    corpus: dict[str, bytes] = {}
    for name, lines in sessions.items():
        data = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in lines)
        corpus[f"seed-{name}-{hashlib.sha1(data).hexdigest()[:8]}"] = data
    return corpus


# ----------------------------------------------------------------------------- running --


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_session")


def main(argv: list[str]) -> int:
    return harness_main(argv, "session", TestOneInput, atheris, seeds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
