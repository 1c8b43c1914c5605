"""Turning a responder's plan into output items, deltas and usage numbers (pure helpers).

Usage is derived, not measured: text counts one token per 4 characters, input audio one per
100 ms, output audio one per 80 ms (about 3.5 audio tokens per text token for speech, as the
recordings show), images 85 each, and the part of the context already seen by the previous
response counts as cached, in steps of 64 tokens (spec section 8.5 and service observations 7).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio import alaw_decode, alaw_encode, resample, ulaw_decode, ulaw_encode

__all__ = [
    "BYTES_PER_MS",
    "Output",
    "audio_tokens_in",
    "audio_tokens_out",
    "decode_input",
    "encode_output",
    "split_words",
    "split_arguments",
    "text_tokens",
    "zero_usage",
]

#: Bytes per millisecond of each audio format (PCM16 24 kHz, G.711 8 kHz).
BYTES_PER_MS = {"audio/pcm": 48, "audio/pcmu": 8, "audio/pcma": 8}

_WORD = re.compile(r"\s*\S+")


def text_tokens(text: str) -> int:
    """Tokens of ``text``: one per 4 characters, rounded up."""
    return -(-len(text) // 4)


def audio_tokens_in(ms: float) -> int:
    """Tokens of ``ms`` of input audio (one per 100 ms)."""
    return math.ceil(ms / 100.0)


def audio_tokens_out(ms: float) -> int:
    """Tokens of ``ms`` of output audio (one per 80 ms)."""
    return math.ceil(ms / 80.0)


def split_words(text: str) -> list[str]:
    """Delta-sized pieces of ``text`` (a word with its leading space); they join back to it."""
    pieces = _WORD.findall(text)
    rest = text[sum(len(p) for p in pieces) :]
    if rest:
        pieces.append(rest)
    return pieces


def split_arguments(arguments: str, rng: np.random.Generator) -> list[str]:
    """Token-sized fragments (3 to 10 characters) of a function call's arguments."""
    pieces: list[str] = []
    position = 0
    while position < len(arguments):
        size = int(rng.integers(3, 11))
        pieces.append(arguments[position : position + size])
        position += size
    return pieces


def encode_output(pcm24k: bytes, fmt: str) -> bytes:
    """PCM16 24 kHz to the output format's bytes (G.711 is resampled to 8 kHz first)."""
    if fmt == "audio/pcm" or not pcm24k:
        return pcm24k
    samples = resample(np.frombuffer(pcm24k, dtype="<i2"), 24000, 8000)
    return ulaw_encode(samples) if fmt == "audio/pcmu" else alaw_encode(samples)


def decode_input(data: bytes, fmt: str) -> bytes:
    """Input-format bytes to PCM16 24 kHz (G.711 samples are each held for 3 samples)."""
    if fmt == "audio/pcm":
        return data
    samples = ulaw_decode(data) if fmt == "audio/pcmu" else alaw_decode(data)
    return np.repeat(samples, 3).astype("<i2").tobytes()


def zero_usage() -> dict[str, Any]:
    """The usage object of a response cancelled before any output: all zeros."""
    return usage_object(0, 0, 0, 0, 0, 0, 0)


def usage_object(
    in_text: int,
    in_audio: int,
    in_image: int,
    cached: int,
    out_text: int,
    out_audio: int,
    cached_text: int,
) -> dict[str, Any]:
    """A GA ``usage`` object (``total_tokens = input_tokens + output_tokens``)."""
    inputs = in_text + in_audio + in_image
    outputs = out_text + out_audio
    return {
        "total_tokens": inputs + outputs,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "input_token_details": {
            "text_tokens": in_text,
            "audio_tokens": in_audio,
            "image_tokens": in_image,
            "cached_tokens": cached,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached - cached_text,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }


@dataclass
class Step:
    """One release of output: text pieces, then audio (output format and PCM 24 kHz)."""

    pieces: list[str]
    audio: bytes = b""
    pcm: bytes = b""


@dataclass
class Output:
    """One planned output item of a response and how far it has been sent."""

    kind: str  # "message" or "function_call"
    item_id: str
    output_index: int
    modality: str = "audio"  # message: "audio" or "text"
    steps: list[Step] = field(default_factory=list)
    name: str = ""
    call_id: str = ""
    status: str = "completed"  # "incomplete" when max_output_tokens cut it
    state: int = 0  # 0 not started, 1 open, 2 done
    sent_text: list[str] = field(default_factory=list)
    sent_audio_ms: float = 0.0

    @property
    def text(self) -> str:
        """What has been sent so far (transcript, text or arguments)."""
        return "".join(self.sent_text)
