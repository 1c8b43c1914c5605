"""The emulator's SIP calls on real I/O: the webhook delivery and the caller's phone line.

:meth:`rtproto.adapters.server.Server.place_sip_call` makes a :class:`SipLine` around a pure
:class:`~rtproto.server.sip.SipCall`: it POSTs the signed ``realtime.call.incoming`` webhook
to the application, then the call waits for the application's control requests (served by
the emulator like any REST request) and for its sideband socket. Once a socket attaches to an
accepted call, :func:`play_caller` is the phone line: every 20 ms it feeds the caller's next
frame of audio (then silence) into the session and takes what the session says back, as the
caller hears it.

The emulator's simplifications, beside the service: the call's session starts when the
sideband socket attaches (the caller hears nothing before), and the call ends when that
socket closes.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import anyio

from rtproto.server.sip import SipCall, SipCallState
from rtproto.wire.signalling import WebhookDelivery

from ._http import round_trip

if TYPE_CHECKING:
    from rtproto.server import ServerSession

    from .server import _Connection

__all__ = ["FRAME_BYTES", "SipLine", "deliver_webhook", "play_caller"]

log = logging.getLogger("rtproto.adapters.server")

#: 20 ms of PCM16 at 24 kHz: one frame of the phone line.
FRAME_SECONDS = 0.02
FRAME_BYTES = 960
#: What a line keeps of the audio the caller heard (60 s); ``heard_bytes`` counts it all.
MAX_HEARD_BYTES = 60 * 48000


class SipLine:
    """A SIP call placed on the emulator: the call, the caller's audio, what they heard.

    Read it from the emulator's event loop (or after :meth:`wait_ended`).
    """

    def __init__(self, call: SipCall, caller_audio: bytes, hang_up_after: float | None) -> None:
        self.call = call
        self.caller_audio = caller_audio
        self.hang_up_after = hang_up_after
        #: The webhook delivery's HTTP status (``None``: not answered; see ``webhook_error``).
        self.webhook_status: int | None = None
        self.webhook_error: str | None = None
        #: The last ``MAX_HEARD_BYTES`` of the model's audio, PCM16 24 kHz, as played.
        self.heard = bytearray()
        #: Bytes of model audio played to the caller in all.
        self.heard_bytes = 0
        #: The sideband connection, and its session, once one attached.
        self.connection: _Connection | None = None
        self.session: ServerSession | None = None
        self._ended = anyio.Event()

    def __repr__(self) -> str:
        return f"<SipLine {self.call.call_id} {self.call.state.value}>"

    @property
    def call_id(self) -> str:
        return self.call.call_id

    async def wait_ended(self) -> str:
        """Wait for the call to end; why it ended."""
        await self._ended.wait()
        return self.call.end_reason or ""

    def ended(self) -> None:
        """(For the server.) The call is over."""
        self._ended.set()

    def hear(self, pcm: bytes) -> None:
        self.heard_bytes += len(pcm)
        self.heard += pcm
        if len(self.heard) > MAX_HEARD_BYTES:
            del self.heard[: len(self.heard) - MAX_HEARD_BYTES]


async def deliver_webhook(line: SipLine, url: str, secret: str | bytes, timeout: float) -> None:
    """POST the call's ``realtime.call.incoming`` webhook; record the answer (one attempt)."""
    event_id = "evt_" + os.urandom(16).hex()
    delivery = WebhookDelivery(
        url,
        line.call.incoming_event(event_id),
        secret,
        webhook_id="wh_" + os.urandom(16).hex(),
        timestamp=int(time.time()),
    )
    try:
        line.webhook_status = await round_trip(delivery, timeout=timeout, what="the webhook")
    except Exception as exc:  # the application's endpoint is down or broken: the call rings on
        line.webhook_error = str(exc)
        log.info("call %s: webhook not delivered: %s", line.call_id, exc)
    else:
        log.info("call %s: webhook answered %d", line.call_id, line.webhook_status)


async def play_caller(line: SipLine, conn: _Connection) -> None:
    """The phone line of an attached call: the caller's audio in (then silence), the model's
    audio out, one 20 ms frame at a time, until the call or the socket ends."""
    ws = conn.ws
    audio = line.caller_audio
    silence = bytes(FRAME_BYTES)
    start = anyio.current_time()
    frames = 0
    hang_up_at = None
    if line.hang_up_after is not None:
        hang_up_at = start + len(audio) / 48000 + line.hang_up_after
    while line.call.state is SipCallState.ACCEPTED and not ws.closed:
        offset = frames * FRAME_BYTES
        frame = audio[offset : offset + FRAME_BYTES] if offset < len(audio) else silence
        if len(frame) < FRAME_BYTES:
            frame += bytes(FRAME_BYTES - len(frame))
        async with conn._lock:
            now = anyio.current_time()
            ws.feed_audio(frame, now)
            session: Any = ws.session
            if session is not None:
                chunk = session.next_output_audio()
                while chunk is not None:
                    line.hear(chunk[1])
                    chunk = session.next_output_audio()
            await conn._flush()
        conn._timer_changed.set()
        frames += 1
        if hang_up_at is not None and anyio.current_time() >= hang_up_at:
            conn.server._end_sip_call(line, "caller hung up")
            return
        await anyio.sleep_until(start + frames * FRAME_SECONDS)
