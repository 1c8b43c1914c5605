"""Fuzz harness for the rtproto event codec (atheris / libFuzzer).

The contract under test, for ANY input (``bytes`` or ``str``), in both directions
(``parse_server_event`` / ``parse_client_event``) and both dialects (GA / beta):

* parsing returns an event (typed, ``UnknownEvent`` or ``InvalidEvent``) or raises
  ``RemoteProtocolError``; any other exception is a bug;
* a typed event serialises back, in the dialect it arrived in, to exactly the text it came from
  (input that is not UTF-8 cannot come back: then to text that parses to an equal event);
  serialising it into the other dialect raises nothing, and that output obeys this same
  contract when parsed in the other dialect; ``event_raw`` returns a ``dict``;
* so does an ``UnknownEvent`` or ``InvalidEvent`` (its input is always UTF-8: exactly);
* decoding audio (``ResponseOutputAudioDelta.audio`` / ``.pcm``,
  ``InputAudioBufferAppend.audio_bytes``) raises nothing but ``RemoteProtocolError``;
* a message longer than ``max_size`` (in bytes, of a ``str``'s UTF-8 too) is refused with
  ``RemoteProtocolError``, in every form and direction;
* ``rtproto.codec.server_parser`` (options bound once) returns the same as the plain call;
* ``rtproto.salvage`` of a server ``InvalidEvent`` raises nothing and gives ``None`` or the
  same event type, whose ``event_raw`` is still what arrived.

Each input is tried as ``bytes``, as a ``memoryview``, as ``str`` when it is UTF-8, and as a
``str`` holding lone surrogates when it is UTF-8 apart from encoded surrogates
(``surrogatepass``).

Usage::

    python fuzz/fuzz_events.py [libFuzzer flags] SCRATCH_DIR fuzz/corpus/events
    python fuzz/fuzz_events.py --corpus-only fuzz/corpus/events [MORE_DIRS_OR_FILES...]

Without atheris installed (or with ``--corpus-only``) every corpus file runs through
``TestOneInput`` once, as a plain loop. ``tests/test_fuzz_corpus.py`` imports :func:`check_one`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

try:
    import atheris  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    atheris = None

# The heavy dependencies are imported before instrumentation so that only rtproto is traced.
import msgspec  # noqa: F401
import numpy  # noqa: F401
import pybase64  # noqa: F401

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))  # the shared fuzz/_corpus.py
from _corpus import fuzzing, harness_main, replay, target_imports  # noqa: E402

_FUZZING = fuzzing(__name__, atheris)

with target_imports(__name__, atheris):
    import rtproto
    from rtproto import events as E

__all__ = ["TestOneInput", "check_one", "main", "run_corpus"]

RemoteProtocolError = rtproto.RemoteProtocolError
GA = rtproto.Dialect.GA
BETA = rtproto.Dialect.BETA


class _Direction(NamedTuple):
    name: str
    parse: Callable[..., Any]
    serialize: Callable[..., str]
    known: dict[str, type[E.Event]]
    #: ``rtproto.codec.<name>_parser(dialect=...)`` where it exists (a parser with its options
    #: bound, for hot receive loops): it must agree with ``parse_<name>_event`` exactly.
    bound: dict[rtproto.Dialect, Callable[[Any], Any]]


def _bound_parsers(name: str) -> dict[rtproto.Dialect, Callable[[Any], Any]]:
    factory = getattr(rtproto.codec, f"{name}_parser", None)
    return {} if factory is None else {dialect: factory(dialect=dialect) for dialect in (GA, BETA)}


_DIRECTIONS = (
    _Direction(
        "server",
        rtproto.parse_server_event,
        rtproto.serialize_server_event,
        E.SERVER_EVENT_TYPES,
        _bound_parsers("server"),
    ),
    _Direction(
        "client",
        rtproto.parse_client_event,
        rtproto.serialize_client_event,
        E.CLIENT_EVENT_TYPES,
        _bound_parsers("client"),
    ),
)
_OTHER = {GA: BETA, BETA: GA}


def _make_outcome_probes() -> dict[str, Callable[[], None]]:
    """One tiny function per parse outcome ("typed"/"invalid", dialect, event type).

    Which event an input becomes, or whether it is refused, is decided inside msgspec, in C
    code that atheris cannot trace. Calling a distinct instrumented function per outcome turns
    those decisions into coverage, so libFuzzer keeps inputs that reach new event types.
    """
    probes: dict[str, Callable[[], None]] = {}
    names = sorted({*E.SERVER_EVENT_TYPES, *E.CLIENT_EVENT_TYPES})
    for outcome in ("typed", "invalid"):
        for dialect in (GA, BETA):
            for name in names:
                namespace: dict[str, Any] = {}
                exec("def probe():\n    pass\n", namespace)
                probe = namespace["probe"]
                key = f"{outcome}:{dialect.name}:{name}"
                probes[key] = atheris.instrument_func(probe) if _FUZZING else probe
    return probes


_PROBES = _make_outcome_probes()


def _variants(data: bytes) -> list[str | bytes | memoryview]:
    """The forms one fuzz input is tried in: bytes, a memoryview, then text when it decodes."""
    variants: list[str | bytes | memoryview] = [data, memoryview(data)]
    try:
        variants.append(data.decode("utf-8"))
    except UnicodeDecodeError:
        with contextlib.suppress(UnicodeDecodeError):
            variants.append(data.decode("utf-8", "surrogatepass"))  # str with lone surrogates
    return variants


def _check_audio(event: object) -> None:
    try:
        if isinstance(event, E.ResponseOutputAudioDelta):
            audio = event.audio
            assert isinstance(audio, bytes)
            pcm = event.pcm
            assert pcm.dtype.itemsize == 2
            assert pcm.nbytes == len(audio)
        elif isinstance(event, E.InputAudioBufferAppend):
            assert isinstance(event.audio_bytes, bytes)
    except RemoteProtocolError:
        pass


def _check(
    data: str | bytes | memoryview, direction: _Direction, dialect: rtproto.Dialect, depth: int
) -> None:
    event: Any
    try:
        event = direction.parse(data, dialect=dialect)
    except RemoteProtocolError:
        event = None
    bound = direction.bound.get(dialect)
    if bound is not None:
        try:
            again = bound(data)
        except RemoteProtocolError:
            again = None
        assert type(again) is type(event), (type(again), type(event))
        assert again == event, "the bound parser and parse_*_event disagree"
    if event is None:
        return

    if isinstance(event, (rtproto.UnknownEvent, rtproto.InvalidEvent)):
        assert isinstance(event.type, str), event
        assert isinstance(event.raw, dict), event
        if isinstance(event, rtproto.InvalidEvent):
            assert event.type in direction.known, event.type
            _PROBES[f"invalid:{dialect.name}:{event.type}"]()
            assert isinstance(event.problem, str)
            if direction.name == "server":
                salvaged = rtproto.salvage(event, dialect=dialect)
                if salvaged is not None:  # the same event, typed, still raw as it arrived
                    assert type(salvaged) is direction.known[event.type], type(salvaged)
                    assert rtproto.event_raw(salvaged) == event.raw
        else:
            assert event.type not in direction.known, event.type
        # (the whole object was decoded, so what arrived was UTF-8: it comes back exactly)
        original = data if isinstance(data, str) else bytes(data).decode("utf-8")
        assert direction.serialize(event, dialect=dialect) == original, "resent text differs"
        other = direction.serialize(event, dialect=_OTHER[dialect])
        assert isinstance(other, str)
        assert isinstance(rtproto.event_raw(event), dict)
        if depth == 0:
            _check(other, direction, _OTHER[dialect], depth + 1)
        return

    # a typed event, of this direction
    assert isinstance(event, E.Event), type(event)
    assert direction.known.get(type(event).type) is type(event), type(event)
    _PROBES[f"typed:{dialect.name}:{type(event).type}"]()

    text = direction.serialize(event, dialect=dialect)
    assert isinstance(text, str)
    try:
        original = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        # Invalid UTF-8 can only hide in unknown fields, which the typed decoder skips unread;
        # that text cannot come back, so what is sent instead must still be the same event.
        assert direction.parse(text, dialect=dialect) == event, "re-serialised event differs"
    else:
        assert text == original, "serialising into the source dialect changed the text"

    other = direction.serialize(event, dialect=_OTHER[dialect])
    assert isinstance(other, str)

    raw = rtproto.event_raw(event)
    assert isinstance(raw, dict)

    _check_audio(event)

    if depth == 0:
        # what rtproto sends in the other dialect must itself obey the receive contract
        _check(other, direction, _OTHER[dialect], depth + 1)


def check_one(data: bytes) -> None:
    """Check the codec contract on one input; raises on any violation."""
    for variant in _variants(data):
        for direction in _DIRECTIONS:
            for dialect in (GA, BETA):
                try:
                    _check(variant, direction, dialect, 0)
                except Exception as exc:
                    note = (
                        f"rtproto fuzz: {direction.name} event, {dialect.name} dialect, "
                        f"input as {type(variant).__name__}"
                    )
                    if hasattr(exc, "add_note"):  # Python 3.11+
                        exc.add_note(note)
                    raise
    if data:  # every form of it is len(data) bytes (a str: once UTF-8-encoded)
        for variant in _variants(data):
            for direction in _DIRECTIONS:
                try:
                    direction.parse(variant, max_size=len(data) - 1)
                except RemoteProtocolError:
                    pass
                else:
                    raise AssertionError(
                        f"a {type(variant).__name__} message over max_size was accepted"
                    )


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    check_one(data)


def run_corpus(paths: Iterable[str | Path]) -> int:
    """Run every file under ``paths`` through ``TestOneInput`` once; returns the count."""
    return replay(paths, TestOneInput, "fuzz_events")


def main(argv: list[str]) -> int:
    return harness_main(argv, "events", TestOneInput, atheris)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
