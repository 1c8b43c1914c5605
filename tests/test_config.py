"""Session-config normalisation (transport-behaviour 2.3/2.4, realtime-protocol 2 and 5.2)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtproto
from rtproto import models as M
from rtproto.config import (
    DEFAULT_TRANSCRIPTION_MODEL,
    PCM_24K,
    normalize_audio_format,
    normalize_session_config,
    output_format_of,
    sip_accept_session,
)
from rtproto.errors import LocalProtocolError
from rtproto.events import SessionUpdate, SessionUpdated

normalize = normalize_session_config


def wire(session: M.RealtimeSession) -> Any:
    """The ``session.update`` that carries ``session``, as parsed JSON."""
    return json.loads(rtproto.serialize_client_event(SessionUpdate(session=session)))


def fails(config: Any, path: str, **kwargs: Any) -> LocalProtocolError:
    """Normalising ``config`` raises, naming ``path`` first in the message."""
    with pytest.raises(LocalProtocolError) as info:
        normalize(config, **kwargs)
    error = info.value
    assert error.event_type == "session.update"
    assert error.message.startswith(f"{path}: "), error.message
    return error


PCM = {"type": "audio/pcm", "rate": 24000}
DEFAULT_INPUT = {
    "format": PCM,
    "noise_reduction": None,
    "transcription": {"model": "gpt-4o-mini-transcribe"},
    "turn_detection": {"type": "semantic_vad"},
}
DEFAULT_OUTPUT = {"format": PCM, "speed": 1.0}


# --- literal wire payloads ------------------------------------------------------------------


def test_empty_config_is_the_defaults_payload() -> None:
    expected = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {"input": DEFAULT_INPUT, "output": DEFAULT_OUTPUT},
        },
    }
    assert wire(normalize(None)) == expected
    assert wire(normalize({})) == expected
    assert normalize({}) == normalize(None)


def test_defaults_payload_text_is_exact() -> None:
    text = rtproto.serialize_client_event(SessionUpdate(session=normalize(None)))
    assert text == (
        '{"type":"session.update","session":{"type":"realtime","output_modalities":["audio"],'
        '"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"noise_reduction":null,'
        '"transcription":{"model":"gpt-4o-mini-transcribe"},'
        '"turn_detection":{"type":"semantic_vad"}},'
        '"output":{"format":{"type":"audio/pcm","rate":24000},"speed":1.0}}}}'
    )


def test_js_docs_flat_example() -> None:
    config = {
        "voice": "ash",
        "modalities": ["text", "audio"],
        "inputAudioFormat": "pcm16",
        "turnDetection": {"type": "server_vad", "silenceDurationMs": 500},
    }
    assert wire(normalize(config, model="gpt-realtime")) == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": "gpt-realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    **DEFAULT_INPUT,
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                },
                "output": {"format": PCM, "voice": "ash", "speed": 1.0},
            },
        },
    }


GA_CAMEL = {
    "model": "gpt-realtime",
    "instructions": "Speak like a pirate",
    "outputModalities": ["audio"],
    "audio": {
        "input": {
            "format": "pcm16",
            "noiseReduction": {"type": "near_field"},
            "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turnDetection": {
                "type": "semantic_vad",
                "eagerness": "medium",
                "createResponse": True,
                "interruptResponse": False,
            },
        },
        "output": {"format": "g711_ulaw", "voice": "marin", "speed": 1.25},
    },
    "toolChoice": "required",
    "maxOutputTokens": 2048,
    "parallelToolCalls": False,
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": True,
        }
    ],
}

GA_CAMEL_WIRE = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "Speak like a pirate",
        "audio": {
            "input": {
                "format": PCM,
                "noise_reduction": {"type": "near_field"},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                "turn_detection": {
                    "type": "semantic_vad",
                    "eagerness": "medium",
                    "create_response": True,
                    "interrupt_response": False,
                },
            },
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin", "speed": 1.25},
        },
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": "required",
        "max_output_tokens": 2048,
        "parallel_tool_calls": False,
    },
}


def test_ga_nested_camel_case_example() -> None:
    assert wire(normalize(GA_CAMEL, model="ignored-because-given")) == GA_CAMEL_WIRE


def test_ga_nested_snake_case_partial_update() -> None:
    config = {
        "type": "realtime",
        "audio": {"output": {"voice": {"id": "voice_123"}}},
        "tool_choice": {"type": "mcp", "server_label": "docs", "name": None},
        "tools": [
            {
                "type": "mcp",
                "server_label": "docs",
                "server_url": "https://example.com/mcp",
                "require_approval": {"never": {"tool_names": ["search"]}, "always": None},
                "allowed_tools": {"read_only": True},
                "headers": {"X-Key": "v"},
                "authorization": "token",
                "server_description": "Docs",
                "defer_loading": True,
            }
        ],
        "tracing": {"workflow_name": "wf", "group_id": "g", "metadata": {"a": 1}},
        "truncation": {
            "type": "retention_ratio",
            "retention_ratio": 0.5,
            "token_limits": {"post_instructions": 1000},
        },
        "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Paris"}},
        "include": ["item.input_audio_transcription.logprobs"],
        "reasoning": {"effort": "low"},
        "max_output_tokens": "inf",
    }
    assert wire(normalize(config, defaults=False)) == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "include": ["item.input_audio_transcription.logprobs"],
            "audio": {"output": {"voice": {"id": "voice_123"}}},
            "tools": [
                {
                    "type": "mcp",
                    "server_label": "docs",
                    "server_url": "https://example.com/mcp",
                    "allowed_tools": {"read_only": True},
                    "require_approval": {"always": None, "never": {"tool_names": ["search"]}},
                    "headers": {"X-Key": "v"},
                    "authorization": "token",
                    "server_description": "Docs",
                }
            ],
            "tool_choice": {"type": "mcp", "server_label": "docs", "name": None},
            "max_output_tokens": "inf",
            "tracing": {"workflow_name": "wf", "group_id": "g", "metadata": {"a": 1}},
            "truncation": {
                "type": "retention_ratio",
                "retention_ratio": 0.5,
                "token_limits": {"post_instructions": 1000},
            },
            "prompt": {"id": "pmpt_1", "version": "2", "variables": {"city": "Paris"}},
            "reasoning": {"effort": "low"},
        },
    }


def test_beta_flat_snake_case_session() -> None:
    """The beta session of realtime-protocol 5.2 maps field by field onto GA."""
    config = {
        "modalities": ["text"],
        "instructions": "...",
        "voice": "alloy",
        "input_audio_format": "g711_alaw",
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
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
    }
    assert wire(normalize(config, defaults=False))["session"] == {
        "type": "realtime",
        "output_modalities": ["text"],
        "instructions": "...",
        "audio": {
            "input": {
                "format": {"type": "audio/pcma"},
                "noise_reduction": None,
                "transcription": {"model": "whisper-1", "language": None, "prompt": None},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.5,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 500,
                    "create_response": True,
                    "interrupt_response": True,
                },
            },
            "output": {"format": PCM, "voice": "alloy", "speed": 1.0},
        },
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
    }


def test_flat_camel_case_and_snake_case_agree() -> None:
    camel = {
        "modalities": ["audio", "text"],
        "inputAudioFormat": "g711_ulaw",
        "outputAudioFormat": "g711_ulaw",
        "inputAudioTranscription": {"model": "whisper-1"},
        "inputAudioNoiseReduction": {"type": "far_field"},
        "speed": 0.5,
        "maxResponseOutputTokens": 100,
    }
    snake = {
        "modalities": ["audio", "text"],
        "input_audio_format": "g711_ulaw",
        "output_audio_format": "g711_ulaw",
        "input_audio_transcription": {"model": "whisper-1"},
        "input_audio_noise_reduction": {"type": "far_field"},
        "speed": 0.5,
        "max_response_output_tokens": 100,
    }
    result = normalize(camel)
    assert result == normalize(snake)
    assert result.max_output_tokens == 100
    assert result.output_modalities == ["audio"]
    assert isinstance(result.audio, M.AudioConfig)
    assert isinstance(result.audio.input, M.AudioInput)
    assert result.audio.input.noise_reduction == M.NoiseReduction(type="far_field")


# --- defaults and three-way semantics ---------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "default"),
    [
        ("noise_reduction", None),
        ("transcription", {"model": DEFAULT_TRANSCRIPTION_MODEL}),
        ("turn_detection", {"type": "semantic_vad"}),
    ],
)
def test_absent_default_null_and_value(key: str, default: Any) -> None:
    def audio_input(config: dict[str, Any]) -> Any:
        return wire(normalize(config))["session"]["audio"]["input"]

    assert audio_input({})[key] == default
    assert audio_input({"audio": {"input": {key: None}}})[key] is None
    given = {
        "noise_reduction": {"type": "far_field"},
        "transcription": {"model": "whisper-1"},
        "turn_detection": {"type": "server_vad"},
    }[key]
    assert audio_input({"audio": {"input": {key: given}}})[key] == given


def test_defaults_false_sets_only_what_was_given() -> None:
    assert wire(normalize({}, defaults=False))["session"] == {"type": "realtime"}
    assert wire(normalize({"audio": {"input": {}, "output": {}}}, defaults=False))["session"] == {
        "type": "realtime"
    }
    assert wire(normalize({"speed": 1.5}, defaults=False))["session"] == {
        "type": "realtime",
        "audio": {"output": {"speed": 1.5}},
    }
    assert wire(normalize({"input_audio_format": "pcm16"}, defaults=False))["session"] == {
        "type": "realtime",
        "audio": {"input": {"format": PCM}},
    }


def test_defaults_fill_around_what_was_given() -> None:
    session = wire(
        normalize({"audio": {"output": {"voice": "verse"}}, "outputModalities": ["text"]})
    )
    assert session["session"]["output_modalities"] == ["text"]
    assert session["session"]["audio"] == {
        "input": DEFAULT_INPUT,
        "output": {"format": PCM, "voice": "verse", "speed": 1.0},
    }


def test_model_argument_fills_only_a_missing_model() -> None:
    assert normalize({}, model="gpt-realtime").model == "gpt-realtime"
    assert normalize({}, model="gpt-realtime", defaults=False).model == "gpt-realtime"
    assert normalize({"model": "gpt-realtime-mini"}, model="gpt-realtime").model == (
        "gpt-realtime-mini"
    )
    assert isinstance(normalize({}).model, msgspec.UnsetType)
    fails({}, "model", model="")


def test_output_is_always_tagged_realtime() -> None:
    assert wire(normalize({"type": "realtime"}, defaults=False))["session"] == {"type": "realtime"}
    fails({"type": "transcription"}, "type")


# --- the typed path ---------------------------------------------------------------------------


def test_typed_session_is_returned_as_is() -> None:
    session = M.RealtimeSession(
        instructions="hi", audio=M.AudioConfig(output=M.AudioOutput(speed=0.5))
    )
    assert normalize(session) is session
    assert normalize(session, model="gpt-realtime") is session  # no fill: it is the payload


def test_typed_session_is_validated() -> None:
    bad = M.RealtimeSession(audio=M.AudioConfig(output=M.AudioOutput(speed=3.0)))
    fails(bad, "audio.output.speed")
    fails(M.RealtimeSession(tools=[M.FunctionTool(description="no name")]), "tools[0].name")
    bad_rate = M.AudioConfig(input=M.AudioInput(format=M.AudioFormat(type="audio/pcm", rate=16000)))
    fails(M.RealtimeSession(audio=bad_rate), "audio.input.format.rate")


def test_typed_session_keeps_raw_only_fields() -> None:
    session = M.RealtimeSession(id="sess_1", object="realtime.session", temperature=0.8)
    assert normalize(session) is session


def test_typed_sub_models_are_accepted_in_mappings() -> None:
    config = {
        "audio": {
            "input": {"format": M.AudioFormat(type="audio/pcmu"), "turn_detection": M.ServerVad()},
            "output": {"voice": M.VoiceId(id="v1")},
        },
        "tools": [M.FunctionTool(name="f")],
        "tool_choice": M.ToolChoiceFunction(name="f"),
    }
    result = normalize(config, defaults=False)
    assert wire(result)["session"] == {
        "type": "realtime",
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "server_vad"}},
            "output": {"voice": {"id": "v1"}},
        },
        "tools": [{"type": "function", "name": "f"}],
        "tool_choice": {"type": "function", "name": "f"},
    }


def test_any_mapping_is_accepted() -> None:
    proxy: Mapping[str, Any] = MappingProxyType({"instructions": "x"})
    assert normalize(proxy, defaults=False).instructions == "x"


# --- contradictions ---------------------------------------------------------------------------


def test_flat_fields_cannot_mix_with_the_audio_block() -> None:
    error = fails({"audio": {}, "inputAudioFormat": "pcm16", "speed": 1.0}, "inputAudioFormat")
    assert "speed" in error.message
    assert "audio" in error.message
    fails({"audio": {"input": {}}, "turn_detection": None}, "turn_detection")


def test_voice_at_top_level_does_not_count_as_flat() -> None:
    result = normalize({"voice": "echo", "audio": {"input": {}}}, defaults=False)
    assert wire(result)["session"]["audio"] == {"output": {"voice": "echo"}}


def test_top_level_voice_is_the_fallback_for_audio_output_voice() -> None:
    both = {"voice": "echo", "audio": {"output": {"voice": "echo"}}}
    assert wire(normalize(both, defaults=False))["session"]["audio"]["output"] == {"voice": "echo"}
    error = fails({"voice": "echo", "audio": {"output": {"voice": "sage"}}}, "audio.output.voice")
    assert "contradicts voice" in error.message


def test_two_spellings_with_the_same_value_are_fine() -> None:
    config = {"tool_choice": "none", "toolChoice": "none"}
    assert normalize(config, defaults=False).tool_choice == "none"


@pytest.mark.parametrize(
    ("config", "path", "other"),
    [
        ({"tool_choice": "auto", "toolChoice": "none"}, "toolChoice", "tool_choice"),
        (
            {"turnDetection": {"silenceDurationMs": 500, "silence_duration_ms": 200}},
            "turnDetection.silence_duration_ms",
            "turnDetection.silenceDurationMs",
        ),
        (
            {"turn_detection": {"create_response": 1, "createResponse": True}},
            "turn_detection.createResponse",
            "turn_detection.create_response",
        ),
        (
            {"modalities": ["text"], "output_modalities": ["audio"]},
            "modalities",
            "output_modalities",
        ),
        (
            {"max_response_output_tokens": 5, "maxOutputTokens": 6},
            "max_response_output_tokens",
            "maxOutputTokens",
        ),
        (
            {"prompt": {"id": "a", "promptId": "b"}},
            "prompt.promptId",
            "prompt.id",
        ),
    ],
)
def test_two_spellings_with_different_values_are_contradictory(
    config: dict[str, Any], path: str, other: str
) -> None:
    assert other in fails(config, path).message


def test_alias_fields_that_agree_are_fine() -> None:
    config = {
        "modalities": ["text", "audio"],
        "output_modalities": ["audio"],
        "max_response_output_tokens": 7,
        "max_output_tokens": 7,
    }
    result = normalize(config, defaults=False)
    assert (result.output_modalities, result.max_output_tokens) == (["audio"], 7)


# --- audio formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pcm16", PCM_24K),
        ("audio/pcm", PCM_24K),
        ("g711_ulaw", M.AudioFormat(type="audio/pcmu")),
        ("audio/pcmu", M.AudioFormat(type="audio/pcmu")),
        ("g711_alaw", M.AudioFormat(type="audio/pcma")),
        ("audio/pcma", M.AudioFormat(type="audio/pcma")),
        ({"type": "audio/pcm"}, PCM_24K),
        ({"type": "audio/pcm", "rate": 24000}, PCM_24K),
        ({"type": "audio/pcmu"}, M.AudioFormat(type="audio/pcmu")),
        ({"type": "audio/pcma", "rate": 8000}, M.AudioFormat(type="audio/pcma")),
        (M.AudioFormat(type="audio/pcm"), PCM_24K),
    ],
)
def test_audio_formats(value: Any, expected: M.AudioFormat) -> None:
    assert normalize_audio_format(value, field="f") == expected


def test_pcm_format_is_pcm_24k_on_the_wire() -> None:
    assert msgspec.json.encode(normalize_audio_format("pcm16", field="f")) == (
        b'{"type":"audio/pcm","rate":24000}'
    )


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"type": "audio/pcm", "rate": 16000}, "x.rate", "24000 Hz"),
        ({"type": "audio/pcmu", "rate": 16000}, "x.rate", "8000 Hz"),
        ({"type": "audio/pcm", "rate": 24000.0}, "x.rate", "integer"),
        ({"type": "audio/pcm", "rate": True}, "x.rate", "integer"),
        ("opus", "x", "unknown audio format"),
        ("", "x", "unknown audio format"),
        ({"type": "pcm16"}, "x.type", "must be one of"),
        ({"rate": 24000}, "x.type", "required"),
        ({"type": "audio/pcm", "channels": 1}, "x.channels", "unknown field"),
        (None, "x", "format name"),
        (24000, "x", "format name"),
    ],
)
def test_bad_audio_formats(value: Any, path: str, words: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        normalize_audio_format(value, field="x")
    assert info.value.message.startswith(f"{path}: ")
    assert words in info.value.message
    assert info.value.event_type == "session.update"


def test_bad_format_in_session_names_the_full_path() -> None:
    fails(
        {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 48000}}}},
        "audio.output.format.rate",
    )
    fails({"outputAudioFormat": "mp3"}, "outputAudioFormat")


@pytest.mark.parametrize("side", ["input", "output"])
def test_a_given_format_is_kept_over_the_default(side: str) -> None:
    given = {"audio": {side: {"format": {"type": "audio/pcmu"}}}}
    audio = wire(normalize(given))["session"]["audio"]
    assert audio[side]["format"] == {"type": "audio/pcmu"}
    other = "output" if side == "input" else "input"
    assert audio[other]["format"] == PCM


def test_format_defaults_off_leaves_the_formats_to_the_server() -> None:
    audio = wire(normalize({"audio": {"output": {"voice": "marin"}}}, format_defaults=False))[
        "session"
    ]["audio"]
    assert "format" not in audio["input"]
    assert "format" not in audio["output"]
    assert audio["input"]["turn_detection"] == {"type": "semantic_vad"}  # the rest defaulted


def _session_with_output(output: M.AudioOutput | None) -> M.RealtimeSession:
    audio = M.AudioConfig() if output is None else M.AudioConfig(output=output)
    return M.RealtimeSession(audio=audio)


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        (None, PCM_24K),
        (M.RealtimeSession(), PCM_24K),
        (_session_with_output(None), PCM_24K),
        (_session_with_output(M.AudioOutput(voice="ash")), PCM_24K),
        (_session_with_output(M.AudioOutput(format=M.AudioFormat(type="audio/pcm"))), PCM_24K),
        (
            _session_with_output(M.AudioOutput(format=M.AudioFormat(type="audio/pcmu"))),
            M.AudioFormat(type="audio/pcmu"),
        ),
        (
            _session_with_output(M.AudioOutput(format=M.AudioFormat(type="audio/x", rate=16000))),
            M.AudioFormat(type="audio/x", rate=16000),
        ),
        (M.TranscriptionSession(), PCM_24K),
    ],
)
def test_output_format_of(session: M.SessionConfig | None, expected: M.AudioFormat) -> None:
    assert output_format_of(session) == expected


def test_output_format_of_a_normalised_session() -> None:
    assert output_format_of(normalize({"outputAudioFormat": "g711_alaw"})) == M.AudioFormat(
        type="audio/pcma"
    )


# --- modalities -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("output_modalities", ["audio"], ["audio"]),
        ("outputModalities", ["text"], ["text"]),
        ("output_modalities", ("text",), ["text"]),
        ("modalities", ["text", "audio"], ["audio"]),
        ("modalities", ["audio", "text"], ["audio"]),
        ("modalities", ["audio"], ["audio"]),
        ("modalities", ["text"], ["text"]),
    ],
)
def test_modalities(key: str, value: Any, expected: list[str]) -> None:
    assert normalize({key: value}).output_modalities == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("output_modalities", ["text", "audio"]),
        ("output_modalities", ["audio", "text"]),
        ("output_modalities", []),
        ("output_modalities", ["video"]),
        ("output_modalities", ["audio", "audio"]),
        ("output_modalities", "audio"),
        ("modalities", []),
        ("modalities", ["text", "text"]),
        ("modalities", ["text", "audio", "image"]),
        ("modalities", None),
    ],
)
def test_bad_modalities(key: str, value: Any) -> None:
    fails({key: value}, key)


def test_bad_modalities_name_what_each_shape_allows() -> None:
    ga = fails({"output_modalities": ["text", "audio"]}, "output_modalities").message
    assert "['audio'] or ['text'] (audio comes with its transcript)" in ga
    beta = fails({"modalities": ["audio", "audio"]}, "modalities").message
    assert "['audio'] or ['text'] (or the beta ['text', 'audio'])" in beta


# --- turn detection ---------------------------------------------------------------------------


def turn(value: Any) -> Any:
    return wire(normalize({"audio": {"input": {"turn_detection": value}}}, defaults=False))[
        "session"
    ]["audio"]["input"]["turn_detection"]


def test_turn_detection_camel_case_keys() -> None:
    assert turn(
        {
            "type": "server_vad",
            "threshold": 0.7,
            "prefixPaddingMs": 100,
            "silenceDurationMs": 600,
            "idleTimeoutMs": 5000,
            "createResponse": True,
            "interruptResponse": True,
        }
    ) == {
        "type": "server_vad",
        "threshold": 0.7,
        "prefix_padding_ms": 100,
        "silence_duration_ms": 600,
        "idle_timeout_ms": 5000,
        "create_response": True,
        "interrupt_response": True,
    }


def test_turn_detection_keeps_falsy_values() -> None:
    assert turn(
        {
            "type": "server_vad",
            "threshold": 0,
            "prefix_padding_ms": 0,
            "silenceDurationMs": 0,
            "idle_timeout_ms": None,
            "create_response": False,
            "interruptResponse": False,
        }
    ) == {
        "type": "server_vad",
        "threshold": 0.0,
        "prefix_padding_ms": 0,
        "silence_duration_ms": 0,
        "idle_timeout_ms": None,
        "create_response": False,
        "interrupt_response": False,
    }
    assert turn({"type": "semantic_vad", "createResponse": False}) == {
        "type": "semantic_vad",
        "create_response": False,
    }


def test_turn_detection_null_means_manual_turns() -> None:
    assert turn(None) is None
    assert (
        wire(normalize({"turnDetection": None}))["session"]["audio"]["input"]["turn_detection"]
        is None
    )


def test_empty_turn_detection_is_as_if_absent() -> None:
    assert normalize({"turn_detection": {}}) == normalize({})
    assert normalize({"turn_detection": {}}, defaults=False) == M.RealtimeSession()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"silence_duration_ms": 300}, {"type": "server_vad", "silence_duration_ms": 300}),
        ({"threshold": 1}, {"type": "server_vad", "threshold": 1.0}),
        ({"createResponse": False}, {"type": "server_vad", "create_response": False}),
        ({"eagerness": "high"}, {"type": "semantic_vad", "eagerness": "high"}),
    ],
)
def test_turn_detection_type_is_inferred(value: Any, expected: Any) -> None:
    assert turn(value) == expected


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"type": "push_to_talk"}, "t.type"),
        ({"type": None}, "t.type"),
        ({"type": "server_vad", "threshold": 1.5}, "t.threshold"),
        ({"type": "server_vad", "threshold": -0.1}, "t.threshold"),
        ({"type": "server_vad", "threshold": True}, "t.threshold"),
        ({"type": "server_vad", "threshold": math.nan}, "t.threshold"),
        ({"type": "server_vad", "threshold": "0.5"}, "t.threshold"),
        ({"type": "server_vad", "threshold": None}, "t.threshold"),
        ({"type": "server_vad", "prefixPaddingMs": -1}, "t.prefixPaddingMs"),
        ({"type": "server_vad", "silence_duration_ms": 2.5}, "t.silence_duration_ms"),
        ({"type": "server_vad", "silence_duration_ms": False}, "t.silence_duration_ms"),
        ({"type": "server_vad", "idle_timeout_ms": -5}, "t.idle_timeout_ms"),
        ({"type": "server_vad", "create_response": "yes"}, "t.create_response"),
        ({"type": "server_vad", "interruptResponse": 0}, "t.interruptResponse"),
        ({"type": "server_vad", "eagerness": "low"}, "t.eagerness"),
        ({"type": "semantic_vad", "eagerness": "fast"}, "t.eagerness"),
        ({"type": "semantic_vad", "threshold": 0.5}, "t.threshold"),
        ({"type": "semantic_vad", "prefix_padding_ms": 300}, "t.prefix_padding_ms"),
        ({"type": "semantic_vad", "silenceDurationMs": 300}, "t.silenceDurationMs"),
        ({"type": "semantic_vad", "idle_timeout_ms": None}, "t.idle_timeout_ms"),
        ({"eagerness": "low", "threshold": 0.5}, "t.threshold"),
        ({"type": "server_vad", "modelVersion": ""}, "t.modelVersion"),
        ({"type": "semantic_vad", "model_version": 2}, "t.model_version"),
        ({"type": "semantic_vad", "model_version": None}, "t.model_version"),
        ({"type": "server_vad", "bogus": 1}, "t.bogus"),
        ({"type": "semantic_vad", "modelVersions": "v2"}, "t.modelVersions"),
        ("server_vad", "t"),
    ],
)
def test_bad_turn_detection(value: Any, path: str) -> None:
    fails({"turn_detection": value}, "turn_detection" + path.removeprefix("t"))


@pytest.mark.parametrize("kind", ["server_vad", "semantic_vad"])
@pytest.mark.parametrize("key", ["model_version", "modelVersion"])
def test_turn_detection_model_version(kind: str, key: str) -> None:
    # JS PR #968: modelVersion -> model_version, on either VAD type
    assert turn({"type": kind, key: "default"}) == {"type": kind, "model_version": "default"}
    typed = normalize({"turnDetection": {"type": kind, key: "v2"}}, defaults=False)
    expected = M.ServerVad if kind == "server_vad" else M.SemanticVad
    assert typed == M.RealtimeSession(
        audio=M.AudioConfig(input=M.AudioInput(turn_detection=expected(model_version="v2")))
    )
    assert normalize(typed) is typed


def test_turn_detection_model_version_spellings_must_agree() -> None:
    value = {"type": "server_vad", "model_version": "a", "modelVersion": "a"}
    assert turn(value) == {"type": "server_vad", "model_version": "a"}
    value = {"type": "server_vad", "model_version": "a", "modelVersion": "b"}
    error = fails({"turn_detection": value}, "turn_detection.modelVersion")
    assert "turn_detection.model_version" in error.message


def test_unknown_turn_detection_keys_are_refused() -> None:
    # Deliberately unlike the JS SDK (which keeps them): ServerVad/SemanticVad cannot carry
    # undeclared keys, so passing one would drop it silently; the service refuses it anyway.
    error = fails(
        {"audio": {"input": {"turnDetection": {"type": "server_vad", "futureKnob": 1}}}},
        "audio.input.turnDetection.futureKnob",
    )
    assert "unknown field" in error.message and "model_version" in error.message


def test_turn_detection_rule_messages() -> None:
    error = fails(
        {"turnDetection": {"type": "semantic_vad", "threshold": 0.5}}, "turnDetection.threshold"
    )
    assert "server_vad" in error.message
    error = fails(
        {"turnDetection": {"type": "server_vad", "eagerness": "low"}}, "turnDetection.eagerness"
    )
    assert "semantic_vad" in error.message


# --- input transcription --------------------------------------------------------------------

EXTRAS = {
    "model": "gpt-live-transcribe",
    "language": "ja",
    "prompt": "LegalOn",
    "delay": "low",
    "keywords": ["LegalOn", "TomoniAI", ""],
    "languages": ["ja", "en"],
}


T_PATH = "audio.input.transcription"


def transcription_at(config: Any) -> Any:
    return wire(normalize(config, defaults=False))["session"]["audio"]["input"]["transcription"]


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda t: {"audio": {"input": {"transcription": t}}}, id="nested"),
        pytest.param(
            lambda t: {"audio": {"input": {"transcription": t}}, "voice": "v"}, id="voice"
        ),
        pytest.param(lambda t: {"input_audio_transcription": t}, id="flat"),
        pytest.param(lambda t: {"inputAudioTranscription": t}, id="flatCamel"),
    ],
)
def test_transcription_extra_fields_pass_through(shape: Any) -> None:
    # as the JS SDK test "forwards GA input audio transcription options": sent unchanged
    # (the field names are single words, so camelCase spells them the same)
    assert transcription_at(shape(EXTRAS)) == EXTRAS
    only = {"model": "gpt-realtime-whisper", "delay": "xhigh"}
    assert transcription_at(shape(only)) == only
    empty = {"model": "gpt-transcribe", "keywords": [], "languages": []}
    assert transcription_at(shape(empty)) == empty


def test_transcription_extra_fields_are_typed_and_optional() -> None:
    session = normalize({"audio": {"input": {"transcription": EXTRAS}}}, defaults=False)
    assert session == M.RealtimeSession(
        audio=M.AudioConfig(input=M.AudioInput(transcription=M.InputTranscription(**EXTRAS)))
    )
    assert normalize(session) is session
    assert normalize(msgspec.to_builtins(session), defaults=False) == session
    # absent means absent on the wire, as before
    assert msgspec.to_builtins(M.InputTranscription(model="whisper-1")) == {"model": "whisper-1"}


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"delay": "fast"}, "t.delay"),
        ({"delay": 300}, "t.delay"),
        ({"delay": None}, "t.delay"),
        ({"delay": {"ms": 300}}, "t.delay"),
        ({"keywords": "LegalOn"}, "t.keywords"),
        ({"keywords": ["LegalOn", 1]}, "t.keywords[1]"),
        ({"keywords": None}, "t.keywords"),
        ({"languages": "en"}, "t.languages"),
        ({"languages": ["en", None]}, "t.languages[1]"),
        ({"languages": {"en": 1}}, "t.languages"),
        ({"keyword": ["x"]}, "t.keyword"),
    ],
)
def test_bad_transcription_extra_fields(extra: dict[str, Any], path: str) -> None:
    value = {"model": "gpt-transcribe", **extra}
    fails({"audio": {"input": {"transcription": value}}}, path.replace("t", T_PATH, 1))
    fails({"inputAudioTranscription": value}, path.replace("t", "inputAudioTranscription", 1))


def test_bad_delay_lists_the_values() -> None:
    error = fails(
        {"input_audio_transcription": {"model": "m", "delay": "fast"}},
        "input_audio_transcription.delay",
    )
    assert "minimal, low, medium, high, xhigh" in error.message


def test_server_echo_with_the_new_fields_round_trips() -> None:
    # a session.updated carrying the new fields (nulls too, as an echo might) parses to the
    # typed fields and serialises back to the same text, in both dialects
    echoed = {**EXTRAS, "delay": None, "keywords": None}
    text = json.dumps(
        {
            "type": "session.updated",
            "event_id": "event_1",
            "session": {
                "type": "realtime",
                "object": "realtime.session",
                "id": "sess_1",
                "audio": {
                    "input": {
                        "transcription": echoed,
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": 0.5,
                            "model_version": "default",
                        },
                    }
                },
            },
        },
        separators=(",", ":"),
    )
    for dialect in rtproto.Dialect:
        if dialect is rtproto.Dialect.GA:
            source = text
        else:  # the same event as a beta server sends it
            source = rtproto.serialize_server_event(
                rtproto.parse_server_event(text), dialect=dialect
            )
        event = rtproto.parse_server_event(source, dialect=dialect)
        assert isinstance(event, SessionUpdated)
        assert event.session == M.RealtimeSession(
            object="realtime.session",
            id="sess_1",
            audio=M.AudioConfig(
                input=M.AudioInput(
                    transcription=M.InputTranscription(**echoed),
                    turn_detection=M.ServerVad(threshold=0.5, model_version="default"),
                )
            ),
        )
        assert rtproto.serialize_server_event(event, dialect=dialect) == source
    assert json.loads(
        rtproto.serialize_server_event(rtproto.parse_server_event(text))
    ) == json.loads(text)


# --- other validated fields -------------------------------------------------------------------


@pytest.mark.parametrize("speed", [0.25, 1, 1.5])
def test_speed_in_range(speed: float) -> None:
    result = normalize({"audio": {"output": {"speed": speed}}}, defaults=False)
    assert wire(result)["session"]["audio"]["output"]["speed"] == speed


@pytest.mark.parametrize("speed", [0.24, 1.51, 0, -1, math.inf, math.nan, "1.0", None, True])
def test_speed_out_of_range(speed: Any) -> None:
    fails({"audio": {"output": {"speed": speed}}}, "audio.output.speed")
    fails({"speed": speed}, "speed")


@pytest.mark.parametrize("value", [1, 4096, "inf"])
def test_max_output_tokens_valid(value: Any) -> None:
    assert normalize({"maxOutputTokens": value}).max_output_tokens == value


@pytest.mark.parametrize("value", [0, 4097, -1, "Infinity", 10.0, True, None, math.inf])
def test_max_output_tokens_invalid(value: Any) -> None:
    fails({"max_output_tokens": value}, "max_output_tokens")


def test_count_errors_name_the_bounds() -> None:
    capped = fails({"max_output_tokens": 4097}, "max_output_tokens").message
    assert "must be an integer from 1 to 4096, got 4097" in capped
    path = "audio.input.turn_detection.idle_timeout_ms"
    vad = {"type": "server_vad", "idle_timeout_ms": -5}
    open_ended = fails({"audio": {"input": {"turn_detection": vad}}}, path).message
    assert "must be an integer of at least 0, got -5" in open_ended


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "f"}, M.ToolChoiceFunction(name="f")),
        ({"type": "mcp", "serverLabel": "s"}, M.ToolChoiceMcp(server_label="s")),
        (
            {"type": "mcp", "server_label": "s", "name": "t"},
            M.ToolChoiceMcp(server_label="s", name="t"),
        ),
    ],
)
def test_tool_choice(value: Any, expected: Any) -> None:
    assert normalize({"tool_choice": value}).tool_choice == expected


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("any", "tool_choice"),
        (None, "tool_choice"),
        ({"type": "function"}, "tool_choice.name"),
        ({"type": "function", "name": ""}, "tool_choice.name"),
        ({"type": "function", "name": "f", "x": 1}, "tool_choice.x"),
        ({"type": "mcp", "name": "t"}, "tool_choice.server_label"),
        ({"type": "mcp", "server_label": "s", "name": 3}, "tool_choice.name"),
        ({"type": "file_search"}, "tool_choice.type"),
        ({"name": "f"}, "tool_choice.type"),
    ],
)
def test_bad_tool_choice(value: Any, path: str) -> None:
    fails({"tool_choice": value}, path)


def test_function_tools_are_whitelisted() -> None:
    tools = [
        {"type": "function", "name": "a", "strict": True, "outputSchema": {}, "x": 1},
        {"type": "function", "name": "b", "description": "B", "parameters": {"type": "object"}},
    ]
    assert wire(normalize({"tools": tools}, defaults=False))["session"]["tools"] == [
        {"type": "function", "name": "a"},
        {"type": "function", "name": "b", "description": "B", "parameters": {"type": "object"}},
    ]


def test_mcp_tools_keep_the_documented_keys() -> None:
    tools = [
        {"type": "mcp", "serverLabel": "a", "connectorId": "connector_gmail", "x": 1},
        {"type": "mcp", "server_label": "b", "tunnel_id": "t", "allowedTools": ["x", "y"]},
        {
            "type": "mcp",
            "server_label": "c",
            "server_url": "u",
            "require_approval": "never",
            "allowed_tools": None,
            "headers": None,
        },
        {"type": "mcp", "server_label": "d", "server_url": "u", "requireApproval": None},
        {
            "type": "mcp",
            "server_label": "e",
            "server_url": "u",
            "requireApproval": {"always": {"toolNames": ["rm"], "readOnly": False}},
        },
    ]
    assert wire(normalize({"tools": tools}, defaults=False))["session"]["tools"] == [
        {"type": "mcp", "server_label": "a", "connector_id": "connector_gmail"},
        {"type": "mcp", "server_label": "b", "tunnel_id": "t", "allowed_tools": ["x", "y"]},
        {
            "type": "mcp",
            "server_label": "c",
            "server_url": "u",
            "allowed_tools": None,
            "require_approval": "never",
            "headers": None,
        },
        {"type": "mcp", "server_label": "d", "server_url": "u", "require_approval": None},
        {
            "type": "mcp",
            "server_label": "e",
            "server_url": "u",
            "require_approval": {"always": {"tool_names": ["rm"], "read_only": False}},
        },
    ]


MCP = {"type": "mcp", "server_label": "s", "server_url": "u"}


@pytest.mark.parametrize(
    ("tools", "path"),
    [
        ("f", "tools"),
        ({"type": "function", "name": "f"}, "tools"),
        (None, "tools"),
        ([{"type": "function"}], "tools[0].name"),
        ([{"type": "function", "name": ""}], "tools[0].name"),
        ([{"type": "function", "name": "f", "description": 1}], "tools[0].description"),
        ([{"type": "function", "name": "f", "parameters": "{}"}], "tools[0].parameters"),
        ([{"type": "function", "name": "f", "parameters": {1: "x"}}], "tools[0].parameters"),
        ([{"name": "f"}], "tools[0].type"),
        (["f"], "tools[0]"),
        ([{"type": "hosted_mcp", "name": "f"}], "tools[0].type"),
        ([{"type": "function", "name": "f"}, {"type": "function", "name": "f"}], "tools[1].name"),
        ([MCP, {**MCP, "server_url": "v"}], "tools[1].server_label"),
        ([{"type": "mcp", "server_label": "s"}], "tools[0]"),
        ([{**MCP, "connector_id": "c"}], "tools[0].connector_id"),
        ([{"type": "mcp", "server_url": "u"}], "tools[0].server_label"),
        ([{**MCP, "server_url": ""}], "tools[0].server_url"),
        ([{**MCP, "allowed_tools": "x"}], "tools[0].allowed_tools"),
        ([{**MCP, "allowed_tools": [1]}], "tools[0].allowed_tools[0]"),
        ([{**MCP, "allowed_tools": {"names": ["x"]}}], "tools[0].allowed_tools.names"),
        ([{**MCP, "require_approval": "sometimes"}], "tools[0].require_approval"),
        ([{**MCP, "require_approval": {"maybe": {}}}], "tools[0].require_approval.maybe"),
        (
            [{**MCP, "require_approval": {"never": {"read_only": "yes"}}}],
            "tools[0].require_approval.never.read_only",
        ),
        ([{**MCP, "headers": {"a": 1}}], "tools[0].headers.a"),
        ([{**MCP, "authorization": None}], "tools[0].authorization"),
    ],
)
def test_bad_tools(tools: Any, path: str) -> None:
    fails({"tools": tools}, path)


def test_function_and_mcp_names_are_separate() -> None:
    tools = [{"type": "function", "name": "s"}, {**MCP, "server_label": "s"}]
    result = normalize({"tools": tools})
    assert isinstance(result.tools, list) and len(result.tools) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", "auto"),
        ("disabled", "disabled"),
        (
            {"type": "retention_ratio", "retentionRatio": 0},
            M.RetentionRatioTruncation(retention_ratio=0.0),
        ),
        (
            {
                "type": "retention_ratio",
                "retention_ratio": 1,
                "tokenLimits": {"postInstructions": 5},
            },
            M.RetentionRatioTruncation(
                retention_ratio=1.0, token_limits=M.TokenLimits(post_instructions=5)
            ),
        ),
        (
            {"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": {}},
            M.RetentionRatioTruncation(retention_ratio=0.5, token_limits=M.TokenLimits()),
        ),
    ],
)
def test_truncation(value: Any, expected: Any) -> None:
    assert normalize({"truncation": value}).truncation == expected


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("on", "truncation"),
        (None, "truncation"),
        ({"retention_ratio": 0.5}, "truncation.type"),
        ({"type": "tokens", "retention_ratio": 0.5}, "truncation.type"),
        ({"type": "retention_ratio"}, "truncation.retention_ratio"),
        ({"type": "retention_ratio", "retention_ratio": 1.1}, "truncation.retention_ratio"),
        ({"type": "retention_ratio", "retention_ratio": -0.1}, "truncation.retention_ratio"),
        (
            {"type": "retention_ratio", "retention_ratio": 0.5, "token_limits": {"x": 1}},
            "truncation.token_limits.x",
        ),
        (
            {
                "type": "retention_ratio",
                "retention_ratio": 0.5,
                "token_limits": {"post_instructions": -1},
            },
            "truncation.token_limits.post_instructions",
        ),
    ],
)
def test_bad_truncation(value: Any, path: str) -> None:
    fails({"truncation": value}, path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ({}, M.TracingConfig()),
        ({"workflowName": "w", "groupId": "g"}, M.TracingConfig(workflow_name="w", group_id="g")),
    ],
)
def test_tracing(value: Any, expected: Any) -> None:
    assert normalize({"tracing": value}).tracing == expected


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("on", "tracing"),
        ({"workflow_name": 1}, "tracing.workflow_name"),
        ({"metadata": [1]}, "tracing.metadata"),
        ({"name": "x"}, "tracing.name"),
    ],
)
def test_bad_tracing(value: Any, path: str) -> None:
    fails({"tracing": value}, path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ({"id": "p"}, M.PromptReference(id="p")),
        (
            {"promptId": "p", "version": None, "variables": None},
            M.PromptReference(id="p", version=None, variables=None),
        ),
        (
            {"prompt_id": "p", "variables": {"a": "b"}},
            M.PromptReference(id="p", variables={"a": "b"}),
        ),
    ],
)
def test_prompt(value: Any, expected: Any) -> None:
    assert normalize({"prompt": value}).prompt == expected


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({}, "prompt.id"),
        ({"id": ""}, "prompt.id"),
        ({"id": "p", "version": 2}, "prompt.version"),
        ({"id": "p", "variables": "x"}, "prompt.variables"),
        ("pmpt_1", "prompt"),
    ],
)
def test_bad_prompt(value: Any, path: str) -> None:
    fails({"prompt": value}, path)


def test_include_and_reasoning_and_parallel_tool_calls() -> None:
    result = normalize(
        {"include": None, "reasoning": None, "parallelToolCalls": True}, defaults=False
    )
    assert (result.include, result.reasoning, result.parallel_tool_calls) == (None, None, True)
    assert normalize({"include": []}).include == []
    assert normalize({"reasoning": {"effort": None}}).reasoning == M.Reasoning(effort=None)
    assert normalize({"reasoning": {"effort": "xhigh"}}).reasoning == M.Reasoning(effort="xhigh")
    assert normalize({"reasoning": {}}).reasoning == M.Reasoning()


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"include": ["logprobs"]}, "include[0]"),
        ({"include": "item.input_audio_transcription.logprobs"}, "include"),
        ({"reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"reasoning": "high"}, "reasoning"),
        ({"parallel_tool_calls": "true"}, "parallel_tool_calls"),
        ({"instructions": None}, "instructions"),
        ({"instructions": 3}, "instructions"),
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"voice": ""}, "voice"),
        ({"voice": None}, "voice"),
        ({"voice": {}}, "voice.id"),
        ({"voice": {"id": 3}}, "voice.id"),
        ({"voice": {"id": "v", "name": "n"}}, "voice.name"),
        ({"audio": None}, "audio"),
        ({"audio": {"input": None}}, "audio.input"),
        ({"audio": {"mixer": {}}}, "audio.mixer"),
        ({"audio": {"input": {"speed": 1.0}}}, "audio.input.speed"),
        ({"audio": {"output": {"transcription": None}}}, "audio.output.transcription"),
        (
            {"audio": {"input": {"noiseReduction": {"type": "studio"}}}},
            "audio.input.noiseReduction.type",
        ),
        ({"audio": {"input": {"noise_reduction": {}}}}, "audio.input.noise_reduction.type"),
        ({"audio": {"input": {"noise_reduction": "near_field"}}}, "audio.input.noise_reduction"),
        (
            {"audio": {"input": {"noise_reduction": {"type": "far_field", "strength": -1}}}},
            "audio.input.noise_reduction.strength",
        ),
        ({"input_audio_transcription": {}}, "input_audio_transcription.model"),
        ({"input_audio_transcription": {"model": ""}}, "input_audio_transcription.model"),
        (
            {"input_audio_transcription": {"model": "m", "language": 1}},
            "input_audio_transcription.language",
        ),
        (
            {"input_audio_transcription": {"model": "m", "delays": "low"}},
            "input_audio_transcription.delays",
        ),
        ({"input_audio_transcription": "whisper-1"}, "input_audio_transcription"),
    ],
)
def test_bad_fields(config: dict[str, Any], path: str) -> None:
    fails(config, path)


def test_noise_reduction_strength() -> None:
    value = {"type": "near_field", "strength": 0.5}
    result = normalize({"audio": {"input": {"noise_reduction": value}}}, defaults=False)
    assert wire(result)["session"]["audio"]["input"]["noise_reduction"] == value
    value = {"type": "near_field", "strength": None}
    result = normalize({"audio": {"input": {"noise_reduction": value}}}, defaults=False)
    assert wire(result)["session"]["audio"]["input"]["noise_reduction"] == value


# --- unknown keys and provider_data -----------------------------------------------------------


@pytest.mark.parametrize("key", ["temperature", "foo", "input_audio_format_x", "OutputModalities"])
def test_unknown_top_level_keys_point_at_provider_data(key: str) -> None:
    error = fails({key: 1}, key)
    assert "provider_data" in error.message
    assert error.hint == "provider_data"


def test_temperature_is_named_as_a_raw_field() -> None:
    assert "set this" in fails({"temperature": 0.8}, "temperature").message
    assert "set this" not in fails({"foo": 0.8}, "foo").message


def test_nested_unknown_keys_list_the_expected_ones() -> None:
    error = fails({"audio": {"output": {"volume": 1}}}, "audio.output.volume")
    assert "format, speed, voice" in error.message
    assert error.hint is None


def test_provider_data_is_merged_as_is() -> None:
    config = {
        "instructions": "given",
        "providerData": {"temperature": 0.8, "instructions": "raw", "include": None},
    }
    result = normalize(config, defaults=False)
    assert wire(result)["session"] == {
        "type": "realtime",
        "include": None,
        "instructions": "raw",
        "temperature": 0.8,
    }
    raw_audio = {"audio": {"output": {"speed": 9.0}}}  # raw: type-checked, not range-checked
    assert wire(normalize({"provider_data": raw_audio}))["session"]["audio"] == raw_audio["audio"]


def test_given_prompt_and_tools_win_over_provider_data() -> None:
    """The JS SDK spreads providerData, then sets prompt and tools when given."""
    given = {"type": "function", "name": "given", "parameters": {}}
    raw = {"type": "function", "name": "raw", "parameters": {}}
    config = {
        "tools": [given],
        "prompt": {"id": "pmpt_given"},
        "instructions": "given",
        "providerData": {"tools": [raw], "prompt": {"id": "pmpt_raw"}, "instructions": "raw"},
    }
    session = wire(normalize(config, defaults=False))["session"]
    assert [tool["name"] for tool in session["tools"]] == ["given"]
    assert session["prompt"] == {"id": "pmpt_given"}
    assert session["instructions"] == "raw"  # every other field is replaced
    alone = {"providerData": {"tools": [raw], "prompt": {"id": "pmpt_raw"}}}
    session = wire(normalize(alone, defaults=False))["session"]
    assert [tool["name"] for tool in session["tools"]] == ["raw"]
    assert session["prompt"] == {"id": "pmpt_raw"}


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"foo": 1}, "provider_data.foo"),
        ({"type": "realtime"}, "provider_data.type"),
        ({"temperature": "hot"}, "provider_data"),
        ({1: 2}, "provider_data"),
        ([("temperature", 1.0)], "provider_data"),
        # typing ignores undeclared nested keys: they must not vanish in silence
        (
            {"audio": {"input": {"turn_detection": {"type": "server_vad", "foo": 1}}}},
            "provider_data.audio.input.turn_detection.foo",
        ),
        (
            {"tools": [{"type": "function", "name": "f", "bogus": 1}]},
            "provider_data.tools[0].bogus",
        ),
    ],
)
def test_bad_provider_data(data: Any, path: str) -> None:
    error = fails({"provider_data": data}, path)
    if data == {"temperature": "hot"}:
        assert "provider_data.temperature" in error.message


@pytest.mark.parametrize(
    ("config", "path"),
    [
        (["instructions"], "session"),
        ("instructions", "session"),
        ({1: "x"}, "session"),
        ({"audio": {1: {}}}, "audio"),
        (M.TranscriptionSession(), "type"),
    ],
)
def test_bad_config_objects(config: Any, path: str) -> None:
    fails(config, path)


def test_every_error_names_session_update() -> None:
    with pytest.raises(LocalProtocolError) as info:
        normalize({"audio": {"output": {"speed": 2}}})
    assert info.value.event_type == "session.update"
    assert "audio.output.speed" in str(info.value)
    assert info.value.excerpt == "2"


# --- properties -------------------------------------------------------------------------------


def _maybe(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


NAMES = st.text("abcdefghij_", min_size=1, max_size=8)
TURN = st.one_of(
    st.none(),
    _maybe(
        threshold=st.floats(0, 1),
        prefix_padding_ms=st.integers(0, 2000),
        silence_duration_ms=st.integers(0, 2000),
        idle_timeout_ms=st.none() | st.integers(0, 10**6),
        create_response=st.booleans(),
        interrupt_response=st.booleans(),
        model_version=NAMES,
    ).map(lambda d: {"type": "server_vad", **d}),
    _maybe(
        eagerness=st.sampled_from(["low", "medium", "high", "auto"]),
        create_response=st.booleans(),
        interrupt_response=st.booleans(),
        model_version=NAMES,
    ).map(lambda d: {"type": "semantic_vad", **d}),
)
FORMAT = st.sampled_from(["pcm16", "g711_ulaw", "audio/pcma", {"type": "audio/pcm", "rate": 24000}])
TOOLS = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("function"), "name": NAMES},
        optional={"description": st.text(max_size=5), "parameters": st.just({"type": "object"})},
    ),
    max_size=3,
    unique_by=lambda tool: str(tool["name"]),
)
GA_CONFIGS = _maybe(
    model=NAMES,
    instructions=st.text(max_size=10),
    output_modalities=st.sampled_from([["audio"], ["text"]]),
    voice=NAMES,
    audio=_maybe(
        input=_maybe(
            format=FORMAT,
            noise_reduction=st.none()
            | st.sampled_from([{"type": "near_field"}, {"type": "far_field"}]),
            transcription=st.none()
            | _maybe(
                language=st.none() | NAMES,
                delay=st.sampled_from(["minimal", "low", "medium", "high", "xhigh"]),
                keywords=st.lists(st.text(max_size=5), max_size=3),
                languages=st.lists(NAMES, max_size=3),
            ).map(lambda d: {"model": "whisper-1", **d}),
            turn_detection=TURN,
        ),
        output=_maybe(format=FORMAT, speed=st.floats(0.25, 1.5)),
    ),
    tools=TOOLS,
    tool_choice=st.sampled_from(["auto", "none", "required"]),
    max_output_tokens=st.integers(1, 4096) | st.just("inf"),
    tracing=st.sampled_from([None, "auto", {"workflow_name": "w"}]),
    truncation=st.sampled_from(
        ["auto", "disabled", {"type": "retention_ratio", "retention_ratio": 0.25}]
    ),
    prompt=st.none() | st.just({"id": "pmpt_1", "variables": {"snake_key": "v"}}),
    include=st.none() | st.just(["item.input_audio_transcription.logprobs"]),
    reasoning=st.none() | st.just({"effort": "low"}),
    parallel_tool_calls=st.booleans(),
)

_OPAQUE = {"parameters", "metadata", "variables", "headers"}


def camelize(value: Any) -> Any:
    """The same configuration spelled in camelCase (opaque user objects untouched)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            head, *rest = key.split("_")
            camel = head + "".join(part.capitalize() for part in rest)
            out[camel] = item if key in _OPAQUE else camelize(item)
        return out
    if isinstance(value, list):
        return [camelize(item) for item in value]
    return value


@settings(max_examples=200, deadline=None)
@given(GA_CONFIGS, st.booleans())
def test_camel_case_means_the_same(config: dict[str, Any], defaults: bool) -> None:
    assert normalize(camelize(config), defaults=defaults) == normalize(config, defaults=defaults)


@settings(max_examples=200, deadline=None)
@given(GA_CONFIGS, st.booleans())
def test_normalising_is_idempotent(config: dict[str, Any], defaults: bool) -> None:
    session = normalize(config, defaults=defaults)
    assert normalize(session) is session  # the typed path accepts its own output
    again = normalize(msgspec.to_builtins(session), defaults=False)
    assert again == session
    for key in ("output_modalities", "model", "instructions", "tools"):
        if key in config:
            assert getattr(session, key) is not msgspec.UNSET


VOCABULARY = sorted(
    {
        "type",
        "model",
        "instructions",
        "output_modalities",
        "outputModalities",
        "audio",
        "input",
        "output",
        "format",
        "voice",
        "speed",
        "turn_detection",
        "turnDetection",
        "noise_reduction",
        "transcription",
        "tools",
        "tool_choice",
        "name",
        "rate",
        "id",
        "threshold",
        "eagerness",
        "modalities",
        "input_audio_format",
        "provider_data",
        "truncation",
        "retention_ratio",
        "prompt",
        "include",
        "reasoning",
        "effort",
        "tracing",
        "server_label",
        "server_url",
        "max_output_tokens",
        "require_approval",
        "allowed_tools",
        "delay",
        "keywords",
        "languages",
        "model_version",
    }
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(allow_nan=True)
    | st.sampled_from(
        [
            "audio",
            "text",
            "pcm16",
            "audio/pcm",
            "server_vad",
            "semantic_vad",
            "function",
            "mcp",
            "auto",
            "inf",
            "",
            "x",
        ]
    )
)
JUNK = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(VOCABULARY), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(VOCABULARY), JUNK, max_size=5), st.booleans())
def test_junk_is_accepted_or_refused_cleanly(config: dict[str, Any], defaults: bool) -> None:
    try:
        session = normalize(config, defaults=defaults)
    except LocalProtocolError as error:
        assert error.event_type == "session.update"
        assert ": " in error.message
    else:
        assert isinstance(session, M.RealtimeSession)
        json.loads(rtproto.serialize_client_event(SessionUpdate(session=session)))


def test_a_sip_call_is_accepted_with_the_defaults_but_no_audio_format() -> None:
    """As the JS SDK's OpenAIRealtimeSIP.buildInitialConfig: a call's audio is the line's."""
    session = sip_accept_session({"instructions": "Hi.", "voice": "marin"}, model="gpt-realtime")
    body = json.loads(msgspec.json.encode(session))
    assert body == {
        "type": "realtime",
        "model": "gpt-realtime",
        "output_modalities": ["audio"],
        "instructions": "Hi.",
        "audio": {
            "input": {
                "noise_reduction": None,
                "transcription": {"model": DEFAULT_TRANSCRIPTION_MODEL},
                "turn_detection": {"type": "semantic_vad"},
            },
            "output": {"voice": "marin", "speed": 1.0},
        },
    }
    allowed = {"type": "server_vad", "create_response": True, "idle_timeout_ms": 6000}
    kept = sip_accept_session({"audio": {"input": {"turn_detection": allowed}}})
    assert json.loads(msgspec.json.encode(kept))["audio"]["input"]["turn_detection"] == allowed
    assert sip_accept_session({"turn_detection": None}).audio.input.turn_detection is None
    typed = M.RealtimeSession(instructions="Hi.")  # a typed session is taken as it is
    assert sip_accept_session(typed) is typed
    tuned = M.AudioInput(turn_detection=M.ServerVad(threshold=0.5))
    with pytest.raises(LocalProtocolError, match="threshold cannot be set for a SIP call"):
        sip_accept_session(M.RealtimeSession(audio=M.AudioConfig(input=tuned)))


@pytest.mark.parametrize(
    ("turn_detection", "named"),
    [
        ({"type": "server_vad", "threshold": 0.6}, "threshold"),
        ({"prefixPaddingMs": 200}, "prefix_padding_ms"),
        ({"silence_duration_ms": 400, "threshold": 0.5}, "threshold, silence_duration_ms"),
    ],
)
def test_a_sip_call_refuses_turn_detection_tuning(turn_detection: Any, named: str) -> None:
    """The Calls API refuses these for a SIP call: refused before the request, named."""
    with pytest.raises(LocalProtocolError) as info:
        sip_accept_session({"turnDetection": turn_detection})
    assert info.value.message == (
        f"audio.input.turn_detection: {named} cannot be set for a SIP call (the Calls API"
        " refuses turn-detection tuning there)"
    )
    assert info.value.hint == "leave them to the service's defaults"
