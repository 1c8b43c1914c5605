"""rtproto.wire.twilio: Twilio Media Streams messages, parsed and built.

The messages below are written out in the shapes of Twilio's documentation
(https://www.twilio.com/docs/voice/media-streams/websocket-messages), as the ``streamdouble``
package transcribes them: ``sequenceNumber``, ``chunk`` and ``timestamp`` are JSON strings,
``sampleRate`` and ``channels`` numbers, ``dtmf.track`` is ``"inbound_track"`` and
``connected`` carries no ``streamSid``. The fuzz harness (fuzz/fuzz_twilio.py) is replayed
over its corpus at the end.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rtproto.errors import RemoteProtocolError
from rtproto.wire import twilio
from rtproto.wire.twilio import (
    MAX_TWILIO_MESSAGE_SIZE,
    MediaFormat,
    StreamConnected,
    StreamDtmf,
    StreamMark,
    StreamMedia,
    StreamStart,
    StreamStop,
    TwilioMessage,
    TwilioProtocolError,
    UnknownStreamMessage,
    clear_message,
    mark_message,
    media_message,
    parse_twilio_message,
)

from .fuzzing import FUZZ, load_harness
from .strategies import json_edit, json_paths

STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT_SID = "AC25e16e9a716a4a1786a7c47a9ce9c4cc"
CALL_SID = "CA8f5be7ee4b3b4fc2a1d5f0e21cb7c9a1"
AUDIO = bytes(range(160))  # 20 ms of mu-law
PAYLOAD = base64.b64encode(AUDIO).decode()

CONNECTED = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": ACCOUNT_SID,
        "streamSid": STREAM_SID,
        "callSid": CALL_SID,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"tenant": "acme", "caller": "+15550100"},
    },
    "streamSid": STREAM_SID,
}
MEDIA = {
    "event": "media",
    "sequenceNumber": "3",
    "media": {"track": "inbound", "chunk": "2", "timestamp": "20", "payload": PAYLOAD},
    "streamSid": STREAM_SID,
}
MARK = {
    "event": "mark",
    "sequenceNumber": "4",
    "streamSid": STREAM_SID,
    "mark": {"name": "item_A1:20:g1:m1"},
}
DTMF = {
    "event": "dtmf",
    "streamSid": STREAM_SID,
    "sequenceNumber": "5",
    "dtmf": {"track": "inbound_track", "digit": "1"},
}
STOP = {
    "event": "stop",
    "sequenceNumber": "6",
    "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
    "streamSid": STREAM_SID,
}


def text(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def with_(message: dict[str, Any], body: str | None = None, **fields: Any) -> dict[str, Any]:
    """``message`` with ``fields`` set at the top level, or in its ``body`` object."""
    if body is None:
        return {**message, **fields}
    return {**message, body: {**message[body], **fields}}


def without(message: dict[str, Any], key: str, body: str | None = None) -> dict[str, Any]:
    if body is None:
        return {k: v for k, v in message.items() if k != key}
    return {**message, body: {k: v for k, v in message[body].items() if k != key}}


def refused(message: Any, **kwargs: Any) -> TwilioProtocolError:
    with pytest.raises(TwilioProtocolError) as caught:
        parse_twilio_message(message, **kwargs)
    return caught.value


# --- every message type ----------------------------------------------------------------------


def test_connected() -> None:
    message = parse_twilio_message(text(CONNECTED))
    assert type(message) is StreamConnected and message.event == "connected"
    assert (message.protocol, message.version) == ("Call", "1.0.0")
    assert message.raw == CONNECTED


def test_start() -> None:
    message = parse_twilio_message(text(START))
    assert type(message) is StreamStart and message.event == "start"
    assert message.stream_sid == STREAM_SID
    assert (message.call_sid, message.account_sid) == (CALL_SID, ACCOUNT_SID)
    assert message.tracks == ("inbound",)
    assert message.media_format == MediaFormat("audio/x-mulaw", 8000, 1)
    assert message.media_format.is_mulaw_8k_mono
    assert message.custom_parameters == {"tenant": "acme", "caller": "+15550100"}
    assert message.sequence_number == 1
    assert message.raw == START


def test_start_keeps_what_is_usable_of_its_details() -> None:
    start = with_(
        START,
        "start",
        tracks=["inbound", 7, "outbound", None],
        mediaFormat={"encoding": 8, "sampleRate": "8000", "channels": "x"},
        customParameters=["not", "an", "object"],
        callSid=5,
        accountSid=None,
    )
    message = parse_twilio_message(text(start))
    assert isinstance(message, StreamStart)
    assert message.tracks == ("inbound", "outbound")
    assert message.media_format == MediaFormat(None, 8000, None)
    assert message.custom_parameters == {}
    assert (message.call_sid, message.account_sid) == (None, None)
    bare = parse_twilio_message(text({"event": "start", "start": {"streamSid": "MZ1"}}))
    assert isinstance(bare, StreamStart)
    assert (bare.tracks, bare.custom_parameters, bare.sequence_number) == ((), {}, None)
    assert bare.media_format == MediaFormat(None, None, None)
    odd = with_(START, "start", tracks="inbound", mediaFormat="audio/x-mulaw")
    message = parse_twilio_message(text(odd))
    assert isinstance(message, StreamStart)
    assert message.tracks == () and message.media_format == MediaFormat(None, None, None)


def test_start_takes_the_top_level_stream_sid_when_start_has_none() -> None:
    message = parse_twilio_message(text(without(START, "streamSid", "start")))
    assert isinstance(message, StreamStart) and message.stream_sid == STREAM_SID
    inner = with_(with_(START, streamSid="MZouter"), "start", streamSid="MZinner")
    message = parse_twilio_message(text(inner))
    assert isinstance(message, StreamStart) and message.stream_sid == "MZinner"


def test_media() -> None:
    message = parse_twilio_message(text(MEDIA))
    assert type(message) is StreamMedia and message.event == "media"
    assert message.stream_sid == STREAM_SID
    assert (message.payload, message.track) == (PAYLOAD, "inbound")
    assert (message.chunk, message.timestamp, message.sequence_number) == (2, 20, 3)
    assert message.audio == AUDIO
    assert message.raw == MEDIA


def test_media_with_only_a_payload() -> None:
    message = parse_twilio_message(text({"event": "media", "media": {"payload": ""}}))
    assert isinstance(message, StreamMedia)
    assert (message.stream_sid, message.track, message.chunk, message.timestamp) == (
        None,
        None,
        None,
        None,
    )
    assert message.audio == b""


def test_mark() -> None:
    message = parse_twilio_message(text(MARK))
    assert type(message) is StreamMark and message.event == "mark"
    assert (message.stream_sid, message.name, message.sequence_number) == (
        STREAM_SID,
        "item_A1:20:g1:m1",
        4,
    )
    empty = parse_twilio_message(text(with_(MARK, "mark", name="")))
    assert isinstance(empty, StreamMark) and empty.name == ""


def test_dtmf() -> None:
    message = parse_twilio_message(text(DTMF))
    assert type(message) is StreamDtmf and message.event == "dtmf"
    assert (message.stream_sid, message.digit, message.track, message.sequence_number) == (
        STREAM_SID,
        "1",
        "inbound_track",  # not "inbound": kept as Twilio spells it
        5,
    )


def test_stop() -> None:
    message = parse_twilio_message(text(STOP))
    assert type(message) is StreamStop and message.event == "stop"
    assert (message.stream_sid, message.call_sid, message.account_sid) == (
        STREAM_SID,
        CALL_SID,
        ACCOUNT_SID,
    )
    assert message.sequence_number == 6
    bare = parse_twilio_message(text({"event": "stop", "stop": "over"}))
    assert isinstance(bare, StreamStop)
    assert (bare.stream_sid, bare.call_sid, bare.account_sid, bare.sequence_number) == (
        None,
        None,
        None,
        None,
    )


def test_connected_without_its_details() -> None:
    message = parse_twilio_message('{"event":"connected","protocol":1}')
    assert isinstance(message, StreamConnected)
    assert (message.protocol, message.version) == (None, None)


@pytest.mark.parametrize("event", ["clear", "future_event", "", "Media", "START"])
def test_unknown_events_are_kept_with_their_raw_object(event: str) -> None:
    raw = {"event": event, "streamSid": STREAM_SID, "extra": {"nested": [1, 2.5, None]}}
    message = parse_twilio_message(text(raw))
    assert type(message) is UnknownStreamMessage
    assert message.event_type == event
    assert message.raw == raw


def test_raw_is_the_decoded_object_unknown_fields_included() -> None:
    raw = with_(with_(MEDIA, future={"a": [1]}), "media", extra="kept")
    message = parse_twilio_message(text(raw))
    assert message.raw == raw
    assert message.raw["media"]["extra"] == "kept"


def test_messages_are_immutable_and_compare_without_raw() -> None:
    one = parse_twilio_message(text(MARK))
    other = parse_twilio_message(text(with_(MARK, extra=1)))
    assert one == other and one.raw != other.raw
    assert "raw" not in repr(one)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        MediaFormat(None, None, None).encoding = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "cls",
    [
        TwilioMessage,
        StreamConnected,
        StreamStart,
        StreamMedia,
        StreamMark,
        StreamDtmf,
        StreamStop,
        UnknownStreamMessage,
    ],
)
def test_every_message_class_is_frozen_with_slots(cls: type[TwilioMessage]) -> None:
    message = cls(raw={"event": "x"})
    assert not hasattr(message, "__dict__")
    for name in [f.name for f in dataclasses.fields(message)]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(message, name, None)
    fmt = MediaFormat("audio/x-mulaw", 8000, 1)
    assert not hasattr(fmt, "__dict__")


# --- counters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0),
        ("1", 1),
        ("0042", 42),
        ("9007199254740991", 2**53 - 1),  # the largest safe integer
        (0, 0),
        (17, 17),
        (2**53 - 1, 2**53 - 1),
    ],
)
def test_counters_are_read_as_integers(value: Any, expected: int) -> None:
    message = parse_twilio_message(
        text(with_(with_(MEDIA, sequenceNumber=value), "media", chunk=value, timestamp=value))
    )
    assert isinstance(message, StreamMedia)
    assert message.sequence_number == message.chunk == message.timestamp == expected
    assert type(message.timestamp) is int


@pytest.mark.parametrize(
    "value",
    [
        "9007199254740992",  # past the safe integers
        "99999999999999999",  # 17 digits
        "00000000000000001",  # 17 digits of a safe integer: up to 16 are read
        "9" * 5000,  # (int() of it would raise)
        "-1",
        "+1",
        "1.5",
        "1e3",
        "",
        " 1",
        "1 ",
        "0x10",
        "\uff11",  # FULLWIDTH DIGIT ONE
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "\u00b2",  # SUPERSCRIPT TWO: isdigit() but not a decimal number
        -1,
        2**53,
        1.0,
        True,
        False,
        None,
        [1],
        {"n": 1},
    ],
)
def test_bad_counters_are_none(value: Any) -> None:
    message = parse_twilio_message(
        text(with_(with_(MEDIA, sequenceNumber=value), "media", chunk=value, timestamp=value))
    )
    assert isinstance(message, StreamMedia)
    assert (message.sequence_number, message.chunk, message.timestamp) == (None, None, None)


@pytest.mark.parametrize("raw", [START, MEDIA, MARK, DTMF, STOP], ids=lambda r: r["event"])
def test_every_sequence_number_is_read(raw: dict[str, Any]) -> None:
    assert parse_twilio_message(text(with_(raw, sequenceNumber="77"))).sequence_number == 77  # type: ignore[attr-defined]
    assert parse_twilio_message(text(with_(raw, sequenceNumber="x"))).sequence_number is None  # type: ignore[attr-defined]


def test_media_format_numbers_follow_the_counter_rules() -> None:
    fmt = {"encoding": "audio/x-mulaw", "sampleRate": "8000", "channels": True}
    message = parse_twilio_message(text(with_(START, "start", mediaFormat=fmt)))
    assert isinstance(message, StreamStart)
    assert message.media_format == MediaFormat("audio/x-mulaw", 8000, None)


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (MediaFormat("audio/x-mulaw", 8000, 1), True),
        (MediaFormat("audio/x-mulaw", 16000, 1), False),
        (MediaFormat("audio/x-mulaw", 8000, 2), False),
        (MediaFormat("audio/x-alaw", 8000, 1), False),
        (MediaFormat("audio/X-MULAW", 8000, 1), False),
        (MediaFormat(None, 8000, 1), False),
        (MediaFormat("audio/x-mulaw", None, 1), False),
        (MediaFormat("audio/x-mulaw", 8000, None), False),
        (MediaFormat(None, None, None), False),
    ],
)
def test_is_mulaw_8k_mono(fmt: MediaFormat, expected: bool) -> None:
    assert fmt.is_mulaw_8k_mono is expected


# --- input types and the size bound ------------------------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        lambda s: s,
        lambda s: s.encode(),
        lambda s: bytearray(s.encode()),
        lambda s: memoryview(s.encode()),
        lambda s: memoryview(s.encode() + b"  ").cast("H"),  # (an even length, 2-byte items)
    ],
    ids=["str", "bytes", "bytearray", "memoryview", "memoryview-of-shorts"],
)
@pytest.mark.parametrize(
    "raw", [CONNECTED, START, MEDIA, MARK, DTMF, STOP], ids=lambda r: r["event"]
)
def test_every_input_type_parses_alike(convert: Any, raw: dict[str, Any]) -> None:
    source = text(raw)
    source += " " * (len(source.encode()) % 2)
    expected = parse_twilio_message(source)
    message = parse_twilio_message(convert(source))
    assert type(message) is type(expected) and message == expected and message.raw == raw


def test_exactly_max_size_is_taken_one_more_byte_is_refused() -> None:
    source = text(MARK).encode()
    assert isinstance(parse_twilio_message(source, max_size=len(source)), StreamMark)
    error = refused(source, max_size=len(source) - 1)
    assert error.hint == 1009 and isinstance(error, RemoteProtocolError)
    assert f"{len(source)} bytes" in error.message and f"{len(source) - 1}" in error.message


def test_the_bound_counts_utf8_bytes_of_text() -> None:
    source = text(with_(MARK, "mark", name="\u00e9\U0001f600"))  # 2 + 4 bytes, 2 characters
    size = len(source.encode())
    assert size == len(source) + 4
    assert isinstance(parse_twilio_message(source, max_size=size), StreamMark)
    assert refused(source, max_size=size - 1).hint == 1009
    assert refused(source, max_size=len(source)).hint == 1009


def test_the_bound_counts_bytes_of_a_memoryview_not_items() -> None:
    source = text(STOP).encode()
    source += b" " * (len(source) % 2)
    view = memoryview(source).cast("H")
    assert len(view) * 2 == len(source)
    assert isinstance(parse_twilio_message(view, max_size=len(source)), StreamStop)
    assert refused(view, max_size=len(source) - 1).hint == 1009


def start_of_size(size: int) -> str:
    """A ``start`` whose custom parameters bring it to exactly ``size`` bytes."""
    base = len(text(with_(START, "start", customParameters={"note": ""})))
    return text(with_(START, "start", customParameters={"note": "x" * (size - base)}))


def test_the_default_bound() -> None:
    assert MAX_TWILIO_MESSAGE_SIZE == 256 * 1024
    largest = start_of_size(MAX_TWILIO_MESSAGE_SIZE)
    assert len(largest) == MAX_TWILIO_MESSAGE_SIZE
    message = parse_twilio_message(largest)
    assert isinstance(message, StreamStart)
    assert len(message.custom_parameters["note"]) > 250_000
    over = start_of_size(MAX_TWILIO_MESSAGE_SIZE + 1)
    for form in (over, over.encode()):
        assert refused(form).hint == 1009


# --- what is refused ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        b"",
        b"{",
        b'{"event":"media",',
        b"event",
        b'{"event":"stop"} {}',
        b'{"event":"stop",}',
        b"\xef\xbb\xbf{}",  # a byte order mark
        b'{"event":"stop","x":NaN}',
        b'{"event":"stop","x":1e400}',
        b'{"event":"dtmf","dtmf":{"digit":"\xff"}}',  # not UTF-8
    ],
)
def test_what_is_not_json_is_refused(source: bytes) -> None:
    error = refused(source)
    assert error.hint == 1007 and error.event_type is None
    assert error.message.startswith("not JSON")


@pytest.mark.parametrize(
    "source",
    [
        "[]",
        "[{}]",
        '"media"',
        "7",
        "null",
        "true",
        "{}",
        '{"streamSid":"MZ1","media":{"payload":""}}',
        '{"event":null}',
        '{"event":1}',
        '{"event":["media"]}',
        '{"event":{"type":"media"}}',
    ],
)
def test_what_is_not_an_object_with_a_string_event_is_refused(source: str) -> None:
    error = refused(source)
    assert error.hint == 1007 and error.event_type is None
    assert "a JSON object with a string 'event'" in error.message
    assert error.excerpt == source


@pytest.mark.parametrize(
    ("raw", "event", "names"),
    [
        (without(START, "start"), "start", "'start' object"),
        (with_(START, start="MZ1"), "start", "'start' object"),
        (
            without(without(START, "streamSid", "start"), "streamSid"),
            "start",
            "start.streamSid",
        ),
        (with_(START, "start", streamSid=""), "start", "start.streamSid"),
        (with_(START, "start", streamSid=None), "start", "start.streamSid"),
        (with_(START, "start", streamSid=7), "start", "start.streamSid"),
        (without(MEDIA, "media"), "media", "'media' object"),
        (with_(MEDIA, media=[PAYLOAD]), "media", "'media' object"),
        (without(MEDIA, "payload", "media"), "media", "media.payload"),
        (with_(MEDIA, "media", payload=None), "media", "media.payload"),
        (with_(MEDIA, "media", payload=list(AUDIO[:4])), "media", "media.payload"),
        (without(MARK, "mark"), "mark", "'mark' object"),
        (with_(MARK, mark="item_A1"), "mark", "'mark' object"),
        (without(MARK, "name", "mark"), "mark", "mark.name"),
        (with_(MARK, "mark", name=1), "mark", "mark.name"),
        (without(DTMF, "dtmf"), "dtmf", "'dtmf' object"),
        (without(DTMF, "digit", "dtmf"), "dtmf", "dtmf.digit"),
        (with_(DTMF, "dtmf", digit=1), "dtmf", "dtmf.digit"),
    ],
)
def test_missing_required_fields_are_refused_naming_them(
    raw: dict[str, Any], event: str, names: str
) -> None:
    error = refused(text(raw))
    assert (error.hint, error.event_type) == (1007, event)
    assert names in error.message, error.message
    assert error.excerpt is not None and error.excerpt.startswith('{"event":')


@pytest.mark.parametrize(
    "payload",
    [
        "not base64!",
        "AAA",  # not whole quanta
        "AAAA====",  # too much padding
        "AA=A",
        "=AAA",
        "AAAA\n",
        " AAAA",
        "AA==AA==",
        "\uff21\uff21\uff21\uff21",  # FULLWIDTH A: not ASCII
        "A-_A",  # the URL-safe alphabet
    ],
)
def test_a_payload_that_is_not_base64_is_refused(payload: str) -> None:
    error = refused(text(with_(MEDIA, "media", payload=payload)))
    assert (error.hint, error.event_type) == (1007, "media")
    assert "media.payload is not base64" in error.message
    assert error.excerpt == payload


@pytest.mark.parametrize("payload", ["", "AA==", "AAA=", "AAAA", "+/+/", PAYLOAD])
def test_a_payload_in_base64_is_taken(payload: str) -> None:
    message = parse_twilio_message(text(with_(MEDIA, "media", payload=payload)))
    assert isinstance(message, StreamMedia)
    assert message.audio == base64.b64decode(payload)


def test_an_error_is_a_remote_protocol_error_with_a_bounded_excerpt() -> None:
    error = refused(text(with_(without(MARK, "mark"), padding="y" * 1000)))
    assert isinstance(error, RemoteProtocolError)
    assert error.excerpt is not None and len(error.excerpt) == 200
    assert "hint 1007" in str(error) and "event type 'mark'" in str(error)


# --- what the application sends ----------------------------------------------------------------


def test_media_message() -> None:
    sent = media_message(STREAM_SID, PAYLOAD)
    assert isinstance(sent, str)
    assert json.loads(sent) == {
        "event": "media",
        "streamSid": STREAM_SID,
        "media": {"payload": PAYLOAD},
    }
    back = parse_twilio_message(sent)
    assert isinstance(back, StreamMedia) and back.audio == AUDIO


def test_mark_message() -> None:
    sent = mark_message(STREAM_SID, "done:item_A1:g1:m2")
    assert json.loads(sent) == {
        "event": "mark",
        "streamSid": STREAM_SID,
        "mark": {"name": "done:item_A1:g1:m2"},
    }
    back = parse_twilio_message(sent)
    assert isinstance(back, StreamMark) and back.name == "done:item_A1:g1:m2"


def test_clear_message() -> None:
    sent = clear_message(STREAM_SID)
    assert json.loads(sent) == {"event": "clear", "streamSid": STREAM_SID}
    back = parse_twilio_message(sent)
    assert isinstance(back, UnknownStreamMessage) and back.event_type == "clear"


TRICKY = [
    'a "quoted" name',
    "back\\slash\\",
    "line\nbreak\ttab\r",
    "\x00\x01\x1f\x7f",
    "caf\u00e9 \u00fc\u00df",
    "\U0001f600 \u2028\u2029",
    "</script>",
    '{"event":"clear"}',
    "",
]


@pytest.mark.parametrize("value", TRICKY)
def test_builders_escape_names_and_stream_sids(value: str) -> None:
    for sent, expected in (
        (
            media_message(value, "AA=="),
            {"event": "media", "streamSid": value, "media": {"payload": "AA=="}},
        ),
        (
            mark_message(value, value),
            {"event": "mark", "streamSid": value, "mark": {"name": value}},
        ),
        (clear_message(value), {"event": "clear", "streamSid": value}),
    ):
        assert json.loads(sent) == expected
        assert "\n" not in sent  # one line: control characters are escaped
    mark = parse_twilio_message(mark_message(value, value))
    assert isinstance(mark, StreamMark) and (mark.stream_sid, mark.name) == (value, value)


def test_builders_keep_unicode_as_utf8() -> None:
    sent = mark_message("MZ\u00e9", "\U0001f600")
    assert "\U0001f600" in sent and "MZ\u00e9" in sent  # not \\u escapes: shorter on the wire
    assert len(sent.encode()) == len(
        text({"event": "mark", "streamSid": "MZ\u00e9", "mark": {"name": "\U0001f600"}}).encode()
    )


# --- request signatures ------------------------------------------------------------------------

# Twilio's documented example (auth token 12345; twilio-python's tests use the same)
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_the_documented_signature() -> None:
    assert twilio.SIGNATURE_HEADER == "X-Twilio-Signature"
    assert twilio.twilio_signature("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert twilio.verify_twilio_signature("12345", DOC_URL, DOC_SIGNATURE, DOC_PARAMS)
    assert not twilio.verify_twilio_signature("12346", DOC_URL, DOC_SIGNATURE, DOC_PARAMS)
    assert not twilio.verify_twilio_signature("12345", DOC_URL + "&x=1", DOC_SIGNATURE, DOC_PARAMS)
    assert not twilio.verify_twilio_signature("12345", DOC_URL, DOC_SIGNATURE, {})
    tampered = {**DOC_PARAMS, "Digits": "1235"}
    assert not twilio.verify_twilio_signature("12345", DOC_URL, DOC_SIGNATURE, tampered)


def test_parameters_are_signed_sorted_by_name_then_value() -> None:
    url = "wss://example.com/media"
    assert twilio.twilio_signature("t", url, {"b": "2", "a": "1"}) == twilio.twilio_signature(
        "t", url + "a1b2"
    )
    assert twilio.twilio_signature("t", url, {"a": ["2", "1", "2"]}) == twilio.twilio_signature(
        "t", url + "a1a2"
    )
    assert twilio.twilio_signature("t", url, None) == twilio.twilio_signature("t", url, {})


@pytest.mark.parametrize("signature", [None, ""])
def test_no_signature_or_no_token_never_verifies(signature: str | None) -> None:
    assert twilio.verify_twilio_signature("t", DOC_URL, signature) is False
    empty_token = twilio.twilio_signature("", DOC_URL)
    assert twilio.verify_twilio_signature("", DOC_URL, empty_token) is False


@pytest.mark.parametrize(
    ("signed", "given"),
    [
        ("https://example.com/media", "https://example.com/media"),
        ("https://example.com/media", "https://example.com:443/media"),
        ("https://example.com:443/media", "https://example.com/media"),
        ("http://example.com:80/media", "http://example.com/media"),
        ("http://example.com/media", "http://example.com:80/media"),
        ("https://example.com/media", "https://example.com:8443/media"),
        ("https://example.com:8443/media", "https://example.com:8443/media"),
        (
            "https://example.com/media?tenant=a&x=%20",
            "https://example.com:443/media?tenant=a&x=%20",
        ),
        ("wss://example.com:443/media", "wss://example.com/media"),  # (the wss default: 443)
        ("wss://example.com/media", "wss://example.com:443/media"),
        ("ws://example.com:80/media", "ws://example.com/media"),
        ("https://u:p@example.com/media", "https://u:p@example.com:443/media"),
        ("https://[2001:db8::1]/media", "https://[2001:db8::1]:443/media"),
    ],
)
def test_the_url_is_checked_with_and_without_its_default_port(signed: str, given: str) -> None:
    signature = twilio.twilio_signature("token", signed)
    assert twilio.verify_twilio_signature("token", given, signature)
    assert not twilio.verify_twilio_signature("other", given, signature)


@pytest.mark.parametrize(
    ("signed", "given"),
    [
        ("https://example.com:444/media", "https://example.com/media"),  # not the default
        ("https://example.com:80/media", "https://example.com/media"),
        ("http://example.com:443/media", "http://example.com/media"),
        ("https://example.com/other", "https://example.com:443/media"),
        ("https://example.org/media", "https://example.com/media"),
    ],
)
def test_another_url_does_not_verify(signed: str, given: str) -> None:
    assert not twilio.verify_twilio_signature("t", given, twilio.twilio_signature("t", signed))


def test_a_url_with_a_port_out_of_range_is_checked_as_it_is() -> None:
    url = "https://example.com:99999/media"
    assert twilio.verify_twilio_signature("t", url, twilio.twilio_signature("t", url))
    assert not twilio.verify_twilio_signature("t", url, twilio.twilio_signature("t", url[:-6]))


@pytest.mark.parametrize(
    ("signed", "given"),
    [
        ("https://example.com/a", "https://example.com/a"),
        ("https://example.com/a", "https://example.com:443/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com/a?b=1", "http://example.com:80/a?b=1"),
        ("https://example.com/a", "https://example.com/b"),
        ("https://example.com:444/a", "https://example.com/a"),
    ],
)
def test_same_verdict_as_twilios_validator(signed: str, given: str) -> None:
    validator = pytest.importorskip("twilio.request_validator").RequestValidator("token")
    assert validator.compute_signature(signed, DOC_PARAMS) == twilio.twilio_signature(
        "token", signed, DOC_PARAMS
    )
    signature = twilio.twilio_signature("token", signed, DOC_PARAMS)
    assert twilio.verify_twilio_signature(
        "token", given, signature, DOC_PARAMS
    ) == validator.validate(given, DOC_PARAMS, signature)


def test_a_host_with_capitals_keeps_them_in_the_port_variants() -> None:
    signature = twilio.twilio_signature("token", "https://Example.com/media")
    assert twilio.verify_twilio_signature("token", "https://Example.com:443/media", signature)


# --- properties ---------------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop", "clear", "future"]
KEYS = st.sampled_from(
    [
        "event",
        "streamSid",
        "sequenceNumber",
        "start",
        "media",
        "mark",
        "dtmf",
        "stop",
        "callSid",
        "accountSid",
        "tracks",
        "mediaFormat",
        "encoding",
        "sampleRate",
        "channels",
        "customParameters",
        "payload",
        "track",
        "chunk",
        "timestamp",
        "name",
        "digit",
        "protocol",
        "version",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from([*EVENTS, "audio/x-mulaw", "inbound", "8000", "0", "AA==", PAYLOAD, "-1"])
    | st.from_regex(r"[0-9]{1,20}", fullmatch=True)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=24,
)
OBJECTS = st.builds(
    lambda body, event: body if event is None else {**body, "event": event},
    st.dictionaries(KEYS, JSON_VALUES, max_size=6),
    st.none() | st.sampled_from(EVENTS) | st.text(max_size=8) | JSON_VALUES,
)
SEEDS = [CONNECTED, START, MEDIA, MARK, DTMF, STOP]


def _typed_or_refused(source: str | bytes) -> TwilioMessage | TwilioProtocolError:
    try:
        return parse_twilio_message(source)
    except TwilioProtocolError as exc:
        assert exc.hint == 1007
        return exc


@PROPERTY
@given(OBJECTS, st.booleans())
def test_any_json_object_is_typed_or_refused(obj: dict[str, Any], ascii_only: bool) -> None:
    source = json.dumps(obj, ensure_ascii=ascii_only)
    outcome = _typed_or_refused(source)
    assert type(_typed_or_refused(source.encode())) is type(outcome)
    if isinstance(outcome, TwilioMessage):
        assert outcome.raw == obj
        assert isinstance(obj.get("event"), str)
        if isinstance(outcome, UnknownStreamMessage):
            assert outcome.event_type == obj["event"]
        else:
            assert type(outcome).event == obj["event"]
    elif not isinstance(obj.get("event"), str):
        assert outcome.event_type is None


@PROPERTY
@given(st.data())
def test_a_real_message_with_one_value_changed_is_typed_or_refused(data: st.DataObject) -> None:
    seed = data.draw(st.sampled_from(SEEDS), label="seed")
    path = data.draw(st.sampled_from(json_paths(seed)), label="path")
    delete = data.draw(st.booleans(), label="delete")
    new = None if delete else data.draw(JSON_VALUES, label="new value")
    mutated = json_edit(seed, path, new, delete)
    outcome = _typed_or_refused(text(mutated))
    if isinstance(outcome, TwilioMessage):
        assert outcome.raw == mutated
    if isinstance(outcome, StreamMedia):
        assert isinstance(outcome.audio, bytes)


@PROPERTY
@given(st.text(max_size=40), st.text(max_size=40), st.binary(max_size=64))
def test_builders_round_trip(stream_sid: str, name: str, audio: bytes) -> None:
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in stream_sid + name))
    payload = base64.b64encode(audio).decode()
    media = parse_twilio_message(media_message(stream_sid, payload))
    assert isinstance(media, StreamMedia)
    assert (media.stream_sid, media.audio) == (stream_sid, audio)
    mark = parse_twilio_message(mark_message(stream_sid, name))
    assert isinstance(mark, StreamMark) and (mark.stream_sid, mark.name) == (stream_sid, name)
    assert json.loads(clear_message(stream_sid)) == {"event": "clear", "streamSid": stream_sid}


# --- the fuzz harness over its corpus and random inputs -----------------------------------------

HARNESS = load_harness("twilio")
CORPUS = FUZZ / "corpus" / "twilio"
CORPUS_FILES = sorted(p for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.name for p in CORPUS_FILES])
def test_fuzz_corpus(path: Path) -> None:
    HARNESS.check_one(path.read_bytes())


def test_fuzz_corpus_matches_seeds() -> None:
    """The committed corpus is what the harness writes (rerun ``python fuzz/fuzz_twilio.py
    --write-seeds`` if this fails)."""
    seeds = HARNESS.seeds()
    assert set(seeds) <= {p.name for p in CORPUS_FILES}
    for name, data in seeds.items():
        assert (CORPUS / name).read_bytes() == data, name


def test_fuzz_seeds_cover_every_message_type() -> None:
    seen = set()
    for data in HARNESS.seeds().values():
        for line in data.split(b"\n"):
            with contextlib.suppress(TwilioProtocolError):
                seen.add(type(parse_twilio_message(line)))
    assert seen >= {StreamConnected, StreamStart, StreamMedia, StreamMark, StreamDtmf}
    assert seen >= {StreamStop, UnknownStreamMessage}


def test_fuzz_run_corpus_counts_inputs(tmp_path: Path) -> None:
    for path in CORPUS_FILES:
        if path.stat().st_size < 10_000:
            (tmp_path / path.name).write_bytes(path.read_bytes())
    count = len(list(tmp_path.iterdir()))
    assert count >= 30
    assert HARNESS.run_corpus([tmp_path]) == count


def test_fuzz_harness_fails_on_a_broken_counter_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness checks the parser against the JSON itself: a counter rule broken in the
    parser (negative numbers taken) is an AssertionError."""
    negative = text(with_(MEDIA, sequenceNumber=-5))
    HARNESS.check_message(negative.encode())
    monkeypatch.setattr(twilio, "_integer", lambda value: value if type(value) is int else None)
    with pytest.raises(AssertionError):
        HARNESS.check_message(negative.encode())


def test_fuzz_harness_fails_on_a_gap_padded_past_10_s(monkeypatch: pytest.MonkeyPatch) -> None:
    from rtproto.phone import padding

    call = (CORPUS / "call-gap-10s").read_bytes()
    HARNESS.check_call(call)
    monkeypatch.setattr(padding, "MAX_GAP_MS", 20_000)
    with pytest.raises(AssertionError):
        HARNESS.check_call(call)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random(data: bytes) -> None:
    HARNESS.check_one(data)


FUZZ_SEEDS = sorted(data for name, data in HARNESS.seeds().items() if len(data) < 10_000)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FUZZ_SEEDS), st.binary(max_size=8), st.integers(0, 3000))
def test_fuzz_mutated_seeds(seed: bytes, insert: bytes, at: int) -> None:
    data = seed[:at] + insert + seed[at:]
    HARNESS.check_one(data)
