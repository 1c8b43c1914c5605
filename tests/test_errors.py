"""Errors carry structured fields and say who is at fault."""

from __future__ import annotations

import pytest

import rtproto
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
