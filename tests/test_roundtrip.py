"""Properties: serialise -> parse is the identity for every event in both dialects.

(In beta, the identity up to the two GA spellings beta cannot express: ``through_beta``.)
"""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtproto
from rtproto.dialect import Dialect
from rtproto.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES

from .strategies import client_events, for_struct, server_events, through_beta

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIALECTS = st.sampled_from(list(Dialect))


@SETTINGS
@given(server_events, DIALECTS)
def test_server_event_round_trip(event: object, dialect: Dialect) -> None:
    text = rtproto.serialize_server_event(event, dialect=dialect)  # type: ignore[arg-type]
    parsed = rtproto.parse_server_event(text, dialect=dialect)
    assert parsed == _expected(event, dialect)
    assert rtproto.serialize_server_event(parsed, dialect=dialect) == text
    if dialect is Dialect.GA:  # exactly the set fields: no nulls for unset ones, no extras
        assert json.loads(text) == msgspec.to_builtins(event)
    else:
        _assert_no_audio_object(text)


@SETTINGS
@given(client_events, DIALECTS)
def test_client_event_round_trip(event: object, dialect: Dialect) -> None:
    text = rtproto.serialize_client_event(event, dialect=dialect)  # type: ignore[arg-type]
    parsed = rtproto.parse_client_event(text, dialect=dialect)
    assert parsed == _expected(event, dialect)
    assert rtproto.serialize_client_event(parsed, dialect=dialect) == text
    if dialect is Dialect.BETA:
        _assert_no_audio_object(text)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_every_event_type_round_trips_in_both_dialects(data: st.DataObject) -> None:
    for table, parse, serialize in (
        (SERVER_EVENT_TYPES, rtproto.parse_server_event, rtproto.serialize_server_event),
        (CLIENT_EVENT_TYPES, rtproto.parse_client_event, rtproto.serialize_client_event),
    ):
        for cls in table.values():
            event = data.draw(for_struct(cls))
            for dialect in Dialect:
                text = serialize(event, dialect=dialect)  # type: ignore[operator]
                expected = _expected(event, dialect)
                assert parse(text, dialect=dialect) == expected, (cls.type, dialect, text)


def _expected(event: object, dialect: Dialect) -> object:
    return event if dialect is Dialect.GA else through_beta(event)


def _assert_no_audio_object(beta_text: str) -> None:
    """Beta has no nested audio object: every typed key under it moves to a flat beta key, and
    what is left empty is dropped (a beta server refuses ``session.audio``, spec 5.4)."""
    message = json.loads(beta_text)
    for key in ("session", "response"):
        inner = message.get(key)
        if isinstance(inner, dict):
            assert "audio" not in inner, beta_text
