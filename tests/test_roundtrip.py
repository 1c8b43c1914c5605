"""Properties: serialise -> parse is the identity for every event in both dialects."""

from __future__ import annotations

import json

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtproto
from rtproto.dialect import Dialect
from rtproto.events import CLIENT_EVENT_TYPES, SERVER_EVENT_TYPES

from .strategies import client_events, for_struct, server_events

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIALECTS = st.sampled_from(list(Dialect))


@SETTINGS
@given(server_events, DIALECTS)
def test_server_event_round_trip(event: object, dialect: Dialect) -> None:
    text = rtproto.serialize_server_event(event, dialect=dialect)  # type: ignore[arg-type]
    parsed = rtproto.parse_server_event(text, dialect=dialect)
    assert parsed == event
    assert rtproto.serialize_server_event(parsed, dialect=dialect) == text
    if dialect is Dialect.GA:  # exactly the set fields: no nulls for unset ones, no extras
        assert json.loads(text) == msgspec.to_builtins(event)


@SETTINGS
@given(client_events, DIALECTS)
def test_client_event_round_trip(event: object, dialect: Dialect) -> None:
    text = rtproto.serialize_client_event(event, dialect=dialect)  # type: ignore[arg-type]
    parsed = rtproto.parse_client_event(text, dialect=dialect)
    assert parsed == event
    assert rtproto.serialize_client_event(parsed, dialect=dialect) == text


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
                assert parse(text, dialect=dialect) == event, (cls.type, dialect, text)
