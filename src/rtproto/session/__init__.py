"""The client session core (sans-I/O) and the transport events it produces."""

from __future__ import annotations

from . import core
from .core import ClientSession, SessionEvent
from .events import (
    AudioChunk,
    AudioDone,
    AudioInterrupted,
    AudioTranscriptDelta,
    ConnectionChange,
    ConnectionStatus,
    FunctionCall,
    HistoryUpdated,
    ItemDeleted,
    ItemUpdate,
    McpApprovalRequested,
    McpToolCallCompleted,
    McpToolsListed,
    ProtocolWarning,
    ServerError,
    TextDelta,
    TransportEvent,
    TruncatedItem,
    TurnDone,
    TurnStarted,
    UsageTotals,
    UsageUpdate,
)
from .options import Limits, Profile, SessionOptions, SessionState, counter_ids

#: True when the session core is the compiled build (``RTPROTO_COMPILE=1``, docs/session.md).
COMPILED: bool = not core.__file__.endswith(".py")

__all__ = [
    "COMPILED",
    "AudioChunk",
    "AudioDone",
    "AudioInterrupted",
    "AudioTranscriptDelta",
    "ClientSession",
    "ConnectionChange",
    "ConnectionStatus",
    "FunctionCall",
    "HistoryUpdated",
    "ItemDeleted",
    "ItemUpdate",
    "Limits",
    "McpApprovalRequested",
    "McpToolCallCompleted",
    "McpToolsListed",
    "Profile",
    "ProtocolWarning",
    "ServerError",
    "SessionEvent",
    "SessionOptions",
    "SessionState",
    "TextDelta",
    "TransportEvent",
    "TruncatedItem",
    "TurnDone",
    "TurnStarted",
    "UsageTotals",
    "UsageUpdate",
    "counter_ids",
]
