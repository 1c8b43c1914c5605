"""Silence for the input audio the phone line did not deliver, so the server's turn detection
sees time pass as the caller does (as the JS Twilio transport pads).

- **Gaps**: a ``media`` message whose timestamp jumps past the end of the previous one (audio
  lost before it reached Twilio) is preceded by that much mu-law silence, at most 10 s.
- **Inactivity**: while the server reports the caller speaking, media that stops for
  ``timeout`` seconds is followed by 1 s of silence, once, so that the server can hear the
  speech end.

Only for a stream in mu-law at 8 kHz, mono (every Twilio stream); time comes in as ``now``.
"""

from __future__ import annotations

__all__ = ["BYTES_PER_MS", "InputPadding", "MAX_GAP_MS", "SILENCE_BYTE"]

#: mu-law at 8 kHz: 8 bytes a millisecond.
BYTES_PER_MS = 8
#: mu-law's silence (the encoding of 0).
SILENCE_BYTE = 0xFF
#: The longest gap filled with silence.
MAX_GAP_MS = 10_000
#: Silence sent once the input went quiet while the caller was speaking.
INACTIVITY_SILENCE_MS = 1_000


class InputPadding:
    """Decides when and how much silence to add to the caller's audio."""

    def __init__(self, timeout: float | None = 0.75) -> None:
        #: Seconds without media, while the caller speaks, before silence is sent (None: never).
        self.timeout = timeout
        #: Whether the stream's format allows padding (mu-law, 8 kHz, mono).
        self.enabled = False
        self._next_timestamp: float | None = None
        self._last_media_at: float | None = None
        self._speaking = False
        self._gap_padded = False
        self._deadline: float | None = None

    def reset(self, *, enabled: bool | None = None) -> None:
        """A new stream (``enabled``: its format allows padding), or the end of one."""
        if enabled is not None:
            self.enabled = enabled
        self._next_timestamp = self._last_media_at = self._deadline = None
        self._speaking = self._gap_padded = False

    def media(self, timestamp: int | None, size: int, now: float) -> int:
        """Media of ``size`` bytes with Twilio's ``timestamp`` (ms, None when absent) arrived
        at ``now``: the milliseconds of silence to send before it."""
        self._deadline = None
        silence = 0
        if not self.enabled or timestamp is None:
            self._next_timestamp = None
        elif self._next_timestamp is not None and timestamp < self._next_timestamp:
            self._next_timestamp = None  # it went backwards: start inferring again
        else:
            if not self._gap_padded and self._next_timestamp is not None:
                missing = int(timestamp - self._next_timestamp)
                silence = min(missing, MAX_GAP_MS) if missing > 0 else 0
            self._next_timestamp = timestamp + size / BYTES_PER_MS
        self._gap_padded = False
        self._last_media_at = now
        self._arm()
        return silence

    def speech_started(self) -> None:
        """The server heard the caller start speaking."""
        self._speaking = True
        self._arm()

    def speech_stopped(self) -> None:
        """The server heard the caller stop."""
        self._speaking = False
        self._deadline = None

    def deadline(self) -> float | None:
        """When :meth:`fire` is due, if it is."""
        return self._deadline

    def fire(self, now: float, *, connected: bool = True) -> int:
        """The deadline passed: the milliseconds of silence to send now (0 if none is due, or
        when the session is not ``connected``)."""
        if self._deadline is None or now < self._deadline:
            return 0
        self._deadline = None  # (only armed while the caller speaks)
        if not connected:
            return 0
        self._gap_padded = True  # the next media's gap was (partly) filled by this silence
        return INACTIVITY_SILENCE_MS

    def _arm(self) -> None:
        if (
            self.timeout is None
            or not self.enabled
            or not self._speaking
            or self._last_media_at is None
        ):
            self._deadline = None
        else:
            self._deadline = self._last_media_at + self.timeout
