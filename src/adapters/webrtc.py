"""The WebRTC driver: ``async with connect_webrtc(...) as conn`` (needs ``aiortc``; asyncio).

One loop around the pure pieces, as the JS SDK's WebRTC transport does it
(spec/transport-behaviour.md section 4):

1. an aiortc peer connection with the ``oai-events`` data channel and one outgoing audio
   track fed by :meth:`WebRTCConnection.send_audio` (PCM16 24 kHz mono, resampled to 48 kHz,
   paced in 20 ms frames; silence when nothing is queued);
2. the SDP offer posted to ``url`` (``POST /v1/realtime/calls``) with
   :class:`~rtproto.wire.signalling.CallExchange`, h11 over ``anyio.connect_tcp`` (TLS for
   https); the answer applied; ``call_id`` from its ``Location``;
3. a :class:`~rtproto.session.ClientSession` with ``profile=WEBRTC`` over the data channel:
   connect completes on ``session.updated`` (or ``session_update_timeout``), ``interrupt``
   sends ``output_audio_buffer.clear``, messages are limited to 64 KiB;
4. the model's audio track, decoded, downmixed to mono and resampled to 24 kHz, surfaces as
   :class:`~rtproto.session.AudioChunk` events between ``output_audio_buffer.started`` and
   ``stopped``/``cleared``, so applications see the same events as over WebSocket. The media
   path lags the data channel (the jitter buffer, packets in flight: about 100 ms), so a
   response's audio starts at its first sound after ``started`` (silent frames skipped for
   at most :data:`AUDIO_LEAD_SECONDS`) and goes on after ``stopped`` until the track falls
   silent (at most :data:`AUDIO_TAIL_SECONDS`); the ``stopped`` event, and the events after
   it, wait for that tail. ``cleared`` (an interruption) cuts at once;
5. peer connection ``failed``/``closed`` ends the session at once; ``disconnected`` only after
   ``disconnected_grace`` seconds (5 s) without recovery;
6. a caller's own ``audio_track`` is sent through a :class:`~._media.BorrowedTrack`: closing
   the connection (or a failed connect) never stops it.

aiortc is asyncio-only: this driver runs on asyncio (not Trio).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtproto import events as E
from rtproto import models as M
from rtproto.audio import encode_base64
from rtproto.errors import ConnectionClosed, LocalProtocolError
from rtproto.session import (
    AudioChunk,
    ClientSession,
    Profile,
    SessionOptions,
    SessionState,
)
from rtproto.session.core import SessionEvent
from rtproto.wire.signalling import DEFAULT_CALLS_URL, CallAnswer, CallExchange, SignallingError

from ._core import ConnectError, ConnectTimeout
from ._http import round_trip
from ._media import BorrowedTrack, PcmTrack, frame_to_pcm24k, peak

__all__ = ["SignallingError", "WebRTCConnection", "connect_webrtc", "post_offer"]

#: Audio queued by ``send_audio`` before it waits (seconds of PCM16 24 kHz).
MAX_QUEUED_AUDIO_SECONDS = 10.0
#: After ``output_audio_buffer.started``, silent frames (what the track played before the
#: response's audio reached it) are skipped until the first sound, at most this long (s).
AUDIO_LEAD_SECONDS = 0.25
#: After ``output_audio_buffer.stopped``, the response's audio still on its way is delivered
#: until the track falls silent, at most this long (s); ``stopped`` waits for it.
AUDIO_TAIL_SECONDS = 0.25
#: A decoded frame whose peak sample is below this is silence (about -50 dBFS).
SILENCE_PEAK = 100


async def post_offer(
    exchange: CallExchange,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 30.0,
) -> CallAnswer:
    """Send a call request and read its answer (h11 over ``anyio.connect_tcp``).

    Raises:
        SignallingError: the server refused (status and parsed error) or answered garbage.
        ConnectError / ConnectTimeout: the TCP or TLS connection failed or took too long.
    """
    return await round_trip(
        exchange, ssl_context=ssl_context, timeout=timeout, what="the SDP offer"
    )


class WebRTCConnection:
    """A Realtime session over WebRTC (from :func:`connect_webrtc`).

    Iterate it (``async for event in conn``) for server events, transport events and audio;
    call its commands. ``call_id`` is the call's id (for the call control endpoints).
    """

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        model: str | None,
        session: Mapping[str, Any] | M.RealtimeSession | None,
        ice_servers: Sequence[str | Mapping[str, Any]],
        session_update_timeout: float,
        connect_timeout: float,
        disconnected_grace: float,
        ssl_context: ssl.SSLContext | None,
        audio_track: Any = None,
        on_remote_track: Callable[[Any], None] | None = None,
    ) -> None:
        self._url = url
        self._api_key = api_key
        self._model = model
        self._connect_timeout = connect_timeout
        self._ssl_context = ssl_context
        self._session = ClientSession(
            SessionOptions(
                model=model,
                session=session,
                profile=Profile.WEBRTC,
                session_update_timeout=session_update_timeout,
                disconnect_grace=disconnected_grace,
            )
        )
        servers = [
            RTCIceServer(urls=s) if isinstance(s, str) else RTCIceServer(**dict(s))
            for s in ice_servers
        ]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.channel: Any = None
        #: The call id (``rtc_...``) from the answer's ``Location``; ``None`` after close.
        self.call_id: str | None = None
        self._events: deque[SessionEvent] = deque()
        self._readable = asyncio.Event()
        self._timer_changed = asyncio.Event()
        self._mic: deque[bytes] = deque()
        self._mic_bytes = 0
        self._own_track = audio_track is not None
        # the caller's track is borrowed, never stopped (aiortc stops its senders' tracks)
        self._track: Any = (
            BorrowedTrack(audio_track) if audio_track is not None else PcmTrack(self._pull_mic)
        )
        self._on_remote_track = on_remote_track
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended = False
        self._end_reason = ""
        self._open_or_ended = asyncio.Event()
        # what the model's audio belongs to (from the data channel's events)
        self._playing: str | None = None
        self._part: tuple[str, str, int, int] | None = None
        self._reading_audio = False  # AudioChunk events are made from the model's track
        self._lead_until: float | None = None  # skipping silence until the first sound
        self._tail_until: float | None = None  # ``stopped`` came; the tail still plays
        self._held: list[SessionEvent] = []  # ``stopped`` and what followed it, meanwhile

    # ------------------------------------------------------------------------ events --

    def __aiter__(self) -> AsyncIterator[SessionEvent]:
        return self

    async def __anext__(self) -> SessionEvent:
        event = await self.next_event()
        if event is None:
            raise StopAsyncIteration
        return event

    async def next_event(self, timeout: float | None = None) -> SessionEvent | None:
        """The next event; ``None`` once the connection is over and every event was taken.

        Raises:
            TimeoutError: no event within ``timeout`` seconds.
        """
        with anyio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            while True:
                if self._events:
                    return self._events.popleft()
                if self._ended:
                    return None
                self._readable.clear()
                await self._readable.wait()

    @property
    def session(self) -> ClientSession:
        """The session (history, usage, configuration): read it, do not call its commands."""
        return self._session

    # ---------------------------------------------------------------------- commands --

    async def send_audio(self, pcm24k: bytes | bytearray | memoryview) -> None:
        """Queue PCM16 24 kHz mono audio for the outgoing track (waits while 10 s are queued)."""
        self._require_open("send audio")
        if self._own_track:
            raise LocalProtocolError(
                "this connection sends your own audio_track; send_audio is not available",
                event_type="input_audio_buffer.append",
            )
        data = bytes(pcm24k)
        limit = int(MAX_QUEUED_AUDIO_SECONDS * 48000)
        while self._mic_bytes > limit and not self._ended:
            await asyncio.sleep(0.02)
        for start in range(0, len(data), 9600):  # 200 ms pieces
            piece = data[start : start + 9600]
            self._mic.append(piece)
            self._mic_bytes += len(piece)

    @property
    def muted(self) -> bool:
        """Whether the outgoing track sends silence (see :meth:`mute`)."""
        return bool(self._track.muted)

    def mute(self, muted: bool = True) -> None:
        """Send silence in place of the outgoing audio, or stop doing so: what the JS
        transport's ``mute()`` does by disabling the sender's track. Audio sent while muted
        (by :meth:`send_audio` or your own ``audio_track``) still moves in real time and is
        not heard, as with a muted microphone."""
        self._track.muted = bool(muted)

    def clear_audio_queue(self) -> None:
        """Drop the audio queued by :meth:`send_audio` that was not sent yet."""
        self._mic.clear()
        self._mic_bytes = 0

    async def send_message(
        self, message: Any, *, trigger_response: bool = True, previous_item_id: str | None = None
    ) -> None:
        self._command(
            "send_message",
            message,
            trigger_response=trigger_response,
            previous_item_id=previous_item_id,
        )

    async def add_image(
        self,
        image: str | bytes | bytearray | memoryview,
        *,
        detail: str | None = None,
        trigger_response: bool = True,
    ) -> None:
        """Add a user message holding one image (a URL, or PNG/JPEG/GIF/WebP bytes; the data
        channel carries messages up to 64 KiB)."""
        self._command("add_image", image, detail=detail, trigger_response=trigger_response)

    async def send_function_call_output(
        self, call_id: str, output: str, *, start_response: bool = True
    ) -> None:
        self._command("send_function_call_output", call_id, output, start_response=start_response)

    async def send_mcp_response(
        self, request: M.McpApprovalRequestItem | str, approved: bool, *, reason: str | None = None
    ) -> None:
        """Answer a hosted MCP tool's approval request (the request item, or its id)."""
        self._command("send_mcp_response", request, approved, reason=reason)

    async def create_response(self, options: Any = None) -> None:
        self._command("create_response", options)

    async def interrupt(self, *, cancel: bool = True) -> None:
        """Cancel the active response and clear the server's output buffer."""
        self._command("interrupt", self._now(), cancel=cancel)

    async def update_session(self, config: Mapping[str, Any] | M.RealtimeSession) -> None:
        self._command("update_session", config)

    async def send_event(self, event: Mapping[str, Any] | Any) -> None:
        self._command("send_event", event)

    async def close(self) -> None:
        """Close the data channel and the peer connection; report disconnected."""
        if not self._ended:
            self._session.close()
        await self._end("closed by the client")

    # --------------------------------------------------------------------- internals --

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _require_open(self, what: str) -> None:
        if self._ended:
            raise ConnectionClosed(f"cannot {what}: the connection is closed", state="CLOSED")

    def _command(self, name: str, *args: Any, **kwargs: Any) -> None:
        self._require_open(name)
        getattr(self._session, name)(*args, **kwargs)
        self._flush()

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _pull_mic(self) -> bytes | None:
        if not self._mic:
            return None
        chunk = self._mic.popleft()
        self._mic_bytes -= len(chunk)
        return chunk

    def _flush(self) -> None:
        session = self._session
        channel = self.channel
        for text in session.messages_to_send():
            if channel is None or channel.readyState != "open":
                raise ConnectionClosed("the data channel is not open", state="CLOSED")
            channel.send(text)
        for event in session.events():
            self._deliver(event)
        self._readable.set()
        self._timer_changed.set()

    def _deliver(self, event: SessionEvent) -> None:
        """Queue a session event for the application, after the audio it comes after."""
        if self._tail_until is not None:
            if isinstance(event, (E.OutputAudioBufferStarted, E.OutputAudioBufferCleared)):
                self._end_tail()  # another response plays, or an interruption: cut now
            else:
                self._held.append(event)
                return
        self._track_audio_context(event)
        (self._held if self._tail_until is not None else self._events).append(event)

    def _track_audio_context(self, event: SessionEvent) -> None:
        if isinstance(event, E.ResponseContentPartAdded):
            self._part = (event.response_id, event.item_id, event.output_index, event.content_index)
        elif isinstance(event, E.OutputAudioBufferStarted):
            self._playing = event.response_id
            self._lead_until = self._now() + AUDIO_LEAD_SECONDS if self._reading_audio else None
        elif isinstance(
            event, (E.OutputAudioBufferStopped, E.OutputAudioBufferCleared)
        ) and event.response_id in (self._playing, None):
            if (
                isinstance(event, E.OutputAudioBufferStopped)
                and self._playing is not None
                and self._reading_audio
            ):
                self._tail_until = self._now() + AUDIO_TAIL_SECONDS  # this event is held
                self._timer_changed.set()
            else:
                self._playing = None
                self._lead_until = None

    def _end_tail(self) -> None:
        """The response's tail is over: deliver ``stopped`` and the events held after it."""
        if self._tail_until is None:
            return
        self._tail_until = None
        self._playing = None
        self._lead_until = None
        held, self._held = self._held, []
        if held:
            self._events.append(held[0])  # the stopped event (already tracked)
        for event in held[1:]:
            self._deliver(event)
        self._readable.set()

    def _admit(self, pcm: bytes) -> bool:
        """Whether a decoded frame belongs to the response playing (``_playing``)."""
        now = self._now()
        tail = self._tail_until
        if tail is not None and now >= tail:
            self._end_tail()
            return False
        silent = peak(pcm) < SILENCE_PEAK
        lead = self._lead_until
        if lead is not None:  # nothing heard since started: the response's audio is late
            if silent and now < lead:
                return False
            self._lead_until = None
            return True
        if tail is not None and silent:  # the tail has played out
            self._end_tail()
            return False
        return True

    def _on_message(self, message: str | bytes) -> None:
        if self._ended or self._session.state is SessionState.IDLE:
            return
        try:
            self._session.receive(message, self._now())
        except Exception as exc:  # a protocol error ends the connection
            self._spawn(self._end(f"protocol error: {exc}"))
            return
        self._flush()

    def _on_open(self) -> None:
        self._open_or_ended.set()

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self._spawn(self._end(f"peer connection {state}"))
            return
        if state == "connected":
            self._session.connection_recovered(self._now())
        elif state == "disconnected":  # the session ends it unless it recovers in time
            self._session.connection_degraded(self._now())
        self._timer_changed.set()

    def _remote_track(self, track: Any) -> None:
        if track.kind != "audio":
            return
        if self._on_remote_track is not None:
            self._on_remote_track(track)  # the application plays it: no AudioChunk events
        elif not self._reading_audio:
            self._reading_audio = True
            self._spawn(self._read_audio(track))

    async def _read_audio(self, track: Any) -> None:
        convert = frame_to_pcm24k()
        try:
            while not self._ended:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                pcm = convert(frame)
                if pcm and self._playing is not None and self._admit(pcm):
                    self._audio_chunk(pcm)
        finally:
            self._reading_audio = False
            self._end_tail()

    def _audio_chunk(self, pcm: bytes) -> None:
        response_id = self._playing
        if response_id is None:
            return
        part = self._part
        if part is not None and part[0] == response_id:
            _, item_id, output_index, content_index = part
        else:
            item_id, output_index, content_index = "", 0, 0
        delta = E.ResponseOutputAudioDelta(
            event_id="rtproto_webrtc_audio",
            response_id=response_id,
            item_id=item_id,
            output_index=output_index,
            content_index=content_index,
            delta=encode_base64(pcm),
        )
        self._events.append(AudioChunk(response_id, item_id, content_index, delta))
        self._readable.set()

    async def _timer_loop(self) -> None:
        while not self._ended:
            deadline = self._session.get_timer()
            tail = self._tail_until
            self._timer_changed.clear()
            now = self._now()
            if tail is not None and tail <= now:  # no frame came to end it
                self._end_tail()
                continue
            if deadline is not None and deadline <= now:
                self._session.handle_timer(now)
                if self._session.state is SessionState.CLOSED:  # the grace period ran out
                    await self._end("peer connection disconnected")
                    return
                self._flush()
                continue
            due = [t for t in (deadline, tail) if t is not None]
            wait = min(due) - now if due else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._timer_changed.wait(), wait)

    async def _open(self) -> None:
        pc = self.pc
        channel = pc.createDataChannel("oai-events")
        self.channel = channel
        channel.on("open", self._on_open)
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._spawn(self._end("data channel closed")))
        pc.addTrack(self._track)
        pc.on("track", self._remote_track)
        pc.on("connectionstatechange", self._on_state)
        await pc.setLocalDescription(await pc.createOffer())
        exchange = CallExchange(
            pc.localDescription.sdp, api_key=self._api_key, url=self._url, model=self._model
        )
        answer = await post_offer(
            exchange, ssl_context=self._ssl_context, timeout=self._connect_timeout
        )
        self.call_id = answer.call_id
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        try:
            with anyio.fail_after(self._connect_timeout):
                await self._open_or_ended.wait()
        except TimeoutError:
            raise ConnectTimeout(
                f"the data channel did not open within {self._connect_timeout} s"
            ) from None
        if self._ended:  # the peer connection failed or closed first
            raise ConnectError(f"the connection ended before it was ready: {self._end_reason}")
        self._session.connection_made(self._now())
        self._flush()
        self._spawn(self._timer_loop())
        while self._session.state is SessionState.CONNECTING and not self._ended:
            self._readable.clear()
            await self._readable.wait()
        if self._ended:
            raise ConnectError(f"the connection ended before it was ready: {self._end_reason}")

    async def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._end_tail()  # the audio held back goes first
        self._ended = True
        self._end_reason = reason
        self._open_or_ended.set()
        self._session.connection_lost(reason, self._now())
        for event in self._session.events():
            self._events.append(event)
        self.call_id = None
        self._readable.set()
        self._timer_changed.set()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        # each step on its own: one failing must not skip the next (pc.close() above all)
        with contextlib.suppress(Exception):
            if self.channel is not None:
                self.channel.close()
        with contextlib.suppress(Exception):
            # ours: the send_audio track, or the BorrowedTrack around the caller's track
            # (the caller's own track stays live: never stop caller-owned media)
            self._track.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()


@asynccontextmanager
async def connect_webrtc(
    url: str = DEFAULT_CALLS_URL,
    *,
    api_key: str,
    model: str | None = None,
    session: Mapping[str, Any] | M.RealtimeSession | None = None,
    ice_servers: Sequence[str | Mapping[str, Any]] = (),
    session_update_timeout: float = 5.0,
    connect_timeout: float = 30.0,
    disconnected_grace: float = 5.0,
    ssl_context: ssl.SSLContext | None = None,
    audio_track: Any = None,
    on_remote_track: Callable[[Any], None] | None = None,
) -> AsyncIterator[WebRTCConnection]:
    """Open a Realtime session over WebRTC; close it when the block ends.

    Args:
        url: the calls endpoint (``https://api.openai.com/v1/realtime/calls``).
        api_key: an API key or an ephemeral ``ek_...`` key.
        model: sent as ``?model=`` and in the initial ``session.update``.
        session: the initial session configuration (sent over the data channel).
        ice_servers: STUN/TURN URLs, or ``RTCIceServer`` keyword mappings; none by default.
        session_update_timeout: seconds to wait for ``session.updated`` before connected.
        connect_timeout: seconds for the SDP exchange and for the data channel to open.
        disconnected_grace: seconds a ``disconnected`` peer may recover before closing.
        ssl_context: for https; default ``ssl.create_default_context()``.
        audio_track: your own outgoing aiortc audio track (a microphone, a file player);
            ``send_audio`` is then refused. It stays yours: closing the connection (or a
            failed connect) does not stop it. Default: a track fed by ``send_audio``.
        on_remote_track: take the model's audio track yourself (play it, record it); no
            ``AudioChunk`` events are made then. Called once with the aiortc track.

    Raises:
        SignallingError: the calls endpoint refused (status and the parsed error).
        ConnectError / ConnectTimeout: the connection could not be made in time.
    """
    conn = WebRTCConnection(
        url=url,
        api_key=api_key,
        model=model,
        session=session,
        ice_servers=ice_servers,
        session_update_timeout=session_update_timeout,
        connect_timeout=connect_timeout,
        disconnected_grace=disconnected_grace,
        ssl_context=ssl_context,
        audio_track=audio_track,
        on_remote_track=on_remote_track,
    )
    try:
        await conn._open()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await conn._end("connect failed")
        raise
    try:
        yield conn
    finally:
        with anyio.CancelScope(shield=True):
            await conn.close()
