"""The server role of the Realtime protocol: the emulator's pure core and the model stand-in.

:class:`ServerSession` answers a client exactly as the service does (events, orders, error
codes and messages; see docs/emulator.md for what is approximated), with no I/O: drivers feed
it messages and time and send what it produces. A :class:`Responder` stands in for the model.
"""

from __future__ import annotations

from .core import SUPPORTED_CLIENT_EVENTS, ServerSession
from .log import (
    AudioCommitted,
    ClientError,
    ConnectionEnded,
    ItemAdded,
    ServerLog,
    SessionExpired,
    SessionStarted,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TurnEnded,
    TurnStarted,
)
from .options import (
    DEFAULT_INSTRUCTIONS,
    Pace,
    ServerOptions,
    ServerProfile,
    ServiceIds,
    sequential_ids,
)
from .responder import (
    EchoResponder,
    FunctionCallPart,
    HookResponder,
    Part,
    Responder,
    ResponseContext,
    ResponsePlan,
    ScriptResponder,
    SpeechPart,
    TextPart,
    pcm24k_from_wav,
    script_audio_files,
    synthesize_speech,
)

__all__ = [
    "DEFAULT_INSTRUCTIONS",
    "SUPPORTED_CLIENT_EVENTS",
    "AudioCommitted",
    "ClientError",
    "ConnectionEnded",
    "EchoResponder",
    "FunctionCallPart",
    "HookResponder",
    "ItemAdded",
    "Pace",
    "Part",
    "Responder",
    "ResponseContext",
    "ResponsePlan",
    "ScriptResponder",
    "ServerLog",
    "ServerOptions",
    "ServerProfile",
    "ServerSession",
    "ServiceIds",
    "SessionExpired",
    "SessionStarted",
    "SessionUpdated",
    "SpeechPart",
    "SpeechStarted",
    "SpeechStopped",
    "TextPart",
    "TurnEnded",
    "TurnStarted",
    "pcm24k_from_wav",
    "script_audio_files",
    "sequential_ids",
    "synthesize_speech",
]
