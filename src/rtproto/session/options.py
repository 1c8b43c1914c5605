"""What a :class:`~rtproto.session.ClientSession` is configured with: its profile, limits
and options, checked when they are made. (Never compiled: a dataclass stays a dataclass in
the compiled build, docs/session.md, "Speed".)"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import models as M
from ..codec import DEFAULT_MAX_MESSAGE_SIZE
from ..dialect import Dialect
from ..errors import LocalProtocolError

__all__ = ["Limits", "Profile", "SessionOptions", "SessionState", "counter_ids"]


class Profile(str, enum.Enum):
    """How the transport carries audio, which changes connect, interrupt and audio rules.

    - ``websocket``: audio as events; the client truncates interrupted audio itself.
    - ``webrtc``: audio on media tracks; connect completes on ``session.updated``;
      interruption clears the server's output buffer; messages up to 64 KiB.
    - ``sip``: a sideband control channel for a phone call; no audio events.
    - ``phone``: audio as events bridged to a phone line whose playback is acknowledged by
      marks (:class:`rtproto.phone.TwilioBridge`): G.711 mu-law both ways by default, played
      positions only from :meth:`ClientSession.playback_progress`, plus
      ``phone_playback_lead_ms`` when an interruption cuts the audio.
    """

    WEBSOCKET = "websocket"
    WEBRTC = "webrtc"
    SIP = "sip"
    PHONE = "phone"


class SessionState(str, enum.Enum):
    """The life of a :class:`ClientSession`."""

    IDLE = "IDLE"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class Limits:
    """Bounds on every buffer the core holds."""

    #: Largest incoming message (JSON text) accepted.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Largest outgoing message (bytes of JSON text); ``None``: 64 KiB for WebRTC (its data
    #: channel), else ``max_message_size`` and at least what a 15 MiB append needs (21 MiB).
    max_outgoing_message_size: int | None = None
    #: Transport events waiting for :meth:`ClientSession.next_event`.
    max_pending_events: int = 10_000
    #: Messages waiting for :meth:`ClientSession.messages_to_send` (or for the connection).
    max_pending_messages: int = 10_000
    #: Conversation items remembered (the oldest are forgotten locally).
    max_history_items: int = 4096
    #: Assistant audio items tracked for truncation.
    max_tracked_items: int = 64

    def __post_init__(self) -> None:
        for name in (
            "max_message_size",
            "max_pending_events",
            "max_pending_messages",
            "max_history_items",
            "max_tracked_items",
        ):
            _require_positive_int(f"Limits.{name}", getattr(self, name))
        if self.max_outgoing_message_size is not None:
            _require_positive_int(
                "Limits.max_outgoing_message_size", self.max_outgoing_message_size
            )


def counter_ids(prefix: str = "rtproto") -> Callable[[str], str]:
    """A deterministic id generator: ``f"{prefix}_{kind}_{n}"`` with a running counter."""
    counter = itertools.count(1)
    return lambda kind: f"{prefix}_{kind}_{next(counter)}"


@dataclass(frozen=True)
class SessionOptions:
    """Configuration of a :class:`ClientSession`."""

    #: The model; sent in the initial ``session.update`` when given.
    model: str | None = None
    #: Initial session configuration: GA nested or older flat shape, camelCase or snake_case.
    session: Mapping[str, Any] | M.RealtimeSession | None = None
    #: How the transport carries audio (see :class:`Profile`).
    profile: Profile = Profile.WEBSOCKET
    #: Wire dialect of the messages.
    dialect: Dialect = Dialect.GA
    #: Buffer bounds.
    limits: Limits = field(default_factory=Limits)
    #: Makes client ``event_id``s from a kind (``"response_create"``); deterministic default.
    id_generator: Callable[[str], str] | None = None
    #: WebRTC: seconds to wait for ``session.updated`` before reporting connected anyway.
    session_update_timeout: float = 5.0
    #: Seconds a degraded transport (a WebRTC peer connection gone ``disconnected``) may
    #: take to recover before the session ends (see :meth:`ClientSession.connection_degraded`).
    disconnect_grace: float = 5.0
    #: Apply the JS SDK's defaults to the initial configuration.
    config_defaults: bool = True
    #: ``phone`` profile: milliseconds the line is taken to have played past the position
    #: last acknowledged (:meth:`ClientSession.playback_progress`, from a mark), and into the
    #: oldest unacknowledged item, when an interruption cuts the audio (the JS Twilio
    #: transport's 50 ms; a mark comes back only after its audio has played).
    phone_playback_lead_ms: float = 50.0

    def __post_init__(self) -> None:
        for name, unit in (
            ("session_update_timeout", "seconds"),
            ("disconnect_grace", "seconds"),
            ("phone_playback_lead_ms", "milliseconds"),
        ):
            value = getattr(self, name)
            if not finite_and_not_negative(value):
                raise LocalProtocolError(
                    f"SessionOptions.{name} must be a finite number of {unit} >= 0, not {value!r}"
                )
        # the core compares enum members by identity: turn "webrtc" into Profile.WEBRTC
        for name, kind in (("profile", Profile), ("dialect", Dialect)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(repr(member.value) for member in kind)
                raise LocalProtocolError(
                    f"SessionOptions.{name} must be one of {choices}, not {value!r}"
                ) from None


def finite_and_not_negative(value: object) -> bool:
    """A number (not a bool) from 0 up, NaN and infinity excluded."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value < math.inf


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LocalProtocolError(f"{name} must be an integer >= 1, not {value!r}")
