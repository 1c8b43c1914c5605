"""The emulator's SIP calls on real I/O: the webhook delivery and the caller's phone line.

:meth:`rtproto.adapters.server.Server.place_sip_call` makes a :class:`SipLine` around a pure
:class:`~rtproto.server.sip.SipCall`: it POSTs the signed ``realtime.call.incoming`` webhook
to the application, then the call waits for the application's control requests (served by
the emulator like any REST request). Once the call is accepted, :func:`run_line` is the
phone line: every 20 ms it feeds the caller's next frame of audio (then silence) into the
call's session and takes what the session says back, as the caller hears it. The session's
events go to the sideband socket attached at the time (``?call_id=``), if any.

As on the service, the call's session starts when the call is accepted and runs whether
or not a sideband socket is attached; sockets may come and go (one at a time).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from rtproto.config import DTMF_KEYS
from rtproto.server.sip import SipCall, SipCallState
from rtproto.wire.signalling import WebhookDelivery

from ._http import round_trip

if TYPE_CHECKING:
    from rtproto.server import ServerSession

    from .server import _Connection

__all__ = ["CALLER_PAUSE", "FRAME_BYTES", "SipLine", "deliver_webhook", "run_line"]

log = logging.getLogger("rtproto.adapters.server")

#: 20 ms of PCM16 at 24 kHz: one frame of the phone line.
FRAME_SECONDS = 0.02
FRAME_BYTES = 960
#: Seconds the caller waits after the call is accepted before speaking.
CALLER_PAUSE = 0.5
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
        #: The call's session (from the accept on), and the sideband connection while one
        #: is attached.
        self.session: ServerSession | None = None
        self.connection: _Connection | None = None
        #: Keypad keys the caller pressed, waiting for the line's next frame.
        self.keys: deque[str] = deque()
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

    def press(self, keys: str) -> None:
        """The caller presses keypad keys (``0-9``, ``*``, ``#``, ``A-D``): each reaches
        the session as ``input_audio_buffer.dtmf_event_received``.

        Raises:
            ValueError: a character that is not a keypad key.
        """
        for key in keys:
            if key not in DTMF_KEYS:
                raise ValueError(f"{key!r} is not a keypad key (0-9, *, #, A-D)")
        self.keys.extend(keys)

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


async def run_line(line: SipLine, on_end: Callable[[SipLine, str], None]) -> None:
    """The phone line of an accepted call, one 20 ms frame at a time until the call ends:
    the caller's audio (after :data:`CALLER_PAUSE`, then silence) and keys into the session,
    the model's audio out to :attr:`SipLine.heard`. With a sideband socket attached, its
    connection carries the session's events (and runs its timers); without one, the line
    runs the timers and the events go nowhere, as on the service."""
    session = line.session
    assert session is not None
    audio = bytes(int(CALLER_PAUSE / FRAME_SECONDS) * FRAME_BYTES) + line.caller_audio
    silence = bytes(FRAME_BYTES)
    start = anyio.current_time()
    hang_up_at = None
    if line.hang_up_after is not None:
        hang_up_at = start + len(audio) / 48000 + line.hang_up_after
    frames = 0
    try:
        while line.call.state is SipCallState.ACCEPTED:
            offset = frames * FRAME_BYTES
            frame = audio[offset : offset + FRAME_BYTES] if offset < len(audio) else silence
            frame += bytes(FRAME_BYTES - len(frame))
            conn = line.connection
            if conn is not None and not conn.ws.closed:
                async with conn._lock:
                    _play(line, session, frame, conn.ws.feed_audio)
                    await conn._flush()
                conn._timer_changed.set()
            else:  # no sideband: the line runs the session alone
                _play(line, session, frame, session.feed_audio)
                due = session.get_timer()
                if due is not None and due <= anyio.current_time():
                    session.handle_timer(anyio.current_time())
                session.messages_to_send()  # nobody listens
                while session.next_event() is not None:
                    pass
            if session.close_requested is not None:  # the session's own end (its time cap)
                on_end(line, "session ended")
            elif hang_up_at is not None and anyio.current_time() >= hang_up_at:
                on_end(line, "caller hung up")
            frames += 1
            await anyio.sleep_until(start + frames * FRAME_SECONDS)
    finally:
        session.connection_lost(anyio.current_time())


def _play(
    line: SipLine, session: ServerSession, frame: bytes, feed: Callable[[bytes, float], None]
) -> None:
    """One frame: the caller's keys and audio in, the model's audio out."""
    now = anyio.current_time()
    while line.keys:
        session.dtmf_received(line.keys.popleft(), now)
    feed(frame, now)
    chunk = session.next_output_audio()
    while chunk is not None:
        line.hear(chunk[1])
        chunk = session.next_output_audio()
