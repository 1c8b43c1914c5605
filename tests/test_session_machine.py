"""A hypothesis state machine: commands, server events and time, interleaved at random.

Invariants checked after every step: never two ``response.create`` in flight and none while
a response is active; ``response.cancel`` only while one is; every truncate's
``audio_end_ms`` an integer between 0 and the audio received for its item; every function
call surfaced exactly once; no exception but the documented LocalProtocolErrors.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import rtproto
from rtproto.session import ClientSession, FunctionCall, Profile, SessionOptions

from .scripts import Server


class SessionMachine(RuleBasedStateMachine):
    @initialize(profile=st.sampled_from(list(Profile)))
    def connect(self, profile: Profile) -> None:
        self.profile = profile
        self.session = ClientSession(
            SessionOptions(model="gpt-realtime", profile=profile, session_update_timeout=1.0)
        )
        self.server = Server()
        self.now = 0.0
        self.active: str | None = None  # the server's running response
        self.unanswered: list[str] = []  # event ids of creates the server has not answered
        self.responses = 0
        self.received: dict[str, int] = {}  # item id -> ms of audio the server sent
        self.calls_fed: set[str] = set()
        self.calls_seen: list[str] = []
        self.truncates: list[tuple[str, int]] = []  # sent, not yet confirmed by the server
        self.retrieves: list[str] = []  # item ids asked for, not yet answered
        self.drains = 0
        self.session.connection_made(self.now)
        self.feed(self.server.session_created())

    # --- plumbing -------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        self.session.receive(text, self.now)
        self.drain()

    def drain(self) -> None:
        for text in self.session.messages_to_send():
            message = json.loads(text)
            kind = message["type"]
            if kind == "response.create":
                assert self.active is None, "response.create while a response is active"
                assert not self.unanswered, "two response.create in flight"
                self.unanswered.append(message["event_id"])
            elif kind == "response.cancel":
                assert self.active is not None, "response.cancel with no active response"
            elif kind == "conversation.item.truncate":
                end = message["audio_end_ms"]
                assert isinstance(end, int)
                assert 0 <= end <= self.received[message["item_id"]]
                self.truncates.append((message["item_id"], end))
            elif kind == "conversation.item.retrieve":
                self.retrieves.append(message["item_id"])
        self.drains += 1  # both ways of draining, in turn
        drained = self.session.take_events() if self.drains % 2 else self.session.events()
        for event in drained:
            if isinstance(event, FunctionCall):
                self.calls_seen.append(event.call_id)

    # --- the application ----------------------------------------------------------------------

    @rule(text=st.text(max_size=5), trigger=st.booleans())
    def send_message(self, text: str, trigger: bool) -> None:
        self.session.send_message(text, trigger_response=trigger)
        self.drain()

    @rule(start=st.booleans())
    def function_output(self, start: bool) -> None:
        self.session.send_function_call_output("call_x", "{}", start_response=start)
        self.drain()

    @rule(manual=st.booleans())
    def create_response(self, manual: bool) -> None:
        if manual:
            self.session.create_response({"instructions": "again"})
        else:
            self.session.send_event({"type": "response.create"})
        self.drain()

    @rule(cancel=st.booleans())
    def interrupt(self, cancel: bool) -> None:
        self.session.interrupt(self.now, cancel=cancel)
        self.drain()

    @precondition(lambda self: self.profile is not Profile.SIP)  # (audio is on the call)
    @rule(samples=st.integers(0, 2400))
    def send_audio(self, samples: int) -> None:
        self.session.send_audio(b"\x01\x00" * samples)
        self.drain()

    @rule(played=st.floats(0, 5000), pick=st.integers(0, 10))
    def playback_progress(self, played: float, pick: int) -> None:
        items = sorted(self.received)
        if items:
            self.session.playback_progress(items[pick % len(items)], played)
        self.drain()

    @rule(dt=st.floats(0, 2))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.session.handle_timer(self.now)
        self.drain()

    # --- the server --------------------------------------------------------------------------

    def start_response(self) -> None:
        self.responses += 1
        self.active = f"resp_{self.responses}"
        self.feed(self.server.response_created(self.active))

    @precondition(lambda self: bool(self.unanswered) and self.active is None)
    @rule()
    def server_accepts_create(self) -> None:
        self.unanswered.pop(0)
        self.start_response()

    @precondition(lambda self: bool(self.unanswered))
    @rule()
    def server_rejects_create(self) -> None:
        event_id = self.unanswered.pop(0)
        error = {
            "type": "invalid_request_error",
            "code": "conversation_already_has_active_response",
            "message": "Conversation already has an active response in progress.",
            "param": None,
            "event_id": event_id,
        }
        self.feed(self.server.event("error", error=error))

    @precondition(lambda self: self.active is None and not self.unanswered)
    @rule()
    def server_vad_response(self) -> None:
        self.start_response()

    @precondition(lambda self: self.active is not None)
    @rule(ms=st.integers(1, 400), item=st.integers(0, 1))
    def server_audio(self, ms: int, item: int) -> None:
        item_id = f"{self.active}_item{item}"
        self.received[item_id] = self.received.get(item_id, 0) + ms
        delta = base64.b64encode(b"\x00\x00" * 24 * ms).decode()
        ctx = {
            "response_id": self.active,
            "item_id": item_id,
            "output_index": item,
            "content_index": 0,
        }
        self.feed(self.server.event("response.output_audio.delta", **ctx, delta=delta))

    @precondition(lambda self: self.active is not None)
    @rule()
    def server_function_call(self) -> None:
        call_id = f"call_{len(self.calls_fed)}"
        self.calls_fed.add(call_id)
        for text in self.server.function_call(str(self.active), f"fc_{call_id}", call_id, None)[
            -3:
        ]:
            self.feed(text)

    @precondition(lambda self: self.active is not None)
    @rule()
    def server_response_done(self) -> None:
        done, self.active = str(self.active), None
        self.feed(self.server.response_done(done))

    @rule()
    def server_speech_started(self) -> None:
        self.feed(
            self.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u")
        )

    @precondition(lambda self: bool(self.truncates))
    @rule()
    def server_confirms_truncate(self) -> None:
        item_id, end = self.truncates.pop(0)
        self.feed(
            self.server.event(
                "conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=end
            )
        )

    @precondition(lambda self: bool(self.retrieves))
    @rule()
    def server_answers_retrieve(self) -> None:
        item = {
            "id": self.retrieves.pop(0),
            "type": "message",
            "role": "assistant",
            "status": "incomplete",
            "content": [{"type": "output_audio", "transcript": None}],
        }
        self.feed(self.server.event("conversation.item.retrieved", item=item))

    @rule()
    def server_session_updated(self) -> None:  # (what ends the WebRTC profile's wait)
        self.feed(self.server.session_updated())

    @rule()
    def server_unknown_event(self) -> None:
        self.feed('{"type":"brand.new.event","event_id":"e"}')

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def calls_surfaced_exactly_once(self) -> None:
        if hasattr(self, "session"):
            assert len(self.calls_seen) == len(set(self.calls_seen))
            assert set(self.calls_seen) == self.calls_fed

    @invariant()
    def bounded(self) -> None:
        if hasattr(self, "session"):
            assert len(self.session.history) <= 4096
            assert not self.session.messages_to_send()


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSessionMachine = SessionMachine.TestCase


def test_machine_catches_a_broken_sequencer(monkeypatch: Any) -> None:
    """The machine fails if the sequencer lets a second create through (it can fail)."""
    from rtproto.session import sequencer

    monkeypatch.setattr(sequencer.ResponseSequencer, "busy", property(lambda self: False))
    machine = SessionMachine()
    machine.connect(Profile.WEBSOCKET)
    machine.send_message("a", True)
    try:
        machine.send_message("b", True)
    except AssertionError as exc:
        assert "in flight" in str(exc) or "active" in str(exc)
    else:  # pragma: no cover - the check above must fire
        raise AssertionError("a second response.create went unnoticed")
    assert rtproto.LocalProtocolError  # the documented error type exists
