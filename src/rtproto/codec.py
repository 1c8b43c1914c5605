"""JSON text <-> typed events, in the GA shape or the legacy beta dialect.

Receive is tolerant: an unknown event type becomes :class:`~rtproto.events.UnknownEvent`, a
known event with a mistyped field becomes :class:`~rtproto.events.InvalidEvent`, and a parsed
event serialises back to exactly the text it came from (unknown fields included). Only input
that is not a JSON object with a string ``type`` (or is too large or too deeply nested) raises
:class:`~rtproto.errors.RemoteProtocolError`. Send is exact: unset fields are omitted, never
sent as ``null``; what cannot be sent as JSON (a value JSON has no type for, a cycle, a NaN or
infinite float) raises :class:`~rtproto.errors.LocalProtocolError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from ._b64 import encode_base64
from .dialect import Dialect, from_beta, to_beta
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    CLIENT_EVENT_TYPES,
    SERVER_EVENT_TYPES,
    ClientEvent,
    Event,
    InvalidEvent,
    ServerEvent,
    TypedClientEvent,
    TypedServerEvent,
    UnknownEvent,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "DEFAULT_MAX_CLIENT_MESSAGE_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "encode_audio_append",
    "event_raw",
    "parse_client_event",
    "parse_server_event",
    "salvage",
    "serialize_client_event",
    "serialize_server_event",
    "server_parser",
]

#: Largest server message accepted by default (bytes of UTF-8 JSON text): 16 MiB.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
#: Largest client message :func:`parse_client_event` accepts by default: 21 MiB, room for the
#: largest ``input_audio_buffer.append`` the service takes (15 MiB of audio, about 20 MiB once
#: base64-encoded; spec section 7).
DEFAULT_MAX_CLIENT_MESSAGE_SIZE = 21 * 1024 * 1024
# Characters of a str that fit DEFAULT_MAX_MESSAGE_SIZE bytes, whatever they are.
_STR_FITS = DEFAULT_MAX_MESSAGE_SIZE >> 2

_E = TypeVar("_E")

_server_decoder = msgspec.json.Decoder(TypedServerEvent)
_client_decoder = msgspec.json.Decoder(TypedClientEvent)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
#: For hot paths that inline :func:`parse_server_event` on GA text (the session core):
#: decode with this, fall back to the full parse on :data:`DECODE_ERRORS`, and keep the
#: text in the event's ``__dict__`` under :data:`GA_SOURCE`.
decode_ga_server_event = _server_decoder.decode
GA_SOURCE: Final = "_source_ga"
_GA = Dialect.GA
_BETA = Dialect.BETA
# Errors after which the slow path re-parses to classify the input.
DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeError)

# Where a parsed event keeps the text it came from, by dialect (in its ``__dict__``, not a
# field, so it takes no part in equality).
_SOURCE = {_GA: GA_SOURCE, _BETA: "_source_beta"}
_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


def parse_server_event(
    data: str | bytes | bytearray | memoryview,
    *,
    dialect: Dialect = Dialect.GA,
    max_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> ServerEvent:
    """Parse one server event from JSON text.

    ``max_size`` counts bytes: of the buffer, or of a ``str``'s UTF-8 encoding.

    Raises:
        RemoteProtocolError: the text is too large, not JSON, too deeply nested, not an
            object, or has no string ``type``.
    """
    if dialect is _GA:
        kind = type(data)
        if kind is bytes:
            fits = len(data) <= max_size
        else:  # a str of at most max_size / 4 characters fits, whatever it holds; a longer
            # one is measured by the general path
            fits = kind is str and len(data) <= (
                _STR_FITS if max_size is DEFAULT_MAX_MESSAGE_SIZE else max_size >> 2
            )
        if fits:
            try:
                event: ServerEvent = decode_ga_server_event(data)
            except DECODE_ERRORS:
                pass  # classified by the general path below
            else:
                event.__dict__[GA_SOURCE] = data
                return event
    event = _parse(data, dialect, max_size, _server_decoder, TypedServerEvent, SERVER_EVENT_TYPES)
    return event


def server_parser(
    *, dialect: Dialect = Dialect.GA, max_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> Callable[[str | bytes | bytearray | memoryview], ServerEvent]:
    """:func:`parse_server_event` with its options bound, for a receive loop's hot path."""
    if dialect is not _GA:
        return lambda data: parse_server_event(data, dialect=dialect, max_size=max_size)
    str_fits = max_size >> 2  # characters: as parse_server_event's fast path

    def parse(data: str | bytes | bytearray | memoryview) -> ServerEvent:
        kind = type(data)
        if (kind is bytes and len(data) <= max_size) or (kind is str and len(data) <= str_fits):
            try:
                event: ServerEvent = decode_ga_server_event(data)
            except DECODE_ERRORS:
                pass  # classified by the general path
            else:
                event.__dict__[GA_SOURCE] = data
                return event
        return parse_server_event(data, max_size=max_size)

    return parse


def parse_client_event(
    data: str | bytes | bytearray | memoryview,
    *,
    dialect: Dialect = Dialect.GA,
    max_size: int = DEFAULT_MAX_CLIENT_MESSAGE_SIZE,
) -> ClientEvent:
    """Parse one client event from JSON text (the server side's receive path).

    ``max_size`` counts bytes, as in :func:`parse_server_event`; the default takes the largest
    append the service accepts (:data:`DEFAULT_MAX_CLIENT_MESSAGE_SIZE`).

    Raises:
        RemoteProtocolError: as :func:`parse_server_event`.
    """
    event: ClientEvent = _parse(
        data, dialect, max_size, _client_decoder, TypedClientEvent, CLIENT_EVENT_TYPES
    )
    return event


def serialize_client_event(
    event: TypedClientEvent | UnknownEvent | InvalidEvent | dict[str, Any],
    *,
    dialect: Dialect = Dialect.GA,
) -> str:
    """Serialise a client event to JSON text in the given dialect.

    A plain ``dict`` is sent as it is (raw access); it must have a string ``type``.
    A parsed event (``UnknownEvent`` and ``InvalidEvent`` included) is sent as exactly the
    text it arrived as when ``dialect`` is the one it arrived in.

    Raises:
        LocalProtocolError: not a client event, or not JSON-serialisable (a value JSON has
            no type for, a reference cycle, a NaN or infinite float).
    """
    return _serialize(event, dialect, CLIENT_EVENT_TYPES)


def serialize_server_event(
    event: TypedServerEvent | UnknownEvent | InvalidEvent | dict[str, Any],
    *,
    dialect: Dialect = Dialect.GA,
) -> str:
    """Serialise a server event to JSON text in the given dialect (the emulator's send path).

    Raises:
        LocalProtocolError: as :func:`serialize_client_event`.
    """
    return _serialize(event, dialect, SERVER_EVENT_TYPES)


def encode_audio_append(
    pcm: bytes | bytearray | memoryview | npt.NDArray[np.int16],
    *,
    event_id: str | None = None,
) -> str:
    """The ``input_audio_buffer.append`` text for ``pcm`` (same in both dialects).

    The fast send path: one base64 encode of the bytes or int16 array, read in place, and
    the message assembled once. Equal to serialising ``InputAudioBufferAppend.from_pcm(pcm)``.
    """
    audio = encode_base64(pcm)
    if event_id is None:
        return _APPEND_PREFIX + audio + '"}'
    return (
        '{"type":"input_audio_buffer.append","event_id":'
        + _encoder.encode(event_id).decode()
        + ',"audio":"'
        + audio
        + '"}'
    )


def salvage(
    event: InvalidEvent, *, dialect: Dialect = Dialect.GA, max_dropped: int = 8
) -> TypedServerEvent | None:
    """The event typed without the fields that did not match their types, or ``None``.

    Drops the field the validation error names (a list element: the element), up to
    ``max_dropped`` times, until the rest fits: a ``response.done`` whose usage has a
    ``null`` count still says which response ended. ``None`` when a required field is what
    is wrong. The result's raw object (:func:`event_raw`) is still the one that arrived.
    """
    arrived: str | bytes | None = event.__dict__.get(_SOURCE[dialect])
    try:
        if arrived is None:  # constructed, or parsed in the other dialect
            arrived = _encoder.encode(event.raw)
        obj = _any_decoder.decode(arrived)  # a copy to cut from
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError, RecursionError, UnicodeError):
        return None
    if dialect is not _GA:
        obj = from_beta(obj)
    problem = event.problem
    for _ in range(max_dropped):
        if not _drop(obj, _error_path(problem)):
            return None
        try:
            salvaged: TypedServerEvent = msgspec.convert(obj, TypedServerEvent)
        except msgspec.ValidationError as exc:
            problem = str(exc)
            continue
        salvaged.__dict__[_SOURCE[dialect]] = arrived
        return salvaged
    return None


def _error_path(problem: str) -> list[str | int]:
    """``$.response.output[0].name`` in a validation error, as keys and indexes.

    A dict value (``$.session.tools[0].headers[...]``, a key msgspec does not name) ends the
    path at the dict: the whole dict is dropped.
    """
    found = re.search(r" - at `\$((?:\.\w+|\[\d+\])*)(?:\[\.\.\.\].*)?`$", problem)
    if found is None:
        return []
    return [
        int(index) if index else key
        for key, index in re.findall(r"\.(\w+)|\[(\d+)\]", found.group(1))
    ]


def _drop(obj: Any, path: list[str | int]) -> bool:
    """Remove what ``path`` names; False when it names nothing removable (the root, a
    field that is not there)."""
    if not path:
        return False
    for step in path[:-1]:
        try:
            obj = obj[step]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1]
    if isinstance(obj, dict) and last in obj:
        del obj[last]
        return True
    if isinstance(obj, list) and isinstance(last, int) and last < len(obj):
        del obj[last]
        return True
    return False


def event_raw(event: Event | UnknownEvent | InvalidEvent) -> dict[str, Any]:
    """The event as a plain JSON object, including fields rtproto does not model.

    For a parsed event this is the object as it arrived (in its dialect); for a constructed
    event it is the GA wire object. Unknown fields that are not valid JSON text (invalid
    UTF-8, numbers out of range: the typed decoder skips them unread) are left out.
    """
    if isinstance(event, (UnknownEvent, InvalidEvent)):
        return event.raw
    for key in _SOURCE.values():
        raw = _decode_kept(event.__dict__.get(key))
        if raw is not None:
            return raw
    built: dict[str, Any] = msgspec.to_builtins(event)
    return built


# --------------------------------------------------------------------------------- internals --


def _parse(
    data: str | bytes | bytearray | memoryview,
    dialect: Dialect,
    max_size: int,
    decoder: msgspec.json.Decoder[Any],
    union: Any,
    known: dict[str, type[Event]],
) -> Any:
    size = _size(data, max_size)
    if size > max_size:
        raise RemoteProtocolError(
            f"message of {size} bytes exceeds the limit of {max_size}", hint=1009, data=data
        )
    event: Any
    if dialect is _GA:
        try:
            event = decoder.decode(data)
        except msgspec.ValidationError as exc:
            event = _fallback(_decode_object(data), exc, known)
        except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
            raise _not_json(exc, data) from None
    else:
        obj = _decode_object(data)
        try:
            event = msgspec.convert(from_beta(obj), union)
        except msgspec.ValidationError as exc:
            event = _fallback(obj, exc, known, from_beta(obj)["type"])
    # every event keeps the text it came from, UnknownEvent and InvalidEvent included
    if not isinstance(data, (bytes, str)):
        data = bytes(data)  # keep an immutable copy of what arrived
    event.__dict__[_SOURCE[dialect]] = data
    return event


def _size(data: str | bytes | bytearray | memoryview, max_size: int) -> int:
    """Bytes of ``data`` (of its UTF-8 encoding, for a ``str``), exact wherever the answer
    decides whether it exceeds ``max_size``: a ``str`` is encoded only when it is long enough
    to exceed it and not ASCII."""
    if isinstance(data, str):
        size = len(data)
        if max_size >> 2 < size <= max_size and not data.isascii():
            size = len(data.encode("utf-8", "surrogatepass"))
        return size
    if isinstance(data, (bytes, bytearray)):
        return len(data)
    return memoryview(data).nbytes  # not len(): that counts items of any size


def _decode_object(data: str | bytes | bytearray | memoryview) -> dict[str, Any]:
    try:
        obj = _any_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeError) as exc:
        raise _not_json(exc, data) from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError(
            f"an event must be a JSON object, not {type(obj).__name__}", hint=1007, data=data
        )
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise RemoteProtocolError('an event needs a string "type"', hint=1007, data=data)
    return obj


def _fallback(
    obj: dict[str, Any],
    exc: msgspec.ValidationError,
    known: dict[str, type[Event]],
    kind: str | None = None,
) -> UnknownEvent | InvalidEvent:
    kind = kind if kind is not None else obj["type"]
    if kind in known:
        return InvalidEvent(type=kind, problem=str(exc), raw=obj)
    return UnknownEvent(type=kind, raw=obj)


def _not_json(exc: Exception, data: object) -> RemoteProtocolError:
    if isinstance(exc, RecursionError):
        message = "JSON nesting is too deep"
    elif isinstance(exc, UnicodeError):
        message = "message is not valid UTF-8"
    else:
        message = f"message is not valid JSON: {exc}"
    return RemoteProtocolError(message, hint=1007, data=data)


def _serialize(event: Any, dialect: Dialect, known: dict[str, type[Event]]) -> str:
    if isinstance(event, Event):
        kind = type(event).type
        if kind not in known:
            raise LocalProtocolError(
                f"{type(event).__name__} is not an event of this direction", event_type=kind
            )
        fields = event.__dict__
        if fields:
            kept = _resend(fields, dialect)
            if kept is not None:
                return kept
        # a constructed event, or kept text that is not valid JSON text: the typed fields
        try:
            if dialect is _GA:
                data = _encoder.encode(event)
            else:
                data = _encoder.encode(to_beta(msgspec.to_builtins(event)))
        except (TypeError, msgspec.EncodeError, RecursionError, ValueError) as exc:
            raise _not_serialisable(exc, kind) from None
        if b"null" in data:  # a NaN or an infinity is encoded as null
            _refuse_non_finite(event, kind)
        return data.decode()
    if isinstance(event, (UnknownEvent, InvalidEvent)):
        # Parsed, it kept the text it arrived as, which was decoded whole (``_parse``): that
        # text is always resendable. Constructed, it kept none: sent as it is, like a dict.
        kept = _resend(event.__dict__, dialect)
        if kept is None:
            return _encode_raw(event.raw, event.type)
        return kept
    if isinstance(event, dict):
        raw_type = event.get("type")
        if not isinstance(raw_type, str):
            raise LocalProtocolError('a raw event needs a string "type"', data=event)
        return _encode_raw(event, raw_type)
    raise LocalProtocolError(f"not an event: {type(event).__name__}", data=event)


def _resend(fields: dict[str, Any], dialect: Dialect) -> str | None:
    """A parsed event's text in ``dialect``: exactly what arrived in that dialect, or what
    arrived in the other one rewritten (unknown fields included); ``None`` when it kept no
    usable text."""
    same = _kept_text(fields.get(_SOURCE[dialect]))
    if same is not None:
        return same
    raw = _decode_kept(fields.get(_SOURCE[_BETA if dialect is _GA else _GA]))
    if raw is None:
        return None
    mapped = to_beta(raw) if dialect is _BETA else from_beta(raw)
    text: str = _encoder.encode(mapped).decode()
    return text


def _encode_raw(raw: Any, kind: str) -> str:
    try:
        data = _encoder.encode(raw)
    except (TypeError, msgspec.EncodeError, RecursionError, ValueError) as exc:
        raise _not_serialisable(exc, kind) from None
    if b"null" in data:  # a NaN or an infinity is encoded as null
        _refuse_non_finite(raw, kind)
    return data.decode()


def _not_serialisable(exc: Exception, kind: str) -> LocalProtocolError:
    if isinstance(exc, RecursionError):
        reason = "it nests too deeply (a reference cycle?)"
    else:
        reason = str(exc)
    return LocalProtocolError(f"event is not JSON-serialisable: {reason}", event_type=kind)


def _refuse_non_finite(value: Any, kind: str) -> None:
    path = _non_finite_path(value)
    if path is not None:
        raise LocalProtocolError(
            f"event is not JSON-serialisable: {path[1]!r} at `${path[0]}`"
            " (JSON has no NaN or infinity)",
            event_type=kind,
        )


def _non_finite_path(value: Any) -> tuple[str, float] | None:
    """Where a NaN or infinite float is in a value msgspec encoded: (JSON path, the float)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else ("", value)
    items: Any
    if isinstance(value, msgspec.Struct):
        items = ((f".{name}", getattr(value, name)) for name in value.__struct_fields__)
    elif isinstance(value, dict):
        items = ((f".{key}", item) for key, item in value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = ((f"[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for step, item in items:
        found = _non_finite_path(item)
        if found is not None:
            return step + found[0], found[1]
    return None


def _kept_text(data: str | bytes | None) -> str | None:
    if data is None or isinstance(data, str):
        return data
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def _decode_kept(data: str | bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        raw: dict[str, Any] = _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeError):
        return None
    return raw
