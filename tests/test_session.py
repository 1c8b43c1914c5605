"""The client session core, turn by turn, with the exact JSON it sends compared literally."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from typing import Any

import msgspec
import pytest

import rtproto
from rtproto import models as M
from rtproto.dialect import Dialect, to_beta
from rtproto.session import (
    AudioChunk,
    AudioDone,
    AudioInterrupted,
    AudioTranscriptDelta,
    ClientSession,
    ConnectionChange,
    ConnectionStatus,
    FunctionCall,
    HistoryUpdated,
    ItemDeleted,
    ItemUpdate,
    Limits,
    McpApprovalRequested,
    McpToolCallCompleted,
    McpToolsListed,
    Profile,
    ProtocolWarning,
    ServerError,
    SessionOptions,
    SessionState,
    TextDelta,
    TruncatedItem,
    TurnDone,
    TurnStarted,
    UsageTotals,
    UsageUpdate,
)

from .fuzzing import FUZZ, load_harness
from .samples import MCP_APPROVAL_ITEM, MCP_CALL_ITEM, MCP_TOOLS_ITEM
from .scripts import Server


class Harness:
    """A session plus helpers to feed server text and read what it sent."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("model", "gpt-realtime")
        self.session = ClientSession(SessionOptions(**options))
        self.server = Server()

    def connect(self, now: float = 0.0) -> list[dict[str, Any]]:
        self.session.connection_made(now)
        sent = self.sent()
        self.events()
        return sent

    def feed(self, texts: str | bytes | bytearray | list[str], now: float = 0.0) -> list[Any]:
        for text in [texts] if isinstance(texts, (str, bytes, bytearray)) else texts:
            self.session.receive(text, now)
        return self.events()

    def events(self) -> list[Any]:
        return list(self.session.events())

    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.session.messages_to_send()]


def derived(events: list[Any]) -> list[Any]:
    """Only the transport events (the raw server events removed)."""
    return [e for e in events if not isinstance(e, (rtproto.events.Event, rtproto.UnknownEvent))]


def names(events: list[Any]) -> list[str]:
    return [e.name for e in derived(events)]


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.connect()
    harness.feed(harness.server.session_created())
    return harness


def test_transport_events_are_immutable() -> None:
    import msgspec

    from rtproto.session import events

    classes = [getattr(events, name) for name in events.__all__]
    structs = [c for c in classes if isinstance(c, type) and issubclass(c, msgspec.Struct)]
    assert len(structs) >= 20
    assert [c.__name__ for c in structs if not c.__struct_config__.frozen] == []


# --- connecting ---------------------------------------------------------------------------


def test_connect_sends_the_normalised_configuration() -> None:
    harness = Harness(session={"instructions": "Be brief.", "voice": "marin"})
    harness.session.connection_made(0.0)
    assert harness.sent() == [
        {
            "type": "session.update",
            "event_id": "rtproto_session_update_1",
            "session": {
                "type": "realtime",
                "model": "gpt-realtime",
                "instructions": "Be brief.",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "noise_reduction": None,
                        "transcription": {"model": "gpt-4o-mini-transcribe"},
                        "turn_detection": {"type": "semantic_vad"},
                    },
                    "output": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "voice": "marin",
                        "speed": 1.0,
                    },
                },
            },
        }
    ]
    assert [e.status for e in harness.events()] == [
        ConnectionStatus.CONNECTING,
        ConnectionStatus.CONNECTED,
    ]
    assert harness.session.state is SessionState.CONNECTED


def test_commands_before_connect_and_after_loss() -> None:
    harness = Harness()
    with pytest.raises(rtproto.LocalProtocolError) as info:
        harness.session.send_message("hi")
    assert info.value.state == "IDLE" and "connection_made" in str(info.value)
    with pytest.raises(rtproto.LocalProtocolError):
        harness.session.receive("{}", 0.0)
    harness.connect()
    with pytest.raises(rtproto.LocalProtocolError):
        harness.session.connection_made(1.0)
    harness.session.connection_lost("peer went away", 2.0)
    (change,) = harness.events()
    assert change == ConnectionChange(status=ConnectionStatus.DISCONNECTED, reason="peer went away")
    with pytest.raises(rtproto.ConnectionClosed):
        harness.session.send_audio(b"\x00\x00")
    with pytest.raises(rtproto.ConnectionClosed):
        harness.session.interrupt(3.0)
    harness.session.connection_lost("again", 4.0)  # idempotent
    assert harness.events() == []


def test_close_refuses_further_commands() -> None:
    harness = Harness()
    harness.connect()
    harness.session.close()
    assert harness.session.state is SessionState.CLOSING
    with pytest.raises(rtproto.LocalProtocolError) as info:
        harness.session.commit_audio()
    assert not isinstance(info.value, rtproto.ConnectionClosed)
    assert info.value.message == (
        "cannot input_audio_buffer.commit in state CLOSING: close() was called; a new"
        " connection needs a new ClientSession"
    )
    assert info.value.state == "CLOSING"
    harness.session.connection_lost("closed", 1.0)
    with pytest.raises(rtproto.ConnectionClosed, match="needs a new ClientSession"):
        harness.session.commit_audio()
    with pytest.raises(rtproto.LocalProtocolError, match="create a new one for the next"):
        harness.session.connection_made(2.0)


def test_nothing_is_received_once_the_connection_is_lost() -> None:
    harness = Harness()
    harness.connect()
    harness.session.connection_lost("gone", 1.0)
    harness.events()
    with pytest.raises(rtproto.LocalProtocolError, match="open connection"):
        harness.session.receive(harness.server.session_created(), 2.0)


def test_a_response_asked_for_before_connecting_is_refused() -> None:
    harness = Harness()
    with pytest.raises(rtproto.LocalProtocolError, match="connection_made"):
        harness.session.create_response()
    with pytest.raises(rtproto.LocalProtocolError, match="connection_made"):
        harness.session.send_event({"type": "response.create"})
    harness.connect()
    assert harness.sent() == []  # nothing was queued by the refused calls


def test_the_ids_remembered_to_name_errors_are_bounded(h: Harness) -> None:
    for _ in range(1000):
        h.session.commit_audio()
    sent = h.sent()
    assert len(h.session._sent_types) == 256
    error = {"type": "invalid_request_error", "code": "x", "message": "y", "param": None}
    for event_id, known in ((sent[-1]["event_id"], True), (sent[0]["event_id"], False)):
        events = h.feed(h.server.event("error", error={**error, "event_id": event_id}))
        (reported,) = [e for e in events if isinstance(e, ServerError)]
        assert reported.client_event_type == ("input_audio_buffer.commit" if known else None)


def test_update_session_sends_only_what_changed(h: Harness) -> None:
    h.session.update_session({"instructions": "Be terse."})
    assert h.sent() == [
        {
            "type": "session.update",
            "event_id": "rtproto_session_update_2",
            "session": {"type": "realtime", "instructions": "Be terse."},
        }
    ]
    # config stays what connection_made() asked for: the full normalised configuration
    assert h.session.config.model == "gpt-realtime"
    assert h.session.config.output_modalities == ["audio"]


# --- an audio turn (server VAD) -------------------------------------------------------------


def test_audio_turn(h: Harness) -> None:
    s = h.server
    events = h.feed(s.user_turn("item_U1"), now=1.0)
    assert names(events) == ["item_update", "history_updated", "item_update", "history_updated"]
    assert h.sent() == []  # speech with nothing playing interrupts nothing
    events = h.feed(
        [
            s.response_created("resp_1"),
            *s.assistant_audio("resp_1", "item_A1", "item_U1", [100, 100, 50]),
            s.response_done("resp_1"),
        ],
        now=2.0,
    )
    assert names(events) == [
        "turn_started",
        "item_update",
        "history_updated",
        "audio",
        "audio_transcript_delta",
        "audio",
        "audio_transcript_delta",
        "audio",
        "audio_transcript_delta",
        "audio_done",
        "item_update",
        "history_updated",
        "usage_update",
        "turn_done",
    ]
    chunks = [e for e in events if isinstance(e, AudioChunk)]
    assert [len(c.audio) for c in chunks] == [4800, 4800, 2400]
    assert chunks[1].pcm.tolist()[:2] == [257, 257]
    assert (chunks[0].response_id, chunks[0].item_id, chunks[0].content_index) == (
        "resp_1",
        "item_A1",
        0,
    )
    deltas = [e.delta for e in events if isinstance(e, AudioTranscriptDelta)]
    assert deltas == ["w0 ", "w1 ", "w2 "]
    history = h.session.history
    assert [item.id for item in history] == ["item_U1", "item_A1"]
    assistant = history[1]
    assert isinstance(assistant, M.MessageItem)
    assert assistant.content[0].transcript == "Hello there."
    (usage,) = [e for e in events if isinstance(e, UsageUpdate)]
    assert usage.totals.total_tokens == 253 and usage.totals.responses == 1
    assert usage.totals.cached_tokens == 64 and usage.totals.output_audio_tokens == 91
    (done,) = [e for e in events if isinstance(e, TurnDone)]
    assert done.response.id == "resp_1" and done.usage is not None
    assert h.sent() == []
    # every server event also came through, in order, before what it caused
    raw = [e for e in events if isinstance(e, rtproto.events.Event)]
    assert raw[0].type == "response.created" and isinstance(events[1], TurnStarted)


def test_usage_accumulates(h: Harness) -> None:
    s = h.server
    assert h.session.usage == UsageTotals(
        responses=0,
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        input_text_tokens=0,
        input_audio_tokens=0,
        input_image_tokens=0,
        cached_tokens=0,
        output_text_tokens=0,
        output_audio_tokens=0,
    )
    for n in (1, 2):
        h.feed([s.response_created(f"resp_{n}"), s.response_done(f"resp_{n}")])
    # a usage with counts missing or null (a cancelled response, say): they count as 0
    sparse = json.loads(s.response_done("resp_3"))
    sparse["response"]["usage"] = {
        "total_tokens": 7,
        "input_tokens": 5,
        "output_tokens": 2,
        "input_token_details": {"text_tokens": None, "audio_tokens": 5, "image_tokens": 3},
        "output_token_details": None,
    }
    h.feed([s.response_created("resp_3"), json.dumps(sparse)])
    bare = json.loads(s.response_done("resp_4"))
    bare["response"]["usage"] = {"total_tokens": 0, "input_tokens": None}  # no split at all
    h.feed([s.response_created("resp_4"), json.dumps(bare)])
    assert h.session.usage == UsageTotals(
        responses=4,
        input_tokens=2 * 132 + 5,
        output_tokens=2 * 121 + 2,
        total_tokens=2 * 253 + 7,
        input_text_tokens=2 * 119,
        input_audio_tokens=2 * 13 + 5,
        input_image_tokens=3,
        cached_tokens=2 * 64,
        output_text_tokens=2 * 30,
        output_audio_tokens=2 * 91,
    )


# --- a text turn and a tool-call turn -----------------------------------------------------------


def test_text_turn(h: Harness) -> None:
    s = h.server
    h.session.send_message("What's the weather?")
    assert h.sent() == [
        {
            "type": "conversation.item.create",
            "event_id": "rtproto_item_create_2",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather?"}],
            },
        },
        {"type": "response.create", "event_id": "rtproto_response_create_3"},
    ]
    ctx = {"response_id": "resp_1", "item_id": "item_A1", "output_index": 0, "content_index": 0}
    events = h.feed(
        [
            s.response_created("resp_1"),
            s.event("response.output_text.delta", **ctx, delta="Sun"),
            s.event("response.output_text.delta", **ctx, delta="ny."),
            s.response_done("resp_1"),
        ]
    )
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["Sun", "ny."]


def test_tool_call_turn(h: Harness) -> None:
    s = h.server
    events = h.feed(
        [
            s.response_created("resp_1"),
            *s.function_call("resp_1", "item_F1", "call_1", None),
            s.response_done("resp_1"),
        ]
    )
    calls = [e for e in events if isinstance(e, FunctionCall)]
    assert calls == [
        FunctionCall(
            function="get_weather",
            call_id="call_1",
            arguments='{"city":"Paris"}',
            item_id="item_F1",
            response_id="resp_1",
        )
    ]
    h.session.send_function_call_output("call_1", '{"temp_c":21}')
    assert h.session.messages_to_send() == [
        '{"type":"conversation.item.create","event_id":"rtproto_item_create_2","item":'
        '{"type":"function_call_output","call_id":"call_1","output":"{\\"temp_c\\":21}"}}',
        '{"type":"response.create","event_id":"rtproto_response_create_3"}',
    ]
    # a function call seen again (e.g. in a retrieved item) is not surfaced twice
    again = h.feed(s.function_call("resp_1", "item_F1", "call_1", None))
    assert not [e for e in again if isinstance(e, FunctionCall)]


def test_a_function_call_is_announced_when_its_item_is_done(h: Harness) -> None:
    """On ``response.output_item.done``, as the JS transport: not on the arguments' done,
    which a cancelled call also gets, its arguments cut short."""
    script = h.server.function_call("resp_1", "item_F1", "call_1", None)
    item_done = next(i for i, m in enumerate(script) if "response.output_item.done" in m)
    assert not [e for e in h.feed(script[:item_done]) if isinstance(e, FunctionCall)]
    events = h.feed(script[item_done])
    assert [e.call_id for e in events if isinstance(e, FunctionCall)] == ["call_1"]


def _with_status(message: str, status: str | None) -> str:
    """A function call trace message with the call cut short and its item's status set."""
    event = json.loads(message)
    if "arguments" in event:
        event["arguments"] = '{"ci'
    if "item" in event:
        event["item"]["arguments"] = '{"ci'
        if status is None:
            del event["item"]["status"]
        else:
            event["item"]["status"] = status
    return json.dumps(event)


@pytest.mark.parametrize(("status", "announced"), [("incomplete", []), (None, ["call_1"])])
def test_only_a_finished_function_call_is_announced(
    h: Harness, status: str | None, announced: list[str]
) -> None:
    """A response cancelled or cut by ``max_output_tokens`` mid-call ends the call
    "incomplete" with its arguments cut short: not a call to run. An item without a status
    is taken as finished at its done (as a message item is)."""
    script = [
        _with_status(m, status) for m in h.server.function_call("resp_1", "item_F1", "call_1", None)
    ]
    events = h.feed([h.server.response_created("resp_1"), *script])
    assert [e.call_id for e in events if isinstance(e, FunctionCall)] == announced


@pytest.mark.parametrize(
    ("status", "announced_at_added"), [("completed", True), ("in_progress", False), (None, False)]
)
def test_a_call_added_completed_is_announced_at_once(
    h: Harness, status: str | None, announced_at_added: bool
) -> None:
    """The JS transport announces a function call from ``response.output_item.added`` when
    it is already completed; one added in progress (or with no status) waits for its done.
    Either way it is announced once."""
    s = h.server
    item = {"id": "item_F1", "type": "function_call", "name": "get_weather", "call_id": "call_1"}
    item |= {"arguments": '{"city":"Paris"}'} | ({"status": status} if status else {})
    added = s.event("response.output_item.added", response_id="resp_1", output_index=0, item=item)
    events = h.feed([s.response_created("resp_1"), added])
    calls = [e for e in events if isinstance(e, FunctionCall)]
    assert [c.call_id for c in calls] == (["call_1"] if announced_at_added else [])
    if calls:
        assert calls[0] == FunctionCall(
            function="get_weather",
            call_id="call_1",
            arguments='{"city":"Paris"}',
            item_id="item_F1",
            response_id="resp_1",
        )
    done = {**item, "status": "completed"}
    events = h.feed(
        [
            s.event("response.output_item.done", response_id="resp_1", output_index=0, item=done),
            s.event("conversation.item.done", previous_item_id=None, item=done),
        ]
    )
    announced_at_done = [e.call_id for e in events if isinstance(e, FunctionCall)]
    assert announced_at_done == ([] if announced_at_added else ["call_1"])


# --- response sequencing ------------------------------------------------------------------------


def test_create_while_active_is_deferred_and_coalesced(h: Harness) -> None:
    s = h.server
    h.feed(s.response_created("resp_vad"))  # the server's own response (VAD)
    h.session.send_message("one")
    h.session.send_message("two")
    h.session.send_function_call_output("call_1", "x")
    assert [m["type"] for m in h.sent()] == ["conversation.item.create"] * 3
    assert h.session.response_active
    h.feed(s.response_done("resp_vad"))
    assert h.sent() == [{"type": "response.create", "event_id": "rtproto_response_create_5"}]
    # a manual create with options stays distinct and waits for the next done
    h.session.create_response({"instructions": "Shorter.", "conversation": "auto"})
    assert h.sent() == []
    h.feed([s.response_created("resp_2"), s.response_done("resp_2")])
    assert h.sent() == [
        {
            "type": "response.create",
            "event_id": "rtproto_response_create_6",
            "response": {"instructions": "Shorter.", "conversation": "auto"},
        }
    ]


def test_rejected_create_is_released_and_automatic_ones_retried(h: Harness) -> None:
    s = h.server
    h.session.send_message("hi")
    create = h.sent()[-1]
    assert create["type"] == "response.create"
    events = h.feed(
        s.event(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "conversation_already_has_active_response",
                "message": "Conversation already has an active response in progress: resp_X.",
                "param": None,
                "event_id": create["event_id"],
            },
        )
    )
    (error,) = [e for e in events if isinstance(e, ServerError)]
    assert error.client_event_type == "response.create"
    assert error.event.error.code == "conversation_already_has_active_response"
    # resp_X runs, unseen (it started before this session attached, say): retrying now
    # would meet the same refusal, so the retry waits until a response shows up or ends
    assert h.sent() == []
    assert h.session.response_active
    h.feed(s.response_done("resp_X"))
    assert h.sent() == [{"type": "response.create", "event_id": "rtproto_response_create_4"}]


def test_the_beta_services_busy_refusal_is_recognised_by_its_message(h: Harness) -> None:
    """In January 2025 the service said it with code null and a short message
    (service-observations.md 10): still no retry until a response starts or ends."""
    h.session.send_message("hi")
    create = h.sent()[-1]
    error = {
        "type": "invalid_request_error",
        "code": None,
        "message": "Conversation already has an active response",
        "param": None,
        "event_id": create["event_id"],
    }
    h.feed(h.server.event("error", error=error))
    assert h.sent() == []
    h.feed(h.server.response_created("resp_X"))
    assert h.sent() == []  # it runs now, known
    h.feed(h.server.response_done("resp_X"))
    assert [m["type"] for m in h.sent()] == ["response.create"]


def refusal(h: Harness, event_id: str | None, *, busy: bool = False) -> str:
    """The server's error refusing the client event ``event_id``."""
    code = "conversation_already_has_active_response" if busy else "invalid_value"
    message = "Conversation already has an active response" if busy else "Invalid value."
    error = {"type": "invalid_request_error", "code": code, "message": message}
    return h.server.event("error", error={**error, "param": None, "event_id": event_id})


def creates(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in sent if m["type"] == "response.create"]


def test_a_refused_create_is_not_sent_again_but_what_it_absorbed_is(h: Harness) -> None:
    """Found by random traces against the JS transport: an automatic create refused for
    itself (not because a response runs) was sent again at once, and refused again, forever.
    As in the JS sequencer, only requests it had absorbed get a create of their own."""
    h.session.send_message("one")
    h.feed(refusal(h, h.sent()[-1]["event_id"]))
    assert h.sent() == [] and not h.session.response_active  # dropped, not looping
    h.feed(h.server.response_created("resp_1"))
    h.session.send_message("two")
    h.session.send_message("three")  # coalesced with "two": one create answers both
    h.feed(h.server.response_done("resp_1"))
    (create,) = creates(h.sent())
    h.feed(refusal(h, create["event_id"]))
    (retry,) = h.sent()  # "three" gets a create of its own
    assert retry["type"] == "response.create"
    h.feed(refusal(h, retry["event_id"]))
    assert h.sent() == [] and not h.session.response_active


def test_an_unrelated_error_leaves_the_create_in_flight(h: Harness) -> None:
    h.session.send_message("hi")
    h.sent()
    error = {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "Invalid value: 'loud'. Supported values are: 'alloy', 'marin'.",
        "param": "session.audio.output.voice",
        "event_id": None,
    }
    h.feed(h.server.event("error", error=error))
    h.session.create_response({"instructions": "x"})
    assert h.sent() == [] and h.session.response_active  # still waiting for its answer
    h.feed(h.server.response_created("resp_1"))
    h.feed(h.server.response_done("resp_1"))
    assert [m["type"] for m in h.sent()] == ["response.create"]


def test_create_response_without_options_joins_the_requests_waiting(h: Harness) -> None:
    """As the JS transport's requestResponse(): one response answers them all; a request
    with options gets its own."""
    h.feed(h.server.response_created("resp_1"))
    h.session.send_message("one")
    h.session.create_response()
    h.session.send_function_call_output("call_1", "{}")
    h.session.create_response({"instructions": "in French"})
    assert [m["type"] for m in h.sent()] == ["conversation.item.create"] * 2
    h.feed(h.server.response_done("resp_1"))
    assert [m.get("response") for m in h.sent()] == [None]
    h.feed(h.server.response_created("resp_2"))
    h.feed(h.server.response_done("resp_2"))
    assert [m.get("response") for m in h.sent()] == [{"instructions": "in French"}]


def test_manual_create_rejected_is_not_retried(h: Harness) -> None:
    s = h.server
    h.session.create_response({"instructions": "x"})
    (create,) = h.sent()
    h.feed(
        s.event(
            "error",
            error={
                "type": "invalid_request_error",
                "code": None,
                "message": "bad response.create",
                "param": None,
                "event_id": None,
            },
        )
    )
    assert h.sent() == []
    assert not h.session.response_active
    h.session.create_response()
    assert h.sent()[0]["type"] == "response.create"
    assert create["event_id"] != "rtproto_response_create_9"


def test_an_error_about_another_client_event_leaves_the_create_in_flight(h: Harness) -> None:
    h.session.send_message("hi")
    item_create, _create = h.sent()
    h.feed(refusal(h, item_create["event_id"]))  # the item was refused, not the create
    h.session.create_response({"instructions": "x"})
    assert h.sent() == [] and h.session.response_active  # the first create still waits
    h.feed([h.server.response_created("resp_1"), h.server.response_done("resp_1")])
    assert [m.get("response") for m in creates(h.sent())] == [{"instructions": "x"}]


def test_a_manual_create_refused_as_busy_is_dropped_too(h: Harness) -> None:
    h.session.create_response({"instructions": "x"})
    (create,) = h.sent()
    h.feed(refusal(h, create["event_id"], busy=True))
    h.feed([h.server.response_created("resp_X"), h.server.response_done("resp_X")])
    assert h.sent() == []


@pytest.mark.parametrize("waiting", [True, False], ids=["joins-one-waiting", "queued-alone"])
def test_a_create_refused_as_busy_stays_one_automatic_request(h: Harness, waiting: bool) -> None:
    """Its retry joins an automatic request already waiting, or waits as one itself, which
    later automatic requests join: one response answers them all."""
    h.session.send_message("one")
    (create,) = creates(h.sent())
    if waiting:
        h.session.send_message("two")  # waits: a create is in flight
    h.feed(refusal(h, create["event_id"], busy=True))
    h.session.send_message("three")  # joins the retry
    h.feed(h.server.response_done("resp_X"))  # the unseen response ends
    assert len(creates(h.sent())) == 1
    h.feed([h.server.response_created("resp_1"), h.server.response_done("resp_1")])
    assert h.sent() == []


def test_a_refused_automatic_create_is_retried_ahead_of_the_queue(h: Harness) -> None:
    h.session.send_message("one")
    (create,) = creates(h.sent())
    h.session.create_response({"instructions": "x"})  # queued behind the one in flight
    h.feed(refusal(h, create["event_id"], busy=True))
    h.feed(h.server.response_done("resp_X"))
    assert [m.get("response") for m in creates(h.sent())] == [None]  # the retry first
    h.feed([h.server.response_created("resp_1"), h.server.response_done("resp_1")])
    assert [m.get("response") for m in creates(h.sent())] == [{"instructions": "x"}]


@pytest.mark.parametrize(
    "create",
    [
        {"type": "response.create", "response": {"instructions": "x"}},
        rtproto.events.ResponseCreate(response=M.ResponseCreateParams(instructions="x")),
    ],
    ids=["dict", "typed"],
)
def test_a_raw_create_waits_its_turn_and_is_never_merged(h: Harness, create: Any) -> None:
    h.feed(h.server.response_created("resp_1"))
    h.session.send_event(create)
    h.session.send_message("and this")  # an automatic request: never merged into that one
    assert [m["type"] for m in h.sent()] == ["conversation.item.create"]  # a response runs
    h.feed(h.server.response_done("resp_1"))
    assert [m.get("response") for m in creates(h.sent())] == [{"instructions": "x"}]
    h.feed([h.server.response_created("resp_2"), h.server.response_done("resp_2")])
    assert [m.get("response") for m in creates(h.sent())] == [None]


def test_a_raw_cancel_counts_as_the_cancel(h: Harness) -> None:
    h.feed(h.server.response_created("resp_1"))
    h.session.send_event({"type": "response.cancel"})
    h.session.interrupt(1.0)
    assert [m["type"] for m in h.sent()] == ["response.cancel"]  # not a second one


def test_cancel_only_while_active(h: Harness) -> None:
    s = h.server
    h.session.interrupt(0.0)
    assert h.sent() == []
    assert not [e for e in h.events() if isinstance(e, AudioInterrupted)]
    h.feed(s.response_created("resp_1"))
    h.session.interrupt(1.0)
    assert h.sent() == [
        {
            "type": "response.cancel",
            "event_id": "rtproto_response_cancel_2",
            "response_id": "resp_1",
        }
    ]
    (interrupted,) = [e for e in h.events() if isinstance(e, AudioInterrupted)]
    assert interrupted.response_id == "resp_1" and interrupted.truncated == ()
    h.session.interrupt(1.5)  # a cancel is already on its way
    assert h.sent() == []


def test_out_of_band_responses_do_not_block(h: Harness) -> None:
    s = h.server
    h.feed(s.response_created("resp_oob", conversation=False))
    h.session.send_message("hi")
    assert [m["type"] for m in h.sent()] == ["conversation.item.create", "response.create"]


def test_someone_elses_out_of_band_response_does_not_answer_our_create(h: Harness) -> None:
    """A create for the default conversation waits for its own response.created: an
    out-of-band response starting meanwhile (another client's) must not let a second create
    go."""
    s = h.server
    h.session.send_message("a")
    assert [m["type"] for m in h.sent()] == ["conversation.item.create", "response.create"]
    h.feed(s.response_created("resp_oob", conversation=False))
    h.session.send_message("b")
    assert [m["type"] for m in h.sent()] == ["conversation.item.create"]
    h.feed(s.response_created("resp_1"))
    h.feed(s.response_done("resp_1"))
    assert [m["type"] for m in h.sent()] == ["response.create"]


def test_a_raw_create_refused_by_its_own_event_id_frees_the_sequencer(h: Harness) -> None:
    """The caller's ``event_id`` goes on the wire and is the one in flight: the error that
    names it releases the create (a generated id recorded instead left the session stuck)."""
    h.session.send_event({"type": "response.create", "event_id": "my_create"})
    assert h.sent() == [{"type": "response.create", "event_id": "my_create"}]
    error = {"type": "invalid_request_error", "code": "x", "message": "no", "event_id": "my_create"}
    h.feed(h.server.event("error", error=error))
    assert not h.session.response_active
    h.session.create_response()
    assert [m["type"] for m in h.sent()] == ["response.create"]


def test_raw_events_keep_the_invariants(h: Harness) -> None:
    s = h.server
    h.session.send_event({"type": "response.create", "response": {"instructions": "x"}})
    h.session.send_event({"type": "response.create"})
    sent = h.sent()
    assert len(sent) == 1 and sent[0]["response"] == {"instructions": "x"}
    h.feed([s.response_created("resp_1")])
    h.session.send_event({"type": "response.cancel"})
    h.session.send_event({"type": "session.close", "anything": 1})
    assert h.sent() == [{"type": "response.cancel"}, {"type": "session.close", "anything": 1}]
    h.feed(s.response_done("resp_1"))
    assert h.sent()[0]["type"] == "response.create"
    h.session.send_event(rtproto.events.InputAudioBufferClear())
    assert h.sent() == [{"type": "input_audio_buffer.clear"}]


# --- interruption and truncation ---------------------------------------------------------------


def play(
    h: Harness, response_id: str, item_id: str, chunks: list[int], now: float, done: bool = True
) -> None:
    s = h.server
    script = s.assistant_audio(response_id, item_id, None, chunks)
    h.feed([s.response_created(response_id)] if done is not None else [], now)
    h.feed(script, now)


def test_barge_in_truncates_at_the_played_position(h: Harness) -> None:
    s = h.server
    h.feed(s.response_created("resp_1"), now=10.0)
    h.feed(s.assistant_audio("resp_1", "item_A1", None, [500, 500, 500])[:-5], now=10.0)
    # 0.4375 s later the user speaks; the server (interrupt_response true) cancels by itself
    events = h.feed(
        s.event("input_audio_buffer.speech_started", audio_start_ms=900, item_id="item_U2"),
        now=10.4375,
    )
    assert h.sent() == [
        {
            "type": "conversation.item.truncate",
            "event_id": "rtproto_item_truncate_2",
            "item_id": "item_A1",
            "content_index": 0,
            "audio_end_ms": 437,
        }
    ]
    (interrupted,) = [e for e in events if isinstance(e, AudioInterrupted)]
    assert interrupted.truncated == (
        TruncatedItem(
            response_id="resp_1",
            item_id="item_A1",
            content_index=0,
            audio_end_ms=437,
            received_ms=1500,
        ),
    )
    # audio of the interrupted response still in flight is dropped
    late = h.feed(s.assistant_audio("resp_1", "item_A1", None, [100])[3:6], now=10.5)
    assert not [e for e in late if isinstance(e, (AudioChunk, AudioDone))]
    # the same speech again interrupts nothing
    h.feed(s.event("input_audio_buffer.speech_started", audio_start_ms=950, item_id="x"), 10.6)
    assert h.sent() == []


def test_client_cancels_when_server_does_not_interrupt() -> None:
    harness = Harness()
    harness.connect()
    s = harness.server
    vad = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "create_response": True,
        "interrupt_response": False,
    }
    audio = {"input": {"turn_detection": vad}, "output": {"voice": "alloy"}}
    harness.feed(s.session_updated(audio=audio))
    harness.feed(s.response_created("resp_1"), 0.0)
    harness.feed(s.assistant_audio("resp_1", "item_A1", None, [300])[:4], 0.0)
    harness.feed(s.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u"), 0.1)
    assert [(m["type"], m.get("audio_end_ms")) for m in harness.sent()] == [
        ("response.cancel", None),
        ("conversation.item.truncate", 100),
    ]


def test_truncation_never_exceeds_received_audio(h: Harness) -> None:
    s = h.server
    h.feed(s.response_created("resp_1"), now=0.0)
    h.feed(s.assistant_audio("resp_1", "item_A1", None, [250])[:4], now=0.0)
    h.session.interrupt(0.2499)  # floors sub-millisecond positions
    assert [m.get("audio_end_ms") for m in h.sent()] == [None, 249]
    # nothing was received for an item: nothing to cut
    h.feed(s.response_created("resp_2"), now=1.0)
    h.session.interrupt(5.0)
    assert [m["type"] for m in h.sent()] == ["response.cancel"]


def test_fully_played_audio_is_not_truncated(h: Harness) -> None:
    s = h.server
    h.feed(
        [s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [200])], 0.0
    )
    h.feed(s.response_done("resp_1"), 0.0)
    h.session.interrupt(0.5)  # 200 ms played long ago
    assert h.sent() == []
    assert not [e for e in h.events() if isinstance(e, AudioInterrupted)]


def test_several_queued_items_are_cut_one_by_one(h: Harness) -> None:
    s = h.server
    h.feed(s.response_created("resp_1"), 0.0)
    h.feed(s.assistant_audio("resp_1", "item_A1", None, [500], index=0), 0.0)
    h.feed(s.assistant_audio("resp_1", "item_A2", "item_A1", [500], index=1), 0.0)
    h.feed(s.assistant_audio("resp_1", "item_A3", "item_A2", [500], index=2), 0.0)
    h.events()
    h.session.interrupt(0.7)  # 500 ms of A1 and 200 ms of A2 were heard
    assert h.sent() == [
        {
            "type": "response.cancel",
            "response_id": "resp_1",
            "event_id": "rtproto_response_cancel_2",
        },
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A2",
            "content_index": 0,
            "audio_end_ms": 200,
            "event_id": "rtproto_item_truncate_3",
        },
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A3",
            "content_index": 0,
            "audio_end_ms": 0,
            "event_id": "rtproto_item_truncate_4",
        },
    ]
    assert h.events() == [
        AudioInterrupted(
            response_id="resp_1",
            truncated=(
                TruncatedItem(
                    response_id="resp_1",
                    item_id="item_A2",
                    content_index=0,
                    audio_end_ms=200,
                    received_ms=500,
                ),
                TruncatedItem(
                    response_id="resp_1",
                    item_id="item_A3",
                    content_index=0,
                    audio_end_ms=0,
                    received_ms=500,
                ),
            ),
        )
    ]


def test_interleaved_audio_is_counted_to_its_own_item(h: Harness) -> None:
    """receive() looks an item up only when the audio changes item: audio that goes back
    and forth between two items still counts to each its own."""
    h.feed(h.server.response_created("resp_1"), 0.0)
    sizes = {"item_A1": [4800, 2400, 4800], "item_A2": [2400, 4800, 480]}  # 250 and 160 ms
    for a1, a2 in zip(sizes["item_A1"], sizes["item_A2"], strict=True):
        h.feed([audio_delta(h, "item_A1", a1), audio_delta(h, "item_A2", a2)], 0.0)
    h.session.interrupt(10.0)
    (interrupted,) = [e for e in h.events() if isinstance(e, AudioInterrupted)]
    assert [(cut.item_id, cut.received_ms) for cut in interrupted.truncated] == [
        ("item_A1", 250),
        ("item_A2", 160),
    ]


def test_audio_after_its_item_was_deleted_starts_it_afresh(h: Harness) -> None:
    """A deleted item is forgotten by the playback tracker, even the one audio last went to:
    audio arriving for it afterwards is counted from zero, not into the forgotten item."""
    h.feed([h.server.response_created("resp_1"), audio_delta(h, "item_A1", 4800)], 0.0)
    h.feed(h.server.event("conversation.item.deleted", item_id="item_A1"), 0.0)
    h.feed(audio_delta(h, "item_A1", 2400), 0.0)
    h.session.interrupt(10.0)
    (interrupted,) = [e for e in h.events() if isinstance(e, AudioInterrupted)]
    assert [(cut.item_id, cut.received_ms) for cut in interrupted.truncated] == [("item_A1", 50)]


def test_reported_playback_wins_over_the_clock() -> None:
    harness = Harness(profile=Profile.PHONE, phone_playback_lead_ms=0)
    harness.connect()
    s = harness.server
    harness.feed(s.response_created("resp_1"), 0.0)
    harness.feed(s.assistant_audio("resp_1", "item_A1", None, [400], index=0), 0.0)
    harness.feed(s.assistant_audio("resp_1", "item_A2", "item_A1", [400], index=1), 0.0)
    assert harness.session.playback_progress("item_A1", 120.7)
    assert harness.session.playback_progress("item_A1", 80.0)  # marks only move forward
    assert not harness.session.playback_progress("item_unknown", 5.0)
    for bad in (-1, math.nan, math.inf, "5", True):
        with pytest.raises(rtproto.LocalProtocolError, match="played_ms must be a finite number"):
            harness.session.playback_progress("item_A1", bad)  # type: ignore[arg-type]
    harness.session.interrupt(99.0)  # the clock says "all played"; the phone says otherwise
    assert harness.sent() == [
        {
            "type": "response.cancel",
            "response_id": "resp_1",
            "event_id": "rtproto_response_cancel_2",
        },
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A1",
            "content_index": 0,
            "audio_end_ms": 120,
            "event_id": "rtproto_item_truncate_3",
        },
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A2",
            "content_index": 0,
            "audio_end_ms": 0,
            "event_id": "rtproto_item_truncate_4",
        },
    ]


def test_a_nan_clock_reading_cuts_at_zero_instead_of_failing(h: Harness) -> None:
    """The clock is the caller's: a NaN reading must not break the next interrupt."""
    play(h, "resp_1", "item_A1", [400], now=math.nan)
    h.session.interrupt(1.0)
    assert [(m["type"], m.get("audio_end_ms")) for m in h.sent()] == [
        ("response.cancel", None),
        ("conversation.item.truncate", 0),
    ]


def test_gap_between_items_delays_the_estimate(h: Harness) -> None:
    s = h.server
    h.feed(
        [s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [100])], 0.0
    )
    h.feed(s.response_done("resp_1"), 0.0)
    # the next response's audio arrives 2 s later: it starts playing then, not at 0.1 s
    h.feed(
        [s.response_created("resp_2"), *s.assistant_audio("resp_2", "item_A2", None, [500])], 2.0
    )
    h.session.interrupt(2.25)
    assert [m.get("audio_end_ms") for m in h.sent()] == [None, 250]


def test_audio_of_a_response_cancelled_before_its_audio_is_dropped(h: Harness) -> None:
    h.feed(h.server.response_created("resp_1"), now=1.0)
    h.session.interrupt(1.0)
    assert [m["type"] for m in h.sent()] == ["response.cancel"]
    late = h.feed(h.server.assistant_audio("resp_1", "item_A1", None, [100]), now=1.1)
    assert not [e for e in late if isinstance(e, AudioChunk)]


def test_an_item_whose_response_ended_is_complete_without_its_audio_done(h: Harness) -> None:
    script = h.server.assistant_audio("resp_1", "item_A1", None, [200])
    audio = [m for m in script if "output_audio.delta" in m]
    h.feed([h.server.response_created("resp_1"), *audio, h.server.response_done("resp_1")], 0.0)
    h.session.interrupt(5.0)  # all of it arrived and was played: nothing to cut or cancel
    assert h.sent() == []


def audio_delta(h: Harness, item_id: str, pcm_bytes: int, response_id: str = "resp_1") -> str:
    ctx = {"response_id": response_id, "item_id": item_id, "output_index": 0}
    delta = base64.b64encode(bytes(pcm_bytes)).decode()
    return h.server.event("response.output_audio.delta", **ctx, content_index=0, delta=delta)


@pytest.mark.parametrize(
    ("output_format", "audio_bytes", "audio_end_ms"),
    [
        ({"type": "audio/pcm"}, 4800, 100),  # 100 ms at 24 kHz: no padding
        ({"type": "audio/pcm"}, 4799, 99),  # the base64 ends in "="
        ({"type": "audio/pcm"}, 4798, 99),  # "=="
        ({"type": "audio/pcmu"}, 23, 2),  # "=": one byte short of 3 ms at 8 bytes per ms
        ({"type": "audio/pcmu"}, 400, 50),  # "==": exactly 50 ms
        ({"type": "audio/pcmu"}, 799, 99),  # "==": one byte short of 100 ms
        ({"type": "audio/pcma"}, 800, 100),  # the server's format counts, not the one asked
        ({"type": "audio/pcm", "rate": 0}, 4800, 100),  # a rate that makes no sense: 24 kHz
    ],
)
def test_a_cut_never_passes_the_audio_received(
    h: Harness, output_format: dict[str, Any], audio_bytes: int, audio_end_ms: int
) -> None:
    """All of one chunk played long ago: cut at exactly what arrived, in the format the
    server said. A chunk whose base64 ends in "=" or "==" holds one or two bytes fewer than
    its length says; counting them would cut past the audio (which the service refuses)."""
    h.feed(h.server.session_updated(audio={"output": {"format": output_format}}))
    h.feed([h.server.response_created("resp_1"), audio_delta(h, "item_A1", audio_bytes)], 0.0)
    h.session.interrupt(10.0)
    (cut,) = [m for m in h.sent() if m["type"] == "conversation.item.truncate"]
    assert cut["audio_end_ms"] == audio_end_ms


def test_audio_is_counted_exactly_across_many_deltas(h: Harness) -> None:
    """receive() counts base64 characters and padding, not decoded bytes (cheaper per
    delta): many G.711 chunks, padded or not, still cut at exactly what arrived."""
    h.feed(h.server.session_updated(audio={"output": {"format": {"type": "audio/pcmu"}}}))
    h.feed(h.server.response_created("resp_1"), 0.0)
    chunks = [799, 800, 23, 0] * 40  # "=", none, "=" and empty
    h.feed([audio_delta(h, "item_A1", size) for size in chunks], 0.0)
    h.session.interrupt(1000.0)
    (cut,) = [m for m in h.sent() if m["type"] == "conversation.item.truncate"]
    assert cut["audio_end_ms"] == sum(chunks) // 8  # 8 bytes per ms: 8110 ms


def test_played_progress_of_zero_is_taken(h: Harness) -> None:
    h.feed([h.server.response_created("resp_1"), audio_delta(h, "item_A1", 4800)], 0.0)
    assert h.session.playback_progress("item_A1", 0)
    h.session.interrupt(10.0)
    (cut,) = [m for m in h.sent() if m["type"] == "conversation.item.truncate"]
    assert cut["audio_end_ms"] == 0


# --- WebRTC, SIP and limits ----------------------------------------------------------------------


def test_webrtc_waits_for_session_updated_and_holds_messages() -> None:
    harness = Harness(profile=Profile.WEBRTC)
    harness.session.connection_made(100.0)
    assert [m["type"] for m in harness.sent()] == ["session.update"]
    assert harness.session.get_timer() == 105.0
    harness.session.send_message("early")
    assert harness.sent() == []
    assert names(harness.events()) == ["connection_change"]
    harness.session.handle_timer(101.0)  # not due yet
    events = harness.feed(harness.server.session_updated(), 101.0)
    assert [e.status for e in events if isinstance(e, ConnectionChange)] == [
        ConnectionStatus.CONNECTED
    ]
    assert [m["type"] for m in harness.sent()] == ["conversation.item.create", "response.create"]
    assert harness.session.get_timer() is None


def test_webrtc_create_asked_while_connecting_waits_for_a_response_the_server_started() -> None:
    """Found by fuzz/fuzz_session.py: a held create used to count as in flight, so a
    response the server started meanwhile passed for its answer and the create went out
    while that response ran."""
    harness = Harness(profile=Profile.WEBRTC)
    harness.session.connection_made(0.0)
    harness.sent()
    harness.session.send_message("early")  # held until connected, with its response.create
    harness.feed(harness.server.response_created("resp_vad"), 0.5)  # the server's own
    harness.feed(harness.server.session_updated(), 1.0)
    assert [m["type"] for m in harness.sent()] == ["conversation.item.create"]
    harness.feed(harness.server.response_done("resp_vad"), 2.0)
    assert [m["type"] for m in harness.sent()] == ["response.create"]


def test_speech_after_close_interrupts_nothing_and_raises_nothing(h: Harness) -> None:
    """Found by fuzz/fuzz_session.py: the automatic interrupt tried to send in CLOSING."""
    s = h.server
    h.feed([s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [500])])
    h.session.close()
    events = h.feed(
        s.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U2"), 0.1
    )
    assert names(events) == []
    assert h.sent() == []


def test_webrtc_interrupt_while_connecting_goes_out_at_once() -> None:
    """Found by the session machine: a cancel held until session.updated reached the server
    after the response it meant had ended."""
    harness = Harness(profile=Profile.WEBRTC)
    harness.session.connection_made(0.0)
    harness.sent()
    harness.feed(harness.server.response_created("resp_vad"), 0.5)  # the server's own
    harness.session.interrupt(0.6)
    assert [m["type"] for m in harness.sent()] == ["response.cancel", "output_audio_buffer.clear"]
    harness.feed(harness.server.response_done("resp_vad", status="cancelled"), 0.7)
    harness.feed(harness.server.session_updated(), 1.0)
    assert harness.sent() == []  # nothing stale left to send


def test_a_response_without_an_id_is_cancelled_as_the_active_one(h: Harness) -> None:
    """Found by the session fuzzer: the cancel named response_id "" instead of none."""
    created = json.loads(h.server.response_created("x"))
    del created["response"]["id"]
    h.feed(json.dumps(created))
    h.session.interrupt(0.1)
    assert h.sent() == [{"type": "response.cancel", "event_id": "rtproto_response_cancel_2"}]


def test_a_repeated_response_created_is_one_response(h: Harness) -> None:
    """Found by the session fuzzer: each copy counted, so one response.done left it active."""
    for _ in range(3):
        h.feed(h.server.response_created("resp_1"))
    h.feed(h.server.response_done("resp_1"))
    assert not h.session.response_active
    h.session.interrupt(0.1)
    assert h.sent() == []  # nothing to cancel


def test_mcp_approval_is_answered_after_its_request(h: Harness) -> None:
    done = h.server.event("conversation.item.done", previous_item_id=None, item=MCP_APPROVAL_ITEM)
    events = derived(h.feed(done))
    assert [e.name for e in events] == ["item_update", "history_updated", "mcp_approval_request"]
    assert isinstance(events[-1], McpApprovalRequested)
    item = events[-1].item
    assert isinstance(item, M.McpApprovalRequestItem)
    assert item == events[0].item
    assert "mcp_approval_request" not in names(h.feed(done))  # asked once
    h.session.send_mcp_response(item, True)
    h.session.send_mcp_response("mcpr_1", False, reason="not now")
    assert h.sent() == [
        {
            "type": "conversation.item.create",
            "event_id": "rtproto_item_create_2",
            "item": {
                "type": "mcp_approval_response",
                "approval_request_id": "mcpr_1",
                "approve": True,
            },
            "previous_item_id": "mcpr_1",
        },
        {
            "type": "conversation.item.create",
            "event_id": "rtproto_item_create_3",
            "item": {
                "type": "mcp_approval_response",
                "approval_request_id": "mcpr_1",
                "approve": False,
                "reason": "not now",
            },
            "previous_item_id": "mcpr_1",
        },
    ]
    with pytest.raises(rtproto.LocalProtocolError, match="no id"):
        h.session.send_mcp_response(
            M.McpApprovalRequestItem(server_label="d", name="n", arguments=""), True
        )


def test_mcp_items_are_announced_once_when_done(h: Harness) -> None:
    """The JS transport's mcp_tools_listed / mcp_approval_request / mcp_tool_call_completed."""
    added = h.feed(
        h.server.event("conversation.item.added", previous_item_id=None, item=MCP_TOOLS_ITEM)
    )
    assert names(added) == ["item_update", "history_updated"]  # nothing until done
    done = h.server.event("conversation.item.done", previous_item_id=None, item=MCP_TOOLS_ITEM)
    events = derived(h.feed(done))
    assert [e.name for e in events] == ["item_update", "history_updated", "mcp_tools_listed"]
    listed = events[-1]
    assert isinstance(listed, McpToolsListed)
    assert listed.server_label == "docs"
    assert [tool.name for tool in listed.tools] == ["search"]
    assert listed.item.id == "mcpl_1"
    assert names(h.feed(done)) == ["item_update", "history_updated"]  # a repeat: once only

    call = h.server.event("conversation.item.done", previous_item_id="mcpl_1", item=MCP_CALL_ITEM)
    events = derived(h.feed(call))
    assert isinstance(events[-1], McpToolCallCompleted)
    assert events[-1].item.output == "3 results"
    assert names(h.feed(call))[-1] != "mcp_tool_call_completed"
    assert [item.id for item in h.session.history] == ["mcpl_1", "mcp_1"]
    assert h.sent() == []


def test_an_mcp_item_without_id_is_announced_each_time(h: Harness) -> None:
    """Nothing to recognise a repeat by: each done is reported (never silently dropped)."""
    anonymous = {k: v for k, v in MCP_CALL_ITEM.items() if k != "id"}
    done = h.server.event("conversation.item.done", previous_item_id=None, item=anonymous)
    assert names(h.feed(done))[-1] == "mcp_tool_call_completed"
    assert names(h.feed(done))[-1] == "mcp_tool_call_completed"


def test_mcp_in_progress_reads_back_an_item_history_lacks(h: Harness) -> None:
    """The JS transport retrieves on MCP in-progress signals; a known item needs no trip."""
    h.feed(h.server.event("response.mcp_call.in_progress", item_id="mcp_1", output_index=0))
    h.feed(h.server.event("mcp_list_tools.in_progress", item_id="mcpl_1"))
    h.feed(h.server.event("mcp_list_tools.in_progress", item_id="mcpl_1"))  # asked already
    assert h.sent() == [
        {
            "type": "conversation.item.retrieve",
            "event_id": "rtproto_item_retrieve_2",
            "item_id": "mcp_1",
        },
        {
            "type": "conversation.item.retrieve",
            "event_id": "rtproto_item_retrieve_3",
            "item_id": "mcpl_1",
        },
    ]
    retrieved = h.feed(h.server.event("conversation.item.retrieved", item=MCP_TOOLS_ITEM))
    assert names(retrieved) == ["item_update", "history_updated"]
    h.feed(h.server.event("mcp_list_tools.in_progress", item_id="mcpl_1"))
    assert h.sent() == []  # history has it now


def test_unanswered_retrieves_are_remembered_within_a_bound(h: Harness) -> None:
    """A retrieve the server never answers is not repeated, but the memory of it is bounded:
    the oldest are forgotten (and may be asked again) once 256 wait."""
    for n in range(300):
        h.feed(h.server.event("mcp_list_tools.in_progress", item_id=f"mcpl_{n}"))
    assert len(h.sent()) == 300
    h.feed(h.server.event("mcp_list_tools.in_progress", item_id="mcpl_299"))
    assert h.sent() == []  # still remembered
    h.feed(h.server.event("mcp_list_tools.in_progress", item_id="mcpl_0"))
    assert [m["item_id"] for m in h.sent()] == ["mcpl_0"]  # forgotten, asked again


def test_a_message_without_status_gets_the_js_default(h: Harness) -> None:
    """As the JS transport: in_progress when added, completed when done or retrieved."""
    item = {"id": "item_1", "type": "message", "role": "user", "content": []}
    h.feed(h.server.event("conversation.item.added", previous_item_id=None, item=item))
    assert h.session.history[0].status == "in_progress"
    h.feed(h.server.event("conversation.item.done", previous_item_id=None, item=item))
    assert h.session.history[0].status == "completed"
    incomplete = {**item, "id": "item_2", "status": "incomplete"}
    h.feed(h.server.event("conversation.item.retrieved", item=incomplete))
    assert h.session.history[1].status == "incomplete"  # a status given is kept


_TWO_CREATES = b"!\x02\x00\x00\n!\x02\x01\x00"  # create_response twice, for the fuzz harness


def test_session_fuzz_corpus_runs_clean() -> None:
    harness = load_harness("session")
    corpus = FUZZ / "corpus" / "session"
    files = sorted(p for p in corpus.iterdir() if p.is_file())
    assert len(files) >= 6
    assert harness.run_corpus([corpus]) == len(files)
    assert set(harness.seeds()) <= {p.name for p in files}  # the seeds are committed
    harness.check_one(_TWO_CREATES)


@pytest.mark.pure_python
def test_session_fuzz_harness_fails_on_a_broken_sequencer(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = load_harness("session")
    from rtproto.session import sequencer

    monkeypatch.setattr(sequencer.ResponseSequencer, "busy", property(lambda self: False))
    with pytest.raises(AssertionError, match=r"two response\.create in flight"):
        harness.check_one(_TWO_CREATES)


def test_webrtc_timeout_connects_anyway() -> None:
    harness = Harness(profile=Profile.WEBRTC, session_update_timeout=2.0)
    harness.session.connection_made(0.0)
    harness.sent()
    harness.events()
    harness.session.handle_timer(2.0)
    assert names(harness.events()) == ["warning", "connection_change"]
    assert harness.session.state is SessionState.CONNECTED


def test_disconnect_grace_period_recovers_or_ends_the_session() -> None:
    harness = Harness(profile=Profile.WEBRTC, session_update_timeout=2.0, disconnect_grace=5.0)
    session = harness.session
    session.connection_degraded(0.0)  # not connected yet: nothing to end
    assert session.get_timer() is None
    session.connection_made(10.0)
    assert session.get_timer() == 12.0  # the wait for session.updated
    session.connection_degraded(11.0)
    session.connection_degraded(13.0)  # already running: the first deadline stands
    assert session.get_timer() == 12.0
    session.handle_timer(12.0)  # connected without the acknowledgement
    assert session.state is SessionState.CONNECTED
    assert session.get_timer() == 16.0
    session.connection_recovered(15.0)  # back within the grace period
    assert session.get_timer() is None
    session.handle_timer(16.0)
    assert session.state is SessionState.CONNECTED
    harness.events()
    harness.sent()
    session.connection_degraded(20.0)
    session.handle_timer(24.999)
    assert session.state is SessionState.CONNECTED
    session.handle_timer(25.0)
    assert session.state is SessionState.CLOSED
    [change] = derived(harness.events())
    assert isinstance(change, ConnectionChange)
    assert change.status is ConnectionStatus.DISCONNECTED
    assert change.reason == "the transport did not recover within 5.0 s"
    assert session.get_timer() is None
    with pytest.raises(rtproto.ConnectionClosed):
        session.send_message("still there?")


def test_session_options_are_checked_and_enum_strings_accepted() -> None:
    options = SessionOptions(profile="webrtc", dialect="beta")  # type: ignore[arg-type]
    assert options.profile is Profile.WEBRTC and options.dialect is Dialect.BETA
    session = ClientSession(options)
    session.connection_made(0.0)
    assert session.state is SessionState.CONNECTING  # the WebRTC wait, not websocket's
    with pytest.raises(rtproto.LocalProtocolError, match="'websocket', 'webrtc'"):
        SessionOptions(profile="tcp")  # type: ignore[arg-type]
    with pytest.raises(rtproto.LocalProtocolError, match="dialect"):
        SessionOptions(dialect="v2")  # type: ignore[arg-type]
    for bad in (-1.0, float("nan"), float("inf"), True, "5"):
        with pytest.raises(rtproto.LocalProtocolError, match="disconnect_grace"):
            SessionOptions(disconnect_grace=bad)  # type: ignore[arg-type]
        with pytest.raises(rtproto.LocalProtocolError, match="session_update_timeout"):
            SessionOptions(session_update_timeout=bad)  # type: ignore[arg-type]
    for field_name in ("max_pending_events", "max_message_size", "max_outgoing_message_size"):
        for bad in (0, -5, 1.5, True):
            with pytest.raises(rtproto.LocalProtocolError, match=f"Limits.{field_name}"):
                Limits(**{field_name: bad})


def test_webrtc_interrupt_clears_the_output_buffer() -> None:
    harness = Harness(profile=Profile.WEBRTC)
    harness.session.connection_made(0.0)
    harness.feed(harness.server.session_updated())
    harness.sent()
    harness.feed(harness.server.response_created("resp_1"))
    harness.session.interrupt(1.0)
    assert [m["type"] for m in harness.sent()] == ["response.cancel", "output_audio_buffer.clear"]
    # the server handles VAD interruption itself on WebRTC
    harness.feed(
        harness.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u")
    )
    assert harness.sent() == []


def test_webrtc_message_limit() -> None:
    harness = Harness(profile=Profile.WEBRTC)
    harness.session.connection_made(0.0)
    harness.feed(harness.server.session_updated())
    with pytest.raises(rtproto.LocalProtocolError) as info:
        harness.session.send_message("x" * 70_000)
    assert "65536" in str(info.value)
    # the limit is in bytes: 30,000 three-byte characters are 90,000 bytes of UTF-8
    with pytest.raises(rtproto.LocalProtocolError, match=r"is 90\d\d\d bytes") as info:
        harness.session.send_message("中" * 30_000)
    harness.session.send_message("中" * 21_000)  # 63,000 bytes and the envelope
    assert len(harness.session.messages_to_send()[0].encode()) <= 65536


def test_the_incoming_limit_counts_bytes_of_a_str_too() -> None:
    """A str of at most a quarter of the limit is decoded inline (it fits, whatever it
    holds); a longer one is measured in UTF-8 bytes: over the limit, it is dropped."""
    h = Harness(limits=Limits(max_message_size=400, max_outgoing_message_size=4096))
    h.connect()
    small = '{"type":"x","s":"' + "é" * 40 + '"}'  # 59 characters, 99 bytes
    assert isinstance(h.feed(small)[0], rtproto.UnknownEvent)
    fits = '{"type":"x","s":"' + "é" * 150 + '"}'  # 169 characters, 319 bytes
    assert isinstance(h.feed(fits)[0], rtproto.UnknownEvent)
    over = '{"type":"x","s":"' + "é" * 200 + '"}'  # 218 characters, 419 bytes
    (warning,) = h.feed(over)
    assert isinstance(warning, ProtocolWarning) and "419 bytes exceeds" in warning.message
    assert "419 bytes exceeds" in h.feed(over.encode())[0].message


def test_webrtc_and_sip_never_truncate_the_servers_audio() -> None:
    """The server plays the audio there, so it knows what was heard and truncates itself
    (service-observations.md 2): an interruption cancels and clears its output buffer,
    even if audio events came on the channel."""
    for profile in (Profile.WEBRTC, Profile.SIP):
        harness = Harness(profile=profile)
        harness.session.connection_made(0.0)
        harness.feed(harness.server.session_updated())
        harness.sent()
        play(harness, "resp_1", "item_A1", [400], now=0.0, done=False)
        harness.session.interrupt(0.1)
        assert [m["type"] for m in harness.sent()] == [
            "response.cancel",
            "output_audio_buffer.clear",
        ]
        (interrupted,) = [e for e in harness.events() if isinstance(e, AudioInterrupted)]
        assert interrupted.truncated == ()


def test_a_message_exactly_at_the_limit_goes() -> None:
    harness = Harness(limits=Limits(max_outgoing_message_size=500))
    harness.connect()
    harness.session.send_event({"type": "x", "pad": "p" * (500 - len('{"type":"x","pad":""}'))})
    assert len(harness.session.messages_to_send()[0]) == 500
    with pytest.raises(rtproto.LocalProtocolError, match="at most 500"):
        harness.session.send_event({"type": "x", "pad": "p" * 480})


def test_webrtc_session_created_is_not_yet_connected() -> None:
    harness = Harness(profile=Profile.WEBRTC)
    harness.session.connection_made(0.0)
    harness.feed(harness.server.session_created())
    assert harness.session.state is SessionState.CONNECTING  # session.updated connects


def test_the_documented_limits() -> None:
    """docs/session.md promises these defaults."""
    assert Limits() == Limits(
        max_message_size=16 * 1024 * 1024,
        max_outgoing_message_size=None,
        max_pending_events=10_000,
        max_pending_messages=10_000,
        max_history_items=4096,
        max_tracked_items=64,
    )
    Limits(max_pending_events=1, max_tracked_items=1)  # the smallest bounds are allowed
    for frozen in (Limits(), SessionOptions()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            frozen.model = "x"
    with pytest.raises(rtproto.LocalProtocolError, match="max_history_items"):
        Limits(max_history_items=0)


def test_send_audio_appends_without_committing(h: Harness) -> None:
    h.session.send_audio(b"\x01\x00")
    assert h.sent() == [{"type": "input_audio_buffer.append", "audio": "AQA="}]


def test_audio_exactly_at_the_services_append_limit_goes() -> None:
    """15 MiB is 20 MiB of base64, more than the default 16 MiB incoming limit: the default
    outgoing limit makes room for it (realtime-protocol.md 7), so the service's own limit is
    the bound."""
    from rtproto.session.core import MAX_APPEND_AUDIO_BYTES

    assert MAX_APPEND_AUDIO_BYTES == 15 * 1024 * 1024
    harness = Harness()
    harness.connect()
    harness.session.send_audio(bytes(MAX_APPEND_AUDIO_BYTES))
    assert len(harness.sent()) == 1
    with pytest.raises(rtproto.LocalProtocolError, match="15 MiB"):
        harness.session.send_audio(bytes(MAX_APPEND_AUDIO_BYTES + 1))


PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)


def test_add_image_sends_a_user_message_with_one_image(h: Harness) -> None:
    h.session.add_image("https://example.com/cat.png", detail="low", trigger_response=False)
    h.session.add_image(PNG)
    assert h.sent() == [
        {
            "type": "conversation.item.create",
            "event_id": "rtproto_item_create_2",
            "item": {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.png",
                        "detail": "low",
                    }
                ],
            },
        },
        {
            "type": "conversation.item.create",
            "event_id": "rtproto_item_create_3",
            "item": {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgoAAAAAAAAAAA==",
                    }
                ],
            },
        },
        {"type": "response.create", "event_id": "rtproto_response_create_4"},
    ]


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"\xff\xd8\xff\xe0" + bytes(4), "image/jpeg"),
        (b"GIF89a" + bytes(4), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (bytearray(PNG), "image/png"),
        (memoryview(PNG), "image/png"),
    ],
)
def test_add_image_names_the_format_of_the_bytes(h: Harness, data: Any, mime: str) -> None:
    h.session.add_image(data, trigger_response=False)
    (create,) = h.sent()
    assert create["item"]["content"][0]["image_url"].startswith(f"data:{mime};base64,")


def test_add_image_refuses_what_it_cannot_name(h: Harness) -> None:
    with pytest.raises(rtproto.LocalProtocolError, match="not PNG, JPEG, GIF or WebP"):
        h.session.add_image(b"BM" + bytes(30))  # a BMP
    with pytest.raises(rtproto.LocalProtocolError, match="not PNG, JPEG, GIF or WebP"):
        h.session.add_image(b"RIFF\x24\x00\x00\x00WAVEfmt ")  # RIFF, but a WAV file
    with pytest.raises(rtproto.LocalProtocolError, match="no id"):
        h.session.send_mcp_response("", True)
    with pytest.raises(rtproto.LocalProtocolError, match="detail must be one of"):
        h.session.add_image(PNG, detail="medium")
    webrtc = Harness(profile=Profile.WEBRTC)
    webrtc.session.connection_made(0.0)
    webrtc.feed(webrtc.server.session_updated())
    webrtc.sent()
    with pytest.raises(rtproto.LocalProtocolError, match="65536"):
        webrtc.session.add_image(PNG + bytes(60_000))  # over the data channel's 64 KiB
    assert h.sent() == [] and webrtc.sent() == []


def test_a_whole_message_item_and_bad_response_options(h: Harness) -> None:
    item = M.MessageItem(
        id="m1", role="system", content=[M.ContentPart(type="input_text", text="Be brief.")]
    )
    h.session.send_message(item, trigger_response=False)
    assert h.sent() == [
        {
            "type": "conversation.item.create",
            "event_id": "rtproto_item_create_2",
            "item": {
                "id": "m1",
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "Be brief."}],
            },
        }
    ]
    for options, why in (
        ({"instructions": 5}, "Expected `str`"),
        ({"instrucions": "x"}, "instrucions is not a response.create field"),  # a typo
        ({"audio": {"output": {"voise": "x"}}}, "audio.output.voise is not"),
    ):
        with pytest.raises(rtproto.LocalProtocolError, match="invalid response options") as info:
            h.session.create_response(options)
        assert why in info.value.message and info.value.event_type == "response.create"
    assert h.sent() == []


def test_a_message_can_be_placed_after_an_item(h: Harness) -> None:
    """As the JS transport's sendMessage(message, {previous_item_id}) spreads it into the
    event; ``"root"`` puts the message first."""
    h.session.send_message("first", trigger_response=False, previous_item_id="root")
    h.session.send_message("after", trigger_response=False, previous_item_id="item_U1")
    sent = h.sent()
    assert [m["previous_item_id"] for m in sent] == ["root", "item_U1"]
    assert [m["item"]["content"][0]["text"] for m in sent] == ["first", "after"]
    with pytest.raises(rtproto.LocalProtocolError, match="previous_item_id must be"):
        h.session.send_message("x", previous_item_id="")
    # (the compiled build refuses a non-str at the call, with TypeError: docs/session.md)
    with pytest.raises((rtproto.LocalProtocolError, TypeError)):
        h.session.send_message("x", previous_item_id=5)  # type: ignore[arg-type]
    assert h.sent() == []


def test_sip_leaves_the_audio_formats_to_the_call() -> None:
    """A SIP call's audio is the phone line's (G.711): the initial session.update carries
    no PCM defaults for it, only formats the application gives."""
    (update,) = Harness(profile=Profile.SIP).connect()
    audio = update["session"]["audio"]
    assert "format" not in audio["input"] and "format" not in audio["output"]
    assert audio["input"]["turn_detection"] == {"type": "semantic_vad"}
    config = {"audio": {"output": {"format": {"type": "audio/pcmu"}}}}
    (update,) = Harness(profile=Profile.SIP, session=config).connect()
    assert update["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert "format" not in update["session"]["audio"]["input"]
    (update,) = Harness().connect()  # other profiles keep the JS SDK's PCM defaults
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}


def test_sip_refuses_audio() -> None:
    harness = Harness(profile=Profile.SIP)
    harness.connect()
    with pytest.raises(rtproto.LocalProtocolError, match="send it through the call") as info:
        harness.session.send_audio(b"\x00\x00")
    assert info.value.event_type == "input_audio_buffer.append"


def test_send_audio_and_commit(h: Harness) -> None:
    import numpy as np

    h.session.send_audio(np.array([0, 1, -1], dtype=np.int16), commit=True)
    h.session.clear_audio()
    assert h.sent() == [
        {"type": "input_audio_buffer.append", "audio": "AAABAP//"},
        {"type": "input_audio_buffer.commit", "event_id": "rtproto_input_audio_buffer_commit_2"},
        {"type": "input_audio_buffer.clear", "event_id": "rtproto_input_audio_buffer_clear_3"},
    ]
    with pytest.raises(rtproto.LocalProtocolError):
        h.session.send_audio(memoryview(bytearray(16 * 1024 * 1024)))


def test_buffers_are_bounded() -> None:
    harness = Harness(limits=Limits(max_pending_events=3, max_pending_messages=2))
    harness.session.connection_made(0.0)  # 2 events, 1 message
    harness.session.commit_audio()
    with pytest.raises(rtproto.LocalProtocolError) as info:
        harness.session.commit_audio()
    assert "messages_to_send" in str(info.value)
    harness.session.receive(harness.server.session_created(), 0.0)  # the third event
    with pytest.raises(rtproto.LocalProtocolError) as info:
        harness.session.receive(harness.server.session_created(), 0.0)
    assert "next_event" in str(info.value)


def test_take_events_drains_what_next_event_would_yield_in_the_same_order() -> None:
    def run(drain: str) -> list[Any]:
        harness = Harness()
        harness.session.connection_made(0.0)
        out: list[Any] = []
        s = harness.server
        turn = [s.session_created(), s.response_created("resp_1")]
        turn += s.assistant_audio("resp_1", "item_A1", None, [100, 100])
        turn.append(s.response_done("resp_1"))
        for index, text in enumerate(turn):
            harness.session.receive(text, 0.1 * index)
            if drain == "take" or index % 3 == 2:  # take everything / a batch at a time
                out += harness.session.take_events()
            else:
                event = harness.session.next_event()  # one, leaving the rest waiting
                if event is not None:
                    out.append(event)
        out += harness.session.take_events()
        assert harness.session.take_events() == []
        assert harness.session.next_event() is None
        return out

    taken, mixed = run("take"), run("mixed")
    assert [type(e) for e in taken] == [type(e) for e in mixed]
    assert taken == mixed
    assert "audio" in [getattr(e, "name", None) for e in taken]


def test_receive_needs_an_open_connection() -> None:
    harness = Harness()
    with pytest.raises(rtproto.LocalProtocolError, match="open connection"):
        harness.session.receive(harness.server.session_created(), 0.0)
    harness.session.connection_made(0.0)
    harness.session.connection_lost("bye", 1.0)
    with pytest.raises(rtproto.LocalProtocolError, match="open connection"):
        harness.session.receive(harness.server.session_created(), 1.0)
    assert [e.name for e in derived(harness.events())][-1] == "connection_change"


def test_a_closed_session_with_a_full_list_says_it_is_closed() -> None:
    harness = Harness(limits=Limits(max_pending_events=3))
    harness.session.connection_made(0.0)  # 2 events
    harness.session.connection_lost("bye", 1.0)  # the third
    with pytest.raises(rtproto.LocalProtocolError, match="open connection"):
        harness.session.receive(harness.server.session_created(), 1.0)


def test_the_event_bound_counts_what_is_still_waiting() -> None:
    harness = Harness(limits=Limits(max_pending_events=4))
    harness.session.connection_made(0.0)  # 2 events
    created = harness.server.session_created()
    harness.session.receive(created, 0.0)
    harness.session.receive(created, 0.0)
    with pytest.raises(rtproto.LocalProtocolError, match="4 events are waiting"):
        harness.session.receive(created, 0.0)
    assert harness.session.next_event() is not None  # one drained: room for one more
    harness.session.receive(created, 0.0)
    with pytest.raises(rtproto.LocalProtocolError):
        harness.session.receive(created, 0.0)
    assert len(harness.session.take_events()) == 4
    harness.session.receive(created, 0.0)


def test_the_event_bound_holds_when_one_message_adds_several_events() -> None:
    """An audio delta adds two events (the delta and its chunk), so the list can pass the
    bound by one; receive() then refuses until fewer than the bound are really waiting."""
    harness = Harness(limits=Limits(max_pending_events=4))
    harness.connect()
    harness.session.receive(harness.server.response_created("resp_1"), 0.0)  # 2 events
    harness.session.receive(audio_delta(harness, "item_A1", 480), 0.0)  # 4
    assert harness.session.next_event() is not None  # 3 waiting: room for one more message
    harness.session.receive(audio_delta(harness, "item_A1", 480), 0.0)  # 5
    assert harness.session.next_event() is not None  # 4 waiting: full
    with pytest.raises(rtproto.LocalProtocolError, match="4 events are waiting"):
        harness.session.receive(audio_delta(harness, "item_A1", 480), 0.0)
    assert len(harness.session.take_events()) == 4


def test_draining_one_event_at_a_time_keeps_order_and_stays_bounded() -> None:
    harness = Harness(limits=Limits(max_pending_events=8))
    session = harness.session
    session.connection_made(0.0)
    session.take_events()
    created = harness.server.session_created()
    seen = []
    refused = False
    for _ in range(200):  # two in, one out: the list fills, compacts, and finally refuses
        try:
            session.receive(created, 0.0)
            session.receive(created, 0.0)
        except rtproto.LocalProtocolError:
            refused = True
            break
        seen.append(session.next_event())
        assert len(session._events) <= 8
    assert refused
    assert len(session.take_events()) == 8  # refused only with 8 really waiting
    assert len(seen) >= 7
    assert all(type(e).__name__ == "SessionCreated" for e in seen)


def test_invalid_config_is_refused_up_front() -> None:
    with pytest.raises(rtproto.LocalProtocolError):
        ClientSession(SessionOptions(session={"audio": {"output": {"speed": 9}}}))


# --- history --------------------------------------------------------------------------------------


def test_missing_previous_item_is_retrieved_once(h: Harness) -> None:
    s = h.server
    item = {"id": "item_2", "type": "message", "role": "user", "content": []}
    h.feed(s.event("conversation.item.added", previous_item_id="item_1", item=item))
    h.feed(s.event("conversation.item.done", previous_item_id="item_1", item=item))
    assert h.sent() == [
        {
            "type": "conversation.item.retrieve",
            "event_id": "rtproto_item_retrieve_2",
            "item_id": "item_1",
        }
    ]
    first = {
        "id": "item_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "audio": "AAAA", "transcript": "hi"}],
    }
    events = h.feed(s.event("conversation.item.retrieved", item=first))
    assert [i.id for i in h.session.history] == ["item_1", "item_2"]
    (update,) = [e for e in events if isinstance(e, ItemUpdate)]
    assert isinstance(update.item, M.MessageItem)
    assert update.item.content[0].audio is msgspec_unset()  # audio bytes are not kept


def msgspec_unset() -> Any:
    import msgspec

    return msgspec.UNSET


def test_transcripts_attach_and_survive_truncation(h: Harness) -> None:
    s = h.server
    h.feed(s.user_turn("item_U0"))
    h.feed(s.user_turn("item_U1", previous="item_U0"))
    events = h.feed(
        s.event(
            "conversation.item.input_audio_transcription.completed",
            item_id="item_U1",
            content_index=0,
            transcript="Hello.",
        )
    )
    assert [e.name for e in derived(events)] == ["item_update", "history_updated"]
    assert derived(events)[0].previous_item_id == "item_U0"  # where the item still is
    user = h.session.history[1]
    assert isinstance(user, M.MessageItem) and user.content[0].transcript == "Hello."
    # a retrieved item without the transcript (after a truncate) keeps the known one
    bare = {
        "id": "item_U1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio"}],
    }
    events = h.feed(s.event("conversation.item.retrieved", item=bare))
    assert derived(events)[0].previous_item_id == "item_U0"
    user = h.session.history[1]
    assert isinstance(user, M.MessageItem) and user.content[0].transcript == "Hello."
    # a transcript for a known item's missing part is reported, not fatal
    events = h.feed(
        s.event(
            "conversation.item.input_audio_transcription.completed",
            item_id="item_U1",
            content_index=3,
            transcript="?",
        )
    )
    assert [e.name for e in derived(events)] == ["warning"]
    assert h.sent() == []


def test_a_transcript_for_an_unknown_item_reads_the_item_back(h: Harness) -> None:
    """An item this client never saw (a sideband session attached mid-call, or one history
    forgot): it is retrieved, as the JS transport always does, and the transcript is
    attached when it comes back (the service never patches input transcripts into items)."""
    s = h.server
    completed = s.event(
        "conversation.item.input_audio_transcription.completed",
        item_id="item_U7",
        content_index=0,
        transcript="Hi.",
    )
    assert derived(h.feed(completed)) == []
    assert h.sent() == [
        {
            "type": "conversation.item.retrieve",
            "item_id": "item_U7",
            "event_id": "rtproto_item_retrieve_2",
        }
    ]
    bare = {
        "id": "item_U7",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio"}],
    }
    h.feed(s.event("conversation.item.retrieved", item=bare))
    (item,) = h.session.history
    assert isinstance(item, M.MessageItem) and item.content[0].transcript == "Hi."
    h.feed(s.event("conversation.item.retrieved", item=bare))  # (attached once only)
    assert h.session.history[0] == item
    # transcripts waiting for their item are bounded (64): the oldest is forgotten
    for n in range(65):
        h.feed(completed.replace("item_U7", f"item_W{n}").replace("Hi.", f"T{n}"))
    assert len(h.sent()) == 65
    for n in (0, 64):
        h.feed(s.event("conversation.item.retrieved", item={**bare, "id": f"item_W{n}"}))
    by_id = {i.id: i for i in h.session.history if isinstance(i, M.MessageItem)}
    assert by_id["item_W0"].content[0].transcript is msgspec.UNSET
    assert by_id["item_W64"].content[0].transcript == "T64"


def test_deleted_items(h: Harness) -> None:
    s = h.server
    h.feed(s.user_turn("item_U1"))
    events = h.feed(s.event("conversation.item.deleted", item_id="item_U1"))
    assert derived(events) == [ItemDeleted(item_id="item_U1"), HistoryUpdated(history=())]
    events = h.feed(s.event("conversation.item.deleted", item_id="item_U1"))
    assert derived(events) == [ItemDeleted(item_id="item_U1")]


def test_reset_history_deletes_then_creates(h: Harness) -> None:
    s = h.server
    h.feed(s.user_turn("item_U1"))
    h.feed(s.user_turn("item_U2", "item_U1"))
    system = M.MessageItem(
        id="item_S",
        role="system",
        status="completed",
        content=[M.ContentPart(type="input_text", text="Be kind.")],
    )
    kept = h.session.history[0]
    h.session.reset_history([kept, system])
    assert h.sent() == [
        {"type": "conversation.item.delete", "item_id": "item_U2"},
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "id": "item_S",
                "role": "system",
                "content": [{"type": "input_text", "text": "Be kind."}],
            },
        },
    ]
    with pytest.raises(rtproto.LocalProtocolError):
        h.session.reset_history(
            [M.MessageItem(id="a", role="assistant", content=[M.ContentPart(type="output_audio")])]
        )
    h.session.reset_history([kept, M.FunctionCallItem(id="f", name="x", arguments="{}")])
    assert [m["type"] for m in h.sent()] == ["conversation.item.delete"]
    assert names(h.events()) == ["warning"]


def test_an_item_first_seen_done_is_placed_like_an_added_one(h: Harness) -> None:
    """After its previous item, when known; else last, with the unknown one read back."""

    def done(item_id: str, previous: str) -> str:
        content = [{"type": "input_text", "text": "hi"}]
        item = {"id": item_id, "type": "message", "role": "user", "content": content}
        return h.server.event("conversation.item.done", previous_item_id=previous, item=item)

    h.feed(h.server.user_turn("item_A"))
    h.feed(h.server.user_turn("item_B", previous="item_A"))
    h.feed(done("item_X", "item_A"))
    assert [i.id for i in h.session.history] == ["item_A", "item_X", "item_B"]
    assert h.sent() == []
    h.feed(done("item_Y", "item_unknown"))
    assert [i.id for i in h.session.history][-1] == "item_Y"
    assert h.sent() == [
        {
            "type": "conversation.item.retrieve",
            "event_id": "rtproto_item_retrieve_2",
            "item_id": "item_unknown",
        }
    ]


# --- tolerance and dialects ----------------------------------------------------------------------


def test_unknown_and_malformed_events(h: Harness) -> None:
    events = h.feed(
        ['{"type":"brand.new","x":1}', '{"type":"response.output_text.delta","delta":1}']
    )
    assert isinstance(events[0], rtproto.UnknownEvent)
    assert isinstance(events[1], rtproto.InvalidEvent)
    assert isinstance(events[2], ProtocolWarning) and "delta" in events[2].message
    assert len(events) == 3


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ('{"event_id": "e"}', 'needs a string "type"'),
        ('{"type": 5}', 'needs a string "type"'),
        (bytearray(b'{"type":"x"'), "not valid JSON"),
        ('{"type": "x", "pad": "' + "x" * 100 + '"}', "exceeds the limit of 64"),
    ],
)
def test_a_message_that_is_not_an_event_is_dropped_with_a_warning(
    message: str | bytes, why: str
) -> None:
    """As the JS transport drops it (transport-behaviour.md 2.1): messages are framed one by
    one, so the session carries on, and the next one is handled."""
    h = Harness(limits=Limits(max_message_size=64, max_outgoing_message_size=4096))
    h.connect()
    (warning,) = h.feed(message)
    assert isinstance(warning, ProtocolWarning) and why in warning.message
    assert warning.message.startswith("dropped a message: ")
    assert isinstance(h.feed('{"type":"brand.new"}')[0], rtproto.UnknownEvent)


def test_a_malformed_response_done_still_ends_its_response(h: Harness) -> None:
    """A mistyped detail (a null count) used to leave the response running for ever: every
    later response.create waited behind it."""
    h.feed(h.server.response_created("resp_1"))
    h.session.send_message("next")
    h.sent()
    done = json.loads(h.server.response_done("resp_1"))
    done["response"]["usage"]["output_token_details"] = None
    events = h.feed(json.dumps(done))
    warning, raw, *derived_events = events
    assert isinstance(warning, ProtocolWarning)
    assert warning.message.startswith("malformed response.done, handled without")
    assert isinstance(warning.event, rtproto.InvalidEvent)
    assert isinstance(raw, rtproto.events.ResponseDone) and rtproto.event_raw(raw) == done
    assert names(derived_events) == ["usage_update", "turn_done"]
    assert [m["type"] for m in h.sent()] == ["response.create"]
    # the same, handed over already parsed, and in the beta dialect
    beta = Harness(dialect=Dialect.BETA)
    beta.connect()
    beta.feed(json.dumps(to_beta(json.loads(beta.server.response_created("resp_1")))))
    assert beta.session.response_active
    beta.session.receive(
        rtproto.parse_server_event(json.dumps(to_beta(done)), dialect=Dialect.BETA), 0.0
    )
    assert names(beta.events()) == ["warning", "usage_update", "turn_done"]
    assert not beta.session.response_active


def test_parsed_events_can_be_fed_directly(h: Harness) -> None:
    event = rtproto.parse_server_event(h.server.response_created("resp_1"))
    h.session.receive(event, 0.0)
    assert isinstance(h.events()[1], TurnStarted)


def test_session_expiry(h: Harness) -> None:
    s = h.server
    events = h.feed(
        s.event(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "session_expired",
                "message": "Your session hit the maximum duration of 60 minutes.",
                "param": None,
                "event_id": None,
            },
        )
    )
    (error,) = [e for e in events if isinstance(e, ServerError)]
    assert error.client_event_type is None
    h.session.connection_lost("1001 Your session hit the maximum duration of 60 minutes.")
    (change,) = h.events()
    assert change.status is ConnectionStatus.DISCONNECTED and "60 minutes" in (change.reason or "")
    with pytest.raises(rtproto.ConnectionClosed):
        h.session.send_message("still there?")


def full_trace(server: Server) -> list[str]:
    return [
        server.session_created(),
        *server.user_turn("item_U1"),
        server.response_created("resp_1"),
        *server.assistant_audio("resp_1", "item_A1", "item_U1", [100, 100]),
        *server.function_call("resp_1", "item_F1", "call_1", "item_A1", index=1),
        server.response_done("resp_1"),
        server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U2"),
    ]


def as_beta_service(trace: list[str]) -> list[str]:
    """A GA trace as the beta service sends it: beta shapes and names, items announced by
    ``conversation.item.created`` only (it sends no ``conversation.item.done``)."""
    out = []
    for text in trace:
        event = to_beta(json.loads(text))
        if event["type"] == "conversation.item.done":
            continue
        if event["type"] == "conversation.item.added":
            event["type"] = "conversation.item.created"
        out.append(json.dumps(event))
    return out


def test_both_dialects_give_the_same_transport_events() -> None:
    """The same turns give the same events, the same history and the same messages sent.
    Only item updates differ in number: GA announces an item when added and when done, the
    beta service when created and when its output item is done (the last word on every
    item is the same)."""
    results = []
    for dialect in Dialect:
        harness = Harness(dialect=dialect)
        harness.connect()
        trace = full_trace(Server())
        if dialect is Dialect.BETA:
            trace = as_beta_service(trace)
        events = derived(harness.feed(trace, now=1.0))
        updates = [e for e in events if isinstance(e, (ItemUpdate, HistoryUpdated))]
        last_words = {e.item.id: e for e in updates if isinstance(e, ItemUpdate)}
        others = [e for e in events if e not in updates]
        results.append((others, last_words, harness.session.history, harness.sent()))
    assert results[0] == results[1]
    assert len(results[0][0]) >= 10 and len(results[0][1]) == 3
    history = results[1][2]
    assert [(i.id, i.status) for i in history] == [
        ("item_U1", "completed"),
        ("item_A1", "completed"),
        ("item_F1", "completed"),
    ]
    assistant = history[1]
    assert isinstance(assistant, M.MessageItem) and assistant.content[0].transcript


def test_deleted_items_are_not_truncated(h: Harness) -> None:
    s = h.server
    h.feed(
        [s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [500])], 0.0
    )
    h.feed(s.response_done("resp_1"), 0.0)
    h.feed(s.event("conversation.item.deleted", item_id="item_A1"), 0.1)
    h.session.interrupt(0.2)  # the item is gone: no truncate for it
    assert h.sent() == []


def test_an_item_without_an_id_is_reported_not_kept(h: Harness) -> None:
    """History keeps items by id: one without an id is passed on (item_update) but not kept,
    and the item it names as previous is not read back for it."""
    s = h.server
    for previous in ("item_unknown", None):
        item = {"type": "message", "role": "user", "content": []}
        events = h.feed(s.event("conversation.item.added", previous_item_id=previous, item=item))
        assert [e.previous_item_id for e in events if isinstance(e, ItemUpdate)] == [previous]
    item = {"type": "message", "role": "user", "content": []}
    assert derived(h.feed(s.event("conversation.item.retrieved", item=item))) == []
    assert h.session.history == ()
    assert h.sent() == []


def test_an_item_created_again_with_itself_as_previous_goes_last(h: Harness) -> None:
    """The service accepts a duplicate client item id and names the item its own previous
    (realtime-protocol.md, conversation.item.create); this used to raise ValueError."""
    s = h.server
    for item_id, previous in (("item_1", None), ("item_2", "item_1")):
        item = {"id": item_id, "type": "message", "role": "user", "content": []}
        h.feed(s.event("conversation.item.added", previous_item_id=previous, item=item))
    assert [i.id for i in h.session.history] == ["item_1", "item_2"]
    again = {"id": "item_1", "type": "message", "role": "user", "content": []}
    events = h.feed(s.event("conversation.item.added", previous_item_id="item_1", item=again))
    assert names(events) == ["item_update", "history_updated"]
    assert [i.id for i in h.session.history] == ["item_2", "item_1"]
    assert h.sent() == []  # nothing to retrieve


def test_history_is_bounded_and_ignores_items_without_ids() -> None:
    harness = Harness(limits=Limits(max_history_items=2))
    harness.connect()
    s = harness.server
    for number in range(3):
        previous = f"item_{number - 1}" if number else None
        item = {"id": f"item_{number}", "type": "message", "role": "user", "content": []}
        harness.feed(s.event("conversation.item.added", previous_item_id=previous, item=item))
    assert [i.id for i in harness.session.history] == ["item_1", "item_2"]  # oldest forgotten
    no_id = {"type": "message", "role": "user", "content": []}
    harness.feed(s.event("conversation.item.added", previous_item_id=None, item=no_id))
    assert len(harness.session.history) == 2


def test_retrieved_assistant_item_keeps_its_transcript(h: Harness) -> None:
    s = h.server
    h.feed([s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [100])])
    bare = {
        "id": "item_A1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": None}],
    }
    h.feed(s.event("conversation.item.retrieved", item=bare))
    (item,) = h.session.history
    assert isinstance(item, M.MessageItem) and item.content[0].transcript == "Hello there."


def test_an_assistant_audio_part_is_kept_as_output_audio(h: Harness) -> None:
    """An assistant's content of the older type ``audio`` is renamed ``output_audio`` in
    history, as the JS transport does; so reset_history refuses to recreate it, with
    nothing sent, rather than deleting an item it cannot put back."""
    s = h.server
    content = [{"type": "audio", "audio": "AAAA", "transcript": "hi"}]
    spoken = [{"type": "audio", "transcript": "hi"}]  # (no audio bytes to strip)
    item = {"id": "item_A1", "type": "message", "role": "assistant", "content": spoken}
    h.feed(s.event("conversation.item.retrieved", item=item))
    (kept,) = h.session.history
    assert isinstance(kept, M.MessageItem)
    assert kept.content == [M.ContentPart(type="output_audio", transcript="hi")]
    user = {"id": "item_U1", "type": "message", "role": "user", "content": content}
    h.feed(s.event("conversation.item.retrieved", item=user))  # a user's stays as it is
    assert h.session.history[1].content == [M.ContentPart(type="audio", transcript="hi")]
    h.sent()
    changed = msgspec.structs.replace(kept, content=[M.ContentPart(type="output_audio")])
    with pytest.raises(rtproto.LocalProtocolError, match="output_audio cannot be recreated"):
        h.session.reset_history([changed, h.session.history[1]])
    assert h.sent() == []


def test_truncated_item_is_read_back_and_keeps_its_transcript(h: Harness) -> None:
    s = h.server
    h.feed([s.response_created("resp_1"), *s.assistant_audio("resp_1", "item_A1", None, [1000])])
    h.session.interrupt(0.25)
    assert [m["type"] for m in h.sent()] == ["response.cancel", "conversation.item.truncate"]
    h.feed(
        s.event("conversation.item.truncated", item_id="item_A1", content_index=0, audio_end_ms=250)
    )
    assert h.sent() == [
        {
            "type": "conversation.item.retrieve",
            "event_id": "rtproto_item_retrieve_4",
            "item_id": "item_A1",
        }
    ]
    cut = {
        "id": "item_A1",
        "type": "message",
        "role": "assistant",
        "status": "incomplete",
        "content": [{"type": "output_audio", "transcript": None}],
    }
    events = h.feed(s.event("conversation.item.retrieved", item=cut))
    assert names(events) == ["item_update", "history_updated"]
    (item,) = h.session.history
    assert isinstance(item, M.MessageItem) and item.status == "incomplete"
    assert item.content[0].transcript == "Hello there."
    h.feed(  # a second truncated event while nothing is pending asks again, once
        s.event("conversation.item.truncated", item_id="item_A1", content_index=0, audio_end_ms=250)
    )
    assert len(h.sent()) == 1


def test_events_of_an_unknown_response_are_reported_once_and_still_handled(h: Harness) -> None:
    s = h.server
    # attached mid-response (or a server bug): no response.created for resp_X
    events = h.feed(s.assistant_audio("resp_X", "item_X1", None, [100, 100]))
    warnings = [e for e in events if isinstance(e, ProtocolWarning)]
    assert [w.message for w in warnings] == [
        "response.output_item.added for unknown response 'resp_X'"
    ]
    assert warnings[0].event.type == "response.output_item.added"
    assert len([e for e in events if isinstance(e, AudioChunk)]) == 2  # still played
    events = h.feed(s.response_done("resp_X"))
    assert names(events) == ["usage_update", "turn_done"]  # reported already
    # the first audio of an item names its response too, when no output item was announced
    events = h.feed(
        s.event(
            "response.output_audio.delta",
            response_id="resp_Y",
            item_id="item_Y1",
            output_index=0,
            content_index=0,
            delta="AAAA",
        )
    )
    assert names(events) == ["warning", "audio"]
    assert "'resp_Y'" in events[1].message
    # a response seen created is not reported
    events = h.feed([s.response_created("resp_1"), *s.assistant_audio("resp_1", "i", None, [100])])
    assert "warning" not in names(events)
    # nor is its end; the end of one never seen is, by itself too
    assert names(h.feed(s.response_done("resp_1"))) == ["usage_update", "turn_done"]
    events = h.feed(s.response_done("resp_Z"))
    assert names(events) == ["warning", "usage_update", "turn_done"]
    assert "response.done for unknown response 'resp_Z'" in events[1].message


def test_every_output_event_of_an_unknown_response_can_report_it(h: Harness) -> None:
    """Each kind that names a response checks it (the first one seen reports it)."""
    s = h.server
    ctx = {"response_id": "resp_Q", "item_id": "item_Q", "output_index": 0}
    part = {"response_id": "resp_Q", "item_id": "item_Q", "output_index": 0, "content_index": 0}
    for n, event in enumerate(
        [
            s.event("response.output_text.delta", **part, delta="x"),
            s.event("response.output_text.done", **part, text="x"),
            s.event("response.output_audio.done", **part),
            s.event("response.output_audio_transcript.done", **part, transcript="x"),
            s.event("response.content_part.added", **part, part={"type": "text", "text": ""}),
            s.event("response.content_part.done", **part, part={"type": "text", "text": "x"}),
            s.event("response.function_call_arguments.delta", **ctx, call_id="c", delta="{"),
            s.event(
                "response.function_call_arguments.done",
                **ctx,
                call_id="c",
                name="f",
                arguments="{}",
            ),
            s.event(
                "response.output_item.done",
                response_id="resp_Q",
                output_index=0,
                item={"id": "item_Q", "type": "message", "role": "assistant", "content": []},
            ),
        ]
    ):
        fresh = Harness()
        fresh.connect()
        events = fresh.feed(event.replace("resp_Q", f"resp_Q{n}"))
        warnings = [e.message for e in events if isinstance(e, ProtocolWarning)]
        assert warnings == [f"{json.loads(event)['type']} for unknown response 'resp_Q{n}'"]


def test_received_audio_is_counted_exactly_whatever_the_rate() -> None:
    from rtproto.session.playback import PlaybackItem

    # 2140 bytes at 1070 Hz PCM16 is 1000 ms; by float division it was 999.99999...
    item = PlaybackItem("item", "resp", 0, 0.0, bytes_per_second=2140)
    item.add_base64(base64.b64encode(bytes(2140)).decode())
    assert item.received_whole_ms == 1000
    assert item.received_ms == 1000.0


def test_g711_output_is_accounted_at_8_bytes_per_ms() -> None:
    harness = Harness(session={"audio": {"output": {"format": "g711_ulaw"}}})
    harness.connect()
    s = harness.server
    harness.feed(s.session_updated(audio={"output": {"format": {"type": "audio/pcmu"}}}), 0.0)
    harness.feed(s.response_created("resp_1"), 0.0)
    ctx = {"response_id": "resp_1", "item_id": "item_A1", "output_index": 0, "content_index": 0}
    mulaw = "/" * 1600  # 1200 bytes of mu-law: 150 ms
    harness.feed(s.event("response.output_audio.delta", **ctx, delta=mulaw), 0.0)
    # all played by the clock, and more may be on the way: cut at what was received
    harness.session.interrupt(10.0)
    assert harness.sent() == [
        {
            "type": "response.cancel",
            "event_id": "rtproto_response_cancel_2",
            "response_id": "resp_1",
        },
        {
            "type": "conversation.item.truncate",
            "event_id": "rtproto_item_truncate_3",
            "item_id": "item_A1",
            "content_index": 0,
            "audio_end_ms": 150,
        },
    ]
    harness.feed(s.response_created("resp_2"), 11.0)
    harness.feed(
        s.event(
            "response.output_audio.delta",
            **{**ctx, "response_id": "resp_2", "item_id": "item_A2"},
            delta=mulaw,
        ),
        11.0,
    )
    harness.session.interrupt(11.1)
    assert [m.get("audio_end_ms") for m in harness.sent()] == [None, 100]


@pytest.mark.parametrize(
    ("audio", "cancels"),
    [
        (
            {"input": {"turn_detection": {"type": "semantic_vad", "interrupt_response": False}}},
            True,
        ),
        ({"input": {"turn_detection": {"type": "semantic_vad"}}}, False),
        ({"input": {"turn_detection": None}}, True),
        ({"output": {"voice": "alloy"}}, False),
        (None, False),  # no audio configuration at all
        ({"input": {"format": {"type": "audio/pcm", "rate": 24000}}}, False),
        # a kind of turn detection this version does not know: the server's default holds
        ({"input": {"turn_detection": {"type": "future_vad"}}}, False),
    ],
)
def test_who_cancels_on_speech(audio: dict[str, Any] | None, cancels: bool) -> None:
    harness = Harness()
    harness.connect()
    s = harness.server
    session = {key: value for key, value in s_session().items() if key != "audio"}
    if audio is not None:
        session["audio"] = audio
    harness.feed(s.event("session.updated", session=session), 0.0)
    harness.feed(s.response_created("resp_1"), 0.0)
    harness.feed(s.assistant_audio("resp_1", "item_A1", None, [300])[:4], 0.0)
    harness.feed(s.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u"), 0.1)
    kinds = [m["type"] for m in harness.sent()]
    assert ("response.cancel" in kinds) is cancels and "conversation.item.truncate" in kinds


def s_session() -> dict[str, Any]:
    from .samples import SESSION

    return dict(SESSION)


def test_out_of_band_response_answers_the_create(h: Harness) -> None:
    s = h.server
    h.session.create_response({"conversation": "none"})
    assert h.sent()[-1]["type"] == "response.create"
    h.feed(s.response_created("resp_oob", conversation=False))
    assert not h.session.response_active  # answered, and it does not block the conversation
    # a raw out-of-band create too
    h.session.send_event({"type": "response.create", "response": {"conversation": "none"}})
    assert h.sent()[-1]["type"] == "response.create"
    assert h.session.response_active
    h.feed(s.response_created("resp_oob2", conversation=False))
    assert not h.session.response_active
