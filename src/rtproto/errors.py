"""Errors that say who is at fault.

``LocalProtocolError`` means the application misused the API (raised from send-side calls);
``RemoteProtocolError`` means the peer sent something wrong (raised from the receive path);
``ConnectionClosed`` is the unavoidable race of sending after the peer has closed. A server
``error`` *event* is data (``rtproto.events.ErrorEvent``), never one of these exceptions.
"""

from __future__ import annotations

__all__ = ["ConnectionClosed", "LocalProtocolError", "RemoteProtocolError", "RtprotoError"]

#: How much of the offending input an error keeps (characters).
MAX_EXCERPT = 200


def _excerpt(data: object) -> str | None:
    if data is None:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        text = bytes(data[: MAX_EXCERPT * 4]).decode("utf-8", "replace")
    else:
        text = data if isinstance(data, str) else repr(data)
    return text[:MAX_EXCERPT]


class RtprotoError(Exception):
    """Base class of every error rtproto raises.

    Attributes:
        message: what went wrong, in words.
        event_type: the event ``type`` involved, when known.
        state: the state of the object that raised, when it has one.
        hint: what the caller should answer with, when there is an obvious answer: a
            WebSocket close code (``1009``) or an HTTP status (``400``).
        excerpt: at most 200 characters of the offending input.
    """

    def __init__(
        self,
        message: str,
        *,
        event_type: str | None = None,
        state: str | None = None,
        hint: int | str | None = None,
        data: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.event_type = event_type
        self.state = state
        self.hint = hint
        self.excerpt = _excerpt(data)

    def __str__(self) -> str:
        parts = [self.message]
        if self.event_type is not None:
            parts.append(f"event type {self.event_type!r}")
        if self.state is not None:
            parts.append(f"state {self.state}")
        if self.hint is not None:
            parts.append(f"hint {self.hint}")
        return "; ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, event_type={self.event_type!r}, "
            f"state={self.state!r}, hint={self.hint!r})"
        )


class LocalProtocolError(RtprotoError):
    """The application asked for something the protocol or the current state forbids."""


class RemoteProtocolError(RtprotoError):
    """The peer sent something that is not valid protocol."""


class ConnectionClosed(RtprotoError):
    """A send raced with the peer closing the connection; nothing was sent.

    Attributes:
        code: the close code received, when there was one.
        reason: the close reason received, when there was one.
    """

    def __init__(
        self,
        message: str = "the connection is closed",
        *,
        code: int | None = None,
        reason: str | None = None,
        state: str | None = None,
    ) -> None:
        super().__init__(message, state=state, hint=code)
        self.code = code
        self.reason = reason
