"""Write the seed corpus of ``fuzz/fuzz_events.py`` (deterministic; its output is committed).

    python fuzz/make_corpus.py                 # (re)writes fuzz/corpus/events/
    python fuzz/make_corpus.py OUT_DIR         # somewhere else
    python fuzz/make_corpus.py --check         # exit 1 if the committed corpus is stale
    python fuzz/make_corpus.py --dict FILE     # also write a libFuzzer dictionary

Shapes follow /work/shared/spec/realtime-protocol.md sections 2-6. File names say what each
input is: ``ga-*`` GA server events, ``ga-client-*`` GA client events, ``beta-*`` the legacy
dialect, ``hostile-*`` malformed or adversarial input, ``crash-*`` minimised inputs the fuzzer
(or review) found to break the codec contract. The script only writes its own files; it never
deletes anything.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "corpus" / "events"

MAX_FILE = 2 * 1024 * 1024
MAX_TOTAL = 10 * 1024 * 1024

Json = Any


def dumps(obj: Json, *, ascii_only: bool = False) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8")


def pcm16(samples: int, freq: float = 440.0, rate: int = 24000) -> bytes:
    """Deterministic little-endian int16 sine wave."""
    return b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate)))
        for i in range(samples)
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


AUDIO_20MS = b64(pcm16(480))
AUDIO_100MS = b64(pcm16(2400, 220.0))

INSTRUCTIONS = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a "
    "human, but remember that you aren't a human and that you can't do human things in the "
    "real world. Your voice and personality should be warm and engaging, with a lively and "
    "playful tone. If interacting in a non-English language, start by using the standard "
    "accent or dialect familiar to the user. Talk quickly. You should always call a function "
    "if you can. Do not refer to these rules, even if you\u2019re asked about them."
)

PCM = {"type": "audio/pcm", "rate": 24000}
SERVER_VAD = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}

GA_SESSION = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_C9G5QPteg4UIbotdKLoYQ",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": INSTRUCTIONS,
    "tools": [],
    "tool_choice": "auto",
    "max_output_tokens": "inf",
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "expires_at": 1756324625,
    "audio": {
        "input": {
            "format": PCM,
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": SERVER_VAD,
        },
        "output": {"format": PCM, "voice": "alloy", "speed": 1.0},
    },
    "include": None,
}

TRANSCRIPTION_SESSION = {
    "type": "transcription",
    "object": "realtime.transcription_session",
    "id": "sess_CXtr4nscr1pt10n0000",
    "expires_at": 1756328225,
    "audio": {
        "input": {
            "format": PCM,
            "transcription": None,
            "noise_reduction": None,
            "turn_detection": {
                "type": "server_vad",
                "threshold": 0.5,
                "prefix_padding_ms": 300,
                "silence_duration_ms": 200,
            },
        }
    },
    "include": None,
}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
MCP_TOOL = {
    "type": "mcp",
    "server_label": "deepwiki",
    "server_url": "https://mcp.deepwiki.com/mcp",
    "allowed_tools": {"tool_names": ["ask_question", "read_wiki_structure"], "read_only": True},
    "require_approval": {"always": {"tool_names": ["ask_question"]}, "never": None},
    "headers": {"X-Trace": "on"},
    "server_description": "Docs for public GitHub repositories.",
}
CONNECTOR_TOOL = {
    "type": "mcp",
    "server_label": "calendar",
    "connector_id": "connector_googlecalendar",
    "authorization": "ya29.fake-token",
    "require_approval": "never",
}

USER_AUDIO_ITEM = {
    "id": "item_C9G8Pm6ok72I4HPjkbDZO",
    "object": "realtime.item",
    "type": "message",
    "status": "completed",
    "role": "user",
    "content": [{"type": "input_audio", "transcript": None}],
}
ASSISTANT_AUDIO_ITEM = {
    "id": "item_C9G8QfbnP1rx3l9hJ2Ku4",
    "object": "realtime.item",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [
        {"type": "output_audio", "transcript": "Sure \u2014 it's sunny in Paris, 21 \u00b0C."}
    ],
}
ASSISTANT_TEXT_ITEM = {
    "id": "item_C9G8QtextItem000001",
    "object": "realtime.item",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Bonjour ! \u00c7a va ? \U0001f600"}],
}
FUNCTION_CALL_ITEM = {
    "id": "item_C9G8RfunctionCall01",
    "object": "realtime.item",
    "type": "function_call",
    "status": "completed",
    "name": "get_weather",
    "call_id": "call_Ijb5xR2lKq7s",
    "arguments": '{"city":"Paris","unit":"c"}',
}
MCP_LIST_TOOLS_ITEM = {
    "id": "mcpl_68b0f0d0c0a08191",
    "type": "mcp_list_tools",
    "server_label": "deepwiki",
    "tools": [
        {
            "name": "ask_question",
            "input_schema": {
                "type": "object",
                "properties": {"repoName": {"type": "string"}, "question": {"type": "string"}},
                "required": ["repoName", "question"],
            },
            "description": "Ask any question about a GitHub repository",
            "annotations": {"read_only": True},
        },
        {"name": "read_wiki_structure", "input_schema": {"type": "object"}, "annotations": None},
    ],
}
MCP_CALL_ITEM = {
    "id": "mcp_68b0f0d1e2f38191",
    "type": "mcp_call",
    "server_label": "deepwiki",
    "name": "ask_question",
    "arguments": '{"repoName":"openai/openai-python","question":"What is Realtime?"}',
    "approval_request_id": None,
    "output": "Realtime is a low-latency speech-to-speech API.",
    "error": None,
}
MCP_CALL_FAILED_ITEM = {
    **MCP_CALL_ITEM,
    "id": "mcp_68b0f0d1e2f38192",
    "output": None,
    "error": {"type": "http_error", "code": 502, "message": "Bad Gateway"},
}
MCP_APPROVAL_REQUEST_ITEM = {
    "id": "mcpr_68b0f0d2aa0c8191",
    "type": "mcp_approval_request",
    "server_label": "deepwiki",
    "name": "ask_question",
    "arguments": '{"repoName":"a/b","question":"?"}',
}
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
RESPONSE_AUDIO = {"output": {"format": PCM, "voice": "alloy"}}


def response(status: str, output: list[Json], **extra: Json) -> Json:
    return {
        "object": "realtime.response",
        "id": "resp_C9G8PKXN2OfZSJTLhsEFb",
        "status": status,
        "status_details": None,
        "output": output,
        "conversation_id": "conv_C9G8OBGS9yqtGnLd6GTsP",
        "output_modalities": ["audio"],
        "max_output_tokens": "inf",
        "audio": RESPONSE_AUDIO,
        "usage": None,
        "metadata": None,
        **extra,
    }


CTX = {
    "response_id": "resp_C9G8PKXN2OfZSJTLhsEFb",
    "item_id": "item_C9G8QfbnP1rx3l9hJ2Ku4",
    "output_index": 0,
    "content_index": 0,
}
CALL_CTX = {
    "response_id": "resp_C9G8PKXN2OfZSJTLhsEFb",
    "item_id": "item_C9G8RfunctionCall01",
    "output_index": 1,
}
MCP_CTX = {"response_id": "resp_C9G8mcp0000000000", "item_id": "mcp_68b0f0d1e2f38191"}


def ev(kind: str, n: int, **fields: Json) -> Json:
    return {"type": kind, "event_id": f"event_C9G{n:04d}xYz", **fields}


# ------------------------------------------------------------------------ GA server events --

GA_SERVER: dict[str, Json] = {
    "ga-error-commit-empty": ev(
        "error",
        1,
        error={
            "type": "invalid_request_error",
            "code": "input_audio_buffer_commit_empty",
            "message": "Error committing input audio buffer: buffer too small. Expected at "
            "least 100ms of audio, but buffer only has 0.00ms of audio.",
            "param": None,
            "event_id": "commit_10",
        },
    ),
    "ga-error-unknown-parameter": ev(
        "error",
        2,
        error={
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.modalities'.",
            "param": "session.modalities",
            "event_id": None,
        },
    ),
    "ga-session-created-full": ev("session.created", 4, session=GA_SESSION),
    "ga-session-created-transcription": ev("session.created", 5, session=TRANSCRIPTION_SESSION),
    "ga-session-updated-tools-mcp": ev(
        "session.updated",
        6,
        session={
            **GA_SESSION,
            "instructions": "",
            "output_modalities": ["text"],
            "tools": [WEATHER_TOOL, MCP_TOOL, CONNECTOR_TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "max_output_tokens": 4096,
            "tracing": {"workflow_name": "demo", "group_id": "g1", "metadata": {"k": "v"}},
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.8,
                "token_limits": {"post_instructions": 8000},
            },
            "prompt": {"id": "pmpt_123", "version": "2", "variables": {"city": "Paris"}},
            "include": ["item.input_audio_transcription.logprobs"],
            "reasoning": {"effort": "low"},
            "parallel_tool_calls": True,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""},
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {
                        "type": "semantic_vad",
                        "eagerness": "high",
                        "create_response": False,
                        "interrupt_response": True,
                    },
                },
                "output": {"format": {"type": "audio/pcma"}, "voice": {"id": "voice_abc"}},
            },
        },
    ),
    "ga-session-updated-tool-choice-mcp": ev(
        "session.updated",
        7,
        session={
            "type": "realtime",
            "tools": [MCP_TOOL],
            "tool_choice": {"type": "mcp", "server_label": "deepwiki", "name": None},
            "tracing": "auto",
            "truncation": "disabled",
            "audio": {"input": {"turn_detection": None}, "output": {"speed": 1.25}},
        },
    ),
    "ga-conversation-created": ev(
        "conversation.created",
        8,
        conversation={"id": "conv_C9G8OBGS9yqtGnLd6GTsP", "object": "realtime.conversation"},
    ),
    "ga-conversation-item-created": ev(
        "conversation.item.created", 9, previous_item_id=None, item=USER_AUDIO_ITEM
    ),
    "ga-conversation-item-added-user-audio": ev(
        "conversation.item.added", 10, previous_item_id=None, item=USER_AUDIO_ITEM
    ),
    "ga-conversation-item-added-assistant-empty": ev(
        "conversation.item.added",
        11,
        previous_item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        item={**ASSISTANT_AUDIO_ITEM, "status": "in_progress", "content": []},
    ),
    "ga-conversation-item-done-assistant-audio": ev(
        "conversation.item.done",
        12,
        previous_item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        item=ASSISTANT_AUDIO_ITEM,
    ),
    "ga-conversation-item-done-function-call": ev(
        "conversation.item.done",
        13,
        previous_item_id="item_C9G8QfbnP1rx3l9hJ2Ku4",
        item=FUNCTION_CALL_ITEM,
    ),
    "ga-conversation-item-retrieved-audio": ev(
        "conversation.item.retrieved",
        15,
        item={
            **USER_AUDIO_ITEM,
            "content": [
                {"type": "input_audio", "audio": AUDIO_100MS, "transcript": "Hello there."}
            ],
        },
    ),
    "ga-conversation-item-truncated": ev(
        "conversation.item.truncated",
        16,
        item_id="item_C9G8QfbnP1rx3l9hJ2Ku4",
        content_index=0,
        audio_end_ms=1500,
    ),
    "ga-conversation-item-deleted": ev(
        "conversation.item.deleted", 17, item_id="item_C9G8Pm6ok72I4HPjkbDZO"
    ),
    "ga-input-transcription-delta": ev(
        "conversation.item.input_audio_transcription.delta",
        18,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        content_index=0,
        delta="Hello",
        obfuscation="z9A9dJucSf1J",
        logprobs=[{"token": "Hello", "logprob": -0.0123, "bytes": [72, 101, 108, 108, 111]}],
    ),
    "ga-input-transcription-completed-tokens": ev(
        "conversation.item.input_audio_transcription.completed",
        19,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        content_index=0,
        transcript="Hello, what's the weather in Paris?",
        usage={
            "type": "tokens",
            "total_tokens": 26,
            "input_tokens": 17,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 17},
            "output_tokens": 9,
        },
        logprobs=None,
    ),
    "ga-input-transcription-completed-duration": ev(
        "conversation.item.input_audio_transcription.completed",
        20,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        content_index=0,
        transcript="",
        usage={"type": "duration", "seconds": 2.4},
    ),
    "ga-input-transcription-failed": ev(
        "conversation.item.input_audio_transcription.failed",
        21,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        content_index=0,
        error={
            "type": "transcription_error",
            "code": "audio_unintelligible",
            "message": "The audio could not be transcribed.",
            "param": None,
        },
    ),
    "ga-input-transcription-segment": ev(
        "conversation.item.input_audio_transcription.segment",
        22,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
        content_index=0,
        id="seg_0001",
        text="Hello there.",
        speaker="A",
        start=0.0,
        end=1.25,
    ),
    "ga-input-audio-buffer-committed": ev(
        "input_audio_buffer.committed",
        23,
        previous_item_id=None,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
    ),
    "ga-input-audio-buffer-cleared": ev("input_audio_buffer.cleared", 24),
    "ga-input-audio-buffer-speech-started": ev(
        "input_audio_buffer.speech_started",
        25,
        audio_start_ms=1024,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
    ),
    "ga-input-audio-buffer-speech-stopped": ev(
        "input_audio_buffer.speech_stopped",
        26,
        audio_end_ms=3520,
        item_id="item_C9G8Pm6ok72I4HPjkbDZO",
    ),
    "ga-input-audio-buffer-timeout-triggered": ev(
        "input_audio_buffer.timeout_triggered",
        27,
        audio_start_ms=13000,
        audio_end_ms=19000,
        item_id="item_C9G8TimeoutItem0001",
    ),
    "ga-input-audio-buffer-dtmf": {
        "type": "input_audio_buffer.dtmf_event_received",
        "event": "#",
        "received_at": 1756324625,
    },
    "ga-output-audio-buffer-started": ev(
        "output_audio_buffer.started", 28, response_id=CTX["response_id"]
    ),
    "ga-output-audio-buffer-stopped": ev(
        "output_audio_buffer.stopped", 29, response_id=CTX["response_id"]
    ),
    "ga-output-audio-buffer-cleared": ev(
        "output_audio_buffer.cleared", 30, response_id=CTX["response_id"]
    ),
    "ga-response-created": ev("response.created", 31, response=response("in_progress", [])),
    "ga-response-done-full": ev(
        "response.done",
        32,
        response=response(
            "completed",
            [ASSISTANT_AUDIO_ITEM, FUNCTION_CALL_ITEM],
            usage=USAGE,
            metadata={"topic": "weather"},
        ),
    ),
    "ga-response-done-text": ev(
        "response.done",
        33,
        response=response(
            "completed",
            [ASSISTANT_TEXT_ITEM],
            output_modalities=["text"],
            status_details={"type": "completed"},
            usage=USAGE,
            conversation_id=None,
            max_output_tokens=512,
        ),
    ),
    "ga-response-done-cancelled": ev(
        "response.done",
        34,
        response=response(
            "cancelled",
            [{**ASSISTANT_AUDIO_ITEM, "status": "incomplete"}],
            status_details={"type": "cancelled", "reason": "turn_detected"},
            usage=USAGE,
        ),
    ),
    "ga-response-done-failed": ev(
        "response.done",
        35,
        response=response(
            "failed",
            [],
            status_details={
                "type": "failed",
                "error": {"type": "insufficient_quota", "code": "insufficient_quota"},
            },
        ),
    ),
    "ga-response-done-mcp": ev(
        "response.done",
        36,
        response=response(
            "completed",
            [MCP_LIST_TOOLS_ITEM, MCP_CALL_ITEM, MCP_CALL_FAILED_ITEM, MCP_APPROVAL_REQUEST_ITEM],
            usage=USAGE,
        ),
    ),
    "ga-response-output-item-added": ev(
        "response.output_item.added",
        37,
        response_id=CTX["response_id"],
        output_index=0,
        item={**ASSISTANT_AUDIO_ITEM, "status": "in_progress", "content": []},
    ),
    "ga-response-output-item-done-function-call": ev(
        "response.output_item.done",
        38,
        response_id=CTX["response_id"],
        output_index=1,
        item=FUNCTION_CALL_ITEM,
    ),
    "ga-response-content-part-added": ev(
        "response.content_part.added", 39, **CTX, part={"type": "audio", "transcript": ""}
    ),
    "ga-response-content-part-done": ev(
        "response.content_part.done",
        40,
        **CTX,
        part={"type": "audio", "transcript": "Sure \u2014 it's sunny."},
    ),
    "ga-response-output-text-delta": ev("response.output_text.delta", 41, **CTX, delta="Bonjour"),
    "ga-response-output-text-done": ev(
        "response.output_text.done", 42, **CTX, text="Bonjour ! \u00c7a va ?"
    ),
    "ga-response-output-audio-delta": ev(
        "response.output_audio.delta", 43, **CTX, delta=AUDIO_20MS
    ),
    "ga-response-output-audio-delta-empty": ev("response.output_audio.delta", 44, **CTX, delta=""),
    "ga-response-output-audio-done": ev("response.output_audio.done", 45, **CTX),
    "ga-response-output-audio-transcript-delta": ev(
        "response.output_audio_transcript.delta",
        46,
        **CTX,
        delta="Sure",
        obfuscation="z9A9dJucSf1J",
    ),
    "ga-response-output-audio-transcript-done": ev(
        "response.output_audio_transcript.done", 47, **CTX, transcript="Sure \u2014 it's sunny."
    ),
    "ga-response-function-call-arguments-delta": ev(
        "response.function_call_arguments.delta",
        48,
        **CALL_CTX,
        call_id="call_Ijb5xR2lKq7s",
        delta='{"city":"Pa',
        obfuscation="qQ",
    ),
    "ga-response-function-call-arguments-done": ev(
        "response.function_call_arguments.done",
        49,
        **CALL_CTX,
        call_id="call_Ijb5xR2lKq7s",
        name="get_weather",
        arguments='{"city":"Paris","unit":"c"}',
    ),
    "ga-response-mcp-call-arguments-delta": ev(
        "response.mcp_call_arguments.delta",
        50,
        **MCP_CTX,
        output_index=0,
        delta='{"repoName":',
        obfuscation=None,
    ),
    "ga-response-mcp-call-arguments-done": ev(
        "response.mcp_call_arguments.done",
        51,
        **MCP_CTX,
        output_index=0,
        arguments='{"repoName":"openai/openai-python","question":"What is Realtime?"}',
    ),
    "ga-response-mcp-call-in-progress": ev(
        "response.mcp_call.in_progress", 52, item_id=MCP_CTX["item_id"], output_index=0
    ),
    "ga-response-mcp-call-completed": ev(
        "response.mcp_call.completed", 53, item_id=MCP_CTX["item_id"], output_index=0
    ),
    "ga-response-mcp-call-failed": ev(
        "response.mcp_call.failed", 54, item_id=MCP_CTX["item_id"], output_index=0
    ),
    "ga-mcp-list-tools-in-progress": ev(
        "mcp_list_tools.in_progress", 55, item_id="mcpl_68b0f0d0c0a08191"
    ),
    "ga-mcp-list-tools-completed": ev(
        "mcp_list_tools.completed", 56, item_id="mcpl_68b0f0d0c0a08191"
    ),
    "ga-mcp-list-tools-failed": ev("mcp_list_tools.failed", 57, item_id="mcpl_68b0f0d0c0a08191"),
    "ga-rate-limits-updated": {
        "type": "rate_limits.updated",
        "event_id": "event_Ct1OgR5hYdKsUZrCPy41a",
        "rate_limits": [
            {"name": "tokens", "limit": 40000, "remaining": 38490, "reset_seconds": 2.265}
        ],
    },
    "ga-rate-limits-updated-empty": ev("rate_limits.updated", 58, rate_limits=[]),
    "ga-unknown-future-event": ev(
        "response.output_video.delta", 59, **CTX, delta="AAAA", extra={"nested": [1, 2.5, None]}
    ),
    "ga-unknown-fields-everywhere": ev(
        "conversation.item.done",
        60,
        previous_item_id=None,
        item={**FUNCTION_CALL_ITEM, "future_field": {"a": [True, False]}},
        another_future_field="kept",
    ),
}

# ------------------------------------------------------------------------ GA client events --


def cev(kind: str, n: int | None = None, **fields: Json) -> Json:
    head: Json = {"type": kind}
    if n is not None:
        head["event_id"] = f"evt_client_{n:03d}"
    return {**head, **fields}


GA_CLIENT: dict[str, Json] = {
    "ga-client-session-update-realtime": cev(
        "session.update",
        1,
        session={
            "type": "realtime",
            "instructions": "Be brief.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": PCM,
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {**SERVER_VAD, "idle_timeout_ms": 6000},
                },
                "output": {"voice": "marin", "speed": 1.1},
            },
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
        },
    ),
    "ga-client-session-update-mcp": cev(
        "session.update",
        2,
        session={
            "type": "realtime",
            "tools": [MCP_TOOL, CONNECTOR_TOOL],
            "tool_choice": {"type": "mcp", "server_label": "deepwiki", "name": "ask_question"},
            "tracing": None,
            "prompt": {"id": "pmpt_123", "version": None, "variables": None},
        },
    ),
    "ga-client-session-update-transcription": cev(
        "session.update",
        3,
        session={
            "type": "transcription",
            "audio": {
                "input": {
                    "format": PCM,
                    "noise_reduction": {"type": "near_field"},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": ""},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": 500,
                    },
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    ),
    "ga-client-input-audio-buffer-append": cev("input_audio_buffer.append", 4, audio=AUDIO_100MS),
    "ga-client-input-audio-buffer-commit": cev("input_audio_buffer.commit", 5),
    "ga-client-input-audio-buffer-clear": cev("input_audio_buffer.clear"),
    "ga-client-output-audio-buffer-clear": cev("output_audio_buffer.clear", 6),
    "ga-client-conversation-item-create-user-text": cev(
        "conversation.item.create",
        7,
        previous_item_id="root",
        item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "What's the weather in Paris?"}],
        },
    ),
    "ga-client-conversation-item-create-user-audio-image": cev(
        "conversation.item.create",
        8,
        item={
            "id": "item_client_0001",
            "object": "realtime.item",
            "status": "completed",
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_audio", "audio": AUDIO_20MS, "transcript": "hi"},
                {
                    "type": "input_image",
                    "image_url": "data:image/png;base64,iVBORw0KGgo=",
                    "detail": "low",
                },
            ],
        },
    ),
    "ga-client-conversation-item-create-function-call-output": cev(
        "conversation.item.create",
        item={"type": "function_call_output", "call_id": "call_Ijb5", "output": '{"temp_c":21}'},
    ),
    "ga-client-conversation-item-create-mcp-approval": cev(
        "conversation.item.create",
        9,
        item={
            "id": "mcpa_0001",
            "type": "mcp_approval_response",
            "approval_request_id": "mcpr_68b0f0d2aa0c8191",
            "approve": False,
            "reason": "not today",
        },
    ),
    "ga-client-conversation-item-retrieve": cev(
        "conversation.item.retrieve", 10, item_id="item_C9G8Pm6ok72I4HPjkbDZO"
    ),
    "ga-client-conversation-item-truncate": cev(
        "conversation.item.truncate",
        11,
        item_id="item_C9G8QfbnP1rx3l9hJ2Ku4",
        content_index=0,
        audio_end_ms=1500,
    ),
    "ga-client-conversation-item-delete": cev(
        "conversation.item.delete", 12, item_id="item_C9G8Pm6ok72I4HPjkbDZO"
    ),
    "ga-client-response-create-empty": cev("response.create"),
    "ga-client-response-create-out-of-band": cev(
        "response.create",
        13,
        response={
            "conversation": "none",
            "metadata": {"purpose": "classification"},
            "output_modalities": ["text"],
            "instructions": "Classify the topic.",
            "max_output_tokens": 64,
            "input": [
                {"type": "item_reference", "id": "item_C9G8Pm6ok72I4HPjkbDZO"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "weather or sports?"}],
                },
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": "none",
            "audio": {"output": {"format": {"type": "audio/pcmu"}, "voice": "cedar"}},
        },
    ),
    "ga-client-response-cancel": cev("response.cancel", 14),
}

# ------------------------------------------------------------------------------ beta dialect --

BETA_SESSION = {
    "id": "sess_BetaSession000001",
    "object": "realtime.session",
    "model": "gpt-4o-realtime-preview-2024-12-17",
    "modalities": ["text", "audio"],
    "instructions": "...",
    "voice": "alloy",
    "input_audio_format": "pcm16",
    "output_audio_format": "pcm16",
    "input_audio_transcription": {"model": "whisper-1", "language": None, "prompt": None},
    "input_audio_noise_reduction": None,
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    },
    "tools": [],
    "tool_choice": "auto",
    "temperature": 0.8,
    "max_response_output_tokens": "inf",
    "speed": 1.0,
    "tracing": None,
    "expires_at": 1756324625,
}
BETA_ASSISTANT_ITEM = {
    **ASSISTANT_AUDIO_ITEM,
    "content": [{"type": "audio", "transcript": "Hi!"}, {"type": "text", "text": "Hi!"}],
}

BETA: dict[str, Json] = {
    "beta-session-created-flat": ev("session.created", 100, session=BETA_SESSION),
    "beta-session-updated-g711": ev(
        "session.updated",
        101,
        session={
            **BETA_SESSION,
            "modalities": ["text"],
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "g711_alaw",
            "turn_detection": None,
            "max_response_output_tokens": 1024,
        },
    ),
    "beta-client-session-update-flat": cev(
        "session.update",
        session={
            "modalities": ["text", "audio"],
            "voice": "verse",
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "turn_detection": {"threshold": 0.6, "silence_duration_ms": 700},
            "temperature": 0.7,
        },
    ),
    "beta-client-transcription-session-update": cev(
        "transcription_session.update",
        session={
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "input_audio_noise_reduction": {"type": "far_field"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    ),
    "beta-transcription-session-updated": ev(
        "transcription_session.updated",
        102,
        session={
            "id": "sess_BetaTranscribe0001",
            "object": "realtime.transcription_session",
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": {"type": "server_vad", "threshold": 0.5},
        },
    ),
    "beta-conversation-created": ev(
        "conversation.created",
        103,
        conversation={"id": "conv_Beta0001", "object": "realtime.conversation"},
    ),
    "beta-conversation-item-created-assistant": ev(
        "conversation.item.created", 104, previous_item_id=None, item=BETA_ASSISTANT_ITEM
    ),
    "beta-response-output-item-done-assistant": ev(
        "response.output_item.done",
        105,
        response_id=CTX["response_id"],
        output_index=0,
        item=BETA_ASSISTANT_ITEM,
    ),
    "beta-response-audio-delta": ev("response.audio.delta", 106, **CTX, delta=AUDIO_20MS),
    "beta-response-audio-done": ev("response.audio.done", 107, **CTX),
    "beta-response-text-delta": ev("response.text.delta", 108, **CTX, delta="Hi"),
    "beta-response-text-done": ev("response.text.done", 109, **CTX, text="Hi!"),
    "beta-response-audio-transcript-delta": ev(
        "response.audio_transcript.delta", 110, **CTX, delta="Hi"
    ),
    "beta-response-audio-transcript-done": ev(
        "response.audio_transcript.done", 111, **CTX, transcript="Hi!"
    ),
    "beta-response-done-flat": ev(
        "response.done",
        112,
        response={
            "object": "realtime.response",
            "id": "resp_Beta0001",
            "status": "completed",
            "status_details": None,
            "output": [BETA_ASSISTANT_ITEM],
            "modalities": ["text", "audio"],
            "voice": "alloy",
            "output_audio_format": "pcm16",
            "temperature": 0.8,
            "max_output_tokens": "inf",
            "usage": USAGE,
        },
    ),
    "beta-client-response-create-flat": cev(
        "response.create",
        response={
            "modalities": ["text"],
            "instructions": "Say hi.",
            "voice": "sage",
            "output_audio_format": "g711_ulaw",
            "temperature": 0.9,
            "max_response_output_tokens": 200,
            "conversation": "auto",
        },
    ),
    "beta-error-unknown-parameter": ev(
        "error",
        113,
        error={
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.type'.",
            "param": "session.type",
            "event_id": None,
        },
    ),
}

# ------------------------------------------------------------------------------ hostile ------

AUDIO_DELTA = GA_SERVER["ga-response-output-audio-delta"]


def with_(base: Json, **changes: Json) -> Json:
    return {**base, **changes}


def deep(n: int, leaf: str = "0") -> str:
    return "[" * n + leaf + "]" * n


def hostile() -> Iterator[tuple[str, bytes]]:
    done = dumps(GA_SERVER["ga-response-done-full"])
    yield "hostile-empty", b""
    yield "hostile-truncated-response-done", done[: len(done) // 2]
    yield "hostile-truncated-escape", b'{"type":"error","error":{"message":"\\u00'
    yield "hostile-trailing-garbage", dumps(GA_SERVER["ga-input-audio-buffer-cleared"]) + b"}x"
    yield "hostile-bom", b"\xef\xbb\xbf" + dumps(cev("response.create"))
    # nesting
    yield "hostile-deep-array-100000", b"[" * 100000
    yield "hostile-deep-object-unclosed", b'{"a":' * 20000
    yield (
        "hostile-deep-in-unknown-field-1001",
        b'{"type":"input_audio_buffer.cleared","x":' + deep(1001).encode() + b"}",
    )
    yield (
        "hostile-deep-in-any-field-997",
        b'{"type":"conversation.created","conversation":{"a":' + deep(996).encode() + b"}}",
    )
    yield (
        "hostile-deep-beta-session-voice",
        b'{"type":"session.update","session":{"voice":' + deep(997).encode() + b"}}",
    )
    # encodings
    yield "hostile-invalid-utf8-top", b"\xff\xfe{\x00"
    yield (
        "hostile-invalid-utf8-in-known-string",
        b'{"type":"conversation.item.deleted","item_id":"item_\xc3\x28"}',
    )
    yield "hostile-overlong-utf8", b'{"type":"conversation.item.delete","item_id":"\xc0\xaf"}'
    yield (
        "hostile-lone-surrogate-escape-high",
        b'{"type":"conversation.item.deleted","item_id":"\\ud800"}',
    )
    yield (
        "hostile-reversed-surrogate-pair",
        b'{"type":"input_audio_buffer.cleared","x":"\\udc00\\ud800"}',
    )
    yield (
        "hostile-valid-surrogate-pair",
        b'{"type":"response.output_text.delta","response_id":"r","item_id":"i",'
        b'"output_index":0,"content_index":0,"delta":"\\ud83d\\ude00"}',
    )
    yield (
        "hostile-nul-escape",
        dumps(with_(GA_SERVER["ga-response-output-text-delta"], delta="a\x00b")),
    )
    yield "hostile-raw-control-char", b'{"type":"response.create","x":"a\nb"}'
    # numbers
    yield "hostile-nan", b'{"type":"input_audio_buffer.speech_started","audio_start_ms":NaN}'
    yield "hostile-infinity", b'{"type":"rate_limits.updated","rate_limits":[{"limit":Infinity}]}'
    yield (
        "hostile-float-overflow",
        b'{"type":"rate_limits.updated","rate_limits":[{"reset_seconds":1e400}]}',
    )
    yield (
        "hostile-negative-zero",
        b'{"type":"conversation.item.truncated","item_id":"i","content_index":-0,"audio_end_ms":-0.0}',
    )
    big = str(2**64).encode()
    huge = b"9" * 4000
    yield (
        "hostile-int-over-uint64-known-field",
        b'{"type":"conversation.item.truncated","item_id":"i","content_index":0,"audio_end_ms":'
        + big
        + b"}",
    )
    yield (
        "hostile-int-below-int64-known-field",
        b'{"type":"conversation.item.truncate","item_id":"i","content_index":-'
        + big
        + b',"audio_end_ms":0}',
    )
    yield "hostile-int-4000-digits-unknown-field", b'{"type":"response.create","n":' + huge + b"}"
    yield (
        "hostile-float-for-int",
        dumps(with_(GA_SERVER["ga-conversation-item-truncated"], content_index=0.5)),
    )
    # duplicate keys
    yield "hostile-dup-type-known-unknown", b'{"type":"input_audio_buffer.cleared","type":"nope"}'
    yield (
        "hostile-dup-item-beta-part",
        b'{"type":"conversation.item.added","item":{"type":"message","role":"assistant",'
        b'"content":[{"type":"output_text","text":"a"}]},"item":{"type":"message",'
        b'"role":"assistant","content":[{"type":"output_audio","transcript":"b"}]}}',
    )
    yield (
        "hostile-dup-session",
        b'{"type":"session.update","session":{"type":"transcription"},'
        b'"session":{"type":"realtime","voice":"x"}}',
    )
    # huge payloads (< 2 MB each)
    yield (
        "hostile-huge-text-delta-1mb",
        dumps(with_(GA_SERVER["ga-response-output-text-delta"], delta="\u00e9a" * 350_000)),
    )
    yield (
        "hostile-huge-audio-delta-1mb",
        dumps(with_(AUDIO_DELTA, delta=b64(pcm16(384_000, 330.0)))),
    )
    yield (
        "hostile-huge-unknown-event-many-keys",
        dumps({"type": "x.y", **{f"k{i}": i for i in range(40_000)}}),
    )
    yield (
        "hostile-huge-event-id",
        dumps(with_(GA_SERVER["ga-input-audio-buffer-cleared"], event_id="e" * 500_000)),
    )
    # base64 audio
    for name, delta in [
        ("not-alphabet", "AAAA!AAA"),
        ("bad-padding", "AAA=A"),
        ("whitespace", "AAAA\nAAAA"),
        ("urlsafe", "-_-_"),
        ("non-ascii", "\u00c0\u00c0\u00c0\u00c0"),
    ]:
        yield f"hostile-bad-base64-audio-delta-{name}", dumps(with_(AUDIO_DELTA, delta=delta))
    yield (
        "hostile-bad-base64-beta-audio-delta",
        dumps(ev("response.audio.delta", 200, **CTX, delta="=AAA")),
    )
    yield (
        "hostile-bad-base64-append",
        dumps(cev("input_audio_buffer.append", audio="AAAA====")),
    )
    yield "hostile-base64-append-odd-bytes", dumps(cev("input_audio_buffer.append", audio="AAA="))
    # wrong types
    yield "hostile-type-number", b'{"type":42,"event_id":"e"}'
    yield "hostile-type-null", b'{"type":null}'
    yield "hostile-type-object", b'{"type":{"name":"response.create"}}'
    yield "hostile-type-array", b'{"type":["response.create"]}'
    yield "hostile-type-missing", b'{"event_id":"event_1","response":{}}'
    yield "hostile-top-array", b'[{"type":"response.create"}]'
    yield "hostile-top-string", b'"response.create"'
    yield "hostile-top-number", b"12345"
    yield (
        "hostile-wrong-content-index-string",
        dumps(with_(GA_SERVER["ga-response-output-text-delta"], content_index="0")),
    )
    yield (
        "hostile-wrong-session-type",
        dumps(ev("session.created", 201, session={"type": "session"})),
    )
    yield "hostile-wrong-item-type", dumps(cev("conversation.item.create", item={"type": "video"}))
    yield (
        "hostile-wrong-rate-limits-object",
        dumps(ev("rate_limits.updated", 202, rate_limits={"name": "tokens"})),
    )
    yield (
        "hostile-missing-required-field",
        dumps(ev("conversation.item.truncated", 204, item_id="i")),
    )
    yield (
        "hostile-object-for-delta-string",
        dumps(with_(GA_SERVER["ga-response-output-text-delta"], delta={"text": "x"})),
    )
    yield (
        "hostile-object-for-instructions",
        dumps(
            cev("session.update", session={"type": "realtime", "instructions": {"a": {"b": []}}})
        ),
    )
    yield (
        "hostile-object-for-voice",
        dumps(
            cev(
                "session.update",
                session={"type": "realtime", "audio": {"output": {"voice": {"id": {"x": 1}}}}},
            )
        ),
    )
    # beta-shaped oddities
    yield (
        "hostile-beta-modalities-odd",
        dumps(cev("session.update", session={"modalities": ["audio", "video", 3]})),
    )
    yield (
        "hostile-beta-format-object",
        dumps(cev("session.update", session={"input_audio_format": {"type": "pcm16"}})),
    )
    yield (
        "hostile-beta-turn-detection-list",
        dumps(cev("session.update", session={"turn_detection": ["server_vad"]})),
    )
    yield (
        "hostile-beta-session-null",
        dumps(cev("transcription_session.update", session=None)),
    )
    yield (
        "hostile-beta-item-content-not-list",
        dumps(
            ev(
                "conversation.item.created",
                205,
                item={"type": "message", "role": "assistant", "content": {"type": "text"}},
            )
        ),
    )
    yield (
        "hostile-beta-response-output-not-list",
        dumps(ev("response.done", 206, response={"output": "none", "voice": None})),
    )


# -------------------------------------------------------------- contract violations found --
#
# Minimised reproducers of contract violations found by fuzzing and review. Each comment says
# how the codec failed at the time (all fixed since); they stay as regression inputs.
# tests/test_fuzz_corpus.py (KNOWN_CRASHES) lists any that are still open.

CRASHES: dict[str, bytes] = {
    # GA: msgspec skips unknown fields without validating UTF-8, so the typed event is returned
    # and serialize_*_event / event_raw later raise UnicodeDecodeError.
    "crash-utf8-unknown-field": b'{"type":"input_audio_buffer.cleared","x":"\xff"}',
    # str input holding a lone surrogate: msgspec raises UnicodeEncodeError (not caught).
    # (the bytes are CESU-8 for U+D800; check_one decodes them with "surrogatepass")
    "crash-str-lone-surrogate": b'{"type":"x","s":"\xed\xa0\x80"}',
    # the same root cause with a number: the untyped decoder refuses 1e400 (ValidationError,
    # "Number out of range") in serialize_*_event(other dialect) / event_raw
    "crash-float-overflow-unknown-field": b'{"type":"response.create","x":1e400}',
    # ... and with an integer of more than 4300 digits ("Integer value out of range")
    "crash-int-4301-digits-unknown-field": b'{"type":"response.create","n":' + b"9" * 4301 + b"}",
    # odd number of decoded audio bytes: ResponseOutputAudioDelta.pcm raises ValueError
    "crash-pcm-odd-length": dumps(with_(AUDIO_DELTA, delta="AA==")),
    # beta: _modalities_from_beta calls set() on a list holding an unhashable value (TypeError)
    "crash-beta-modalities-unhashable": (
        b'{"type":"session.update","session":{"modalities":["audio",{}]}}'
    ),
    # beta: _map_item looks up an unhashable content-part type in a dict (TypeError)
    "crash-beta-part-type-unhashable": (
        b'{"type":"conversation.item.created","item":{"type":"message","role":"assistant",'
        b'"content":[{"type":[]}]}}'
    ),
}


def corpus() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for table in (GA_SERVER, GA_CLIENT, BETA):
        for name, obj in table.items():
            files[name] = dumps(obj)
    for name, data in hostile():
        assert name not in files, name
        files[name] = data
    files.update(CRASHES)
    # a few ASCII-escaped twins (the same events, \\uXXXX escapes instead of UTF-8)
    for name in ("ga-session-created-full",):
        source = GA_SERVER.get(name) or BETA[name]
        files[f"{name}-ascii"] = dumps(source, ascii_only=True)
    # pretty-printed twin: whitespace and key order must survive the round trip
    files["ga-response-done-full-pretty"] = json.dumps(
        GA_SERVER["ga-response-done-full"], indent=2, sort_keys=True, ensure_ascii=False
    ).encode()
    return {f"{name}.json": data for name, data in sorted(files.items())}


# libFuzzer dictionary: JSON tokens, event and field names, dialect values.
def dictionary() -> list[bytes]:
    sys.path.insert(0, str(HERE.parent / "src"))
    import msgspec

    from rtproto import dialect, models
    from rtproto.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES

    words: set[str] = set(SERVER_EVENT_TYPES) | set(CLIENT_EVENT_TYPES)
    words |= set(dialect.EVENT_RENAMES.values()) | {
        "transcription_session.update",
        "transcription_session.updated",
    }
    words |= set(dialect.SESSION_PATHS) | set(dialect.FORMAT_NAMES.values())
    words |= set(dialect.FORMAT_NAMES) | set(dialect.PART_TYPES) | set(dialect.PART_TYPES.values())
    for cls in [*SERVER_EVENT_TYPES.values(), *CLIENT_EVENT_TYPES.values()]:
        words |= {f.encode_name for f in msgspec.structs.fields(cls)}
    for obj in vars(models).values():
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            words |= {f.encode_name for f in msgspec.structs.fields(obj)}
            tag = obj.__struct_config__.tag
            if isinstance(tag, str) and tag != obj.__name__:
                words.add(tag)
    words |= {"realtime", "transcription", "message", "assistant", "user", "input_audio"}
    tokens = [json.dumps(w).encode() for w in sorted(words)]
    tokens += [
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b'"',
        b"null",
        b"true",
        b"false",
        b"-0",
        b"1e400",
        b"18446744073709551616",
        b"NaN",
        b"\\u0000",
        b"\\ud800",
        b"\\udc00",
        b"\xed\xa0\x80",
        b"\xff",
        b'"AA=="',
        b'"AAAA"',
    ]
    return tokens


def _dict_line(token: bytes) -> str:
    escaped = "".join(
        chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}" for b in token
    )
    return f'"{escaped}"'


def main(argv: list[str]) -> int:
    args = argv[1:]
    check = "--check" in args
    dict_path = None
    if "--dict" in args:
        dict_path = Path(args[args.index("--dict") + 1])
        args = [a for a in args if a not in ("--dict", str(dict_path))]
    args = [a for a in args if a != "--check"]
    out = Path(args[0]) if args else DEFAULT_OUT

    files = corpus()
    total = sum(map(len, files.values()))
    for name, data in files.items():
        assert len(data) < MAX_FILE, (name, len(data))
    assert total < MAX_TOTAL, total

    if dict_path is not None:
        dict_path.write_text("\n".join(map(_dict_line, dictionary())) + "\n")
        print(f"wrote dictionary {dict_path}")

    if check:
        stale = [
            n for n, d in files.items() if not (out / n).is_file() or (out / n).read_bytes() != d
        ]
        for name in stale:
            print(f"stale or missing: {out / name}")
        return 1 if stale else 0

    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} files, {total} bytes, to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
