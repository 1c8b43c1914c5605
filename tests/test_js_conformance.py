"""The session core against OpenAI's JavaScript transport layer, trace by trace.

``tests/interop/replay.mjs`` replays scripted traces (server events, app commands, time)
through ``@openai/agents-realtime``'s ``OpenAIRealtimeWebSocket`` or ``OpenAIRealtimeSIP``
(an in-memory socket) or ``OpenAIRealtimeWebRTC`` (an in-memory peer connection and data
channel), with a fake clock; the same traces run here through
:class:`rtproto.session.ClientSession` in the same profile.
Both must send the same client messages, each at the trace step that caused it, and report
the same transport events, except where rtproto differs on purpose: each difference is
listed in :data:`DIFFERENCES` with its reason, and the test checks that the difference is
exactly that one (so a change on either side shows).

Payloads are reduced to what both libraries report; ``event_id``s are dropped (the JS
transport stamps none). The comparison is per event kind, in order (the order across kinds is
not compared).
"""

from __future__ import annotations

import base64
import copy
import json
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from rtproto import models as M
from rtproto.session import (
    AudioChunk,
    AudioDone,
    AudioInterrupted,
    AudioTranscriptDelta,
    ClientSession,
    FunctionCall,
    ItemDeleted,
    ItemUpdate,
    McpApprovalRequested,
    McpToolCallCompleted,
    McpToolsListed,
    ServerError,
    SessionOptions,
    TextDelta,
    TurnDone,
    TurnStarted,
    UsageUpdate,
)

from .samples import MCP_APPROVAL_ITEM, MCP_CALL_ITEM, MCP_TOOLS_ITEM, SESSION
from .scripts import Server
from .test_js_interop import INTEROP, node, replay_named  # noqa: F401  (``node`` is a fixture)

SCRIPT = INTEROP / "replay.mjs"
NODE_TIMEOUT = 60.0

Step = dict[str, Any]


def server(text: str) -> Step:
    return {"server": json.loads(text)}


def advance(ms: int) -> Step:
    return {"advance_ms": ms}


def call(name: str, **arguments: Any) -> Step:
    return {"call": name, **arguments}


# ------------------------------------------------------------------------------ traces --


def _scenarios() -> dict[str, list[Step]]:
    s = Server()
    traces: dict[str, list[Step]] = {}

    text_item = {
        "id": "item_T",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    text_done = {
        **text_item,
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hi there"}],
    }
    text_ctx = {"response_id": "resp_1", "item_id": "item_T", "output_index": 0, "content_index": 0}
    traces["text turn"] = [
        server(s.session_created()),
        call("sendMessage", text="Hello"),
        server(s.response_created("resp_1")),
        server(
            s.event(
                "response.output_item.added", response_id="resp_1", output_index=0, item=text_item
            )
        ),
        server(s.event("conversation.item.added", previous_item_id=None, item=text_item)),
        server(s.event("response.output_text.delta", **text_ctx, delta="Hi")),
        server(s.event("response.output_text.delta", **text_ctx, delta=" there")),
        server(s.event("conversation.item.done", previous_item_id=None, item=text_done)),
        server(s.response_done("resp_1")),
    ]

    traces["audio turn"] = [
        server(s.session_created()),
        *map(server, s.user_turn("item_U1")),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", "item_U1", [100, 100, 50])),
        server(s.response_done("resp_1")),
    ]

    traces["barge-in"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [200, 200, 200])[:8]),
        advance(250),
        server(s.event("input_audio_buffer.speech_started", audio_start_ms=900, item_id="item_U2")),
        server(
            s.event(
                "conversation.item.truncated",
                item_id="item_A1",
                content_index=0,
                audio_end_ms=250,
            )
        ),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    for who, server_cancels in (("the server", True), ("the client", False)):
        audio = copy.deepcopy(SESSION["audio"])
        audio["input"]["turn_detection"]["interrupt_response"] = server_cancels
        traces[f"barge-in, {who} cancels"] = [
            server(s.session_created()),
            server(s.session_updated(audio=audio)),
            server(s.response_created("resp_1")),
            *map(server, s.assistant_audio("resp_1", "item_A1", None, [200, 200])[:6]),
            advance(321),
            server(s.event("input_audio_buffer.speech_started", audio_start_ms=9, item_id="u")),
            server(s.response_done("resp_1", status="cancelled")),
        ]

    traces["interrupt after the audio is done"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [200])),
        advance(90),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    traces["interrupt, then a message"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [300])[:4]),
        advance(120),
        call("interrupt"),
        call("sendMessage", text="stop, and tell me something else"),
        server(s.response_done("resp_1", status="cancelled")),
        server(s.response_created("resp_2")),
        server(s.response_done("resp_2")),
    ]

    client_cancels = copy.deepcopy(SESSION["audio"])
    client_cancels["input"]["turn_detection"]["interrupt_response"] = False
    traces["speech after the response is done"] = [
        server(s.session_created()),
        server(s.session_updated(audio=client_cancels)),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [500])[:4]),
        server(s.response_done("resp_1")),
        advance(200),
        server(s.event("input_audio_buffer.speech_started", audio_start_ms=9, item_id="u")),
    ]

    traces["a create refused outright is retried"] = [
        server(s.session_created()),
        call("sendMessage", text="one"),
        call("sendMessage", text="two"),
        server(
            s.event(
                "error",
                error={
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": "Invalid value in response.create.",
                    "param": None,
                    "event_id": None,
                },
            )
        ),
        server(s.response_created("resp_1")),
        server(s.response_done("resp_1")),
    ]

    exact = copy.deepcopy(SESSION["audio"])
    exact["input"]["turn_detection"]["interrupt_response"] = False
    traces["audio counted exactly"] = [
        server(s.session_created()),
        server(s.session_updated(audio=exact)),
        server(s.response_created("resp_1")),
        *[
            server(
                s.event(
                    "response.output_audio.delta",
                    response_id="resp_1",
                    item_id="item_A1",
                    output_index=0,
                    content_index=0,
                    delta=base64.b64encode(bytes(size)).decode(),
                )
            )
            for size in (2510, 3744, 4064, 290)  # 10,608 bytes: 221 ms exactly
        ],
        advance(1000),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    traces["interrupt before any audio"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    traces["update session"] = [
        server(s.session_created()),
        call("updateSessionConfig", config={"voice": "marin", "instructions": "Be brief."}),
    ]

    pcmu = copy.deepcopy(SESSION["audio"])
    pcmu["output"]["format"] = {"type": "audio/pcmu"}
    mulaw = base64.b64encode(b"\xff" * 800).decode()  # 100 ms at 8 kHz
    ctx = {"response_id": "resp_1", "item_id": "item_A1", "output_index": 0, "content_index": 0}
    traces["g711 output"] = [
        server(s.session_created()),
        server(s.session_updated(audio=pcmu)),
        server(s.response_created("resp_1")),
        *[server(s.event("response.output_audio.delta", **ctx, delta=mulaw)) for _ in range(3)],
        advance(234),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    traces["several items queued"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [200])),
        *map(server, s.assistant_audio("resp_1", "item_A2", "item_A1", [200, 200], index=1)[:6]),
        advance(300),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    traces["a response with its own options"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        call("sendMessage", text="one"),
        call("requestResponse", response={"instructions": "Answer in French."}),
        call("sendMessage", text="two"),
        server(s.response_done("resp_1")),
        server(s.response_created("resp_2")),
        server(s.response_done("resp_2")),
        server(s.response_created("resp_3")),
        server(s.response_done("resp_3")),
    ]

    done = json.loads(s.assistant_audio("resp_1", "item_A1", None, [400])[-2])["item"]
    cut = {
        **done,
        "status": "incomplete",
        "content": [{"type": "output_audio", "transcript": None}],
    }
    traces["a truncated item read back"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [400])),
        server(s.response_done("resp_1")),
        advance(100),
        call("interrupt"),
        server(
            s.event(
                "conversation.item.truncated", item_id="item_A1", content_index=0, audio_end_ms=100
            )
        ),
        server(s.event("conversation.item.retrieved", item=cut)),
    ]

    traces["interrupt by the app"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [120, 80])[:5]),
        advance(137),
        call("interrupt"),
        call("interrupt"),  # nothing left to interrupt
        server(s.response_done("resp_1", status="cancelled")),
    ]

    traces["interrupt past the audio received"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [100, 100])[:5]),
        advance(1500),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]

    call_item = {
        "id": "item_F1",
        "type": "function_call",
        "status": "completed",
        "name": "lookup",
        "call_id": "call_1",
        "arguments": '{"q":"x"}',
    }
    traces["tool call"] = [
        server(s.session_created()),
        call("sendMessage", text="look it up"),
        server(s.response_created("resp_1")),
        server(
            s.event(
                "response.function_call_arguments.done",
                response_id="resp_1",
                item_id="item_F1",
                output_index=0,
                call_id="call_1",
                name="lookup",
                arguments='{"q":"x"}',
            )
        ),
        server(
            s.event(
                "response.output_item.done", response_id="resp_1", output_index=0, item=call_item
            )
        ),
        server(s.response_done("resp_1", output=[call_item])),
        call("sendFunctionCallOutput", call_id="call_1", output='{"answer":42}', start=True),
        server(s.response_created("resp_2")),
        server(s.response_done("resp_2")),
    ]

    traces["tool call added completed"] = [
        server(s.session_created()),
        server(s.response_created("resp_1")),
        server(
            s.event(
                "response.output_item.added", response_id="resp_1", output_index=0, item=call_item
            )
        ),
        server(s.response_done("resp_1", output=[call_item])),
    ]

    old_audio = {
        "id": "item_A0",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "audio", "transcript": "Hello."}],
    }
    traces["older assistant audio content"] = [
        server(s.session_created()),
        server(s.event("conversation.item.retrieved", item=old_audio)),
    ]

    traces["one response at a time"] = [
        server(s.session_created()),
        call("sendMessage", text="first"),
        call("sendMessage", text="second"),  # deferred until response.done
        call("requestResponse"),  # coalesced with it
        server(s.response_created("resp_1")),
        call("sendMessage", text="third"),
        server(s.response_done("resp_1")),
        server(s.response_created("resp_2")),
        server(s.response_done("resp_2")),
    ]

    traces["rejected create"] = [
        server(s.session_created()),
        call("sendMessage", text="first"),
        call("sendMessage", text="second"),
        server(
            s.event(
                "error",
                error={
                    "type": "invalid_request_error",
                    "code": "conversation_already_has_active_response",
                    "message": "Conversation already has an active response in progress.",
                    "param": None,
                    "event_id": None,
                },
            )
        ),
        server(s.response_created("resp_1")),
        server(s.response_done("resp_1")),
    ]

    traces["transcripts and deletes"] = [
        server(s.session_created()),
        *map(server, s.user_turn("item_U1")),
        server(
            s.event(
                "conversation.item.input_audio_transcription.completed",
                item_id="item_U1",
                content_index=0,
                transcript="hello",
            )
        ),
        server(s.event("conversation.item.deleted", item_id="item_U1")),
    ]

    traces["hosted mcp"] = [
        server(s.session_created()),
        server(s.event("mcp_list_tools.in_progress", item_id="mcpl_1")),
        server(s.event("conversation.item.added", previous_item_id=None, item=MCP_TOOLS_ITEM)),
        server(s.event("conversation.item.done", previous_item_id=None, item=MCP_TOOLS_ITEM)),
        server(s.response_created("resp_1")),
        server(
            s.event("conversation.item.added", previous_item_id="mcpl_1", item=MCP_APPROVAL_ITEM)
        ),
        server(
            s.event("conversation.item.done", previous_item_id="mcpl_1", item=MCP_APPROVAL_ITEM)
        ),
        server(s.response_done("resp_1")),
        call("sendMcpResponse", item_id="mcpr_1", approved=True, reason="fine"),
        server(s.response_created("resp_2")),
        server(s.event("response.mcp_call.in_progress", item_id="mcp_1", output_index=0)),
        server(s.event("conversation.item.done", previous_item_id="mcpr_1", item=MCP_CALL_ITEM)),
        server(s.response_done("resp_2")),
    ]
    traces["webrtc: connect"] = [
        server(s.session_created()),
        server(s.session_updated()),
        call("sendMessage", text="Hello"),
        server(s.response_created("resp_1")),
        server(s.response_done("resp_1")),
    ]

    traces["webrtc: a message while the configuration is applied"] = [
        server(s.session_created()),
        call("sendMessage", text="Hello"),
        server(s.session_updated()),
        server(s.response_created("resp_1")),
        server(s.response_done("resp_1")),
    ]

    traces["webrtc: interrupt"] = [
        server(s.session_created()),
        server(s.session_updated()),
        call("interrupt"),  # nothing running: the output buffer is cleared all the same
        server(s.response_created("resp_1")),
        server(s.event("output_audio_buffer.started", response_id="resp_1")),
        server(s.event("input_audio_buffer.speech_started", audio_start_ms=9, item_id="u")),
        call("interrupt"),
        call("interrupt"),  # the cancel is on its way: not twice
        server(s.response_done("resp_1", status="cancelled")),
        call("sendMessage", text="go on"),
    ]

    traces["sip: a turn"] = [
        server(s.session_created()),
        server(s.session_updated()),
        call("sendMessage", text="Hello"),
        server(s.response_created("resp_1")),
        server(s.response_done("resp_1")),
    ]

    traces["sip: interrupt"] = [
        server(s.session_created()),
        server(s.session_updated()),
        server(s.response_created("resp_1")),
        server(s.event("output_audio_buffer.started", response_id="resp_1")),
        call("interrupt"),
        server(s.response_done("resp_1", status="cancelled")),
    ]
    return traces


#: Traces run over WebRTC (the data channel) or a SIP call's sideband WebSocket: the rest
#: run over a plain WebSocket.
WEBRTC = "webrtc: "
SIP = "sip: "


# --------------------------------------------------------------------------- rtproto side --


#: Each rtproto transport event as the JS transport's name and payload (see replay.mjs).
_REDUCERS: dict[type, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    AudioChunk: lambda e: ("audio", {"response_id": e.response_id, "bytes": len(e.audio)}),
    AudioDone: lambda e: ("audio_done", {}),
    AudioInterrupted: lambda e: ("audio_interrupted", {}),
    AudioTranscriptDelta: lambda e: (
        "audio_transcript_delta",
        {"item_id": e.item_id, "response_id": e.response_id, "delta": e.delta},
    ),
    TextDelta: lambda e: (
        "output_text_delta",
        {"item_id": e.item_id, "response_id": e.response_id, "delta": e.delta},
    ),
    TurnStarted: lambda e: ("turn_started", {"response_id": e.response.id}),
    TurnDone: lambda e: (
        "turn_done",
        {
            "response_id": e.response.id,
            "total_tokens": (e.usage.input_tokens + e.usage.output_tokens) if e.usage else 0,
        },
    ),
    UsageUpdate: lambda e: (
        "usage_update",
        {
            "input_tokens": e.usage.input_tokens,
            "output_tokens": e.usage.output_tokens,
            "total_tokens": e.usage.input_tokens + e.usage.output_tokens,
        },
    ),
    FunctionCall: lambda e: (
        "function_call",
        {
            "call_id": e.call_id,
            "name": e.function,
            "arguments": e.arguments,
            "item_id": e.item_id,
            "response_id": e.response_id,
        },
    ),
    ItemUpdate: lambda e: (
        "item_update",
        {
            "item_id": e.item.id,
            "type": e.item.type,
            "status": e.item.status or None,
            "texts": [part.text or part.transcript or None for part in e.item.content]
            if isinstance(e.item, M.MessageItem)
            else None,
            "kinds": [part.type for part in e.item.content]
            if isinstance(e.item, M.MessageItem)
            else None,
        },
    ),
    ItemDeleted: lambda e: ("item_deleted", {"item_id": e.item_id}),
    ServerError: lambda e: ("error", {"code": e.event.error.code}),
    McpToolsListed: lambda e: (
        "mcp_tools_listed",
        {"server_label": e.server_label, "tools": [tool.name for tool in e.tools]},
    ),
    McpApprovalRequested: lambda e: (
        "mcp_approval_request",
        {"item_id": e.item.id, "name": e.item.name},
    ),
    McpToolCallCompleted: lambda e: (
        "mcp_tool_call_completed",
        {"item_id": e.item.id, "output": e.item.output or None},
    ),
}


def _reduced(event: Any) -> tuple[str, dict[str, Any]] | None:
    reduce = _REDUCERS.get(type(event))
    return None if reduce is None else reduce(event)


def replay_rtproto(
    steps: list[Step], config: dict[str, Any] | None = None, profile: str = "websocket"
) -> dict[str, Any]:
    session = ClientSession(SessionOptions(model="gpt-realtime", session=config, profile=profile))
    clock = 1000.0  # seconds, as the JS side's Date.now() (ms)
    sent: list[list[Any]] = []  # [step, message]
    events: list[list[Any]] = []

    def drain(step_index: int) -> None:
        sent.extend([step_index, json.loads(text)] for text in session.messages_to_send())
        for event in session.take_events():
            reduced = _reduced(event)
            if reduced is not None:
                events.append(list(reduced))

    session.connection_made(clock)
    drain(-1)
    for step_index, step in enumerate(steps):
        if "server" in step:
            session.receive(json.dumps(step["server"]), clock)
        elif "advance_ms" in step:
            clock += step["advance_ms"] / 1000
        elif step["call"] == "sendMessage":
            session.send_message(step["text"], trigger_response=step.get("trigger", True))
        elif step["call"] == "interrupt":
            session.interrupt(clock)
        elif step["call"] == "requestResponse":
            session.create_response(step.get("response"))
        elif step["call"] == "sendFunctionCallOutput":
            session.send_function_call_output(
                step["call_id"], step["output"], start_response=step.get("start", True)
            )
        elif step["call"] == "sendMcpResponse":
            session.send_mcp_response(step["item_id"], step["approved"], reason=step.get("reason"))
        elif step["call"] == "updateSessionConfig":
            session.update_session(step["config"])
        else:
            raise AssertionError(f"unknown step {step}")
        drain(step_index)
    return {"sent": sent, "events": events}


def replay_js(node_path: str, scenarios: dict[str, list[Step]]) -> dict[str, dict[str, Any]]:
    runs = [
        {"name": name, "transport": _profile(name), "steps": steps}
        for name, steps in scenarios.items()
    ]
    replayed: dict[str, dict[str, Any]] = replay_named(node_path, SCRIPT, runs, NODE_TIMEOUT)
    return replayed


def _profile(name: str) -> str:
    for prefix in (WEBRTC, SIP):
        if name.startswith(prefix):
            return prefix.rstrip(": ")
    return "websocket"


def _without_ids(sent: list[list[Any]]) -> list[list[Any]]:
    """[step, message] pairs without the messages' ``event_id``s."""
    return [[step, {k: v for k, v in message.items() if k != "event_id"}] for step, message in sent]


def _by_kind(events: list[list[Any]]) -> dict[str, list[Any]]:
    kinds: dict[str, list[Any]] = {}
    for name, payload in events:
        kinds.setdefault(name, []).append(payload)
    return kinds


def _collapsed(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Message item updates, repeats in a row collapsed (the JS transport reports a message
    from both the response's output-item events and the conversation's item events)."""
    out: list[dict[str, Any]] = []
    for update in updates:
        if update["type"] == "message" and (not out or out[-1] != update):
            out.append(update)
    return out


# ------------------------------------------------------------------------- differences --

TRACING = {"type": "session.update", "session": {"type": "realtime", "tracing": "auto"}}

#: Where rtproto differs from the JS transport on purpose, and why. Each entry turns what the
#: JS transport did into what rtproto must do instead; the test applies it and compares.
DIFFERENCES: dict[str, str] = {
    "tracing": (
        "after session.created the JS transport sends session.update {tracing: 'auto'} unless "
        "the configuration sets tracing: rtproto turns on server-side tracing (and its data "
        "retention) only when the application configures it, in the initial session.update"
    ),
    "response.cancel names its response": (
        "the JS transport sends response.cancel without response_id; rtproto names the "
        "response it means, so a cancel arriving late cannot stop the next one"
    ),
    "item updates": (
        "the JS transport reports items from the response's output-item events as well as the "
        "conversation's item events (function calls only from the former, as 'in_progress', "
        "then 'completed' locally when their output is sent; MCP list-tools items never); "
        "rtproto reports every item, of any type, from the conversation's item events, each "
        "with the server's status (and from response.output_item.done only when the item is "
        "still in progress there: the beta service sends no conversation.item.done). Message "
        "items are compared, repeats in a row collapsed"
    ),
    "interrupt_response from session.created": (
        "the JS transport reads turn_detection.interrupt_response only from session.updated "
        "and otherwise cancels on speech_started itself; rtproto also reads session.created, "
        "and the service's default is true (realtime-protocol.md 2.5): the server cancels"
    ),
    "transcripts attached locally": (
        "on ...input_audio_transcription.completed the JS transport reads the item back with "
        "conversation.item.retrieve; rtproto attaches the transcript to the item it has "
        "(one round trip less, the same history) and reports the updated item; an item it "
        "does not have is read back, as the JS transport does"
    ),
    "interrupt after the audio is done": (
        "the JS transport forgets the playing item on response.output_audio.done, so a later "
        "interrupt() sends nothing, not even the cancel of the response still running "
        "(transport-behaviour.md, pain point 1); rtproto cancels it and truncates the item at "
        "what was heard while the client may still be playing it"
    ),
    "several items queued": (
        "the JS transport truncates only the last item, at the time since its first audio "
        "arrived; rtproto plays queued items one after the other and cuts each at its own "
        "position (here the first was heard whole and the second for 100 ms, not 300)"
    ),
    "transcripts kept across truncation": (
        "an item read back after a truncate comes without its transcript; the JS transport "
        "reports it so (its session layer restores it, pain point 3), rtproto's history "
        "keeps the transcript it had"
    ),
    "webrtc: messages wait for the configuration": (
        "over WebRTC the JS transport's connect() waits for session.updated, but a message "
        "sent meanwhile goes out at once; rtproto holds everything but the configuration (and "
        "an interruption's cancel and clear) until session.updated, so nothing runs on the "
        "server's defaults (pain point 7)"
    ),
    "webrtc: interruptions are reported": (
        "the JS WebRTC transport emits no audio_interrupted; rtproto reports every "
        "interruption that cancelled a response, whatever the transport"
    ),
    "audio is counted exactly": (
        "the JS transport adds each delta's length in milliseconds as a float, and the sum can "
        "fall just short of a whole number (10,608 bytes at 24 kHz: 220.999... ms, cut at 220); "
        "rtproto counts bytes in integers (221 ms)"
    ),
    "interrupt before any audio": (
        "the JS WebSocket transport's interrupt() does nothing until audio has arrived, even "
        "while a response runs; rtproto cancels the response the user interrupted"
    ),
    "sip: interrupt stops the call's audio": (
        "the JS SIP transport inherits the WebSocket interrupt(), which waits for audio events "
        "that never come on a SIP call's sideband: it does nothing; rtproto cancels the "
        "response and clears the server's output buffer, which plays to the phone line"
    ),
    "sip: the call's audio format": (
        "the JS SIP transport's initial session.update carries its PCM 24 kHz format defaults, "
        "which contradict the phone line's G.711 (pain point 4 on a call); rtproto's sip "
        "profile sends only the formats the application gives"
    ),
    "update_session sends only what changed": (
        "the JS transport's updateSessionConfig() sends the whole configuration with its "
        "defaults re-applied, which is how a voice change reverted phone audio to PCM "
        "(pain point 4); rtproto's update_session() sends only the fields given, with the "
        "same values"
    ),
}


def _first_step(steps: list[Step], matches: Callable[[Step], object]) -> int:
    return next(index for index, step in enumerate(steps) if matches(step))


def _expected(name: str, js: dict[str, Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """What rtproto must send (``[step, message]``) and report for a trace, from what the JS
    transport did, with the :data:`DIFFERENCES` applied."""
    sent = _without_ids(js["sent"])
    steps = SCENARIOS[name]
    tracing = [pair for pair in sent if pair[1] == TRACING]  # "tracing"
    assert [steps[step]["server"]["type"] for step, _ in tracing] == ["session.created"]
    sent.remove(tracing[0])
    for _, message in sent:  # "response.cancel names its response"
        if message["type"] == "response.cancel":
            message["response_id"] = "resp_1"
    events = _by_kind(js["events"])
    events["item_update"] = _collapsed(events.get("item_update", []))  # "item updates"
    if name.startswith("sip:"):  # "sip: the call's audio format"
        audio = sent[0][1]["session"]["audio"]
        for direction in ("input", "output"):
            assert audio[direction].pop("format") == {"type": "audio/pcm", "rate": 24000}
    if name == "barge-in":  # "interrupt_response from session.created"
        sent = [pair for pair in sent if pair[1]["type"] != "response.cancel"]
    elif name == "transcripts and deletes":  # "transcripts attached locally"
        step, message = sent.pop()
        assert message == {"type": "conversation.item.retrieve", "item_id": "item_U1"}
        events["item_update"].append({**events["item_update"][-1], "texts": ["hello"]})
    elif name == "interrupt after the audio is done":
        assert len(sent) == 1, "the JS transport sent nothing but the configuration"
        step = _first_step(steps, lambda step: step.get("call") == "interrupt")
        sent += [
            [step, {"type": "response.cancel", "response_id": "resp_1"}],
            [
                step,
                {
                    "type": "conversation.item.truncate",
                    "item_id": "item_A1",
                    "content_index": 0,
                    "audio_end_ms": 90,
                },
            ],
        ]
        events["audio_interrupted"] = [{}]
    elif name == "several items queued":
        step, truncate = sent[-1]
        assert truncate["item_id"] == "item_A2" and truncate["audio_end_ms"] == 300
        sent[-1] = [step, {**truncate, "audio_end_ms": 100}]
    elif name == "a truncated item read back":  # "interrupt after the audio is done"
        step = _first_step(steps, lambda step: step.get("call") == "interrupt")
        cut = {"type": "conversation.item.truncate", "item_id": "item_A1", "content_index": 0}
        sent.insert(-1, [step, {**cut, "audio_end_ms": 100}])
        events["audio_interrupted"] = [{}]
        read_back = events["item_update"][-1]  # "transcripts kept across truncation"
        assert read_back["status"] == "incomplete" and read_back["texts"] == [None]
        read_back["texts"] = ["Hello there."]
    elif name == "webrtc: a message while the configuration is applied":
        # "webrtc: messages wait for the configuration"
        updated = _first_step(
            steps, lambda step: step.get("server", {}).get("type") == "session.updated"
        )
        sent = [[step if step < 0 else max(step, updated), message] for step, message in sent]
    elif name == "webrtc: interrupt":  # "webrtc: interruptions are reported"
        events["audio_interrupted"] = [{}]
    elif name == "interrupt before any audio":
        assert len(sent) == 1, "the JS transport sent nothing but the configuration"
        step = _first_step(steps, lambda step: step.get("call") == "interrupt")
        sent.append([step, {"type": "response.cancel", "response_id": "resp_1"}])
        events["audio_interrupted"] = [{}]
    elif name == "sip: interrupt":
        assert len(sent) == 1, "the JS transport sent nothing but the configuration"
        step = _first_step(steps, lambda step: step.get("call") == "interrupt")
        sent += [
            [step, {"type": "response.cancel", "response_id": "resp_1"}],
            [step, {"type": "output_audio_buffer.clear"}],
        ]
        events["audio_interrupted"] = [{}]
    elif name == "audio counted exactly":
        step, truncate = sent[-1]
        assert truncate["audio_end_ms"] == 220  # 220.99999999999997, floored
        sent[-1] = [step, {**truncate, "audio_end_ms": 221}]
    elif name == "update session":  # "update_session sends only what changed"
        step, full = sent.pop()
        session = full["session"]
        assert session["audio"]["input"]["turn_detection"] == {"type": "semantic_vad"}
        voice = session["audio"]["output"]["voice"]
        changed = {"instructions": session["instructions"], "audio": {"output": {"voice": voice}}}
        sent.append([step, {"type": "session.update", "session": {"type": "realtime", **changed}}])
    return sent, events


# ------------------------------------------------------------------------------- tests --

SCENARIOS = _scenarios()


@pytest.fixture(scope="module")
def js_results(node: str) -> dict[str, dict[str, Any]]:  # noqa: F811  (the fixture)
    return replay_js(node, SCENARIOS)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_same_messages_and_events_as_the_js_transport(
    name: str, js_results: dict[str, dict[str, Any]]
) -> None:
    js = js_results[name]
    assert js["failure"] is None, js["failure"]
    expected_sent, expected_events = _expected(name, js)
    ours = replay_rtproto(SCENARIOS[name], profile=_profile(name))
    assert _without_ids(ours["sent"]) == expected_sent
    events = _by_kind(ours["events"])
    events["item_update"] = _collapsed(events.get("item_update", []))
    assert events == expected_events


def test_the_initial_configuration_is_the_js_transports(
    js_results: dict[str, dict[str, Any]],
) -> None:
    """With no configuration given, the first session.update is the JS transport's own,
    defaults included (the traces above compare it too; this says it on its own)."""
    first = _without_ids(js_results["audio turn"]["sent"])[0]
    assert first[1]["type"] == "session.update"
    assert _without_ids(replay_rtproto([])["sent"]) == [first]


# ------------------------------------------------------- random traces: the sequencer --

RANDOM_TRACES = 150


def _random_sequencer_trace(seed: int, interrupts: bool = False) -> list[Step]:
    """App requests and server answers in a random order a real server could produce (a
    response starts only when none runs and ends only when one runs, function calls come
    within a response, refusals name ``response.create``), with no audio: what decides when
    ``response.create`` goes, and the items the app adds meanwhile."""
    rng = random.Random(seed)
    s = Server()
    steps: list[Step] = [server(s.session_created()), server(s.session_updated())]
    active: str | None = None
    responses = 0
    calls: list[str] = []  # function calls made, not answered yet
    refusal = {
        "type": "invalid_request_error",
        "code": "invalid_value",
        "message": "Invalid value in response.create.",
        "param": None,
        "event_id": None,
    }
    for _ in range(rng.randint(4, 24)):
        n = len(steps)
        moves: list[tuple[float, Step]] = [
            (3, call("sendMessage", text=f"m{n}", trigger=rng.random() < 0.8)),
            (1, call("requestResponse")),
            (0.5, call("requestResponse", response={"instructions": f"r{n}"})),
        ]
        if active is None:
            moves += [(2.5, {"start": True}), (1, server(s.event("error", error=refusal)))]
        else:
            moves += [(2, {"end": True}), (1, {"function call": True})]
        if calls:
            moves.append((1.5, {"output": True}))
        if interrupts:
            moves.append((1, call("interrupt")))
        weights, choices = zip(*moves, strict=True)
        move = rng.choices(choices, weights)[0]
        if "start" in move:
            responses += 1
            active = f"resp_{responses}"
            steps.append(server(s.response_created(active)))
        elif "end" in move:
            steps.append(server(s.response_done(str(active))))
            active = None
        elif "function call" in move:
            call_id = f"call_{n}"
            item = {
                "id": f"item_F{n}",
                "type": "function_call",
                "status": "completed",
                "name": "lookup",
                "call_id": call_id,
                "arguments": "{}",
            }
            output_item = {"response_id": active, "output_index": 0, "item": item}
            steps.append(server(s.event("response.output_item.done", **output_item)))
            calls.append(call_id)
        elif "output" in move:
            call_id = calls.pop(rng.randrange(len(calls)))
            start = rng.random() < 0.8
            steps.append(call("sendFunctionCallOutput", call_id=call_id, output="{}", start=start))
        else:
            steps.append(move)
    return steps


def _random_barge_in_trace(seed: int) -> list[Step]:
    """One response's audio in random chunks and at random times, then the user interrupts
    (the app, or the server's VAD leaving the cancel to the client): where to cut."""
    rng = random.Random(seed)
    s = Server()
    client_cancels = copy.deepcopy(SESSION["audio"])
    client_cancels["input"]["turn_detection"]["interrupt_response"] = False
    steps = [
        server(s.session_created()),
        server(s.session_updated(audio=client_cancels)),
        server(s.response_created("resp_1")),
        *map(server, s.assistant_audio("resp_1", "item_A1", None, [])[:3]),
    ]
    ctx = {"response_id": "resp_1", "item_id": "item_A1", "output_index": 0, "content_index": 0}
    for _ in range(rng.randint(1, 8)):
        pcm = bytes(rng.randrange(2, 9600, 2))  # up to 200 ms of 24 kHz PCM16
        delta = base64.b64encode(pcm).decode()
        steps.append(server(s.event("response.output_audio.delta", **ctx, delta=delta)))
        steps.append(advance(rng.randrange(0, 400)))
    if rng.random() < 0.5:
        steps.append(call("interrupt"))
    else:
        speech = s.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u")
        steps.append(server(speech))
    steps.append(server(s.response_done("resp_1", status="cancelled")))
    return steps


def _turn_events(events: list[list[Any]]) -> dict[str, list[Any]]:
    """The events of the turns, by kind: responses, usage, function calls, errors and
    interruptions (item updates differ on purpose, see "item updates")."""
    kinds = {
        "turn_started",
        "turn_done",
        "usage_update",
        "function_call",
        "error",
        "audio_interrupted",
    }
    return {kind: payloads for kind, payloads in _by_kind(events).items() if kind in kinds}


def _all_but_tracing(sent: list[list[Any]]) -> list[list[Any]]:
    """Every message with the step that sent it, but the JS transport's tracing update, and
    without the response a cancel names (see "response.cancel names its response")."""
    return [
        [step, {k: v for k, v in message.items() if k != "response_id"}]
        if message["type"] == "response.cancel"
        else [step, message]
        for step, message in _without_ids(sent)
        if message != TRACING
    ]


def test_random_traces_send_response_create_when_the_js_transport_does(node: str) -> None:  # noqa: F811
    """Pain point 5 (conversation_already_has_active_response) is the sequencer's to solve:
    over random interleavings of requests, responses, function calls and their outputs,
    both send the same messages at the same steps (but the JS transport's tracing update)."""
    traces = {f"random {seed}": _random_sequencer_trace(seed) for seed in range(RANDOM_TRACES)}
    js = replay_js(node, traces)
    for name, steps in traces.items():
        assert js[name]["failure"] is None, (name, js[name]["failure"])
        ours = replay_rtproto(steps)
        assert _all_but_tracing(ours["sent"]) == _all_but_tracing(js[name]["sent"]), (name, steps)
        assert _turn_events(ours["events"]) == _turn_events(js[name]["events"]), (name, steps)


def test_random_webrtc_traces_send_what_the_js_transport_does(node: str) -> None:  # noqa: F811
    """The same over the WebRTC data channel, with interrupts too: a guarded
    ``response.cancel`` and always ``output_audio_buffer.clear``."""
    traces = {
        f"{WEBRTC}random {seed}": _random_sequencer_trace(seed, interrupts=True)
        for seed in range(RANDOM_TRACES)
    }
    js = replay_js(node, traces)
    for name, steps in traces.items():
        assert js[name]["failure"] is None, (name, js[name]["failure"])
        ours = replay_rtproto(steps, profile="webrtc")
        assert _all_but_tracing(ours["sent"]) == _all_but_tracing(js[name]["sent"]), (name, steps)
        # "webrtc: interruptions are reported" (by rtproto only)
        reported = _turn_events(ours["events"])
        reported.pop("audio_interrupted", None)
        assert reported == _turn_events(js[name]["events"]), (name, steps)


def _audio_lengths(steps: list[Step]) -> tuple[float, int, int]:
    """The audio length as the JS transport adds it up, delta by delta, in float ms
    (24 kHz PCM16: ``byteLength / 2 / 24000 * 1000``, as it computes it); the exact length in
    whole ms; the ms elapsed from the first delta to the end of the trace."""
    js_ms, total, elapsed, started = 0.0, 0, 0, False
    for step in steps:
        event = step.get("server", {})
        if event.get("type") == "response.output_audio.delta":
            size = len(base64.b64decode(event["delta"]))
            js_ms += size / 2 / 24000 * 1000
            total += size
            started = True
        elif started:
            elapsed += step.get("advance_ms", 0)
    return js_ms, total * 1000 // 48000, elapsed


def test_random_barge_ins_cut_where_the_js_transport_does(node: str) -> None:  # noqa: F811
    """Pain point 2 (a fractional audio_end_ms crashed sessions) and the clamp: over random
    chunk sizes and timings, the same cancel and the same truncate at the same step, but
    where the JS transport's float sum falls short of a whole millisecond ("audio is counted
    exactly")."""
    traces = {f"barge-in {seed}": _random_barge_in_trace(seed) for seed in range(RANDOM_TRACES)}
    js = replay_js(node, traces)
    for name, steps in traces.items():
        assert js[name]["failure"] is None, (name, js[name]["failure"])
        expected = _all_but_tracing(js[name]["sent"])
        step, truncate = expected[-1]
        if truncate["type"] == "conversation.item.truncate":
            js_ms, exact_ms, elapsed = _audio_lengths(steps)
            cut_by_length = elapsed >= exact_ms
            if cut_by_length and math.floor(js_ms) == exact_ms - 1 == truncate["audio_end_ms"]:
                expected[-1] = [step, {**truncate, "audio_end_ms": exact_ms}]
        ours = _all_but_tracing(replay_rtproto(steps)["sent"])
        assert ours == expected, (name, steps)
