"""rtproto.audio: PCM16 views, G.711 (bit-exact with audioop), durations, resampling, base64."""

from __future__ import annotations

import hashlib
import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtproto import audio

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None)
PAIRS = [(a, b) for a in audio.SAMPLE_RATES for b in audio.SAMPLE_RATES if a != b]
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))
Int16Array = npt.NDArray[np.int16]


def load_audioop() -> ModuleType:
    """The stdlib ``audioop`` (<= 3.12) or the ``audioop-lts`` backport (>= 3.13), else skip."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            pytest.skip("neither stdlib audioop nor audioop-lts is importable")
    return audioop


def as_any(value: object) -> Any:
    """``value``, hidden from the type checker (for tests of run-time type errors)."""
    return value


def tone(freq: float, rate: int, n: int, amp: float = 16000.0) -> Int16Array:
    """``n`` samples of a sine at ``freq`` Hz, rounded to int16."""
    return np.rint(amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.int16)


def rms(x: npt.NDArray[np.generic]) -> float:
    return math.sqrt(float(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def noise(n: int, seed: int = 0) -> Int16Array:
    return np.random.default_rng(seed).integers(-32768, 32768, n, dtype=np.int16)


def stream(resampler: audio.Resampler, signal: Int16Array, sizes: list[int]) -> Int16Array:
    """Feed ``signal`` in chunks of ``sizes`` (cycled), then flush; concatenate the output."""
    out, pos, i = [], 0, 0
    while pos < signal.size:
        size = sizes[i % len(sizes)]
        out.append(resampler.process(signal[pos : pos + size]))
        pos, i = pos + size, i + 1
    out.append(resampler.flush())
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------
# PCM16 <-> numpy


def test_sample_rates() -> None:
    assert audio.SAMPLE_RATES == (8000, 16000, 24000, 48000)


def test_pcm16_to_array_is_a_little_endian_view() -> None:
    buf = bytearray(b"\x01\x00\xff\xff\x00\x80")
    arr = audio.pcm16_to_array(buf)
    assert arr.tolist() == [1, -1, -32768]
    assert arr.dtype == np.dtype("<i2")
    buf[0] = 2  # a view, not a copy
    assert arr[0] == 2
    assert audio.pcm16_to_array(memoryview(bytes(buf))).tolist() == [2, -1, -32768]
    assert audio.pcm16_to_array(b"").size == 0


def test_pcm16_to_array_rejects_odd_length() -> None:
    with pytest.raises(ValueError, match="even number of bytes, got 3"):
        audio.pcm16_to_array(b"\x00\x01\x02")


def test_pcm16_to_array_rejects_a_strided_buffer_with_its_documented_error() -> None:
    strided = memoryview(b"\x01\x00\x02\x00\x03\x00\x04\x00").cast("H")[::2]
    assert strided.nbytes == 4
    with pytest.raises(ValueError, match="contiguous"):
        audio.pcm16_to_array(strided)
    assert audio.pcm16_to_array(bytes(strided)).tolist() == [1, 3]  # as the message says


def test_array_to_pcm16_any_byte_order() -> None:
    native = np.array([1, -2, 32767, -32768], dtype=np.int16)
    expected = b"\x01\x00\xfe\xff\xff\x7f\x00\x80"
    assert audio.array_to_pcm16(native) == expected
    assert audio.array_to_pcm16(native.astype(">i2")) == expected
    assert audio.array_to_pcm16(native[::-1][::-1]) == expected
    assert audio.array_to_pcm16(audio.pcm16_to_array(expected)) == expected


@pytest.mark.parametrize("bad", [np.zeros(3, np.int32), np.zeros(3, np.uint16), np.zeros(3)])
def test_array_to_pcm16_rejects_other_dtypes(bad: npt.NDArray[np.generic]) -> None:
    with pytest.raises(TypeError, match="int16"):
        audio.array_to_pcm16(bad)  # type: ignore[arg-type]


def test_array_to_pcm16_rejects_non_arrays() -> None:
    with pytest.raises(TypeError, match="got list"):
        audio.array_to_pcm16([1, 2])  # type: ignore[arg-type]


def test_float_to_int16() -> None:
    values = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, math.nan, math.inf, -math.inf, 1e-5]
    out = audio.float_to_int16(np.array(values))
    assert out.dtype == np.int16
    assert out.tolist() == [-32767, -32767, -16384, 0, 16384, 32767, 32767, 0, 32767, -32767, 0]
    assert audio.float_to_int16(np.array([0.25], np.float32)).tolist() == [8192]
    assert audio.float_to_int16([0, 1, -1]).tolist() == [0, 32767, -32767]


def test_float_to_int16_passes_int16_samples_through() -> None:
    # int16 input already is samples: not amplitudes in [-1, 1] to saturate
    for samples in (ALL_INT16, ALL_INT16.astype(">i2"), ALL_INT16[::-3]):
        out = audio.float_to_int16(samples)
        assert out.dtype == np.int16 and out.dtype.isnative
        assert np.array_equal(out, samples)
        assert not np.shares_memory(out, samples)
    pcm = tone(440, 8000, 160)
    assert np.array_equal(audio.float_to_int16(audio.float_to_int16(pcm)), pcm)


def test_float_to_int16_rejects_non_numbers() -> None:
    with pytest.raises(TypeError, match="float samples"):
        audio.float_to_int16(np.array(["a"]))


def test_int16_to_float() -> None:
    out = audio.int16_to_float(np.array([-32768, 0, 16384, 32767], np.int16))
    assert out.dtype == np.float32
    assert out.tolist() == [-1.0, 0.0, 0.5, 32767 / 32768]
    assert audio.int16_to_float(b"\x00\x80").tolist() == [-1.0]


@SETTINGS
@given(st.lists(st.integers(-32768, 32767), max_size=50))
def test_float_int16_round_trip(values: list[int]) -> None:
    pcm = np.array(values, dtype=np.int16)
    back = audio.float_to_int16(audio.int16_to_float(pcm))
    assert np.abs(back.astype(np.int32) - pcm).max(initial=0) <= 1


# --------------------------------------------------------------------------------------------
# G.711


def test_ulaw_bit_exact_with_audioop() -> None:
    audioop = load_audioop()
    pcm = audio.array_to_pcm16(ALL_INT16)
    assert audio.ulaw_encode(ALL_INT16) == audioop.lin2ulaw(pcm, 2)
    assert audio.ulaw_encode(pcm) == audioop.lin2ulaw(pcm, 2)
    assert audio.array_to_pcm16(audio.ulaw_decode(ALL_CODES)) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_bit_exact_with_audioop() -> None:
    audioop = load_audioop()
    pcm = audio.array_to_pcm16(ALL_INT16)
    assert audio.alaw_encode(ALL_INT16) == audioop.lin2alaw(pcm, 2)
    assert audio.alaw_encode(pcm) == audioop.lin2alaw(pcm, 2)
    assert audio.array_to_pcm16(audio.alaw_decode(ALL_CODES)) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("name", "output", "digest"),
    [
        ("lin2ulaw", lambda: audio.ulaw_encode(ALL_INT16), "81d633c9e6972a18"),
        ("lin2alaw", lambda: audio.alaw_encode(ALL_INT16), "38488f6fd710f468"),
        (
            "ulaw2lin",
            lambda: audio.array_to_pcm16(audio.ulaw_decode(ALL_CODES)),
            "3dab54339e520bb2",
        ),
        (
            "alaw2lin",
            lambda: audio.array_to_pcm16(audio.alaw_decode(ALL_CODES)),
            "e04788d110e58ff8",
        ),
    ],
)
def test_g711_tables_match_recorded_audioop_output(name: str, output: object, digest: str) -> None:
    """Same check without audioop: SHA-256 prefixes of audioop's output on Python 3.11."""
    assert callable(output)
    assert hashlib.sha256(output()).hexdigest()[:16] == digest, name


def test_g711_known_values() -> None:
    pcm = np.array([0, -1, 1, 32767, -32768, 1000, -1000], np.int16)
    assert audio.ulaw_encode(pcm).hex() == "ff7eff8000ce4e"
    assert audio.alaw_encode(pcm).hex() == "d555d5aa2afa7a"
    assert audio.ulaw_decode(bytes([0, 0x7F, 0x80, 0xFF, 0x55])).tolist() == [
        -32124,
        0,
        32124,
        0,
        -716,
    ]
    assert audio.alaw_decode(bytearray([0, 0x55, 0xD5, 0x2A, 0xAA])).tolist() == [
        -5504,
        -8,
        8,
        -32256,
        32256,
    ]


def test_g711_encode_inputs() -> None:
    pcm = tone(440, 8000, 160)
    expected = audio.ulaw_encode(pcm)
    assert audio.ulaw_encode(pcm.astype(">i2")) == expected
    assert audio.ulaw_encode(memoryview(audio.array_to_pcm16(pcm))) == expected
    assert audio.ulaw_encode(np.repeat(pcm, 2)[::2]) == expected  # non-contiguous
    assert audio.alaw_encode(b"") == b""
    assert audio.ulaw_decode(b"").dtype == np.int16
    with pytest.raises(TypeError, match="ulaw_encode expects int16 samples"):
        audio.ulaw_encode(as_any(pcm.astype(np.float32)))
    with pytest.raises(ValueError, match="even number"):
        audio.alaw_encode(b"\x00")


@pytest.mark.parametrize("decode", [audio.ulaw_decode, audio.alaw_decode])
def test_g711_decode_refuses_what_is_not_codes(decode: Any) -> None:
    # an int16 array's bytes are not G.711 codes (they would decode to twice the samples)
    pcm = np.array([1, 2, 3], dtype=np.int16)
    with pytest.raises(TypeError, match=r"expects G\.711 bytes or a uint8 array.*int16"):
        decode(pcm)
    with pytest.raises(TypeError, match="2-byte items"):
        decode(memoryview(pcm))
    for bad in (np.zeros(3, np.int8), np.zeros(3), "abc", [1, 2]):
        with pytest.raises(TypeError, match="G\\.711 bytes"):
            decode(bad)
    # codes as bytes, bytearray, memoryview (strided too) or uint8 array all decode alike
    codes = np.frombuffer(ALL_CODES, dtype=np.uint8)
    expected = decode(ALL_CODES)
    assert len(expected) == 256
    for data in (bytearray(ALL_CODES), memoryview(ALL_CODES), codes, codes.copy()):
        assert np.array_equal(decode(data), expected)
    assert np.array_equal(decode(memoryview(ALL_CODES)[::2]), expected[::2])
    assert np.array_equal(decode(codes[::2]), expected[::2])


def test_g711_decode_encode_is_stable() -> None:
    """Re-encoding a decoded code gives the code back (mu-law's -0 folds onto +0)."""
    ulaw = audio.ulaw_encode(audio.ulaw_decode(ALL_CODES))
    assert [i for i in range(256) if ulaw[i] != i] == [0x7F]
    assert audio.alaw_encode(audio.alaw_decode(ALL_CODES)) == ALL_CODES


# --------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("nbytes", "fmt", "rate", "ms"),
    [
        (48000, "audio/pcm", 24000, 1000.0),
        (960, "audio/pcm", 24000, 20.0),
        (960, "pcm16", 24000, 20.0),
        (640, "audio/pcm", 16000, 20.0),
        (3, "audio/pcm", 24000, 0.0625),
        (160, "audio/pcmu", 24000, 20.0),
        (160, "audio/pcma", 48000, 20.0),
        (8000, "g711_ulaw", 16000, 1000.0),
        (8000, "g711_alaw", 24000, 1000.0),
        (0, "audio/pcm", 24000, 0.0),
    ],
)
def test_duration_ms(nbytes: int, fmt: str, rate: int, ms: float) -> None:
    assert audio.duration_ms(nbytes, fmt, rate) == ms


def test_duration_defaults() -> None:
    assert audio.duration_ms(4800) == 100.0
    assert audio.bytes_for_ms(100) == 4800
    assert audio.bytes_for_ms(1000) == 48000  # 24 kHz exactly (100 ms hides a rate off by 1)


@pytest.mark.parametrize(
    ("ms", "fmt", "rate", "nbytes"),
    [
        (20, "audio/pcm", 24000, 960),
        (20, "audio/pcm", 8000, 320),
        (0.1, "audio/pcm", 24000, 4),  # 2.4 samples -> 2 whole samples
        (0.3, "audio/pcm", 8000, 4),
        (20, "audio/pcmu", 24000, 160),
        (20.1, "g711_alaw", 48000, 160),
        (20, "pcm16", 48000, 1920),
        (0, "audio/pcma", 8000, 0),
    ],
)
def test_bytes_for_ms(ms: float, fmt: str, rate: int, nbytes: int) -> None:
    assert audio.bytes_for_ms(ms, fmt, rate) == nbytes


#: Rates the duration helpers take: any positive integer (PCM; G.711 is always 8000 Hz). The
#: usual ones, the file rates whose durations are not exact decimals, and odd ones.
DURATION_RATES = st.one_of(
    st.sampled_from([*audio.SAMPLE_RATES, 11025, 22050, 44100, 88200, 96000, 176400, 192000]),
    st.integers(1, 4 * audio.MAX_RATE),
)
DURATION_FORMATS = ["audio/pcm", "audio/pcmu", "audio/pcma", "pcm16", "g711_ulaw", "g711_alaw"]


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(st.integers(0, 10**9), st.sampled_from(DURATION_FORMATS), DURATION_RATES)
def test_bytes_for_ms_inverts_duration_ms(samples: int, fmt: str, rate: int) -> None:
    width = 2 if fmt in ("audio/pcm", "pcm16") else 1
    nbytes = samples * width
    assert audio.bytes_for_ms(audio.duration_ms(nbytes, fmt, rate), fmt, rate) == nbytes


@pytest.mark.parametrize("rate", [11025, 22050, 44100, *audio.SAMPLE_RATES, 1, 3, 7, 192000])
def test_bytes_for_ms_inverts_duration_ms_for_every_length(rate: int) -> None:
    # 26 bytes at 44.1 kHz lasted 0.2947... ms, and that came back as 24 bytes
    bad = [
        nbytes
        for nbytes in range(0, 20_000, 2)
        if audio.bytes_for_ms(audio.duration_ms(nbytes, "audio/pcm", rate), "audio/pcm", rate)
        != nbytes
    ]
    assert bad == []


@SETTINGS
@given(
    st.floats(0, 10**7, allow_nan=False) | st.integers(0, 10**7),
    st.sampled_from(DURATION_FORMATS),
    DURATION_RATES,
)
def test_bytes_for_ms_is_the_most_whole_samples_that_fit(ms: float, fmt: str, rate: int) -> None:
    width = 2 if fmt in ("audio/pcm", "pcm16") else 1
    nbytes = audio.bytes_for_ms(ms, fmt, rate)
    assert nbytes % width == 0
    assert audio.duration_ms(nbytes, fmt, rate) <= ms < audio.duration_ms(nbytes + width, fmt, rate)


def test_durations_reject_unknown_formats() -> None:
    with pytest.raises(ValueError, match=r"unknown audio format 'audio/opus'.*'audio/pcm'"):
        audio.duration_ms(10, "audio/opus")
    with pytest.raises(ValueError, match="'g711'"):
        audio.bytes_for_ms(10, "g711")


@pytest.mark.parametrize("rate", [0, -8000, 16000.0, True, None])
def test_durations_reject_bad_pcm_rates(rate: object) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        audio.duration_ms(10, "audio/pcm", rate)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive integer"):
        audio.bytes_for_ms(10, "audio/pcm", rate)  # type: ignore[arg-type]


def test_durations_reject_bad_amounts() -> None:
    with pytest.raises(ValueError, match="nbytes"):
        audio.duration_ms(-1)
    for ms in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="ms must be"):
            audio.bytes_for_ms(ms)


# --------------------------------------------------------------------------------------------
# Resampler: API and validation


@pytest.mark.parametrize(
    ("from_rate", "to_rate"),
    [(4000, 16000), (24000, 384000), (0, 8000), (7999, 8000), (192001, 8000)],
)
def test_resampler_rejects_unsupported_rates(from_rate: int, to_rate: int) -> None:
    with pytest.raises(ValueError, match="8000, 16000, 24000, 48000"):
        audio.Resampler(from_rate, to_rate)
    with pytest.raises(ValueError, match="8000, 16000, 24000, 48000"):
        audio.resample(np.zeros(4, np.int16), from_rate, to_rate)


def test_resampler_rate_range_is_8000_to_192000_inclusive() -> None:
    assert audio.resample(np.zeros(192, np.int16), 192000, 8000).size == 8
    assert audio.resample(np.zeros(8, np.int16), 8000, 192000).size == 192


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_an_output_is_emitted_as_soon_as_its_window_is_in(from_rate: int, to_rate: int) -> None:
    """process() returns every output whose filter window the input already covers, no more:
    output k is centred on input time k / to_rate and needs half the filter after it."""
    resampler = audio.Resampler(from_rate, to_rate)
    lcm = math.lcm(from_rate, to_rate)
    up, down, half = lcm // from_rate, lcm // to_rate, (resampler.num_taps - 1) // 2
    fed = emitted = 0
    for size in (1, 7, 160, 333, 4800):
        emitted += resampler.process(np.zeros(size, np.int16)).size
        fed += size
        last_input = fed * up - 1  # at the filter's rate
        if emitted:  # the last output emitted had its window in ...
            assert (emitted - 1) * down + half <= last_input
        assert last_input < emitted * down + half  # ... and the next one has not


@pytest.mark.parametrize("rate", [24000.0, True, "24000"])
def test_resampler_rejects_non_int_rates(rate: object) -> None:
    with pytest.raises(ValueError, match="to_rate must be an integer rate"):
        audio.Resampler(16000, rate)  # type: ignore[arg-type]


@pytest.mark.parametrize(("from_rate", "to_rate"), [(22050, 24000), (44100, 24000), (24000, 44100)])
def test_resampler_other_file_rates(from_rate: int, to_rate: int) -> None:
    """Common file rates work too: a 1 kHz tone comes out within 2 LSB of the ideal one."""
    n = from_rate // 2
    tone = np.round(10000 * np.sin(2 * np.pi * 1000 * np.arange(n) / from_rate)).astype(np.int16)
    out = audio.resample(tone, from_rate, to_rate)
    assert len(out) == round(n * to_rate / from_rate)
    ideal = 10000 * np.sin(2 * np.pi * 1000 * np.arange(len(out)) / to_rate)
    assert np.abs(out[200:-200] - ideal[200:-200]).max() <= 2


@pytest.mark.parametrize("to_rate", [16000, 24000])
def test_resampler_rejects_bad_samples(to_rate: int) -> None:
    resampler = audio.Resampler(24000, to_rate)
    with pytest.raises(TypeError, match=r"int16 samples, got dtype float32.*float_to_int16"):
        resampler.process(as_any(np.zeros(10, np.float32)))
    with pytest.raises(TypeError, match="got list"):
        resampler.process([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mono 1-D samples, got shape \(2, 5\)"):
        resampler.process(np.zeros((2, 5), np.int16))
    with pytest.raises(ValueError, match="even number"):
        resampler.process(b"\x00\x00\x00")


def test_same_rate_is_a_pass_through_copy() -> None:
    resampler = audio.Resampler(24000, 24000)
    assert resampler.num_taps == 0
    signal = noise(480)
    out = resampler.process(signal)
    assert out.dtype == np.int16
    assert np.array_equal(out, signal)
    assert not np.shares_memory(out, signal)
    assert resampler.process(audio.array_to_pcm16(signal[:3])).tolist() == signal[:3].tolist()
    assert resampler.flush().size == 0
    assert np.array_equal(audio.resample(signal.astype(">i2"), 8000, 8000), signal)


def test_attributes() -> None:
    resampler = audio.Resampler(24000, 16000)
    assert (resampler.from_rate, resampler.to_rate) == (24000, 16000)
    assert resampler.num_taps % 2 == 1


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_output_length_is_rounded_ratio(from_rate: int, to_rate: int) -> None:
    for n in (0, 1, 2, 3, 4, 5, 7, 9, 160, 333, 1001):
        out = audio.resample(noise(n), from_rate, to_rate)
        assert out.dtype == np.int16
        assert out.size == round(n * to_rate / from_rate), n


def test_flush_without_input_and_twice() -> None:
    resampler = audio.Resampler(48000, 8000)
    assert resampler.flush().size == 0
    resampler.process(noise(100))
    assert resampler.flush().size == round(100 / 6)
    assert resampler.flush().size == 0


def test_tiny_and_empty_chunks_emit_nothing_until_ready() -> None:
    resampler = audio.Resampler(8000, 48000)
    assert resampler.process(np.zeros(0, np.int16)).size == 0
    assert resampler.process(np.ones(1, np.int16)).size == 0  # still inside the filter delay


@pytest.mark.parametrize(("from_rate", "to_rate"), [(24000, 16000), (8000, 24000)])
def test_flush_and_reset_start_a_new_stream(from_rate: int, to_rate: int) -> None:
    signal = noise(2000, seed=3)
    expected = audio.resample(signal, from_rate, to_rate)
    resampler = audio.Resampler(from_rate, to_rate)
    assert np.array_equal(stream(resampler, signal, [480]), expected)
    assert np.array_equal(stream(resampler, signal, [480]), expected)  # flush reset it
    resampler.process(noise(777, seed=4))
    resampler.reset()
    assert np.array_equal(stream(resampler, signal, [480]), expected)


def test_bytes_and_big_endian_input_match_arrays() -> None:
    signal = noise(960, seed=5)
    expected = audio.resample(signal, 24000, 16000)
    assert np.array_equal(audio.resample(audio.array_to_pcm16(signal), 24000, 16000), expected)
    assert np.array_equal(audio.resample(signal.astype(">i2"), 24000, 16000), expected)


# --------------------------------------------------------------------------------------------
# Resampler: streaming equivalence


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_20ms_frames_equal_one_shot(from_rate: int, to_rate: int) -> None:
    signal = noise(from_rate // 2, seed=from_rate + to_rate)  # 0.5 s of full-scale noise
    expected = audio.resample(signal, from_rate, to_rate)
    got = stream(audio.Resampler(from_rate, to_rate), signal, [from_rate // 50])
    assert np.array_equal(got, expected)  # bit-identical, not merely within 1 LSB


@SETTINGS
@given(
    pair=st.sampled_from(PAIRS),
    sizes=st.lists(st.sampled_from([1, 7, 333]) | st.integers(0, 2000), min_size=1, max_size=6),
    length=st.integers(0, 3000),
    seed=st.integers(0, 2**32 - 1),
)
def test_odd_chunks_equal_one_shot(
    pair: tuple[int, int], sizes: list[int], length: int, seed: int
) -> None:
    if not any(sizes):
        sizes = [*sizes, 1]
    from_rate, to_rate = pair
    signal = noise(length, seed)
    expected = audio.resample(signal, from_rate, to_rate)
    got = stream(audio.Resampler(from_rate, to_rate), signal, sizes)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(48000, 8000), (8000, 16000)])
@pytest.mark.parametrize("size", [1, 7, 333])
def test_fixed_odd_chunks_equal_one_shot(from_rate: int, to_rate: int, size: int) -> None:
    signal = noise(from_rate // 10, seed=size)
    expected = audio.resample(signal, from_rate, to_rate)
    assert np.array_equal(stream(audio.Resampler(from_rate, to_rate), signal, [size]), expected)


# --------------------------------------------------------------------------------------------
# Resampler: signal quality


def steady(x: npt.NDArray[Any], resampler: audio.Resampler) -> npt.NDArray[Any]:
    """``x`` without the filter's warm-up at the start and its ring-down at the end."""
    # One whole filter length, in output samples (the filter runs at the lcm of the rates).
    skip = -(
        -resampler.num_taps * resampler.to_rate // math.lcm(resampler.from_rate, resampler.to_rate)
    )
    return x[skip : x.size - skip]


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "freq"),
    [
        (48000, 8000, 6000),
        (24000, 16000, 10000),
        (24000, 8000, 5000),
        (16000, 8000, 4500),
        (48000, 16000, 9000),
        (48000, 24000, 13000),
        (48000, 8000, 4100),
    ],
)
def test_tones_above_target_nyquist_are_attenuated_60db(
    from_rate: int, to_rate: int, freq: int
) -> None:
    resampler = audio.Resampler(from_rate, to_rate)
    n = from_rate // 2
    passed = steady(audio.resample(tone(1000, from_rate, n), from_rate, to_rate), resampler)
    aliased = steady(audio.resample(tone(freq, from_rate, n), from_rate, to_rate), resampler)
    assert rms(aliased) <= rms(passed) * 10 ** (-60 / 20)


@pytest.mark.parametrize(
    ("from_rate", "to_rate", "freq"),
    [(8000, 24000, 3000), (8000, 48000, 3400), (16000, 24000, 6500), (24000, 48000, 10000)],
)
def test_upsampling_images_are_attenuated_60db(from_rate: int, to_rate: int, freq: int) -> None:
    resampler = audio.Resampler(from_rate, to_rate)
    out = steady(audio.resample(tone(freq, from_rate, from_rate), from_rate, to_rate), resampler)
    spectrum = np.abs(np.fft.rfft(out * np.kaiser(out.size, 20.0))) ** 2
    freqs = np.fft.rfftfreq(out.size, 1 / to_rate)
    image_db = 10 * math.log10(spectrum[freqs > from_rate / 2].sum() / spectrum.sum())
    assert image_db < -60


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_the_documented_response_flat_to_085_and_80db_down_past_nyquist(
    from_rate: int, to_rate: int
) -> None:
    """The class docstring's promise, measured at its edges: a tone at 0.85 of the lower
    Nyquist frequency passes within 0.01 dB; one just past it (downsampling), or the image of
    the 0.85 tone (upsampling), is about 80 dB down."""
    resampler = audio.Resampler(from_rate, to_rate)
    nyquist = min(from_rate, to_rate) / 2
    edge = tone(0.85 * nyquist, from_rate, from_rate // 2)
    out = steady(audio.resample(edge, from_rate, to_rate), resampler)
    assert abs(20 * math.log10(rms(out) / rms(edge))) < 0.01
    if to_rate < from_rate:
        past = tone(1.02 * nyquist, from_rate, from_rate // 2)
        leaked = rms(steady(audio.resample(past, from_rate, to_rate), resampler)) / rms(past)
    else:
        spectrum = np.abs(np.fft.rfft(out * np.kaiser(out.size, 20.0))) ** 2
        freqs = np.fft.rfftfreq(out.size, 1 / to_rate)
        leaked = math.sqrt(spectrum[freqs > nyquist].sum() / spectrum.sum())
    assert 20 * math.log10(leaked) < -78


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_passband_tone_preserved_within_half_a_db(from_rate: int, to_rate: int) -> None:
    resampler = audio.Resampler(from_rate, to_rate)
    signal = tone(1000, from_rate, from_rate // 2)
    out = steady(audio.resample(signal, from_rate, to_rate), resampler)
    gain_db = 20 * math.log10(rms(out) / rms(signal))
    assert abs(gain_db) < 0.5


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_output_is_time_aligned(from_rate: int, to_rate: int) -> None:
    # An impulse at 10 ms comes out at 10 ms.
    impulse = np.zeros(from_rate // 20, np.int16)
    impulse[from_rate // 100] = 32767
    out = audio.resample(impulse, from_rate, to_rate)
    assert int(np.argmax(out)) == to_rate // 100
    # A 1 kHz tone keeps its phase: the output is the same sine sampled at the new rate. One
    # output sample of misalignment would be an error of at least 2*pi*1000/48000*A (13% of A).
    amp = 16000.0
    resampler = audio.Resampler(from_rate, to_rate)
    out = audio.resample(tone(1000, from_rate, from_rate // 4, amp), from_rate, to_rate)
    ideal = amp * np.sin(2 * np.pi * 1000 * np.arange(out.size) / to_rate)
    assert np.abs(steady(out, resampler) - steady(ideal, resampler)).max() < 0.001 * amp


@pytest.mark.parametrize(("from_rate", "to_rate"), PAIRS)
def test_constant_in_constant_out(from_rate: int, to_rate: int) -> None:
    resampler = audio.Resampler(from_rate, to_rate)
    out = steady(
        audio.resample(np.full(from_rate // 10, -1234, np.int16), from_rate, to_rate), resampler
    )
    assert out.size > 0
    assert np.all(out == -1234)


@pytest.mark.parametrize(("from_rate", "to_rate"), [(24000, 16000), (8000, 48000), (48000, 8000)])
def test_full_scale_square_wave_clips_instead_of_wrapping(from_rate: int, to_rate: int) -> None:
    period = from_rate // 500  # 500 Hz
    square = np.where(np.arange(from_rate // 4) % period < period // 2, 32767, -32768)
    out = audio.resample(square.astype(np.int16), from_rate, to_rate)
    assert out.max() == 32767 and out.min() == -32768  # the Gibbs overshoot was clipped
    # Away from the edges the output keeps the input's sign: wraparound would flip it.
    t = np.arange(out.size) * from_rate / to_rate
    phase = (t % period) / period
    plateau_high = (phase > 0.1) & (phase < 0.4)
    plateau_low = (phase > 0.6) & (phase < 0.9)
    assert np.all(out[plateau_high] > 20000)
    assert np.all(out[plateau_low] < -20000)


# --------------------------------------------------------------------------------------------
# Base64


def test_encode_base64_inputs() -> None:
    pcm = np.array([1, -2, 300], np.int16)
    expected = "AQD+/ywB"
    assert audio.encode_base64(audio.array_to_pcm16(pcm)) == expected
    assert audio.encode_base64(bytearray(audio.array_to_pcm16(pcm))) == expected
    assert audio.encode_base64(memoryview(audio.array_to_pcm16(pcm))) == expected
    assert audio.encode_base64(pcm) == expected
    assert audio.encode_base64(pcm.astype(">i2")) == expected
    assert audio.encode_base64(np.repeat(pcm, 2)[::2]) == expected
    assert audio.encode_base64(b"") == ""
    with pytest.raises(TypeError, match="encode_base64 expects int16"):
        audio.encode_base64(as_any(np.zeros(3, np.float64)))


def test_decode_base64() -> None:
    assert audio.decode_base64("AQD+/ywB") == b"\x01\x00\xfe\xff\x2c\x01"
    assert audio.decode_base64(b"AQD+/ywB") == b"\x01\x00\xfe\xff\x2c\x01"
    assert audio.decode_base64("") == b""


@pytest.mark.parametrize(
    "bad", ["AQD", "AQD+/ywB\n", "AQD+ /ywB", "AQD-_ywB", "AQ==AQ==", "é", b"\xff"]
)
def test_decode_base64_is_strict(bad: str | bytes) -> None:
    with pytest.raises(ValueError, match="invalid base64"):
        audio.decode_base64(bad)


@SETTINGS
@given(st.binary(max_size=300))
def test_base64_round_trip(data: bytes) -> None:
    assert audio.decode_base64(audio.encode_base64(data)) == data
