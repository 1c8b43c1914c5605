"""Strict validation of client events, with the service's error codes and messages.

The service validates every client event against its schema and answers the first problem
with an ``error`` event (spec sections 5.4 and 6.2): an unknown key at any level is
``unknown_parameter`` with the dotted path as ``param``, an enumeration violation is
``invalid_value`` with the message ``Invalid value: 'x'. Supported values are: 'a', 'b', and
'c'.``, a missing key is ``missing_required_parameter``. Type and range errors use the wording
of the other OpenAI endpoints (``invalid_type``, ``integer_above_max_value``...), which the
Realtime spec does not record: those are approximations.

The schemas are small trees of :class:`Node` objects; :meth:`Node.check` raises
:class:`Reject` for the first problem and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "FORMAT",
    "ITEM",
    "RESPONSE_PARAMS",
    "SESSION",
    "TOOL",
    "TOOL_CHOICE",
    "Reject",
    "check_session_config",
    "invalid_value",
    "missing",
    "supported",
    "unknown",
]


class Reject(Exception):
    """One client-event problem, as the ``error`` object will carry it."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def _shown(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value)


def supported(values: Sequence[object]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'`` (the service's list style)."""
    shown = [_shown(v) for v in values]
    if len(shown) <= 2:
        return " and ".join(shown)
    return ", ".join(shown[:-1]) + ", and " + shown[-1]


def unknown(path: str) -> Reject:
    """``unknown_parameter`` for ``path``."""
    return Reject("unknown_parameter", f"Unknown parameter: '{path}'.", path)


def missing(path: str) -> Reject:
    """``missing_required_parameter`` for ``path``."""
    return Reject("missing_required_parameter", f"Missing required parameter: '{path}'.", path)


def invalid_value(value: object, allowed: Sequence[object], path: str) -> Reject:
    """``invalid_value`` listing the supported values."""
    return Reject(
        "invalid_value",
        f"Invalid value: {_shown(value)}. Supported values are: {supported(allowed)}.",
        path,
    )


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def invalid_type(path: str, expected: str, value: object) -> Reject:
    """``invalid_type`` in the wording of the other OpenAI endpoints (approximation)."""
    return Reject(
        "invalid_type",
        f"Invalid type for '{path}': expected {expected}, but got {_kind(value)} instead.",
        path,
    )


def join(path: str, key: str) -> str:
    """``path.key`` (or ``key`` at the root)."""
    return f"{path}.{key}" if path else key


class Node:
    """A schema node: ``check`` raises :class:`Reject` when the value does not match."""

    expected = "a value"

    def check(self, value: Any, path: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class AnyValue(Node):
    """Any JSON value (free-form objects such as JSON Schemas and metadata)."""

    def check(self, value: Any, path: str) -> None:
        pass


class Str(Node):
    """A string, optionally at most ``max_length`` characters."""

    expected = "a string"

    def __init__(self, max_length: int | None = None) -> None:
        self.max_length = max_length

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise invalid_type(path, self.expected, value)
        if self.max_length is not None and len(value) > self.max_length:
            raise Reject(
                "string_above_max_length",
                f"Invalid '{path}': string too long. Expected a string with maximum length "
                f"{self.max_length}, but got a string with length {len(value)} instead.",
                path,
            )


class Bool(Node):
    """``true`` or ``false``."""

    expected = "a boolean"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise invalid_type(path, self.expected, value)


class Number(Node):
    """A number within ``[low, high]``; ``integer`` accepts only whole numbers."""

    def __init__(
        self, low: float | None = None, high: float | None = None, *, integer: bool = False
    ) -> None:
        self.low = low
        self.high = high
        self.integer = integer
        self.expected = "an integer" if integer else "a decimal"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid_type(path, self.expected, value)
        if self.integer and isinstance(value, float) and not value.is_integer():
            raise invalid_type(path, self.expected, value)
        word = "integer" if self.integer else "decimal"
        if self.low is not None and value < self.low:
            raise Reject(
                f"{word}_below_min_value",
                f"Invalid '{path}': {word} below minimum value. Expected a value >= "
                f"{_number(self.low)}, but got {_number(value)} instead.",
                path,
            )
        if self.high is not None and value > self.high:
            raise Reject(
                f"{word}_above_max_value",
                f"Invalid '{path}': {word} above maximum value. Expected a value <= "
                f"{_number(self.high)}, but got {_number(value)} instead.",
                path,
            )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


class Enum(Node):
    """One of a fixed set of strings (or integers)."""

    def __init__(self, *values: str | int) -> None:
        self.values = values
        self.expected = "a string" if isinstance(values[0], str) else "an integer"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or type(value) is not type(self.values[0]):
            raise invalid_type(path, self.expected, value)
        if value not in self.values:
            raise invalid_value(value, self.values, path)


class Nullable(Node):
    """``null`` or the inner node."""

    def __init__(self, inner: Node) -> None:
        self.inner = inner
        self.expected = inner.expected

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            self.inner.check(value, path)


class Array(Node):
    """A list of ``item`` values."""

    expected = "an array"

    def __init__(self, item: Node) -> None:
        self.item = item

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise invalid_type(path, self.expected, value)
        for i, item in enumerate(value):
            self.item.check(item, f"{path}[{i}]")


class Object(Node):
    """An object with known keys (anything else is ``unknown_parameter``)."""

    expected = "an object"

    def __init__(self, fields: Mapping[str, Node], required: Sequence[str] = ()) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise invalid_type(path, self.expected, value)
        for key, item in value.items():
            node = self.fields.get(key)
            if node is None:
                raise unknown(join(path, key))
            node.check(item, join(path, key))
        for key in self.required:
            if key not in value:
                raise missing(join(path, key))


class Map(Node):
    """An object with free keys whose values all match ``value`` (``metadata``)."""

    expected = "an object"

    def __init__(
        self, value: Node, *, max_items: int | None = None, max_key: int | None = None
    ) -> None:
        self.value = value
        self.max_items = max_items
        self.max_key = max_key

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise invalid_type(path, self.expected, value)
        if self.max_items is not None and len(value) > self.max_items:
            raise Reject(
                "object_above_max_properties",
                f"Invalid '{path}': too many properties. Expected an object with at most "
                f"{self.max_items} properties, but got an object with {len(value)} properties "
                "instead.",
                path,
            )
        for key, item in value.items():
            if self.max_key is not None and len(key) > self.max_key:
                raise Reject(
                    "string_above_max_length",
                    f"Invalid '{path}': property name too long. Expected a property name with "
                    f"maximum length {self.max_key}, but got '{key}' instead.",
                    path,
                )
            self.value.check(item, join(path, key))


class Tagged(Node):
    """Objects discriminated by their ``type`` key."""

    expected = "an object"

    def __init__(self, variants: Mapping[str, Node], *, key: str = "type") -> None:
        self.variants = dict(variants)
        self.key = key

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise invalid_type(path, self.expected, value)
        if self.key not in value:
            raise missing(join(path, self.key))
        tag = value[self.key]
        if not isinstance(tag, str):
            raise invalid_type(join(path, self.key), "a string", tag)
        node = self.variants.get(tag)
        if node is None:
            raise invalid_value(tag, list(self.variants), join(path, self.key))
        node.check(value, path)


class Either(Node):
    """A string form or an object form of one setting (``tool_choice``, ``tracing``...)."""

    def __init__(self, text: Node | None = None, obj: Node | None = None) -> None:
        self.text = text
        self.obj = obj
        kinds = [node.expected for node in (text, obj) if node is not None]
        self.expected = "one of " + " or ".join(kinds)

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and self.text:
            self.text.check(value, path)
        elif isinstance(value, dict) and self.obj is not None:
            self.obj.check(value, path)
        else:
            raise invalid_type(path, self.expected, value)


def _with_type(fields: Mapping[str, Node], required: Sequence[str] = ()) -> Object:
    return Object({"type": Str(), **fields}, required)


# --- session -----------------------------------------------------------------------------------

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
)
EFFORTS = ("minimal", "low", "medium", "high", "xhigh")

FORMAT = Tagged(
    {
        "audio/pcm": _with_type({"rate": Enum(24000)}),
        "audio/pcmu": _with_type({}),
        "audio/pcma": _with_type({}),
    }
)
SERVER_VAD = _with_type(
    {
        "threshold": Number(0.0, 1.0),
        "prefix_padding_ms": Number(0, None, integer=True),
        "silence_duration_ms": Number(0, None, integer=True),
        "idle_timeout_ms": Nullable(Number(0, None, integer=True)),
        "create_response": Bool(),
        "interrupt_response": Bool(),
        # Sent by the JS SDK for its modelVersion option (PR #968); accepted, not verified on
        # the service, whose published schema does not list it.
        "model_version": Str(),
    }
)
SEMANTIC_VAD = _with_type(
    {
        "eagerness": Enum("low", "medium", "high", "auto"),
        "create_response": Bool(),
        "interrupt_response": Bool(),
        "model_version": Str(),
    }
)
TURN_DETECTION = Nullable(Tagged({"server_vad": SERVER_VAD, "semantic_vad": SEMANTIC_VAD}))
TRANSCRIPTION = Nullable(
    Object(
        {
            "model": Enum(*TRANSCRIPTION_MODELS),
            "language": Str(),
            "prompt": Str(),
            "delay": Enum(*EFFORTS),
            "keywords": Array(Str()),
            "languages": Array(Str()),
        }
    )
)
NOISE_REDUCTION = Nullable(
    Object({"type": Enum("near_field", "far_field"), "strength": Number(0.0, None)})
)
VOICE = Either(Enum(*VOICES), Object({"id": Str()}, ["id"]))
AUDIO_INPUT = Object(
    {
        "format": FORMAT,
        "noise_reduction": NOISE_REDUCTION,
        "transcription": TRANSCRIPTION,
        "turn_detection": TURN_DETECTION,
    }
)
AUDIO_OUTPUT = Object({"format": FORMAT, "voice": VOICE, "speed": Number(0.25, 1.5)})

FUNCTION_TOOL = _with_type(
    {"name": Str(), "description": Str(), "parameters": Map(AnyValue())}, ["name"]
)
_TOOL_NAMES = Array(Str())
_TOOL_FILTER = Object({"tool_names": _TOOL_NAMES, "read_only": Bool()})
MCP_TOOL = _with_type(
    {
        "server_label": Str(),
        "server_url": Str(),
        "connector_id": Str(),
        "tunnel_id": Str(),
        "require_approval": Nullable(
            Either(
                Enum("always", "never"),
                Object({"always": Nullable(_TOOL_FILTER), "never": Nullable(_TOOL_FILTER)}),
            )
        ),
        "headers": Nullable(Map(Str())),
        "authorization": Str(),
        "server_description": Str(),
    },
    ["server_label"],
)


class _AllowedTools(Node):
    """``allowed_tools``: a list of names or a filter object."""

    expected = "one of an array or an object"

    def check(self, value: Any, path: str) -> None:
        (_TOOL_NAMES if isinstance(value, list) else _TOOL_FILTER).check(value, path)


MCP_TOOL.fields["allowed_tools"] = Nullable(_AllowedTools())
TOOL = Tagged({"function": FUNCTION_TOOL, "mcp": MCP_TOOL})
TOOL_CHOICE = Either(
    Enum("auto", "none", "required"),
    Tagged(
        {
            "function": _with_type({"name": Str()}, ["name"]),
            "mcp": _with_type({"server_label": Str(), "name": Nullable(Str())}, ["server_label"]),
        }
    ),
)


_INFINITE = Enum("inf")
_TOKEN_COUNT = Number(1, 4096, integer=True)


class _MaxTokens(Node):
    expected = "one of an integer or 'inf'"

    def check(self, value: Any, path: str) -> None:
        (_INFINITE if isinstance(value, str) else _TOKEN_COUNT).check(value, path)


MODALITIES = Array(Enum("text", "audio"))
TRACING = Nullable(
    Either(
        Enum("auto"),
        Object({"workflow_name": Str(), "group_id": Str(), "metadata": Map(AnyValue())}),
    )
)
TRUNCATION = Either(
    Enum("auto", "disabled"),
    Tagged(
        {
            "retention_ratio": _with_type(
                {
                    "retention_ratio": Number(0.0, 1.0),
                    "token_limits": Object({"post_instructions": Number(0, None, integer=True)}),
                },
                ["retention_ratio"],
            )
        }
    ),
)
PROMPT = Nullable(
    Object(
        {
            "id": Str(),
            "version": Nullable(Str()),
            "variables": Nullable(Map(Either(Str(), Map(AnyValue())))),
        },
        ["id"],
    )
)
INCLUDE = Nullable(Array(Enum("item.input_audio_transcription.logprobs")))
REASONING = Nullable(Object({"effort": Nullable(Enum(*EFFORTS))}))

SESSION = Object(
    {
        "type": Str(),
        "model": Str(),
        "output_modalities": MODALITIES,
        "instructions": Str(),
        "audio": Object({"input": AUDIO_INPUT, "output": AUDIO_OUTPUT}),
        "tools": Array(TOOL),
        "tool_choice": TOOL_CHOICE,
        "max_output_tokens": _MaxTokens(),
        "tracing": TRACING,
        "truncation": TRUNCATION,
        "prompt": PROMPT,
        "include": INCLUDE,
        "reasoning": REASONING,
        "parallel_tool_calls": Bool(),
    }
)

#: Top-level keys of a beta (flat) ``session.update.session``.
BETA_SESSION_KEYS = frozenset(
    {
        "model",
        "modalities",
        "instructions",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "turn_detection",
        "tools",
        "tool_choice",
        "temperature",
        "max_response_output_tokens",
        "speed",
        "tracing",
        "truncation",
        "prompt",
        "include",
    }
)
TEMPERATURE = Number(0.6, 1.2)

# --- items --------------------------------------------------------------------------------------

_ITEM_COMMON: dict[str, Node] = {
    "id": Str(),
    "object": Enum("realtime.item"),
    "status": Enum("completed", "incomplete", "in_progress"),
}
INPUT_TEXT = _with_type({"text": Str()}, ["text"])
INPUT_AUDIO = _with_type({"audio": Str(), "transcript": Nullable(Str())}, ["audio"])
INPUT_IMAGE = _with_type({"image_url": Str(), "detail": Enum("auto", "low", "high")}, ["image_url"])
USER_PART = Tagged(
    {"input_text": INPUT_TEXT, "input_audio": INPUT_AUDIO, "input_image": INPUT_IMAGE}
)
SYSTEM_PART = Tagged({"input_text": INPUT_TEXT})


_ASSISTANT_TEXT = Tagged({"output_text": INPUT_TEXT})


class _AssistantPart(Node):
    """Assistant content: text only. ``output_audio`` cannot be created (spec 3.1)."""

    expected = "an object"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise invalid_type(path, self.expected, value)
        kind = value.get("type")
        if kind == "output_audio":
            # what the service answers (openai/openai-agents-js#963): the text is missing
            if "text" not in value:
                raise missing(join(path, "text"))
            raise invalid_value(kind, ["output_text"], join(path, "type"))
        _ASSISTANT_TEXT.check(value, path)


def _message(part: Node) -> Object:
    return _with_type(
        {**_ITEM_COMMON, "role": Enum("user", "assistant", "system"), "content": Array(part)},
        ["role", "content"],
    )


#: A message item by role: what its content may hold (any other role is checked as a user's,
#: whose ``role`` check then names the bad value).
_MESSAGES: dict[str, Object] = {
    "assistant": _message(_AssistantPart()),
    "system": _message(SYSTEM_PART),
}
_USER_MESSAGE = _message(USER_PART)


class _Message(Node):
    expected = "an object"

    def check(self, value: Any, path: str) -> None:
        role = value.get("role") if isinstance(value, dict) else None
        schema = _MESSAGES.get(role, _USER_MESSAGE) if isinstance(role, str) else _USER_MESSAGE
        schema.check(value, path)


ITEM = Tagged(
    {
        "message": _Message(),
        "function_call": _with_type(
            {**_ITEM_COMMON, "name": Str(), "arguments": Str(), "call_id": Str()},
            ["name", "arguments"],
        ),
        "function_call_output": _with_type(
            {**_ITEM_COMMON, "call_id": Str(), "output": Str()}, ["call_id", "output"]
        ),
        "mcp_approval_response": _with_type(
            {
                **_ITEM_COMMON,
                "approval_request_id": Str(),
                "approve": Bool(),
                "reason": Nullable(Str()),
            },
            ["approval_request_id", "approve"],
        ),
    }
)
INPUT_ITEM = Tagged({**ITEM.variants, "item_reference": _with_type({"id": Str()}, ["id"])})

# --- response.create ---------------------------------------------------------------------------

RESPONSE_PARAMS = Object(
    {
        "output_modalities": MODALITIES,
        "instructions": Str(),
        "audio": Object({"output": Object({"format": FORMAT, "voice": VOICE})}),
        "tools": Array(TOOL),
        "tool_choice": TOOL_CHOICE,
        "max_output_tokens": _MaxTokens(),
        "conversation": Enum("auto", "none"),
        "input": Array(INPUT_ITEM),
        "metadata": Nullable(Map(Str(512), max_items=16, max_key=64)),
        "prompt": PROMPT,
        "reasoning": REASONING,
        "parallel_tool_calls": Bool(),
    }
)


def check_session_config(config: object, path: str = "session") -> None:
    """A realtime session configuration given at creation (a client secret's ``session``, a
    WebRTC offer's ``session`` field), checked as ``session.update`` checks its ``session``;
    ``type`` may be left out (``realtime``).

    Raises:
        Reject: the first problem, as the service's error object would name it.
    """
    if not isinstance(config, dict):
        raise invalid_type(path, "an object", config)
    kind = config.get("type", "realtime")
    if kind != "realtime":
        raise invalid_value(kind, ["realtime"], join(path, "type"))
    SESSION.check(config, path)
    if "output_modalities" in config:
        check_modalities(config["output_modalities"], join(path, "output_modalities"))


def check_modalities(value: list[str], path: str) -> None:
    """``["audio"]`` or ``["text"]``: both at once is refused."""
    if sorted(set(value)) != sorted(value) or len(value) != 1:
        shown = "[" + ", ".join(f"'{v}'" for v in value) + "]"
        raise Reject(
            "invalid_value",
            f"Invalid modalities: {shown}. Supported combinations are: ['text'] and ['audio'].",
            path,
        )
