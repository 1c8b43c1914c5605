"""The emulator's WebRTC call: an aiortc peer connection around a ``ServerSession``.

Imported only when a ``POST /v1/realtime/calls`` arrives (aiortc is optional) and only on
the asyncio backend (aiortc is asyncio-only). The session runs with ``profile="webrtc"``:

* events flow as text messages over the ``oai-events`` data channel the client opened;
* the caller's Opus track is decoded (48 kHz), downmixed to mono, resampled to 24 kHz and
  fed to :meth:`~rtproto.server.ServerSession.feed_audio`;
* the reply audio from :meth:`~rtproto.server.ServerSession.next_output_audio` is played on
  an outgoing track in real time (20 ms frames at 48 kHz), pulled only as it is played, so
  ``output_audio_buffer.clear`` and barge-in drop what was not played yet;
* a peer that has not opened ``oai-events`` within ``open_timeout`` seconds of the answer
  is hung up on (the call would otherwise hold its peer connection forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtproto.server import ServerSession

from ._media import PcmTrack, frame_to_pcm24k

__all__ = ["DEFAULT_OPEN_TIMEOUT", "WebRTCCall"]

log = logging.getLogger("rtproto.server")

#: Seconds a call waits for its ``oai-events`` data channel to open (ICE, DTLS and SCTP
#: included) before it hangs up.
DEFAULT_OPEN_TIMEOUT = 30.0


class WebRTCCall:
    """One emulated call: answer the offer with :meth:`answer`, then :meth:`run` until over."""

    def __init__(
        self,
        session: ServerSession,
        call_id: str,
        on_record: Callable[[Any], None] | None = None,
        *,
        open_timeout: float | None = DEFAULT_OPEN_TIMEOUT,
    ) -> None:
        self.session = session
        self.call_id = call_id
        self._on_record = on_record
        self.open_timeout = open_timeout
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel: Any = None
        self._opened = False
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.track = PcmTrack(self._pull)
        pc = self.pc

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            if channel.label != "oai-events" or self.channel is not None:
                return
            self.channel = channel
            channel.on("message", self._on_message)
            channel.on("close", self.close)
            if channel.readyState == "open":
                self._open()
            else:
                channel.on("open", self._open)

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                self._spawn(self._read_audio(track))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self.close()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer and return the SDP answer (ICE candidates included)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        self.pc.addTrack(self.track)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return str(self.pc.localDescription.sdp)

    async def run(self) -> None:
        """Run the session's timers until the call ends; then close the peer connection.

        A call whose data channel has not opened within ``open_timeout`` seconds (from now:
        call it right after :meth:`answer`) is closed.
        """
        timeout = self.open_timeout
        open_by = None if timeout is None else self._now() + timeout
        try:
            while not self._closed.is_set():
                self._wake.clear()
                if self._opened:
                    deadline = self.session.get_timer()
                elif open_by is not None and open_by <= self._now():
                    log.info(
                        "call %s: the oai-events data channel did not open within %s s",
                        self.call_id,
                        timeout,
                    )
                    break
                else:
                    deadline = open_by
                if deadline is None:
                    wait: float | None = None
                else:
                    wait = deadline - self._now()
                    if wait <= 0:
                        if self._opened:
                            self.session.handle_timer(self._now())
                            self._flush()
                        continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            await self.aclose()

    def close(self) -> None:
        self._closed.set()
        self._wake.set()

    async def aclose(self) -> None:
        self.close()
        if self._opened:
            self.session.connection_lost(self._now())
            self._opened = False
            self._flush()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()

    # ----------------------------------------------------------------------- internals --

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open(self) -> None:
        if self._opened or self._closed.is_set():
            return
        self._opened = True
        self.session.connection_made(self._now(), unix_time=time.time())
        self._flush()  # (wakes run(): the open deadline no longer applies)

    def _on_message(self, message: str | bytes) -> None:
        if not self._opened:
            return
        try:
            self.session.receive(message, self._now(), binary=isinstance(message, bytes))
        except Exception:
            log.exception("call %s: the session refused a message", self.call_id)
            self.close()
            return
        self._flush()

    async def _read_audio(self, track: Any) -> None:
        convert = frame_to_pcm24k()
        while not self._closed.is_set():
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not self._opened:
                continue
            pcm = convert(frame)
            if pcm:
                self.session.feed_audio(pcm, self._now())
                self._flush()

    def _pull(self) -> bytes | None:
        chunk = self.session.next_output_audio()
        return chunk[1] if chunk is not None else None

    def _flush(self) -> None:
        session = self.session
        channel = self.channel
        for text in session.messages_to_send():
            if channel is not None and channel.readyState == "open":
                channel.send(text)
        record = session.next_event()
        while record is not None:
            if self._on_record is not None:
                self._on_record(record)
            record = session.next_event()
        if session.close_requested is not None:
            self.close()
        self._wake.set()
