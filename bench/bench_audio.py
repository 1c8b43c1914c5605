"""Micro-benchmark of rtproto.audio: median time per 20 ms frame (not a test).

Run: ``.venv/bin/python bench/bench_audio.py [frames]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from rtproto import audio


def _median_us(fn: Callable[[], object], runs: int) -> float:
    for _ in range(min(runs, 50)):  # warm up caches and the filter state
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000.0


def main(frames: int = 2000) -> None:
    """Print the median time per 20 ms frame for every rate pair and for the G.711 codecs."""
    rng = np.random.default_rng(0)
    print(f"median per 20 ms frame over {frames} frames")
    for from_rate in audio.SAMPLE_RATES:
        for to_rate in audio.SAMPLE_RATES:
            if from_rate == to_rate:
                continue
            frame = rng.integers(-20000, 20000, from_rate // 50, dtype=np.int16)
            resampler = audio.Resampler(from_rate, to_rate)
            us = _median_us(lambda: resampler.process(frame), frames)  # noqa: B023
            print(
                f"  resample {from_rate:>5} -> {to_rate:>5} Hz"
                f"  ({resampler.num_taps:3d} taps): {us:7.1f} us"
            )
    pcm = rng.integers(-20000, 20000, 160, dtype=np.int16)
    ulaw = audio.ulaw_encode(pcm)
    for name, fn in [
        ("ulaw_encode 8 kHz", lambda: audio.ulaw_encode(pcm)),
        ("ulaw_decode 8 kHz", lambda: audio.ulaw_decode(ulaw)),
        ("alaw_encode 8 kHz", lambda: audio.alaw_encode(pcm)),
        ("encode_base64 24 kHz", lambda: audio.encode_base64(np.zeros(480, np.int16))),
    ]:
        print(f"  {name:<27}: {_median_us(fn, frames):7.1f} us")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
