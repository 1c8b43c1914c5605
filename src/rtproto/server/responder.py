"""The model's stand-in: responders turn a response's context into a plan of output parts.

A :class:`Responder` is anything with ``respond(context) -> ResponsePlan``. The server core
asks it once per response and turns the plan into the protocol's output items: each
:class:`SpeechPart` or :class:`TextPart` becomes an assistant message (an audio part with a
transcript when the response's modality is audio, a text part otherwise), each
:class:`FunctionCallPart` a ``function_call`` item. Everything is deterministic: randomness
comes from :meth:`ResponseContext.rng`, seeded by the session seed and the response number.

Three responders ship: :class:`EchoResponder` (the default) answers with what it heard,
:class:`ScriptResponder` plays a scripted conversation, :class:`HookResponder` calls a
function (tests). Files are I/O, so the core never reads one: drivers load a script's JSON and
WAV files and hand over the data (:func:`script_audio_files`, :func:`pcm24k_from_wav`).
"""

from __future__ import annotations

import io
import json
import math
import wave
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union, runtime_checkable

import numpy as np
import numpy.typing as npt

from .. import models as M
from ..audio import SAMPLE_RATES, resample

__all__ = [
    "EchoResponder",
    "FunctionCallPart",
    "HookResponder",
    "Part",
    "Responder",
    "ResponseContext",
    "ResponsePlan",
    "ScriptResponder",
    "SpeechPart",
    "TextPart",
    "pcm24k_from_wav",
    "script_audio_files",
    "synthesize_speech",
]


@dataclass(frozen=True)
class SpeechPart:
    """Something said: ``text`` is the transcript, ``audio_pcm24k`` the voice (PCM16 24 kHz).

    Without audio the server synthesizes a tone sequence as long as the text would take to say.
    """

    text: str
    audio_pcm24k: bytes | None = None


@dataclass(frozen=True)
class TextPart:
    """Text output (spoken, with synthesized audio, when the response's modality is audio)."""

    text: str


@dataclass(frozen=True)
class FunctionCallPart:
    """A call of a function tool; ``arguments_json`` is JSON text (sent as it is)."""

    name: str
    arguments_json: str = "{}"
    call_id: str | None = None


Part = Union[SpeechPart, TextPart, FunctionCallPart]


@dataclass(frozen=True)
class ResponsePlan:
    """What one response says, in order, and how long the model "thinks" first (seconds).

    During ``delay`` the response is active with no output yet, so it can be cancelled or
    interrupted before anything is produced.
    """

    parts: tuple[Part, ...] = ()
    delay: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise ValueError(f"delay must be a finite number >= 0, not {self.delay!r}")


@dataclass(frozen=True)
class ResponseContext:
    """Everything a responder may look at for one response."""

    #: The id of the response being produced.
    response_id: str
    #: The items the model sees: the conversation, or ``response.input`` when given.
    items: tuple[M.Item, ...]
    #: PCM16 24 kHz audio of the ``input_audio`` parts among ``items``, by item id.
    audio: Mapping[str, bytes]
    #: Instructions in effect (the session's or the response's override).
    instructions: str
    #: ``("audio",)`` or ``("text",)``.
    output_modalities: tuple[str, ...]
    #: Tools in effect.
    tools: tuple[M.Tool, ...]
    #: Tool choice in effect.
    tool_choice: M.ToolChoice
    #: Output voice.
    voice: str
    #: ``response.metadata`` as the client sent it.
    metadata: Mapping[str, str] | None
    #: ``conversation: "none"``: an out-of-band response.
    out_of_band: bool
    #: How many responses the session created before this one.
    index: int
    #: The session seed.
    seed: int = 0
    _rng: list[np.random.Generator] = field(default_factory=list, repr=False, compare=False)

    def rng(self) -> np.random.Generator:
        """A random generator for this response, seeded by (session seed, response number)."""
        if not self._rng:
            self._rng.append(np.random.default_rng([self.seed, self.index]))
        return self._rng[0]

    @property
    def last_item(self) -> M.Item | None:
        """The newest item of the context."""
        return self.items[-1] if self.items else None

    def last_user_message(self) -> M.MessageItem | None:
        """The newest user message of the context."""
        for item in reversed(self.items):
            if isinstance(item, M.MessageItem) and item.role == "user":
                return item
        return None


@runtime_checkable
class Responder(Protocol):
    """Stands in for the model: one plan per response."""

    def respond(self, context: ResponseContext) -> ResponsePlan:
        """The output of the response ``context`` describes."""
        ...


def _forced_function(context: ResponseContext) -> str | None:
    """The function a ``tool_choice`` forces (``required`` picks the first function tool)."""
    choice = context.tool_choice
    if isinstance(choice, M.ToolChoiceFunction):
        return choice.name
    if choice == "required":
        for tool in context.tools:
            if isinstance(tool, M.FunctionTool) and isinstance(tool.name, str):
                return tool.name
    return None


class EchoResponder:
    """The default responder: says what it heard.

    - A user audio turn is answered with the user's own audio (at most ``max_echo_s``
      seconds of it) and the transcript ``"I heard 1.4 seconds of audio."``;
    - a user text turn with ``"You said: <text>"`` (synthesized voice);
    - a function call output with ``"The function returned: <output>"``;
    - a ``tool_choice`` that forces a function with a call of it, arguments ``{}``.
    """

    def __init__(self, max_echo_s: float = 3.0) -> None:
        self.max_echo_s = max_echo_s

    def respond(self, context: ResponseContext) -> ResponsePlan:
        forced = _forced_function(context)
        if forced is not None:
            return ResponsePlan((FunctionCallPart(forced, "{}"),))
        last = context.last_item
        if isinstance(last, M.FunctionCallOutputItem):
            return ResponsePlan((SpeechPart(f"The function returned: {last.output}"),))
        message = context.last_user_message()
        if message is None:
            return ResponsePlan((SpeechPart("Hello! How can I help you?"),))
        audio = context.audio.get(message.id) if isinstance(message.id, str) else None
        if audio is not None:
            seconds = len(audio) / 48000.0
            echo = audio[: int(self.max_echo_s * 24000) * 2]
            return ResponsePlan((SpeechPart(f"I heard {seconds:.1f} seconds of audio.", echo),))
        texts = [
            part.text
            for part in message.content
            if part.type == "input_text" and isinstance(part.text, str)
        ]
        if texts:
            return ResponsePlan((SpeechPart("You said: " + " ".join(texts)),))
        return ResponsePlan((SpeechPart("I received your message."),))


HookResult = Union[ResponsePlan, Sequence[Part], str]


class HookResponder:
    """Calls ``hook(context)``; it returns a plan, a list of parts, or text to say."""

    def __init__(self, hook: Callable[[ResponseContext], HookResult]) -> None:
        self.hook = hook

    def respond(self, context: ResponseContext) -> ResponsePlan:
        result = self.hook(context)
        if isinstance(result, ResponsePlan):
            return result
        if isinstance(result, str):
            return ResponsePlan((SpeechPart(result),))
        return ResponsePlan(tuple(result))


# --- scripts --------------------------------------------------------------------------------

_TURN_KEYS = frozenset({"text", "audio", "tool_calls", "delay"})
_CALL_KEYS = frozenset({"name", "arguments", "call_id"})


def _script_turns(script: str | bytes | Mapping[str, Any] | Sequence[Any]) -> list[Any]:
    data: Any = json.loads(script) if isinstance(script, (str, bytes)) else script
    if isinstance(data, Mapping):
        unknown = set(data) - {"turns"}
        if unknown:
            raise ValueError(f"script: unknown keys {sorted(unknown)}; expected 'turns'")
        data = data.get("turns")
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise ValueError("script: expected a list of turns or an object with 'turns'")
    return list(data)


def script_audio_files(script: str | bytes | Mapping[str, Any] | Sequence[Any]) -> list[str]:
    """The audio file names a script refers to, in order (for the driver to load)."""
    names: list[str] = []
    for turn in _script_turns(script):
        name = turn.get("audio") if isinstance(turn, Mapping) else None
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _parse_turn(turn: object, index: int, audio: Mapping[str, bytes]) -> ResponsePlan:
    where = f"script turn {index}"
    if not isinstance(turn, Mapping):
        raise ValueError(f"{where}: expected an object")
    unknown = set(turn) - _TURN_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    text = turn.get("text", "")
    if not isinstance(text, str):
        raise ValueError(f"{where}: 'text' must be a string")
    delay = turn.get("delay", 0.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise ValueError(f"{where}: 'delay' must be a number")
    parts: list[Part] = []
    name = turn.get("audio")
    if name is not None:
        if not isinstance(name, str) or name not in audio:
            raise ValueError(f"{where}: audio {name!r} was not loaded")
        pcm = audio[name]
        if len(pcm) % 2:
            raise ValueError(f"{where}: audio {name!r} has an odd number of bytes")
        parts.append(SpeechPart(text, pcm))
    elif text:
        parts.append(SpeechPart(text))
    calls = turn.get("tool_calls", [])
    if not isinstance(calls, list):
        raise ValueError(f"{where}: 'tool_calls' must be a list")
    for number, call in enumerate(calls):
        here = f"{where}, tool call {number}"
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str):
            raise ValueError(f"{here}: expected an object with a string 'name'")
        if set(call) - _CALL_KEYS:
            raise ValueError(f"{here}: unknown keys {sorted(set(call) - _CALL_KEYS)}")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, separators=(",", ":"))
        call_id = call.get("call_id")
        if call_id is not None and not isinstance(call_id, str):
            raise ValueError(f"{here}: 'call_id' must be a string")
        parts.append(FunctionCallPart(call["name"], arguments, call_id))
    return ResponsePlan(tuple(parts), float(delay))


class ScriptResponder:
    """Plays scripted turns in order, one per response, then defers to ``fallback``.

    A script is a list of turns (or ``{"turns": [...]}``), each an object with ``text`` (what
    is said), ``audio`` (the name of a loaded PCM16 24 kHz clip to say it with), ``tool_calls``
    (``[{"name", "arguments" (object or JSON text), "call_id"?}]``) and ``delay`` (seconds
    before the output starts). ``audio`` maps clip names to PCM: the driver reads the files
    (:func:`script_audio_files`, :func:`pcm24k_from_wav`). Invalid scripts raise
    ``ValueError`` at construction. With ``loop`` the turns start over instead.
    """

    def __init__(
        self,
        turns: Sequence[Mapping[str, Any]],
        audio: Mapping[str, bytes] | None = None,
        *,
        fallback: Responder | None = None,
        loop: bool = False,
    ) -> None:
        loaded = audio or {}
        self.plans = [_parse_turn(turn, i, loaded) for i, turn in enumerate(turns)]
        self.fallback: Responder = fallback if fallback is not None else EchoResponder()
        self.loop = loop
        self.position = 0

    @classmethod
    def from_script(
        cls,
        script: str | bytes | Mapping[str, Any] | Sequence[Any],
        audio: Mapping[str, bytes] | None = None,
        **options: Any,
    ) -> ScriptResponder:
        """Build from a script's JSON text or already-decoded data."""
        return cls(_script_turns(script), audio, **options)

    def respond(self, context: ResponseContext) -> ResponsePlan:
        if self.loop and self.plans:
            self.position %= len(self.plans)
        if self.position < len(self.plans):
            plan = self.plans[self.position]
            self.position += 1
            return plan
        return self.fallback.respond(context)


def pcm24k_from_wav(data: bytes) -> bytes:
    """PCM16 mono 24 kHz from the bytes of a WAV file (any PCM width, channels and rate).

    Channels are averaged. The rates of :data:`rtproto.audio.SAMPLE_RATES` go through the
    band-limited resampler (no aliasing); any other rate is interpolated linearly.
    Pure: parses bytes already read. Raises ``ValueError`` for what is not PCM WAV.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            rate = reader.getframerate()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file: {exc}") from None
    if width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.int32)
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        samples = raw[:, 1].astype(np.int32) | (raw[:, 2].astype(np.int8).astype(np.int32) << 8)
    else:
        samples = np.frombuffer(frames, dtype="<i4").astype(np.int32) >> 16
    usable = samples.size - samples.size % channels
    mono = samples[:usable].reshape(-1, channels).mean(axis=1)
    pcm = np.clip(np.rint(mono), -32768, 32767).astype(np.int16)
    if rate == 24000:
        converted = pcm
    elif rate in SAMPLE_RATES:
        converted = resample(pcm, rate, 24000)
    else:
        count = round(pcm.size * 24000 / rate)
        positions = np.arange(count) * (rate / 24000)
        out = np.interp(positions, np.arange(pcm.size), pcm.astype(np.float64))
        converted = np.rint(out).astype(np.int16)
    return bytes(converted.astype("<i2").tobytes())


# --- synthesized voice ----------------------------------------------------------------------

#: Milliseconds of synthesized "speech" per character of text (about 16 characters a second).
MS_PER_CHARACTER = 60


def synthesize_speech(text: str, rng: np.random.Generator, *, amplitude: float = 0.25) -> bytes:
    """PCM16 24 kHz tones standing in for speaking ``text``: one tone per word, with gaps.

    A word of n characters lasts n * 60 ms (at least 120 ms), at a pitch the generator picks
    between 160 and 320 Hz; words are separated by 60 ms of silence. Deterministic per seed.
    """
    pieces: list[npt.NDArray[np.float64]] = []
    gap = np.zeros(60 * 24)
    for word in text.split():
        samples = max(120, MS_PER_CHARACTER * len(word)) * 24
        frequency = float(rng.uniform(160.0, 320.0))
        t = np.arange(samples) / 24000.0
        tone = np.sin(2 * np.pi * frequency * t)
        ramp = min(120, samples // 2)
        envelope = np.ones(samples)
        envelope[:ramp] = np.linspace(0.0, 1.0, ramp)
        envelope[-ramp:] = np.linspace(1.0, 0.0, ramp)
        if pieces:
            pieces.append(gap)
        pieces.append(tone * envelope * amplitude)
    if not pieces:
        return b""
    signal = np.concatenate(pieces)
    return bytes(np.rint(signal * 32767.0).astype("<i2").tobytes())
