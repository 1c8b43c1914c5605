"""The legacy beta dialect (``OpenAI-Beta: realtime=v1``) as a mapping onto the GA shapes.

There is one codec. A beta message is decoded to a plain object, rewritten by :func:`from_beta`
into its GA shape, and then typed like any GA message; on send, :func:`to_beta` rewrites the
GA object. Everything the tables below do not name passes through unchanged, in both
directions, so unknown fields survive.

Two GA spellings have no beta counterpart and are normalised on the way to beta, so they come
back from it spelt differently (the same configuration):

* an ``audio/pcm`` format without a ``rate`` is 24 kHz PCM16 (its only rate) and goes to beta
  as ``"pcm16"``, which comes back as ``{"type": "audio/pcm", "rate": 24000}``;
* ``audio``, ``audio.input`` and ``audio.output`` objects left empty once their keys have
  moved to the flat beta ones are dropped (a beta server answers ``unknown_parameter`` to a
  ``session.audio``, spec section 5.4), so an empty ``AudioInput()`` comes back unset.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

__all__ = ["Dialect", "from_beta", "to_beta"]


class Dialect(enum.Enum):
    """Which shape of the protocol is on the wire."""

    GA = "ga"
    BETA = "beta"


JSON = dict[str, Any]

#: GA event type -> beta event type (server events; client event names are the same).
EVENT_RENAMES: dict[str, str] = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
}
_EVENT_RENAMES_BACK = {beta: ga for ga, beta in EVENT_RENAMES.items()}

#: GA audio format type -> beta format name (``audio/pcm`` at 24000 Hz or with no rate).
FORMAT_NAMES: dict[str, str] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}
_FORMAT_NAMES_BACK = {beta: ga for ga, beta in FORMAT_NAMES.items()}

#: Assistant content part type inside items: GA -> beta.
PART_TYPES: dict[str, str] = {"output_text": "text", "output_audio": "audio"}
_PART_TYPES_BACK = {beta: ga for ga, beta in PART_TYPES.items()}

#: Flat beta session key -> path of the GA key (realtime sessions).
SESSION_PATHS: dict[str, tuple[str, ...]] = {
    "modalities": ("output_modalities",),
    "max_response_output_tokens": ("max_output_tokens",),
    "voice": ("audio", "output", "voice"),
    "speed": ("audio", "output", "speed"),
    "output_audio_format": ("audio", "output", "format"),
    "input_audio_format": ("audio", "input", "format"),
    "input_audio_transcription": ("audio", "input", "transcription"),
    "input_audio_noise_reduction": ("audio", "input", "noise_reduction"),
    "turn_detection": ("audio", "input", "turn_detection"),
}
#: The same for transcription sessions (input only).
TRANSCRIPTION_SESSION_PATHS = {
    key: path for key, path in SESSION_PATHS.items() if path[:2] == ("audio", "input")
}
#: The same for response objects (``response.created`` / ``response.done``).
RESPONSE_PATHS: dict[str, tuple[str, ...]] = {
    "modalities": ("output_modalities",),
    "voice": ("audio", "output", "voice"),
    "output_audio_format": ("audio", "output", "format"),
}
#: The same for ``response.create`` parameters.
RESPONSE_PARAM_PATHS: dict[str, tuple[str, ...]] = {
    **RESPONSE_PATHS,
    "max_response_output_tokens": ("max_output_tokens",),
}

# --- value converters (GA -> beta, beta -> GA) -------------------------------------------


def _format_to_beta(value: Any) -> Any:
    if isinstance(value, dict) and set(value) <= {"type", "rate"}:
        name = FORMAT_NAMES.get(str(value.get("type")))
        expected_rate = 24000 if name == "pcm16" else None
        if name is not None and value.get("rate", expected_rate) == expected_rate:
            return name
    return value


def _format_from_beta(value: Any) -> Any:
    if isinstance(value, str) and value in _FORMAT_NAMES_BACK:
        ga = _FORMAT_NAMES_BACK[value]
        return {"type": ga, "rate": 24000} if ga == "audio/pcm" else {"type": ga}
    return value


def _modalities_to_beta(value: Any) -> Any:
    return ["text", "audio"] if value == ["audio"] else value


def _modalities_from_beta(value: Any) -> Any:
    if isinstance(value, list) and "audio" in value and all(v in ("text", "audio") for v in value):
        return ["audio"]
    return value


def _turn_detection_from_beta(value: Any) -> Any:
    if isinstance(value, dict) and "type" not in value:
        return {"type": "server_vad", **value}
    return value


_TO_BETA: dict[str, Callable[[Any], Any]] = {
    "modalities": _modalities_to_beta,
    "input_audio_format": _format_to_beta,
    "output_audio_format": _format_to_beta,
}
_FROM_BETA: dict[str, Callable[[Any], Any]] = {
    "modalities": _modalities_from_beta,
    "input_audio_format": _format_from_beta,
    "output_audio_format": _format_from_beta,
    "turn_detection": _turn_detection_from_beta,
}

# --- structural helpers -------------------------------------------------------------------


def _flatten(obj: JSON, paths: dict[str, tuple[str, ...]]) -> JSON:
    """GA nested object -> beta flat object (keys not in ``paths`` stay where they are)."""
    out = dict(obj)
    audio = out.get("audio")
    if isinstance(audio, dict):
        audio = out["audio"] = {k: dict(v) if isinstance(v, dict) else v for k, v in audio.items()}
    for beta_key, path in paths.items():
        node: Any = out
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            value = node.pop(path[-1])
            convert = _TO_BETA.get(beta_key)
            out[beta_key] = convert(value) if convert else value
    if isinstance(audio, dict):
        # beta has no audio object: drop the containers left empty (also those that were
        # empty to begin with), whatever else is left is passed through
        for inner in ("input", "output"):
            if inner in audio and audio[inner] == {}:
                del audio[inner]
        if not audio:
            del out["audio"]
    return out


def _nest(obj: JSON, paths: dict[str, tuple[str, ...]]) -> JSON:
    """Beta flat object -> GA nested object."""
    out = dict(obj)
    for beta_key, path in paths.items():
        if beta_key not in out:
            continue
        value = out.pop(beta_key)
        convert = _FROM_BETA.get(beta_key)
        if convert:
            value = convert(value)
        node = out
        for key in path[:-1]:
            child = node.get(key)
            child = dict(child) if isinstance(child, dict) else {}
            node[key] = child
            node = child
        node[path[-1]] = value
    return out


def _map_item(item: Any, parts: dict[str, str]) -> Any:
    if not (isinstance(item, dict) and item.get("type") == "message"):
        return item
    if item.get("role") != "assistant" or not isinstance(item.get("content"), list):
        return item
    content = [
        {**part, "type": parts[part["type"]]}
        if isinstance(part, dict) and isinstance(part.get("type"), str) and part["type"] in parts
        else part
        for part in item["content"]
    ]
    return {**item, "content": content}


def _map_items(items: Any, parts: dict[str, str]) -> Any:
    if isinstance(items, list):
        return [_map_item(item, parts) for item in items]
    return items


def _session_to_beta(session: JSON, drop_type: bool) -> JSON:
    transcription = session.get("type") == "transcription"
    out = _flatten(session, TRANSCRIPTION_SESSION_PATHS if transcription else SESSION_PATHS)
    if drop_type:
        out.pop("type", None)
    return out


def _session_from_beta(session: Any, transcription: bool = False) -> Any:
    if not isinstance(session, dict):
        return session
    kind = session.get("type")
    if kind is None:
        if transcription or session.get("object") == "realtime.transcription_session":
            kind = "transcription"
        else:
            kind = "realtime"
    paths = TRANSCRIPTION_SESSION_PATHS if kind == "transcription" else SESSION_PATHS
    return {"type": kind, **_nest(session, paths)}


def _response_to_beta(response: Any, items_key: str) -> Any:
    if not isinstance(response, dict):
        return response
    out = _flatten(response, RESPONSE_PATHS if items_key == "output" else RESPONSE_PARAM_PATHS)
    if items_key in out:
        out[items_key] = _map_items(out[items_key], PART_TYPES)
    return out


def _response_from_beta(response: Any, items_key: str) -> Any:
    if not isinstance(response, dict):
        return response
    out = _nest(response, RESPONSE_PATHS if items_key == "output" else RESPONSE_PARAM_PATHS)
    if items_key in out:
        out[items_key] = _map_items(out[items_key], _PART_TYPES_BACK)
    return out


_SESSION_EVENTS = frozenset({"session.update", "session.created", "session.updated"})
_ITEM_EVENTS = frozenset(
    {
        "conversation.item.create",
        "conversation.item.created",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "response.output_item.added",
        "response.output_item.done",
    }
)
_RESPONSE_EVENTS = {"response.created": "output", "response.done": "output"}
_RESPONSE_PARAM_EVENTS = {"response.create": "input"}
_TRANSCRIPTION_EVENTS = {
    "session.update": "transcription_session.update",
    "session.updated": "transcription_session.updated",
}
_TRANSCRIPTION_EVENTS_BACK = {beta: ga for ga, beta in _TRANSCRIPTION_EVENTS.items()}


def to_beta(event: JSON) -> JSON:
    """Rewrite one GA event object into the beta dialect (a new object; input untouched)."""
    kind = event.get("type")
    if not isinstance(kind, str):
        return event
    out = dict(event)
    if kind in _SESSION_EVENTS and isinstance(out.get("session"), dict):
        session_type = out["session"].get("type")
        renamed = kind in _TRANSCRIPTION_EVENTS and session_type == "transcription"
        if renamed:
            out["type"] = _TRANSCRIPTION_EVENTS[kind]
        # beta names the session kind by the event, or (realtime) not at all
        out["session"] = _session_to_beta(out["session"], renamed or session_type == "realtime")
    elif kind in _ITEM_EVENTS and "item" in out:
        out["item"] = _map_item(out["item"], PART_TYPES)
    elif kind in _RESPONSE_EVENTS and "response" in out:
        out["response"] = _response_to_beta(out["response"], "output")
    elif kind in _RESPONSE_PARAM_EVENTS and "response" in out:
        out["response"] = _response_to_beta(out["response"], "input")
    elif kind in EVENT_RENAMES:
        out["type"] = EVENT_RENAMES[kind]
    return out


def from_beta(event: JSON) -> JSON:
    """Rewrite one beta event object into its GA shape (a new object; input untouched)."""
    kind = event.get("type")
    if not isinstance(kind, str):
        return event
    out = dict(event)
    if kind in _TRANSCRIPTION_EVENTS_BACK:
        out["type"] = _TRANSCRIPTION_EVENTS_BACK[kind]
        out["session"] = _session_from_beta(out.get("session"), transcription=True)
    elif kind in _SESSION_EVENTS:
        out["session"] = _session_from_beta(out.get("session"))
    elif kind in _ITEM_EVENTS and "item" in out:
        out["item"] = _map_item(out["item"], _PART_TYPES_BACK)
    elif kind in _RESPONSE_EVENTS and "response" in out:
        out["response"] = _response_from_beta(out["response"], "output")
    elif kind in _RESPONSE_PARAM_EVENTS and "response" in out:
        out["response"] = _response_from_beta(out["response"], "input")
    elif kind in _EVENT_RENAMES_BACK:
        out["type"] = _EVENT_RENAMES_BACK[kind]
    return out
