"""Hypothesis strategies for every event, derived from the msgspec types themselves.

Values stay inside what the protocol allows where the two dialects differ (modalities, audio
formats, assistant part types), so a GA -> beta -> GA trip is defined for every example; what
that trip gives is :func:`through_beta` of the example (the beta mapping's two normalisations).
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from rtproto import models as M
from rtproto.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES

JSON_LEAVES = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
TEXT = st.text(max_size=12)
FORMATS = st.sampled_from(
    [
        M.AudioFormat(type="audio/pcm", rate=24000),
        M.AudioFormat(type="audio/pcm"),  # 24 kHz too: beta "pcm16", back with its rate
        M.AudioFormat(type="audio/pcmu"),
        M.AudioFormat(type="audio/pcma"),
    ]
)
MODALITIES = st.sampled_from([["audio"], ["text"]])
ITEM_PART_TYPES = ["input_text", "input_audio", "input_image", "output_text", "output_audio"]
EVENT_PART_TYPES = ["text", "audio"]

# (struct class, field name) -> strategy, where the generic one would leave the protocol.
OVERRIDES: dict[tuple[type, str], st.SearchStrategy[Any]] = {}


def _from_info(info: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(info, mi.StrType):
        return TEXT
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.IntType):
        return st.integers(-(2**31), 2**31)
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.AnyType):
        return JSON_VALUES
    if isinstance(info, mi.ListType):
        return st.lists(_from_info(info.item_type), max_size=2)
    if isinstance(info, mi.DictType):
        return st.dictionaries(TEXT, _from_info(info.value_type), max_size=2)
    if isinstance(info, mi.UnionType):
        return st.one_of([_from_info(t) for t in info.types])
    if isinstance(info, mi.StructType):
        return st.deferred(lambda: for_struct(info.cls))
    raise NotImplementedError(info)  # pragma: no cover - a new kind of field


_cache: dict[type, st.SearchStrategy[Any]] = {}


def for_struct(cls: type) -> st.SearchStrategy[Any]:
    """A strategy for instances of one msgspec Struct class."""
    if cls is M.AudioFormat:
        return FORMATS
    if cls not in _cache:
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        fields: dict[str, st.SearchStrategy[Any]] = {}
        for field in info.fields:
            key = (cls, field.name)
            strategy = OVERRIDES[key] if key in OVERRIDES else _from_info(field.type)
            if not field.required:
                strategy = st.just(msgspec.UNSET) | strategy
            fields[field.name] = strategy
        _cache[cls] = st.builds(cls, **fields)
    return _cache[cls]


def _part(types: list[str]) -> st.SearchStrategy[Any]:
    nullable_text = st.just(msgspec.UNSET) | st.none() | TEXT
    return st.builds(
        M.ContentPart,
        type=st.sampled_from(types),
        text=nullable_text,
        audio=nullable_text,
        transcript=nullable_text,
    )


for _cls in (M.RealtimeSession, M.Response, M.ResponseCreateParams):
    OVERRIDES[(_cls, "output_modalities")] = MODALITIES
OVERRIDES[(M.MessageItem, "content")] = st.lists(_part(ITEM_PART_TYPES), max_size=2)


def _event_part_overrides() -> None:
    from rtproto import events as E

    for cls in (E.ResponseContentPartAdded, E.ResponseContentPartDone):
        OVERRIDES[(cls, "part")] = _part(EVENT_PART_TYPES)


_event_part_overrides()

server_events = st.sampled_from(sorted(SERVER_EVENT_TYPES.values(), key=lambda c: c.type)).flatmap(
    for_struct
)
client_events = st.sampled_from(sorted(CLIENT_EVENT_TYPES.values(), key=lambda c: c.type)).flatmap(
    for_struct
)


def through_beta(event: Any) -> Any:
    """What ``event`` is once sent in the beta dialect and parsed back.

    The same event, but for the two GA spellings beta cannot express (see rtproto.dialect):
    an ``audio/pcm`` format without a rate comes back with ``rate: 24000``, and empty
    ``audio``/``audio.input``/``audio.output`` objects come back unset.
    """
    obj = msgspec.to_builtins(event)
    for key in ("session", "response"):
        inner = obj.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("audio"), dict):
            audio = inner["audio"]
            for part in ("input", "output"):
                node = audio.get(part)
                if not isinstance(node, dict):
                    continue
                if node.get("format") == {"type": "audio/pcm"}:
                    node["format"] = {"type": "audio/pcm", "rate": 24000}
                if not node:
                    del audio[part]
            if not audio:
                del inner["audio"]
    return msgspec.convert(obj, type(event))


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON value, outermost first."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += json_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += json_paths(child, (*prefix, index))
    return found


def json_edit(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    """A copy of a JSON value with the value at ``path`` replaced by ``new`` (or deleted)."""
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if rest:
        copy[head] = json_edit(copy[head], rest, new, delete)
    elif delete:
        del copy[head]
    else:
        copy[head] = new
    return copy
