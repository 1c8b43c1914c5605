"""Session configuration: whatever shape the application holds -> one typed GA session.

:func:`normalize_session_config` accepts a typed :class:`~rtproto.models.RealtimeSession`, the
GA nested shape (snake_case or the JS SDK's camelCase), or the older flat shape of the JS docs
and the beta dialect, and returns the :class:`~rtproto.models.RealtimeSession` to put in a
``session.update``. Validation is strict and local: every problem raises
:class:`~rtproto.errors.LocalProtocolError` with ``event_type="session.update"`` and a message
that starts with the dotted path of the offending field, as the application spelled it
(``audio.output.speed``, ``turnDetection.silenceDurationMs``, ``tools[1].name``).
Unknown keys are refused at every level, turn detection included (the JS SDK keeps unknown
turn-detection keys; the typed models here cannot carry them, and the service refuses them).

Three-way semantics, as in the JS SDK: a field that is absent gets the default (when
``defaults=True``), an explicit ``None`` is sent as ``null`` (where the protocol allows null),
and any other value is sent as given, after validation.

Raw escape hatch: ``provider_data`` (or ``providerData``) is a mapping whose entries replace
top-level fields of the result as they are, after the normalisation (a shallow merge, like the
JS SDK's spread), except ``prompt`` and ``tools`` when the configuration sets them: the JS SDK
sets those after the spread. Because the result is typed, its keys must be
:class:`~rtproto.models.RealtimeSession` fields (``temperature`` for a beta connection, say) and
its values are only type-checked, not normalised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from .errors import LocalProtocolError
from .models import (
    AudioConfig,
    AudioFormat,
    AudioInput,
    AudioOutput,
    FunctionTool,
    InputTranscription,
    McpApprovalFilter,
    McpTool,
    McpToolFilter,
    NoiseReduction,
    PromptReference,
    RealtimeSession,
    Reasoning,
    RetentionRatioTruncation,
    SemanticVad,
    ServerVad,
    SessionConfig,
    TokenLimits,
    Tool,
    ToolChoice,
    ToolChoiceFunction,
    ToolChoiceMcp,
    TracingConfig,
    TurnDetection,
    VoiceId,
)

__all__ = [
    "DEFAULT_TRANSCRIPTION_MODEL",
    "DTMF_KEYS",
    "PCM_24K",
    "PCMU",
    "normalize_audio_format",
    "normalize_session_config",
    "output_format_of",
    "sip_accept_session",
]

#: The only PCM format the service takes: 16-bit mono at 24 kHz.
PCM_24K: Final = AudioFormat(type="audio/pcm", rate=24000)
#: G.711 mu-law at 8 kHz: the phone network's (and Twilio Media Streams') audio.
PCMU: Final = AudioFormat(type="audio/pcmu")
#: The input transcription model set by default (the JS SDK's).
DEFAULT_TRANSCRIPTION_MODEL: Final = "gpt-4o-mini-transcribe"

_EVENT_TYPE = "session.update"
_ROOT = "session"
_T = TypeVar("_T")

# Beta and GA format names -> GA format type; the rate each GA type is sampled at.
_FORMAT_NAMES = {
    "pcm16": "audio/pcm",
    "g711_ulaw": "audio/pcmu",
    "g711_alaw": "audio/pcma",
    "audio/pcm": "audio/pcm",
    "audio/pcmu": "audio/pcmu",
    "audio/pcma": "audio/pcma",
}
_FORMAT_RATES = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}

_TOOL_CHOICES = ("auto", "none", "required")
_EAGERNESS = ("low", "medium", "high", "auto")
_NOISE_TYPES = ("near_field", "far_field")
_EFFORTS = ("minimal", "low", "medium", "high", "xhigh")
# ``transcription.delay``: the same five words in the official SDKs' typings (openai-python's
# generated ``AudioTranscription``, openai-agents-js ``RealtimeInputAudioTranscriptionConfig``);
# the realtime-protocol spec names the field but not its values.
_DELAYS = _EFFORTS
_TRUNCATIONS = ("auto", "disabled")
_INCLUDABLE = ("item.input_audio_transcription.logprobs",)
_APPROVALS = ("always", "never")
_SERVER_VAD_ONLY = ("threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms")
# Fields of a typed session the normaliser does not take at the top level (read-only server
# fields and the beta ``temperature``): they can only come through ``provider_data``.
_RAW_ONLY = ("id", "object", "expires_at", "temperature")


# --- errors and paths -------------------------------------------------------------------------


def _fail(path: str, problem: str, value: object = None) -> LocalProtocolError:
    return LocalProtocolError(f"{path}: {problem}", event_type=_EVENT_TYPE, data=value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _spellings(*names: str, **extra: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Canonical snake_case name -> every accepted spelling (itself, camelCase, extras)."""
    return {
        name: tuple(dict.fromkeys((name, _camel(name), *extra.get(name, ())))) for name in names
    }


_FLAT = (
    "modalities",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "input_audio_noise_reduction",
    "speed",
    "max_response_output_tokens",
)
_TOP = _spellings(
    "type",
    "model",
    "instructions",
    "output_modalities",
    "audio",
    "voice",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "prompt",
    "include",
    "reasoning",
    "parallel_tool_calls",
    "provider_data",
    *_FLAT,
)
_AUDIO = _spellings("input", "output")
_AUDIO_IN = _spellings("format", "noise_reduction", "transcription", "turn_detection")
_AUDIO_OUT = _spellings("format", "voice", "speed")
_FORMAT = _spellings("type", "rate")
_NOISE = _spellings("type", "strength")
# ``delay``, ``keywords`` and ``languages`` are the later additions for ``gpt-transcribe``,
# ``gpt-live-transcribe`` and ``gpt-realtime-whisper`` (realtime-protocol 2.2). The spec gives no
# types; the checks below follow the SDKs' typings (see ``_DELAYS``), unverified on the service,
# and pass the values through unchanged. Which model takes which field is the service's call.
_TRANSCRIPTION = _spellings("model", "language", "prompt", "delay", "keywords", "languages")
# Unknown turn-detection keys are refused, unlike the JS SDK, which keeps them
# (transport-behaviour 2.3): the typed ServerVad/SemanticVad cannot carry a key they do not
# declare (msgspec has no catch-all field, and a union of them with a plain dict is not
# allowed), and the GA service answers an undeclared key with ``unknown_parameter`` anyway.
# ``model_version`` is the JS SDK's ``modelVersion`` (PR #968), a string, both VAD types.
_TURN = _spellings(
    "type",
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "idle_timeout_ms",
    "create_response",
    "interrupt_response",
    "eagerness",
    "model_version",
)
_VOICE = _spellings("id")
_FUNCTION_TOOL = _spellings("type", "name", "description", "parameters")
_MCP_TOOL = _spellings(
    "type",
    "server_label",
    "server_url",
    "connector_id",
    "tunnel_id",
    "allowed_tools",
    "require_approval",
    "headers",
    "authorization",
    "server_description",
)
_TOOL_FILTER = _spellings("tool_names", "read_only")
_APPROVAL_FILTER = _spellings(*_APPROVALS)
_CHOICE_FUNCTION = _spellings("type", "name")
_CHOICE_MCP = _spellings("type", "server_label", "name")
_TRACING = _spellings("workflow_name", "group_id", "metadata")
_TRUNCATION = _spellings("type", "retention_ratio", "token_limits")
_TOKEN_LIMITS = _spellings("post_instructions")
_PROMPT = _spellings("id", "version", "variables", id=("promptId", "prompt_id"))
_REASONING = _spellings("effort")


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


class _Fields:
    """The entries of one object by canonical name, each with the path it was given at."""

    def __init__(
        self,
        value: object,
        path: str,
        table: Mapping[str, tuple[str, ...]],
        *,
        strict: bool = True,
    ) -> None:
        obj = _mapping(value, path or _ROOT)
        spelled = {spelling: name for name, spellings in table.items() for spelling in spellings}
        self.path = path
        self.values: dict[str, Any] = {}
        self.paths: dict[str, str] = {}
        for key, item in obj.items():
            if not isinstance(key, str):
                raise _fail(path or _ROOT, f"keys must be strings, got {key!r}")
            name = spelled.get(key)
            here = _join(path, key)
            if name is None:
                if strict:
                    raise _unknown(here, key, table)
                continue
            if name in self.values:
                if not _same(self.values[name], item):
                    raise _fail(
                        here, f"contradicts {self.paths[name]} (two spellings, two values)", item
                    )
                continue
            self.values[name] = item
            self.paths[name] = here

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def path_of(self, name: str) -> str:
        return self.paths.get(name) or _join(self.path, name)

    def take(self, name: str, convert: Callable[[Any, str], _T]) -> _T | UnsetType:
        """The converted value of ``name``, or ``UNSET`` when it is absent."""
        if name not in self.values:
            return UNSET
        return convert(self.values[name], self.paths[name])


def _unknown(path: str, key: str, table: Mapping[str, tuple[str, ...]]) -> LocalProtocolError:
    if table is _TOP:
        if key in _RAW_ONLY:
            problem = "not taken here; set this RealtimeSession field raw through provider_data"
        else:
            problem = "unknown session field; raw RealtimeSession fields go in provider_data"
        error = _fail(path, problem)
        error.hint = "provider_data"
        return error
    return _fail(path, f"unknown field; expected one of {', '.join(sorted(table))}")


# --- scalar checks -----------------------------------------------------------------------------


def _mapping(value: object, path: str) -> Mapping[Any, Any]:
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value)
    if not isinstance(value, Mapping):
        raise _fail(path, f"must be an object, got {type(value).__name__}", value)
    return value


def _sequence(value: object, path: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, Sequence):
        raise _fail(path, f"must be a list, got {type(value).__name__}", value)
    return value


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"must be a string, got {type(value).__name__}", value)
    return value


def _name(value: object, path: str) -> str:
    text = _text(value, path)
    if not text:
        raise _fail(path, "must not be empty")
    return text


def _text_or_null(value: object, path: str) -> str | None:
    return None if value is None else _text(value, path)


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"must be true or false, got {value!r}", value)
    return value


def _number(value: object, path: str, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise _fail(path, f"must be a number from {low} to {high}, got {value!r}", value)
    return float(value)


def _count(value: object, path: str, low: int = 0, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise _fail(path, f"must be an integer {bounds}, got {value!r}", value)
    return value


def _one_of(value: object, path: str, allowed: Iterable[str]) -> str:
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise _fail(path, f"must be one of {', '.join(options)}, got {value!r}", value)
    return value


def _names(value: object, path: str) -> list[str]:
    return [_name(item, f"{path}[{i}]") for i, item in enumerate(_sequence(value, path))]


def _texts(value: object, path: str) -> list[str]:
    return [_text(item, f"{path}[{i}]") for i, item in enumerate(_sequence(value, path))]


def _dict(value: object, path: str) -> dict[str, Any]:
    obj = _mapping(value, path)
    for key in obj:
        if not isinstance(key, str):
            raise _fail(path, f"keys must be strings, got {key!r}")
    return dict(obj)


def _required(fields: _Fields, name: str, convert: Callable[[Any, str], _T]) -> _T:
    value = fields.take(name, convert)
    if isinstance(value, UnsetType):
        raise _fail(fields.path_of(name), "is required")
    return value


# --- audio -------------------------------------------------------------------------------------


def normalize_audio_format(value: object, *, field: str) -> AudioFormat:
    """The GA :class:`~rtproto.models.AudioFormat` for any accepted spelling of a format.

    Accepts the beta names (``pcm16``, ``g711_ulaw``, ``g711_alaw``), the GA type strings
    (``audio/pcm``, ``audio/pcmu``, ``audio/pcma``), a ``{"type", "rate"?}`` mapping or an
    ``AudioFormat``. PCM comes back as ``audio/pcm`` at 24000 Hz, G.711 without a rate.

    Raises:
        LocalProtocolError: unknown format, or a rate the service does not support (PCM is
            24 kHz only, G.711 8 kHz only); the message names ``field``.
    """
    if isinstance(value, str):
        kind = _FORMAT_NAMES.get(value)
        if kind is None:
            names = ", ".join(_FORMAT_NAMES)
            raise _fail(field, f"unknown audio format {value!r}; expected one of {names}", value)
    elif isinstance(value, (Mapping, msgspec.Struct)):
        fields = _Fields(value, field, _FORMAT)
        kind = _required(fields, "type", lambda v, p: _one_of(v, p, _FORMAT_RATES))
        rate = fields.take("rate", _count)
        if not isinstance(rate, UnsetType) and rate != _FORMAT_RATES[kind]:
            supported = _FORMAT_RATES[kind]
            raise _fail(
                fields.path_of("rate"),
                f"{kind} is only supported at {supported} Hz by the service, got {rate}",
                rate,
            )
    else:
        problem = f"must be a format name or a {{type, rate}} object, got {type(value).__name__}"
        raise _fail(field, problem, value)
    return PCM_24K if kind == "audio/pcm" else AudioFormat(type=kind)


def output_format_of(session: SessionConfig | None) -> AudioFormat:
    """The effective output audio format of ``session``: PCM 24 kHz unless it says otherwise.

    Never raises: a format the session does carry is returned as it is (``audio/pcm`` without
    a rate reads as 24 kHz), since this also reads what the server echoed.
    """
    fmt: AudioFormat | UnsetType = UNSET
    if isinstance(session, RealtimeSession) and not isinstance(session.audio, UnsetType):
        output = session.audio.output
        if not isinstance(output, UnsetType):
            fmt = output.format
    if isinstance(fmt, UnsetType) or (fmt.type == "audio/pcm" and isinstance(fmt.rate, UnsetType)):
        return PCM_24K
    return fmt


def _format(value: object, path: str) -> AudioFormat:
    return normalize_audio_format(value, field=path)


def _noise_reduction(value: object, path: str) -> NoiseReduction | None:
    if value is None:
        return None
    fields = _Fields(value, path, _NOISE)
    kind = _required(fields, "type", lambda v, p: _one_of(v, p, _NOISE_TYPES))
    strength = fields.take("strength", _strength)
    return NoiseReduction(type=kind, strength=strength)


def _strength(value: object, path: str) -> float | None:
    """Suppression strength: null or a non-negative number (no upper bound is documented)."""
    return None if value is None else _number(value, path, 0.0, math.inf)


def _transcription(value: object, path: str) -> InputTranscription | None:
    """``language``/``prompt`` may be null; ``delay``, ``keywords``, ``languages`` may not.

    The later three are checked against the SDKs' typings (``delay`` one of ``_DELAYS``, the
    others lists of strings; see the comment on ``_TRANSCRIPTION``) and kept as given.
    """
    if value is None:
        return None
    fields = _Fields(value, path, _TRANSCRIPTION)
    return InputTranscription(
        model=_required(fields, "model", _name),
        language=fields.take("language", _text_or_null),
        prompt=fields.take("prompt", _text_or_null),
        delay=fields.take("delay", lambda v, p: _one_of(v, p, _DELAYS)),
        keywords=fields.take("keywords", _texts),
        languages=fields.take("languages", _texts),
    )


def _turn_detection(value: object, path: str) -> TurnDetection | None | UnsetType:
    """``None`` stays null (manual turns); an empty mapping is as if absent (the JS rule)."""
    if value is None:
        return None
    fields = _Fields(value, path, _TURN)
    if not fields.values:
        return UNSET
    if "type" in fields:
        kind = _required(fields, "type", lambda v, p: _one_of(v, p, ("server_vad", "semantic_vad")))
    else:
        kind = "semantic_vad" if "eagerness" in fields else "server_vad"
    create = fields.take("create_response", _bool)
    interrupt = fields.take("interrupt_response", _bool)
    version = fields.take("model_version", _name)
    if kind == "semantic_vad":
        for name in _SERVER_VAD_ONLY:
            if name in fields:
                raise _fail(
                    fields.path_of(name), "is a server_vad field, not allowed in semantic_vad"
                )
        return SemanticVad(
            eagerness=fields.take("eagerness", lambda v, p: _one_of(v, p, _EAGERNESS)),
            create_response=create,
            interrupt_response=interrupt,
            model_version=version,
        )
    if "eagerness" in fields:
        raise _fail(
            fields.path_of("eagerness"), "is a semantic_vad field, not allowed in server_vad"
        )
    return ServerVad(
        threshold=fields.take("threshold", lambda v, p: _number(v, p, 0.0, 1.0)),
        prefix_padding_ms=fields.take("prefix_padding_ms", _count),
        silence_duration_ms=fields.take("silence_duration_ms", _count),
        idle_timeout_ms=fields.take(
            "idle_timeout_ms", lambda v, p: None if v is None else _count(v, p)
        ),
        create_response=create,
        interrupt_response=interrupt,
        model_version=version,
    )


def _voice(value: object, path: str) -> str | VoiceId:
    if isinstance(value, str):
        return _name(value, path)
    return VoiceId(id=_required(_Fields(value, path, _VOICE), "id", _name))


def _speed(value: object, path: str) -> float:
    return _number(value, path, 0.25, 1.5)


# --- other session fields ------------------------------------------------------------------------


def _modalities(value: object, path: str, *, flat: bool) -> list[str]:
    items = tuple(_sequence(value, path))
    if items in (("audio",), ("text",)):
        return list(items)
    if flat and items in (("text", "audio"), ("audio", "text")):
        return ["audio"]  # beta: audio always came with text; GA audio implies a transcript
    allowed = "['audio'] or ['text']"
    allowed += " (or the beta ['text', 'audio'])" if flat else " (audio comes with its transcript)"
    raise _fail(path, f"must be {allowed}, got {list(items)!r}", value)


def _max_tokens(value: object, path: str) -> int | str:
    if value == "inf":
        return "inf"
    if isinstance(value, str):
        raise _fail(path, f"must be an integer from 1 to 4096 or 'inf', got {value!r}", value)
    return _count(value, path, 1, 4096)


def _tools(value: object, path: str) -> list[Tool]:
    tools: list[Tool] = []
    seen: dict[tuple[str, str], str] = {}
    for i, item in enumerate(_sequence(value, path)):
        here = f"{path}[{i}]"
        kind = _required(_Fields(item, here, {"type": ("type",)}, strict=False), "type", _text)
        tool: Tool
        if kind == "function":
            fields = _Fields(item, here, _FUNCTION_TOOL, strict=False)
            name = _required(fields, "name", _name)
            tool = FunctionTool(
                name=name,
                description=fields.take("description", _text),
                parameters=fields.take("parameters", _dict),
            )
            key, where = ("function", name), fields.path_of("name")
        elif kind == "mcp":
            fields = _Fields(item, here, _MCP_TOOL, strict=False)
            tool = _mcp_tool(fields)
            key, where = ("mcp", tool.server_label), fields.path_of("server_label")
        else:
            raise _fail(f"{here}.type", f"must be function or mcp, got {kind!r}", kind)
        if key in seen:
            raise _fail(where, f"duplicate tool {key[1]!r} (also at {seen[key]})")
        seen[key] = where
        tools.append(tool)
    return tools


def _mcp_tool(fields: _Fields) -> McpTool:
    servers = [name for name in ("server_url", "connector_id", "tunnel_id") if name in fields]
    if len(servers) != 1:
        problem = "exactly one of server_url, connector_id, tunnel_id is required"
        raise _fail(fields.path_of(servers[1]) if servers else fields.path, problem)
    return McpTool(
        server_label=_required(fields, "server_label", _name),
        server_url=fields.take("server_url", _name),
        connector_id=fields.take("connector_id", _name),
        tunnel_id=fields.take("tunnel_id", _name),
        allowed_tools=fields.take("allowed_tools", _allowed_tools),
        require_approval=fields.take("require_approval", _require_approval),
        headers=fields.take("headers", _headers),
        authorization=fields.take("authorization", _text),
        server_description=fields.take("server_description", _text),
    )


def _tool_filter(value: object, path: str) -> McpToolFilter:
    fields = _Fields(value, path, _TOOL_FILTER)
    return McpToolFilter(
        tool_names=fields.take("tool_names", _names), read_only=fields.take("read_only", _bool)
    )


def _allowed_tools(value: object, path: str) -> list[str] | McpToolFilter | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _tool_filter(value, path)
    return _names(value, path)


def _require_approval(value: object, path: str) -> str | McpApprovalFilter | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _one_of(value, path, _APPROVALS)
    fields = _Fields(value, path, _APPROVAL_FILTER)

    def side(v: object, p: str) -> McpToolFilter | None:
        return None if v is None else _tool_filter(v, p)

    return McpApprovalFilter(always=fields.take("always", side), never=fields.take("never", side))


def _headers(value: object, path: str) -> dict[str, str] | None:
    if value is None:
        return None
    return {key: _text(item, f"{path}.{key}") for key, item in _dict(value, path).items()}


def _tool_choice(value: object, path: str) -> ToolChoice:
    if isinstance(value, str):
        return _one_of(value, path, _TOOL_CHOICES)
    kind = _required(_Fields(value, path, {"type": ("type",)}, strict=False), "type", _text)
    if kind == "function":
        return ToolChoiceFunction(
            name=_required(_Fields(value, path, _CHOICE_FUNCTION), "name", _name)
        )
    if kind == "mcp":
        fields = _Fields(value, path, _CHOICE_MCP)
        return ToolChoiceMcp(
            server_label=_required(fields, "server_label", _name),
            name=fields.take("name", lambda v, p: None if v is None else _name(v, p)),
        )
    raise _fail(f"{path}.type", f"must be function or mcp, got {kind!r}", kind)


def _tracing(value: object, path: str) -> str | TracingConfig | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _one_of(value, path, ("auto",))
    fields = _Fields(value, path, _TRACING)
    return TracingConfig(
        workflow_name=fields.take("workflow_name", _text),
        group_id=fields.take("group_id", _text),
        metadata=fields.take("metadata", _dict),
    )


def _truncation(value: object, path: str) -> str | RetentionRatioTruncation:
    if isinstance(value, str):
        return _one_of(value, path, _TRUNCATIONS)
    fields = _Fields(value, path, _TRUNCATION)
    _required(fields, "type", lambda v, p: _one_of(v, p, ("retention_ratio",)))

    def limits(v: object, p: str) -> TokenLimits:
        return TokenLimits(
            post_instructions=_Fields(v, p, _TOKEN_LIMITS).take("post_instructions", _count)
        )

    return RetentionRatioTruncation(
        retention_ratio=_required(fields, "retention_ratio", lambda v, p: _number(v, p, 0.0, 1.0)),
        token_limits=fields.take("token_limits", limits),
    )


def _prompt(value: object, path: str) -> PromptReference | None:
    if value is None:
        return None
    fields = _Fields(value, path, _PROMPT)
    return PromptReference(
        id=_required(fields, "id", _name),
        version=fields.take("version", _text_or_null),
        variables=fields.take("variables", lambda v, p: None if v is None else _dict(v, p)),
    )


def _include(value: object, path: str) -> list[str] | None:
    if value is None:
        return None
    items = _sequence(value, path)
    return [_one_of(item, f"{path}[{i}]", _INCLUDABLE) for i, item in enumerate(items)]


def _reasoning(value: object, path: str) -> Reasoning | None:
    if value is None:
        return None
    fields = _Fields(value, path, _REASONING)
    return Reasoning(
        effort=fields.take("effort", lambda v, p: None if v is None else _one_of(v, p, _EFFORTS))
    )


def _provider_data(value: object, path: str) -> dict[str, Any]:
    """Typed values for the top-level fields ``value`` replaces; values are only type-checked."""
    raw = _dict(value, path)
    for key in raw:
        if key not in RealtimeSession.__struct_fields__:
            raise _fail(
                _join(path, key), "is not a RealtimeSession field, so it cannot be sent raw"
            )
    try:
        typed = msgspec.convert(raw, RealtimeSession)
    except msgspec.ValidationError as exc:
        raise _fail(path, str(exc).replace("`$", f"`{path}"), value) from None
    dropped = first_dropped(raw, msgspec.to_builtins(typed), path)
    if dropped is not None:  # (the typed models ignore keys they do not declare)
        raise _fail(dropped, "is not a field there, so it cannot be sent")
    return {key: getattr(typed, key) for key in raw}


def first_dropped(given: object, kept: object, path: str) -> str | None:
    """The path of the first key in ``given`` that typing left out of ``kept``, if any."""
    if isinstance(given, Mapping) and isinstance(kept, Mapping):
        for key, value in given.items():
            if key not in kept:
                return _join(path, str(key))
            found = first_dropped(value, kept[key], _join(path, str(key)))
            if found is not None:
                return found
    elif isinstance(given, (list, tuple)) and isinstance(kept, list):
        for index, (value, typed) in enumerate(zip(given, kept, strict=False)):
            found = first_dropped(value, typed, f"{path}[{index}]")
            if found is not None:
                return found
    return None


# --- the session ----------------------------------------------------------------------------------


def _agree(first: _T | UnsetType, second: _T | UnsetType, path: str, other: str) -> _T | UnsetType:
    """One value given under two names (``path`` and ``other``): both must say the same."""
    if isinstance(first, UnsetType):
        return second
    if not isinstance(second, UnsetType) and first != second:
        raise _fail(path, f"contradicts {other}")
    return first


def _set(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if not isinstance(value, UnsetType)}


def _build(
    config: object,
    *,
    model: str | None,
    defaults: bool,
    format_defaults: bool = True,
    default_format: AudioFormat = PCM_24K,
) -> RealtimeSession:
    top = _Fields(config, "", _TOP)
    flat = [top.path_of(name) for name in _FLAT if name in top]
    if flat and "audio" in top:
        raise _fail(
            flat[0],
            f"the flat (beta) fields {', '.join(flat)} cannot be mixed with the nested "
            f"{top.path_of('audio')} block; use one shape",
        )
    top.take("type", lambda v, p: _one_of(v, p, ("realtime",)))

    modalities = _agree(
        top.take("modalities", lambda v, p: _modalities(v, p, flat=True)),
        top.take("output_modalities", lambda v, p: _modalities(v, p, flat=False)),
        top.path_of("modalities"),
        top.path_of("output_modalities"),
    )
    max_tokens = _agree(
        top.take("max_response_output_tokens", _max_tokens),
        top.take("max_output_tokens", _max_tokens),
        top.path_of("max_response_output_tokens"),
        top.path_of("max_output_tokens"),
    )

    voice = top.take("voice", _voice)
    if "audio" in top:
        audio = _Fields(top.values["audio"], top.path_of("audio"), _AUDIO)
        inp = _Fields(audio.values.get("input", {}), audio.path_of("input"), _AUDIO_IN)
        out = _Fields(audio.values.get("output", {}), audio.path_of("output"), _AUDIO_OUT)
        in_format = inp.take("format", _format)
        noise = inp.take("noise_reduction", _noise_reduction)
        transcription = inp.take("transcription", _transcription)
        turn = inp.take("turn_detection", _turn_detection)
        out_format = out.take("format", _format)
        speed = out.take("speed", _speed)
        voice = _agree(out.take("voice", _voice), voice, out.path_of("voice"), top.path_of("voice"))
    else:
        in_format = top.take("input_audio_format", _format)
        noise = top.take("input_audio_noise_reduction", _noise_reduction)
        transcription = top.take("input_audio_transcription", _transcription)
        turn = top.take("turn_detection", _turn_detection)
        out_format = top.take("output_audio_format", _format)
        speed = top.take("speed", _speed)

    if defaults:
        modalities = ["audio"] if isinstance(modalities, UnsetType) else modalities
        if format_defaults and isinstance(in_format, UnsetType):
            in_format = default_format
        noise = None if isinstance(noise, UnsetType) else noise
        if isinstance(transcription, UnsetType):
            transcription = InputTranscription(model=DEFAULT_TRANSCRIPTION_MODEL)
        turn = SemanticVad() if isinstance(turn, UnsetType) else turn
        if format_defaults and isinstance(out_format, UnsetType):
            out_format = default_format
        speed = 1.0 if isinstance(speed, UnsetType) else speed

    inputs = _set(
        format=in_format, noise_reduction=noise, transcription=transcription, turn_detection=turn
    )
    outputs = _set(format=out_format, voice=voice, speed=speed)
    audio_config = _set(
        input=AudioInput(**inputs) if inputs else UNSET,
        output=AudioOutput(**outputs) if outputs else UNSET,
    )
    session_model = top.take("model", _name)
    if isinstance(session_model, UnsetType) and model is not None:
        session_model = _name(model, "model")
    session = RealtimeSession(
        **_set(
            model=session_model,
            output_modalities=modalities,
            instructions=top.take("instructions", _text),
            audio=AudioConfig(**audio_config) if audio_config else UNSET,
            tools=top.take("tools", _tools),
            tool_choice=top.take("tool_choice", _tool_choice),
            max_output_tokens=max_tokens,
            tracing=top.take("tracing", _tracing),
            truncation=top.take("truncation", _truncation),
            prompt=top.take("prompt", _prompt),
            include=top.take("include", _include),
            reasoning=top.take("reasoning", _reasoning),
            parallel_tool_calls=top.take("parallel_tool_calls", _bool),
        )
    )
    raw = top.take("provider_data", _provider_data)
    if isinstance(raw, UnsetType):
        return session
    for name in _SET_AFTER_PROVIDER_DATA:
        if not isinstance(getattr(session, name), UnsetType):
            raw.pop(name, None)
    return msgspec.structs.replace(session, **raw)


#: What the JS SDK sets after spreading ``providerData``: given, these win over it.
_SET_AFTER_PROVIDER_DATA = ("prompt", "tools")


def normalize_session_config(
    config: Mapping[str, Any] | RealtimeSession | None,
    *,
    model: str | None = None,
    defaults: bool = True,
    format_defaults: bool = True,
    default_format: AudioFormat = PCM_24K,
) -> RealtimeSession:
    """The GA :class:`~rtproto.models.RealtimeSession` for a session configuration.

    Args:
        config: a typed ``RealtimeSession`` (validated and returned as is: no defaults, no
            ``model`` fill, since it already is the payload); a mapping in the GA nested shape
            or the flat beta/JS-docs shape, in snake_case or camelCase; or ``None`` (empty).
        model: the model to set when the configuration names none.
        defaults: fill what is absent with the JS SDK's defaults (output ``["audio"]``, PCM
            24 kHz both ways, ``gpt-4o-mini-transcribe`` transcription, ``semantic_vad``, no
            noise reduction, speed 1.0). ``False`` sets only what was given (partial updates).
        format_defaults: with ``defaults``, also default the audio formats (``False`` leaves
            them to the server: a SIP call's audio format is the phone line's, G.711).
        default_format: the audio format defaulted, both ways (PCM 24 kHz; the ``phone``
            profile uses G.711 mu-law, ``audio/pcmu``, the phone line's own).

    Raises:
        LocalProtocolError: an unknown field, a value out of range, or a contradiction (the
            flat shape mixed with ``audio``, one field in two spellings with two values).
    """
    if isinstance(config, RealtimeSession):
        raw = msgspec.to_builtins(config)
        extra = {key: raw.pop(key) for key in _RAW_ONLY if key in raw}
        if extra:
            raw["provider_data"] = extra
        _build(raw, model=None, defaults=False)
        return config
    return _build(
        {} if config is None else config,
        model=model,
        defaults=defaults,
        format_defaults=format_defaults,
        default_format=default_format,
    )


#: Turn-detection tuning the Realtime Calls API refuses for a SIP call.
SIP_REFUSED_TURN_DETECTION: Final = ("threshold", "prefix_padding_ms", "silence_duration_ms")
#: The keypad keys a SIP call's DTMF events carry (``input_audio_buffer.dtmf_event_received``).
DTMF_KEYS: Final = "0123456789*#ABCD"


def sip_accept_session(
    config: Mapping[str, Any] | RealtimeSession | None = None, *, model: str | None = None
) -> RealtimeSession:
    """The session to accept a SIP call with: the body of ``POST
    /v1/realtime/calls/{call_id}/accept`` is this, serialised (``msgspec.json.encode``).

    It is normalised like a session's first configuration, with the JS SDK's defaults but no
    audio format (a call's audio is the phone line's, G.711), as the JS SDK's
    ``OpenAIRealtimeSIP.buildInitialConfig`` builds it.

    Raises:
        LocalProtocolError: what :func:`normalize_session_config` refuses, or server VAD
            tuning (``threshold``, ``prefix_padding_ms``, ``silence_duration_ms``), which the
            Calls API refuses for a SIP call: the message names each one given.
    """
    session = normalize_session_config(config, model=model, format_defaults=False)
    audio = session.audio
    turn = (
        audio.input.turn_detection
        if not isinstance(audio, UnsetType) and not isinstance(audio.input, UnsetType)
        else None
    )
    if isinstance(turn, ServerVad):
        given = [name for name in SIP_REFUSED_TURN_DETECTION if getattr(turn, name) is not UNSET]
        if given:
            error = _fail(
                "audio.input.turn_detection",
                f"{', '.join(given)} cannot be set for a SIP call (the Calls API refuses"
                " turn-detection tuning there)",
            )
            error.hint = "leave them to the service's defaults"
            raise error
    return session
