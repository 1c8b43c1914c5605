"""Audio helpers: PCM16 views, G.711 codecs, durations, resampling and base64.

Everything here is pure computation on numpy arrays and bytes (no I/O, no clocks). PCM16 means
signed 16-bit little-endian mono, the Realtime API's ``audio/pcm`` format; ``audio/pcmu`` and
``audio/pcma`` are G.711 mu-law and A-law at 8 kHz, one byte per sample.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from pybase64 import b64encode_as_string as _b64encode_as_string

from ._b64 import decode_base64

__all__ = [
    "SAMPLE_RATES",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "array_to_pcm16",
    "bytes_for_ms",
    "decode_base64",
    "duration_ms",
    "encode_base64",
    "float_to_int16",
    "int16_to_float",
    "pcm16_to_array",
    "resample",
    "ulaw_decode",
    "ulaw_encode",
]

#: The sample rates :class:`Resampler` converts between.
SAMPLE_RATES: Final = (8000, 16000, 24000, 48000)
#: Other integer rates in this range (44.1 kHz, 22.05 kHz files...) are accepted as well; the
#: quality figures are tested for the pairs of :data:`SAMPLE_RATES`.
MIN_RATE: Final = 8000
MAX_RATE: Final = 192000

Int16Array = npt.NDArray[np.int16]
#: What the PCM16 functions accept: an int16 array (any byte order) or little-endian bytes.
PCM16Like = bytes | bytearray | memoryview | npt.NDArray[np.int16]

_PCM16_LE: Final = np.dtype("<i2")


# --------------------------------------------------------------------------------------------
# PCM16 <-> numpy


def pcm16_to_array(data: bytes | bytearray | memoryview) -> Int16Array:
    """View PCM16 little-endian bytes as an int16 array (no copy; read-only for ``bytes``).

    Raises ``ValueError`` when the byte length is odd or the buffer is not contiguous (a
    strided ``memoryview``: copy it with ``bytes()`` first).
    """
    view = memoryview(data)
    nbytes = view.nbytes
    if nbytes % 2:
        raise ValueError(f"PCM16 data must have an even number of bytes, got {nbytes}")
    if not view.c_contiguous:
        raise ValueError("PCM16 data must be a contiguous buffer, got a strided memoryview")
    return np.frombuffer(data, dtype=_PCM16_LE)


def _check_int16(samples: object, what: str) -> Int16Array:
    if not isinstance(samples, np.ndarray):
        raise TypeError(
            f"{what} expects an int16 numpy array or PCM16 bytes, got {type(samples).__name__}"
        )
    if samples.dtype.kind != "i" or samples.dtype.itemsize != 2:
        raise TypeError(
            f"{what} expects int16 samples, got dtype {samples.dtype}"
            " (convert floats with float_to_int16())"
        )
    return samples


def _as_int16(samples: PCM16Like, what: str) -> Int16Array:
    """Native-endian int16 samples from an int16 array or PCM16 bytes (no copy when possible)."""
    if isinstance(samples, (bytes, bytearray, memoryview)):
        arr = pcm16_to_array(samples)
    else:
        arr = _check_int16(samples, what)
    return arr.astype(np.int16, copy=False)


def array_to_pcm16(samples: npt.NDArray[np.int16]) -> bytes:
    """Serialise an int16 array (any byte order or shape, C order) to PCM16 little-endian bytes."""
    arr = _check_int16(samples, "array_to_pcm16")
    return arr.astype(_PCM16_LE, copy=False).tobytes()


def float_to_int16(samples: npt.ArrayLike) -> Int16Array:
    """Convert float samples in [-1, 1] to int16: clipped, scaled by 32767, rounded (NaN -> 0).

    An int16 array already holds samples: it is returned unchanged (as a new native-order
    int16 array), not read as amplitudes in [-1, 1]. Other integers are amplitudes.
    """
    arr = np.asarray(samples)
    if arr.dtype.kind == "i" and arr.dtype.itemsize == 2:
        return arr.astype(np.int16, copy=True)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"float_to_int16 expects float samples, got dtype {arr.dtype}")
    scaled = np.clip(np.nan_to_num(arr.astype(np.float64), nan=0.0), -1.0, 1.0) * 32767.0
    return np.rint(scaled).astype(np.int16)


def int16_to_float(samples: PCM16Like) -> npt.NDArray[np.float32]:
    """Convert int16 samples (array or PCM16 bytes) to float32 in [-1, 1), divided by 32768."""
    out: npt.NDArray[np.float32] = _as_int16(samples, "int16_to_float").astype(np.float32)
    out *= np.float32(1.0 / 32768.0)
    return out


# --------------------------------------------------------------------------------------------
# G.711 (ITU-T), bit-exact with CPython's audioop (width 2)

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159
_ULAW_SEG_END: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEG_END: Final = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _all_int16() -> npt.NDArray[np.int64]:
    """Every int16 value, ordered by its uint16 bit pattern (the encode tables' index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_int16() >> 2  # 14-bit linear
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag, side="left")  # first segment with mag <= end
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0xF))
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> Int16Array:
    u = ~np.arange(256, dtype=np.int64) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_int16() >> 3  # 13-bit linear
    neg = pcm < 0
    mask = np.where(neg, 0x55, 0xD5)
    mag = np.where(neg, -pcm - 1, pcm)
    seg = np.searchsorted(_ALAW_SEG_END, mag, side="left")
    quant = np.where(seg < 2, mag >> 1, mag >> seg) & 0xF
    code = np.where(seg >= 8, 0x7F, (seg << 4) | quant)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    a = np.arange(256, dtype=np.int64) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _frozen(table: npt.NDArray[np.generic]) -> None:
    table.flags.writeable = False


_ULAW_ENCODE: Final = _build_ulaw_encode()
_ULAW_DECODE: Final = _build_ulaw_decode()
_ALAW_ENCODE: Final = _build_alaw_encode()
_ALAW_DECODE: Final = _build_alaw_decode()
for _table in (_ULAW_ENCODE, _ULAW_DECODE, _ALAW_ENCODE, _ALAW_DECODE):
    _frozen(_table)


def _g711_encode(table: npt.NDArray[np.uint8], pcm: PCM16Like, what: str) -> bytes:
    index = _as_int16(pcm, what).view(np.uint16)
    return table.take(index).tobytes()


def _g711_decode(
    table: Int16Array, data: bytes | bytearray | memoryview | npt.NDArray[np.uint8], what: str
) -> Int16Array:
    if type(data) is bytes:  # the common case
        return table.take(np.frombuffer(data, dtype=np.uint8))
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise TypeError(
                f"{what} expects G.711 bytes or a uint8 array (one byte per sample),"
                f" got dtype {data.dtype}"
            )
        return table.take(data)
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"{what} expects G.711 bytes or a uint8 array, got {type(data).__name__}"
        ) from None
    if view.itemsize != 1:
        raise TypeError(
            f"{what} expects G.711 bytes or a uint8 array (one byte per sample),"
            f" got a buffer of {view.itemsize}-byte items (format {view.format!r})"
        )
    return table.take(np.asarray(view).view(np.uint8))


def ulaw_encode(pcm: PCM16Like) -> bytes:
    """Encode int16 samples (array or PCM16 bytes) to G.711 mu-law, one byte per sample."""
    return _g711_encode(_ULAW_ENCODE, pcm, "ulaw_encode")


def ulaw_decode(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Int16Array:
    """Decode G.711 mu-law bytes (or a uint8 array) to int16 samples.

    Raises ``TypeError`` for anything else, an int16 array included (its bytes are not codes).
    """
    return _g711_decode(_ULAW_DECODE, data, "ulaw_decode")


def alaw_encode(pcm: PCM16Like) -> bytes:
    """Encode int16 samples (array or PCM16 bytes) to G.711 A-law, one byte per sample."""
    return _g711_encode(_ALAW_ENCODE, pcm, "alaw_encode")


def alaw_decode(data: bytes | bytearray | memoryview | npt.NDArray[np.uint8]) -> Int16Array:
    """Decode G.711 A-law bytes (or a uint8 array) to int16 samples.

    Raises ``TypeError`` for anything else, an int16 array included (its bytes are not codes).
    """
    return _g711_decode(_ALAW_DECODE, data, "alaw_decode")


# --------------------------------------------------------------------------------------------
# Durations

#: Bytes per sample by format name; G.711 formats always run at 8000 Hz.
_BYTES_PER_SAMPLE: Final = {
    "audio/pcm": 2,
    "audio/pcmu": 1,
    "audio/pcma": 1,
    "pcm16": 2,
    "g711_ulaw": 1,
    "g711_alaw": 1,
}


def _format_params(fmt: str, rate: int) -> tuple[int, int]:
    """(bytes per sample, sample rate) of an audio format name."""
    width = _BYTES_PER_SAMPLE.get(fmt)
    if width is None:
        known = ", ".join(repr(name) for name in _BYTES_PER_SAMPLE)
        raise ValueError(f"unknown audio format {fmt!r}; expected one of {known}")
    if width == 1:
        return 1, 8000
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {rate!r}")
    return width, rate


def duration_ms(nbytes: int, fmt: str = "audio/pcm", rate: int = 24000) -> float:
    """Duration in milliseconds of ``nbytes`` of audio in format ``fmt`` at ``rate`` Hz.

    G.711 formats (``audio/pcmu``, ``audio/pcma``) are always 8000 Hz and ignore ``rate``.
    """
    width, hz = _format_params(fmt, rate)
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    return _duration(nbytes, width, hz)


def _duration(nbytes: int, width: int, hz: int) -> float:
    return nbytes * 1000.0 / (width * hz)


def bytes_for_ms(ms: float, fmt: str = "audio/pcm", rate: int = 24000) -> int:
    """Number of bytes holding ``ms`` milliseconds of audio, rounded down to whole samples.

    The inverse of :func:`duration_ms`: the most whole samples whose ``duration_ms`` is at
    most ``ms``, so ``bytes_for_ms(duration_ms(n)) == n`` for every whole-sample ``n``, at
    every rate. Computed on the exact value of ``ms`` (integer arithmetic, no rounding).
    """
    width, hz = _format_params(fmt, rate)
    if not (math.isfinite(ms) and ms >= 0):
        raise ValueError(f"ms must be a finite number >= 0, got {ms!r}")
    num, den = (ms, 1) if isinstance(ms, int) else float(ms).as_integer_ratio()
    samples = num * hz // (den * 1000)  # floor(ms * hz / 1000), exactly
    # duration_ms rounds to the nearest float, maybe down to ms: then that sample counts too
    if _duration((samples + 1) * width, width, hz) <= ms:
        samples += 1
    return samples * width


# --------------------------------------------------------------------------------------------
# Resampling
#
# Polyphase FIR: upsample by L (zero stuffing), low-pass with a Kaiser-windowed sinc of odd length
# N at rate from*L, downsample by M, and read the output (N-1)/2 samples late at the upsampled
# rate so that it lines up with the input (linear phase). The stopband starts at the lower of the
# two Nyquist frequencies, so nothing that would alias (or image) survives above _STOPBAND_DB.
#
# Coefficients are rounded to multiples of 2**-_COEF_BITS. With int16 inputs every product and
# every partial sum is then exactly representable in float64, so the filter output is exact
# whatever order BLAS sums in: chunked and one-shot processing give bit-identical results.

_STOPBAND_DB: Final = 80.0
#: Kaiser's formula for the window parameter that reaches _STOPBAND_DB.
_KAISER_BETA: Final = 0.1102 * (_STOPBAND_DB - 8.7)
#: Transition band width as a fraction of the lower Nyquist frequency (passband edge 0.85).
_TRANSITION: Final = 0.15
_COEF_BITS: Final = 32
#: Upper bound on the size of one window matrix, in float64 elements (bounds memory).
_MAX_WINDOW_ELEMENTS: Final = 1 << 18


class _Design(NamedTuple):
    up: int  # L
    down: int  # M
    num_taps: int  # N, odd
    delay: int  # (N - 1) // 2, in samples at from_rate * L
    offset: int  # first input index (<= 0) under output 0's window
    width: int  # input samples under the window of one group of L consecutive outputs
    filters: npt.NDArray[np.float64]  # (width, L): column r computes output j*L + r


def _check_rate(rate: object, name: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        supported = ", ".join(str(r) for r in SAMPLE_RATES)
        raise ValueError(
            f"{name} must be an integer rate from {MIN_RATE} to {MAX_RATE} Hz"
            f" (usually {supported}), got {rate!r}"
        )
    return rate


@cache
def _design(from_rate: int, to_rate: int) -> _Design:
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    fs = from_rate * up
    nyquist = min(from_rate, to_rate) / 2
    transition = _TRANSITION * nyquist
    cutoff = nyquist - transition / 2  # the sinc's -6 dB point, mid transition band
    # Kaiser's length estimate for the attenuation and transition width; odd for integer delay.
    n = math.ceil((_STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * transition / fs)) + 1
    n += 1 - n % 2
    t = np.arange(n) - (n - 1) / 2
    h = (2 * cutoff / fs) * np.sinc((2 * cutoff / fs) * t) * np.kaiser(n, _KAISER_BETA)

    taps = -(-n // up)  # taps per phase
    padded = np.zeros(taps * up)
    padded[:n] = h
    phases = padded.reshape(taps, up).T.copy()  # phases[p, t] = h[p + t*up]
    # Quantise; give every phase a DC gain of exactly 1 (constant in, constant out).
    scale = float(1 << _COEF_BITS)
    quant = np.rint(phases / phases.sum(axis=1, keepdims=True) * scale)
    rows = np.arange(up)
    quant[rows, np.argmax(quant, axis=1)] += scale - quant.sum(axis=1)

    delay = (n - 1) // 2
    # Output k = j*up + r reads inputs [j*down + start[r], ... + taps) with phase[r] reversed.
    start = [(r * down + delay) // up - taps + 1 for r in range(up)]
    phase = [(r * down + delay) % up for r in range(up)]
    offset = start[0]
    width = start[-1] - offset + taps
    filters = np.zeros((width, up))
    for r in range(up):
        lo = start[r] - offset
        filters[lo : lo + taps, r] = quant[phase[r], ::-1] / scale
    filters.flags.writeable = False
    # The buffer bookkeeping in Resampler relies on these.
    assert offset <= 0 and taps > -(-down // up)
    return _Design(up, down, n, delay, offset, width, filters)


def _round_ratio(num: int, den: int) -> int:
    """round(num / den) with Python's round-half-to-even, in exact integer arithmetic."""
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2):
        q += 1
    return q


def _to_int16(values: npt.NDArray[np.float64]) -> Int16Array:
    np.rint(values, out=values)
    np.clip(values, -32768.0, 32767.0, out=values)
    return values.astype(np.int16)


class Resampler:
    """Streaming polyphase FIR resampler between two rates (usually of :data:`SAMPLE_RATES`).

    Feed int16 chunks of any size to :meth:`process`; call :meth:`flush` at the end of the stream
    for the tail the filter still holds. Output is time-aligned with the input (the filter's
    group delay is compensated) and, over a whole stream, ``round(len(input) * to / from)``
    samples long. Chunking never changes the output: it is bit-identical to :func:`resample`.
    Converting a rate to itself is a pass-through copy.

    The filter is a Kaiser-windowed sinc (beta 7.86): flat to 0.85 of the lower Nyquist
    frequency (ripple < 0.001 dB), about 80 dB down from that Nyquist frequency on. It holds back
    half the filter, 1.4 to 4.2 ms of audio depending on the rates, until later input or
    :meth:`flush` releases it.
    """

    __slots__ = ("_buf", "_design", "_n_in", "_n_out", "from_rate", "to_rate")

    def __init__(self, from_rate: int, to_rate: int) -> None:
        """Convert ``from_rate`` Hz to ``to_rate`` Hz; ``ValueError`` if either is unsupported."""
        self.from_rate: Final = _check_rate(from_rate, "from_rate")
        self.to_rate: Final = _check_rate(to_rate, "to_rate")
        self._design = None if from_rate == to_rate else _design(from_rate, to_rate)
        self._buf: npt.NDArray[np.float64] = np.zeros(0)
        self._n_in = 0
        self._n_out = 0
        self.reset()

    @property
    def num_taps(self) -> int:
        """Length of the prototype low-pass filter (0 for a pass-through)."""
        return 0 if self._design is None else self._design.num_taps

    def reset(self) -> None:
        """Forget all buffered input and start a new stream."""
        self._n_in = 0
        self._n_out = 0
        self._buf = np.zeros(0 if self._design is None else -self._design.offset)

    def process(self, samples: PCM16Like) -> Int16Array:
        """Resample a chunk of int16 samples (1-D array or PCM16 bytes); returns what is ready."""
        x = _as_int16(samples, "Resampler.process")
        if x.ndim != 1:
            raise ValueError(f"Resampler.process expects mono 1-D samples, got shape {x.shape}")
        design = self._design
        if design is None:
            return np.array(x, copy=True)
        self._n_in += x.size
        data = np.concatenate((self._buf, x), dtype=np.float64)
        ready = (self._n_in * design.up - 1 - design.delay) // design.down + 1
        return self._emit(design, data, ready)

    def flush(self) -> Int16Array:
        """End the stream: return the remaining output (input padded with silence), then reset."""
        design = self._design
        if design is None:
            return np.zeros(0, dtype=np.int16)
        total = _round_ratio(self._n_in * design.up, design.down)
        out = self._emit(design, self._buf, total)
        self.reset()
        return out

    def _emit(self, design: _Design, data: npt.NDArray[np.float64], end: int) -> Int16Array:
        """Compute outputs ``_n_out .. end - 1``; ``data`` starts at the current group's window."""
        n_out = self._n_out
        if end <= n_out:
            self._buf = data
            return np.zeros(0, dtype=np.int16)
        up, down, width = design.up, design.down, design.width
        first = n_out // up  # first group (of `up` outputs) to compute
        groups = -(-end // up) - first
        need = (groups - 1) * down + width
        work = data
        if work.size < need:  # the last group runs past the input: pad with silence
            work = np.concatenate((data, np.zeros(need - data.size)))
        step = max(1, _MAX_WINDOW_ELEMENTS // width)
        pieces = []
        for g in range(0, groups, step):
            count = min(step, groups - g)
            windows: npt.NDArray[np.float64] = np.ndarray(
                (count, width),
                dtype=np.float64,
                buffer=work,
                offset=g * down * work.itemsize,
                strides=(down * work.itemsize, work.itemsize),
            )
            pieces.append(np.dot(windows, design.filters).reshape(-1))
        y = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        skip = n_out - first * up
        out = _to_int16(y[skip : skip + end - n_out])
        self._n_out = end
        self._buf = data[(end // up - first) * down :].copy()
        return out


def resample(samples: PCM16Like, from_rate: int, to_rate: int) -> Int16Array:
    """Resample a whole signal at once: one :class:`Resampler` fed everything, then flushed."""
    resampler = Resampler(from_rate, to_rate)
    head = resampler.process(samples)
    tail = resampler.flush()
    return np.concatenate((head, tail)) if tail.size else head


# --------------------------------------------------------------------------------------------
# Base64


def encode_base64(data: bytes | bytearray | memoryview | npt.NDArray[np.int16]) -> str:
    """Base64-encode bytes or int16 samples (as PCM16 little-endian, without a copy if possible)."""
    if isinstance(data, np.ndarray):
        if data.dtype is _PCM16_LE:
            try:
                return _b64encode_as_string(data.data)  # read in place
            except BufferError:  # not C-contiguous
                pass
        arr = _check_int16(data, "encode_base64")
        return _b64encode_as_string(arr.astype(_PCM16_LE, copy=False).tobytes())
    return _b64encode_as_string(data)
