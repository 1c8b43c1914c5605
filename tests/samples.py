"""Real-shaped wire samples: one per GA server event type and per client event type.

Shapes follow shared/spec/realtime-protocol.md (sections 3 and 4) and, where the service
differs from its docs, shared/spec/service-observations.md (section 8: GA items carry no
``object`` key except in ``conversation.item.retrieved``; GA text, transcript and transcription
deltas carry ``obfuscation``). The test suite also checks each sample against the official
``openai`` SDK's own models, so they cannot drift from it.
"""

from __future__ import annotations

from typing import Any

USAGE = {
    "total_tokens": 253,
    "input_tokens": 132,
    "output_tokens": 121,
    "input_token_details": {
        "text_tokens": 119,
        "audio_tokens": 13,
        "image_tokens": 0,
        "cached_tokens": 64,
        "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 30, "audio_tokens": 91},
}

SESSION = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_C9G5QPteg4UIbotdKLoYQ",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "Your knowledge cutoff is 2023-10.",
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": 1756324625,
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
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
    },
    "include": None,
}

# GA items as the service sends them: no "object" key (service observations 8).
USER_ITEM = {
    "id": "item_U1",
    "type": "message",
    "role": "user",
    "status": "completed",
    "content": [{"type": "input_audio", "transcript": None}],
}
ASSISTANT_ITEM = {
    "id": "item_A1",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_audio", "transcript": "Hello there!"}],
}
CALL_ITEM = {
    "id": "item_F1",
    "type": "function_call",
    "status": "completed",
    "name": "get_weather",
    "call_id": "call_Ijb5",
    "arguments": '{"city":"Paris"}',
}
# Hosted MCP items (realtime-protocol.md 4.2); the JS transport's schema needs a tool's
# description, so it is given.
MCP_TOOLS_ITEM = {
    "id": "mcpl_1",
    "type": "mcp_list_tools",
    "server_label": "docs",
    "tools": [{"name": "search", "description": "Search the docs", "input_schema": {}}],
}
MCP_APPROVAL_ITEM = {
    "id": "mcpr_1",
    "type": "mcp_approval_request",
    "server_label": "docs",
    "name": "search",
    "arguments": "{}",
}
MCP_CALL_ITEM = {
    "id": "mcp_1",
    "type": "mcp_call",
    "server_label": "docs",
    "name": "search",
    "arguments": "{}",
    "output": "3 results",
}
RESPONSE = {
    "object": "realtime.response",
    "id": "resp_R1",
    "status": "completed",
    "status_details": None,
    "output": [ASSISTANT_ITEM, CALL_ITEM],
    "conversation_id": "conv_C1",
    "output_modalities": ["audio"],
    "max_output_tokens": "inf",
    "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
    "usage": USAGE,
    "metadata": None,
}
CTX = {"response_id": "resp_R1", "item_id": "item_A1", "output_index": 0, "content_index": 0}
CALL_CTX = {"response_id": "resp_R1", "item_id": "item_F1", "output_index": 1}


def _ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": "event_B4o9xyz", **fields}


SERVER_SAMPLES: dict[str, dict[str, Any]] = {
    "error": _ev(
        "error",
        error={
            "type": "invalid_request_error",
            "code": "input_audio_buffer_commit_empty",
            "message": "Error committing input audio buffer: buffer too small.",
            "param": None,
            "event_id": "commit_10",
        },
    ),
    "session.created": _ev("session.created", session=SESSION),
    "session.updated": _ev("session.updated", session={**SESSION, "instructions": "Be brief."}),
    "conversation.created": _ev(
        "conversation.created", conversation={"id": "conv_C1", "object": "realtime.conversation"}
    ),
    "conversation.item.created": _ev(  # a beta event: beta items carry "object"
        "conversation.item.created",
        previous_item_id=None,
        item={"id": "item_U1", "object": "realtime.item", **USER_ITEM},
    ),
    "conversation.item.added": _ev(
        "conversation.item.added", previous_item_id="item_U1", item=ASSISTANT_ITEM
    ),
    "conversation.item.done": _ev(
        "conversation.item.done", previous_item_id="item_U1", item=ASSISTANT_ITEM
    ),
    "conversation.item.retrieved": _ev(  # the one GA event whose item has "object"
        "conversation.item.retrieved",
        item={
            "id": "item_A1",
            "object": "realtime.item",
            **ASSISTANT_ITEM,
            "content": [{"type": "output_audio", "audio": "AAAA", "transcript": "Hi"}],
        },
    ),
    "conversation.item.truncated": _ev(
        "conversation.item.truncated", item_id="item_A1", content_index=0, audio_end_ms=1500
    ),
    "conversation.item.deleted": _ev("conversation.item.deleted", item_id="item_A1"),
    "conversation.item.input_audio_transcription.delta": _ev(
        "conversation.item.input_audio_transcription.delta",
        item_id="item_U1",
        content_index=0,
        delta="Hel",
        obfuscation="z9A9dJucSf1J",
    ),
    "conversation.item.input_audio_transcription.completed": _ev(
        "conversation.item.input_audio_transcription.completed",
        item_id="item_U1",
        content_index=0,
        transcript="Hello.",
        usage={
            "type": "tokens",
            "total_tokens": 20,
            "input_tokens": 15,
            "output_tokens": 5,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 15},
        },
    ),
    "conversation.item.input_audio_transcription.failed": _ev(
        "conversation.item.input_audio_transcription.failed",
        item_id="item_U1",
        content_index=0,
        error={"type": "transcription_error", "code": "audio_unintelligible", "message": "no"},
    ),
    "conversation.item.input_audio_transcription.segment": _ev(
        "conversation.item.input_audio_transcription.segment",
        item_id="item_U1",
        content_index=0,
        id="seg_1",
        text="Hello",
        speaker="A",
        start=0.0,
        end=0.8,
    ),
    "input_audio_buffer.committed": _ev(
        "input_audio_buffer.committed", previous_item_id=None, item_id="item_U1"
    ),
    "input_audio_buffer.cleared": _ev("input_audio_buffer.cleared"),
    "input_audio_buffer.speech_started": _ev(
        "input_audio_buffer.speech_started", audio_start_ms=1000, item_id="item_U1"
    ),
    "input_audio_buffer.speech_stopped": _ev(
        "input_audio_buffer.speech_stopped", audio_end_ms=2000, item_id="item_U1"
    ),
    "input_audio_buffer.timeout_triggered": _ev(
        "input_audio_buffer.timeout_triggered",
        audio_start_ms=0,
        audio_end_ms=5000,
        item_id="item_U2",
    ),
    "input_audio_buffer.dtmf_event_received": {
        "type": "input_audio_buffer.dtmf_event_received",
        "event": "5",
        "received_at": 1756310470,
    },
    "output_audio_buffer.started": _ev("output_audio_buffer.started", response_id="resp_R1"),
    "output_audio_buffer.stopped": _ev("output_audio_buffer.stopped", response_id="resp_R1"),
    "output_audio_buffer.cleared": _ev("output_audio_buffer.cleared", response_id="resp_R1"),
    "response.created": _ev(
        "response.created",
        response={**RESPONSE, "status": "in_progress", "output": [], "usage": None},
    ),
    "response.done": _ev("response.done", response=RESPONSE),
    "response.output_item.added": _ev(
        "response.output_item.added",
        response_id="resp_R1",
        output_index=0,
        item={**ASSISTANT_ITEM, "status": "in_progress", "content": []},
    ),
    "response.output_item.done": _ev(
        "response.output_item.done", response_id="resp_R1", output_index=0, item=ASSISTANT_ITEM
    ),
    "response.content_part.added": _ev(
        "response.content_part.added", **CTX, part={"type": "audio", "transcript": ""}
    ),
    "response.content_part.done": _ev(
        "response.content_part.done", **CTX, part={"type": "audio", "transcript": "Hello there!"}
    ),
    "response.output_text.delta": _ev(
        "response.output_text.delta", **CTX, delta="Hel", obfuscation="fQ3nO0aBtT"
    ),
    "response.output_text.done": _ev("response.output_text.done", **CTX, text="Hello"),
    "response.output_audio.delta": _ev("response.output_audio.delta", **CTX, delta="AAABAP//"),
    "response.output_audio.done": _ev("response.output_audio.done", **CTX),
    "response.output_audio_transcript.delta": _ev(
        "response.output_audio_transcript.delta", **CTX, delta="Sure", obfuscation="z9A9dJuc"
    ),
    "response.output_audio_transcript.done": _ev(
        "response.output_audio_transcript.done", **CTX, transcript="Sure thing."
    ),
    "response.function_call_arguments.delta": _ev(
        "response.function_call_arguments.delta", **CALL_CTX, call_id="call_Ijb5", delta='{"ci'
    ),
    "response.function_call_arguments.done": _ev(
        "response.function_call_arguments.done",
        **CALL_CTX,
        call_id="call_Ijb5",
        name="get_weather",
        arguments='{"city":"Paris"}',
    ),
    "response.mcp_call_arguments.delta": _ev(
        "response.mcp_call_arguments.delta", **CALL_CTX, delta='{"q'
    ),
    "response.mcp_call_arguments.done": _ev(
        "response.mcp_call_arguments.done", **CALL_CTX, arguments='{"q":1}'
    ),
    "response.mcp_call.in_progress": _ev(
        "response.mcp_call.in_progress", item_id="item_M1", output_index=0
    ),
    "response.mcp_call.completed": _ev(
        "response.mcp_call.completed", item_id="item_M1", output_index=0
    ),
    "response.mcp_call.failed": _ev("response.mcp_call.failed", item_id="item_M1", output_index=0),
    "mcp_list_tools.in_progress": _ev("mcp_list_tools.in_progress", item_id="item_L1"),
    "mcp_list_tools.completed": _ev("mcp_list_tools.completed", item_id="item_L1"),
    "mcp_list_tools.failed": _ev("mcp_list_tools.failed", item_id="item_L1"),
    "rate_limits.updated": _ev(
        "rate_limits.updated",
        rate_limits=[
            {"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}
        ],
    ),
}
