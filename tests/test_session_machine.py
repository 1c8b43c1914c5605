"""A hypothesis state machine: commands, server events and time, interleaved at random.

Invariants checked after every step: never two ``response.create`` in flight and none while
a response is active; the session's own ``response.cancel`` only while one is; every
truncate's ``audio_end_ms`` an integer between 0 and the audio received for its item; every
function call that finished surfaced exactly once, and none that ended ``incomplete``; a
server error naming a create frees the sequencer.

Every command goes through :meth:`SessionMachine.command`, which checks the exact exception
documented for the state: none while open, ``LocalProtocolError`` once ``close()`` was
called, ``ConnectionClosed`` once the connection was lost (bad arguments raise
``LocalProtocolError`` in every state), and that a refused command sends nothing. Anything
else raised by a command, or by ``receive()`` of a well-formed server event while the
connection is up, fails the run; after ``connection_lost()`` ``receive()`` raises
``LocalProtocolError``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import rtproto
from rtproto import models as M
from rtproto.errors import ConnectionClosed, LocalProtocolError, RtprotoError
from rtproto.session import ClientSession, FunctionCall, Profile, SessionOptions, SessionState

from .samples import SESSION
from .scripts import Server

_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
_SERVER_VAD = SESSION["audio"]["input"]["turn_detection"]
_KEEP = object()  # (an update that leaves turn detection as it is)
#: Valid partial updates, with the turn detection the server then reports.
VALID_UPDATES: list[tuple[dict[str, Any], Any]] = [
    ({"instructions": "Be brief."}, _KEEP),
    ({"output_modalities": ["text"]}, _KEEP),
    ({"tools": [_TOOL]}, _KEEP),
    ({"audio": {"output": {"voice": "marin", "speed": 1.2}}}, _KEEP),
    ({"audio": {"input": {"turn_detection": None}}}, None),
    (
        {
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}
            }
        },
        {**_SERVER_VAD, "interrupt_response": False},
    ),
    (
        {"turnDetection": {"type": "server_vad", "interruptResponse": True}},  # flat, camelCase
        _SERVER_VAD,
    ),
    (
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}},
        {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        },
    ),
]
#: Invalid partial updates, with the field the error must name.
INVALID_UPDATES: list[tuple[dict[str, Any], str]] = [
    ({"instructions": 5}, "instructions"),
    ({"audio": {"output": {"speed": 9}}}, "audio.output.speed"),
    ({"max_output_tokens": -3}, "max_output_tokens"),
    ({"bogus_field": 1}, "bogus_field"),
    (
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
        "audio.input.turn_detection.threshold",
    ),
]

_STATE = object()  # (command(): the refusal the session's state calls for)


class SessionMachine(RuleBasedStateMachine):
    @initialize(profile=st.sampled_from(list(Profile)))
    def connect(self, profile: Profile) -> None:
        self.profile = profile
        self.session = ClientSession(
            SessionOptions(model="gpt-realtime", profile=profile, session_update_timeout=1.0)
        )
        self.server = Server()
        self.now = 0.0
        self.active: str | None = None  # the server's running default-conversation response
        self.out_of_band: list[str] = []  # the server's running out-of-band responses
        self.unanswered: list[str] = []  # event ids of creates the server has not answered
        self.raw_ids: set[str] = set()  # ids the application gave its raw creates
        self.responses = 0
        self.received: dict[str, int] = {}  # item id -> ms of audio the server sent
        self.calls_fed: set[str] = set()  # finished calls the session received
        self.calls_cut: set[str] = set()  # calls that ended "incomplete"
        self.calls_seen: list[str] = []
        self.truncates: list[tuple[str, int]] = []  # sent, not yet confirmed by the server
        self.retrieves: list[str] = []  # item ids asked for, not yet answered
        self.deletes: list[str] = []  # item ids asked to delete, not yet confirmed
        self.turn_detection: Any = _SERVER_VAD  # what the server reports
        self.drains = 0
        self.closing = False  # close() was called
        self.lost = False  # connection_lost() was called
        self.names = 0  # for fresh ids
        self.session.connection_made(self.now)
        self.feed(self.server.session_created())

    # --- plumbing -------------------------------------------------------------------------

    def fresh(self, kind: str) -> str:
        self.names += 1
        return f"{kind}_{self.names}"

    def feed(self, text: str) -> bool:
        """Hand a server message to the session; False when it is refused (connection lost)."""
        if self.lost:
            try:
                self.session.receive(text, self.now)
            except LocalProtocolError:
                pass
            else:
                raise AssertionError("receive() after connection_lost() did not raise")
            self.drain()
            return False
        try:
            self.session.receive(text, self.now)
        except Exception as exc:
            raise AssertionError(
                f"receive() of a well-formed event raised {type(exc).__name__}: {exc}"
            ) from exc
        self.drain()
        return True

    def drain(self, *, raw_cancel: bool = False) -> None:
        for text in self.session.messages_to_send():
            message = json.loads(text)
            kind = message["type"]
            if kind == "response.create":
                assert self.active is None, "response.create while a response is active"
                assert not self.unanswered, "two response.create in flight"
                self.unanswered.append(message["event_id"])
            elif kind == "response.cancel":
                if raw_cancel:  # (the application's own, sent as it is)
                    raw_cancel = False
                else:
                    assert self.active is not None, "response.cancel with no active response"
            elif kind == "conversation.item.truncate":
                end = message["audio_end_ms"]
                assert isinstance(end, int)
                assert 0 <= end <= self.received[message["item_id"]]
                self.truncates.append((message["item_id"], end))
            elif kind == "conversation.item.retrieve":
                self.retrieves.append(message["item_id"])
            elif kind == "conversation.item.delete":
                self.deletes.append(message["item_id"])
        self.drains += 1  # both ways of draining, in turn
        drained = self.session.take_events() if self.drains % 2 else self.session.events()
        for event in drained:
            if isinstance(event, FunctionCall):
                assert event.call_id not in self.calls_cut, "an incomplete function call surfaced"
                self.calls_seen.append(event.call_id)

    def refusal(self) -> type[RtprotoError] | None:
        """What a command raises in the session's state (as documented)."""
        if self.lost:
            return ConnectionClosed
        if self.closing:
            return LocalProtocolError
        return None

    def command(
        self, call: Callable[[], Any], refused: Any = _STATE, *, raw_cancel: bool = False
    ) -> Any:
        """Run a command; check it raises exactly ``refused`` (by default what the state
        calls for), nothing else, and sends nothing when refused. The result, or the error."""
        if refused is _STATE:
            refused = self.refusal()
        try:
            result = call()
        except (LocalProtocolError, ConnectionClosed) as exc:
            assert type(exc) is refused, (
                f"{type(exc).__name__} ({exc}) where "
                f"{refused.__name__ if refused else 'no error'} was due"
                f" (state {self.session.state.value})"
            )
            assert not self.session.messages_to_send(), "a refused command sent something"
            self.drain()
            return exc
        except Exception as exc:
            raise AssertionError(f"a command raised {type(exc).__name__}: {exc}") from exc
        assert refused is None, (
            f"no {refused.__name__} (state {self.session.state.value}), returned {result!r}"
        )
        self.drain(raw_cancel=raw_cancel)
        return result

    # --- the application ----------------------------------------------------------------------

    @rule(text=st.text(max_size=5), trigger=st.booleans())
    def send_message(self, text: str, trigger: bool) -> None:
        self.command(lambda: self.session.send_message(text, trigger_response=trigger))

    @rule(start=st.booleans())
    def function_output(self, start: bool) -> None:
        self.command(
            lambda: self.session.send_function_call_output("call_x", "{}", start_response=start)
        )

    @rule(manual=st.booleans())
    def create_response(self, manual: bool) -> None:
        if manual:
            self.command(lambda: self.session.create_response({"instructions": "again"}))
        else:
            self.command(lambda: self.session.send_event({"type": "response.create"}))

    @rule()
    def raw_create_with_id(self) -> None:
        event_id = self.fresh("my_create")
        self.raw_ids.add(event_id)
        self.command(
            lambda: self.session.send_event({"type": "response.create", "event_id": event_id})
        )

    @rule()
    def raw_cancel(self) -> None:
        self.command(lambda: self.session.send_event({"type": "response.cancel"}), raw_cancel=True)

    @rule(cancel=st.booleans())
    def interrupt(self, cancel: bool) -> None:
        self.command(lambda: self.session.interrupt(self.now, cancel=cancel))

    @rule(samples=st.integers(0, 2400))
    def send_audio(self, samples: int) -> None:
        # the sip profile carries audio on the call: refused whatever the state
        refused = LocalProtocolError if self.profile is Profile.SIP else _STATE
        self.command(lambda: self.session.send_audio(b"\x01\x00" * samples), refused)

    @rule()
    def commit_audio(self) -> None:
        self.command(self.session.commit_audio)

    @rule()
    def clear_audio(self) -> None:
        self.command(self.session.clear_audio)

    @rule(update=st.sampled_from(VALID_UPDATES))
    def update_session(self, update: tuple[dict[str, Any], Any]) -> None:
        config, turn_detection = update
        accepted = self.command(lambda: self.session.update_session(config)) is None
        if accepted and turn_detection is not _KEEP:
            self.turn_detection = turn_detection  # (what the server will report)

    @rule(update=st.sampled_from(INVALID_UPDATES))
    def update_session_invalid(self, update: tuple[dict[str, Any], str]) -> None:
        config, field = update
        # validated before anything else: refused in every state
        error = self.command(lambda: self.session.update_session(config), LocalProtocolError)
        assert field in str(error), f"the error does not name {field}: {error}"

    @rule(keep=st.lists(st.integers(0, 63), max_size=6), at=st.integers(0, 6))
    def reset_history(self, keep: list[int], at: int) -> None:
        history = self.session.history
        wanted: list[M.Item] = []
        for index in keep if history else ():
            if history[index % len(history)] not in wanted:
                wanted.append(history[index % len(history)])
        new = M.MessageItem(
            id=self.fresh("user_item"),
            role="user",
            content=[M.ContentPart(type="input_text", text="hi")],
        )
        wanted.insert(at, new)
        self.command(lambda: self.session.reset_history(wanted))

    @rule(played=st.floats(0, 5000), pick=st.integers(0, 10))
    def playback_progress(self, played: float, pick: int) -> None:
        items = sorted(self.received)
        if items:
            item_id = items[pick % len(items)]
            tracked = self.command(lambda: self.session.playback_progress(item_id, played), None)
            assert not (self.lost and tracked), "an item is tracked after connection_lost()"

    @rule(played=st.floats(allow_nan=True, allow_infinity=True), pick=st.integers(0, 10))
    def playback_progress_any(self, played: float, pick: int) -> None:
        items = [*sorted(self.received), "item_unknown"]
        item_id = items[pick % len(items)]
        # (it sends nothing: no state refuses it; bad values are refused in every state)
        bad = played < 0 or not math.isfinite(played)
        refused = LocalProtocolError if bad else None
        tracked = self.command(lambda: self.session.playback_progress(item_id, played), refused)
        assert bad or not (self.lost and tracked), "an item is tracked after connection_lost()"

    @rule(dt=st.floats(0, 2))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.command(lambda: self.session.handle_timer(self.now), None)

    @rule()
    def close(self) -> None:
        self.command(self.session.close, None)
        self.closing = True
        assert self.session.state is (SessionState.CLOSED if self.lost else SessionState.CLOSING)

    @precondition(lambda self: not self.lost)
    @rule()
    def connection_lost(self) -> None:
        self.command(lambda: self.session.connection_lost("gone", self.now, code=1006), None)
        self.lost = True
        # the server and everything it was doing are gone
        self.active = None
        self.out_of_band.clear()
        self.unanswered.clear()
        self.truncates.clear()
        self.retrieves.clear()
        self.deletes.clear()
        assert self.session.state is SessionState.CLOSED
        assert not self.session.response_active

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

    @precondition(lambda self: bool(self.unanswered) and self.unanswered[0] in self.raw_ids)
    @rule()
    def server_refuses_raw_create(self) -> None:
        """The server refuses the application's own create, naming the id it gave: the
        sequencer is free again (the next automatic request goes at once)."""
        event_id = self.unanswered.pop(0)
        error = {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Invalid value: 'smell'. Supported values are: 'text' and 'audio'.",
            "param": "response.output_modalities",
            "event_id": event_id,
        }
        self.feed(self.server.event("error", error=error))
        if self.session.state is SessionState.CONNECTED and not self.unanswered:
            assert self.active is None  # (no create went while one was running)
            assert not self.session.response_active, "the refused create is still in flight"
            self.command(lambda: self.session.send_message("again", trigger_response=True))
            assert self.unanswered, "no response.create for a request after the refusal"

    @precondition(lambda self: self.active is None and not self.unanswered)
    @rule()
    def server_vad_response(self) -> None:
        self.start_response()

    @rule()
    def server_out_of_band_created(self) -> None:
        response_id = self.fresh("resp_oob")
        if self.feed(self.server.response_created(response_id, conversation=False)):
            self.out_of_band.append(response_id)

    @precondition(lambda self: bool(self.out_of_band))
    @rule()
    def server_out_of_band_done(self) -> None:
        response_id = self.out_of_band.pop(0)
        done = json.loads(self.server.response_done(response_id))
        done["response"]["conversation_id"] = None
        self.feed(json.dumps(done))

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
    @rule(finished=st.booleans())
    def server_function_call(self, finished: bool) -> None:
        call_id = f"call_{len(self.calls_fed) + len(self.calls_cut)}"
        response_id = str(self.active)
        events = self.server.function_call(response_id, f"fc_{call_id}", call_id, None)
        if finished:
            delivered = [self.feed(text) for text in events[-3:]]
            if all(delivered):
                self.calls_fed.add(call_id)
            return
        # cancelled in the middle of the call: the item ends "incomplete", arguments cut
        self.calls_cut.add(call_id)
        item = {
            "id": f"fc_{call_id}",
            "object": "realtime.item",
            "type": "function_call",
            "status": "incomplete",
            "name": "get_weather",
            "call_id": call_id,
            "arguments": '{"city":',
        }
        self.feed(self.server.event("conversation.item.done", previous_item_id=None, item=item))
        self.feed(
            self.server.event(
                "response.output_item.done", response_id=response_id, output_index=0, item=item
            )
        )

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

    @rule()
    def server_user_turn(self) -> None:
        history = self.session.history
        previous = history[-1].id if history else None
        for text in self.server.user_turn(self.fresh("item_user"), previous):
            self.feed(text)

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

    @precondition(lambda self: bool(self.deletes))
    @rule()
    def server_confirms_delete(self) -> None:
        self.feed(self.server.event("conversation.item.deleted", item_id=self.deletes.pop(0)))

    @rule()
    def server_session_updated(self) -> None:  # (what ends the WebRTC profile's wait)
        audio = SESSION["audio"]
        audio = {**audio, "input": {**audio["input"], "turn_detection": self.turn_detection}}
        self.feed(self.server.session_updated(audio=audio))

    @rule()
    def server_unknown_event(self) -> None:
        self.feed('{"type":"brand.new.event","event_id":"e"}')

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def calls_surfaced_exactly_once(self) -> None:
        if hasattr(self, "session"):
            assert len(self.calls_seen) == len(set(self.calls_seen))
            assert not set(self.calls_seen) & self.calls_cut, "an incomplete call surfaced"
            assert set(self.calls_seen) == self.calls_fed

    @invariant()
    def state_as_documented(self) -> None:
        if hasattr(self, "session"):
            state = self.session.state
            if self.lost:
                assert state is SessionState.CLOSED
            elif self.closing:
                assert state is SessionState.CLOSING
            else:
                assert state in (SessionState.CONNECTING, SessionState.CONNECTED)

    @invariant()
    def bounded(self) -> None:
        if hasattr(self, "session"):
            assert len(self.session.history) <= 4096
            assert not self.session.messages_to_send()


SessionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSessionMachine = SessionMachine.TestCase


@pytest.mark.pure_python
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
