"""Transport events: what the client session core hands the application.

The same names and fields reach the application from every transport and driver. Typed server
events themselves form the raw stream (every one is yielded before what it causes); the
classes here are what the core derives from them. All are immutable ``msgspec.Struct``s.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from msgspec import Struct

from ..events import ErrorEvent, ResponseOutputAudioDelta
from ..models import (
    Item,
    McpApprovalRequestItem,
    McpCallItem,
    McpListToolsItem,
    McpToolInfo,
    Response,
    Usage,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "AudioChunk",
    "AudioDone",
    "AudioInterrupted",
    "AudioTranscriptDelta",
    "ConnectionChange",
    "ConnectionStatus",
    "FunctionCall",
    "HistoryUpdated",
    "ItemDeleted",
    "ItemUpdate",
    "McpApprovalRequested",
    "McpToolCallCompleted",
    "McpToolsListed",
    "ProtocolWarning",
    "ServerError",
    "TextDelta",
    "TransportEvent",
    "TruncatedItem",
    "TurnDone",
    "TurnStarted",
    "UsageTotals",
    "UsageUpdate",
]


class ConnectionStatus(str, enum.Enum):
    """Where the session's connection is."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class TransportEvent(Struct, frozen=True, kw_only=True, gc=False):
    """Base of every derived transport event; ``name`` is its stable string name."""

    name: ClassVar[str]


class AudioChunk(TransportEvent, frozen=True, gc=False):
    """A chunk of the model's audio, in the session's output format.

    ``audio`` (bytes) and ``pcm`` (int16 view, PCM16 formats) decode the base64 on access.
    """

    name: ClassVar[str] = "audio"
    response_id: str
    item_id: str
    content_index: int
    event: ResponseOutputAudioDelta

    @property
    def audio(self) -> bytes:
        """The audio bytes (decoded once, cached on the server event)."""
        return self.event.audio

    @property
    def pcm(self) -> npt.NDArray[np.int16]:
        """The audio as a little-endian int16 array (for PCM16 output)."""
        return self.event.pcm


class TruncatedItem(Struct, frozen=True, kw_only=True, gc=False):
    """Where an interrupted item was cut: ``audio_end_ms`` of ``received_ms`` received."""

    response_id: str
    item_id: str
    content_index: int
    audio_end_ms: int
    received_ms: int


class AudioInterrupted(TransportEvent, frozen=True, kw_only=True, gc=False):
    """Stop local playback now: the turn was interrupted. ``truncated`` says what was cut."""

    name: ClassVar[str] = "audio_interrupted"
    response_id: str | None
    truncated: tuple[TruncatedItem, ...] = ()


class AudioDone(TransportEvent, frozen=True, kw_only=True, gc=False):
    """The server finished sending the audio of one content part."""

    name: ClassVar[str] = "audio_done"
    response_id: str
    item_id: str
    content_index: int


class AudioTranscriptDelta(TransportEvent, frozen=True, gc=False):
    """A piece of the transcript of the model's audio."""

    name: ClassVar[str] = "audio_transcript_delta"
    response_id: str
    item_id: str
    delta: str


class TextDelta(TransportEvent, frozen=True, gc=False):
    """A piece of the model's text output."""

    name: ClassVar[str] = "text_delta"
    response_id: str
    item_id: str
    delta: str


class TurnStarted(TransportEvent, frozen=True, kw_only=True, gc=False):
    """A response started."""

    name: ClassVar[str] = "turn_started"
    response: Response


class TurnDone(TransportEvent, frozen=True, kw_only=True, gc=False):
    """A response ended; ``response.status`` says how, ``usage`` what it cost."""

    name: ClassVar[str] = "turn_done"
    response: Response
    usage: Usage | None


class FunctionCall(TransportEvent, frozen=True, kw_only=True, gc=False):
    """The model called a function tool (emitted once per ``call_id``, when its output item
    is reported ``completed``). ``function`` is the tool's name (``name`` is every transport event's
    kind, ``"function_call"``); ``arguments`` is JSON text, as the model wrote it."""

    name: ClassVar[str] = "function_call"
    function: str
    call_id: str
    arguments: str
    item_id: str
    response_id: str | None


class McpToolsListed(TransportEvent, frozen=True, kw_only=True, gc=False):
    """A hosted MCP server listed its tools (its ``mcp_list_tools`` item is done)."""

    name: ClassVar[str] = "mcp_tools_listed"
    server_label: str
    tools: tuple[McpToolInfo, ...]
    item: McpListToolsItem


class McpApprovalRequested(TransportEvent, frozen=True, kw_only=True, gc=False):
    """A hosted MCP tool call waits for approval (emitted once per request): answer with
    :meth:`~rtproto.session.ClientSession.send_mcp_response` ``(event.item, approved)``."""

    name: ClassVar[str] = "mcp_approval_request"
    item: McpApprovalRequestItem


class McpToolCallCompleted(TransportEvent, frozen=True, kw_only=True, gc=False):
    """A hosted MCP tool call ended (emitted once per call): ``item.output`` holds its result,
    ``item.error`` what went wrong."""

    name: ClassVar[str] = "mcp_tool_call_completed"
    item: McpCallItem


class ItemUpdate(TransportEvent, frozen=True, kw_only=True, gc=False):
    """An item of the conversation history was added or changed."""

    name: ClassVar[str] = "item_update"
    item: Item
    previous_item_id: str | None


class ItemDeleted(TransportEvent, frozen=True, kw_only=True, gc=False):
    """An item was removed from the conversation history."""

    name: ClassVar[str] = "item_deleted"
    item_id: str


class HistoryUpdated(TransportEvent, frozen=True, kw_only=True, gc=False):
    """The conversation history as it now stands, in order."""

    name: ClassVar[str] = "history_updated"
    history: tuple[Item, ...]


class UsageTotals(Struct, frozen=True, kw_only=True, gc=False):
    """Running token totals over every finished response of the session."""

    responses: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    cached_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0


class UsageUpdate(TransportEvent, frozen=True, kw_only=True, gc=False):
    """Usage of the response that just ended (``usage``) and the session's ``totals``."""

    name: ClassVar[str] = "usage_update"
    usage: Usage
    totals: UsageTotals


class ConnectionChange(TransportEvent, frozen=True, kw_only=True, gc=False):
    """The connection status changed; ``code`` and ``reason`` say why it ended, when it did.

    ``code`` is the WebSocket close code where there is one (1006: lost without a close).
    """

    name: ClassVar[str] = "connection_change"
    status: ConnectionStatus
    reason: str | None = None
    code: int | None = None


class ServerError(TransportEvent, frozen=True, kw_only=True, gc=False):
    """The server reported an error (data, not an exception).

    ``client_event_type`` names the client event that failed, when the server linked one.
    """

    name: ClassVar[str] = "error"
    event: ErrorEvent
    client_event_type: str | None = None


class ProtocolWarning(TransportEvent, frozen=True, kw_only=True, gc=False):
    """Something unexpected the session tolerated: a mistyped event, an unknown reference,
    a message that is not an event (dropped)."""

    name: ClassVar[str] = "warning"
    message: str
    event: Any = None
