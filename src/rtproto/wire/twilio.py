"""Twilio Media Streams messages: what Twilio sends a bidirectional stream, typed, and what
the application sends back. No I/O.

Twilio opens a WebSocket to the application (TwiML ``<Connect><Stream url="wss://...">``) and
sends JSON text messages: ``connected``, ``start`` (the stream's ids, media format and custom
parameters), ``media`` (20 ms of G.711 mu-law at 8 kHz, base64), ``mark`` (a mark the
application sent, echoed once the audio before it has played), ``dtmf`` and ``stop``. The
application answers with ``media``, ``mark`` and ``clear`` (drop the audio not yet played;
Twilio then echoes the marks still pending).

:func:`parse_twilio_message` checks what the bridge relies on and keeps the rest: every typed
message carries its decoded JSON as ``raw``; an event type Twilio may add later comes back as
:class:`UnknownStreamMessage`. Numbers Twilio sends as strings (``sequenceNumber``,
``chunk``, ``timestamp``) are read as integers when they are digit strings of up to 16
digits (or JSON integers), within JavaScript's safe integers, else ``None``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from .._b64 import decode_base64
from ..codec import _size as message_size
from ..errors import RemoteProtocolError

__all__ = [
    "MAX_TWILIO_MESSAGE_SIZE",
    "SIGNATURE_HEADER",
    "MediaFormat",
    "StreamConnected",
    "StreamDtmf",
    "StreamMark",
    "StreamMedia",
    "StreamStart",
    "StreamStop",
    "TwilioMessage",
    "TwilioProtocolError",
    "UnknownStreamMessage",
    "clear_message",
    "mark_message",
    "media_message",
    "parse_twilio_message",
    "twilio_signature",
    "verify_twilio_signature",
]

#: Largest message parsed: a ``media`` message is about 400 bytes; ``start`` carries the
#: custom parameters.
MAX_TWILIO_MESSAGE_SIZE = 256 * 1024
#: The header of Twilio's request signature (on the WebSocket upgrade too).
SIGNATURE_HEADER = "X-Twilio-Signature"
#: Largest integer read from a digit string (JavaScript's safe integers, as the JS SDK reads).
_MAX_SAFE_INTEGER = 2**53 - 1


class TwilioProtocolError(RemoteProtocolError):
    """A message that is not a Twilio Media Streams message (``hint``: close code 1007,
    1009 when too large)."""


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """``start.mediaFormat``: ``audio/x-mulaw``, 8000 Hz, 1 channel on every Twilio call."""

    encoding: str | None
    sample_rate: int | None
    channels: int | None

    @property
    def is_mulaw_8k_mono(self) -> bool:
        """The format the bridge passes through (and pads with mu-law silence)."""
        return (self.encoding, self.sample_rate, self.channels) == ("audio/x-mulaw", 8000, 1)


@dataclass(frozen=True, slots=True)
class TwilioMessage:
    """Base of the messages Twilio sends; ``event`` is the wire name."""

    event: ClassVar[str] = ""
    #: The message's decoded JSON, unknown fields included.
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class StreamConnected(TwilioMessage):
    """The first message of the WebSocket (no stream id yet)."""

    event: ClassVar[str] = "connected"
    protocol: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStart(TwilioMessage):
    """The stream began: its ids, tracks, media format and ``<Parameter>`` values."""

    event: ClassVar[str] = "start"
    stream_sid: str = ""
    call_sid: str | None = None
    account_sid: str | None = None
    tracks: tuple[str, ...] = ()
    media_format: MediaFormat = MediaFormat(None, None, None)
    custom_parameters: Mapping[str, Any] = field(default_factory=dict)
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class StreamMedia(TwilioMessage):
    """Audio from the call: ``payload`` as it came (base64), ``audio`` decoded."""

    event: ClassVar[str] = "media"
    stream_sid: str | None = None
    payload: str = ""
    audio: bytes = field(default=b"", repr=False)
    track: str | None = None
    chunk: int | None = None
    #: Milliseconds from the start of the stream (presentation time), when a digit string.
    timestamp: int | None = None
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class StreamMark(TwilioMessage):
    """A mark the application sent, echoed: the audio sent before it has played (or was
    cleared)."""

    event: ClassVar[str] = "mark"
    stream_sid: str | None = None
    name: str = ""
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class StreamDtmf(TwilioMessage):
    """The caller pressed a key."""

    event: ClassVar[str] = "dtmf"
    stream_sid: str | None = None
    digit: str = ""
    track: str | None = None
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class StreamStop(TwilioMessage):
    """The stream ended (the call hung up, or the TwiML moved on)."""

    event: ClassVar[str] = "stop"
    stream_sid: str | None = None
    call_sid: str | None = None
    account_sid: str | None = None
    sequence_number: int | None = None


@dataclass(frozen=True, slots=True)
class UnknownStreamMessage(TwilioMessage):
    """A message of a type this version does not know (kept, not refused)."""

    event_type: str = ""


_DECODE = msgspec.json.Decoder().decode
_ENCODE = msgspec.json.Encoder().encode


def parse_twilio_message(
    message: str | bytes | bytearray | memoryview, *, max_size: int = MAX_TWILIO_MESSAGE_SIZE
) -> TwilioMessage:
    """Parse one WebSocket text message from Twilio.

    Raises:
        TwilioProtocolError: over ``max_size`` bytes, not JSON, not an object with a string
            ``event``, or a known event missing what it must carry (``start.streamSid``,
            ``media.payload`` in base64, ``mark.name``, ``dtmf.digit``).
    """
    size = message_size(message, max_size)  # (a str is encoded only if it may be too large)
    if size > max_size:
        raise TwilioProtocolError(
            f"a Twilio message of {size} bytes; at most {max_size} are taken", hint=1009
        )
    try:
        raw = _DECODE(message)
    except (msgspec.DecodeError, UnicodeError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise TwilioProtocolError(f"not JSON: {problem}", hint=1007, data=message) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        raise TwilioProtocolError(
            "not a Twilio message: a JSON object with a string 'event' is expected",
            hint=1007,
            data=message,
        )
    event = raw["event"]
    parse = _PARSERS.get(event)
    if parse is None:
        return UnknownStreamMessage(raw=raw, event_type=event)
    return parse(raw)


def _parse_connected(raw: dict[str, Any]) -> StreamConnected:
    return StreamConnected(
        raw=raw, protocol=_text(raw.get("protocol")), version=_text(raw.get("version"))
    )


def _parse_start(raw: dict[str, Any]) -> StreamStart:
    start = _object(raw, "start")
    stream_sid = start.get("streamSid", raw.get("streamSid"))
    if not isinstance(stream_sid, str) or not stream_sid:
        raise _missing("start", "start.streamSid (a non-empty string)", raw)
    fmt = start.get("mediaFormat")
    fmt = fmt if isinstance(fmt, dict) else {}
    tracks = start.get("tracks")
    parameters = start.get("customParameters")
    return StreamStart(
        raw=raw,
        stream_sid=stream_sid,
        call_sid=_text(start.get("callSid")),
        account_sid=_text(start.get("accountSid")),
        tracks=tuple(t for t in tracks if isinstance(t, str)) if isinstance(tracks, list) else (),
        media_format=MediaFormat(
            encoding=_text(fmt.get("encoding")),
            sample_rate=_integer(fmt.get("sampleRate")),
            channels=_integer(fmt.get("channels")),
        ),
        custom_parameters=parameters if isinstance(parameters, dict) else {},
        sequence_number=_integer(raw.get("sequenceNumber")),
    )


def _parse_media(raw: dict[str, Any]) -> StreamMedia:
    media = _object(raw, "media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise _missing("media", "media.payload (base64 text)", raw)
    try:
        audio = decode_base64(payload)
    except ValueError as exc:
        raise TwilioProtocolError(
            f"media.payload is not base64: {exc}", event_type="media", hint=1007, data=payload
        ) from None
    return StreamMedia(
        raw=raw,
        stream_sid=_text(raw.get("streamSid")),
        payload=payload,
        audio=audio,
        track=_text(media.get("track")),
        chunk=_integer(media.get("chunk")),
        timestamp=_integer(media.get("timestamp")),
        sequence_number=_integer(raw.get("sequenceNumber")),
    )


def _parse_mark(raw: dict[str, Any]) -> StreamMark:
    name = _object(raw, "mark").get("name")
    if not isinstance(name, str):
        raise _missing("mark", "mark.name (a string)", raw)
    return StreamMark(
        raw=raw,
        stream_sid=_text(raw.get("streamSid")),
        name=name,
        sequence_number=_integer(raw.get("sequenceNumber")),
    )


def _parse_dtmf(raw: dict[str, Any]) -> StreamDtmf:
    dtmf = _object(raw, "dtmf")
    digit = dtmf.get("digit")
    if not isinstance(digit, str):
        raise _missing("dtmf", "dtmf.digit (a string)", raw)
    return StreamDtmf(
        raw=raw,
        stream_sid=_text(raw.get("streamSid")),
        digit=digit,
        track=_text(dtmf.get("track")),
        sequence_number=_integer(raw.get("sequenceNumber")),
    )


def _parse_stop(raw: dict[str, Any]) -> StreamStop:
    stop = raw.get("stop")
    stop = stop if isinstance(stop, dict) else {}
    return StreamStop(
        raw=raw,
        stream_sid=_text(raw.get("streamSid")),
        call_sid=_text(stop.get("callSid")),
        account_sid=_text(stop.get("accountSid")),
        sequence_number=_integer(raw.get("sequenceNumber")),
    )


_PARSERS = {
    "connected": _parse_connected,
    "start": _parse_start,
    "media": _parse_media,
    "mark": _parse_mark,
    "dtmf": _parse_dtmf,
    "stop": _parse_stop,
}


def _object(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict):
        raise _missing(name, f"a {name!r} object", raw)
    return value


def _missing(event: str, what: str, raw: dict[str, Any]) -> TwilioProtocolError:
    return TwilioProtocolError(
        f"a Twilio {event!r} message without {what}",
        event_type=event,
        hint=1007,
        data=_ENCODE(raw).decode(),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _integer(value: object) -> int | None:
    """A JSON integer, or a string of ASCII digits (as Twilio sends its counters), within
    JavaScript's safe integers; else None."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 16):
            return None
        value = int(value)
    elif isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= _MAX_SAFE_INTEGER else None


# --------------------------------------------------------------- application -> Twilio --


def media_message(stream_sid: str, payload: str) -> str:
    """``media``: audio to play to the caller (``payload``: mu-law 8 kHz, base64)."""
    return _ENCODE(
        {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
    ).decode()


def mark_message(stream_sid: str, name: str) -> str:
    """``mark``: Twilio echoes it once the audio sent before it has played (or was
    cleared)."""
    return _ENCODE({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).decode()


def clear_message(stream_sid: str) -> str:
    """``clear``: drop the audio not played yet (pending marks are echoed)."""
    return _ENCODE({"event": "clear", "streamSid": stream_sid}).decode()


# ------------------------------------------------------------------------- signatures --


def twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str | list[str]] | None = None
) -> str:
    """Twilio's request signature: the base64 HMAC-SHA1, keyed by the account's auth token,
    of the URL Twilio requested followed by each POST parameter's name and value, sorted (a
    WebSocket upgrade has none)."""
    text = url
    for name in sorted(params or {}):
        values = (params or {})[name]
        for value in sorted(set([values] if isinstance(values, str) else values)):
            text += name + value
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify_twilio_signature(
    auth_token: str,
    url: str,
    signature: str | None,
    params: Mapping[str, str | list[str]] | None = None,
) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) signs this request: the URL
    as Twilio requested it (``wss://your.host/media-stream?...``), checked with and without
    its default port, as Twilio's own validators do. Compared in constant time."""
    if not signature or not auth_token:
        return False
    expected = signature.encode()
    return any(
        hmac.compare_digest(twilio_signature(auth_token, variant, params).encode(), expected)
        for variant in _port_variants(url)
    )


def _port_variants(url: str) -> tuple[str, str]:
    """The URL without its port and with it (the scheme's default when it has none); the
    host as written (Twilio signs it as it requested it, capitals included)."""
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    try:
        port = parts.port
    except ValueError:
        return url, url
    if port is not None:
        host = host[: host.rindex(":")]
    default = 443 if parts.scheme in ("https", "wss") else 80
    prefix = userinfo + at
    bare = urlunsplit(parts._replace(netloc=prefix + host))
    ported = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port or default}"))
    return (bare, url) if port else (url, ported)
