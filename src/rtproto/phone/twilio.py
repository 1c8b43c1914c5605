"""A phone call from Twilio Media Streams bridged to a Realtime session, with no I/O.

:class:`TwilioBridge` sits between the Twilio WebSocket (which Twilio opens to the
application) and a :class:`~rtproto.session.ClientSession` in the ``phone`` profile (G.711
mu-law both ways, so the call's audio passes through untouched). It does what the JS SDK's
``TwilioRealtimeTransportLayer`` does:

- the caller's ``media`` goes to the session as ``input_audio_buffer.append`` (only while the
  session is connected), with silence for gaps in Twilio's timestamps and after the caller
  went quiet mid-speech (:mod:`rtproto.phone.padding`);
- the model's audio goes to Twilio as ``media``, each chunk followed by a ``mark``, each item
  closed by a ``done`` mark (:mod:`rtproto.phone.marks`); the marks Twilio echoes tell the
  session how much was played (:meth:`ClientSession.playback_progress`);
- an interruption (the server heard the caller, or ``session.interrupt(now)``) sends Twilio
  ``clear`` and ignores the marks of the audio cleared; the session cuts each item at its
  acknowledged position plus ``phone_playback_lead_ms`` and drops the interrupted
  response's late audio;
- every Twilio message is an event too (:class:`TwilioMessageReceived`: ``start`` with the
  call's ids and custom parameters, ``dtmf``, ``stop``); a new ``start`` forgets what an
  earlier stream played (:meth:`ClientSession.forget_playback`); nothing goes to Twilio
  before ``start`` or after ``stop``, nor model audio that is not base64 (a warning).

The loop (the application owns both sockets and the session)::

    bridge.receive_twilio(text, now)          # a message from Twilio
    session.receive(message, now)             # a message from the Realtime server
    for event in session.events():            # after every call:
        bridge.handle_session_event(event)    #   every session event, in order
        ...                                   #   the application's own handling
    for event in bridge.events(): ...         # Twilio messages (start, dtmf, stop), warnings
    send_to_twilio(bridge.twilio_messages_to_send())
    send_to_realtime(session.messages_to_send())
    # timers: bridge.get_timer() / bridge.handle_timer(now), and the session's own
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import events as E
from .. import models as M
from .._b64 import encode_base64
from ..errors import LocalProtocolError, RemoteProtocolError
from ..session import (
    AudioChunk,
    AudioDone,
    AudioInterrupted,
    ClientSession,
    ConnectionChange,
    ConnectionStatus,
    ProtocolWarning,
    SessionState,
)
from ..session.events import TransportEvent
from ..session.options import Profile
from ..wire.twilio import (
    MAX_TWILIO_MESSAGE_SIZE,
    StreamMark,
    StreamMedia,
    StreamStart,
    StreamStop,
    TwilioProtocolError,
    clear_message,
    mark_message,
    media_message,
    parse_twilio_message,
)
from .marks import Acknowledged, MarkLedger
from .padding import BYTES_PER_MS, SILENCE_BYTE, InputPadding

__all__ = ["TwilioBridge", "TwilioBridgeOptions", "TwilioMessageReceived"]

_MULAW = "audio/pcmu"


class TwilioMessageReceived(TransportEvent, frozen=True, kw_only=True, gc=False):
    """A message from Twilio (the JS transport's ``twilio_message``), typed."""

    name: ClassVar[str] = "twilio_message"
    message: Any  # a rtproto.wire.twilio.TwilioMessage


@dataclass(frozen=True)
class TwilioBridgeOptions:
    """How a :class:`TwilioBridge` pads, and the bounds of what it holds."""

    #: Seconds without caller media, while the server hears speech, before 1 s of silence
    #: is sent so that its turn detection can hear the speech end (``None``: never).
    input_inactivity_timeout: float | None = 0.75
    #: Largest Twilio message parsed (bytes).
    max_message_size: int = MAX_TWILIO_MESSAGE_SIZE
    #: Marks sent to Twilio and not yet echoed that are remembered.
    max_pending_marks: int = 4096
    #: Messages for Twilio waiting for :meth:`TwilioBridge.twilio_messages_to_send`.
    max_pending_messages: int = 10_000
    #: Events waiting for :meth:`TwilioBridge.next_event`.
    max_pending_events: int = 10_000
    #: Send the model's audio to Twilio in frames of this many milliseconds (20: 160 bytes
    #: of mu-law), each with its mark, and the rest when the item's audio ends; ``None``:
    #: each audio delta as it arrives, as the JS transport does. Fixed frames are the fix
    #: callers report for clicks at word starts with small deltas (openai-agents-python
    #: #1906; openai-agents-js #1184).
    outbound_frame_ms: int | None = None

    def __post_init__(self) -> None:
        timeout = self.input_inactivity_timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < 2**31 / 1000
        ):
            raise LocalProtocolError(
                "TwilioBridgeOptions.input_inactivity_timeout must be None or a number of"
                f" seconds > 0 (at most 2147483), not {timeout!r}"
            )
        frame = self.outbound_frame_ms
        if frame is not None and (
            isinstance(frame, bool) or not isinstance(frame, int) or not 1 <= frame <= 1000
        ):
            raise LocalProtocolError(
                "TwilioBridgeOptions.outbound_frame_ms must be None or whole milliseconds from"
                f" 1 to 1000, not {frame!r}"
            )
        for name in (
            "max_message_size",
            "max_pending_marks",
            "max_pending_messages",
            "max_pending_events",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LocalProtocolError(
                    f"TwilioBridgeOptions.{name} must be an integer >= 1, not {value!r}"
                )


class TwilioBridge:
    """Bridges a Twilio media stream and a ``phone``-profile :class:`ClientSession`.

    Raises:
        LocalProtocolError: the session is not in the ``phone`` profile, or its configuration
            names an audio format other than G.711 mu-law (Twilio carries only that).
    """

    def __init__(self, session: ClientSession, options: TwilioBridgeOptions | None = None):
        if session.options.profile is not Profile.PHONE:
            raise LocalProtocolError(
                f"a Twilio bridge needs a session in the phone profile, not"
                f" {session.options.profile.value!r}: SessionOptions(profile='phone')"
            )
        for path, fmt in _formats(session.config):
            if fmt.type != _MULAW:
                raise LocalProtocolError(
                    f"session.{path} is {fmt.type!r}: Twilio carries G.711 mu-law only; leave"
                    f" it out (the phone profile defaults to it) or set {_MULAW!r}"
                )
        self.options = options = options or TwilioBridgeOptions()
        self.session = session
        #: The stream's ``start`` message (None before it, and after ``stop``).
        self.start: StreamStart | None = None
        #: The stream ended: ``stop`` came, or the WebSocket closed.
        self.ended = False
        #: Caller media not passed on because the session was not connected.
        self.dropped_media = 0
        self._marks = MarkLedger(options.max_pending_marks)
        self._padding = InputPadding(options.input_inactivity_timeout)
        self._outbox: list[str] = []
        self._events: deque[TransportEvent] = deque()
        frame_ms = options.outbound_frame_ms
        self._frame = None if frame_ms is None else frame_ms * BYTES_PER_MS
        #: Model audio short of a frame, and whose it is (response, item, content index).
        self._held = bytearray()
        self._held_for: tuple[str, str, int] | None = None

    @property
    def stream_sid(self) -> str | None:
        """The stream's id, from its ``start``."""
        return self.start.stream_sid if self.start is not None else None

    # ------------------------------------------------------------------- from Twilio --

    def receive_twilio(self, message: str | bytes | bytearray | memoryview, now: float) -> None:
        """Handle one text message from the Twilio WebSocket (``now``: the session's clock).

        A message that is not a Twilio message is dropped with a
        :class:`~rtproto.session.ProtocolWarning` saying why; the stream goes on.

        Raises:
            LocalProtocolError: ``max_pending_events`` events are waiting to be taken.
        """
        self._require_room()
        try:
            parsed = parse_twilio_message(message, max_size=self.options.max_message_size)
        except TwilioProtocolError as exc:
            self._events.append(ProtocolWarning(message=f"dropped a Twilio message: {exc}"))
            return
        self._events.append(TwilioMessageReceived(message=parsed))
        if isinstance(parsed, StreamMedia):
            self._media(parsed, now)
        elif isinstance(parsed, StreamMark):
            self._mark(parsed.name)
        elif isinstance(parsed, StreamStart):
            self.start = parsed
            self.ended = False
            self._padding.reset(enabled=parsed.media_format.is_mulaw_8k_mono)
            self._marks.new_generation(cleared=False)
            self._drop_held()  # (an earlier stream's audio is not this one's)
            self.session.forget_playback()  # what an earlier stream played is not playing
        elif isinstance(parsed, StreamStop):
            self._end()

    def twilio_closed(self) -> None:
        """The Twilio WebSocket closed: the call is over (then close the Realtime side)."""
        self._end()

    # ----------------------------------------------------------------- from the session --

    def handle_session_event(self, event: object) -> None:
        """Pass every event the session yields through here, in order: audio goes to
        Twilio with its marks, an interruption clears Twilio's buffer, speech starts and
        stops arm the inactivity padding."""
        kind = type(event)
        if kind is AudioChunk:
            self._play(event)  # type: ignore[arg-type]
        elif kind is AudioDone:
            done: AudioDone = event  # type: ignore[assignment]
            if self._held_for == (done.response_id, done.item_id, done.content_index):
                self._flush_held()
            name = self._marks.done(done.response_id, done.item_id, done.content_index)
            if name is not None and self.start is not None:
                self._send(mark_message(self.start.stream_sid, name))
        elif kind is AudioInterrupted:
            self._drop_held()
            self._marks.new_generation(cleared=True)
            if self.start is not None:
                self._send(clear_message(self.start.stream_sid))
        elif kind is E.InputAudioBufferSpeechStarted:
            self._padding.speech_started()
        elif kind is E.InputAudioBufferSpeechStopped:
            self._padding.speech_stopped()
        elif kind is E.SessionUpdated:  # (session.created shows the server's defaults)
            self._check_output(event.session)  # type: ignore[attr-defined]
        elif kind is ConnectionChange and (
            event.status is ConnectionStatus.DISCONNECTED  # type: ignore[attr-defined]
        ):
            self._padding.reset()  # (no silence is due to a session that is over)

    # ------------------------------------------------------------------------- timers --

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` is due (the inactivity padding), if it is."""
        return self._padding.deadline()

    def handle_timer(self, now: float) -> None:
        """Send the silence that is due, if any."""
        connected = self.session.state is SessionState.CONNECTED
        self._send_silence(self._padding.fire(now, connected=connected))

    # ------------------------------------------------------------------------- output --

    def twilio_messages_to_send(self) -> list[str]:
        """The messages to send to Twilio, in order (then empty)."""
        out, self._outbox = self._outbox, []
        return out

    def next_event(self) -> TransportEvent | None:
        """The next Twilio message received (:class:`TwilioMessageReceived`) or warning."""
        return self._events.popleft() if self._events else None

    def events(self) -> Iterator[TransportEvent]:
        """Every event waiting, in order."""
        events, self._events = self._events, deque()
        return iter(events)

    # ---------------------------------------------------------------------- internals --

    def _media(self, media: StreamMedia, now: float) -> None:
        if media.track not in (None, "inbound"):
            return  # a fork's outbound track is the call's other side, not the caller
        if self.session.state is not SessionState.CONNECTED:
            self.dropped_media += 1
            return
        audio = media.audio
        self._send_silence(self._padding.media(media.timestamp, len(audio), now))
        self.session.send_audio(audio)

    def _send_silence(self, ms: int) -> None:
        if ms:
            self.session.send_audio(bytes([SILENCE_BYTE]) * (ms * BYTES_PER_MS))

    def _mark(self, name: str) -> None:
        acknowledged = self._marks.acknowledge(name)
        if isinstance(acknowledged, Acknowledged):
            item = acknowledged.item
            self.session.playback_progress(item.item_id, acknowledged.played_ms)

    def _play(self, chunk: AudioChunk) -> None:
        if self.start is None:
            return  # no stream to play it on (yet, or any more)
        try:
            size = len(chunk.audio)  # (checked, and decoded once for the application too)
        except RemoteProtocolError:  # (Twilio would play noise)
            self._events.append(
                ProtocolWarning(
                    message=f"audio of item {chunk.item_id!r} is not base64: not played",
                    event=chunk.event,
                )
            )
            return
        owner = (chunk.response_id, chunk.item_id, chunk.content_index)
        frame = self._frame
        if frame is None:
            self._send_audio(owner, chunk.event.delta, size)
            return
        if self._held_for != owner:
            self._flush_held()  # another item's audio: the last one's rest plays first
            self._held_for = owner
        held = self._held
        held += chunk.audio
        while len(held) >= frame:
            self._send_audio(owner, encode_base64(bytes(held[:frame])), frame)
            del held[:frame]

    def _send_audio(self, owner: tuple[str, str, int], payload: str, size: int) -> None:
        """One ``media`` message and its mark."""
        assert self.start is not None
        name = self._marks.audio_sent(*owner, size / BYTES_PER_MS)
        self._send(media_message(self.start.stream_sid, payload))
        self._send(mark_message(self.start.stream_sid, name))

    def _flush_held(self) -> None:
        """Send the audio held short of a frame (its item's audio ended, or another's began)."""
        owner, held = self._held_for, self._held
        if owner is not None and held:  # (a stream that ended holds nothing: see _end)
            self._send_audio(owner, encode_base64(bytes(held)), len(held))
        self._drop_held()

    def _drop_held(self) -> None:
        self._held.clear()
        self._held_for = None

    def _end(self) -> None:
        self._drop_held()
        self.start = None
        self.ended = True
        self._padding.reset(enabled=False)
        self._marks.new_generation(cleared=True)

    def _check_output(self, config: object) -> None:
        if not isinstance(config, M.RealtimeSession):
            return
        for path, fmt in _formats(config):
            if fmt.type != _MULAW:
                self._events.append(
                    ProtocolWarning(
                        message=f"the server's session.{path} is {fmt.type!r}: Twilio"
                        f" carries G.711 mu-law only ({_MULAW!r})"
                    )
                )

    def _send(self, text: str) -> None:
        if len(self._outbox) >= self.options.max_pending_messages:
            raise LocalProtocolError(
                f"{len(self._outbox)} messages for Twilio are waiting: send what"
                " twilio_messages_to_send() returns after every call"
            )
        self._outbox.append(text)

    def _require_room(self) -> None:
        if len(self._events) >= self.options.max_pending_events:
            raise LocalProtocolError(
                f"{len(self._events)} bridge events are waiting: take them with next_event()"
                " or events() after every call"
            )


def _formats(config: M.RealtimeSession) -> list[tuple[str, M.AudioFormat]]:
    """The audio formats a session configuration names, with their paths."""
    audio = config.audio
    if not isinstance(audio, M.AudioConfig):
        return []
    found: list[tuple[str, M.AudioFormat]] = []
    for side, block in (("input", audio.input), ("output", audio.output)):
        fmt = getattr(block, "format", None)
        if isinstance(fmt, M.AudioFormat):
            found.append((f"audio.{side}.format", fmt))
    return found
