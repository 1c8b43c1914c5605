"""The opt-in reconnect policy and the driver-level events it produces.

Reconnecting is not resuming: the server forgets a session when its socket drops. After a
drop the driver opens a new connection, sends the session configuration again (a new
:class:`~rtproto.session.ClientSession` with the same options) and, when asked, recreates the
conversation items that can be recreated as ``conversation.item.create``:

- text message parts (``input_text``, ``output_text``) and images, as they are;
- a user's audio part as ``input_text`` of its transcript;
- an assistant's audio part as ``output_text`` of its transcript;
- function calls, their outputs, MCP items and audio without a transcript: lost.

Every step is reported with a driver-level event (:class:`Reconnecting`,
:class:`Reconnected`, :class:`Replayed`, :class:`ReconnectFailed`), so the application can
tell its user what was kept and what was not.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from rtproto import events as E
from rtproto import models as M
from rtproto.session import TransportEvent

__all__ = [
    "DriverEvent",
    "ReconnectFailed",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "Replayed",
    "exponential_backoff",
    "replay_items",
]


def exponential_backoff(
    initial: float = 0.5, factor: float = 2.0, cap: float = 30.0, jitter: float = 0.1
) -> Callable[[int], float]:
    """``initial * factor ** (attempt - 1)`` seconds, at most ``cap``, plus up to ``jitter``
    of itself at random (so that many clients dropped together do not return together)."""

    def backoff(attempt: int) -> float:
        delay = min(cap, initial * factor ** max(0, attempt - 1))
        return delay + delay * jitter * random.random()

    return backoff


#: Close codes after which a connection is worth re-opening: lost without a close frame
#: (1006), the server going away (1001, e.g. the 60-minute cap), and the server's "try again"
#: family (1011 internal error, 1012 restart, 1013 try again later).
RECONNECT_CODES = frozenset({1001, 1006, 1011, 1012, 1013})


@dataclass(frozen=True)
class ReconnectPolicy:
    """When and how a driver re-opens a dropped connection (off unless given to ``connect``)."""

    #: Attempts before giving up. The count restarts only once a re-opened connection
    #: proved healthy (stayed up ``healthy_after`` seconds): a server that upgrades and then
    #: drops every time uses them up.
    max_attempts: int = 5
    #: Seconds to wait before attempt ``n`` (1-based); exponential with a cap by default.
    backoff: Callable[[int], float] = field(default_factory=exponential_backoff)
    #: Recreate the conversation items that can be recreated (see the module docs).
    replay_history: bool = True
    #: Close codes that trigger a reconnect; other codes (1000, 3000 auth, 4000 bad request)
    #: end the connection for good.
    codes: frozenset[int] = RECONNECT_CODES
    #: Seconds a connection must stay up to count as healthy (then the next drop starts
    #: again at attempt 1).
    healthy_after: float = 10.0
    #: The longest wait a refusal's ``Retry-After`` may impose (the default backoff's cap);
    #: it lengthens the backoff's delay, never shortens it.
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, not {self.max_attempts}")
        for name in ("healthy_after", "max_retry_after"):
            value = getattr(self, name)
            if not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value}")


class DriverEvent(TransportEvent, frozen=True, kw_only=True, gc=False):
    """Base of the events a driver adds to the session's stream."""


class Reconnecting(DriverEvent, frozen=True, kw_only=True, gc=False):
    """The connection dropped; attempt ``attempt`` starts after ``delay`` seconds."""

    name: ClassVar[str] = "reconnecting"
    attempt: int
    delay: float
    reason: str
    code: int | None = None


class Reconnected(DriverEvent, frozen=True, kw_only=True, gc=False):
    """Attempt ``attempt`` succeeded: a new session is open and configured."""

    name: ClassVar[str] = "reconnected"
    attempt: int


class Replayed(DriverEvent, frozen=True, kw_only=True, gc=False):
    """Which items of the old conversation were recreated (by id) and which were lost."""

    name: ClassVar[str] = "replayed"
    restored: tuple[str, ...]
    lost: tuple[str, ...]


class ReconnectFailed(DriverEvent, frozen=True, kw_only=True, gc=False):
    """Every attempt failed (or the server refused for good); the connection is over."""

    name: ClassVar[str] = "reconnect_failed"
    attempts: int
    reason: str


def _replay_part(part: M.ContentPart) -> M.ContentPart | None:
    kind = part.type
    if kind in ("input_text", "output_text"):
        return M.ContentPart(type=kind, text=part.text) if isinstance(part.text, str) else None
    if kind == "input_image":
        if not isinstance(part.image_url, str):
            return None
        if isinstance(part.detail, str):
            return M.ContentPart(type=kind, image_url=part.image_url, detail=part.detail)
        return M.ContentPart(type=kind, image_url=part.image_url)
    if kind in ("input_audio", "output_audio") and isinstance(part.transcript, str):
        if not part.transcript:
            return None
        text_kind = "input_text" if kind == "input_audio" else "output_text"
        return M.ContentPart(type=text_kind, text=part.transcript)
    return None


def replay_items(
    history: Sequence[M.Item],
) -> tuple[list[E.ConversationItemCreate], tuple[str, ...], tuple[str, ...]]:
    """The ``conversation.item.create`` events recreating ``history``, and the ids restored
    and lost.

    Recreated items keep their ids, so references the application holds stay valid. An item
    is restored when at least one of its parts can be; parts that cannot are dropped.
    """
    creates: list[E.ConversationItemCreate] = []
    restored: list[str] = []
    lost: list[str] = []
    for item in history:
        item_id = item.id if isinstance(item.id, str) else None
        parts: list[M.ContentPart] = []
        if isinstance(item, M.MessageItem) and item.role in ("system", "user", "assistant"):
            parts = [p for p in map(_replay_part, item.content) if p is not None]
            if item.role == "assistant":
                parts = [p for p in parts if p.type == "output_text"]
            else:
                parts = [p for p in parts if p.type != "output_text"]
        if not parts:
            if item_id is not None:
                lost.append(item_id)
            continue
        assert isinstance(item, M.MessageItem)
        if item_id is not None:
            copy = M.MessageItem(id=item_id, role=item.role, content=parts)
            restored.append(item_id)
        else:
            copy = M.MessageItem(role=item.role, content=parts)
        creates.append(E.ConversationItemCreate(item=copy))
    return creates, tuple(restored), tuple(lost)
