"""The server core (emulator), behaviour by behaviour, with literal JSON of what it sends.

Every event the server produces in these tests is validated against the official ``openai``
SDK's own server event models (GA, or beta for the beta dialect) by :class:`Harness`.
"""

from __future__ import annotations

import io
import json
import math
import re
import typing
import wave
from typing import Any

import numpy as np
import pytest

from rtproto import models as M
from rtproto import serialize_client_event
from rtproto.audio import (
    alaw_decode,
    decode_base64,
    encode_base64,
    resample,
    ulaw_decode,
    ulaw_encode,
)
from rtproto.config import normalize_session_config
from rtproto.dialect import Dialect
from rtproto.errors import LocalProtocolError
from rtproto.events import SessionUpdate
from rtproto.server import (
    DEFAULT_INSTRUCTIONS,
    SUPPORTED_CLIENT_EVENTS,
    AudioCommitted,
    ClientError,
    ConnectionEnded,
    EchoResponder,
    FunctionCallPart,
    HookResponder,
    ItemAdded,
    ResponseContext,
    ResponsePlan,
    ScriptResponder,
    ServerLog,
    ServerOptions,
    ServerSession,
    ServiceIds,
    SessionExpired,
    SessionStarted,
    SessionUpdated,
    SpeechPart,
    SpeechStarted,
    SpeechStopped,
    TextPart,
    TurnEnded,
    TurnStarted,
    pcm24k_from_wav,
    script_audio_files,
    sequential_ids,
    synthesize_speech,
)
from rtproto.server.core import merge_session_configs
from rtproto.server.response import decode_input, encode_output, split_arguments, usage_object
from rtproto.server.vad import EnergyVad, VadSettings, threshold_level
from rtproto.server.validate import Reject, check_session_config, supported

from .fuzzing import FUZZ, load_harness

pydantic = pytest.importorskip("pydantic")
ga_events = pytest.importorskip("openai.types.realtime.realtime_server_event")
beta_events = pytest.importorskip("openai.types.beta.realtime.realtime_server_event")
GA_ADAPTER = pydantic.TypeAdapter(ga_events.RealtimeServerEvent)
BETA_ADAPTER = pydantic.TypeAdapter(beta_events.RealtimeServerEvent)


# ------------------------------------------------------------------------------ helpers --


def tone(ms: int, frequency: float = 300.0, amplitude: float = 0.3) -> bytes:
    t = np.arange(ms * 24) / 24000.0
    return np.rint(np.sin(2 * np.pi * frequency * t) * amplitude * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (ms * 24)


#: The brief's turn: 300 ms silence, 800 ms of a 300 Hz tone at 0.3, 1 s silence.
TURN = silence(300) + tone(800) + silence(1000)
#: GA ``rate_limits.updated`` follows ``response.done`` by ~43 ms (service observations 10).
RATE_LIMITS_DELAY = 0.043


def check_event(event: dict[str, Any], dialect: Dialect = Dialect.GA) -> None:
    """The official SDK accepts the event as one of its own server events.

    One recorded deviation: beta whisper-1 ``transcription.completed`` events carry no
    ``usage`` (service observations 4), which the SDK's beta model requires; the rest of
    such an event is checked with a stand-in usage.
    """
    adapter = GA_ADAPTER if dialect is Dialect.GA else BETA_ADAPTER
    if (
        dialect is Dialect.BETA
        and event.get("type") == "conversation.item.input_audio_transcription.completed"
        and "usage" not in event
    ):
        event = {**event, "usage": {"type": "duration", "seconds": 0.0}}
    adapter.validate_python(event)


class Harness:
    """A server core, the clock, and helpers that drain and check what it sends."""

    def __init__(self, **options: Any) -> None:
        # readable ids (event_0001, item_0001...) unless a test asks for another generator;
        # id_generator=None: the default, ServiceIds (the service's id shapes)
        options.setdefault("id_generator", sequential_ids())
        self.server = ServerSession(ServerOptions(**options))
        self.dialect: Dialect = options.get("dialect", Dialect.GA)
        self.now = 0.0
        self.event_ids: set[str] = set()
        self.audio: list[tuple[str, bytes]] = []

    def connect(self) -> list[dict[str, Any]]:
        self.server.connection_made(self.now)
        return self.drain()

    def drain(self) -> list[dict[str, Any]]:
        events = [json.loads(text) for text in self.server.messages_to_send()]
        for event in events:
            check_event(event, self.dialect)
            if event["type"] == "input_audio_buffer.dtmf_event_received":
                continue  # the one server event without an event_id
            assert event["event_id"] not in self.event_ids, "server event ids are unique"
            self.event_ids.add(event["event_id"])
        while (chunk := self.server.next_output_audio()) is not None:
            self.audio.append(chunk)
        return events

    def send(self, event: dict[str, Any] | str, now: float | None = None) -> list[dict[str, Any]]:
        if now is not None:
            self.now = now
        text = event if isinstance(event, str) else json.dumps(event)
        self.server.receive(text, self.now)
        return self.drain()

    def append(
        self, pcm: bytes, chunk_ms: int = 20, *, encode: Any = None, feed: bool = False
    ) -> list[dict[str, Any]]:
        """Stream ``pcm`` (PCM16 24 kHz) in real time, ``chunk_ms`` per append."""
        events: list[dict[str, Any]] = []
        size = chunk_ms * 48
        for start in range(0, len(pcm), size):
            chunk = pcm[start : start + size]
            if feed:
                self.server.feed_audio(chunk, self.now)
                events += self.drain()
            else:
                data = encode(chunk) if encode else chunk
                events += self.send(
                    {"type": "input_audio_buffer.append", "audio": encode_base64(data)}
                )
            self.now += len(chunk) / 48000.0
            events += self.run_timers(self.now)
        return events

    def run_timers(self, until: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        while (timer := self.server.get_timer()) is not None and timer <= until:
            self.server.handle_timer(timer)
            events += self.drain()
        self.now = max(self.now, until)
        return events

    def settle(self) -> list[dict[str, Any]]:
        """What is due within the GA ``rate_limits.updated`` delay (43 ms after a done)."""
        return self.run_timers(self.now + RATE_LIMITS_DELAY)

    def logs(self) -> list[Any]:
        out = []
        while (record := self.server.next_event()) is not None:
            out.append(record)
        return out


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def only(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


def error_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    (event,) = events
    assert event["type"] == "error"
    assert list(event["error"]) == ["type", "code", "message", "param", "event_id"]
    error: dict[str, Any] = event["error"]
    return error


def retrieved_audio(harness: Harness, item_id: str) -> bytes:
    """The audio of an item's first content part, as ``conversation.item.retrieve`` gives it."""
    (retrieved,) = harness.send({"type": "conversation.item.retrieve", "item_id": item_id})
    return decode_base64(retrieved["item"]["content"][0]["audio"])


def user_text(text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


def connected(**options: Any) -> Harness:
    harness = Harness(**options)
    harness.connect()
    harness.logs()
    return harness


def manual(**options: Any) -> Harness:
    """Connected, with turn detection off (manual commits)."""
    harness = connected(**options)
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    }
    harness.send(update)
    return harness


def delayed(delay: float, text: str = "Hello there, how are you?") -> HookResponder:
    return HookResponder(lambda ctx: ResponsePlan((SpeechPart(text),), delay=delay))


# ------------------------------------------------------------------------ session start --


def test_session_created_is_the_full_default_config_in_the_live_key_order() -> None:
    harness = Harness()
    (event,) = harness.connect()
    assert event == {
        "type": "session.created",
        "event_id": "event_0001",
        "session": {
            "type": "realtime",
            "object": "realtime.session",
            "id": "sess_0001",
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": 1_750_003_600,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 200,
                        "idle_timeout_ms": None,
                        "create_response": True,
                        "interrupt_response": True,
                    },
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "alloy",
                    "speed": 1.0,
                },
            },
            "include": None,
        },
    }
    session = event["session"]
    assert list(session) == [
        "type", "object", "id", "model", "output_modalities", "instructions", "tools",
        "tool_choice", "max_output_tokens", "tracing", "truncation", "prompt", "expires_at",
        "audio", "include",
    ]  # fmt: skip
    assert list(session["audio"]["input"]) == [
        "format", "transcription", "noise_reduction", "turn_detection",
    ]  # fmt: skip
    assert session["instructions"].endswith("even if you\u2019re asked about them.")
    assert harness.server.session.model == "gpt-realtime"
    assert isinstance(harness.logs()[0], SessionStarted)


def test_expires_at_from_unix_time_and_model_dependent_instructions() -> None:
    server = ServerSession(ServerOptions(model="gpt-realtime-mini", max_duration=60))
    server.connection_made(5.0, unix_time=1_800_000_000.5)
    created = json.loads(server.messages_to_send()[0])
    assert created["session"]["expires_at"] == 1_800_000_060
    assert created["session"]["instructions"] == ""
    assert created["session"]["model"] == "gpt-realtime-mini"
    custom = ServerSession(ServerOptions(instructions="Be brief."))
    custom.connection_made(0.0)
    assert custom.session.instructions == "Be brief."


def test_beta_dialect_sends_the_flat_session_then_conversation_created() -> None:
    harness = Harness(dialect=Dialect.BETA)
    created, conversation = harness.connect()
    assert created["type"] == "session.created"
    session = created["session"]
    assert "type" not in session and "audio" not in session
    assert session["modalities"] == ["text", "audio"]
    assert session["voice"] == "alloy"
    assert session["input_audio_format"] == "pcm16"
    assert session["turn_detection"]["silence_duration_ms"] == 200
    assert session["temperature"] == 0.8
    assert conversation == {
        "type": "conversation.created",
        "event_id": "event_0002",
        "conversation": {"id": "conv_0001", "object": "realtime.conversation"},
    }


def test_connection_lifecycle_misuse() -> None:
    server = ServerSession()
    with pytest.raises(LocalProtocolError):
        server.receive("{}", 0.0)
    with pytest.raises(LocalProtocolError):
        server.feed_audio(b"", 0.0)
    server.handle_timer(0.0)  # nothing to do before the connection
    server.connection_made(0.0)
    with pytest.raises(LocalProtocolError):
        server.connection_made(0.0)
    server.messages_to_send()
    server.connection_lost(1.0)
    server.connection_lost(1.0)
    server.receive('{"type":"response.create"}', 2.0)
    server.feed_audio(silence(100), 2.0)
    assert server.messages_to_send() == []
    assert server.get_timer() is None
    logs = [server.next_event() for _ in range(2)]
    assert isinstance(logs[1], ConnectionEnded)
    assert logs[1].describe() == "connection ended"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("profile", "carrier-pigeon"),
        ("pace", "slow"),
        ("max_duration", 0),
        ("rate_limit_tokens", 0),
        ("audio_chunk_ms", 0),
        ("max_pending_messages", 0),
    ],
)
def test_options_are_checked(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        ServerOptions(**{field: value})


LIMITS = (
    "max_message_size",
    "max_input_buffer_ms",
    "max_conversation_items",
    "max_pending_messages",
    "max_pending_logs",
)


def test_option_bounds_and_documented_defaults() -> None:
    smallest = ServerOptions(
        rate_limit_tokens=1, audio_chunk_ms=1, max_duration=0.001, **dict.fromkeys(LIMITS, 1)
    )
    assert smallest.token_limit == 1 and smallest.session_length == 0.001
    for name in LIMITS:
        with pytest.raises(ValueError, match=f"{name} must be >= 1"):
            ServerOptions(**{name: 0})
    options = ServerOptions()
    assert (
        options.max_input_buffer_ms,
        options.max_conversation_items,
        options.max_pending_messages,
        options.max_pending_logs,
        options.audio_chunk_ms,
        options.seed,
    ) == (15 * 60 * 1000, 1024, 100_000, 10_000, 100, 0)


@pytest.mark.parametrize(
    ("initial", "message"),
    [
        ([("type", "realtime")], "initial_session must be a mapping"),
        (
            {"type": "transcription"},
            "Invalid value: 'transcription'. Supported values are: 'realtime'.",
        ),
        ({"type": "realtime", "voice": "x"}, "Unknown parameter: 'initial_session.voice'."),
    ],
)
def test_initial_session_is_checked_when_the_options_are_made(initial: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        ServerOptions(initial_session=initial)
    assert str(info.value) == message


def test_check_session_config_refuses_what_is_not_an_object() -> None:
    with pytest.raises(Reject) as info:
        check_session_config(["realtime"], "session")
    error = info.value
    assert error.code == "invalid_type"
    assert error.param == "session"
    assert error.message == (
        "Invalid type for 'session': expected an object, but got an array instead."
    )
    check_session_config({"instructions": "x"})  # type left out: realtime
    with pytest.raises(Reject) as info:
        check_session_config({"output_modalities": ["text", "audio"]}, "initial_session")
    assert (info.value.code, info.value.param) == (
        "invalid_value",
        "initial_session.output_modalities",
    )


def test_merge_session_configs_merges_audio_settings_one_by_one() -> None:
    merged = merge_session_configs(
        {"instructions": "A", "audio": {"output": {"voice": "verse"}}},
        None,  # skipped
        {"audio": {"output": {"speed": 1.2}, "input": {"turn_detection": None}}},
    )
    assert merged == {
        "instructions": "A",
        "audio": {"output": {"voice": "verse", "speed": 1.2}, "input": {"turn_detection": None}},
    }
    # an earlier audio value that is not an object is replaced by a later object
    assert merge_session_configs({"audio": None}, {"audio": {"output": {"voice": "ash"}}}) == {
        "audio": {"output": {"voice": "ash"}}
    }
    assert merge_session_configs(None, None) == {}


def test_id_generator_is_injectable() -> None:
    ids = sequential_ids()
    assert [ids("item_"), ids("item_"), ids("resp_")] == ["item_0001", "item_0002", "resp_0001"]
    counter = iter(range(1000))
    harness = Harness(id_generator=lambda prefix: f"{prefix}x{next(counter)}")
    (created,) = harness.connect()
    assert created["event_id"].startswith("event_x")
    assert created["session"]["id"].startswith("sess_x")


#: Service ids (service observations 6): 21 base62 characters; call ids 16; the WebRTC
#: output buffer's event ids 16 lowercase hex.
SERVICE_ID = re.compile(r"(event|sess|conv|item|resp)_[0-9A-Za-z]{21}")
CALL_ID = re.compile(r"call_[0-9A-Za-z]{16}")
HEX_EVENT_ID = re.compile(r"event_[0-9a-f]{16}")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def minted_ms(service_id: str) -> int:
    """The unix time in ms a service id was minted at (its 7 characters after the prefix)."""
    head = service_id.split("_", 1)[1][:7]
    return sum(BASE62.index(c) * 62**power for power, c in enumerate(reversed(head)))


def test_default_ids_have_the_service_shapes_and_are_time_ordered() -> None:
    def session(seed: int = 0, start: float = 0.0) -> tuple[Harness, list[dict[str, Any]]]:
        harness = Harness(id_generator=None, profile="webrtc", seed=seed)
        harness.now = start
        events = harness.connect()
        tools = {"type": "realtime", "tools": [{"type": "function", "name": "f"}]}
        events += harness.send(update(tools), now=start + 1.0)
        events += harness.send(user_text("hi"), now=start + 1.0)
        create = {"type": "response.create", "response": {"tool_choice": "required"}}
        events += harness.send(create, now=start + 2.5)
        events += harness.send({"type": "response.create"}, now=start + 2.5)
        events += harness.run_timers(start + 30.0)
        return harness, events

    harness, events = session()
    buffer_events = [e for e in events if e["type"].startswith("output_audio_buffer.")]
    assert buffer_events and all(HEX_EVENT_ID.fullmatch(e["event_id"]) for e in buffer_events)
    others = [e for e in events if not e["type"].startswith("output_audio_buffer.")]
    assert all(SERVICE_ID.fullmatch(e["event_id"]) for e in others)
    minted = [minted_ms(e["event_id"]) for e in others]
    assert minted == sorted(minted) and len(set(minted)) > 3  # time-ordered (to the ms)
    assert SERVICE_ID.fullmatch(events[0]["session"]["id"]).group(1) == "sess"  # type: ignore[union-attr]
    created = only(events, "response.created")[0]["response"]
    assert SERVICE_ID.fullmatch(created["id"]) and SERVICE_ID.fullmatch(created["conversation_id"])
    items = [item.id for item in harness.server.conversation]
    assert len(items) == 3 and all(SERVICE_ID.fullmatch(i) for i in items)
    (call,) = only(events, "response.function_call_arguments.done")
    assert CALL_ID.fullmatch(call["call_id"])
    # the time in the id is the unix time (wall_clock_offset + now) of its minting
    assert minted_ms(events[0]["event_id"]) == 1_750_000_000_000
    assert minted_ms(created["id"]) == 1_750_000_002_500
    assert minted_ms(only(events, "rate_limits.updated")[0]["event_id"]) == 1_750_000_002_543
    # deterministic for a seed and a clock; a new session (reconnect) gets new ids
    again = [e["event_id"] for e in session()[1]]
    assert again == [e["event_id"] for e in events]
    other_seed = {e["event_id"] for e in session(seed=1)[1]}
    later = {e["event_id"] for e in session(start=60.0)[1]}
    assert not other_seed & set(again) and not later & set(again)
    ids = ServiceIds(seed=0, start=1.0)
    first = ids("item_")
    ids.now = 0.5  # a clock going back does not make an earlier id
    assert minted_ms(ids("item_")) == minted_ms(first) == 1000


# ------------------------------------------------------------------ protocol violations --

UNKNOWN_TYPE_MESSAGE = (
    "Invalid value: 'foo'. Supported values are: 'session.update', 'session.close', "
    "'input_audio_buffer.append', 'session.input_audio_buffer.append', "
    "'input_audio_buffer.commit', 'input_audio_buffer.clear', 'conversation.item.create', "
    "'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve', "
    "'response.create', and 'response.cancel'."
)


def test_unknown_event_type_lists_the_supported_types() -> None:
    harness = connected()
    error = error_of(harness.send({"type": "foo", "event_id": "evt_1"}))
    assert error == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": UNKNOWN_TYPE_MESSAGE,
        "param": "type",
        "event_id": "evt_1",
    }
    assert len(SUPPORTED_CLIENT_EVENTS) == 12
    # output_audio_buffer.clear is not a WebSocket client event
    error = error_of(harness.send({"type": "output_audio_buffer.clear"}))
    assert error["message"] == UNKNOWN_TYPE_MESSAGE.replace("'foo'", "'output_audio_buffer.clear'")
    assert error["event_id"] is None


def test_malformed_messages_are_answered_and_the_session_goes_on() -> None:
    harness = connected()
    error = error_of(harness.send("{not json"))
    assert error["code"] == "invalid_json"
    assert error["message"].startswith("Invalid event: failed to parse JSON value.")
    assert error["param"] is None and error["event_id"] is None
    error = error_of(harness.send({"event_id": "e1"}))
    assert error == {
        "type": "invalid_request_error",
        "code": "invalid_event",
        "message": "The 'type' field is missing.",
        "param": None,
        "event_id": "e1",
    }
    error = error_of(harness.send("[1, 2]"))
    assert error["code"] == "invalid_event"
    error = error_of(harness.send({"type": 7}))
    assert error["code"] == "invalid_type" and error["param"] == "type"
    assert (
        error["message"]
        == "Invalid type for 'type': expected a string, but got an integer instead."
    )
    error = error_of(harness.send({"type": "input_audio_buffer.clear", "event_id": 5}))
    assert error["param"] == "event_id" and error["event_id"] is None
    error = error_of(harness.send({"type": "input_audio_buffer.clear", "bogus": 1}))
    assert error["message"] == "Unknown parameter: 'bogus'." and error["param"] == "bogus"
    harness.server.receive(b"\x00\x01", harness.now, binary=True)
    assert error_of(harness.drain())["code"] == "invalid_event"
    harness.server.receive(b"\xff\xfe", harness.now)
    assert error_of(harness.drain())["code"] == "invalid_json"
    # still usable
    assert types(harness.send({"type": "input_audio_buffer.clear"})) == [
        "input_audio_buffer.cleared"
    ]
    assert [type(log) for log in harness.logs()] == [ClientError] * 8
    assert harness.logs() == []


def test_messages_over_the_size_limit_are_refused() -> None:
    harness = connected(max_message_size=100)
    error = error_of(harness.send(json.dumps({"type": "input_audio_buffer.clear", "x": "y" * 200})))
    assert error["code"] == "invalid_event"
    assert "more than the maximum of 100" in error["message"]
    # the limit is in bytes: 40 two-byte characters are 80 characters but 117 bytes here
    text = json.dumps({"type": "input_audio_buffer.clear", "x": "é" * 40}, ensure_ascii=False)
    assert len(text) <= 100 < len(text.encode())
    error = error_of(harness.send(text))
    assert f"the message is {len(text.encode())} bytes" in error["message"]


def test_a_message_of_exactly_the_size_limit_is_accepted() -> None:
    text = json.dumps({"type": "input_audio_buffer.clear", "event_id": "e1"})
    harness = connected(max_message_size=len(text))
    assert types(harness.send(text)) == ["input_audio_buffer.cleared"]
    longer = json.dumps({"type": "input_audio_buffer.clear", "event_id": "e22"})
    assert error_of(harness.send(longer))["code"] == "invalid_event"


def test_session_close_requests_a_normal_close() -> None:
    harness = connected()
    assert harness.send({"type": "session.close"}) == []
    assert harness.server.close_requested == (1000, "")
    assert harness.send({"type": "response.create"}) == []


def test_undrained_output_makes_the_driver_fail_loudly() -> None:
    server = ServerSession(ServerOptions(max_pending_messages=2))
    server.connection_made(0.0)
    server.receive('{"type":"input_audio_buffer.clear"}', 0.0)
    with pytest.raises(LocalProtocolError, match="drain"):
        server.receive('{"type":"input_audio_buffer.clear"}', 0.0)
    with pytest.raises(LocalProtocolError):
        server.handle_timer(0.0)
    server.messages_to_send()
    server.handle_timer(0.0)
    # output audio counts too: nine 100 ms chunks left undrained with a limit of nine
    call = ServerSession(ServerOptions(max_pending_messages=9, profile="webrtc"))
    call.connection_made(0.0)
    call.receive(json.dumps(user_text("hello")), 0.0)
    call.messages_to_send()
    call.receive('{"type":"response.create"}', 0.0)  # "You said: hello": 900 ms
    call.messages_to_send()
    with pytest.raises(LocalProtocolError, match="next_output_audio"):
        call.receive('{"type":"input_audio_buffer.clear"}', 0.0)
    phone = ServerSession(ServerOptions(max_pending_messages=2, profile="sip"))
    phone.connection_made(0.0)
    phone.dtmf_received("1", 0.0)
    with pytest.raises(LocalProtocolError, match="drain"):
        phone.dtmf_received("2", 0.0)
    with pytest.raises(LocalProtocolError, match="drain"):
        phone.feed_audio(silence(20), 0.0)


# ------------------------------------------------------------------------ session.update --


def update(session: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "session.update", "session": session}
    if event_id is not None:
        event["event_id"] = event_id
    return event


def detection_update(detection: dict[str, Any] | None) -> dict[str, Any]:
    """A ``session.update`` setting only the input's turn detection."""
    return update({"type": "realtime", "audio": {"input": {"turn_detection": detection}}})


@pytest.mark.parametrize(
    ("session", "code", "message", "param"),
    [
        (
            {"type": "realtime", "totally_made_up_field": 1},
            "unknown_parameter",
            "Unknown parameter: 'session.totally_made_up_field'.",
            "session.totally_made_up_field",
        ),
        (
            {"type": "realtime", "modalities": ["text"]},
            "unknown_parameter",
            "Unknown parameter: 'session.modalities'.",
            "session.modalities",
        ),
        (
            {"type": "realtime", "temperature": 0.8},
            "unknown_parameter",
            "Unknown parameter: 'session.temperature'.",
            "session.temperature",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "bogus": 1}}},
            },
            "unknown_parameter",
            "Unknown parameter: 'session.audio.input.turn_detection.bogus'.",
            "session.audio.input.turn_detection.bogus",
        ),
        (
            {"modalities": ["text", "audio"], "voice": "alloy"},
            "missing_required_parameter",
            "Missing required parameter: 'session.type'.",
            "session.type",
        ),
        (
            {"type": "session"},
            "invalid_value",
            "Invalid value: 'session'. Supported values are: 'realtime' and 'transcription'.",
            "session.type",
        ),
        (
            {"type": "transcription"},
            "invalid_value",
            "Passing a transcription session update event to a realtime session is not allowed.",
            "session.type",
        ),
        (
            {"type": "realtime", "reasoning": {"effort": "bogus"}},
            "invalid_value",
            "Invalid value: 'bogus'. Supported values are: 'minimal', 'low', 'medium', 'high', "
            "and 'xhigh'.",
            "session.reasoning.effort",
        ),
        (
            {"type": "realtime", "audio": {"output": {"voice": "robot"}}},
            "invalid_value",
            "Invalid value: 'robot'. Supported values are: 'alloy', 'ash', 'ballad', 'coral', "
            "'echo', 'sage', 'shimmer', 'verse', 'marin', and 'cedar'.",
            "session.audio.output.voice",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "invalid_value",
            "Invalid value: 16000. Supported values are: 24000.",
            "session.audio.input.format.rate",
        ),
        (
            {"type": "realtime", "audio": {"input": {"format": {"rate": 24000}}}},
            "missing_required_parameter",
            "Missing required parameter: 'session.audio.input.format.type'.",
            "session.audio.input.format.type",
        ),
        (
            {"type": "realtime", "output_modalities": ["audio", "text"]},
            "invalid_value",
            "Invalid modalities: ['audio', 'text']. Supported combinations are: ['text'] and "
            "['audio'].",
            "session.output_modalities",
        ),
        (
            {"type": "realtime", "instructions": 5},
            "invalid_type",
            "Invalid type for 'session.instructions': expected a string, but got an integer "
            "instead.",
            "session.instructions",
        ),
        (
            {"type": "realtime", "audio": {"output": {"speed": 2.0}}},
            "decimal_above_max_value",
            "Invalid 'session.audio.output.speed': decimal above maximum value. Expected a value "
            "<= 1.5, but got 2 instead.",
            "session.audio.output.speed",
        ),
        (
            {"type": "realtime", "max_output_tokens": 0},
            "integer_below_min_value",
            "Invalid 'session.max_output_tokens': integer below minimum value. Expected a value "
            ">= 1, but got 0 instead.",
            "session.max_output_tokens",
        ),
        (
            {"type": "realtime", "max_output_tokens": "lots"},
            "invalid_value",
            "Invalid value: 'lots'. Supported values are: 'inf'.",
            "session.max_output_tokens",
        ),
        (
            {"type": "realtime", "tools": [{"type": "function", "description": "x"}]},
            "missing_required_parameter",
            "Missing required parameter: 'session.tools[0].name'.",
            "session.tools[0].name",
        ),
        (
            {"type": "realtime", "tool_choice": True},
            "invalid_type",
            "Invalid type for 'session.tool_choice': expected one of a string or an object, but "
            "got a boolean instead.",
            "session.tool_choice",
        ),
        (
            {"type": "realtime", "model": "gpt-4o-realtime-preview"},
            "invalid_value",
            "Cannot update a session's model: the model is set when the session is created "
            "('gpt-realtime').",
            "session.model",
        ),
        (
            {
                "type": "realtime",
                "audio": {
                    "input": {"transcription": {"model": "gpt-realtime-whisper", "delay": "fast"}}
                },
            },
            "invalid_value",
            "Invalid value: 'fast'. Supported values are: 'minimal', 'low', 'medium', 'high', "
            "and 'xhigh'.",
            "session.audio.input.transcription.delay",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "gpt-transcribe", "keywords": "x"}}},
            },
            "invalid_type",
            "Invalid type for 'session.audio.input.transcription.keywords': expected an array, "
            "but got a string instead.",
            "session.audio.input.transcription.keywords",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "model_version": 3}}},
            },
            "invalid_type",
            "Invalid type for 'session.audio.input.turn_detection.model_version': expected a "
            "string, but got an integer instead.",
            "session.audio.input.turn_detection.model_version",
        ),
    ],
)
def test_session_update_validation(
    session: dict[str, Any], code: str, message: str, param: str
) -> None:
    harness = connected()
    before = harness.server.session
    error = error_of(harness.send(update(session, "upd_1")))
    assert error == {
        "type": "invalid_request_error",
        "code": code,
        "message": message,
        "param": param,
        "event_id": "upd_1",
    }
    assert harness.server.session == before  # nothing applied


def test_session_update_rejects_the_whole_update() -> None:
    harness = connected()
    error = error_of(
        harness.send(
            update({"type": "realtime", "instructions": "x", "audio": {"output": {"speed": 9}}})
        )
    )
    assert error["param"] == "session.audio.output.speed"
    assert harness.server.session.instructions == DEFAULT_INSTRUCTIONS
    error = error_of(harness.send({"type": "session.update"}))
    assert error["code"] == "missing_required_parameter" and error["param"] == "session"
    error = error_of(harness.send({"type": "session.update", "session": []}))
    assert error["code"] == "invalid_type"
    error = error_of(harness.send(update({"type": 3})))
    assert error["code"] == "invalid_type" and error["param"] == "session.type"


def test_session_update_merges_and_echoes_the_full_config() -> None:
    harness = connected()
    events = harness.send(
        update(
            {
                "type": "realtime",
                "model": "gpt-realtime",
                "instructions": "Be brief.",
                "output_modalities": ["text"],
                "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
                "tool_choice": {"type": "function", "name": "lookup"},
                "max_output_tokens": 300,
                "tracing": "auto",
                "truncation": {"type": "retention_ratio", "retention_ratio": 0.5},
                "reasoning": {"effort": "low"},
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "noise_reduction": {"type": "near_field"},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                    },
                    "output": {"format": {"type": "audio/pcm"}, "voice": "marin", "speed": 1.2},
                },
            },
            "evt_update",
        )
    )
    (event,) = events
    assert event["type"] == "session.updated"
    assert "evt_update" not in json.dumps(event)  # success does not echo the client event_id
    session = event["session"]
    assert list(session) == [
        "type", "object", "id", "model", "output_modalities", "instructions", "tools",
        "tool_choice", "max_output_tokens", "tracing", "truncation", "prompt", "reasoning",
        "expires_at", "audio", "include",
    ]  # fmt: skip
    assert session["instructions"] == "Be brief."
    assert session["audio"]["input"] == {
        "format": {"type": "audio/pcmu"},
        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
        "noise_reduction": {"type": "near_field"},
        "turn_detection": {
            "type": "semantic_vad",
            "eagerness": "high",
            "create_response": True,
            "interrupt_response": True,
        },
    }
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.2,
    }
    typed = harness.server.session
    assert isinstance(typed, M.RealtimeSession) and typed.max_output_tokens == 300
    (record,) = harness.logs()
    assert isinstance(record, SessionUpdated)
    assert record.describe().startswith("session updated: model, instructions")
    # a partial update changes only what it names
    (event,) = harness.send(update({"type": "realtime", "audio": {"output": {"speed": 1.0}}}))
    assert event["session"]["audio"]["output"]["voice"] == "marin"
    assert event["session"]["instructions"] == "Be brief."


@pytest.mark.parametrize("kind", ["server_vad", "semantic_vad"])
def test_session_update_takes_the_newer_transcription_and_vad_fields(kind: str) -> None:
    # what normalize_session_config now lets through, the emulator must take too
    transcription = {
        "model": "gpt-live-transcribe",
        "delay": "low",
        "keywords": ["LegalOn", "TomoniAI"],
        "languages": ["ja", "en"],
    }
    config = {
        "audio": {
            "input": {
                "transcription": transcription,
                "turnDetection": {"type": kind, "modelVersion": "default"},
            }
        }
    }
    text = serialize_client_event(
        SessionUpdate(session=normalize_session_config(config, defaults=False))
    )
    assert '"model_version":"default"' in text
    harness = connected()
    (event,) = harness.send(text)
    assert event["type"] == "session.updated"
    assert event["session"]["audio"]["input"]["transcription"] == transcription
    assert event["session"]["audio"]["input"]["turn_detection"]["type"] == kind
    typed = harness.server.session.audio.input  # type: ignore[union-attr]
    assert typed.transcription == M.InputTranscription(**transcription)  # type: ignore[union-attr]


def test_voice_is_immutable_once_the_assistant_has_spoken() -> None:
    harness = connected()
    harness.send(update({"type": "realtime", "audio": {"output": {"voice": "ash"}}}))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create"})
    error = error_of(
        harness.send(update({"type": "realtime", "audio": {"output": {"voice": "echo"}}}, "v2"))
    )
    assert error == {
        "type": "invalid_request_error",
        "code": "cannot_update_voice",
        "message": "Cannot update a conversation's voice if assistant audio is present.",
        "param": None,
        "event_id": "v2",
    }
    # naming the current voice is not a change
    (event,) = harness.send(update({"type": "realtime", "audio": {"output": {"voice": "ash"}}}))
    assert event["type"] == "session.updated"


def test_beta_session_update_takes_the_flat_shape() -> None:
    harness = Harness(dialect=Dialect.BETA)
    harness.connect()
    (event,) = harness.send(
        update(
            {
                "modalities": ["text"],
                "voice": "ash",
                "temperature": 0.7,
                "input_audio_format": "g711_alaw",
                "turn_detection": {"silence_duration_ms": 500},
            }
        )
    )
    session = event["session"]
    assert session["modalities"] == ["text"]
    assert session["voice"] == "ash" and session["temperature"] == 0.7
    assert session["input_audio_format"] == "g711_alaw"
    assert session["turn_detection"]["type"] == "server_vad"
    assert session["turn_detection"]["silence_duration_ms"] == 500
    error = error_of(harness.send(update({"type": "realtime", "audio": {}})))
    assert error["code"] == "unknown_parameter" and error["param"] == "session.type"
    error = error_of(harness.send(update({"temperature": 2.0})))
    assert error["code"] == "decimal_above_max_value"
    error = error_of(harness.send({"type": "session.update", "session": "voice"}))
    assert (error["code"], error["param"]) == ("invalid_type", "session")
    error = error_of(harness.send({"type": "input_audio_buffer.clear", "session": {"x": 1}}))
    assert (error["code"], error["param"]) == ("unknown_parameter", "session")
    error = error_of(harness.send({"type": "transcription_session.update", "session": {}}))
    assert error["message"] == (
        "Passing a transcription session update event to a realtime session is not allowed."
    )


# ---------------------------------------------------------------------------- input audio --


def test_vad_audio_turn_events_in_order_with_the_right_offsets() -> None:
    harness = connected()
    events = harness.append(TURN)
    assert types(events[:9]) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ]
    started, stopped, committed, added, done = events[:5]
    # onset 300 ms - prefix padding 300 ms; stop = end of speech (1100) + 200 ms of silence
    assert started == {
        "type": "input_audio_buffer.speech_started",
        "event_id": started["event_id"],
        "audio_start_ms": 0,
        "item_id": "item_0001",
    }
    assert stopped["audio_end_ms"] == 1300 and stopped["item_id"] == "item_0001"
    assert committed == {
        "type": "input_audio_buffer.committed",
        "event_id": committed["event_id"],
        "previous_item_id": None,
        "item_id": "item_0001",
    }
    user_item = {
        "id": "item_0001",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }
    assert added["item"] == user_item and done["item"] == user_item
    assert added["previous_item_id"] is None
    # deltas: transcript deltas interleaved with the audio deltas, in order
    body = types(events[9:-7])
    assert set(body) == {"response.output_audio_transcript.delta", "response.output_audio.delta"}
    assert body[0] == "response.output_audio_transcript.delta"
    audio = b"".join(decode_base64(e["delta"]) for e in only(events, "response.output_audio.delta"))
    assert audio == TURN[: 1300 * 48]  # the echo of what the user said (<= 3 s)
    transcript = "".join(e["delta"] for e in only(events, "response.output_audio_transcript.delta"))
    assert transcript == "I heard 1.3 seconds of audio."
    assert all(
        isinstance(e["obfuscation"], str)
        for e in only(events, "response.output_audio_transcript.delta")
    )
    assert types(events[-7:]) == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[7]["previous_item_id"] == "item_0001"
    assert events[8]["part"] == {"type": "audio", "transcript": ""}
    (delta,) = only(events, "response.output_audio.delta")[:1]
    assert len(decode_base64(delta["delta"])) == 4800  # 100 ms per delta
    response = events[-2]["response"]
    assert response["status"] == "completed" and response["status_details"] is None
    assert response["output"] == [
        {
            "id": "item_0002",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": "I heard 1.3 seconds of audio."}],
        }
    ]
    usage = response["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_token_details"]["audio_tokens"] == 13  # 1.3 s at 10 tokens/s
    assert usage["output_token_details"]["audio_tokens"] == math.ceil(1300 / 80)
    (limits,) = events[-1]["rate_limits"]
    assert limits == {
        "name": "tokens",
        "limit": 40000,
        "remaining": 40000 - usage["total_tokens"],
        "reset_seconds": round(usage["total_tokens"] * 60 / 40000, 3),
    }
    records = harness.logs()
    assert [type(r) for r in records] == [
        SpeechStarted, SpeechStopped, AudioCommitted, TurnStarted, TurnEnded,
    ]  # fmt: skip
    assert [r.describe() for r in records] == [
        "speech started at 0 ms (item_0001)",
        "speech stopped at 1300 ms (item_0001)",
        "1300 ms of user audio committed as item_0001 (vad)",
        "response resp_0001 started",
        f"response resp_0001 completed, {usage['total_tokens']} tokens",
    ]


def test_prefix_padding_and_silence_duration_are_honoured() -> None:
    harness = connected()
    harness.send(
        update(
            {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {
                            "type": "server_vad",
                            "prefix_padding_ms": 100,
                            "silence_duration_ms": 500,
                            "create_response": False,
                        }
                    }
                },
            }
        )
    )
    events = harness.append(silence(500) + tone(800) + silence(1000))
    assert types(events) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]  # create_response false: the sequence stops after the user item
    assert events[0]["audio_start_ms"] == 400
    assert events[1]["audio_end_ms"] == 1800
    # the next turn chains to the first item, offsets keep counting from the session start
    events = harness.append(tone(400) + silence(600))
    assert events[0]["audio_start_ms"] == 2200 and events[1]["audio_end_ms"] == 3200
    assert events[2]["previous_item_id"] == "item_0001"


def test_threshold_high_hears_nothing() -> None:
    harness = connected()
    harness.send(
        update(
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.99}}},
            }
        )
    )
    assert harness.append(TURN) == []
    assert harness.server.input_buffer_ms == pytest.approx(2100)


@pytest.mark.parametrize(
    ("eagerness", "end"), [("high", 1400), ("medium", 1700), ("auto", 1700), ("low", 2100)]
)
def test_semantic_vad_waits_by_eagerness(eagerness: str, end: int) -> None:
    harness = connected()
    detection = {"type": "semantic_vad", "eagerness": eagerness, "create_response": False}
    harness.send(detection_update(detection))
    events = harness.append(silence(300) + tone(800) + silence(1200))
    # 1100 ms + 300 ms (high) / 600 ms (medium, auto) / 1000 ms (low)
    assert events[1]["audio_end_ms"] == end


def test_short_clicks_are_not_speech() -> None:
    harness = connected()
    assert harness.append(silence(100) + tone(20) + silence(400)) == []
    vad = EnergyVad()  # 30 ms of sound is the shortest speech
    samples = np.frombuffer(silence(100) + tone(30) + silence(400), dtype="<i2")
    assert vad.process(samples, VadSettings()) == [("start", 100 * 24), ("stop", 330 * 24)]
    click = np.frombuffer(tone(20) + silence(100), dtype="<i2")
    assert EnergyVad().process(click, VadSettings()) == []  # from the very first sample
    vad.process(np.frombuffer(tone(20), dtype="<i2"), VadSettings())
    vad.reset(0)  # forgets the sound heard so far
    assert vad.process(click, VadSettings()) == []
    assert vad.position == len(click)
    # after speech, counting starts again: a click is still no speech
    speech = np.frombuffer(tone(100) + silence(200), dtype="<i2")
    assert [kind for kind, _ in vad.process(speech, VadSettings())] == ["start", "stop"]
    assert vad.process(click, VadSettings()) == []


def test_zero_silence_duration_ends_speech_after_one_quiet_frame() -> None:
    samples = np.frombuffer(tone(100) + silence(100), dtype="<i2")
    settings = VadSettings(silence_duration_ms=0)
    assert EnergyVad().process(samples, settings) == [("start", 0), ("stop", 110 * 24)]


def test_vad_detector_directly() -> None:
    vad = EnergyVad()
    settings = VadSettings()
    pcm = np.frombuffer(TURN, dtype="<i2")
    events = vad.process(pcm[:1000], settings) + vad.process(pcm[1000:], settings)
    assert events == [("start", 300 * 24), ("stop", 1300 * 24)]
    assert not vad.speaking
    assert threshold_level(0.5) == pytest.approx(32768 * 10 ** (-35 / 20))


def test_manual_commit_mode() -> None:
    harness = manual()
    assert harness.append(TURN) == []  # no VAD events, no acknowledgement of appends
    events = harness.send({"type": "input_audio_buffer.commit", "event_id": "c1"})
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]  # a commit never starts a response
    assert events[0]["item_id"] == "item_0001"
    events = harness.send({"type": "response.create"})
    assert types(events)[0] == "response.created" and types(events)[-1] == "response.done"
    assert types(harness.settle()) == ["rate_limits.updated"]
    assert AudioCommitted in [type(r) for r in harness.logs()]


@pytest.mark.parametrize(("ms", "shown"), [(0, "0.00"), (50, "50.00"), (99, "99.00")])
def test_commit_of_less_than_100_ms_fails_with_the_exact_message(ms: int, shown: str) -> None:
    harness = manual()
    harness.append(silence(ms))
    error = error_of(harness.send({"type": "input_audio_buffer.commit", "event_id": "commit_10"}))
    assert error == {
        "type": "invalid_request_error",
        "code": "input_audio_buffer_commit_empty",
        "message": "Error committing input audio buffer: buffer too small. Expected at least "
        f"100ms of audio, but buffer only has {shown}ms of audio.",
        "param": None,
        "event_id": "commit_10",
    }


def test_commit_of_exactly_100_ms_is_accepted() -> None:
    harness = manual()
    harness.append(silence(100))
    assert types(harness.send({"type": "input_audio_buffer.commit"}))[0] == (
        "input_audio_buffer.committed"
    )


def test_commit_counts_fractional_milliseconds() -> None:
    harness = manual()
    harness.send({"type": "input_audio_buffer.append", "audio": encode_base64(b"\x01\x00" * 1237)})
    error = error_of(harness.send({"type": "input_audio_buffer.commit"}))
    assert "buffer only has 51.54ms of audio" in error["message"]


def test_clear_discards_the_buffer() -> None:
    harness = manual()
    harness.append(silence(500))
    events = harness.send({"type": "input_audio_buffer.clear"})
    assert events[0] == {"type": "input_audio_buffer.cleared", "event_id": events[0]["event_id"]}
    assert "0.00ms" in error_of(harness.send({"type": "input_audio_buffer.commit"}))["message"]


def test_manual_commit_during_speech_commits_the_vad_item_at_once() -> None:
    harness = connected()
    events = harness.append(silence(300) + tone(400))
    assert types(events) == ["input_audio_buffer.speech_started"]
    events = harness.send({"type": "input_audio_buffer.commit"})
    assert types(events)[:3] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert events[0]["item_id"] == "item_0001"
    assert len(events) == 3  # the commit itself never starts a response
    events = harness.append(silence(400))
    assert "input_audio_buffer.speech_stopped" not in types(events)


def test_clear_during_speech_drops_the_turn() -> None:
    harness = connected()
    harness.append(silence(300) + tone(400))
    harness.send({"type": "input_audio_buffer.clear"})
    assert harness.append(silence(400)) == []


def test_g711_input_is_decoded_for_vad_and_duration() -> None:
    harness = connected()
    harness.send(
        update({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}}})
    )
    pcm8k = np.frombuffer(TURN, dtype="<i2")[::3].copy()
    ulaw = ulaw_encode(pcm8k)
    events: list[dict[str, Any]] = []
    for start in range(0, len(ulaw), 160):  # 20 ms of G.711 per append
        events += harness.send(
            {"type": "input_audio_buffer.append", "audio": encode_base64(ulaw[start : start + 160])}
        )
    assert events[0]["audio_start_ms"] == 0 and events[1]["audio_end_ms"] == 1300
    item_id = events[2]["item_id"]
    # back in the session's input format (8 bytes per ms)
    assert len(retrieved_audio(harness, item_id)) == 1300 * 8
    harness.send(
        update({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcma"}}}})
    )
    harness.send({"type": "input_audio_buffer.append", "audio": encode_base64(b"\xd5" * 800)})
    assert harness.server.input_buffer_ms == pytest.approx(
        800 + 100
    )  # 800 ms were left after the turn


def test_append_errors_and_odd_bytes() -> None:
    harness = manual()
    error = error_of(harness.send({"type": "input_audio_buffer.append", "audio": "not base64!"}))
    assert error["code"] == "invalid_value" and error["param"] == "audio"
    error = error_of(harness.send({"type": "input_audio_buffer.append"}))
    assert error["message"] == "Missing required parameter: 'audio'."
    # a sample split across two appends is kept whole
    harness.send({"type": "input_audio_buffer.append", "audio": encode_base64(b"\x01")})
    harness.send({"type": "input_audio_buffer.append", "audio": encode_base64(b"\x00" * 4801)})
    assert harness.server.input_buffer_ms == pytest.approx(4802 / 48)
    harness.send({"type": "session.input_audio_buffer.append", "audio": ""})
    assert harness.server.input_buffer_ms == pytest.approx(4802 / 48)


def test_input_buffer_is_bounded() -> None:
    harness = manual(max_input_buffer_ms=1000)
    harness.append(silence(1500), chunk_ms=100)
    assert harness.server.input_buffer_ms == 1000


@pytest.mark.parametrize("limit", [None, 1000])
def test_a_vad_turn_holds_prefix_padding_speech_and_silence(limit: int | None) -> None:
    """The item is cut at [speech start - 300 ms, speech end + 200 ms]: audio before the
    padding is left out; when the bounded buffer dropped older audio, what is left."""
    options = {} if limit is None else {"max_input_buffer_ms": limit}
    harness = connected(**options)
    detection = {"type": "server_vad", "create_response": False}
    harness.send(detection_update(detection))
    # in appends of 800 ms: the last one (1600..2400 ms) holds the stop, and audio after it
    events = harness.append(silence(1500) + tone(600) + silence(300), chunk_ms=800)
    started, stopped, committed = events[:3]
    assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (1200, 2300)
    # 1200..2300 ms; with the 1000 ms bound only 1400..2400 was buffered at the stop
    ms = len(retrieved_audio(harness, committed["item_id"])) / 48
    assert ms == (1100 if limit is None else 900)


def test_a_semantic_vad_turn_holds_300_ms_of_prefix_padding() -> None:
    """semantic_vad has no prefix_padding_ms setting: its items start 300 ms before speech
    (and "high" eagerness ends the turn after 300 ms of silence)."""
    harness = connected()
    detection = {"type": "semantic_vad", "eagerness": "high", "create_response": False}
    harness.send(detection_update(detection))
    events = harness.append(silence(1500) + tone(600) + silence(500))
    started, stopped, committed = events[:3]
    assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (1200, 2400)
    assert len(retrieved_audio(harness, committed["item_id"])) / 48 == 1200


def test_idle_timeout_triggers_a_turn_after_playback() -> None:
    harness = connected()
    detection = {"type": "server_vad", "idle_timeout_ms": 2000}
    harness.send(detection_update(detection))
    harness.send(user_text("hi"))
    events = harness.send({"type": "response.create"})
    audio_ms = (
        sum(len(decode_base64(e["delta"])) for e in only(events, "response.output_audio.delta"))
        / 48
    )
    assert harness.server.get_timer() == pytest.approx(RATE_LIMITS_DELAY)
    assert types(harness.settle()) == ["rate_limits.updated"]
    assert harness.server.get_timer() == pytest.approx(audio_ms / 1000 + 2.0)
    harness.append(silence(300), chunk_ms=100)
    events = harness.run_timers(100.0)
    assert types(events)[:5] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    assert events[0]["audio_start_ms"] == 0 and events[0]["audio_end_ms"] == 300
    assert events[0]["item_id"] == events[1]["item_id"]


def test_a_user_turn_or_a_newer_response_replaces_the_idle_timeout() -> None:
    harness = connected()
    detection = {"type": "server_vad", "idle_timeout_ms": 2000, "create_response": False}
    harness.send(detection_update(detection))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create"})
    harness.settle()
    armed = harness.server.get_timer()
    harness.send({"type": "input_audio_buffer.append", "audio": encode_base64(silence(200))})
    assert types(harness.send({"type": "input_audio_buffer.commit"}))[0] == (
        "input_audio_buffer.committed"
    )
    assert harness.server.get_timer() != armed
    assert "input_audio_buffer.timeout_triggered" not in types(harness.run_timers(100.0))
    # two responses in a row: only the second one's timeout is left
    harness.send({"type": "response.create"}, now=200.0)
    harness.settle()
    first = harness.server.get_timer()
    assert first is not None and 200.0 < first < 210.0
    harness.send({"type": "response.create"}, now=200.5)
    harness.settle()
    assert harness.server.get_timer() == pytest.approx(first + 0.5)
    # a response that starts before the timeout replaces it (realtime pace: it lasts)
    paced = connected(pace="realtime")
    slow = {"type": "server_vad", "idle_timeout_ms": 5000, "create_response": False}
    paced.send(detection_update(slow))
    paced.send(user_text("hi"))
    paced.send({"type": "response.create"})
    assert "response.done" in types(paced.run_timers(3.0))
    armed = paced.server.get_timer()
    assert armed is not None and 5.0 < armed < 8.0
    paced.send({"type": "response.create"}, now=armed - 0.1)
    events = paced.run_timers(armed + 0.5)
    assert "response.done" not in types(events)  # still speaking
    assert "input_audio_buffer.timeout_triggered" not in types(events)


def test_idle_timeout_after_a_spoken_turn_starts_where_that_turn_ended() -> None:
    harness = connected()
    detection = {"type": "server_vad", "idle_timeout_ms": 1000}
    harness.send(detection_update(detection))
    events = harness.append(tone(400) + silence(300))
    assert only(events, "input_audio_buffer.speech_stopped")[0]["audio_end_ms"] == 600
    events = harness.append(silence(3000), chunk_ms=100)  # the echo plays, then 1 s idle
    (timeout,) = only(events, "input_audio_buffer.timeout_triggered")
    assert timeout["audio_start_ms"] == 600 and timeout["audio_end_ms"] > 600


def test_idle_timeout_is_skipped_while_the_user_speaks() -> None:
    harness = connected()
    detection = {"type": "server_vad", "idle_timeout_ms": 200, "create_response": False}
    harness.send(detection_update(detection))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    harness.settle()
    events = harness.append(tone(400))  # speech starts before the timeout: no timeout
    assert types(events) == ["input_audio_buffer.speech_started"]
    assert harness.run_timers(10.0) == []


def test_transcription_is_emitted_after_the_response() -> None:
    harness = connected()
    transcription = {"model": "gpt-4o-mini-transcribe"}
    harness.send(
        update(
            {
                "type": "realtime",
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {"input": {"transcription": transcription}},
            }
        )
    )
    events = harness.append(TURN)
    kinds = types(events)
    assert (
        kinds.index("response.done")
        < kinds.index("conversation.item.input_audio_transcription.delta")
        < kinds.index("conversation.item.input_audio_transcription.completed")
        < kinds.index("rate_limits.updated")  # GA: 43 ms after response.done
    )
    deltas = only(events, "conversation.item.input_audio_transcription.delta")
    (completed,) = only(events, "conversation.item.input_audio_transcription.completed")
    assert (
        "".join(d["delta"] for d in deltas) == completed["transcript"] == "[1.3 seconds of audio]"
    )
    assert all("obfuscation" in d for d in deltas)
    assert completed["usage"] == {
        "type": "tokens",
        "total_tokens": 13 + 6,
        "input_tokens": 13,
        "input_token_details": {"text_tokens": 0, "audio_tokens": 13},
        "output_tokens": 6,
    }
    assert len(completed["logprobs"]) == len(deltas)


def test_whisper_transcription_is_one_delta_with_duration_usage() -> None:
    harness = manual(transcription_delay=0.5)
    harness.send(
        update({"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}})
    )
    harness.append(silence(1000))
    events = harness.send({"type": "input_audio_buffer.commit"})
    assert len(events) == 3
    # the item goes before its transcription is due: nothing is transcribed
    harness.send({"type": "conversation.item.delete", "item_id": events[0]["item_id"]})
    assert harness.run_timers(harness.now + 1) == []
    harness.append(silence(1000))
    harness.send({"type": "input_audio_buffer.commit"})
    events = harness.run_timers(harness.now + 1)
    assert types(events) == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert "obfuscation" not in events[0]
    assert events[1]["usage"] == {"type": "duration", "seconds": 1.0}


# --------------------------------------------------------------------------- conversation --


def test_item_create_orders_and_previous_item_ids() -> None:
    harness = connected()
    events = harness.send(user_text("first"))
    assert types(events) == ["conversation.item.added", "conversation.item.done"]
    assert events[0]["previous_item_id"] is None
    assert events[0]["item"] == {
        "id": "item_0001",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "first"}],
    }
    events = harness.send({**user_text("second"), "previous_item_id": "root"})
    assert events[0]["previous_item_id"] is None  # "root" inserts at the start
    events = harness.send({**user_text("third"), "previous_item_id": "item_0002"})
    assert events[0]["previous_item_id"] == "item_0002"
    assert [item.id for item in harness.server.conversation] == [
        "item_0002",
        "item_0003",
        "item_0001",
    ]
    error = error_of(harness.send({**user_text("x"), "previous_item_id": "nope", "event_id": "c9"}))
    assert error["param"] == "previous_item_id" and error["event_id"] == "c9"
    assert len(harness.server.conversation) == 3
    records = harness.logs()
    assert isinstance(records[0], ItemAdded)
    assert records[0].describe() == "item item_0001 added: message (user)"


def test_duplicate_client_ids_are_appended_again() -> None:
    harness = connected()
    item = {
        "id": "my-item",
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "x"}],
    }
    harness.send({"type": "conversation.item.create", "item": item})
    events = harness.send({"type": "conversation.item.create", "item": item})
    assert events[0]["previous_item_id"] == "my-item"
    assert events[0]["item"]["id"] == "my-item"
    assert [i.id for i in harness.server.conversation] == ["my-item", "my-item"]


@pytest.mark.parametrize(
    ("item", "code", "message", "param"),
    [
        (
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_audio", "transcript": "hi"}],
            },
            "missing_required_parameter",
            "Missing required parameter: 'item.content[0].text'.",
            "item.content[0].text",
        ),
        (
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_audio", "text": "hi"}],
            },
            "invalid_value",
            "Invalid value: 'output_audio'. Supported values are: 'output_text'.",
            "item.content[0].type",
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "hi"}]},
            "invalid_value",
            "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_audio', and "
            "'input_image'.",
            "item.content[0].type",
        ),
        (
            {"type": "message", "role": "robot", "content": []},
            "invalid_value",
            "Invalid value: 'robot'. Supported values are: 'user', 'assistant', and 'system'.",
            "item.role",
        ),
        (
            {"type": "function_call_output", "output": "x"},
            "missing_required_parameter",
            "Missing required parameter: 'item.call_id'.",
            "item.call_id",
        ),
        (
            {"type": "reasoning"},
            "invalid_value",
            "Invalid value: 'reasoning'. Supported values are: 'message', 'function_call', "
            "'function_call_output', and 'mcp_approval_response'.",
            "item.type",
        ),
        (
            {"role": "user", "content": []},
            "missing_required_parameter",
            "Missing required parameter: 'item.type'.",
            "item.type",
        ),
        (
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_audio", "audio": "!!"}],
            },
            "invalid_value",
            "Invalid 'item.content[0].audio': the value is not valid base64-encoded audio.",
            "item.content[0].audio",
        ),
        (
            {"type": "message", "role": "assistant", "content": ["text"]},
            "invalid_type",
            "Invalid type for 'item.content[0]': expected an object, but got a string instead.",
            "item.content[0]",
        ),
        (
            {"type": "message", "role": "assistant", "content": [{"type": "input_text"}]},
            "invalid_value",
            "Invalid value: 'input_text'. Supported values are: 'output_text'.",
            "item.content[0].type",
        ),
        (
            {"type": "message", "role": "assistant", "content": [{"type": "output_text"}]},
            "missing_required_parameter",
            "Missing required parameter: 'item.content[0].text'.",
            "item.content[0].text",
        ),
    ],
)
def test_item_create_validation(item: dict[str, Any], code: str, message: str, param: str) -> None:
    harness = connected()
    error = error_of(harness.send({"type": "conversation.item.create", "item": item}))
    assert (error["code"], error["message"], error["param"]) == (code, message, param)
    assert harness.server.conversation == ()


def test_other_item_kinds_are_stored() -> None:
    harness = connected()
    events = harness.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call", "name": "lookup", "arguments": "{}"},
        }
    )
    assert events[0]["item"] == {
        "id": "item_0001",
        "type": "function_call",
        "status": "completed",
        "name": "lookup",
        "call_id": "call_0001",
        "arguments": "{}",
    }
    events = harness.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": "call_0001",
                "output": "42",
                "object": "realtime.item",
            },
        }
    )
    assert types(events) == ["conversation.item.added", "conversation.item.done"]  # no response
    assert events[0]["item"] == {
        "id": "item_0002",
        "type": "function_call_output",
        "call_id": "call_0001",
        "output": "42",
        "status": "completed",
    }
    harness.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "mcp_approval_response",
                "id": "ap1",
                "approval_request_id": "mcpr_1",
                "approve": True,
            },
        }
    )
    image = {"type": "input_image", "image_url": "data:image/png;base64,AA==", "detail": "low"}
    harness.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [image]},
        }
    )
    kinds = [type(item) for item in harness.server.conversation]
    assert kinds == [
        M.FunctionCallItem,
        M.FunctionCallOutputItem,
        M.McpApprovalResponseItem,
        M.MessageItem,
    ]


def test_conversation_is_bounded() -> None:
    harness = connected(max_conversation_items=3)
    for n in range(5):
        harness.send(user_text(str(n)))
        assert len(harness.server.conversation) == min(n + 1, 3)
    assert [item.content[0].text for item in harness.server.conversation] == ["2", "3", "4"]  # type: ignore[union-attr]
    harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    kept = harness.server.conversation
    assert len(kept) == 3 and kept[-1].type == "message" and kept[-1].role == "assistant"  # type: ignore[union-attr]


def test_input_usage_counts_instructions_tools_items_and_images() -> None:
    harness = connected()
    harness.send(update({"type": "realtime", "instructions": "abcdefgh"}))  # 2 tokens
    image = {"type": "input_image", "image_url": "data:image/png;base64,AA=="}
    text = {"type": "input_text", "text": "hello"}  # 2 tokens
    message = {"type": "message", "role": "user", "content": [text, image]}
    harness.send({"type": "conversation.item.create", "item": message})
    events = harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    usage = only(events, "response.done")[0]["response"]["usage"]
    # instructions 2 + tools "[]" 1 + the item's 4 + its text 2; one image is 85 tokens
    details = usage["input_token_details"]
    assert (details["text_tokens"], details["image_tokens"], details["audio_tokens"]) == (9, 85, 0)
    assert usage["input_tokens"] == 94
    # the reply above (4 + "You said: hello" 4), a function output (4 + "12345678" 2) and
    # 5 s of user audio (4, and 10 audio tokens a second)
    output = {"type": "function_call_output", "call_id": "c1", "output": "12345678"}
    harness.send({"type": "conversation.item.create", "item": output})
    audio = {"type": "input_audio", "audio": encode_base64(silence(5000))}
    spoken = {"type": "message", "role": "user", "content": [audio]}
    harness.send({"type": "conversation.item.create", "item": spoken})
    events = harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    usage = only(events, "response.done")[0]["response"]["usage"]
    details = usage["input_token_details"]
    assert (details["text_tokens"], details["image_tokens"], details["audio_tokens"]) == (
        9 + 8 + 6 + 4,
        85,
        50,
    )
    assert usage["input_tokens"] == 27 + 85 + 50
    assert details["cached_tokens"] == 64  # the 94 of the previous request, in 64s
    # an out-of-band response reads no cache
    oob = {"conversation": "none", "output_modalities": ["text"]}
    events = harness.send({"type": "response.create", "response": oob})
    usage = only(events, "response.done")[0]["response"]["usage"]
    assert usage["input_token_details"]["cached_tokens"] == 0


def test_a_pcm_response_format_without_a_rate_is_24_khz() -> None:
    harness = connected()
    params = {"audio": {"output": {"format": {"type": "audio/pcm"}}}}
    created = harness.send({"type": "response.create", "response": params})[0]["response"]
    assert created["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_retrieve() -> None:
    harness = connected()
    error = error_of(
        harness.send({"type": "conversation.item.retrieve", "item_id": "non_existent_item"})
    )
    assert error == {
        "type": "invalid_request_error",
        "code": "item_retrieve_invalid_item_id",
        "message": "Error retrieving item: the item with id 'non_existent_item' does not exist.",
        "param": None,
        "event_id": None,
    }
    clip = silence(100) + tone(200)
    item = {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_audio", "audio": encode_base64(clip)},
            {"type": "input_text", "text": "and"},
        ],
    }
    (added, _) = harness.send({"type": "conversation.item.create", "item": item})
    assert added["item"]["content"][0] == {"type": "input_audio", "transcript": None}  # no bytes
    (retrieved,) = harness.send({"type": "conversation.item.retrieve", "item_id": "item_0001"})
    assert retrieved["item"] == {
        "id": "item_0001",
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [
            {"type": "input_audio", "audio": encode_base64(clip), "transcript": None},
            {"type": "input_text", "text": "and"},
        ],
    }
    events = harness.send({"type": "response.create"})
    assistant = only(events, "response.output_item.done")[0]["item"]["id"]
    (retrieved,) = harness.send({"type": "conversation.item.retrieve", "item_id": assistant})
    part = retrieved["item"]["content"][0]
    sent = b"".join(decode_base64(e["delta"]) for e in only(events, "response.output_audio.delta"))
    assert decode_base64(part["audio"]) == sent == clip
    assert part["transcript"] == "I heard 0.3 seconds of audio."
    # an item without audio comes back as it was made
    text = {"id": "text_item", **user_text("plain")["item"]}
    harness.send({"type": "conversation.item.create", "item": text})
    (retrieved,) = harness.send({"type": "conversation.item.retrieve", "item_id": "text_item"})
    assert retrieved["item"] == {
        "id": "text_item",
        "object": "realtime.item",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "plain"}],
    }


def test_delete() -> None:
    harness = connected()
    error = error_of(harness.send({"type": "conversation.item.delete", "item_id": "yo"}))
    assert error["code"] == "item_delete_invalid_item_id"
    assert error["message"] == "Error deleting item: the item with id 'yo' does not exist."
    harness.send(user_text("x"))
    events = harness.send({"type": "conversation.item.delete", "item_id": "item_0001"})
    assert events == [
        {
            "type": "conversation.item.deleted",
            "event_id": events[0]["event_id"],
            "item_id": "item_0001",
        }
    ]
    assert harness.server.conversation == ()


def spoken_turn(harness: Harness, text: str = "hi") -> tuple[str, int]:
    """A text turn answered with speech: (assistant item id, audio ms)."""
    harness.send(user_text(text))
    events = harness.send({"type": "response.create"})
    item_id: str = only(events, "response.output_item.done")[0]["item"]["id"]
    ms = (
        sum(len(decode_base64(e["delta"])) for e in only(events, "response.output_audio.delta"))
        // 48
    )
    return item_id, ms


def test_truncate() -> None:
    harness = connected()
    item_id, ms = spoken_turn(harness, "hello")
    assert ms == 900  # "You said: hello": tones of 180, 300 and 300 ms, two 60 ms gaps
    events = harness.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 500,
        }
    )
    assert events == [
        {
            "type": "conversation.item.truncated",
            "event_id": events[0]["event_id"],
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 500,
        }
    ]
    (retrieved,) = harness.send({"type": "conversation.item.retrieve", "item_id": item_id})
    part = retrieved["item"]["content"][0]
    assert len(decode_base64(part["audio"])) == 500 * 48
    assert part["transcript"] is None  # no unheard text stays in the context
    error = error_of(
        harness.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 11579,
            }
        )
    )
    assert error == {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "Audio content of 500ms is already shorter than 11579ms",
        "param": "audio_end_ms",
        "event_id": None,
    }


@pytest.mark.parametrize("target", ["user", "text", "function", "index"])
def test_truncate_refuses_what_is_not_assistant_audio(target: str) -> None:
    harness = connected()
    if target == "text":
        harness.send(update({"type": "realtime", "output_modalities": ["text"]}))
    harness.send(user_text("x"))
    events = harness.send({"type": "response.create"})
    assistant = only(events, "response.output_item.done")[0]["item"]["id"]
    item_id = {"user": "item_0001", "text": assistant, "index": assistant}.get(target)
    index = 1 if target == "index" else 0
    if target == "function":
        harness.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call", "name": "f", "arguments": "{}", "id": "fc"},
            }
        )
        item_id = "fc"
    error = error_of(
        harness.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": index,
                "audio_end_ms": 0,
            }
        )
    )
    assert error["code"] == "unsupported_content_type"
    assert error["message"] == "Only model output audio messages can be truncated"


def test_truncate_errors() -> None:
    harness = connected()
    error = error_of(
        harness.send(
            {
                "type": "conversation.item.truncate",
                "item_id": "nope",
                "content_index": 0,
                "audio_end_ms": 0,
            }
        )
    )
    assert error["code"] == "item_truncate_invalid_item_id"
    assert error["message"] == "Item with item_id not found: nope"
    error = error_of(
        harness.send(
            {
                "type": "conversation.item.truncate",
                "item_id": "nope",
                "content_index": 0,
                "audio_end_ms": -1,
            }
        )
    )
    assert error["code"] == "integer_below_min_value" and error["param"] == "audio_end_ms"
    error = error_of(harness.send({"type": "conversation.item.truncate", "item_id": "nope"}))
    assert error["code"] == "missing_required_parameter"
    fraction = {"item_id": "nope", "content_index": 0.5, "audio_end_ms": 0}
    error = error_of(harness.send({"type": "conversation.item.truncate", **fraction}))
    assert (error["code"], error["param"]) == ("invalid_type", "content_index")


def test_truncate_of_an_item_still_streaming_keeps_it_cut() -> None:
    harness = connected(pace="realtime")
    harness.send(user_text("one two three four five"))
    harness.send({"type": "response.create"})
    harness.run_timers(0.5)
    item_id = harness.server.conversation[-1].id
    assert isinstance(item_id, str)
    harness.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 200,
        }
    )
    events = harness.run_timers(10.0)
    assert only(events, "conversation.item.done")[0]["item"]["content"] == [
        {"type": "output_audio", "transcript": None}
    ]
    done = only(events, "response.done")[0]["response"]
    assert done["output"][0]["content"][0]["transcript"] is None
    assert len(retrieved_audio(harness, item_id)) == 200 * 48


# ------------------------------------------------------------------------------ responses --


def test_text_response_events() -> None:
    harness = connected()
    harness.send(user_text("hi there"))
    events = harness.send(
        {
            "type": "response.create",
            "response": {"output_modalities": ["text"], "metadata": {"topic": "x"}},
        }
    )
    events += harness.settle()
    deltas = only(events, "response.output_text.delta")
    assert types(events) == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[3]["part"] == {"type": "text", "text": ""}
    assert "".join(d["delta"] for d in deltas) == "You said: hi there"
    user_item = harness.server.conversation[0].id
    added, done = only(events, "conversation.item.added"), only(events, "conversation.item.done")
    assert added[0]["previous_item_id"] == done[0]["previous_item_id"] == user_item
    assert all("obfuscation" in d for d in deltas)
    created = events[0]["response"]
    assert created == {
        "object": "realtime.response",
        "id": "resp_0001",
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": "conv_0001",
        "output_modalities": ["text"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
        "usage": None,
        "metadata": {"topic": "x"},
    }
    done = events[-2]["response"]
    assert done["metadata"] == {"topic": "x"}
    assert done["output"][0]["content"] == [{"type": "output_text", "text": "You said: hi there"}]
    assert done["usage"]["output_token_details"] == {"text_tokens": 5, "audio_tokens": 0}


def test_second_create_while_active_is_refused() -> None:
    harness = connected(responder=delayed(1.0))
    harness.send(user_text("hi"))
    events = harness.send({"type": "response.create"})
    assert types(events) == ["response.created"]
    assert harness.server.active_response_id == "resp_0001"
    error = error_of(harness.send({"type": "response.create", "event_id": "rc2"}))
    assert error == {
        "type": "invalid_request_error",
        "code": "conversation_already_has_active_response",
        "message": "Conversation already has an active response in progress: resp_0001. Wait "
        "until the response is finished before creating a new one.",
        "param": None,
        "event_id": "rc2",
    }
    events = harness.run_timers(2.0)
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
    assert len(only(events, "response.created")) == 0  # the refused create never started
    assert harness.server.active_response_id is None


def test_cancel_when_idle_fails_with_the_exact_message() -> None:
    harness = connected()
    error = error_of(harness.send({"type": "response.cancel", "event_id": "x"}))
    assert error == {
        "type": "invalid_request_error",
        "code": "response_cancel_not_active",
        "message": "Cancellation failed: no active response found",
        "param": None,
        "event_id": "x",
    }
    harness.send(user_text("hi"))
    harness.send({"type": "response.create"})  # fast: already done
    error = error_of(harness.send({"type": "response.cancel", "response_id": "resp_0001"}))
    assert error["code"] == "response_cancel_not_active"


def test_cancel_before_any_output_gives_zero_usage_and_no_rate_limits() -> None:
    harness = connected(responder=delayed(1.0))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create"})
    events = harness.send({"type": "response.cancel"})
    assert types(events) == ["response.done"]
    response = events[0]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert response["output"] == []
    assert response["usage"]["total_tokens"] == 0
    assert response["usage"]["input_token_details"]["cached_tokens_details"]["audio_tokens"] == 0
    assert harness.run_timers(5.0) == []  # nothing more of the cancelled response
    assert [r.describe() for r in harness.logs()][-1] == (
        "response resp_0001 cancelled (client_cancelled), 0 tokens"
    )


def test_cancel_mid_response_closes_open_parts_with_partial_content() -> None:
    harness = connected(pace="realtime")
    harness.send(user_text("one two three four five six"))
    streamed = harness.send({"type": "response.create"})
    streamed += harness.run_timers(0.45)
    sent_text = "".join(
        e["delta"] for e in only(streamed, "response.output_audio_transcript.delta")
    )
    events = harness.send({"type": "response.cancel", "response_id": "resp_0001"})
    events += harness.settle()
    assert types(events) == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[1]["transcript"] == sent_text != "You said: one two three four five six"
    assert events[4]["item"]["status"] == "incomplete"
    response = events[5]["response"]
    assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert response["output"][0]["status"] == "incomplete"
    assert response["usage"]["output_tokens"] > 0
    assert harness.server.get_timer() == 3600  # the paced output is gone: only the expiry
    assert harness.run_timers(10.0) == []


def test_out_of_band_responses() -> None:
    harness = connected(responder=delayed(1.0, "Summary."))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create"})  # the default conversation is busy
    events = harness.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"purpose": "summary"},
                "output_modalities": ["text"],
            },
        }
    )
    assert types(events) == ["response.created"]  # runs in parallel
    oob = events[0]["response"]
    assert oob["conversation_id"] is None and oob["metadata"] == {"purpose": "summary"}
    # speech during both: only the default-conversation response is interrupted
    events = harness.append(silence(300) + tone(300))
    assert types(events) == ["input_audio_buffer.speech_started", "response.done"]
    assert events[1]["response"]["id"] == "resp_0001"
    assert events[1]["response"]["status_details"]["reason"] == "turn_detected"
    events = harness.run_timers(5.0)
    kinds = types(events)
    assert not [k for k in kinds if k.startswith("conversation.item.")]
    assert only(events, "response.done")[0]["response"]["id"] == "resp_0002"
    assert only(events, "response.done")[0]["response"]["output"][0]["content"] == [
        {"type": "output_text", "text": "Summary."}
    ]
    assert [i.id for i in harness.server.conversation] == ["item_0001"]


def test_response_input_with_item_references() -> None:
    seen: list[ResponseContext] = []

    def hook(context: ResponseContext) -> str:
        seen.append(context)
        return "ok"

    harness = connected(responder=HookResponder(hook))
    harness.send(user_text("a"))
    harness.send(user_text("b"))
    harness.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "instructions": "Only this.",
                "input": [
                    {"type": "item_reference", "id": "item_0001"},
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "c"}],
                    },
                ],
            },
        }
    )
    (context,) = seen
    assert [item.content[0].text for item in context.items] == ["a", "c"]  # type: ignore[union-attr]
    assert context.instructions == "Only this." and context.out_of_band
    error = error_of(
        harness.send(
            {
                "type": "response.create",
                "response": {"input": [{"type": "item_reference", "id": "zz"}]},
            }
        )
    )
    assert error["param"] == "response.input[0].id"


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"conversation": "other"}, "invalid_value", "response.conversation"),
        ({"output_modalities": ["text", "audio"]}, "invalid_value", "response.output_modalities"),
        (
            {"metadata": {str(n): "v" for n in range(17)}},
            "object_above_max_properties",
            "response.metadata",
        ),
        ({"metadata": {"k" * 65: "v"}}, "string_above_max_length", "response.metadata"),
        ({"metadata": {"k": "v" * 513}}, "string_above_max_length", "response.metadata.k"),
        ({"temperature": 0.8}, "unknown_parameter", "response.temperature"),
        ({"tools": "all"}, "invalid_type", "response.tools"),
    ],
)
def test_response_create_validation(params: dict[str, Any], code: str, param: str) -> None:
    harness = connected()
    error = error_of(harness.send({"type": "response.create", "response": params}))
    assert (error["code"], error["param"]) == (code, param)
    error = error_of(harness.send({"type": "response.create", "response": "now"}))
    assert error["code"] == "invalid_type" and error["param"] == "response"


def test_response_create_limits_are_exact() -> None:
    """Metadata at its limits (16 properties, 64-character names, 512-character values) and
    ``max_output_tokens`` of 4096 are accepted; one more is refused (see above)."""
    harness = manual()
    metadata = {"k" * 64: "v" * 512, **{str(n): "v" for n in range(15)}}
    params = {"output_modalities": ["text"], "metadata": metadata, "max_output_tokens": 4096}
    events = harness.send({"type": "response.create", "response": params})
    assert "error" not in types(events)
    assert only(events, "response.created")[0]["response"]["metadata"] == metadata
    error = error_of(
        harness.send({"type": "response.create", "response": {"max_output_tokens": 4097}})
    )
    assert (error["code"], error["param"]) == (
        "integer_above_max_value",
        "response.max_output_tokens",
    )


def test_function_call_turn() -> None:
    plan = ResponsePlan(
        (
            SpeechPart("Let me check."),
            FunctionCallPart("get_weather", json.dumps({"city": "Paris", "unit": "celsius"})),
        )
    )
    harness = connected(responder=HookResponder(lambda ctx: plan))
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    harness.send(update({"type": "realtime", "tools": tools}))
    harness.send(user_text("weather?"))
    events = harness.send({"type": "response.create"}) + harness.settle()
    call_events = events[types(events).index("response.output_item.done") + 1 :]
    deltas = only(call_events, "response.function_call_arguments.delta")
    assert types(call_events) == [
        "response.output_item.added",
        "conversation.item.added",
        *["response.function_call_arguments.delta"] * len(deltas),
        "response.function_call_arguments.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]  # no content part events for a function call
    assert len(deltas) > 3
    assert call_events[0]["item"] == {
        "id": "item_0003",
        "type": "function_call",
        "status": "in_progress",
        "name": "get_weather",
        "call_id": "call_0001",
        "arguments": "",
    }
    assert call_events[0]["output_index"] == 1
    arguments = '{"city": "Paris", "unit": "celsius"}'
    assert "".join(d["delta"] for d in deltas) == arguments
    assert deltas[0]["call_id"] == "call_0001" and "content_index" not in deltas[0]
    done = only(call_events, "response.function_call_arguments.done")[0]
    assert done["name"] == "get_weather" and done["arguments"] == arguments
    output = only(events, "response.done")[0]["response"]["output"]
    assert [item["type"] for item in output] == ["message", "function_call"]
    assert output[1]["status"] == "completed"
    # the tool result does not start a response by itself
    result = {"type": "function_call_output", "call_id": "call_0001", "output": '{"temp_c": 21}'}
    events = harness.send({"type": "conversation.item.create", "item": result})
    assert types(events) == ["conversation.item.added", "conversation.item.done"]


def test_echo_responder_branches() -> None:
    harness = connected()
    tools = [{"type": "function", "name": "lookup"}]
    harness.send(update({"type": "realtime", "tools": tools, "tool_choice": "required"}))
    harness.send(user_text("x"))
    events = harness.send({"type": "response.create"})
    assert only(events, "response.function_call_arguments.done")[0]["name"] == "lookup"
    events = harness.send(
        {
            "type": "response.create",
            "response": {"tool_choice": {"type": "function", "name": "other"}},
        }
    )
    assert only(events, "response.function_call_arguments.done")[0]["name"] == "other"
    harness.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_0001", "output": "42"},
        }
    )
    events = harness.send(
        {
            "type": "response.create",
            "response": {"tool_choice": "auto", "output_modalities": ["text"]},
        }
    )
    assert only(events, "response.output_text.done")[0]["text"] == "The function returned: 42"

    def said(context_items: list[dict[str, Any]]) -> str:
        h = connected()
        for item in context_items:
            h.send({"type": "conversation.item.create", "item": item})
        events = h.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        text: str = only(events, "response.output_text.done")[0]["text"]
        return text

    assert said([]) == "Hello! How can I help you?"
    image = {"type": "input_image", "image_url": "data:image/png;base64,AA=="}
    assert (
        said([{"type": "message", "role": "user", "content": [image]}])
        == "I received your message."
    )


def test_max_output_tokens_makes_an_incomplete_response() -> None:
    plan = ResponsePlan((TextPart("word " * 40), FunctionCallPart("f", '{"a": 1}')))
    harness = connected(responder=HookResponder(lambda ctx: plan))
    harness.send(user_text("x"))
    events = harness.send(
        {
            "type": "response.create",
            "response": {"max_output_tokens": 20, "output_modalities": ["text"]},
        }
    )
    response = only(events, "response.done")[0]["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert len(response["output"]) == 1  # the function call did not fit
    assert response["output"][0]["status"] == "incomplete"
    assert len(response["output"][0]["content"][0]["text"]) == 80
    # audio output is cut in proportion
    harness.send(update({"type": "realtime", "max_output_tokens": 5}))
    events = harness.send({"type": "response.create"})
    assert only(events, "response.done")[0]["response"]["status"] == "incomplete"
    calls = HookResponder(lambda ctx: [FunctionCallPart("f", '{"long": "' + "x" * 100 + '"}')])
    harness.server._responder = calls
    events = harness.send({"type": "response.create"})
    assert len(only(events, "response.function_call_arguments.done")[0]["arguments"]) < 30


def within_budget(parts: tuple[Any, ...], budget: int, modality: str) -> list[dict[str, Any]]:
    """The events of one response playing ``parts`` under ``max_output_tokens=budget``."""
    plan = ResponsePlan(parts)
    harness = connected(responder=HookResponder(lambda ctx: plan))
    params = {"max_output_tokens": budget, "output_modalities": [modality]}
    return harness.send({"type": "response.create", "response": params})


@pytest.mark.parametrize(
    ("parts", "budget", "kinds"),
    [
        # the text uses the whole budget: the call after it cannot start
        ((TextPart("abcd" * 5), FunctionCallPart("f", "{}")), 5, ["message"]),
        # the call uses it: the text after it cannot start
        ((FunctionCallPart("fn", "{}"), TextPart("more")), 1, ["function_call"]),
    ],
)
def test_max_output_tokens_used_up_ends_the_response(
    parts: Any, budget: int, kinds: list[str]
) -> None:
    events = within_budget(parts, budget, "text")
    response = only(events, "response.done")[0]["response"]
    assert [item["type"] for item in response["output"]] == kinds
    assert response["status"] == "incomplete"


def test_max_output_tokens_cuts_text_audio_and_arguments_in_proportion() -> None:
    voice = SpeechPart("abcdefgh", tone(800))  # 2 + 10 tokens: half of it fits in 6
    call = FunctionCallPart("f", '{"city": "Paris, France", "days": 10.0}')  # with "f": 40
    text = TextPart("abcd" * 10)  # 10 tokens, in a text response
    for part, budget in ((voice, 6), (call, 5), (text, 5)):
        events = within_budget((part,), budget, "text" if part is text else "audio")
        response = only(events, "response.done")[0]["response"]
        assert response["status"] == "incomplete"
        assert response["output"][0]["status"] == "incomplete"
        if part is voice:
            assert only(events, "response.output_audio_transcript.done")[0]["transcript"] == "abcd"
            deltas = only(events, "response.output_audio.delta")
            assert sum(len(decode_base64(d["delta"])) for d in deltas) == 400 * 48
        elif part is call:  # 10 tokens, 5 fit: half of the 39 characters of arguments
            done = only(events, "response.function_call_arguments.done")[0]
            assert done["arguments"] == call.arguments_json[:19]
        else:
            assert only(events, "response.output_text.done")[0]["text"] == "abcd" * 5


def test_odd_audio_bytes_are_dropped_from_items_and_voices() -> None:
    odd = b"\x01\x00\x02\x00\x03"
    harness = connected(responder=HookResponder(lambda ctx: [SpeechPart("x", odd)]))
    audio = {"type": "input_audio", "audio": encode_base64(odd)}
    message = {"type": "message", "role": "user", "content": [audio]}
    item_id = only(
        harness.send({"type": "conversation.item.create", "item": message}),
        "conversation.item.added",
    )[0]["item"]["id"]
    assert retrieved_audio(harness, item_id) == odd[:4]
    events = harness.send({"type": "response.create"})
    deltas = only(events, "response.output_audio.delta")
    assert b"".join(decode_base64(d["delta"]) for d in deltas) == odd[:4]


def test_output_that_fits_max_output_tokens_exactly_is_complete() -> None:
    text = TextPart("abcd" * 5)  # 5 tokens
    call = FunctionCallPart("fn", "{}")  # "fn{}": 1 token
    voice = SpeechPart("abcd", b"\x00\x00" * 24 * 160)  # 1 + 2 tokens (160 ms)
    for parts, modality, budget in (
        ((text,), "text", 5),
        ((call,), "text", 1),
        ((voice,), "audio", 3),
        ((voice, call), "audio", 3),  # the voice uses the budget: no room for the call
    ):
        events = within_budget(parts, budget, modality)
        response = only(events, "response.done")[0]["response"]
        assert len(response["output"]) == 1
        complete = len(parts) == 1
        assert response["status"] == ("completed" if complete else "incomplete"), parts
        assert response["output"][0]["status"] == "completed"


def test_obfuscation_is_4_to_16_characters() -> None:
    harness = connected()
    harness.send(user_text(" ".join(["word"] * 200)))
    events = harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    sizes = {len(e["obfuscation"]) for e in only(events, "response.output_text.delta")}
    assert sizes == set(range(4, 17))


def test_responder_failure_makes_a_failed_response() -> None:
    def broken(context: ResponseContext) -> str:
        raise RuntimeError("model offline")

    harness = connected(responder=HookResponder(broken))
    events = harness.send({"type": "response.create"})
    assert types(events) == ["response.created", "response.done"]
    response = events[1]["response"]
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["message"] == "model offline"
    assert harness.settle() == []  # no rate limits for a response that produced nothing
    harness.server._responder = HookResponder(lambda ctx: "fine")
    bad = type("Bad", (), {"respond": lambda self, ctx: "not a plan"})()
    harness.server._responder = bad
    events = harness.send({"type": "response.create"})
    assert events[1]["response"]["status"] == "failed"


def test_barge_in_cancels_the_active_response() -> None:
    harness = connected(pace="realtime")
    harness.append(TURN[: 1400 * 48])  # the turn ends; the response streams in real time
    assert harness.server.active_response_id == "resp_0001"
    events = harness.append(tone(300))
    kinds = types(events)
    start = kinds.index("input_audio_buffer.speech_started")
    assert kinds[start:] == [
        "input_audio_buffer.speech_started",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    response = events[-2]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert response["output"][0]["status"] == "incomplete"
    assert harness.server.active_response_id is None
    # WebSocket: the server does not truncate by itself
    assert "conversation.item.truncated" not in kinds


def test_without_interrupt_response_the_response_goes_on() -> None:
    detection = {"type": "server_vad", "interrupt_response": False}
    harness = connected(responder=delayed(5.0))
    harness.send(detection_update(detection))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create"})
    events = harness.append(silence(300) + tone(500) + silence(300))
    assert types(events) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "error",
    ]
    assert events[-1]["error"]["code"] == "conversation_already_has_active_response"
    assert events[-1]["error"]["event_id"] is None
    assert harness.server.active_response_id == "resp_0001"


def test_realtime_pacing_releases_deltas_through_timers() -> None:
    harness = connected(pace="realtime")
    harness.send(user_text("one two three"))
    events = harness.send({"type": "response.create"})
    assert types(events)[-1] == "response.output_audio.delta"  # only the first chunk is out
    timer = harness.server.get_timer()
    assert timer == pytest.approx(0.1)
    harness.server.handle_timer(0.05)  # early: nothing
    assert harness.drain() == []
    harness.server.handle_timer(timer)
    assert types(harness.drain()) == ["response.output_audio.delta"]
    rest = harness.run_timers(60.0)
    assert types(rest)[-2:] == ["response.done", "rate_limits.updated"]
    deltas = only(events + rest, "response.output_audio.delta")
    assert len(deltas) == math.ceil(sum(len(decode_base64(d["delta"])) for d in deltas) / 4800)
    # text responses are paced too
    harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert harness.server.get_timer() == pytest.approx(harness.now + 0.05)


@pytest.mark.parametrize("end", ["lost", "close", "expired"])
def test_no_timer_is_left_once_the_session_ends(end: str) -> None:
    harness = connected(pace="realtime", max_duration=0.5)
    harness.send(user_text("one two three four five six seven eight"))
    harness.send({"type": "response.create"})  # its audio is paced by timers for seconds
    if end == "lost":
        harness.server.connection_lost(0.2)
    elif end == "close":
        harness.send({"type": "session.close"}, now=0.2)
    else:
        harness.run_timers(0.5)
    assert harness.server.get_timer() is None
    harness.server.handle_timer(10.0)
    assert harness.drain() == []


def test_timers_due_run_before_a_message_is_handled() -> None:
    harness = connected(pace="realtime")
    harness.send(user_text("one two three"))
    harness.send({"type": "response.create"})
    events = harness.send(user_text("later"), now=30.0)  # the response ended meanwhile
    assert types(events)[-4:] == [
        "response.done",
        "rate_limits.updated",
        "conversation.item.added",
        "conversation.item.done",
    ]


def test_session_expiry() -> None:
    harness = connected(max_duration=3600)
    assert harness.server.get_timer() == 3600
    events = harness.run_timers(3600)
    assert events == [
        {
            "type": "error",
            "event_id": events[0]["event_id"],
            "error": {
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": "Your session hit the maximum duration of 60 minutes.",
                "param": None,
                "event_id": None,
            },
        }
    ]
    assert harness.server.close_requested == (
        1001,
        "Your session hit the maximum duration of 60 minutes.",
    )
    assert harness.send(user_text("late")) == []
    assert harness.server.get_timer() is None
    records = harness.logs()
    assert (
        isinstance(records[-1], SessionExpired)
        and records[-1].describe() == "session expired after 3600 s"
    )
    short = connected(max_duration=90)
    short.run_timers(100)
    assert short.server.close_requested == (
        1001,
        "Your session hit the maximum duration of 1.5 minutes.",
    )


# ---------------------------------------------------------------------------- WebRTC / SIP --


def test_webrtc_profile_audio_goes_to_the_media_track() -> None:
    harness = connected(profile="webrtc")
    error = error_of(harness.send({"type": "foo"}))
    assert (
        "'input_audio_buffer.clear', 'output_audio_buffer.clear', 'conversation.item.create'"
        in error["message"]
    )
    events = harness.append(TURN, feed=True)
    kinds = types(events)
    assert "response.output_audio.delta" not in kinds
    assert kinds.index("output_audio_buffer.started") > kinds.index("response.content_part.added")
    assert "response.output_audio.done" in kinds  # sent on WebRTC too, without deltas
    # the turn ends in the chunk fed at 1.28 s and the response is generated at once: its
    # 1.3 s of audio plays until 2.58 s
    assert kinds[-2:] == ["response.done", "rate_limits.updated"]
    audio = b"".join(chunk for rid, chunk in harness.audio)
    assert {rid for rid, _ in harness.audio} == {"resp_0001"}
    assert audio == TURN[: 1300 * 48]
    assert harness.server.get_timer() == pytest.approx(2.58)
    rest = harness.run_timers(harness.now + 5)
    assert rest == [
        {
            "type": "output_audio_buffer.stopped",
            "event_id": rest[0]["event_id"],
            "response_id": "resp_0001",
        }
    ]


def test_webrtc_barge_in_after_done_clears_and_truncates_to_what_was_played() -> None:
    harness = connected(profile="webrtc")
    harness.send(user_text("one two three four"))
    events = harness.send({"type": "response.create"}, now=10.0)
    item_id = only(events, "response.output_item.done")[0]["item"]["id"]
    assert harness.server.active_response_id is None  # generated faster than real time
    assert types(harness.settle()) == ["rate_limits.updated"]
    harness.now = 10.5
    events = harness.append(silence(300) + tone(200), feed=True)
    kinds = types(events)
    assert kinds == [
        "input_audio_buffer.speech_started",
        "output_audio_buffer.cleared",
        "conversation.item.truncated",
    ]
    played = events[2]["audio_end_ms"]
    # speech is confirmed in the chunk fed at 10.82 s; playback began at 10.0 s
    assert played == 820 and events[2]["content_index"] == 0
    assert events[2]["item_id"] == item_id
    assert harness.run_timers(harness.now + 10) == []  # no stopped after a clear


def test_webrtc_barge_in_during_the_response() -> None:
    harness = connected(profile="sip", pace="realtime")
    harness.send(user_text("one two three four five six seven"))
    harness.send({"type": "response.create"})
    harness.run_timers(0.3)
    events = harness.append(silence(100) + tone(100), feed=True)
    events += harness.settle()
    kinds = types(events)
    start = kinds.index("input_audio_buffer.speech_started")
    assert kinds[start : start + 3] == [
        "input_audio_buffer.speech_started",
        "output_audio_buffer.cleared",
        "response.output_audio.done",
    ]
    assert kinds[-3:] == ["response.done", "conversation.item.truncated", "rate_limits.updated"]
    assert (
        only(events, "response.done")[0]["response"]["status_details"]["reason"] == "turn_detected"
    )


def test_output_audio_buffer_clear_from_the_client() -> None:
    harness = connected(profile="webrtc")
    events = harness.send({"type": "output_audio_buffer.clear"})
    assert events == []  # nothing ever played
    harness.send(user_text("one two three"))
    harness.send({"type": "response.create"})
    harness.settle()
    harness.now = 0.4
    harness.server.next_output_audio()
    events = harness.send({"type": "output_audio_buffer.clear"})
    assert types(events) == ["output_audio_buffer.cleared", "conversation.item.truncated"]
    assert events[1]["audio_end_ms"] == 400
    assert harness.server.next_output_audio() is None  # the queued chunks are dropped
    events = harness.send({"type": "output_audio_buffer.clear"})
    assert types(events) == ["output_audio_buffer.cleared"]
    assert events[0]["response_id"] == "resp_0001"


def test_webrtc_responses_queue_one_after_the_other() -> None:
    harness = connected(profile="webrtc")
    harness.send(user_text("one"))
    harness.send({"type": "response.create"})
    harness.send({"type": "response.create"})
    first, second = (
        sum(len(pcm) for response, pcm in harness.audio if response == response_id) / 48000
        for response_id in ("resp_0001", "resp_0002")
    )
    stopped_at = []
    while (timer := harness.server.get_timer()) is not None and timer < 30.0:
        harness.server.handle_timer(timer)
        for event in harness.drain():
            if event["type"] == "output_audio_buffer.stopped":
                stopped_at.append((event["response_id"], timer))
    # the second starts when the first has played: both end on the one media track in turn
    assert stopped_at == [
        ("resp_0001", pytest.approx(first)),
        ("resp_0002", pytest.approx(first + second)),
    ]


def test_webrtc_cancel_keeps_playing_what_was_sent() -> None:
    harness = connected(profile="webrtc", pace="realtime")
    harness.send(user_text("one two three four"))
    harness.send({"type": "response.create"})
    harness.run_timers(0.25)
    events = harness.send({"type": "response.cancel"}) + harness.settle()
    assert types(events)[-2:] == ["response.done", "rate_limits.updated"]
    rest = harness.run_timers(5.0)
    assert types(rest) == ["output_audio_buffer.stopped"]


def test_webrtc_clear_mid_response_then_more_audio_plays_again() -> None:
    harness = connected(profile="webrtc", pace="realtime")
    harness.send(user_text("one two three four five"))
    harness.send({"type": "response.create"})
    harness.run_timers(0.25)
    events = harness.send({"type": "output_audio_buffer.clear"})
    assert types(events)[0] == "output_audio_buffer.cleared"
    events = harness.run_timers(0.35)
    assert types(events) == ["output_audio_buffer.started", *types(events)[1:]]


# ------------------------------------------------------------------------------ beta dialect --


def test_beta_audio_turn_uses_beta_event_names() -> None:
    harness = Harness(dialect=Dialect.BETA)
    harness.connect()
    events = harness.append(TURN)
    kinds = types(events)
    assert "conversation.item.created" in kinds and "conversation.item.added" not in kinds
    assert "response.audio.delta" in kinds and "response.audio_transcript.delta" in kinds
    assert "response.output_audio.delta" not in kinds
    assert all("obfuscation" not in e for e in only(events, "response.audio_transcript.delta"))
    done = only(events, "response.done")[0]["response"]
    assert done["modalities"] == ["text", "audio"] and done["voice"] == "alloy"
    assert done["output"][0]["content"][0]["type"] == "audio"
    assert done["output"][0]["object"] == "realtime.item"
    events = harness.send(
        {
            "type": "response.create",
            "response": {"modalities": ["text"], "temperature": 0.9},
        }
    )
    assert "response.text.delta" in types(events)
    error = error_of(harness.send({"type": "response.create", "response": {"temperature": 5}}))
    assert error["param"] == "response.temperature"


def test_beta_idle_timeout_has_no_timeout_event() -> None:
    harness = Harness(dialect=Dialect.BETA)
    harness.connect()
    harness.send(update({"turn_detection": {"idle_timeout_ms": 500}}))
    harness.send(user_text("hi"))
    harness.send({"type": "response.create", "response": {"modalities": ["text"]}})
    events = harness.run_timers(5.0)
    assert types(events)[:2] == ["input_audio_buffer.committed", "conversation.item.created"]


def test_beta_session_created_has_client_secret_null() -> None:
    harness = Harness(dialect=Dialect.BETA)
    created, _ = harness.connect()
    session = created["session"]
    assert session["client_secret"] is None  # service observations 8
    keys = list(session)
    assert keys.index("client_secret") + 1 == keys.index("include")
    (updated,) = harness.send({"type": "session.update", "session": {"instructions": "x"}})
    assert updated["type"] == "session.updated" and "client_secret" not in updated["session"]
    ga = Harness()
    (created,) = ga.connect()
    assert "client_secret" not in created["session"]


def test_beta_session_updated_echoes_tools_with_type_after_parameters() -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    harness = connected(dialect=Dialect.BETA)
    (event,) = harness.send(update({"tools": [tool]}))
    (echoed,) = event["session"]["tools"]
    assert echoed == tool
    assert list(echoed) == ["name", "description", "parameters", "type"]  # as recorded (08)
    ga = connected()
    (event,) = ga.send(update({"type": "realtime", "tools": [tool]}))
    assert list(event["session"]["tools"][0]) == ["type", "name", "description", "parameters"]
    # a function without parameters has nothing to move type after: echoed as given
    bare = {"type": "function", "name": "ping"}
    (event,) = harness.send(update({"tools": [bare]}))
    (echoed,) = event["session"]["tools"]
    assert echoed == bare and list(echoed) == ["type", "name"]


def test_session_length_depends_on_the_dialect() -> None:
    beta = Harness(dialect=Dialect.BETA)
    created, _ = beta.connect()
    assert created["session"]["expires_at"] == 1_750_000_000 + 1800  # +30 min in beta
    assert beta.server.get_timer() == 1800
    (expired,) = beta.run_timers(1800)
    message = "Your session hit the maximum duration of 30 minutes."
    assert expired["error"]["code"] == "session_expired"
    assert expired["error"]["message"] == message
    assert beta.server.close_requested == (1001, message)
    assert beta.logs()[-1].describe() == "session expired after 1800 s"
    ga = Harness()
    (created,) = ga.connect()
    assert created["session"]["expires_at"] == 1_750_000_000 + 3600  # +60 min in GA
    assert ga.server.get_timer() == 3600
    explicit = Harness(dialect=Dialect.BETA, max_duration=600.0)  # an explicit option wins
    created, _ = explicit.connect()
    assert created["session"]["expires_at"] == 1_750_000_600
    explicit.run_timers(600)
    assert explicit.server.close_requested == (
        1001,
        "Your session hit the maximum duration of 10 minutes.",
    )
    assert ServerOptions(dialect=Dialect.BETA).session_length == 1800
    assert ServerOptions().session_length == 3600


def test_beta_rate_limits_come_right_after_response_created_with_two_entries() -> None:
    harness = connected(dialect=Dialect.BETA)
    harness.send(user_text("hi there"))
    events = harness.send({"type": "response.create", "response": {"modalities": ["text"]}})
    kinds = types(events)
    assert kinds[:3] == ["response.created", "rate_limits.updated", "response.output_item.added"]
    assert kinds.count("rate_limits.updated") == 1 and kinds[-1] == "response.done"
    assert harness.settle() == []  # nothing after response.done in beta
    input_tokens = events[-1]["response"]["usage"]["input_tokens"]
    assert events[1] == {
        "type": "rate_limits.updated",
        "event_id": events[1]["event_id"],
        "rate_limits": [
            {"name": "requests", "limit": 20000, "remaining": 19999, "reset_seconds": 0.003},
            {
                "name": "tokens",
                "limit": 15_000_000,
                "remaining": 15_000_000 - input_tokens,
                "reset_seconds": round(input_tokens * 60 / 15_000_000, 3),
            },
        ],
    }
    # a server-VAD audio turn: right after response.created too
    events = harness.append(TURN)
    kinds = types(events)
    created = kinds.index("response.created")
    assert kinds[created : created + 2] == ["response.created", "rate_limits.updated"]
    assert kinds.count("rate_limits.updated") == 1
    # every input token counts against the limit, the cached ones too
    usage = events[-1]["response"]["usage"]
    assert usage["input_token_details"]["cached_tokens"] >= 64
    tokens_entry = events[created + 1]["rate_limits"][1]
    assert tokens_entry["remaining"] == 15_000_000 - usage["input_tokens"]
    # a response that thinks first: the limits come when its output starts; none for a
    # response cancelled before any output (service observations 2)
    slow = connected(dialect=Dialect.BETA, responder=delayed(1.0), rate_limit_tokens=1000)
    slow.send(user_text("hi"))
    assert types(slow.send({"type": "response.create"})) == ["response.created"]
    events = slow.run_timers(1.0)
    assert types(events)[:2] == ["rate_limits.updated", "response.output_item.added"]
    assert events[0]["rate_limits"][1]["limit"] == 1000  # an explicit option wins
    slow.send({"type": "response.create"})
    assert types(slow.send({"type": "response.cancel"})) == ["response.done"]
    assert slow.run_timers(5.0) == []


def test_ga_rate_limits_come_43_ms_after_response_done() -> None:
    harness = connected()
    harness.send(user_text("hi"))
    events = harness.send({"type": "response.create"}, now=2.0)
    assert types(events)[0] == "response.created" and types(events)[-1] == "response.done"
    assert "rate_limits.updated" not in types(events)
    assert harness.server.get_timer() == pytest.approx(2.043)
    harness.server.handle_timer(2.04)
    assert harness.drain() == []
    (limits,) = harness.run_timers(2.043)
    total = events[-1]["response"]["usage"]["total_tokens"]
    assert limits == {
        "type": "rate_limits.updated",
        "event_id": limits["event_id"],
        "rate_limits": [
            {
                "name": "tokens",
                "limit": 40000,
                "remaining": 40000 - total,
                "reset_seconds": round(total * 60 / 40000, 3),
            }
        ],
    }
    # remaining never goes below 0
    tiny = connected(rate_limit_tokens=1)
    tiny.send(user_text("hi"))
    tiny.send({"type": "response.create"})
    (update_event,) = tiny.settle()
    assert update_event["rate_limits"][0]["remaining"] == 0
    # the limit is an option; the session's end drops a pending update
    other = connected(rate_limit_tokens=15_000_000, max_duration=2.02)
    other.send(user_text("hi"))
    assert types(other.send({"type": "response.create"}, now=2.0))[-1] == "response.done"
    assert types(other.run_timers(3.0)) == ["error"]  # session_expired at 2.02 s


def test_beta_response_object_key_order_and_temperature() -> None:
    harness = connected(dialect=Dialect.BETA)
    harness.send(user_text("hi"))
    events = harness.send(
        {
            "type": "response.create",
            "response": {"modalities": ["text"], "metadata": {"request_id": "r1"}},
        }
    )
    created = events[0]["response"]
    order = [
        "object", "id", "status", "status_details", "output", "conversation_id", "modalities",
        "voice", "output_audio_format", "temperature", "max_output_tokens", "usage", "metadata",
    ]  # fmt: skip
    assert created == {
        "object": "realtime.response",
        "id": "resp_0001",
        "status": "in_progress",
        "status_details": None,
        "output": [],
        "conversation_id": "conv_0001",
        "modalities": ["text"],
        "voice": "alloy",
        "output_audio_format": "pcm16",
        "temperature": 0.8,  # the session's
        "max_output_tokens": "inf",
        "usage": None,
        "metadata": {"request_id": "r1"},
    }
    assert list(created) == order
    done = only(events, "response.done")[0]["response"]
    assert list(done) == order and done["temperature"] == 0.8

    def temperatures(params: dict[str, Any]) -> set[float]:
        events = harness.send({"type": "response.create", "response": params})
        kinds = ("response.created", "response.done")
        return {e["response"]["temperature"] for e in events if e["type"] in kinds}

    assert temperatures({"modalities": ["text"], "temperature": 0.6}) == {0.6}  # its own
    harness.send(update({"temperature": 0.7}))
    assert temperatures({"modalities": ["text"]}) == {0.7}  # else the session's
    ga = connected()
    events = ga.send({"type": "response.create"})
    assert "temperature" not in events[0]["response"]


def test_beta_usage_has_no_image_tokens() -> None:
    def usage_of(harness: Harness, content: dict[str, Any]) -> dict[str, Any]:
        item = {"type": "message", "role": "user", "content": [content]}
        harness.send({"type": "conversation.item.create", "item": item})
        harness.send({"type": "response.create"})
        events = harness.send({"type": "response.create"})  # the second sees cached tokens
        usage: dict[str, Any] = only(events, "response.done")[0]["response"]["usage"]
        return usage

    text = {"type": "input_text", "text": "hi"}  # beta items take no images
    beta = usage_of(connected(dialect=Dialect.BETA), text)
    assert list(beta) == [
        "total_tokens", "input_tokens", "output_tokens", "input_token_details",
        "output_token_details",
    ]  # fmt: skip
    details = beta["input_token_details"]
    assert list(details) == [
        "text_tokens",
        "audio_tokens",
        "cached_tokens",
        "cached_tokens_details",
    ]
    assert list(details["cached_tokens_details"]) == ["text_tokens", "audio_tokens"]
    assert details["cached_tokens"] > 0
    image = {"type": "input_image", "image_url": "data:image/png;base64,AA=="}
    ga = usage_of(connected(), image)
    assert ga["input_token_details"]["image_tokens"] == 85
    assert "image_tokens" in ga["input_token_details"]["cached_tokens_details"]
    # a response cancelled before any output: zeros, still without image_tokens
    slow = connected(dialect=Dialect.BETA, responder=delayed(1.0))
    slow.send({"type": "response.create"})
    (done,) = slow.send({"type": "response.cancel"})
    zero = done["response"]["usage"]["input_token_details"]
    assert zero == {
        "text_tokens": 0,
        "audio_tokens": 0,
        "cached_tokens": 0,
        "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0},
    }


def test_beta_whisper_transcription_is_one_delta_ending_in_a_newline_without_usage() -> None:
    harness = connected(dialect=Dialect.BETA)
    transcription = {"model": "whisper-1"}
    harness.send(update({"turn_detection": None, "input_audio_transcription": transcription}))
    harness.append(silence(1000))
    events = harness.send({"type": "input_audio_buffer.commit"})
    assert types(events) == [
        "input_audio_buffer.committed",
        "conversation.item.created",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    item_id = events[0]["item_id"]
    delta, completed = events[2:]
    assert delta == {
        "type": "conversation.item.input_audio_transcription.delta",
        "event_id": delta["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "delta": "[1.0 seconds of audio]\n",
    }  # one delta with the whole text, no obfuscation
    assert completed == {
        "type": "conversation.item.input_audio_transcription.completed",
        "event_id": completed["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "transcript": "[1.0 seconds of audio]\n",
    }  # no usage
    # the newer transcription models keep their usage in beta
    harness.send(update({"input_audio_transcription": {"model": "gpt-4o-transcribe"}}))
    harness.append(silence(1000))
    events = harness.send({"type": "input_audio_buffer.commit"})
    (completed,) = only(events, "conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "[1.0 seconds of audio]"
    assert completed["usage"]["type"] == "tokens"


# ---------------------------------------------------------------------------- responders --


def test_script_responder_plays_turns_then_falls_back() -> None:
    clip = tone(250)
    script = {
        "turns": [
            {"text": "Hello!", "audio": "hello.wav", "delay": 0.5},
            {"tool_calls": [{"name": "lookup", "arguments": {"q": 1}, "call_id": "call_x"}]},
            {"text": "Bye.", "tool_calls": [{"name": "hangup", "arguments": "{}"}]},
        ]
    }
    assert script_audio_files(script) == ["hello.wav"]
    assert script_audio_files([{"audio": "a"}, {"audio": "a"}, {"text": "x"}]) == ["a"]
    responder = ScriptResponder.from_script(json.dumps(script), {"hello.wav": clip})
    harness = connected(responder=responder)
    harness.send(user_text("hi"))
    assert types(harness.send({"type": "response.create"})) == ["response.created"]
    events = harness.run_timers(1.0)
    audio = b"".join(decode_base64(e["delta"]) for e in only(events, "response.output_audio.delta"))
    assert audio == clip
    assert only(events, "response.output_audio_transcript.done")[0]["transcript"] == "Hello!"
    events = harness.send({"type": "response.create"})
    done = only(events, "response.function_call_arguments.done")[0]
    assert (done["name"], done["arguments"], done["call_id"]) == ("lookup", '{"q":1}', "call_x")
    events = harness.send({"type": "response.create"})
    assert [i["type"] for i in only(events, "response.done")[0]["response"]["output"]] == [
        "message",
        "function_call",
    ]
    events = harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    assert only(events, "response.output_text.done")[0]["text"] == "You said: hi"  # fallback
    looping = ScriptResponder([{"text": "again"}], loop=True)
    harness = connected(responder=looping)
    for _ in range(3):
        events = harness.send(
            {"type": "response.create", "response": {"output_modalities": ["text"]}}
        )
        assert only(events, "response.output_text.done")[0]["text"] == "again"


@pytest.mark.parametrize(
    "script",
    [
        "42",
        {"turns": [], "extra": 1},
        [5],
        [{"bogus": 1}],
        [{"text": 5}],
        [{"delay": "soon"}],
        [{"delay": "1"}],
        [{"delay": True}],
        [{"audio": "missing.wav"}],
        [{"audio": "odd"}],
        [{"audio": "three"}],
        [{"tool_calls": "x"}],
        [{"tool_calls": [{"arguments": {}}]}],
        [{"tool_calls": [{"name": "f", "bogus": 1}]}],
        [{"tool_calls": [{"name": "f", "call_id": 5}]}],
        [{"delay": -1}],
    ],
)
def test_invalid_scripts_are_refused(script: Any) -> None:
    with pytest.raises(ValueError):
        ScriptResponder.from_script(script, {"odd": b"\x00", "three": b"\x00" * 3})


def wav(samples: np.ndarray, rate: int, width: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(samples.tobytes())
    return buffer.getvalue()


def test_echo_repeats_at_most_max_echo_s_of_the_users_audio() -> None:
    heard = tone(1250)
    user = M.MessageItem(
        id="item_1",
        role="user",
        content=[M.ContentPart(type="input_audio", audio=encode_base64(heard))],
    )
    context = ResponseContext(
        response_id="resp_1",
        items=(user,),
        audio={"item_1": heard},
        instructions="",
        output_modalities=("audio",),
        tools=(),
        tool_choice="auto",
        voice="marin",
        metadata=None,
        out_of_band=False,
        index=0,
    )
    (part,) = EchoResponder(max_echo_s=1).respond(context).parts
    assert part == SpeechPart("I heard 1.2 seconds of audio.", heard[: 1000 * 48])
    (part,) = EchoResponder().respond(context).parts
    assert part == SpeechPart("I heard 1.2 seconds of audio.", heard)


def test_pcm24k_from_wav() -> None:
    pcm = np.frombuffer(tone(100), dtype="<i2")
    assert pcm24k_from_wav(wav(pcm, 24000, 2)) == pcm.tobytes()
    stereo = np.repeat(pcm, 2)
    assert pcm24k_from_wav(wav(stereo, 24000, 2, channels=2)) == pcm.tobytes()
    assert len(pcm24k_from_wav(wav(pcm, 48000, 2))) == len(pcm.tobytes()) // 2
    assert len(pcm24k_from_wav(wav(pcm, 44100, 2))) == round(pcm.size * 24000 / 44100) * 2
    eight_bit = (pcm // 256 + 128).astype(np.uint8)
    out = np.frombuffer(pcm24k_from_wav(wav(eight_bit, 24000, 1)), dtype="<i2")
    assert np.max(np.abs(out.astype(int) - pcm)) <= 256
    wide = pcm.astype("<i4") << 16
    assert pcm24k_from_wav(wav(wide, 24000, 4)) == pcm.tobytes()
    packed = np.zeros((pcm.size, 3), dtype=np.uint8)
    packed[:, 1:] = pcm.astype("<i2").view(np.uint8).reshape(-1, 2)
    assert pcm24k_from_wav(wav(packed, 24000, 3)) == pcm.tobytes()
    with pytest.raises(ValueError):
        pcm24k_from_wav(b"RIFF nonsense")


def test_pcm24k_from_wav_drops_a_partial_last_frame() -> None:
    """A cut file (its data chunk promises more than is there) ending mid-frame: the whole
    frames are kept, the samples of the cut one are dropped."""
    stereo = np.array([100, 300, -50, -150], dtype="<i2")  # two frames, left and right
    cut = wav(stereo, 24000, 2, channels=2)[:-2]
    assert np.frombuffer(pcm24k_from_wav(cut), dtype="<i2").tolist() == [200]


@pytest.mark.parametrize(
    "value",
    [
        SpeechPart("x"),
        TextPart("x"),
        FunctionCallPart("f"),
        ResponsePlan(),
        VadSettings(),
        ServerOptions(),
    ],
)
def test_plans_parts_and_settings_are_immutable(value: Any) -> None:
    name = next(iter(vars(type(value))["__dataclass_fields__"]))
    with pytest.raises(AttributeError):
        setattr(value, name, getattr(value, name))


@pytest.mark.parametrize(
    ("result", "said"),
    [
        ("plain text", "plain text"),
        ([TextPart("one "), TextPart("two")], "one two"),
        (ResponsePlan((TextPart("a plan"),)), "a plan"),
    ],
)
def test_a_hook_may_return_text_parts_or_a_plan(result: Any, said: str) -> None:
    contexts: list[ResponseContext] = []

    def hook(context: ResponseContext) -> Any:
        contexts.append(context)
        return result

    harness = connected(responder=HookResponder(hook))
    harness.send(user_text("hi"))
    events = harness.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    done = only(events, "response.done")[0]["response"]
    assert done["status"] == "completed"
    texts = [part["text"] for item in done["output"] for part in item["content"]]
    assert "".join(texts) == said
    with pytest.raises(AttributeError):
        contexts[0].index = 5  # type: ignore[misc]


def test_pcm24k_from_wav_filters_standard_rates_and_interpolates_others() -> None:
    """A 15 kHz tone cannot be said at 24 kHz: from a 48 kHz file the resampler removes it,
    where linear interpolation would fold it down to 9 kHz; a 30 kHz file is interpolated."""
    t = np.arange(4800) / 48000
    high = np.rint(np.sin(2 * np.pi * 15000 * t) * 16000).astype("<i2")
    out = np.frombuffer(pcm24k_from_wav(wav(high, 48000, 2)), dtype="<i2").astype(float)
    assert np.sqrt(np.mean(out[200:-200] ** 2)) < 100  # was 11,300 RMS
    ramp = np.arange(0, 3000, 10, dtype="<i2")  # 300 samples at 30 kHz: 240 at 24 kHz
    out = np.frombuffer(pcm24k_from_wav(wav(ramp, 30000, 2)), dtype="<i2")
    assert out.tolist() == [round(n * 12.5) for n in range(240)]


def test_synthesized_speech_pitch_level_and_shortest_word() -> None:
    pcm = np.frombuffer(synthesize_speech("hello", np.random.default_rng(7)), dtype="<i2")
    spectrum = np.abs(np.fft.rfft(pcm))
    peak = np.argmax(spectrum) * 24000 / pcm.size
    assert 160 <= peak <= 320
    assert 0.24 * 32767 < np.max(np.abs(pcm)) <= 0.25 * 32767 + 1  # amplitude 0.25
    assert abs(int(pcm[0])) < 100 and abs(int(pcm[-1])) < 100  # faded in and out
    assert len(synthesize_speech("a", np.random.default_rng(7))) == 120 * 48  # at least 120 ms


def test_synthesized_speech_is_deterministic() -> None:
    first = synthesize_speech("hello world", np.random.default_rng(1))
    assert first == synthesize_speech("hello world", np.random.default_rng(1))
    assert len(first) == (300 + 60 + 300) * 48
    assert synthesize_speech("", np.random.default_rng(1)) == b""
    assert EchoResponder().max_echo_s == 3.0


def test_same_seed_same_bytes() -> None:
    def run(seed: int) -> list[str]:
        server = ServerSession(ServerOptions(seed=seed))
        server.connection_made(0.0)
        server.receive(json.dumps(user_text("hello there")), 0.0)
        server.receive('{"type":"response.create"}', 0.0)
        return server.messages_to_send()

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_supported_values_list_style() -> None:
    assert supported(["a"]) == "'a'"
    assert supported(["a", "b"]) == "'a' and 'b'"
    assert supported(["a", "b", "c"]) == "'a', 'b', and 'c'"


def test_log_descriptions() -> None:
    assert SessionStarted(session_id="s", model="m", profile="sip", dialect="ga").describe() == (
        "session s started: m, sip, ga dialect"
    )
    assert SessionUpdated(fields=()).describe() == "session updated: (nothing)"
    assert (
        ItemAdded(item_id="i", item_type="function_call").describe()
        == "item i added: function_call"
    )
    assert (
        TurnStarted(response_id="r", out_of_band=True).describe()
        == "out-of-band response r started"
    )
    assert TurnEnded(response_id="r", status="failed").describe() == "response r failed, 0 tokens"
    assert ClientError(code="x", message="y").describe() == "error x: y"
    assert TurnStarted(response_id="r").describe() == "response r started"


@pytest.mark.parametrize("record", typing.get_args(ServerLog))
def test_log_records_are_frozen_and_keyword_only(record: type) -> None:
    names = record.__struct_fields__  # type: ignore[attr-defined]
    fields = {"max_duration": 1.0} if record is SessionExpired else dict.fromkeys(names, "x")
    value = record(**fields)
    if fields:
        with pytest.raises(AttributeError):
            setattr(value, next(iter(fields)), "y")
        with pytest.raises(TypeError):
            record(*fields.values())


# --------------------------------------------------------------------- more of the edges --


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"parallel_tool_calls": "yes"}, "invalid_type", "session.parallel_tool_calls"),
        ({"max_output_tokens": "x" * 0 or 1.5}, "invalid_type", "session.max_output_tokens"),
        ({"max_output_tokens": 4096.0}, None, None),
        ({"output_modalities": "audio"}, "invalid_type", "session.output_modalities"),
        ({"output_modalities": [True]}, "invalid_type", "session.output_modalities[0]"),
        ({"audio": []}, "invalid_type", "session.audio"),
        (
            {"audio": {"input": {"turn_detection": "on"}}},
            "invalid_type",
            "session.audio.input.turn_detection",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": 1}}}},
            "invalid_type",
            "session.audio.input.turn_detection.type",
        ),
        (
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": "hi"}}}},
            "invalid_type",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            {
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "prefix_padding_ms": 2.5}}
                }
            },
            "invalid_type",
            "session.audio.input.turn_detection.prefix_padding_ms",
        ),
        ({"audio": {"output": {"voice": {"id": "voice_123"}}}}, None, None),
        ({"audio": {"output": {"voice": 7}}}, "invalid_type", "session.audio.output.voice"),
        (
            {"tracing": {"workflow_name": "w", "metadata": []}},
            "invalid_type",
            "session.tracing.metadata",
        ),
        ({"prompt": {"id": "pmpt_1", "variables": {"a": "x"}}}, None, None),
        (
            {"prompt": {"id": "pmpt_1", "variables": {"a": 1}}},
            "invalid_type",
            "session.prompt.variables.a",
        ),
        (
            {
                "tools": [
                    {
                        "type": "mcp",
                        "server_label": "s",
                        "server_url": "https://x",
                        "allowed_tools": ["a"],
                        "require_approval": "never",
                        "headers": {"k": "v"},
                    }
                ]
            },
            None,
            None,
        ),
        (
            {
                "tools": [
                    {"type": "mcp", "server_label": "s", "allowed_tools": {"tool_names": ["a"]}}
                ]
            },
            None,
            None,
        ),
        (
            {"tools": [{"type": "mcp", "server_label": "s", "allowed_tools": 5}]},
            "invalid_type",
            "session.tools[0].allowed_tools",
        ),
        ({"tool_choice": {"type": "mcp", "server_label": "s"}}, None, None),
        ({"truncation": "disabled"}, None, None),
    ],
)
def test_value_kinds(session: dict[str, Any], code: str | None, param: str | None) -> None:
    harness = connected()
    events = harness.send(update({"type": "realtime", **session}))
    if code is None:
        assert types(events) == ["session.updated"]
        return
    error = error_of(events)
    assert (error["code"], error["param"]) == (code, param)
    if code == "invalid_type":
        assert error["message"].startswith(f"Invalid type for '{param}': expected ")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "null"),
        (True, "a boolean"),
        (5, "an integer"),
        (1.5, "a decimal"),
        ([], "an array"),
        ({}, "an object"),
    ],
)
def test_invalid_type_names_the_kind_of_value_given(value: Any, kind: str) -> None:
    harness = connected()
    error = error_of(harness.send(update({"type": "realtime", "instructions": value})))
    assert error["message"] == (
        f"Invalid type for 'session.instructions': expected a string, but got {kind} instead."
    )
    with pytest.raises(Reject) as info:
        check_session_config({"instructions": value})
    assert str(info.value) == info.value.message == error["message"]


def _vad(key: str, value: object) -> dict[str, Any]:
    return {"audio": {"input": {"turn_detection": {"type": "server_vad", key: value}}}}


def _token_limit(value: object) -> dict[str, Any]:
    limits = {"post_instructions": value}
    return {
        "truncation": {"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": limits}
    }


@pytest.mark.parametrize(
    ("make", "param"),
    [
        (lambda v: _vad("prefix_padding_ms", v), "audio.input.turn_detection.prefix_padding_ms"),
        (
            lambda v: _vad("silence_duration_ms", v),
            "audio.input.turn_detection.silence_duration_ms",
        ),
        (lambda v: _vad("idle_timeout_ms", v), "audio.input.turn_detection.idle_timeout_ms"),
        (_token_limit, "truncation.token_limits.post_instructions"),
    ],
)
def test_whole_millisecond_and_token_settings_take_zero_but_no_fraction(
    make: Any, param: str
) -> None:
    harness = connected()

    def sent(value: object) -> list[dict[str, Any]]:
        return harness.send(update({"type": "realtime", **make(value)}))

    assert types(sent(0)) == ["session.updated"]
    assert types(sent(2.0)) == ["session.updated"]
    error = error_of(sent(1.5))
    assert (error["code"], error["param"]) == ("invalid_type", f"session.{param}")
    error = error_of(sent(-1))
    assert (error["code"], error["param"]) == ("integer_below_min_value", f"session.{param}")


def test_non_finite_numbers_are_not_json() -> None:
    harness = connected()
    text = '{"type":"session.update","session":{"type":"realtime","max_output_tokens":1e400}}'
    assert error_of(harness.send(text))["code"] == "invalid_json"


def test_assistant_text_items_can_be_created() -> None:
    harness = connected()
    item = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Earlier answer."}],
    }
    events = harness.send({"type": "conversation.item.create", "item": item})
    assert events[0]["item"]["content"] == [{"type": "output_text", "text": "Earlier answer."}]


def test_late_calls_after_expiry_do_nothing() -> None:
    harness = connected(max_duration=10)
    harness.send(user_text("x"), now=20.0)  # the expiry is due first, then the session is over
    assert harness.server.close_requested is not None
    assert harness.drain() == []
    other = connected(max_duration=10)
    other.server.feed_audio(silence(100), 20.0)
    assert types(other.drain()) == ["error"]


def test_cancelled_tasks_are_skipped() -> None:
    harness = connected(responder=delayed(1.0))
    harness.send({"type": "response.create"})
    harness.send({"type": "response.cancel"})
    harness.server.handle_timer(5.0)  # the cancelled response's task is stale
    assert harness.drain() == []


@pytest.mark.parametrize("fmt", ["audio/pcmu", "audio/pcma"])
def test_g711_output_audio(fmt: str) -> None:
    harness = connected()
    harness.send(user_text("hello"))
    events = harness.send(
        {
            "type": "response.create",
            "response": {"audio": {"output": {"format": {"type": fmt}, "voice": "ash"}}},
        }
    )
    created = events[0]["response"]
    assert created["audio"] == {"output": {"format": {"type": fmt}, "voice": "ash"}}
    deltas = [decode_base64(e["delta"]) for e in only(events, "response.output_audio.delta")]
    assert {len(d) for d in deltas[:-1]} == {800}  # 100 ms of G.711 per delta
    item_id = only(events, "response.output_item.done")[0]["item"]["id"]
    error = error_of(
        harness.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": 5000,
            }
        )
    )
    assert error["message"] == "Audio content of 900ms is already shorter than 5000ms"
    truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    assert types(harness.send({**truncate, "audio_end_ms": 900})) == ["conversation.item.truncated"]
    harness.send({**truncate, "audio_end_ms": 300})
    assert len(retrieved_audio(harness, item_id)) == 300 * 8  # 8 bytes per ms of G.711


@pytest.mark.parametrize(
    ("fmt", "decoder", "other"),
    [("audio/pcmu", ulaw_decode, alaw_decode), ("audio/pcma", alaw_decode, ulaw_decode)],
)
def test_g711_conversions_use_their_own_law(fmt: str, decoder: Any, other: Any) -> None:
    pcm = tone(60)  # 1440 samples at 24 kHz: 480 at 8 kHz
    at_8k = resample(np.frombuffer(pcm, dtype="<i2"), 24000, 8000).astype(float)
    encoded = encode_output(pcm, fmt)
    assert len(encoded) == 480
    error = np.abs(decoder(encoded).astype(float) - at_8k)
    assert np.max(error) < 0.04 * 32768  # G.711 quantisation
    assert np.max(np.abs(other(encoded).astype(float) - at_8k)) > 0.2 * 32768
    held = np.frombuffer(decode_input(encoded, fmt), dtype="<i2")
    assert held.tolist() == np.repeat(decoder(encoded), 3).tolist()  # each sample held for 3
    assert encode_output(pcm, "audio/pcm") == decode_input(pcm, "audio/pcm") == pcm


def test_split_arguments_gives_3_to_10_characters_at_a_time() -> None:
    arguments = json.dumps({"city": "Paris", "units": "celsius", "days": list(range(20))})
    for seed in range(20):
        pieces = split_arguments(arguments, np.random.default_rng(seed))
        assert "".join(pieces) == arguments
        assert all(3 <= len(p) <= 10 for p in pieces[:-1]) and 1 <= len(pieces[-1]) <= 10
    sizes = {
        len(p)
        for seed in range(20)
        for p in split_arguments(arguments, np.random.default_rng(seed))[:-1]
    }
    assert sizes == set(range(3, 11))
    assert split_arguments("", np.random.default_rng(0)) == []


def test_usage_object_adds_up_every_split() -> None:
    usage = usage_object(1, 2, 4, 8, 16, 32, 3)
    assert usage == {
        "total_tokens": 55,
        "input_tokens": 7,
        "output_tokens": 48,
        "input_token_details": {
            "text_tokens": 1,
            "audio_tokens": 2,
            "image_tokens": 4,
            "cached_tokens": 8,
            "cached_tokens_details": {"text_tokens": 3, "audio_tokens": 5, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 16, "audio_tokens": 32},
    }


def test_webrtc_idle_timeout_counts_from_the_end_of_playback() -> None:
    harness = connected(profile="webrtc")
    harness.send(
        update(
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 1000}}
                },
            }
        )
    )
    harness.send(user_text("hello"))
    harness.send({"type": "response.create"})
    timers = []
    while (timer := harness.server.get_timer()) is not None and timer < 100:
        timers.append(timer)
        harness.server.handle_timer(timer)
        harness.drain()
    # rate limits, stopped, then the idle turn
    assert timers[:3] == [pytest.approx(RATE_LIMITS_DELAY), pytest.approx(0.9), pytest.approx(1.9)]


def test_webrtc_barge_in_over_two_items_and_an_out_of_band_response() -> None:
    plan = ResponsePlan((SpeechPart("first part"), SpeechPart("second part")))
    harness = connected(profile="webrtc", responder=HookResponder(lambda ctx: plan))
    harness.send(user_text("x"))
    events = harness.send({"type": "response.create"}, now=1.0)
    _, second = [e["item"]["id"] for e in only(events, "response.output_item.done")]
    harness.send({"type": "response.create", "response": {"conversation": "none"}})
    harness.now = 1.0 + 0.9  # the first item (600 ms) is heard, the second (660 ms) is playing
    events = harness.append(silence(60) + tone(100), feed=True)
    cuts = only(events, "conversation.item.truncated")
    assert [c["item_id"] for c in cuts] == [second]
    assert cuts[0]["audio_end_ms"] == 380  # speech confirmed at 1.98 s: 980 ms played
    # VAD leaves the out-of-band response's audio playing
    cleared = only(events, "output_audio_buffer.cleared")
    assert [e["response_id"] for e in cleared] == ["resp_0001"]
    # the client's clear stops everything; out-of-band items are in no conversation to cut
    events = harness.send({"type": "output_audio_buffer.clear"})
    assert types(events) == ["output_audio_buffer.cleared"]
    assert events[0]["response_id"] == "resp_0002"


def test_barge_in_drops_queued_audio_of_the_conversation_response_only() -> None:
    server = ServerSession(ServerOptions(profile="webrtc", id_generator=sequential_ids()))
    server.connection_made(0.0)
    server.receive(json.dumps(user_text("a long enough sentence to hear")), 0.0)
    server.receive('{"type":"response.create","response":{"conversation":"none"}}', 0.0)
    server.receive('{"type":"response.create"}', 0.0)
    server.messages_to_send()  # output audio of both is queued, not yet taken
    server.feed_audio(tone(300), 0.1)  # the user speaks over it
    events = [json.loads(text) for text in server.messages_to_send()]
    assert "output_audio_buffer.cleared" in types(events)

    def queued() -> set[str]:
        left = set()
        while (chunk := server.next_output_audio()) is not None:
            left.add(chunk[0])
        return left

    assert queued() == {"resp_0001"}  # the out-of-band response's audio plays on
    # the client's clear stops everything, out-of-band audio included
    server.receive('{"type":"response.create","response":{"conversation":"none"}}', 1.0)
    server.receive('{"type":"output_audio_buffer.clear"}', 1.0)
    cleared = [json.loads(text) for text in server.messages_to_send()]
    assert only(cleared, "output_audio_buffer.cleared")[-1]["response_id"] == "resp_0003"
    assert queued() == set()


def test_deleting_an_item_while_it_streams() -> None:
    harness = connected(pace="realtime")
    harness.send(user_text("one two three four"))
    harness.send({"type": "response.create"})
    item_id = harness.server.conversation[-1].id
    harness.send({"type": "conversation.item.delete", "item_id": item_id})
    events = harness.run_timers(10.0)
    assert only(events, "conversation.item.done")[0]["previous_item_id"] is None
    assert [i.id for i in harness.server.conversation] == ["item_0001"]


def test_the_fuzz_corpus_runs_clean() -> None:
    harness = load_harness("server")
    corpus = FUZZ / "corpus" / "server"
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    assert len(files) >= len(harness.seeds())
    for path in files:
        harness.check_one(path.read_bytes())
    assert harness.run_corpus([corpus]) == len(files)


def test_the_wall_clock_follows_now_from_the_connection() -> None:
    server = ServerSession(ServerOptions(profile="sip", id_generator=None))
    server.connection_made(5.0, unix_time=1_800_000_000.0)
    created = json.loads(server.messages_to_send()[0])
    assert minted_ms(created["event_id"]) == 1_800_000_000_000
    server.dtmf_received("1", 7.0)
    (dtmf,) = [json.loads(text) for text in server.messages_to_send()]
    assert dtmf["received_at"] == 1_800_000_002
    server.feed_audio(tone(300), 9.5)  # ids are minted at the time of the audio fed
    (started,) = [json.loads(text) for text in server.messages_to_send()]
    assert started["type"] == "input_audio_buffer.speech_started"
    assert minted_ms(started["event_id"]) == 1_800_000_004_500


def test_an_empty_voice_still_says_its_text() -> None:
    plan = ResponsePlan((SpeechPart("no audio here", b""),))
    harness = connected(responder=HookResponder(lambda ctx: plan))
    harness.send(user_text("x"))
    events = harness.send({"type": "response.create"})
    assert only(events, "response.output_audio.delta") == []
    transcript = only(events, "response.output_audio_transcript.done")[0]["transcript"]
    assert transcript == "no audio here"
    assert only(events, "response.done")[0]["response"]["status"] == "completed"


def test_the_first_response_context_has_index_0() -> None:
    seen: list[ResponseContext] = []
    harness = connected(responder=HookResponder(lambda ctx: seen.append(ctx) or "ok"))
    harness.send({"type": "response.create"})
    harness.send({"type": "response.create"}, now=10.0)
    assert [context.index for context in seen] == [0, 1]


def test_initial_session_is_in_force_from_session_created() -> None:
    harness = Harness(initial_session={"instructions": "Be brief.", "output_modalities": ["text"]})
    created = harness.connect()[0]["session"]
    assert (created["instructions"], created["output_modalities"]) == ("Be brief.", ["text"])


def test_fed_audio_gets_what_is_due_at_once() -> None:
    harness = connected(profile="sip")
    transcription = {"model": "whisper-1"}
    detection = {"type": "server_vad", "create_response": False}
    audio_input = {"transcription": transcription, "turn_detection": detection}
    harness.send(update({"type": "realtime", "audio": {"input": audio_input}}))
    harness.server.feed_audio(tone(400) + silence(300), 1.0)  # one call, a whole turn
    assert "conversation.item.input_audio_transcription.completed" in types(harness.drain())


def test_a_new_turn_detection_drops_speech_in_progress() -> None:
    harness = connected()
    events = harness.append(silence(100) + tone(300))
    assert types(events) == ["input_audio_buffer.speech_started"]
    detection = {"type": "server_vad", "silence_duration_ms": 300}
    harness.send(detection_update(detection))
    assert harness.append(silence(600)) == []  # no stop: that speech was forgotten
    events = harness.append(tone(300) + silence(400))
    assert types(events)[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]


def test_dtmf_on_sip() -> None:
    harness = connected(profile="sip")
    harness.server.dtmf_received("5", 2.0)
    assert harness.drain() == [
        {
            "type": "input_audio_buffer.dtmf_event_received",
            "event": "5",
            "received_at": 1_750_000_002,
        }
    ]
    for key in ("x", "12", ""):
        with pytest.raises(LocalProtocolError):
            harness.server.dtmf_received(key, 2.0)
    with pytest.raises(LocalProtocolError):
        connected().server.dtmf_received("1", 0.0)  # not a phone call
    harness.server.connection_lost(3.0)
    harness.server.dtmf_received("1", 3.0)
    assert harness.drain() == []
    expired = connected(profile="sip", max_duration=1)
    expired.server.dtmf_received("#", 5.0)
    assert types(expired.drain()) == ["error"]
    expired = connected(profile="sip", max_duration=1)
    expired.server.feed_audio(tone(200), 5.0)  # the session ended before this speech
    assert types(expired.drain()) == ["error"]


def test_echo_responder_without_a_function_to_force() -> None:
    context = ResponseContext(
        response_id="resp_x",
        items=(),
        audio={},
        instructions="",
        output_modalities=("text",),
        tools=(M.McpTool(server_label="s", server_url="https://x"), M.FunctionTool()),
        tool_choice="required",
        voice="alloy",
        metadata=None,
        out_of_band=False,
        index=2,
        seed=7,
    )
    plan = EchoResponder().respond(context)
    assert plan.parts == (SpeechPart("Hello! How can I help you?"),)
    assert context.rng() is context.rng()  # one generator per response
    with pytest.raises(ValueError):
        ResponsePlan((), delay=math.nan)
