"""Log records of the server core, for the CLI and tests: what happened, in one line each.

Pull them with :meth:`~rtproto.server.ServerSession.next_event`. They are not protocol
events: the wire carries server events (``messages_to_send``); these summarise them.
"""

from __future__ import annotations

from typing import ClassVar, Union

from msgspec import Struct

from ..models import Usage

__all__ = [
    "AudioCommitted",
    "ClientError",
    "ConnectionEnded",
    "ItemAdded",
    "ServerLog",
    "SessionExpired",
    "SessionStarted",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "TurnEnded",
    "TurnStarted",
]


class _Log(Struct, frozen=True, kw_only=True):
    name: ClassVar[str]

    def describe(self) -> str:  # pragma: no cover - every record overrides it
        raise NotImplementedError


class SessionStarted(_Log, frozen=True, kw_only=True):
    """``session.created`` went out."""

    name: ClassVar[str] = "session_started"
    session_id: str
    model: str
    profile: str
    dialect: str

    def describe(self) -> str:
        return (
            f"session {self.session_id} started: {self.model}, {self.profile}, "
            f"{self.dialect} dialect"
        )


class SessionUpdated(_Log, frozen=True, kw_only=True):
    """A ``session.update`` was applied; ``fields`` are the top-level keys it set."""

    name: ClassVar[str] = "session_updated"
    fields: tuple[str, ...]

    def describe(self) -> str:
        return "session updated: " + (", ".join(self.fields) or "(nothing)")


class SpeechStarted(_Log, frozen=True, kw_only=True):
    """Server VAD heard speech start."""

    name: ClassVar[str] = "speech_started"
    item_id: str
    audio_start_ms: int

    def describe(self) -> str:
        return f"speech started at {self.audio_start_ms} ms ({self.item_id})"


class SpeechStopped(_Log, frozen=True, kw_only=True):
    """Server VAD heard speech stop."""

    name: ClassVar[str] = "speech_stopped"
    item_id: str
    audio_end_ms: int

    def describe(self) -> str:
        return f"speech stopped at {self.audio_end_ms} ms ({self.item_id})"


class AudioCommitted(_Log, frozen=True, kw_only=True):
    """The input buffer became a user item (``trigger``: ``vad``, ``client``, ``timeout``)."""

    name: ClassVar[str] = "audio_committed"
    item_id: str
    duration_ms: int
    trigger: str

    def describe(self) -> str:
        return f"{self.duration_ms} ms of user audio committed as {self.item_id} ({self.trigger})"


class ItemAdded(_Log, frozen=True, kw_only=True):
    """The client created an item."""

    name: ClassVar[str] = "item_added"
    item_id: str
    item_type: str
    role: str | None = None

    def describe(self) -> str:
        role = f" ({self.role})" if self.role else ""
        return f"item {self.item_id} added: {self.item_type}{role}"


class TurnStarted(_Log, frozen=True, kw_only=True):
    """A response started (``response.created``)."""

    name: ClassVar[str] = "turn_started"
    response_id: str
    out_of_band: bool = False

    def describe(self) -> str:
        kind = "out-of-band response" if self.out_of_band else "response"
        return f"{kind} {self.response_id} started"


class TurnEnded(_Log, frozen=True, kw_only=True):
    """A response ended (``response.done``)."""

    name: ClassVar[str] = "turn_ended"
    response_id: str
    status: str
    reason: str | None = None
    usage: Usage | None = None

    def describe(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        total = self.usage.total_tokens if self.usage is not None else 0
        return f"response {self.response_id} {self.status}{why}, {total} tokens"


class ClientError(_Log, frozen=True, kw_only=True):
    """An ``error`` event was sent to the client."""

    name: ClassVar[str] = "client_error"
    code: str | None
    message: str
    param: str | None = None
    event_id: str | None = None

    def describe(self) -> str:
        return f"error {self.code}: {self.message}"


class SessionExpired(_Log, frozen=True, kw_only=True):
    """The session hit its maximum duration; the connection is to be closed (1001)."""

    name: ClassVar[str] = "session_expired"
    max_duration: float

    def describe(self) -> str:
        return f"session expired after {self.max_duration:g} s"


class ConnectionEnded(_Log, frozen=True, kw_only=True):
    """The transport went away."""

    name: ClassVar[str] = "connection_ended"

    def describe(self) -> str:
        return "connection ended"


ServerLog = Union[
    SessionStarted,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    AudioCommitted,
    ItemAdded,
    TurnStarted,
    TurnEnded,
    ClientError,
    SessionExpired,
    ConnectionEnded,
]
