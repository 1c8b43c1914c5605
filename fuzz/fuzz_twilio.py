"""Fuzz harness for Twilio Media Streams (atheris / libFuzzer): the message parser
(:func:`rtproto.wire.twilio.parse_twilio_message`) and the call bridge
(:class:`rtproto.phone.TwilioBridge`).

Each input is used two ways.

**As one message from Twilio**, parsed as ``bytes``, ``bytearray``, ``memoryview``, as a
``str`` when it is UTF-8 and as a ``str`` holding lone surrogates when it is UTF-8 apart from
encoded surrogates (``surrogatepass``); with the default bound, with ``max_size`` exactly its
size and with one byte less. The contract:

* only :class:`TwilioProtocolError` escapes: hint 1009 exactly when the message is over
  ``max_size`` (a ``str`` counted in UTF-8 bytes), else 1007; every form has the same outcome;
* what parses is what the JSON holds (checked here against the JSON decoded on its own): the
  class its ``event`` names (:class:`UnknownStreamMessage` for another event), ``raw`` the
  decoded object, counters read from JSON integers or ASCII digit strings as ints from 0 to
  2**53 - 1 (else None), text fields a ``str`` or None, ``StreamMedia.audio`` the decoded
  payload; a known event is refused (hint 1007, its type named) exactly when it lacks what it
  must carry (``start.streamSid``, ``media.payload`` in base64, ``mark.name``, ``dtmf.digit``);
* ``media_message`` / ``mark_message`` / ``clear_message`` with text taken from the input are
  JSON of Twilio's shapes and parse back to the same values.

**As a call**, split on newlines into up to 64 steps, 50 ms apart (due timers run in
between), bridging a ``TwilioBridge`` and a connected ``ClientSession`` in the ``phone``
profile (once with the default options, once with small bounds and a short inactivity
timeout). A line starting with ``!`` is a command (its second byte picks which, the rest are
its arguments): a valid Twilio message built from the input (``connected``, ``start``,
``media`` with gaps, backwards or missing timestamps and numbers for counters, the echo of a
mark the bridge sent, ``dtmf``, ``stop``, an unknown event), a server event for the session
(speech started or stopped, the model's audio, its end, a ``session.updated`` naming a
format), an interruption, time passing, the Twilio socket or the Realtime connection closing,
a timer fired early. A line starting with ``@`` is a raw server message; any other line is a
raw Twilio message. Every session event goes through ``handle_session_event``, in order. The
contract:

* nothing escapes the bridge (every queue is drained after each step); a session command
  raises only ``LocalProtocolError`` / ``ConnectionClosed``, and only once it is closed;
* each Twilio message received yields exactly one bridge event: the message, as
  ``parse_twilio_message`` types it, or a ``ProtocolWarning`` when it does not parse;
* the bridge sends Twilio only JSON ``media`` / ``mark`` / ``clear`` messages carrying the
  current stream's ``streamSid``, nothing without a stream: each audio chunk becomes its
  ``media`` (the delta untouched) and one mark, an item's end at most one ``done`` mark, an
  interruption one ``clear``; mark names are unique and of the documented forms
  (``<item>:<ms>:g<gen>:m<seq>``, ``done:<item>:g<gen>:m<seq>``);
* the session is sent only the caller's inbound audio, as it arrived, while it is connected
  (else the media is counted as dropped), after at most 10 s of mu-law silence for a gap in
  Twilio's timestamps (none on a stream in another format, none after an inactivity padding);
  the inactivity timer fires 1 s of silence once, at the last media plus the timeout, only
  while the caller speaks on a connected session.

Usage::

    python fuzz/fuzz_twilio.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/twilio
    python fuzz/fuzz_twilio.py --corpus-only [fuzz/corpus/twilio ...]
    python fuzz/fuzz_twilio.py --write-seeds fuzz/corpus/twilio

Without atheris installed (or with ``--corpus-only``) every corpus file runs through
``TestOneInput`` once. ``tests/test_twilio_wire.py`` replays the corpus.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

try:
    import atheris  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

# The heavy dependencies are imported before instrumentation so that only rtproto is traced.
import msgspec
import numpy  # noqa: F401
import pybase64  # noqa: F401

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import harness_main, replay, target_imports  # noqa: E402

with target_imports(__name__, atheris):
    import rtproto
    from rtproto import events as E
    from rtproto._b64 import decode_base64
    from rtproto.phone import TwilioBridge, TwilioBridgeOptions, TwilioMessageReceived
    from rtproto.session import (
        AudioChunk,
        AudioDone,
        AudioInterrupted,
        ClientSession,
        ConnectionChange,
        ConnectionStatus,
        Limits,
        ProtocolWarning,
        SessionOptions,
        SessionState,
    )
    from rtproto.wire.twilio import (
        MAX_TWILIO_MESSAGE_SIZE,
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

__all__ = ["TestOneInput", "check_call", "check_message", "check_one", "main", "seeds"]

MAX_STEPS = 64
STEP_S = 0.05
MAX_SAFE = 2**53 - 1
KNOWN: dict[str, type[TwilioMessage]] = {
    "connected": StreamConnected,
    "start": StreamStart,
    "media": StreamMedia,
    "mark": StreamMark,
    "dtmf": StreamDtmf,
    "stop": StreamStop,
}
#: Strict base64: whole quanta, padding only at the end.
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_MARK = re.compile(r"(?P<item>.*):(?P<ms>[0-9]+):g(?P<gen>[0-9]+):m(?P<seq>[0-9]+)", re.DOTALL)
_DONE = re.compile(r"done:(?P<item>.*):g(?P<gen>[0-9]+):m(?P<seq>[0-9]+)", re.DOTALL)
_SILENCE = 0xFF
_BRIDGE_OPTIONS = (
    TwilioBridgeOptions(),
    TwilioBridgeOptions(input_inactivity_timeout=0.2, max_pending_marks=3, max_message_size=1024),
    TwilioBridgeOptions(outbound_frame_ms=20),
)
_LIMITS = Limits(max_history_items=8, max_tracked_items=4)
_REFUSALS = (rtproto.LocalProtocolError, rtproto.ConnectionClosed)
MULAW = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
OTHER_FORMAT = {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}


# ------------------------------------------------------------------ one Twilio message --


def _forms(data: bytes) -> list[str | bytes | bytearray | memoryview]:
    forms: list[str | bytes | bytearray | memoryview] = [data, bytearray(data), memoryview(data)]
    try:
        forms.append(data.decode("utf-8"))
    except UnicodeDecodeError:
        with contextlib.suppress(UnicodeDecodeError):
            forms.append(data.decode("utf-8", "surrogatepass"))  # str with lone surrogates
    return forms


def _outcome(form: str | bytes | bytearray | memoryview, max_size: int | None = None) -> Any:
    """``("ok", message)`` or ``("refused", hint, event_type)``; anything else escapes."""
    try:
        if max_size is None:
            message = parse_twilio_message(form)
        else:
            message = parse_twilio_message(form, max_size=max_size)
    except TwilioProtocolError as exc:
        assert exc.hint in (1007, 1009), exc.hint
        assert exc.event_type is None or exc.event_type in KNOWN, exc.event_type
        return ("refused", exc.hint, exc.event_type)
    assert isinstance(message, TwilioMessage), type(message)
    return ("ok", message)


def _same(one: Any, other: Any) -> bool:
    if one[0] != other[0]:
        return False
    if one[0] == "refused":
        return bool(one == other)
    return type(one[1]) is type(other[1]) and one[1] == other[1] and one[1].raw == other[1].raw


def _counter_ok(value: object, got: object) -> bool:
    """A counter as documented: a JSON integer or a string of up to 16 ASCII digits, from 0
    to 2**53 - 1; else None."""
    if got is not None and type(got) is not int:
        return False
    if isinstance(value, bool):
        return got is None
    if isinstance(value, int):
        return got == (value if 0 <= value <= MAX_SAFE else None)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        number = int(value)
        return got == (number if number <= MAX_SAFE else None)
    return got is None


def _text_ok(value: object, got: object) -> bool:
    return got == (value if isinstance(value, str) else None)


def _must_refuse(raw: dict[str, Any]) -> bool:
    """Whether a decoded object with a string ``event`` lacks what its event must carry."""
    event = raw["event"]
    if event == "start":
        start = raw.get("start")
        if not isinstance(start, dict):
            return True
        sid = start["streamSid"] if "streamSid" in start else raw.get("streamSid")
        return not (isinstance(sid, str) and sid)
    if event in ("media", "mark", "dtmf"):
        body = raw.get(event)
        if not isinstance(body, dict):
            return True
        value = body.get({"media": "payload", "mark": "name", "dtmf": "digit"}[event])
        if not isinstance(value, str):
            return True
        return event == "media" and _BASE64.fullmatch(value) is None
    return False


def _check_fields(message: TwilioMessage, raw: dict[str, Any]) -> None:
    """The typed message against its decoded JSON."""
    assert message.raw == raw
    event = raw["event"]
    if event not in KNOWN:
        assert type(message) is UnknownStreamMessage, type(message)
        assert message.event_type == event
        return
    assert type(message) is KNOWN[event], (event, type(message))
    assert type(message).event == event
    if isinstance(message, StreamConnected):
        assert _text_ok(raw.get("protocol"), message.protocol)
        assert _text_ok(raw.get("version"), message.version)
        return
    assert _counter_ok(raw.get("sequenceNumber"), message.sequence_number), message
    if isinstance(message, StreamStart):
        start = raw["start"]
        sid = start["streamSid"] if "streamSid" in start else raw.get("streamSid")
        assert message.stream_sid == sid and isinstance(sid, str) and sid
        assert _text_ok(start.get("callSid"), message.call_sid)
        assert _text_ok(start.get("accountSid"), message.account_sid)
        tracks = start.get("tracks")
        expected = (
            tuple(t for t in tracks if isinstance(t, str)) if isinstance(tracks, list) else ()
        )
        assert message.tracks == expected
        fmt = start.get("mediaFormat")
        fmt = fmt if isinstance(fmt, dict) else {}
        media_format = message.media_format
        assert _text_ok(fmt.get("encoding"), media_format.encoding)
        assert _counter_ok(fmt.get("sampleRate"), media_format.sample_rate)
        assert _counter_ok(fmt.get("channels"), media_format.channels)
        assert media_format.is_mulaw_8k_mono == (
            (media_format.encoding, media_format.sample_rate, media_format.channels)
            == ("audio/x-mulaw", 8000, 1)
        )
        parameters = start.get("customParameters")
        assert message.custom_parameters == (parameters if isinstance(parameters, dict) else {})
        return
    assert _text_ok(raw.get("streamSid"), message.stream_sid)  # type: ignore[attr-defined]
    if isinstance(message, StreamMedia):
        media = raw["media"]
        assert message.payload == media["payload"]
        assert _text_ok(media.get("track"), message.track)
        assert _counter_ok(media.get("chunk"), message.chunk)
        assert _counter_ok(media.get("timestamp"), message.timestamp)
        audio = message.audio
        assert audio == base64.b64decode(message.payload, validate=True)
        padding = len(message.payload) - len(message.payload.rstrip("="))
        assert len(audio) == len(message.payload) // 4 * 3 - padding
    elif isinstance(message, StreamMark):
        assert message.name == raw["mark"]["name"]
    elif isinstance(message, StreamDtmf):
        assert message.digit == raw["dtmf"]["digit"]
        assert _text_ok(raw["dtmf"].get("track"), message.track)
    else:
        assert isinstance(message, StreamStop)
        stop = raw.get("stop")
        stop = stop if isinstance(stop, dict) else {}
        assert _text_ok(stop.get("callSid"), message.call_sid)
        assert _text_ok(stop.get("accountSid"), message.account_sid)


def _check_builders(data: bytes) -> None:
    """The application's messages, with text from the input, round-trip."""
    text = data[:200].decode("utf-8", "replace")
    sid = "MZ" + text
    audio = data[:64]
    payload = base64.b64encode(audio).decode()
    sent = media_message(sid, payload)
    assert json.loads(sent) == {"event": "media", "streamSid": sid, "media": {"payload": payload}}
    media = parse_twilio_message(sent)
    assert isinstance(media, StreamMedia), media
    assert (media.stream_sid, media.payload, media.audio) == (sid, payload, audio)
    sent = mark_message(sid, text)
    assert json.loads(sent) == {"event": "mark", "streamSid": sid, "mark": {"name": text}}
    mark = parse_twilio_message(sent)
    assert isinstance(mark, StreamMark) and (mark.stream_sid, mark.name) == (sid, text), mark
    sent = clear_message(sid)
    assert json.loads(sent) == {"event": "clear", "streamSid": sid}
    clear = parse_twilio_message(sent)
    assert isinstance(clear, UnknownStreamMessage) and clear.event_type == "clear", clear


def check_message(data: bytes) -> None:
    """The parser's contract on one input; raises on any violation."""
    forms = _forms(data)
    size = len(data)
    first = _outcome(data)
    for form in forms:
        outcome = _outcome(form)
        assert _same(outcome, first), (type(form), outcome, first)
        at_bound = _outcome(form, size)  # exactly max_size bytes: taken
        assert at_bound[:2] != ("refused", 1009), (type(form), "refused at exactly max_size")
        if size <= MAX_TWILIO_MESSAGE_SIZE:
            assert _same(at_bound, first), (type(form), at_bound, first)
        if size:
            over = _outcome(form, size - 1)
            assert over[:2] == ("refused", 1009), (type(form), over)
    _check_builders(data)
    if size > MAX_TWILIO_MESSAGE_SIZE:
        assert first[:2] == ("refused", 1009), first
        return
    try:
        raw = msgspec.json.decode(data)  # the JSON library on its own
    except msgspec.DecodeError:
        assert first == ("refused", 1007, None), first
        return
    except RecursionError:
        return  # (how deep it goes depends on the stack: no reference)
    if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
        assert first == ("refused", 1007, None), first
        return
    if raw["event"] in KNOWN and _must_refuse(raw):
        assert first == ("refused", 1007, raw["event"]), first
        return
    assert first[0] == "ok", (first, raw)
    _check_fields(first[1], raw)


# ---------------------------------------------------------------------------- a call --


def _appended(texts: list[str]) -> list[bytes]:
    """The audio of the session's outgoing messages, all of which must be appends."""
    audio = []
    for text in texts:
        event = rtproto.parse_client_event(text)
        assert isinstance(event, E.InputAudioBufferAppend), text
        audio.append(event.audio_bytes)
    return audio


def _silence_ms(chunk: bytes) -> int:
    assert chunk == bytes([_SILENCE]) * len(chunk), "padding that is not mu-law silence"
    assert len(chunk) % 8 == 0, len(chunk)
    return len(chunk) // 8


def _is_base64(text: str) -> bool:
    try:
        decode_base64(text)
    except ValueError:
        return False
    return True


class _Call:
    """One bridged call under test, with what the contract needs to remember."""

    def __init__(self, options: TwilioBridgeOptions) -> None:
        self.session = ClientSession(
            SessionOptions(model="gpt-realtime", profile="phone", limits=_LIMITS)
        )
        self.bridge = TwilioBridge(self.session, options)
        self.timeout = options.input_inactivity_timeout
        frame_ms = options.outbound_frame_ms
        self.frame = None if frame_ms is None else frame_ms * 8  # bytes of mu-law
        # framed: whose audio is held short of a frame, (response, item, content index); its
        # rest goes first when other audio comes
        self.held_for: tuple[str, str, int] | None = None
        self.now = 0.0
        self.drains = 0
        self.server_events = 0
        # what Twilio would number and time
        self.sequence = 0
        self.media_ts = 0
        # marks the bridge sent: names ever sent, names not echoed yet, the ms of each item's
        # last mark and the items whose done mark went since their last audio, per generation
        self.names: set[str] = set()
        self.unechoed: list[str] = []
        self.item_ms: dict[tuple[int, Any], int] = {}
        self.done_items: set[tuple[int, Any]] = set()
        self.after_done: set[tuple[int, Any]] = set()  # runs that had a done mark
        self.generation = -1
        # the model speaking: (response_id, item_id), and responses so far
        self.playing: tuple[str, str] | None = None
        self.responses = 0
        # what the padding is allowed to do
        self.enabled = False
        self.speaking = False
        self.previous_end: float | None = None  # end of the last media padded (stream time)
        self.last_media_at: float | None = None
        self.inactivity_padded = False

    # ------------------------------------------------------------------ the contract --

    def _bridge_events(self) -> list[Any]:
        self.drains += 1  # both ways of draining, in turn
        if self.drains % 2:
            events = list(self.bridge.events())
        else:
            events = []
            while (event := self.bridge.next_event()) is not None:
                events.append(event)
        for event in events:
            assert isinstance(event, (TwilioMessageReceived, ProtocolWarning)), event
        return events

    def _sent_to_twilio(self, sid: str | None) -> list[dict[str, Any]]:
        messages = []
        for text in self.bridge.twilio_messages_to_send():
            message = json.loads(text)
            assert isinstance(message, dict) and message.get("streamSid") == sid, (text, sid)
            assert isinstance(sid, str) and sid, "a message for Twilio with no stream"
            event = message["event"]
            if event == "media":
                assert set(message) == {"event", "streamSid", "media"}, text
                assert set(message["media"]) == {"payload"}, text
                assert isinstance(message["media"]["payload"], str), text
            elif event == "mark":
                assert set(message) == {"event", "streamSid", "mark"}, text
                assert set(message["mark"]) == {"name"}, text
                name = message["mark"]["name"]
                assert isinstance(name, str) and name not in self.names, f"mark {name!r} twice"
                self.names.add(name)
                self.unechoed.append(name)
            else:
                assert event == "clear" and set(message) == {"event", "streamSid"}, text
            messages.append(message)
        return messages

    def _framed(
        self, sent: list[dict[str, Any]], owner: tuple[str, str, int], *, rest_first: bool
    ) -> list[str]:
        """Media and mark pairs of framed audio: every media a whole frame but a first one
        that is another item's rest; the items their marks name, in order."""
        assert len(sent) % 2 == 0, sent
        items = []
        for number, (media, mark) in enumerate(zip(sent[::2], sent[1::2], strict=True)):
            assert (media["event"], mark["event"]) == ("media", "mark"), sent
            size = len(base64.b64decode(media["media"]["payload"], validate=True))
            if number == 0 and rest_first:
                assert 0 < size <= self.frame, size  # type: ignore[operator]
            else:
                assert size == self.frame, (size, self.frame)
            match = _MARK.fullmatch(mark["mark"]["name"])
            assert match is not None, mark
            whose = self.held_for if number == 0 and rest_first else owner
            self._mark_name(mark["mark"]["name"], match["item"], done=False, owner=whose)
            items.append(match["item"])
        return items

    def _mark_name(
        self, name: str, item_id: str, done: bool, owner: tuple[str, str, int] | None
    ) -> None:
        match = (_DONE if done else _MARK).fullmatch(name)
        assert match is not None and match["item"] == item_id, (name, item_id)
        generation = int(match["gen"])
        assert generation >= self.generation, (name, self.generation)
        self.generation = generation
        assert int(match["seq"]) >= 1, name
        # per audio run: the same item id from another response or content part (a server's
        # mistake) is counted apart by the bridge; mark names stay unique by their sequence
        key = (generation, owner)
        if done:  # (more audio of the item after it, from a server that sends it, is a new run)
            assert key not in self.done_items, f"a second done mark for {item_id!r}"
            self.done_items.add(key)
            self.after_done.add(key)
            self.item_ms.pop(key, None)
        else:
            ms = int(match["ms"])
            if key not in self.after_done:  # (after it, the done mark's echo may restart it)
                assert ms >= self.item_ms.get(key, 0), (name, self.item_ms.get(key))
            self.item_ms[key] = ms
            self.done_items.discard(key)

    def _reset_padding(self, *, enabled: bool | None = None) -> None:
        if enabled is not None:
            self.enabled = enabled
        self.previous_end = self.last_media_at = None
        self.speaking = self.inactivity_padded = False

    def _check_timer(self) -> None:
        deadline = self.bridge.get_timer()
        if deadline is not None:
            assert self.timeout is not None and self.enabled and self.speaking, deadline
            assert self.last_media_at is not None, deadline
            assert deadline == self.last_media_at + self.timeout, deadline

    def pass_event(self, event: Any) -> None:
        """One session event through the bridge, and what it may send Twilio."""
        sid = self.bridge.stream_sid
        self.bridge.handle_session_event(event)
        sent = self._sent_to_twilio(sid)
        kind = type(event)
        if sid is None:
            assert not sent, (event, sent)
        elif kind is AudioChunk and not _is_base64(event.event.delta):
            assert not sent, sent  # (refused with a warning: Twilio would play noise)
        elif kind is AudioChunk and self.frame is not None:
            # whole frames of this item, after the rest of another item's audio, if any
            owner = (event.response_id, event.item_id, event.content_index)
            items = self._framed(sent, owner, rest_first=self.held_for != owner)
            assert all(item == event.item_id for item in items[1:]), (items, event.item_id)
            self.held_for = owner
        elif kind is AudioDone and self.frame is not None:
            events = [m["event"] for m in sent]
            assert events in ([], ["mark"], ["media", "mark"], ["media", "mark", "mark"]), sent
            owner = (event.response_id, event.item_id, event.content_index)
            if events[:1] == ["media"]:
                assert self.held_for == owner, (self.held_for, owner)
                assert self._framed(sent[:2], owner, rest_first=True) == [event.item_id], sent
                self.held_for = None
            for mark in sent[2:] if events[:1] == ["media"] else sent:
                self._mark_name(mark["mark"]["name"], event.item_id, done=True, owner=owner)
        elif kind is AudioChunk:
            assert len(sent) == 2, sent
            media, mark = sent
            assert media["event"] == "media" and media["media"]["payload"] == event.event.delta
            assert mark["event"] == "mark", sent
            owner = (event.response_id, event.item_id, event.content_index)
            self._mark_name(mark["mark"]["name"], event.item_id, done=False, owner=owner)
        elif kind is AudioDone:
            assert [m["event"] for m in sent] in ([], ["mark"]), sent
            owner = (event.response_id, event.item_id, event.content_index)
            for mark in sent:
                self._mark_name(mark["mark"]["name"], event.item_id, done=True, owner=owner)
        elif kind is AudioInterrupted:
            assert [m["event"] for m in sent] == ["clear"], sent
            self.held_for = None  # (what was held is dropped)
        else:
            assert not sent, (event, sent)
        if kind is E.InputAudioBufferSpeechStarted:
            self.speaking = True
        elif kind is E.InputAudioBufferSpeechStopped:
            self.speaking = False
        elif kind is ConnectionChange and event.status is ConnectionStatus.DISCONNECTED:
            self._reset_padding()
        for warning in self._bridge_events():  # (a session.updated may warn of its format,
            assert isinstance(warning, ProtocolWarning), warning  # audio not base64 is refused)
            assert kind in (E.SessionUpdated, E.SessionCreated, AudioChunk), (event, warning)

    def pump(self) -> None:
        """Every session event through the bridge; what the session sends parses."""
        for event in self.session.events():
            self.pass_event(event)
        for text in self.session.messages_to_send():
            event = rtproto.parse_client_event(text)
            assert not isinstance(event, (rtproto.UnknownEvent, rtproto.InvalidEvent)), text
        assert not self.bridge.twilio_messages_to_send()
        self._check_timer()

    def from_twilio(self, message: str | bytes) -> None:
        """One message from Twilio, and what the bridge makes of it."""
        connected = self.session.state is SessionState.CONNECTED
        dropped = self.bridge.dropped_media
        sid = self.bridge.stream_sid
        self.bridge.receive_twilio(message, self.now)  # (nothing may escape)
        assert not self._sent_to_twilio(sid), "a message from Twilio answered to Twilio"
        events = self._bridge_events()
        assert len(events) == 1, events
        try:
            expected: Any = parse_twilio_message(
                message, max_size=self.bridge.options.max_message_size
            )
        except TwilioProtocolError:
            expected = None
        (event,) = events
        appended = _appended(self.session.messages_to_send())
        if expected is None:
            assert isinstance(event, ProtocolWarning), event
            assert event.message.startswith("dropped a Twilio message"), event.message
            assert not appended and self.bridge.dropped_media == dropped, appended
            return
        assert isinstance(event, TwilioMessageReceived), event
        parsed = event.message
        assert type(parsed) is type(expected) and parsed == expected, (parsed, expected)
        if isinstance(parsed, StreamMedia):
            self._media(parsed, appended, connected, dropped)
            return
        assert not appended and self.bridge.dropped_media == dropped, appended
        if isinstance(parsed, StreamStart):
            assert self.bridge.stream_sid == parsed.stream_sid and not self.bridge.ended
            self._reset_padding(enabled=parsed.media_format.is_mulaw_8k_mono)
            self.held_for = None  # (a new stream gets none of the last one's audio)
        elif isinstance(parsed, StreamStop):
            assert self.bridge.stream_sid is None and self.bridge.ended
            self._reset_padding(enabled=False)
            self.held_for = None
        else:
            assert self.bridge.stream_sid == sid

    def _media(
        self, media: StreamMedia, appended: list[bytes], connected: bool, dropped: int
    ) -> None:
        if media.track not in (None, "inbound"):
            assert not appended and self.bridge.dropped_media == dropped, "outbound audio sent"
            return
        if not connected:
            assert not appended, "audio sent to a session that is not connected"
            assert self.bridge.dropped_media == dropped + 1
            return
        assert self.bridge.dropped_media == dropped
        audio = media.audio
        assert 1 <= len(appended) <= 2 and appended[-1] == audio, (len(appended), len(audio))
        silence = _silence_ms(appended[0]) if len(appended) == 2 else 0
        assert 0 <= silence <= 10_000, silence
        timestamp = media.timestamp
        previous = self.previous_end
        if silence:
            assert self.enabled, "padding on a stream that is not mu-law 8 kHz mono"
            assert not self.inactivity_padded, "a gap padded after an inactivity padding"
            assert timestamp is not None and previous is not None, (timestamp, previous)
            assert silence <= timestamp - previous, (silence, timestamp, previous)
        if not self.enabled or timestamp is None or (previous is not None and timestamp < previous):
            self.previous_end = None
        else:
            self.previous_end = timestamp + len(audio) / 8
        self.inactivity_padded = False
        self.last_media_at = self.now

    def fire(self, *, due_only: bool = True) -> None:
        """The bridge's timer (when due, or now whatever it says with ``due_only=False``)."""
        deadline = self.bridge.get_timer()
        due = deadline is not None and deadline <= self.now
        if due_only and not due:
            return
        connected = self.session.state is SessionState.CONNECTED
        self.bridge.handle_timer(self.now)
        appended = _appended(self.session.messages_to_send())
        assert not self._bridge_events() and not self.bridge.twilio_messages_to_send()
        if not due:
            assert not appended, "silence before the deadline"
            assert self.bridge.get_timer() == deadline, "a timer not due was changed"
            return
        assert self.bridge.get_timer() is None, "the inactivity padding is due twice"
        if appended:
            assert appended == [bytes([_SILENCE]) * 8000], [len(a) for a in appended]
            assert connected and self.speaking and self.enabled, (connected, self.speaking)
            self.inactivity_padded = True

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for _ in range(100):
            timers = [self.bridge.get_timer(), self.session.get_timer()]
            if not any(t is not None and t <= self.now for t in timers):
                return
            self.fire()
            timer = self.session.get_timer()
            if timer is not None and timer <= self.now:
                self.session.handle_timer(self.now)
            self.pump()
        raise AssertionError("timers do not settle")

    # --------------------------------------------------------------------- the steps --

    def server(self, kind: str, **fields: Any) -> None:
        self.server_events += 1
        event = {"type": kind, "event_id": f"event_{self.server_events}", **fields}
        self.from_server(json.dumps(event).encode())

    def from_server(self, line: bytes) -> None:
        try:
            self.session.receive(line, self.now)
        except rtproto.LocalProtocolError:
            assert self.session.state is SessionState.CLOSED, "refused while open"

    def twilio(self, message: dict[str, Any], *, counted: bool = True) -> None:
        if counted:
            self.sequence += 1
            message = {**message, "sequenceNumber": str(self.sequence)}
        self.from_twilio(json.dumps(message, ensure_ascii=False))

    def command(self, line: bytes) -> None:
        code = line[1] if len(line) > 1 else 0
        arg = line[2:]
        number = int.from_bytes(arg[:2].ljust(2, b"\0"), "little")
        rest = arg[2:]
        text = rest.decode("utf-8", "replace")
        sid = self.bridge.stream_sid or "MZ" + "0" * 32
        steps = (
            lambda: self.twilio({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
            lambda: self._start(number, text),
            lambda: self._media_step(number, rest),
            lambda: self._echo(number, text),
            lambda: self._echo_all(),
            lambda: self.twilio(
                {
                    "event": "dtmf",
                    "streamSid": sid,
                    "dtmf": {
                        "track": "inbound_track",
                        "digit": text or "0123456789*#"[number % 12],
                    },
                }
            ),
            lambda: self.twilio(
                {"event": "stop", "streamSid": sid, "stop": {"accountSid": "AC1", "callSid": "CA1"}}
            ),
            lambda: self.twilio({"event": text or "future", "streamSid": sid, "x": number}),
            lambda: self.server(
                "input_audio_buffer.speech_started",
                audio_start_ms=number,
                item_id=f"item_U{number}",
            ),
            lambda: self.server(
                "input_audio_buffer.speech_stopped", audio_end_ms=number, item_id=f"item_U{number}"
            ),
            lambda: self._model_audio(number, rest),
            lambda: self._model_done(),
            lambda: self._interrupt(cancel=bool(number & 1)),
            lambda: self.advance(number / 1000),
            lambda: self._session_updated(number),
            lambda: self._twilio_closed(),
            lambda: self.session.connection_lost("fuzz", self.now),
            lambda: self.fire(due_only=False),
            lambda: self.twilio(
                {"event": "media", "streamSid": sid, "media": {"track": "inbound", "payload": text}}
            ),
        )
        assert len(steps) == _COMMANDS
        steps[code % _COMMANDS]()

    def _interrupt(self, *, cancel: bool) -> None:
        try:
            self.session.interrupt(self.now, cancel=cancel)
        except _REFUSALS:  # the documented refusal: the session is closed (or closing)
            assert self.session.state is not SessionState.CONNECTED, "refused while connected"

    def _twilio_closed(self) -> None:
        self.bridge.twilio_closed()
        assert self.bridge.stream_sid is None and self.bridge.ended
        assert not self.bridge.twilio_messages_to_send() and not self._bridge_events()
        self._reset_padding(enabled=False)
        self.held_for = None

    def _start(self, number: int, text: str) -> None:
        sid = "MZ" + (text[:64] or "0" * 32)
        start: dict[str, Any] = {
            "accountSid": "AC" + "1" * 32,
            "callSid": "CA" + "2" * 32,
            "tracks": ["inbound"],
            "mediaFormat": OTHER_FORMAT if number & 1 else MULAW,
        }
        if not number & 2:
            start["customParameters"] = {"caller": text, "n": str(number)}
        if not number & 4:
            start["streamSid"] = sid
        self.media_ts = 0
        self.twilio({"event": "start", "start": start, "streamSid": sid})

    def _media_step(self, number: int, audio: bytes) -> None:
        audio = audio or bytes([0x7F]) * 160
        timestamp = self.media_ts
        jump = number >> 6
        if number & 1:
            timestamp += 20 * (jump % 600)  # audio lost before Twilio: a gap of up to 12 s
        if number & 2:
            timestamp = max(0, timestamp - 20 * (jump % 8 + 1))  # backwards
        self.media_ts = timestamp + len(audio) // 8
        numeric = bool(number & 4)  # counters as numbers (Twilio sends strings)
        media: dict[str, Any] = {
            "chunk": self.sequence if numeric else str(self.sequence),
            "payload": base64.b64encode(audio).decode(),
        }
        if not number & 8:
            media["timestamp"] = timestamp if numeric else str(timestamp)
        if number & 16:
            media["track"] = "outbound"
        elif not number & 32:
            media["track"] = "inbound"
        sid = self.bridge.stream_sid or "MZ" + "0" * 32
        self.twilio({"event": "media", "streamSid": sid, "media": media})

    def _echo(self, number: int, text: str) -> None:
        if self.unechoed and not number & 0x8000:
            name = self.unechoed.pop(number % len(self.unechoed))
        else:
            name = text
        sid = self.bridge.stream_sid or "MZ" + "0" * 32
        self.twilio({"event": "mark", "streamSid": sid, "mark": {"name": name}})

    def _echo_all(self) -> None:
        names, self.unechoed = self.unechoed, []
        for name in names:  # in order, as Twilio echoes them (after playback, or a clear)
            sid = self.bridge.stream_sid or "MZ" + "0" * 32
            self.twilio({"event": "mark", "streamSid": sid, "mark": {"name": name}})
            self.pump()

    def _model_audio(self, number: int, audio: bytes) -> None:
        if self.playing is None:
            self.responses += 1
            response_id, item_id = f"resp_{self.responses}", f"item_A{self.responses}"
            self.playing = response_id, item_id
            self.server(
                "response.created",
                response={
                    "object": "realtime.response",
                    "id": response_id,
                    "status": "in_progress",
                    "output": [],
                    "conversation_id": "conv_1",
                    "output_modalities": ["audio"],
                },
            )
            self.server(
                "response.output_item.added",
                response_id=response_id,
                output_index=0,
                item={
                    "id": item_id,
                    "object": "realtime.item",
                    "type": "message",
                    "role": "assistant",
                    "status": "in_progress",
                    "content": [],
                },
            )
        response_id, item_id = self.playing
        self.server(
            "response.output_audio.delta",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=base64.b64encode(audio or bytes([0xFF]) * (number % 2000)).decode(),
        )

    def _model_done(self) -> None:
        response_id, item_id = self.playing or ("resp_0", "item_A0")
        self.playing = None
        ctx = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        self.server("response.output_audio.done", **ctx, content_index=0)
        self.server(
            "response.done",
            response={
                "object": "realtime.response",
                "id": response_id,
                "status": "completed",
                "output": [],
                "conversation_id": "conv_1",
            },
        )

    def _session_updated(self, number: int) -> None:
        formats = (
            {"type": "audio/pcmu"},
            {"type": "audio/pcm", "rate": 24000},
            {"type": "audio/pcma"},
        )
        self.server(
            "session.updated",
            session={
                "type": "realtime",
                "object": "realtime.session",
                "id": "sess_1",
                "audio": {
                    "input": {"format": formats[number % 3]},
                    "output": {"format": formats[(number >> 2) % 3]},
                },
            },
        )


def _run(lines: list[bytes], options: TwilioBridgeOptions) -> None:
    call = _Call(options)
    call.session.connection_made(call.now)
    call.pump()
    for line in lines:
        call.advance(STEP_S)
        if line.startswith(b"!"):
            call.command(line)
        elif line.startswith(b"@"):
            call.from_server(line[1:])
        else:
            call.from_twilio(line)
        call.pump()
    call.advance(10.0)
    call._twilio_closed()
    call.session.connection_lost("end of input", call.now)
    call.pump()
    assert call.bridge.get_timer() is None


def check_call(data: bytes) -> None:
    """The bridge's contract on one input read as a call; raises on any violation."""
    lines = data.split(b"\n")[:MAX_STEPS]
    for options in _BRIDGE_OPTIONS:
        try:
            _run(lines, options)
        except Exception as exc:
            if hasattr(exc, "add_note"):  # Python 3.11+
                exc.add_note(f"rtproto twilio fuzz: a call with {options}")
            raise


def check_one(data: bytes) -> None:
    """Check both contracts on one input; raises on any violation."""
    check_message(data)
    check_call(data)


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    check_one(data)


# --------------------------------------------------------------------------- seed corpus --

_SID = "MZ" + "18ad3ab5a668481ce02b83e7395059f0"
_ACCOUNT = "AC" + "25e16e9a716a4a1786a7c47a9ce9c4cc"
_CALL = "CA" + "8f5be7ee4b3b4fc2a1d5f0e21cb7c9a1"


def _json(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def twilio_connected() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def twilio_start(sequence: int = 1, **start: Any) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": str(sequence),
        "start": {
            "accountSid": _ACCOUNT,
            "streamSid": _SID,
            "callSid": _CALL,
            "tracks": ["inbound"],
            "mediaFormat": dict(MULAW),
            "customParameters": {"tenant": "acme"},
            **start,
        },
        "streamSid": _SID,
    }


def twilio_media(
    sequence: int, chunk: int, timestamp: int, audio: bytes = b"\x7f" * 160
) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(sequence),
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(timestamp),
            "payload": base64.b64encode(audio).decode(),
        },
        "streamSid": _SID,
    }


def twilio_mark(sequence: int, name: str) -> dict[str, Any]:
    return {
        "event": "mark",
        "sequenceNumber": str(sequence),
        "streamSid": _SID,
        "mark": {"name": name},
    }


def twilio_dtmf(sequence: int, digit: str) -> dict[str, Any]:
    return {
        "event": "dtmf",
        "streamSid": _SID,
        "sequenceNumber": str(sequence),
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def twilio_stop(sequence: int) -> dict[str, Any]:
    return {
        "event": "stop",
        "sequenceNumber": str(sequence),
        "stop": {"accountSid": _ACCOUNT, "callSid": _CALL},
        "streamSid": _SID,
    }


def _start_of_size(size: int) -> bytes:
    """A ``start`` whose custom parameters make it exactly ``size`` bytes."""
    base = _json(twilio_start(customParameters={"note": ""}))
    return _json(twilio_start(customParameters={"note": "x" * (size - len(base))}))


def _command(code: int, number: int = 0, rest: bytes = b"") -> bytes:
    """A command line; its code is written as a printable byte (the same code modulo the
    number of commands): code 10 as a byte would be a newline, which splits steps."""
    line = b"!" + bytes([code + 3 * _COMMANDS]) + number.to_bytes(2, "little") + rest
    assert b"\n" not in line, line
    return line


# the commands' codes (see _Call.command)
_CONNECTED, _START, _MEDIA, _ECHO, _ECHO_ALL, _DTMF, _STOP, _UNKNOWN = range(8)
_SPEECH_STARTED, _SPEECH_STOPPED, _MODEL_AUDIO, _MODEL_DONE, _INTERRUPT, _WAIT = range(8, 14)
_SESSION_UPDATED, _TWILIO_CLOSED, _CONNECTION_LOST, _EARLY_TIMER, _RAW_PAYLOAD = range(14, 19)
_COMMANDS = 19


def seeds() -> dict[str, bytes]:
    """Twilio's messages in the shapes of its documentation (as the ``streamdouble`` package
    transcribes them: counters as strings), edge cases, and short calls."""
    media = twilio_media(3, 1, 0)
    messages: dict[str, Any] = {
        "msg-connected": twilio_connected(),
        "msg-start": twilio_start(),
        "msg-start-two-tracks-no-parameters": twilio_start(
            tracks=["inbound", "outbound"], customParameters={}
        ),
        "msg-start-other-format": twilio_start(mediaFormat=OTHER_FORMAT),
        "msg-start-sid-quotes-unicode": twilio_start(streamSid='MZ"\\\u00e9\U0001f600</'),
        "msg-start-sid-top-level-only": {
            **twilio_start(),
            "start": {k: v for k, v in twilio_start()["start"].items() if k != "streamSid"},
        },
        "msg-media": media,
        "msg-media-outbound": {**media, "media": {**media["media"], "track": "outbound"}},
        "msg-media-empty-payload": {**media, "media": {**media["media"], "payload": ""}},
        "msg-mark": twilio_mark(4, "item_A1:20:g1:m1"),
        "msg-dtmf": twilio_dtmf(5, "#"),
        "msg-stop": twilio_stop(6),
        "msg-unknown-event": {"event": "future", "streamSid": _SID, "future": {"x": [1, 2]}},
        # counters as JSON numbers, and counters that are not digit strings
        "msg-counters-numbers": {
            **media,
            "sequenceNumber": 3,
            "media": {**media["media"], "chunk": 1, "timestamp": 0},
        },
        "msg-counters-bad": {
            **media,
            "sequenceNumber": "-1",
            "media": {**media["media"], "chunk": "1.5", "timestamp": "\uff11\uff12"},
        },
        "msg-counters-unsafe": {
            **media,
            "sequenceNumber": "9007199254740992",
            "media": {**media["media"], "chunk": True, "timestamp": "00000000000000000001"},
        },
        "msg-format-as-strings": twilio_start(
            mediaFormat={"encoding": "audio/x-mulaw", "sampleRate": "8000", "channels": 1.0}
        ),
        # refused: missing or mistyped required fields
        "bad-media-base64": {**media, "media": {**media["media"], "payload": "not base64!"}},
        "bad-media-base64-padding": {**media, "media": {**media["media"], "payload": "AAAA===="}},
        "bad-media-payload-number": {**media, "media": {**media["media"], "payload": 7}},
        "bad-media-no-object": {"event": "media", "streamSid": _SID, "media": "AAAA"},
        "bad-start-no-sid": {"event": "start", "start": {"callSid": _CALL}},
        "bad-start-empty-sid": twilio_start(streamSid=""),
        "bad-mark-no-name": {"event": "mark", "streamSid": _SID, "mark": {}},
        "bad-dtmf-digit-number": {"event": "dtmf", "streamSid": _SID, "dtmf": {"digit": 5}},
        "bad-event-not-string": {"event": 1, "streamSid": _SID},
        "bad-no-event": {"streamSid": _SID, "media": media["media"]},
        "bad-array": [twilio_connected()],
    }
    corpus = {name: _json(message) for name, message in messages.items()}
    corpus.update(
        {
            "bad-not-json": b'{"event":"media",',
            "bad-empty": b"",
            "bad-not-utf8": b'{"event":"dtmf","dtmf":{"digit":"\xff"}}',
            # custom parameters near the bound: exactly the largest message, and one byte more
            "msg-start-at-size-bound": _start_of_size(MAX_TWILIO_MESSAGE_SIZE),
            "bad-start-over-size-bound": _start_of_size(MAX_TWILIO_MESSAGE_SIZE + 1),
            # found by this harness, fixed: a str holding a lone surrogate was measured with
            # str.encode() (UnicodeEncodeError), and nesting deeper than the interpreter's
            # recursion limit escaped as RecursionError
            "crash-str-lone-surrogate": b'{"event":"dtmf","dtmf":{"digit":"\xed\xa0\x80"}}',
            "crash-deep-nesting": b'{"event":"x","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        }
    )

    def call(*steps: bytes | dict[str, Any]) -> bytes:
        return b"\n".join(s if isinstance(s, bytes) else _json(s) for s in steps)

    def server(kind: str, **fields: Any) -> bytes:
        return b"@" + _json({"type": kind, "event_id": f"event_{kind}", **fields})

    corpus["call-short"] = call(  # a whole call: greeting, caller speaks, reply played
        twilio_connected(),
        twilio_start(),
        *(twilio_media(2 + i, 1 + i, 20 * i) for i in range(3)),
        _command(_MODEL_AUDIO, 160),
        _command(_MODEL_AUDIO, 320),
        _command(_MODEL_DONE),
        _command(_ECHO, 0),
        _command(_ECHO_ALL),
        _command(_SPEECH_STARTED, 500),
        twilio_media(5, 4, 60),
        _command(_SPEECH_STOPPED, 900),
        twilio_dtmf(6, "5"),
        twilio_stop(7),
    )
    corpus["call-gap-10s"] = call(  # lost audio: 10 s of silence, then a longer gap capped
        twilio_start(),
        twilio_media(2, 1, 0),
        twilio_media(3, 2, 10_020),
        twilio_media(4, 3, 30_040),
        twilio_media(5, 4, 30_000),  # backwards: no padding, inference starts again
        twilio_media(6, 5, 30_100),
        twilio_media(7, 6, 30_200),
    )
    corpus["call-barge-in"] = call(  # the caller interrupts: clear, late marks ignored
        twilio_start(),
        _command(_MODEL_AUDIO, 800),
        _command(_MODEL_AUDIO, 800),
        _command(_ECHO, 0),
        _command(_SPEECH_STARTED, 100),
        _command(_ECHO_ALL),
        _command(_MODEL_DONE),  # the interrupted response ends
        _command(_MODEL_AUDIO, 400),  # the next one plays
        _command(_MODEL_DONE),
        _command(_ECHO_ALL),
    )
    corpus["call-inactivity"] = call(  # media stops mid-speech: 1 s of silence, once
        twilio_start(),
        twilio_media(2, 1, 0),
        _command(_SPEECH_STARTED, 0),
        _command(_EARLY_TIMER),
        _command(_WAIT, 1_000),
        _command(_WAIT, 1_000),
        twilio_media(3, 2, 3_000),  # the gap after the inactivity padding is not padded
        twilio_media(4, 3, 4_000),
        _command(_SPEECH_STOPPED, 0),
        _command(_WAIT, 2_000),
    )
    corpus["call-commands"] = call(  # every command once, built from the input
        _command(_CONNECTED),
        _command(_START, 0, b"fuzz"),
        _command(_MEDIA, 0),
        _command(_MEDIA, 1 | (50 << 6)),  # a gap of 1 s
        _command(_MEDIA, 2 | 4),  # backwards, counters as numbers
        _command(_MEDIA, 8 | 16),  # no timestamp, outbound track
        _command(_MEDIA, 32, b"\x00\x01\x02"),  # no track, 3 bytes
        _command(_SPEECH_STARTED, 1),
        _command(_MODEL_AUDIO, 1),
        _command(_ECHO, 0),
        _command(_ECHO, 0x8000, b"item_unknown:0:g9:m9"),
        _command(_MODEL_DONE),
        _command(_DTMF, 3),
        _command(_UNKNOWN, 0, b"media_v2"),
        _command(_SESSION_UPDATED, 1 | 8),  # input pcm, output pcma: warnings
        _command(_INTERRUPT, 1),
        _command(_RAW_PAYLOAD, 0, b"@@@"),
        _command(_EARLY_TIMER),
        _command(_WAIT, 800),
        _command(_STOP),
        _command(_START, 1, b"other-format"),
        _command(_MEDIA, 1 | (100 << 6)),
        _command(_TWILIO_CLOSED),
        _command(_START, 2 | 4),  # no parameters, streamSid only at the top level
        _command(_CONNECTION_LOST),
        _command(_MEDIA, 0),  # dropped: the session is closed
        _command(_MODEL_AUDIO, 5),
    )
    corpus["call-restart"] = call(  # a second stream: marks of the first are unknown
        twilio_start(),
        _command(_MODEL_AUDIO, 160),
        twilio_stop(3),
        _command(_ECHO_ALL),
        twilio_start(4, streamSid="MZsecond"),
        _command(_MODEL_AUDIO, 160),
        _command(_ECHO_ALL),
        _command(_MODEL_DONE),
        _command(_ECHO_ALL),
    )
    corpus["call-raw-lines"] = call(  # raw server and Twilio lines, valid or not
        twilio_start(),
        server("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U1"),
        server(
            "response.output_audio.delta",
            response_id="resp_x",
            item_id="item_X",
            output_index=0,
            content_index=0,
            delta="f39/fw==",
        ),
        server(
            "response.output_audio.done",
            response_id="resp_x",
            item_id="item_X",
            output_index=0,
            content_index=0,
        ),
        b"@not json",
        b'{"event":"mark","mark":{"name":"done:item_X:g1:m2"}}',
        b"not json",
        b'{"event":"media","media":{"payload":"f39/fw==","timestamp":"40"}}',
        _json(twilio_mark(9, "item_X:2:g1:m1")),
    )
    # found by this harness, fixed: the bridge sized a delta of padding only ("==") at -2
    # bytes, and the echo of its mark reported -0.25 ms played (LocalProtocolError); such
    # audio is now refused with a warning
    corpus["crash-negative-delta-size"] = call(
        twilio_start(),
        server(
            "response.output_audio.delta",
            response_id="resp_x",
            item_id="item_X",
            output_index=0,
            content_index=0,
            delta="==",
        ),
        _command(_ECHO_ALL),
    )
    return dict(sorted(corpus.items()))


# ----------------------------------------------------------------------------- running --


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_twilio")


def main(argv: list[str]) -> int:
    return harness_main(argv, "twilio", TestOneInput, atheris, seeds)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
