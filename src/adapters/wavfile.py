"""WAV files in and out, as the protocol's audio: PCM16 mono at 24 kHz (stdlib ``wave``)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rtproto import audio

__all__ = ["WavError", "read_pcm24k", "write_pcm24k"]

RATE = 24000


class WavError(ValueError):
    """The file is not a WAV file rtproto can read (the message says why)."""


def read_pcm24k(path: str | Path) -> bytes:
    """Read a PCM WAV file (8/16/24/32-bit, any channels, 8-192 kHz) as PCM16 mono 24 kHz."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise WavError(f"{path}: not a readable PCM WAV file ({exc})") from None
    samples = _to_int16(frames, width, str(path))
    if channels > 1:
        samples = (
            samples[: len(samples) // channels * channels]
            .reshape(-1, channels)
            .mean(axis=1)
            .round()
            .astype(np.int16)
        )
    if rate != RATE:
        try:
            samples = audio.resample(samples, rate, RATE)
        except ValueError as exc:
            raise WavError(f"{path}: {exc}") from None
    return audio.array_to_pcm16(samples)


def write_pcm24k(path: str | Path, pcm: bytes) -> None:
    """Write PCM16 mono 24 kHz audio as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm)


def _to_int16(frames: bytes, width: int, name: str) -> npt.NDArray[np.int16]:
    if width == 2:
        return np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if width == 1:  # unsigned 8-bit
        return ((np.frombuffer(frames, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(
            np.int16
        )
    if width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        return (raw[:, 2].astype(np.int8).astype(np.int16) << 8 | raw[:, 1]).astype(np.int16)
    if width == 4:
        return (np.frombuffer(frames, dtype="<i4") >> 16).astype(np.int16)
    raise WavError(f"{name}: {8 * width}-bit samples are not supported")
