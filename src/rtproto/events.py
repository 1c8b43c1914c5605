"""Typed Realtime events: every GA client and server event, plus the two fallbacks.

Each event is an immutable ``msgspec.Struct`` whose class attribute ``type`` is its wire name.
``UnknownEvent`` carries an event type rtproto does not know; ``InvalidEvent`` carries a known
event whose fields did not match their types. Both keep the raw object, so nothing the server
sends is lost or handed over mis-typed. Parse and serialise with :mod:`rtproto.codec`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Union

from msgspec import UNSET, Struct, UnsetType

# Imported lazily-by-name so the fast path pays one global lookup.
from ._b64 import decode_base64, encode_base64
from .errors import RemoteProtocolError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
from .models import (
    ContentPart,
    Item,
    RateLimit,
    RealtimeError,
    Response,
    ResponseCreateParams,
    SessionConfig,
    TranscriptionError,
    TranscriptionUsage,
)

__all__ = [
    "ClientEvent",
    "ConversationCreated",
    "ConversationItemAdded",
    "ConversationItemCreate",
    "ConversationItemCreated",
    "ConversationItemDelete",
    "ConversationItemDeleted",
    "ConversationItemDone",
    "ConversationItemRetrieve",
    "ConversationItemRetrieved",
    "ConversationItemTruncate",
    "ConversationItemTruncated",
    "ErrorEvent",
    "Event",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCleared",
    "InputAudioBufferCommit",
    "InputAudioBufferCommitted",
    "InputAudioBufferDtmfEventReceived",
    "InputAudioBufferSpeechStarted",
    "InputAudioBufferSpeechStopped",
    "InputAudioBufferTimeoutTriggered",
    "InputAudioTranscriptionCompleted",
    "InputAudioTranscriptionDelta",
    "InputAudioTranscriptionFailed",
    "InputAudioTranscriptionSegment",
    "InvalidEvent",
    "McpListToolsCompleted",
    "McpListToolsFailed",
    "McpListToolsInProgress",
    "OutputAudioBufferClear",
    "OutputAudioBufferCleared",
    "OutputAudioBufferStarted",
    "OutputAudioBufferStopped",
    "RateLimitsUpdated",
    "ResponseCancel",
    "ResponseContentPartAdded",
    "ResponseContentPartDone",
    "ResponseCreate",
    "ResponseCreated",
    "ResponseDone",
    "ResponseFunctionCallArgumentsDelta",
    "ResponseFunctionCallArgumentsDone",
    "ResponseMcpCallArgumentsDelta",
    "ResponseMcpCallArgumentsDone",
    "ResponseMcpCallCompleted",
    "ResponseMcpCallFailed",
    "ResponseMcpCallInProgress",
    "ResponseOutputAudioDelta",
    "ResponseOutputAudioDone",
    "ResponseOutputAudioTranscriptDelta",
    "ResponseOutputAudioTranscriptDone",
    "ResponseOutputItemAdded",
    "ResponseOutputItemDone",
    "ResponseOutputTextDelta",
    "ResponseOutputTextDone",
    "ServerEvent",
    "SessionCreated",
    "SessionUpdate",
    "SessionUpdated",
    "TypedClientEvent",
    "TypedServerEvent",
    "UnknownEvent",
    "CLIENT_EVENT_TYPES",
    "SERVER_EVENT_TYPES",
]


class Event(Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="type", dict=True):
    """Base of every typed event. ``type`` is the event's wire name (a class attribute).

    ``event_id`` is optional on client events and always present on server events.
    """

    type: ClassVar[str]
    event_id: str | UnsetType = UNSET


# ============================================================================ server events ==


class ErrorEvent(Event, frozen=True, kw_only=True, tag="error"):
    """The server's report of a failed client event or a session problem. Data, not raised."""

    error: RealtimeError


class SessionCreated(Event, frozen=True, kw_only=True, tag="session.created"):
    """First event of every connection: the full effective session configuration."""

    session: SessionConfig


class SessionUpdated(Event, frozen=True, kw_only=True, tag="session.updated"):
    """Reply to a successful ``session.update``: the full effective configuration."""

    session: SessionConfig


class ConversationCreated(Event, frozen=True, kw_only=True, tag="conversation.created"):
    """Beta servers only: the conversation object, right after ``session.created``."""

    conversation: dict[str, Any]


class _ItemEvent(Event, frozen=True, kw_only=True):
    item: Item
    previous_item_id: str | None | UnsetType = UNSET


class ConversationItemCreated(
    _ItemEvent, frozen=True, kw_only=True, tag="conversation.item.created"
):
    """Beta name of an item added to the conversation."""


class ConversationItemAdded(_ItemEvent, frozen=True, kw_only=True, tag="conversation.item.added"):
    """An item was inserted (user commit, ``conversation.item.create``, or model output start)."""


class ConversationItemDone(_ItemEvent, frozen=True, kw_only=True, tag="conversation.item.done"):
    """An item is final (its content complete, except audio bytes)."""


class ConversationItemRetrieved(
    Event, frozen=True, kw_only=True, tag="conversation.item.retrieved"
):
    """Reply to ``conversation.item.retrieve``; audio parts include their audio."""

    item: Item


class ConversationItemTruncated(
    Event, frozen=True, kw_only=True, tag="conversation.item.truncated"
):
    """Reply to ``conversation.item.truncate``."""

    item_id: str
    content_index: int
    audio_end_ms: int


class ConversationItemDeleted(Event, frozen=True, kw_only=True, tag="conversation.item.deleted"):
    """Reply to ``conversation.item.delete``."""

    item_id: str


class InputAudioTranscriptionDelta(
    Event, frozen=True, kw_only=True, tag="conversation.item.input_audio_transcription.delta"
):
    """A streaming piece of the user's transcript."""

    item_id: str
    content_index: int | UnsetType = UNSET
    delta: str | UnsetType = UNSET
    logprobs: list[Any] | None | UnsetType = UNSET
    obfuscation: str | UnsetType = UNSET


class InputAudioTranscriptionCompleted(
    Event, frozen=True, kw_only=True, tag="conversation.item.input_audio_transcription.completed"
):
    """The user's final transcript for one audio content part."""

    item_id: str
    content_index: int
    transcript: str
    usage: TranscriptionUsage | UnsetType = UNSET
    logprobs: list[Any] | None | UnsetType = UNSET


class InputAudioTranscriptionFailed(
    Event, frozen=True, kw_only=True, tag="conversation.item.input_audio_transcription.failed"
):
    """Transcription of the user's audio failed."""

    item_id: str
    content_index: int
    error: TranscriptionError


class InputAudioTranscriptionSegment(
    Event, frozen=True, kw_only=True, tag="conversation.item.input_audio_transcription.segment"
):
    """A diarized segment (diarization models only); ``start``/``end`` in seconds."""

    item_id: str
    content_index: int
    id: str
    text: str
    speaker: str
    start: float
    end: float


class InputAudioBufferCommitted(
    Event, frozen=True, kw_only=True, tag="input_audio_buffer.committed"
):
    """The input buffer became a user item (manual or VAD commit)."""

    item_id: str
    previous_item_id: str | None | UnsetType = UNSET


class InputAudioBufferCleared(Event, frozen=True, kw_only=True, tag="input_audio_buffer.cleared"):
    """Reply to ``input_audio_buffer.clear``."""


class InputAudioBufferSpeechStarted(
    Event, frozen=True, kw_only=True, tag="input_audio_buffer.speech_started"
):
    """VAD detected speech; ``item_id`` is the id the user item will get."""

    audio_start_ms: int
    item_id: str


class InputAudioBufferSpeechStopped(
    Event, frozen=True, kw_only=True, tag="input_audio_buffer.speech_stopped"
):
    """VAD detected the end of speech."""

    audio_end_ms: int
    item_id: str


class InputAudioBufferTimeoutTriggered(
    Event, frozen=True, kw_only=True, tag="input_audio_buffer.timeout_triggered"
):
    """The idle timeout fired: silent audio was committed and a response will follow."""

    audio_start_ms: int
    audio_end_ms: int
    item_id: str


class InputAudioBufferDtmfEventReceived(
    Event, frozen=True, kw_only=True, tag="input_audio_buffer.dtmf_event_received"
):
    """SIP only: a DTMF key (``0-9*#A-D``) and when it arrived (unix seconds)."""

    event: str
    received_at: int


class _ResponseIdEvent(Event, frozen=True, kw_only=True):
    response_id: str


class OutputAudioBufferStarted(
    _ResponseIdEvent, frozen=True, kw_only=True, tag="output_audio_buffer.started"
):
    """WebRTC/SIP: the server began playing a response's audio."""


class OutputAudioBufferStopped(
    _ResponseIdEvent, frozen=True, kw_only=True, tag="output_audio_buffer.stopped"
):
    """WebRTC/SIP: the response's audio finished playing."""


class OutputAudioBufferCleared(
    _ResponseIdEvent, frozen=True, kw_only=True, tag="output_audio_buffer.cleared"
):
    """WebRTC/SIP: the output audio buffer was cleared."""


class ResponseCreated(Event, frozen=True, kw_only=True, tag="response.created"):
    """A response started (status ``in_progress``)."""

    response: Response


class ResponseDone(Event, frozen=True, kw_only=True, tag="response.done"):
    """A response ended: final status, output items and usage."""

    response: Response


class _OutputItemEvent(_ResponseIdEvent, frozen=True, kw_only=True):
    output_index: int
    item: Item


class ResponseOutputItemAdded(
    _OutputItemEvent, frozen=True, kw_only=True, tag="response.output_item.added"
):
    """The model started an output item."""


class ResponseOutputItemDone(
    _OutputItemEvent, frozen=True, kw_only=True, tag="response.output_item.done"
):
    """An output item is final."""


class _PartContext(_ResponseIdEvent, frozen=True, kw_only=True):
    item_id: str
    output_index: int
    content_index: int


class ResponseContentPartAdded(
    _PartContext, frozen=True, kw_only=True, tag="response.content_part.added"
):
    """A content part (``audio`` or ``text``) started."""

    part: ContentPart


class ResponseContentPartDone(
    _PartContext, frozen=True, kw_only=True, tag="response.content_part.done"
):
    """A content part is final."""

    part: ContentPart


class ResponseOutputTextDelta(
    _PartContext, frozen=True, kw_only=True, tag="response.output_text.delta"
):
    """A piece of output text."""

    delta: str
    obfuscation: str | UnsetType = UNSET


class ResponseOutputTextDone(
    _PartContext, frozen=True, kw_only=True, tag="response.output_text.done"
):
    """The whole output text of a part."""

    text: str


class ResponseOutputAudioDelta(
    _PartContext, frozen=True, kw_only=True, tag="response.output_audio.delta"
):
    """A chunk of output audio, base64 in ``delta``.

    ``audio`` (bytes) and ``pcm`` (int16 view) decode on first access and are cached;
    forwarding the event never decodes it.
    """

    delta: str

    @property
    def audio(self) -> bytes:
        """The decoded audio bytes (strictly validated base64; decoded once)."""
        cache = self.__dict__
        data: bytes | None = cache.get("_audio")
        if data is None:
            data = _decode_audio(self.delta, self.type)
            cache["_audio"] = data
        return data

    @property
    def pcm(self) -> npt.NDArray[np.int16]:
        """The audio as a read-only little-endian int16 array (no copy of ``audio``)."""
        audio = self.audio
        if len(audio) % 2:
            raise RemoteProtocolError(
                f"PCM16 audio needs an even number of bytes, not {len(audio)}",
                event_type=self.type,
                hint=1007,
                data=self.delta,
            )
        numpy = _numpy or _load_numpy()
        view: npt.NDArray[np.int16] = numpy.frombuffer(audio, dtype=numpy.dtype("<i2"))
        return view


class ResponseOutputAudioDone(
    _PartContext, frozen=True, kw_only=True, tag="response.output_audio.done"
):
    """The audio of a part is complete."""


class ResponseOutputAudioTranscriptDelta(
    _PartContext, frozen=True, kw_only=True, tag="response.output_audio_transcript.delta"
):
    """A piece of the transcript of the output audio."""

    delta: str
    obfuscation: str | UnsetType = UNSET


class ResponseOutputAudioTranscriptDone(
    _PartContext, frozen=True, kw_only=True, tag="response.output_audio_transcript.done"
):
    """The whole transcript of the output audio of a part."""

    transcript: str


class _CallContext(_ResponseIdEvent, frozen=True, kw_only=True):
    item_id: str
    output_index: int


class ResponseFunctionCallArgumentsDelta(
    _CallContext, frozen=True, kw_only=True, tag="response.function_call_arguments.delta"
):
    """A piece of a function call's JSON arguments."""

    call_id: str
    delta: str
    obfuscation: str | UnsetType = UNSET


class ResponseFunctionCallArgumentsDone(
    _CallContext, frozen=True, kw_only=True, tag="response.function_call_arguments.done"
):
    """A function call's complete JSON arguments."""

    call_id: str
    arguments: str
    name: str | UnsetType = UNSET


class ResponseMcpCallArgumentsDelta(
    _CallContext, frozen=True, kw_only=True, tag="response.mcp_call_arguments.delta"
):
    """A piece of an MCP call's JSON arguments."""

    delta: str
    obfuscation: str | None | UnsetType = UNSET


class ResponseMcpCallArgumentsDone(
    _CallContext, frozen=True, kw_only=True, tag="response.mcp_call_arguments.done"
):
    """An MCP call's complete JSON arguments."""

    arguments: str


class _McpCallStatus(Event, frozen=True, kw_only=True):
    item_id: str
    output_index: int


class ResponseMcpCallInProgress(
    _McpCallStatus, frozen=True, kw_only=True, tag="response.mcp_call.in_progress"
):
    """An MCP call started."""


class ResponseMcpCallCompleted(
    _McpCallStatus, frozen=True, kw_only=True, tag="response.mcp_call.completed"
):
    """An MCP call succeeded."""


class ResponseMcpCallFailed(
    _McpCallStatus, frozen=True, kw_only=True, tag="response.mcp_call.failed"
):
    """An MCP call failed."""


class _McpListTools(Event, frozen=True, kw_only=True):
    item_id: str


class McpListToolsInProgress(
    _McpListTools, frozen=True, kw_only=True, tag="mcp_list_tools.in_progress"
):
    """Listing an MCP server's tools started."""


class McpListToolsCompleted(
    _McpListTools, frozen=True, kw_only=True, tag="mcp_list_tools.completed"
):
    """Listing an MCP server's tools succeeded."""


class McpListToolsFailed(_McpListTools, frozen=True, kw_only=True, tag="mcp_list_tools.failed"):
    """Listing an MCP server's tools failed."""


class RateLimitsUpdated(Event, frozen=True, kw_only=True, tag="rate_limits.updated"):
    """Current rate limits (in GA practice one ``tokens`` entry, after ``response.done``)."""

    rate_limits: list[RateLimit]


# ============================================================================ client events ==


class SessionUpdate(Event, frozen=True, kw_only=True, tag="session.update"):
    """Change the session configuration; ``session.type`` is required in GA."""

    session: SessionConfig


class InputAudioBufferAppend(Event, frozen=True, kw_only=True, tag="input_audio_buffer.append"):
    """Append base64 audio (in the session's input format) to the input buffer."""

    audio: str

    @classmethod
    def from_pcm(
        cls,
        pcm: bytes | bytearray | memoryview | npt.NDArray[np.int16],
        *,
        event_id: str | UnsetType = UNSET,
    ) -> InputAudioBufferAppend:
        """Build from raw audio bytes or an int16 array with one base64 encode, no other copy."""
        return cls(audio=encode_base64(pcm), event_id=event_id)

    @property
    def audio_bytes(self) -> bytes:
        """The decoded audio bytes (strictly validated base64)."""
        return _decode_audio(self.audio, self.type)


class InputAudioBufferCommit(Event, frozen=True, kw_only=True, tag="input_audio_buffer.commit"):
    """Commit the input buffer as a user item."""


class InputAudioBufferClear(Event, frozen=True, kw_only=True, tag="input_audio_buffer.clear"):
    """Discard the uncommitted input audio."""


class OutputAudioBufferClear(Event, frozen=True, kw_only=True, tag="output_audio_buffer.clear"):
    """WebRTC/SIP only: stop playing the output audio."""


class ConversationItemCreate(Event, frozen=True, kw_only=True, tag="conversation.item.create"):
    """Add an item; ``previous_item_id`` ``"root"`` inserts at the start."""

    item: Item
    previous_item_id: str | None | UnsetType = UNSET


class ConversationItemRetrieve(Event, frozen=True, kw_only=True, tag="conversation.item.retrieve"):
    """Ask for an item's full content (including audio)."""

    item_id: str


class ConversationItemTruncate(Event, frozen=True, kw_only=True, tag="conversation.item.truncate"):
    """Cut an assistant audio item at ``audio_end_ms`` (what the user heard)."""

    item_id: str
    content_index: int
    audio_end_ms: int


class ConversationItemDelete(Event, frozen=True, kw_only=True, tag="conversation.item.delete"):
    """Remove an item from the conversation."""

    item_id: str


class ResponseCreate(Event, frozen=True, kw_only=True, tag="response.create"):
    """Ask the model for a response, optionally with per-response overrides."""

    response: ResponseCreateParams | UnsetType = UNSET


class ResponseCancel(Event, frozen=True, kw_only=True, tag="response.cancel"):
    """Cancel the active response (or the one named)."""

    response_id: str | UnsetType = UNSET


# ================================================================================ fallbacks ==


class UnknownEvent(Struct, frozen=True, kw_only=True, dict=True):
    """An event whose ``type`` rtproto does not know; ``raw`` is the whole object.

    Parsed, it also keeps the text it arrived as (like a typed event, outside its fields): it
    serialises back to exactly that text in the same dialect, and to ``raw`` rewritten by the
    dialect mapping in the other one.
    """

    type: str
    raw: dict[str, Any]


class InvalidEvent(Struct, frozen=True, kw_only=True, dict=True):
    """A known event whose fields did not match their types.

    ``problem`` says what was wrong (with the JSON path); ``raw`` is the whole object (in the
    dialect it arrived in). Serialised, it is sent like an :class:`UnknownEvent`.
    """

    type: str
    problem: str
    raw: dict[str, Any]


TypedServerEvent = Union[
    ErrorEvent,
    SessionCreated,
    SessionUpdated,
    ConversationCreated,
    ConversationItemCreated,
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemRetrieved,
    ConversationItemTruncated,
    ConversationItemDeleted,
    InputAudioTranscriptionDelta,
    InputAudioTranscriptionCompleted,
    InputAudioTranscriptionFailed,
    InputAudioTranscriptionSegment,
    InputAudioBufferCommitted,
    InputAudioBufferCleared,
    InputAudioBufferSpeechStarted,
    InputAudioBufferSpeechStopped,
    InputAudioBufferTimeoutTriggered,
    InputAudioBufferDtmfEventReceived,
    OutputAudioBufferStarted,
    OutputAudioBufferStopped,
    OutputAudioBufferCleared,
    ResponseCreated,
    ResponseDone,
    ResponseOutputItemAdded,
    ResponseOutputItemDone,
    ResponseContentPartAdded,
    ResponseContentPartDone,
    ResponseOutputTextDelta,
    ResponseOutputTextDone,
    ResponseOutputAudioDelta,
    ResponseOutputAudioDone,
    ResponseOutputAudioTranscriptDelta,
    ResponseOutputAudioTranscriptDone,
    ResponseFunctionCallArgumentsDelta,
    ResponseFunctionCallArgumentsDone,
    ResponseMcpCallArgumentsDelta,
    ResponseMcpCallArgumentsDone,
    ResponseMcpCallInProgress,
    ResponseMcpCallCompleted,
    ResponseMcpCallFailed,
    McpListToolsInProgress,
    McpListToolsCompleted,
    McpListToolsFailed,
    RateLimitsUpdated,
]

TypedClientEvent = Union[
    SessionUpdate,
    InputAudioBufferAppend,
    InputAudioBufferCommit,
    InputAudioBufferClear,
    OutputAudioBufferClear,
    ConversationItemCreate,
    ConversationItemRetrieve,
    ConversationItemTruncate,
    ConversationItemDelete,
    ResponseCreate,
    ResponseCancel,
]

#: What ``parse_server_event`` returns.
ServerEvent = Union[TypedServerEvent, UnknownEvent, InvalidEvent]
#: What ``parse_client_event`` returns.
ClientEvent = Union[TypedClientEvent, UnknownEvent, InvalidEvent]


def _classes(union: Any) -> dict[str, type[Event]]:
    table: dict[str, type[Event]] = {}
    for cls in union.__args__:
        tag = cls.__struct_config__.tag
        cls.type = tag
        table[tag] = cls
    return table


#: Wire name -> event class, for every typed server event.
SERVER_EVENT_TYPES: dict[str, type[Event]] = _classes(TypedServerEvent)
#: Wire name -> event class, for every typed client event.
CLIENT_EVENT_TYPES: dict[str, type[Event]] = _classes(TypedClientEvent)


_numpy: Any = None  # imported on first use of ``.pcm``: ``import rtproto`` stays light


def _load_numpy() -> Any:
    global _numpy
    import numpy

    _numpy = numpy
    return numpy


def _decode_audio(text: str, event_type: str) -> bytes:
    try:
        return decode_base64(text)
    except ValueError as exc:
        raise RemoteProtocolError(str(exc), event_type=event_type, hint=1007, data=text) from None
