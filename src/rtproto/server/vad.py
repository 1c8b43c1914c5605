"""An energy-based voice activity detector standing in for the service's server VAD.

The service's VAD is a model; this one compares the RMS level of 10 ms frames of PCM16 24 kHz
audio with a threshold mapped from the session's ``threshold`` (0.0 to 1.0) onto -60 to
-10 dBFS (0.5 is -35 dBFS). Speech starts at the first of :data:`MIN_SPEECH_FRAMES` loud
frames in a row and stops after ``silence_duration_ms`` of quiet frames; positions are sample
offsets from the start of all audio of the session, so the core can cut its buffer exactly
there. ``semantic_vad`` is approximated by the same detector with a silence window chosen by
``eagerness`` (:data:`SEMANTIC_SILENCE_MS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "FRAME_SAMPLES",
    "MIN_SPEECH_FRAMES",
    "SAMPLES_PER_MS",
    "SEMANTIC_SILENCE_MS",
    "EnergyVad",
    "VadSettings",
    "threshold_level",
]

#: PCM16 at 24 kHz: samples per millisecond.
SAMPLES_PER_MS = 24
#: One analysis frame: 10 ms.
FRAME_SAMPLES = 10 * SAMPLES_PER_MS
#: Loud frames in a row that make speech (30 ms), so that a click is not a turn.
MIN_SPEECH_FRAMES = 3
#: Silence that ends a turn for ``semantic_vad``, by eagerness (an approximation: the service
#: decides with a model and waits at most 8 s / 4 s / 2 s for low / medium / high).
SEMANTIC_SILENCE_MS = {"low": 1000, "medium": 600, "auto": 600, "high": 300}


def threshold_level(threshold: float) -> float:
    """The frame RMS (in int16 units) that counts as speech for a ``threshold`` of 0..1."""
    return float(32768.0 * 10.0 ** ((-60.0 + 50.0 * threshold) / 20.0))


@dataclass(frozen=True)
class VadSettings:
    """What the detector needs from the turn detection config."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 200


class EnergyVad:
    """Incremental detector: feed PCM16 24 kHz samples, get (kind, sample position) events.

    ``kind`` is ``"start"`` (position = the first speech sample) or ``"stop"`` (position =
    the end of the silence window that ended the speech).
    """

    __slots__ = ("_loud_run", "_onset", "_quiet_run", "_rest", "position", "speaking")

    def __init__(self, position: int = 0) -> None:
        self._rest: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
        self.position = position  # absolute sample index of the first sample of _rest
        self.speaking = False
        self._loud_run = 0
        self._quiet_run = 0
        self._onset = 0

    def reset(self, position: int) -> None:
        """Forget everything; the next sample fed is at ``position``."""
        self._rest = np.zeros(0, dtype=np.int16)
        self.position = position
        self.speaking = False
        self._loud_run = 0
        self._quiet_run = 0

    def process(
        self, samples: npt.NDArray[np.int16], settings: VadSettings
    ) -> list[tuple[str, int]]:
        """Analyse more audio; the speech starts and stops it completes, in order."""
        data = np.concatenate((self._rest, samples)) if self._rest.size else samples
        frames = data.size // FRAME_SAMPLES
        events: list[tuple[str, int]] = []
        if frames:
            block = data[: frames * FRAME_SAMPLES].astype(np.float64).reshape(frames, -1)
            loud = np.sqrt(np.mean(block * block, axis=1)) > threshold_level(settings.threshold)
            silence_frames = max(1, -(-settings.silence_duration_ms // 10))
            for index, is_loud in enumerate(loud.tolist()):
                start = self.position + index * FRAME_SAMPLES
                if not self.speaking:
                    self._loud_run = self._loud_run + 1 if is_loud else 0
                    if self._loud_run >= MIN_SPEECH_FRAMES:
                        self.speaking = True
                        self._quiet_run = 0
                        self._onset = start - (MIN_SPEECH_FRAMES - 1) * FRAME_SAMPLES
                        events.append(("start", self._onset))
                elif is_loud:
                    self._quiet_run = 0
                else:
                    self._quiet_run += 1
                    if self._quiet_run >= silence_frames:
                        self.speaking = False
                        self._loud_run = 0
                        events.append(("stop", start + FRAME_SAMPLES))
        self.position += frames * FRAME_SAMPLES
        self._rest = data[frames * FRAME_SAMPLES :].copy()
        return events
