"""Typed building blocks shared by events: session configuration, items, responses, usage.

Every model is an immutable ``msgspec.Struct``. A field left at ``UNSET`` is absent on the wire
(never sent as ``null``); ``None`` is an explicit ``null``. Enumerations the service may extend
(voices, statuses, reasons, formats) are typed as ``str`` so that a value added tomorrow is
carried, not rejected. Field names and shapes follow the GA Realtime interface; the legacy beta
shapes are mapped onto these types by :mod:`rtproto.dialect`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Union

from msgspec import UNSET, Struct, UnsetType

__all__ = [
    "UNSET",
    "AudioConfig",
    "AudioFormat",
    "AudioInput",
    "AudioOutput",
    "CachedTokenDetails",
    "ContentPart",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputTokenDetails",
    "InputTranscription",
    "Item",
    "ItemReference",
    "Logprob",
    "McpApprovalFilter",
    "McpApprovalRequestItem",
    "McpApprovalResponseItem",
    "McpCallError",
    "McpCallItem",
    "McpListToolsItem",
    "McpTool",
    "McpToolFilter",
    "McpToolInfo",
    "MessageItem",
    "Model",
    "NoiseReduction",
    "OutputTokenDetails",
    "PromptReference",
    "RateLimit",
    "RealtimeError",
    "RealtimeSession",
    "Reasoning",
    "Response",
    "ResponseAudio",
    "ResponseAudioOutput",
    "ResponseCreateParams",
    "ResponseError",
    "ResponseStatusDetails",
    "RetentionRatioTruncation",
    "SemanticVad",
    "ServerVad",
    "SessionConfig",
    "TokenLimits",
    "Tool",
    "ToolChoice",
    "ToolChoiceFunction",
    "ToolChoiceMcp",
    "TracingConfig",
    "TranscriptionAudioConfig",
    "TranscriptionError",
    "TranscriptionInputTokenDetails",
    "TranscriptionSession",
    "TranscriptionUsage",
    "TurnDetection",
    "Usage",
    "UnsetType",
    "VoiceId",
]


class Model(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every nested model: immutable, keyword-only, unset fields omitted on encode."""


class Tagged(Model, frozen=True, kw_only=True, tag_field="type"):
    """Base of models discriminated by their ``type`` field (a class attribute here)."""

    type: ClassVar[str]


# --- audio configuration -------------------------------------------------------------------


class AudioFormat(Model, frozen=True, kw_only=True):
    """``{"type": "audio/pcm", "rate": 24000}``, ``{"type": "audio/pcmu"}`` or ``audio/pcma``."""

    type: str
    rate: int | UnsetType = UNSET


class NoiseReduction(Model, frozen=True, kw_only=True):
    """Input noise reduction: ``near_field`` or ``far_field``."""

    type: str | None | UnsetType = UNSET
    strength: float | None | UnsetType = UNSET


class InputTranscription(Model, frozen=True, kw_only=True):
    """Asynchronous transcription of the user's audio.

    ``delay`` (``minimal`` ... ``xhigh``, for ``gpt-realtime-whisper``), ``keywords`` and
    ``languages`` (for ``gpt-transcribe`` and ``gpt-live-transcribe``) are the later additions;
    their types are those of the official SDKs' generated typings, not checked against the live
    service.
    """

    model: str | None | UnsetType = UNSET
    language: str | None | UnsetType = UNSET
    prompt: str | None | UnsetType = UNSET
    delay: str | None | UnsetType = UNSET
    keywords: list[str] | None | UnsetType = UNSET
    languages: list[str] | None | UnsetType = UNSET


class ServerVad(Tagged, frozen=True, kw_only=True, tag="server_vad"):
    """Energy-based server voice activity detection.

    ``model_version`` (here and in :class:`SemanticVad`) is what the JS SDK sends for its
    ``modelVersion`` option (PR #968); the service's documented schema does not list it.
    """

    threshold: float | UnsetType = UNSET
    prefix_padding_ms: int | UnsetType = UNSET
    silence_duration_ms: int | UnsetType = UNSET
    idle_timeout_ms: int | None | UnsetType = UNSET
    create_response: bool | UnsetType = UNSET
    interrupt_response: bool | UnsetType = UNSET
    model_version: str | UnsetType = UNSET


class SemanticVad(Tagged, frozen=True, kw_only=True, tag="semantic_vad"):
    """Model-based end-of-turn detection."""

    eagerness: str | UnsetType = UNSET
    create_response: bool | UnsetType = UNSET
    interrupt_response: bool | UnsetType = UNSET
    model_version: str | UnsetType = UNSET


TurnDetection = Union[ServerVad, SemanticVad]


class AudioInput(Model, frozen=True, kw_only=True):
    """``session.audio.input``."""

    format: AudioFormat | UnsetType = UNSET
    noise_reduction: NoiseReduction | None | UnsetType = UNSET
    transcription: InputTranscription | None | UnsetType = UNSET
    turn_detection: TurnDetection | None | UnsetType = UNSET


class VoiceId(Model, frozen=True, kw_only=True):
    """A custom voice: ``{"id": "voice_..."}``."""

    id: str


class AudioOutput(Model, frozen=True, kw_only=True):
    """``session.audio.output``."""

    format: AudioFormat | UnsetType = UNSET
    voice: str | VoiceId | UnsetType = UNSET
    speed: float | UnsetType = UNSET


class AudioConfig(Model, frozen=True, kw_only=True):
    """``session.audio``."""

    input: AudioInput | UnsetType = UNSET
    output: AudioOutput | UnsetType = UNSET


# --- tools -----------------------------------------------------------------------------------


class FunctionTool(Tagged, frozen=True, kw_only=True, tag="function"):
    """A function the model may call; ``parameters`` is a JSON Schema."""

    name: str | UnsetType = UNSET
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET


class McpToolFilter(Model, frozen=True, kw_only=True):
    """Selects MCP tools by name or read-only annotation."""

    tool_names: list[str] | UnsetType = UNSET
    read_only: bool | UnsetType = UNSET


class McpApprovalFilter(Model, frozen=True, kw_only=True):
    """Which MCP tools always or never need approval."""

    always: McpToolFilter | None | UnsetType = UNSET
    never: McpToolFilter | None | UnsetType = UNSET


class McpTool(Tagged, frozen=True, kw_only=True, tag="mcp"):
    """A remote MCP server or connector whose tools the model may call."""

    server_label: str
    server_url: str | UnsetType = UNSET
    connector_id: str | UnsetType = UNSET
    tunnel_id: str | UnsetType = UNSET
    allowed_tools: list[str] | McpToolFilter | None | UnsetType = UNSET
    require_approval: str | McpApprovalFilter | None | UnsetType = UNSET
    headers: dict[str, str] | None | UnsetType = UNSET
    authorization: str | UnsetType = UNSET
    server_description: str | UnsetType = UNSET


Tool = Union[FunctionTool, McpTool]


class ToolChoiceFunction(Tagged, frozen=True, kw_only=True, tag="function"):
    """Force a call of the named function."""

    name: str


class ToolChoiceMcp(Tagged, frozen=True, kw_only=True, tag="mcp"):
    """Force a call of a tool on the labelled MCP server."""

    server_label: str
    name: str | None | UnsetType = UNSET


ToolChoice = Union[str, ToolChoiceFunction, ToolChoiceMcp]


# --- other session settings ------------------------------------------------------------------


class TracingConfig(Model, frozen=True, kw_only=True):
    """Tracing settings (``"auto"`` is the short form)."""

    workflow_name: str | UnsetType = UNSET
    group_id: str | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET


class TokenLimits(Model, frozen=True, kw_only=True):
    """Token limits for retention-ratio truncation."""

    post_instructions: int | UnsetType = UNSET


class RetentionRatioTruncation(Tagged, frozen=True, kw_only=True, tag="retention_ratio"):
    """Truncate the conversation to this fraction of the context when it overflows."""

    retention_ratio: float
    token_limits: TokenLimits | UnsetType = UNSET


class PromptReference(Model, frozen=True, kw_only=True):
    """A reusable prompt: id, optional version and template variables."""

    id: str
    version: str | None | UnsetType = UNSET
    variables: dict[str, Any] | None | UnsetType = UNSET


class Reasoning(Model, frozen=True, kw_only=True):
    """Reasoning effort for reasoning models."""

    effort: str | None | UnsetType = UNSET


class SessionBase(Tagged, frozen=True, kw_only=True):
    """Fields common to realtime and transcription sessions."""

    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    expires_at: int | UnsetType = UNSET
    include: list[str] | None | UnsetType = UNSET


class RealtimeSession(SessionBase, frozen=True, kw_only=True, tag="realtime"):
    """A realtime (speech-to-speech) session configuration, sent or effective.

    ``temperature`` exists only in the legacy beta dialect.
    """

    model: str | UnsetType = UNSET
    output_modalities: list[str] | UnsetType = UNSET
    instructions: str | UnsetType = UNSET
    audio: AudioConfig | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    max_output_tokens: int | str | UnsetType = UNSET
    tracing: str | TracingConfig | None | UnsetType = UNSET
    truncation: str | RetentionRatioTruncation | UnsetType = UNSET
    prompt: PromptReference | None | UnsetType = UNSET
    reasoning: Reasoning | None | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    temperature: float | UnsetType = UNSET


class TranscriptionAudioConfig(Model, frozen=True, kw_only=True):
    """``session.audio`` of a transcription session (input only)."""

    input: AudioInput | UnsetType = UNSET


class TranscriptionSession(SessionBase, frozen=True, kw_only=True, tag="transcription"):
    """A transcription-only session configuration."""

    audio: TranscriptionAudioConfig | UnsetType = UNSET


SessionConfig = Union[RealtimeSession, TranscriptionSession]


# --- conversation items -----------------------------------------------------------------------


class ContentPart(Model, frozen=True, kw_only=True):
    """One part of a message item, or the ``part`` of ``response.content_part.*``.

    ``type`` is ``input_text``, ``input_audio``, ``input_image``, ``output_text`` or
    ``output_audio`` inside items, and ``text`` or ``audio`` in content-part events.
    """

    type: str
    text: str | None | UnsetType = UNSET
    audio: str | None | UnsetType = UNSET
    transcript: str | None | UnsetType = UNSET
    image_url: str | None | UnsetType = UNSET
    detail: str | None | UnsetType = UNSET


class ItemBase(Tagged, frozen=True, kw_only=True):
    """Fields every conversation item may carry."""

    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


class MessageItem(ItemBase, frozen=True, kw_only=True, tag="message"):
    """A system, user or assistant message."""

    role: str
    content: list[ContentPart]


class FunctionCallItem(ItemBase, frozen=True, kw_only=True, tag="function_call"):
    """The model's call of a function tool; ``arguments`` is JSON text."""

    name: str
    arguments: str
    call_id: str | UnsetType = UNSET


class FunctionCallOutputItem(ItemBase, frozen=True, kw_only=True, tag="function_call_output"):
    """The application's result for a function call."""

    call_id: str
    output: str


class McpApprovalResponseItem(ItemBase, frozen=True, kw_only=True, tag="mcp_approval_response"):
    """The application's answer to an MCP approval request."""

    approval_request_id: str
    approve: bool
    reason: str | None | UnsetType = UNSET


class McpToolInfo(Model, frozen=True, kw_only=True):
    """A tool an MCP server offers."""

    name: str
    input_schema: Any = UNSET
    description: str | None | UnsetType = UNSET
    annotations: Any = UNSET


class McpListToolsItem(ItemBase, frozen=True, kw_only=True, tag="mcp_list_tools"):
    """The tools an MCP server listed."""

    server_label: str
    tools: list[McpToolInfo] | UnsetType = UNSET


class McpCallError(Model, frozen=True, kw_only=True):
    """Why an MCP call failed: ``protocol_error``, ``tool_execution_error`` or ``http_error``."""

    type: str
    code: int | str | None | UnsetType = UNSET
    message: str | UnsetType = UNSET


class McpCallItem(ItemBase, frozen=True, kw_only=True, tag="mcp_call"):
    """A call of a tool on an MCP server."""

    server_label: str
    name: str
    arguments: str
    approval_request_id: str | None | UnsetType = UNSET
    output: str | None | UnsetType = UNSET
    error: McpCallError | None | UnsetType = UNSET


class McpApprovalRequestItem(ItemBase, frozen=True, kw_only=True, tag="mcp_approval_request"):
    """The server asks the application to approve an MCP call."""

    server_label: str
    name: str
    arguments: str


class ItemReference(ItemBase, frozen=True, kw_only=True, tag="item_reference"):
    """A reference to an existing item by id, in ``response.create.response.input``."""


Item = Union[
    MessageItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    McpApprovalResponseItem,
    McpListToolsItem,
    McpCallItem,
    McpApprovalRequestItem,
    ItemReference,
]


# --- responses and usage ----------------------------------------------------------------------


class CachedTokenDetails(Model, frozen=True, kw_only=True):
    """Cached input tokens by kind."""

    text_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET
    image_tokens: int | UnsetType = UNSET


class InputTokenDetails(Model, frozen=True, kw_only=True):
    """Input tokens by kind."""

    text_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET
    image_tokens: int | UnsetType = UNSET
    cached_tokens: int | UnsetType = UNSET
    cached_tokens_details: CachedTokenDetails | UnsetType = UNSET


class OutputTokenDetails(Model, frozen=True, kw_only=True):
    """Output tokens by kind."""

    text_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET


class Usage(Model, frozen=True, kw_only=True):
    """Token usage of one response."""

    total_tokens: int | UnsetType = UNSET
    input_tokens: int | UnsetType = UNSET
    output_tokens: int | UnsetType = UNSET
    input_token_details: InputTokenDetails | UnsetType = UNSET
    output_token_details: OutputTokenDetails | UnsetType = UNSET


class ResponseError(Model, frozen=True, kw_only=True):
    """The error of a failed response."""

    type: str | UnsetType = UNSET
    code: str | None | UnsetType = UNSET
    message: str | None | UnsetType = UNSET


class ResponseStatusDetails(Model, frozen=True, kw_only=True):
    """Why a response ended the way it did."""

    type: str | UnsetType = UNSET
    reason: str | None | UnsetType = UNSET
    error: ResponseError | None | UnsetType = UNSET


class ResponseAudioOutput(Model, frozen=True, kw_only=True):
    """Audio output settings of a response."""

    format: AudioFormat | UnsetType = UNSET
    voice: str | VoiceId | UnsetType = UNSET


class ResponseAudio(Model, frozen=True, kw_only=True):
    """``response.audio``."""

    output: ResponseAudioOutput | UnsetType = UNSET


class Response(Model, frozen=True, kw_only=True):
    """A response object, as carried by ``response.created`` and ``response.done``."""

    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    status: str | UnsetType = UNSET
    status_details: ResponseStatusDetails | None | UnsetType = UNSET
    output: list[Item] | UnsetType = UNSET
    conversation_id: str | None | UnsetType = UNSET
    output_modalities: list[str] | UnsetType = UNSET
    max_output_tokens: int | str | None | UnsetType = UNSET
    audio: ResponseAudio | UnsetType = UNSET
    metadata: dict[str, Any] | None | UnsetType = UNSET
    usage: Usage | None | UnsetType = UNSET
    temperature: float | UnsetType = UNSET


class ResponseCreateParams(Model, frozen=True, kw_only=True):
    """Per-response overrides in ``response.create``."""

    output_modalities: list[str] | UnsetType = UNSET
    instructions: str | UnsetType = UNSET
    audio: ResponseAudio | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    max_output_tokens: int | str | UnsetType = UNSET
    conversation: str | UnsetType = UNSET
    input: list[Item] | UnsetType = UNSET
    metadata: dict[str, str] | None | UnsetType = UNSET
    prompt: PromptReference | None | UnsetType = UNSET
    reasoning: Reasoning | None | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    temperature: float | UnsetType = UNSET


# --- errors, transcription, rate limits ----------------------------------------------------


class RealtimeError(Model, frozen=True, kw_only=True):
    """The body of a server ``error`` event."""

    type: str
    message: str
    code: str | None | UnsetType = UNSET
    param: str | None | UnsetType = UNSET
    event_id: str | None | UnsetType = UNSET


class TranscriptionError(Model, frozen=True, kw_only=True):
    """Why an input audio transcription failed."""

    type: str | None | UnsetType = UNSET
    code: str | None | UnsetType = UNSET
    message: str | None | UnsetType = UNSET
    param: str | None | UnsetType = UNSET


class TranscriptionInputTokenDetails(Model, frozen=True, kw_only=True):
    """Input tokens of a transcription by kind."""

    text_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET


class TranscriptionUsage(Model, frozen=True, kw_only=True):
    """Usage of a transcription: ``type`` ``tokens`` (token counts) or ``duration`` (seconds)."""

    type: str
    input_tokens: int | UnsetType = UNSET
    output_tokens: int | UnsetType = UNSET
    total_tokens: int | UnsetType = UNSET
    input_token_details: TranscriptionInputTokenDetails | UnsetType = UNSET
    seconds: float | UnsetType = UNSET


class Logprob(Model, frozen=True, kw_only=True):
    """Log probability of one transcription token."""

    token: str
    logprob: float
    bytes: list[int] | UnsetType = UNSET


class RateLimit(Model, frozen=True, kw_only=True):
    """One entry of ``rate_limits.updated``."""

    name: str | UnsetType = UNSET
    limit: int | UnsetType = UNSET
    remaining: int | UnsetType = UNSET
    reset_seconds: float | UnsetType = UNSET


def _set_tags(base: type[Tagged]) -> None:
    cls: type[Tagged]
    for cls in base.__subclasses__():
        tag = cls.__struct_config__.tag
        if isinstance(tag, str):
            cls.type = tag
        _set_tags(cls)


_set_tags(Tagged)
