"""rtproto's client core wired to its server core in memory: whole turns, both sides checked.

Messages go both ways as JSON text, the way a transport would carry them; every server event
is also validated against the official ``openai`` SDK's models. A hypothesis state machine
interleaves client commands, time and caller audio, and checks that there is never more than
one response in the default conversation, that no error happens that a rule did not ask for,
and that the client's history agrees with the server's conversation whenever nothing is
running.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rtproto.server import (
    FunctionCallPart,
    HookResponder,
    ResponseContext,
    ResponsePlan,
    ScriptResponder,
    ServerOptions,
    ServerSession,
    SpeechPart,
    sequential_ids,
)
from rtproto.session import (
    AudioChunk,
    AudioInterrupted,
    ClientSession,
    FunctionCall,
    Profile,
    ServerError,
    SessionOptions,
    TurnDone,
)

pydantic = pytest.importorskip("pydantic")
ga_events = pytest.importorskip("openai.types.realtime.realtime_server_event")
SDK = pydantic.TypeAdapter(ga_events.RealtimeServerEvent)


def tone(ms: int, amplitude: float = 0.3) -> bytes:
    t = np.arange(ms * 24) / 24000.0
    return np.rint(np.sin(2 * np.pi * 300 * t) * amplitude * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (ms * 24)


class Link:
    """A client core and a server core joined by an in-memory "transport"."""

    def __init__(
        self,
        server: ServerOptions | None = None,
        client: SessionOptions | None = None,
    ) -> None:
        self.server = ServerSession(server)
        self.client = ClientSession(client or SessionOptions(model="gpt-realtime"))
        self.media = self.server.options.profile != "websocket"
        self.now = 0.0
        self.events: list[Any] = []  # client events
        self.wire: list[dict[str, Any]] = []  # server events
        self.sent: list[dict[str, Any]] = []  # client events on the wire

    def connect(self) -> None:
        self.server.connection_made(self.now)
        self.client.connection_made(self.now)
        self.pump()

    def pump(self) -> None:
        """Carry messages both ways until both sides are quiet."""
        moving = True
        while moving:
            moving = False
            for text in self.client.messages_to_send():
                self.sent.append(json.loads(text))
                self.server.receive(text, self.now)
                moving = True
            for text in self.server.messages_to_send():
                event = json.loads(text)
                SDK.validate_python(event)
                self.wire.append(event)
                self.client.receive(text, self.now)
                moving = True
            while self.server.next_output_audio() is not None:
                pass
            while self.server.next_event() is not None:
                pass
            while (event := self.client.next_event()) is not None:
                self.events.append(event)

    def advance(self, seconds: float) -> None:
        """Let time pass, running both sides' timers on the way."""
        until = self.now + seconds
        while True:
            timers = [
                t for t in (self.server.get_timer(), self.client.get_timer()) if t is not None
            ]
            due = min(timers, default=None)
            if due is None or due > until:
                break
            self.now = max(self.now, due)
            self.server.handle_timer(self.now)
            self.client.handle_timer(self.now)
            self.pump()
        self.now = until

    def speak(self, pcm: bytes, chunk_ms: int = 20) -> None:
        """The caller talks: audio in real time, as appends (or on the media track)."""
        size = chunk_ms * 48
        for start in range(0, len(pcm), size):
            chunk = pcm[start : start + size]
            if self.media:
                self.server.feed_audio(chunk, self.now)
            else:
                self.client.send_audio(chunk)
            self.pump()
            self.advance(len(chunk) / 48000.0)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    def wire_types(self) -> list[str]:
        return [event["type"] for event in self.wire]

    def history_ids(self) -> list[str | None]:
        return [getattr(item, "id", None) for item in self.client.history]

    def server_ids(self) -> list[str | None]:
        return [getattr(item, "id", None) for item in self.server.conversation]


def linked(server: ServerOptions | None = None, client: SessionOptions | None = None) -> Link:
    link = Link(server, client)
    link.connect()
    return link


def test_full_audio_turn() -> None:
    # the client's defaults: semantic VAD, transcription on; readable server ids
    link = linked(ServerOptions(id_generator=sequential_ids()))
    assert link.server.session.audio.input.turn_detection.type == "semantic_vad"  # type: ignore[union-attr]
    link.speak(silence(300) + tone(800) + silence(1000))
    link.advance(1.0)
    assert link.wire_types()[2:7] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    (done,) = link.of(TurnDone)
    assert done.response.status == "completed"
    audio = b"".join(chunk.audio for chunk in link.of(AudioChunk))
    assert len(audio) == (300 + 800 + 600) * 48  # the echo: prefix + speech + silence window
    assert link.of(ServerError) == []
    assert link.history_ids() == link.server_ids() == ["item_0001", "item_0002"]
    user = link.client.history[0]
    assert user.content[0].transcript == "[1.7 seconds of audio]"  # type: ignore[union-attr]
    assert link.client.usage.responses == 1


def test_text_turn() -> None:
    link = linked()
    link.client.send_message("hello there")
    link.pump()
    (done,) = link.of(TurnDone)
    assert done.response.output[0].content[0].transcript == "You said: hello there"  # type: ignore[union-attr, index]
    assert link.history_ids() == link.server_ids()
    assert [e["type"] for e in link.sent] == [
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    assert link.of(ServerError) == []


def test_tool_call_turn() -> None:
    script = ScriptResponder(
        [
            {
                "text": "Checking.",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
            }
        ]
    )
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    link = linked(
        ServerOptions(responder=script),
        SessionOptions(model="gpt-realtime", session={"tools": tools}),
    )
    link.client.send_message("weather in Paris?")
    link.pump()
    (call,) = link.of(FunctionCall)
    assert (call.function, call.arguments) == ("get_weather", '{"city":"Paris"}')
    link.client.send_function_call_output(call.call_id, '{"temp_c": 21}')
    link.pump()
    dones = link.of(TurnDone)
    assert len(dones) == 2
    text = dones[1].response.output[0].content[0].transcript  # type: ignore[union-attr, index]
    assert text == 'The function returned: {"temp_c": 21}'
    assert [item.type for item in link.server.conversation] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert link.history_ids() == link.server_ids()
    assert link.of(ServerError) == []


def test_barge_in_with_truncation() -> None:
    link = linked()
    link.client.send_message("one two three four five six")
    link.pump()
    (chunk, *_) = link.of(AudioChunk)
    item_id = chunk.item_id
    received = sum(len(c.audio) for c in link.of(AudioChunk)) // 48
    link.advance(0.5)  # the user hears half a second, then talks over it
    link.speak(silence(100) + tone(300))
    (interrupted,) = link.of(AudioInterrupted)
    (cut,) = interrupted.truncated
    assert cut.item_id == item_id and cut.received_ms == received
    assert 600 <= cut.audio_end_ms < received
    truncated = [e for e in link.wire if e["type"] == "conversation.item.truncated"]
    assert truncated[0]["audio_end_ms"] == cut.audio_end_ms
    stored = next(e for e in link.server._entries if e.id == item_id)
    assert len(stored.audio[0]) == cut.audio_end_ms * 48
    assert link.of(ServerError) == []
    link.speak(silence(800))
    link.advance(2.0)
    assert link.history_ids() == link.server_ids()


def test_webrtc_barge_in_is_truncated_by_the_server() -> None:
    link = linked(
        ServerOptions(profile="webrtc", pace="realtime"),
        SessionOptions(model="gpt-realtime", profile=Profile.WEBRTC),
    )
    link.client.send_message("one two three four five six seven eight")
    link.pump()
    link.advance(0.4)
    assert link.server.active_response_id is not None
    link.speak(silence(100) + tone(200))
    types = link.wire_types()
    start = types.index("input_audio_buffer.speech_started")
    assert types[start + 1] == "output_audio_buffer.cleared"
    assert "conversation.item.truncated" in types[start:]
    assert [e for e in link.sent if e["type"] == "conversation.item.truncate"] == []
    assert link.of(ServerError) == []
    link.speak(silence(800))
    link.advance(5.0)
    assert link.history_ids() == link.server_ids()


# ------------------------------------------------------------------------ state machine --


def _responder(context: ResponseContext) -> ResponsePlan:
    """Deterministic variety: some responses think first, some call a tool."""
    kind = context.index % 4
    if kind == 1:
        return ResponsePlan((SpeechPart("Let me think about that."),), delay=0.3)
    if kind == 3:
        return ResponsePlan((SpeechPart("One moment."), FunctionCallPart("lookup", '{"q": 1}')))
    return ResponsePlan((SpeechPart(f"Answer number {context.index}."),))


class ClientServerMachine(RuleBasedStateMachine):
    """Client commands, caller audio and time, interleaved at random."""

    @initialize(pace=st.sampled_from(["fast", "realtime"]))
    def connect(self, pace: str) -> None:
        options = ServerOptions(pace=pace, responder=HookResponder(_responder))  # type: ignore[arg-type]
        detection = {"type": "server_vad", "silence_duration_ms": 300}
        self.link = linked(
            options,
            SessionOptions(
                model="gpt-realtime",
                session={"audio": {"input": {"turn_detection": detection}}},
            ),
        )
        self.expected_errors = 0
        self.answered: set[str] = set()

    def _settle(self) -> None:
        for call in [e for e in self.link.events if isinstance(e, FunctionCall)]:
            if call.call_id not in self.answered:
                self.answered.add(call.call_id)
                self.link.client.send_function_call_output(call.call_id, "{}", start_response=False)
        self.link.pump()

    @rule(text=st.text(alphabet="abc ", min_size=1, max_size=12), respond=st.booleans())
    def send_text(self, text: str, respond: bool) -> None:
        self.link.client.send_message(text, trigger_response=respond)
        self.link.pump()

    @rule(loud_ms=st.integers(0, 600), quiet_ms=st.integers(0, 700))
    def caller_audio(self, loud_ms: int, quiet_ms: int) -> None:
        self.link.speak(tone(loud_ms // 20 * 20) + silence(quiet_ms // 20 * 20))

    @rule(seconds=st.sampled_from([0.05, 0.2, 0.5, 1.0, 3.0]))
    def wait(self, seconds: float) -> None:
        self.link.advance(seconds)
        self._settle()

    @rule()
    def interrupt(self) -> None:
        self.link.client.interrupt(self.link.now)
        self.link.pump()

    @rule()
    def create_response(self) -> None:
        self.link.client.create_response()
        self.link.pump()

    @rule()
    def cancel_raw(self) -> None:
        """A raw ``response.cancel``: an error is expected exactly when nothing is active."""
        idle = self.link.server.active_response_id is None
        self.link.client.send_event({"type": "response.cancel"})
        self.link.pump()
        if idle:
            self.expected_errors += 1

    @rule(index=st.integers(0, 50))
    def delete_item(self, index: int) -> None:
        # any item, assistant audio included: the client stops tracking its playback, so a
        # later interrupt does not truncate it (item_truncate_invalid_item_id)
        items = [item.id for item in self.link.server.conversation]
        if items and self.link.server.active_response_id is None:
            item_id = items[index % len(items)]
            self.link.client.send_event({"type": "conversation.item.delete", "item_id": item_id})
            self.link.pump()

    @rule(text=st.text(alphabet="xyz", max_size=8))
    def update_instructions(self, text: str) -> None:
        self.link.client.update_session({"instructions": text})
        self.link.pump()

    @invariant()
    def one_response_at_a_time(self) -> None:
        server = self.link.server
        defaults = [r for r in server._responses.values() if not r.out_of_band]
        assert len(defaults) <= 1
        assert (server.active_response_id is None) == (not defaults)

    @invariant()
    def both_sides_agree_on_the_active_response(self) -> None:
        # messages are carried at once, so the client's view is the server's
        active = self.link.server.active_response_id
        assert self.link.client._sequencer.active == ([active] if active else [])
        assert self.link.client._sequencer.in_flight is None

    @invariant()
    def only_expected_errors(self) -> None:
        errors = [e.event.error for e in self.link.of(ServerError)]
        # The one race the protocol has: a response the client created while the caller was
        # still talking is active when the turn ends, so the turn's own (VAD) response is
        # refused. That error is the server's, not tied to a client event (event_id null).
        races = [
            e
            for e in errors
            if e.code == "conversation_already_has_active_response" and e.event_id is None
        ]
        cancels = [e for e in errors if e.code == "response_cancel_not_active"]
        assert len(races) + len(cancels) == len(errors), errors
        assert len(cancels) == self.expected_errors

    @invariant()
    def histories_agree_when_quiet(self) -> None:
        link = self.link
        if link.server._responses or link.client.response_active or link.server._speech_item:
            return
        assert link.history_ids() == link.server_ids()


ClientServerMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestClientServerMachine = ClientServerMachine.TestCase
