"""Audio between aiortc media tracks and PCM16 24 kHz mono (needs ``aiortc``; asyncio only).

:func:`frame_to_pcm24k` turns a decoded ``av.AudioFrame`` (Opus decodes at 48 kHz, stereo)
into mono PCM16 24 kHz; :class:`PcmTrack` is an outgoing audio track that plays PCM16 24 kHz
pulled from a callable, resampled to 48 kHz and paced in real time in 20 ms frames (silence
when there is nothing to play); :class:`BorrowedTrack` sends a caller's track without owning
it (closing the connection leaves the caller's track live).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtproto.audio import Resampler

__all__ = [
    "FRAME_SAMPLES",
    "BorrowedTrack",
    "PcmTrack",
    "frame_to_pcm24k",
    "loopback_candidates",
    "peak",
    "silent_like",
]

RATE = 48000
#: Samples of one 20 ms frame at 48 kHz.
FRAME_SAMPLES = 960
_TIME_BASE = fractions.Fraction(1, RATE)


class _Downmix:
    """Decoded frames at any rate and layout to mono PCM16 24 kHz (keeps filter state)."""

    def __init__(self) -> None:
        self._rate = 0
        self._resampler: Resampler | None = None

    def __call__(self, frame: av.AudioFrame) -> bytes:
        data = frame.to_ndarray()
        channels = len(frame.layout.channels) or 1
        if frame.format.is_planar:
            samples = data.astype(np.float64).mean(axis=0)
        else:
            samples = data.reshape(-1, channels).astype(np.float64).mean(axis=1)
        if frame.format.name.startswith(("flt", "dbl")):
            samples = samples * 32767.0
        pcm = np.clip(np.rint(samples), -32768, 32767).astype("<i2")
        rate = frame.sample_rate
        if rate == 24000:
            return bytes(pcm.tobytes())
        if self._resampler is None or rate != self._rate:
            self._rate = rate
            self._resampler = Resampler(rate, 24000)
        return bytes(self._resampler.process(pcm).tobytes())


def frame_to_pcm24k() -> Callable[[av.AudioFrame], bytes]:
    """A converter of decoded frames to mono PCM16 24 kHz (one per incoming track)."""
    return _Downmix()


def peak(pcm: bytes) -> int:
    """The largest absolute sample of PCM16 audio (0 for none)."""
    if len(pcm) < 2:
        return 0
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.int32)
    return int(np.abs(samples).max())


class BorrowedTrack(MediaStreamTrack):
    """Sends the frames of a track it does not own.

    aiortc stops a sender's track when the peer connection closes or its transport fails;
    the sender gets this track instead of the caller's, so stopping it leaves the caller's
    track (a microphone, a player) live: caller-owned media is never stopped
    (spec/transport-behaviour.md sections 4.4 and 10).
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        #: Send silence in place of the source's audio (the source is still read, in time).
        self.muted = False

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.source.recv()
        if self.muted and isinstance(frame, av.AudioFrame):
            return silent_like(frame)
        return frame


def silent_like(frame: av.AudioFrame) -> av.AudioFrame:
    """A frame of silence with ``frame``'s format, layout, length and timing."""
    silent = av.AudioFrame(
        format=frame.format.name, layout=frame.layout.name, samples=frame.samples
    )
    for plane in silent.planes:
        plane.update(bytes(plane.buffer_size))
    silent.sample_rate = frame.sample_rate
    silent.pts = frame.pts
    silent.time_base = frame.time_base
    return silent


class PcmTrack(MediaStreamTrack):
    """An outgoing audio track: PCM16 24 kHz from ``pull()`` as paced 20 ms 48 kHz frames.

    ``pull()`` returns the next chunk, or ``None`` when there is nothing to play (silence
    goes out then). It is called only when the track needs more audio, so what has not been
    pulled can still be dropped by its owner (an interruption). While ``muted``, the audio
    is still pulled in time, as a muted microphone still captures, and silence goes out.
    """

    kind = "audio"

    def __init__(self, pull: Callable[[], bytes | None]) -> None:
        super().__init__()
        self._pull = pull
        self._upsample = Resampler(24000, RATE)
        self._buffer = np.zeros(0, dtype=np.int16)
        self._start: float | None = None
        self._timestamp = 0
        self.muted = False

    def clear(self) -> None:
        """Drop what was pulled but not played yet."""
        self._buffer = np.zeros(0, dtype=np.int16)
        self._upsample.reset()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._timestamp += FRAME_SAMPLES
            wait = self._start + self._timestamp / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        while len(self._buffer) < FRAME_SAMPLES:
            chunk = self._pull()
            if chunk is None:
                break
            pcm = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2")
            self._buffer = np.concatenate([self._buffer, self._upsample.process(pcm)])
        frame_pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        take = min(FRAME_SAMPLES, len(self._buffer))
        if not self.muted:
            frame_pcm[:take] = self._buffer[:take]
        self._buffer = self._buffer[take:]
        frame = av.AudioFrame.from_ndarray(frame_pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._timestamp
        frame.time_base = _TIME_BASE
        return frame


@contextlib.contextmanager
def loopback_candidates() -> Iterator[None]:
    """Gather ICE host candidates on 127.0.0.1 only (aioice skips loopback by default).

    For tests and the emulator on a machine without another interface; it patches aioice
    for the whole process while the block runs.
    """
    import aioice.ice

    original: Any = aioice.ice.get_host_addresses

    def loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original
