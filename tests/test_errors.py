"""Errors carry structured fields and say who is at fault."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

import rtproto
from rtproto import events as E
from rtproto import models as M
from rtproto.errors import MAX_EXCERPT


def test_hierarchy() -> None:
    for cls in (rtproto.LocalProtocolError, rtproto.RemoteProtocolError, rtproto.ConnectionClosed):
        assert issubclass(cls, rtproto.RtprotoError)
    assert not issubclass(rtproto.ConnectionClosed, rtproto.LocalProtocolError)


@pytest.mark.parametrize(
    "data", ["x" * 1000, b"y" * 1000, bytearray(b"z" * 1000), memoryview(b"w" * 1000), {"k": 1}]
)
def test_excerpt_is_bounded(data: object) -> None:
    error = rtproto.RemoteProtocolError("bad", data=data)
    assert error.excerpt is not None and 0 < len(error.excerpt) <= MAX_EXCERPT


def test_excerpt_keeps_200_characters_of_multibyte_bytes() -> None:
    """Bytes are cut at 4 per character before decoding, so 200 characters survive UTF-8."""
    error = rtproto.RemoteProtocolError("bad", data=("\N{GRINNING FACE}" * 300).encode())
    assert error.excerpt == "\N{GRINNING FACE}" * MAX_EXCERPT


@pytest.mark.parametrize(
    "error",
    [
        rtproto.LocalProtocolError("m", event_type="x", state="S", hint=1, data=b"abc"),
        rtproto.RemoteProtocolError("r", data="q"),
        rtproto.ConnectionClosed(code=1001, reason="bye", state="CLOSED"),
    ],
)
def test_errors_pickle_with_every_field(error: rtproto.RtprotoError) -> None:
    """They cross process boundaries (multiprocessing, a worker's result) intact."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and vars(copy) == vars(error)
    assert copy.args == (error.message,) and str(copy) == str(error)


def test_fields_and_text() -> None:
    error = rtproto.LocalProtocolError(
        "cannot send audio", event_type="input_audio_buffer.append", state="CLOSED", hint=1000
    )
    assert (error.event_type, error.state, error.hint, error.excerpt) == (
        "input_audio_buffer.append",
        "CLOSED",
        1000,
        None,
    )
    assert str(error) == (
        "cannot send audio; event type 'input_audio_buffer.append'; state CLOSED; hint 1000"
    )
    assert repr(error).startswith("LocalProtocolError('cannot send audio'")
    assert str(rtproto.RemoteProtocolError("plain")) == "plain"


def test_connection_closed_carries_the_close() -> None:
    error = rtproto.ConnectionClosed(code=1001, reason="going away", state="CLOSED")
    assert (error.code, error.reason, error.hint) == (1001, "going away", 1001)
    assert str(error).startswith("the connection is closed")


# --- send: what cannot be JSON is the application's fault -----------------------------------


def _cycle() -> dict[str, Any]:
    looped: dict[str, Any] = {"type": "x"}
    looped["self"] = looped
    return looped


def _client_cases() -> list[tuple[str, object, str]]:
    """(case, event, event type): each one not JSON-serialisable."""
    return [
        (
            "object in a typed event",
            E.ConversationItemCreate(item={"x": object()}),  # type: ignore[arg-type]
            "conversation.item.create",
        ),
        (
            "cycle in a typed event",
            E.ConversationItemCreate(item=_cycle()),  # type: ignore[arg-type]
            "conversation.item.create",
        ),
        ("NaN", E.SessionUpdate(session=M.RealtimeSession(temperature=math.nan)), "session.update"),
        (
            "infinity",
            E.ResponseCreate(
                response=M.ResponseCreateParams(metadata={"k": -math.inf})  # type: ignore[dict-item]
            ),
            "response.create",
        ),
        (
            "NaN in an int field",
            E.ConversationItemTruncate(
                item_id="i",
                content_index=0,
                audio_end_ms=math.nan,  # type: ignore[arg-type]
            ),
            "conversation.item.truncate",
        ),
        ("object in a raw dict", {"type": "x", "v": object()}, "x"),
        ("cycle in a raw dict", _cycle(), "x"),
        ("NaN in a raw dict", {"type": "x", "v": [1.0, {"w": math.nan}]}, "x"),
        ("set in a raw dict", {"type": "x", "v": {1, object()}}, "x"),
        (
            "NaN in an UnknownEvent",
            rtproto.UnknownEvent(type="x", raw={"type": "x", "v": math.inf}),
            "x",
        ),
        (
            "object in an InvalidEvent",
            rtproto.InvalidEvent(
                type="session.update", problem="p", raw={"type": "session.update", "v": object()}
            ),
            "session.update",
        ),
    ]


@pytest.mark.parametrize("dialect", list(rtproto.Dialect))
@pytest.mark.parametrize(
    ("case", "event", "kind"), _client_cases(), ids=[c[0] for c in _client_cases()]
)
def test_send_refuses_what_is_not_json(
    case: str, event: object, kind: str, dialect: rtproto.Dialect
) -> None:
    with pytest.raises(rtproto.LocalProtocolError) as info:
        rtproto.serialize_client_event(event, dialect=dialect)  # type: ignore[arg-type]
    assert info.value.event_type == kind
    assert "not JSON-serialisable" in info.value.message
    if "NaN" in case or "infinity" in case:
        assert "JSON has no NaN or infinity" in info.value.message
    if "cycle" in case:
        assert "it nests too deeply (a reference cycle?)" in info.value.message


def test_send_names_where_the_non_finite_float_is() -> None:
    update = E.SessionUpdate(session=M.RealtimeSession(temperature=math.nan))
    with pytest.raises(rtproto.LocalProtocolError, match=r"nan at `\$\.session\.temperature`"):
        rtproto.serialize_client_event(update)
    raw = {"type": "x", "v": [1.0, {"w": math.inf}]}
    with pytest.raises(rtproto.LocalProtocolError, match=r"inf at `\$\.v\[1\]\.w`"):
        rtproto.serialize_client_event(raw)


def test_server_side_send_refuses_too() -> None:
    limits = E.RateLimitsUpdated(
        rate_limits=[M.RateLimit(name="tokens", limit=1, remaining=1, reset_seconds=math.nan)]
    )
    for dialect in rtproto.Dialect:
        with pytest.raises(rtproto.LocalProtocolError) as info:
            rtproto.serialize_server_event(limits, dialect=dialect)
        assert info.value.event_type == "rate_limits.updated"


def test_nulls_and_finite_floats_are_still_sent() -> None:
    # (a null in the output is what sends the encoder looking for NaN: it must find none)
    update = E.SessionUpdate(
        session=M.RealtimeSession(
            temperature=0.8, audio=M.AudioConfig(input=M.AudioInput(turn_detection=None))
        )
    )
    assert rtproto.serialize_client_event(update) == (
        '{"type":"session.update","session":{"type":"realtime",'
        '"audio":{"input":{"turn_detection":null}},"temperature":0.8}}'
    )
    assert rtproto.serialize_client_event({"type": "x", "s": "null", "n": None, "f": 1e308}) == (
        '{"type":"x","s":"null","n":null,"f":1e308}'
    )
