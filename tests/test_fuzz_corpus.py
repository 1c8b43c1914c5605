"""The fuzz corpus as a regression suite, plus hypothesis properties of the same contract.

Every file of ``fuzz/corpus/events/`` goes through ``check_one`` from ``fuzz/fuzz_events.py``:
parse never raises anything but ``RemoteProtocolError`` (server and client events, GA and beta,
as bytes and as text), a typed event serialises back to its exact source text, serialising it
into the other dialect works, and audio decoding fails only with ``RemoteProtocolError``.
The hypothesis tests run the same check on generated input; they are derandomised so that a
run is reproducible (the atheris harness is where random exploration happens).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtproto
from rtproto import dialect, models
from rtproto.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES

from .fuzzing import load_fuzz_module, load_harness
from .strategies import json_edit, json_paths

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
CORPUS = FUZZ / "corpus" / "events"


harness = load_harness("events")
check_one = harness.check_one

#: Corpus inputs that still break the contract: bugs found by fuzzing and reported but not
#: yet fixed in src/, as ``file name: (exception raised, reason)``. The xfail is strict: when
#: the fix lands the test XPASSes and fails, so delete the entry (the input stays as a
#: regression test). Every ``crash-*`` input found so far is fixed, hence empty.
KNOWN_CRASHES: dict[str, tuple[type[BaseException], str]] = {}

CORPUS_FILES = sorted(p for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith("."))


def _corpus_param(path: Path) -> Any:
    marks = []
    if path.name in KNOWN_CRASHES:
        exc, reason = KNOWN_CRASHES[path.name]
        marks.append(pytest.mark.xfail(raises=exc, reason=reason, strict=True))
    return pytest.param(path, id=path.name, marks=marks)


@pytest.mark.parametrize("path", [_corpus_param(p) for p in CORPUS_FILES])
def test_corpus_input(path: Path) -> None:
    check_one(path.read_bytes())


def test_known_crashes_are_in_the_corpus() -> None:
    assert set(KNOWN_CRASHES) <= {p.name for p in CORPUS_FILES}


def test_corpus_size_limits() -> None:
    sizes = {p.name: p.stat().st_size for p in CORPUS_FILES}
    assert 80 <= len(sizes) <= 200
    assert max(sizes.values()) < 2 * 1024 * 1024
    assert sum(sizes.values()) < 10 * 1024 * 1024


def test_corpus_matches_its_generator() -> None:
    """fuzz/make_corpus.py and the committed corpus agree (rerun the script if this fails)."""
    generated = load_fuzz_module("make_corpus").corpus()
    stale = [name for name, data in generated.items() if (CORPUS / name).read_bytes() != data]
    assert not stale, f"rerun python fuzz/make_corpus.py; stale: {stale}"


def _typed(path: Path, parse: Any, dialect_: rtproto.Dialect) -> type | None:
    try:
        event = parse(path.read_bytes(), dialect=dialect_)
    except rtproto.RemoteProtocolError:
        return None
    if isinstance(event, (rtproto.UnknownEvent, rtproto.InvalidEvent)):
        return None
    return type(event)


def test_seeds_cover_every_event_type() -> None:
    seen: set[type] = set()
    for path in CORPUS_FILES:
        if not path.name.startswith(("ga-", "beta-")):
            continue
        dialect_ = rtproto.Dialect.BETA if path.name.startswith("beta-") else rtproto.Dialect.GA
        kinds = {
            _typed(path, rtproto.parse_server_event, dialect_),
            _typed(path, rtproto.parse_client_event, dialect_),
        } - {None}
        if "unknown" not in path.name:
            assert kinds, f"{path.name} is not a valid typed event in its dialect"
        seen |= kinds  # type: ignore[arg-type]
    missing = {
        name
        for name, cls in {**SERVER_EVENT_TYPES, **CLIENT_EVENT_TYPES}.items()
        if cls not in seen
    }
    assert not missing, f"no seed for {sorted(missing)}"


def test_run_corpus_counts_inputs(tmp_path: Path) -> None:
    for i, name in enumerate(["ga-response-done-full.json", "hostile-empty.json"]):
        (tmp_path / f"{i}.json").write_bytes((CORPUS / name).read_bytes())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x").write_bytes(b"[")
    assert harness.run_corpus([tmp_path]) == 3
    assert harness.run_corpus([tmp_path / "0.json"]) == 1
    with pytest.raises(FileNotFoundError):
        harness.run_corpus([tmp_path / "missing"])


def test_check_one_reports_foreign_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    direction = harness._DIRECTIONS[0]._replace(parse=broken)
    monkeypatch.setattr(harness, "_DIRECTIONS", (direction,))
    with pytest.raises(KeyError):
        check_one(b'{"type":"x"}')


# ------------------------------------------------------------------------ hypothesis ---------

PROPERTY = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BETA_NAMES = {
    *dialect.EVENT_RENAMES.values(),
    "transcription_session.update",
    "transcription_session.updated",
}
TYPE_NAMES = sorted({*SERVER_EVENT_TYPES, *CLIENT_EVENT_TYPES, *BETA_NAMES})


def _field_names() -> list[str]:
    names: set[str] = set(dialect.SESSION_PATHS) | {"type", "event_id"}
    structs: list[type[msgspec.Struct]] = [*SERVER_EVENT_TYPES.values()]
    structs += CLIENT_EVENT_TYPES.values()
    structs += [
        obj
        for obj in vars(models).values()
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct)
    ]
    for cls in structs:
        names |= {field.encode_name for field in msgspec.structs.fields(cls)}
    return sorted(names)


#: Strings the codec compares against (tags, formats, modalities, part types).
WORDS = sorted(
    {
        *TYPE_NAMES,
        *dialect.FORMAT_NAMES,
        *dialect.FORMAT_NAMES.values(),
        *dialect.PART_TYPES,
        *dialect.PART_TYPES.values(),
        "audio",
        "text",
        "realtime",
        "transcription",
        "message",
        "assistant",
        "user",
        "function_call",
        "server_vad",
        "semantic_vad",
        "realtime.transcription_session",
        "AAAA",
        "AA==",
    }
)

KEYS = st.sampled_from(_field_names()) | st.text(max_size=10)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=20,
)
EVENT_TYPES = st.sampled_from(TYPE_NAMES) | st.text(max_size=30)
EVENT_OBJECTS = st.builds(
    lambda body, kind: {**body, "type": kind},
    st.dictionaries(KEYS, JSON_VALUES, max_size=6),
    EVENT_TYPES,
)


@PROPERTY
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    check_one(data)


@PROPERTY
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check_one(text.encode("utf-8"))


@PROPERTY
@given(EVENT_OBJECTS, st.booleans())
def test_arbitrary_json_objects(obj: dict[str, Any], ascii_only: bool) -> None:
    check_one(json.dumps(obj, ensure_ascii=ascii_only).encode("utf-8"))


SEEDS = {
    p.name: json.loads(p.read_bytes())
    for p in CORPUS_FILES
    if p.name.startswith(("ga-", "beta-")) and p.stat().st_size < 20_000
}


@PROPERTY
@given(st.data())
def test_mutated_seed_events(data: st.DataObject) -> None:
    """A real event with one value replaced (or removed): a field of the wrong type, an
    unexpected nested object, a missing required field."""
    seed = SEEDS[data.draw(st.sampled_from(sorted(SEEDS)), label="seed")]
    path = data.draw(st.sampled_from(json_paths(seed)), label="path")
    delete = data.draw(st.booleans(), label="delete")
    new = None if delete else data.draw(JSON_VALUES, label="new value")
    mutated = json_edit(seed, path, new, delete)
    check_one(json.dumps(mutated, ensure_ascii=False).encode("utf-8"))
