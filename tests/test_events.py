"""Every GA event has a type, parses to it, and serialises to exactly the documented shape."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec
import numpy as np
import pytest

import rtproto
from rtproto import events as E
from rtproto import models as M
from rtproto.codec import server_parser
from rtproto.dialect import Dialect, from_beta, to_beta

from .samples import SERVER_SAMPLES

# --- server events --------------------------------------------------------------------------


def test_every_server_event_type_has_a_sample() -> None:
    assert set(SERVER_SAMPLES) == set(E.SERVER_EVENT_TYPES)
    assert len(E.SERVER_EVENT_TYPES) == 46


@pytest.mark.parametrize("kind", sorted(SERVER_SAMPLES))
def test_server_sample_parses_to_its_type_and_round_trips(kind: str) -> None:
    text = json.dumps(SERVER_SAMPLES[kind])
    event = rtproto.parse_server_event(text)
    assert type(event) is E.SERVER_EVENT_TYPES[kind]
    assert event.type == kind
    assert rtproto.serialize_server_event(event) == text
    # a re-encode of the typed value (not the kept source) gives the same object
    rebuilt = rtproto.serialize_server_event(type(event)(**_fields(event)))
    assert json.loads(rebuilt) == SERVER_SAMPLES[kind]


def _fields(event: Any) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__struct_fields__}


def test_sdk_union_members_each_parse_to_their_own_type() -> None:
    realtime_server_event = pytest.importorskip("openai.types.realtime.realtime_server_event")
    union = typing.get_args(realtime_server_event.RealtimeServerEvent)[0]
    sdk_types = {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in union.__args__}
    assert set(sdk_types) == set(E.SERVER_EVENT_TYPES)
    for kind, model in sdk_types.items():
        # the SDK accepts our sample as its own model, and we type it as ours
        model.model_validate(SERVER_SAMPLES[kind])
        assert (
            type(rtproto.parse_server_event(json.dumps(SERVER_SAMPLES[kind])))
            is (E.SERVER_EVENT_TYPES[kind])
        )


def test_sdk_client_union_matches() -> None:
    realtime_client_event = pytest.importorskip("openai.types.realtime.realtime_client_event")
    union = typing.get_args(realtime_client_event.RealtimeClientEvent)[0]
    kinds = {typing.get_args(m.model_fields["type"].annotation)[0] for m in union.__args__}
    assert kinds == set(E.CLIENT_EVENT_TYPES)


def test_typed_fields_of_a_response_done() -> None:
    event = rtproto.parse_server_event(json.dumps(SERVER_SAMPLES["response.done"]))
    assert isinstance(event, E.ResponseDone)
    response = event.response
    assert response.status == "completed" and response.status_details is None
    assert isinstance(response.usage, M.Usage)
    assert response.usage.total_tokens == 253
    assert isinstance(response.usage.input_token_details, M.InputTokenDetails)
    assert response.usage.input_token_details.cached_tokens == 64
    assert isinstance(response.output, list)
    message, call = response.output
    assert isinstance(message, M.MessageItem) and message.role == "assistant"
    assert message.content[0] == M.ContentPart(type="output_audio", transcript="Hello there!")
    assert isinstance(call, M.FunctionCallItem) and call.call_id == "call_Ijb5"


def test_session_created_is_typed_deeply() -> None:
    event = rtproto.parse_server_event(json.dumps(SERVER_SAMPLES["session.created"]))
    assert isinstance(event, E.SessionCreated)
    session = event.session
    assert isinstance(session, M.RealtimeSession)
    assert isinstance(session.audio, M.AudioConfig)
    assert isinstance(session.audio.input, M.AudioInput)
    vad = session.audio.input.turn_detection
    assert isinstance(vad, M.ServerVad)
    assert (vad.threshold, vad.silence_duration_ms, vad.idle_timeout_ms) == (0.5, 200, None)
    assert session.audio.input.transcription is None
    assert session.tracing is None and session.max_output_tokens == "inf"


def test_error_event_is_data() -> None:
    event = rtproto.parse_server_event(json.dumps(SERVER_SAMPLES["error"]))
    assert isinstance(event, rtproto.ErrorEvent)
    assert event.error.code == "input_audio_buffer_commit_empty"
    assert event.error.event_id == "commit_10" and event.error.param is None


def test_text_delta_types_its_obfuscation() -> None:
    # service observations 8: GA text, transcript and transcription deltas all carry it
    for kind in (
        "response.output_text.delta",
        "response.output_audio_transcript.delta",
        "conversation.item.input_audio_transcription.delta",
    ):
        raw = SERVER_SAMPLES[kind]
        assert isinstance(raw["obfuscation"], str)
        event = rtproto.parse_server_event(json.dumps(raw))
        assert type(event) is E.SERVER_EVENT_TYPES[kind]
        assert event.obfuscation == raw["obfuscation"]  # type: ignore[union-attr]
    delta = E.ResponseOutputTextDelta(
        response_id="r", item_id="i", output_index=0, content_index=0, delta="Hi"
    )
    assert delta.obfuscation is msgspec.UNSET and "obfuscation" not in (
        rtproto.serialize_server_event(delta)
    )


def test_ga_items_carry_no_object_key_but_when_retrieved() -> None:
    # service observations 8: the samples are what the service sends
    for kind in (
        "conversation.item.added",
        "conversation.item.done",
        "response.output_item.added",
        "response.output_item.done",
    ):
        assert "object" not in SERVER_SAMPLES[kind]["item"], kind
    for item in SERVER_SAMPLES["response.done"]["response"]["output"]:
        assert "object" not in item
    assert SERVER_SAMPLES["conversation.item.retrieved"]["item"]["object"] == "realtime.item"


def test_events_are_immutable() -> None:
    event = rtproto.parse_server_event(json.dumps(SERVER_SAMPLES["response.output_text.delta"]))
    with pytest.raises(AttributeError):
        event.delta = "x"  # type: ignore[misc,union-attr]


# --- tolerance --------------------------------------------------------------------------------


def test_unknown_event_keeps_type_and_raw() -> None:
    raw = {"type": "response.brand_new.thing", "event_id": "e1", "x": [1, {"y": None}]}
    text = json.dumps(raw)
    event = rtproto.parse_server_event(text)
    assert isinstance(event, rtproto.UnknownEvent)
    assert event.type == "response.brand_new.thing" and event.raw == raw
    assert rtproto.serialize_server_event(event) == text


# Texts whose re-encoding differs from what arrived: spacing, number spelling, escapes.
UNTYPED_TEXTS = [
    '{"type":"brand.new.event","x":1.0e3,"s":"caf\\u00e9"}',
    '{ "type" : "brand.new.event", "x": [1E2, -0.0, 10000000000000000000000] }',
    '{"type":"response.done","event_id":"e","response":{"id":"r","usage":{"total_tokens":null}},'
    '"extra":1E2}',
    '{"type":"conversation.item.truncated","event_id":"e","item_id":"i","content_index":0,'
    '"audio_end_ms":1.5e3,"s":"\\ud83d\\ude00"}',
]


@pytest.mark.parametrize("text", UNTYPED_TEXTS)
@pytest.mark.parametrize("dialect", list(Dialect))
def test_unknown_and_invalid_events_are_resent_exactly_as_they_arrived(
    text: str, dialect: Dialect
) -> None:
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        for parse, serialize in (
            (rtproto.parse_server_event, rtproto.serialize_server_event),
            (rtproto.parse_client_event, rtproto.serialize_client_event),
        ):
            event = parse(data, dialect=dialect)
            assert isinstance(event, (rtproto.UnknownEvent, rtproto.InvalidEvent))
            assert event.raw == json.loads(text)
            assert serialize(event, dialect=dialect) == text
    server_event = rtproto.parse_server_event(text, dialect=dialect)
    assert type(server_event) is (
        rtproto.UnknownEvent if "brand.new" in text else rtproto.InvalidEvent
    )


def test_unknown_and_invalid_events_follow_the_dialect_they_are_sent_in() -> None:
    # an InvalidEvent that arrived in beta, with its beta name, sent in GA: its GA name
    beta = '{"type":"response.text.delta","event_id":"e","response_id":"r","item_id":"i",'
    beta += '"output_index":0,"content_index":0,"delta":5}'
    event = rtproto.parse_server_event(beta, dialect=Dialect.BETA)
    assert isinstance(event, rtproto.InvalidEvent)
    assert event.type == "response.output_text.delta"
    assert rtproto.serialize_server_event(event, dialect=Dialect.BETA) == beta
    ga = json.loads(rtproto.serialize_server_event(event))
    assert ga == {**json.loads(beta), "type": "response.output_text.delta"}
    # and the other way
    event = rtproto.parse_server_event(json.dumps(ga))
    assert isinstance(event, rtproto.InvalidEvent)
    assert json.loads(rtproto.serialize_server_event(event, dialect=Dialect.BETA)) == json.loads(
        beta
    )
    # a mistyped GA session.update sent in beta: flattened like any other
    update = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"output": {"voice": 5}}, "new": 1},
    }
    invalid = rtproto.parse_client_event(json.dumps(update))
    assert isinstance(invalid, rtproto.InvalidEvent)
    sent = json.loads(rtproto.serialize_client_event(invalid, dialect=Dialect.BETA))
    assert sent == to_beta(update) == {"type": "session.update", "session": {"voice": 5, "new": 1}}
    back = rtproto.parse_client_event(json.dumps(sent), dialect=Dialect.BETA)
    assert json.loads(rtproto.serialize_client_event(back)) == from_beta(sent)
    # an unknown beta event keeps its name in both dialects
    unknown = rtproto.parse_server_event('{"type":"beta.only","x":1}', dialect=Dialect.BETA)
    assert rtproto.serialize_server_event(unknown) == '{"type":"beta.only","x":1}'


def test_constructed_unknown_and_invalid_events_are_sent_as_they_are() -> None:
    raw = {"type": "session.update", "session": {"type": "realtime", "audio": {}}}
    for event in (
        rtproto.UnknownEvent(type="session.update", raw=raw),
        rtproto.InvalidEvent(type="session.update", problem="p", raw=raw),
    ):
        for dialect in Dialect:
            assert json.loads(rtproto.serialize_client_event(event, dialect=dialect)) == raw


def test_unknown_fields_survive_a_round_trip_unchanged() -> None:
    raw = dict(SERVER_SAMPLES["response.done"])
    raw["brand_new"] = {"nested": [1, 2.5, None]}
    raw["response"] = {**raw["response"], "new_inner": True}
    text = json.dumps(raw, indent=1)
    event = rtproto.parse_server_event(text)
    assert isinstance(event, E.ResponseDone)
    assert rtproto.serialize_server_event(event) == text
    assert rtproto.event_raw(event) == raw
    # ... and across the dialect rewrite too
    beta = json.loads(rtproto.serialize_server_event(event, dialect=Dialect.BETA))
    assert beta["brand_new"] == raw["brand_new"] and beta["response"]["new_inner"] is True


@pytest.mark.parametrize(
    ("kind", "field", "bad"),
    [
        ("response.output_audio.delta", "delta", 5),
        ("response.output_audio.delta", "output_index", "0"),
        ("conversation.item.truncated", "audio_end_ms", 1.5),
        ("response.done", "response", []),
        ("session.created", "session", {"type": "bogus"}),
        ("error", "error", {"message": "no type"}),
        ("input_audio_buffer.speech_started", "item_id", None),
    ],
)
def test_known_event_with_wrong_field_type_is_reported_not_mistyped(
    kind: str, field: str, bad: object
) -> None:
    raw = {**SERVER_SAMPLES[kind], field: bad}
    event = rtproto.parse_server_event(json.dumps(raw))
    assert isinstance(event, rtproto.InvalidEvent)
    assert event.type == kind and event.raw == raw
    assert field in event.problem
    assert json.loads(rtproto.serialize_server_event(event)) == raw


def test_missing_required_field_is_reported() -> None:
    raw = {k: v for k, v in SERVER_SAMPLES["response.output_audio.delta"].items() if k != "delta"}
    event = rtproto.parse_server_event(json.dumps(raw))
    assert isinstance(event, rtproto.InvalidEvent) and "delta" in event.problem


def malformed_response_done() -> dict[str, Any]:
    raw = json.loads(json.dumps(SERVER_SAMPLES["response.done"]))
    raw["response"]["usage"]["output_token_details"] = None
    raw["response"]["output"] = [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": 1}]},
        {"type": "function_call", "id": "item_2", "call_id": "c", "name": "f", "arguments": "{}"},
    ]
    return raw


def test_salvage_drops_what_did_not_fit_and_keeps_what_arrived() -> None:
    raw = malformed_response_done()
    event = rtproto.parse_server_event(json.dumps(raw))
    assert isinstance(event, rtproto.InvalidEvent)
    salvaged = rtproto.codec.salvage(event)
    assert isinstance(salvaged, E.ResponseDone)
    assert salvaged.response.id == raw["response"]["id"]
    usage = salvaged.response.usage
    assert isinstance(usage, M.Usage) and usage.output_token_details is msgspec.UNSET
    assert usage.input_tokens == raw["response"]["usage"]["input_tokens"]
    message, call = salvaged.response.output
    assert isinstance(message, M.MessageItem) and message.content[0].text is msgspec.UNSET
    assert isinstance(call, M.FunctionCallItem) and call.call_id == "c"
    assert rtproto.event_raw(salvaged) == raw  # as it arrived
    assert json.loads(rtproto.serialize_server_event(salvaged)) == raw


def test_salvage_drops_a_list_element_that_cannot_be_typed() -> None:
    raw = malformed_response_done()
    raw["response"]["output"].insert(0, 7)
    salvaged = rtproto.codec.salvage(rtproto.parse_server_event(json.dumps(raw)))
    assert isinstance(salvaged, E.ResponseDone)
    assert [item.type for item in salvaged.response.output] == ["message", "function_call"]


def test_salvage_drops_a_dict_whose_value_cannot_be_typed() -> None:
    # msgspec names a dict value `[...]`: the dict holding it goes
    tool = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://example.com/mcp",
        "headers": {"Authorization": None},
    }
    raw = json.loads(json.dumps(SERVER_SAMPLES["session.created"]))
    raw["session"]["tools"] = [tool]
    text = json.dumps(raw)
    event = rtproto.parse_server_event(text)
    assert isinstance(event, rtproto.InvalidEvent)
    assert "$.session.tools[0].headers[...]" in event.problem
    salvaged = rtproto.salvage(event)
    assert isinstance(salvaged, E.SessionCreated)
    assert isinstance(salvaged.session, M.RealtimeSession)
    assert isinstance(salvaged.session.tools, list)
    (mcp,) = salvaged.session.tools
    assert isinstance(mcp, M.McpTool)
    assert mcp.server_label == "docs" and mcp.headers is msgspec.UNSET
    assert rtproto.event_raw(salvaged) == raw
    assert rtproto.serialize_server_event(salvaged) == text  # exactly what arrived
    # a path that goes on inside the dict value ends at the dict too
    assert rtproto.codec._error_path("Expected `str`, got `null` - at `$.a[0].b[...].c[1]`") == [
        "a",
        0,
        "b",
    ]


def test_salvage_gives_up_on_required_fields_and_after_its_bound() -> None:
    for raw in (
        {"type": "response.done", "response": 5},
        {**SERVER_SAMPLES["response.output_audio.delta"], "item_id": 5},
    ):
        event = rtproto.parse_server_event(json.dumps(raw))
        assert isinstance(event, rtproto.InvalidEvent)
        assert rtproto.codec.salvage(event) is None
    raw = json.loads(json.dumps(SERVER_SAMPLES["response.done"]))
    raw["response"]["output"] = [7] * 9
    event = rtproto.parse_server_event(json.dumps(raw))
    assert isinstance(event, rtproto.InvalidEvent)
    assert rtproto.codec.salvage(event) is None  # nine bad elements, eight drops allowed
    assert isinstance(rtproto.codec.salvage(event, max_dropped=9), E.ResponseDone)


def test_salvage_in_the_beta_dialect() -> None:
    beta = to_beta(malformed_response_done())
    event = rtproto.parse_server_event(json.dumps(beta), dialect=Dialect.BETA)
    assert isinstance(event, rtproto.InvalidEvent)
    salvaged = rtproto.codec.salvage(event, dialect=Dialect.BETA)
    assert isinstance(salvaged, E.ResponseDone)
    assert rtproto.event_raw(salvaged) == beta
    # an event whose beta name differs: typed only once converted to its GA name
    delta = {**to_beta(SERVER_SAMPLES["response.output_audio.delta"]), "event_id": 5}
    assert delta["type"] == "response.audio.delta"
    event = rtproto.parse_server_event(json.dumps(delta), dialect=Dialect.BETA)
    assert isinstance(event, rtproto.InvalidEvent)
    salvaged = rtproto.codec.salvage(event, dialect=Dialect.BETA)
    assert isinstance(salvaged, E.ResponseOutputAudioDelta)
    assert rtproto.event_raw(salvaged) == delta


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"type": 5}',
        b'{"type": null}',
        b'{"type": "error"',
        b'{"type": "x", "n": NaN}',
        b'{"type": "x", "s": "\xff"}',
        b'{"type": "x", "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"type": "response.output_audio.delta", "delta": ' + b"[" * 100_000 + b"}",
    ],
)
@pytest.mark.parametrize("dialect", list(Dialect))
def test_only_non_events_raise(data: bytes, dialect: Dialect) -> None:
    for parse in (rtproto.parse_server_event, rtproto.parse_client_event):
        with pytest.raises(rtproto.RemoteProtocolError) as info:
            parse(data, dialect=dialect)
        assert info.value.hint == 1007
        assert info.value.excerpt is not None and len(info.value.excerpt) <= 200
        if b"[" * 100_000 in data:
            assert info.value.message == "JSON nesting is too deep"


def test_message_size_limit() -> None:
    text = json.dumps(SERVER_SAMPLES["response.output_audio.delta"])
    beta = json.dumps(to_beta(SERVER_SAMPLES["response.output_audio.delta"]))
    for data, dialect in (
        (text, Dialect.GA),
        (beta, Dialect.BETA),
        (memoryview(text.encode()), Dialect.GA),
    ):
        event = rtproto.parse_server_event(data, dialect=dialect, max_size=len(data))
        assert isinstance(event, E.ResponseOutputAudioDelta)  # exactly at the limit: taken
        with pytest.raises(rtproto.RemoteProtocolError) as info:
            rtproto.parse_server_event(data, dialect=dialect, max_size=len(data) - 1)
        assert info.value.hint == 1009
    assert rtproto.DEFAULT_MAX_MESSAGE_SIZE == 16 * 1024 * 1024


def test_client_events_take_the_largest_append_by_default() -> None:
    # spec 7: one append carries up to 15 MiB of audio, ~20 MiB of JSON once base64-encoded
    text = rtproto.encode_audio_append(bytes(15 * 1024 * 1024))
    assert len(text) == 20_971_567 > rtproto.DEFAULT_MAX_MESSAGE_SIZE
    assert rtproto.codec.DEFAULT_MAX_CLIENT_MESSAGE_SIZE == 21 * 1024 * 1024
    for dialect in Dialect:
        event = rtproto.parse_client_event(text, dialect=dialect)
        assert isinstance(event, E.InputAudioBufferAppend)
        assert len(event.audio) == 20 * 1024 * 1024  # 15 MiB, base64-encoded
    too_big = text + " " * (21 * 1024 * 1024 - len(text) + 1)
    with pytest.raises(rtproto.RemoteProtocolError) as info:
        rtproto.parse_client_event(too_big)
    assert info.value.hint == 1009
    with pytest.raises(rtproto.RemoteProtocolError):
        rtproto.parse_server_event(text)  # server events keep their 16 MiB


def _parsers(max_size: int) -> list[Any]:
    return [
        lambda data, dialect: rtproto.parse_server_event(data, dialect=dialect, max_size=max_size),
        lambda data, dialect: rtproto.parse_client_event(data, dialect=dialect, max_size=max_size),
        lambda data, dialect: server_parser(dialect=dialect, max_size=max_size)(data),
    ]


def _text_delta(text: str) -> str:
    """A typed event holding ``text`` (the GA fast path takes it), not ASCII-escaped."""
    delta = {**SERVER_SAMPLES["response.output_text.delta"], "delta": text}
    return json.dumps(delta, ensure_ascii=False)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_message_size_counts_bytes_of_utf8(dialect: Dialect) -> None:
    for char in ("é", "€", "😀"):  # 2, 3 and 4 bytes each
        for text in ('{"type":"x","s":"' + char * 100 + '"}', _text_delta(char * 100)):
            size = len(text.encode())
            assert size >= len(text) + 100
            for parse in _parsers(size):  # exactly at the limit: taken
                assert not isinstance(parse(text, dialect), rtproto.InvalidEvent)
            for max_size in (size - 1, len(text)):  # (characters are not the measure)
                for parse in _parsers(max_size):
                    with pytest.raises(rtproto.RemoteProtocolError) as info:
                        parse(text, dialect)
                    assert info.value.hint == 1009 and f"of {size} bytes" in info.value.message
    ascii_text = '{"type":"x","s":"' + "a" * 200 + '"}'  # ASCII: characters are bytes
    for parse in _parsers(len(ascii_text)):
        assert isinstance(parse(ascii_text, dialect), rtproto.UnknownEvent)
    for parse in _parsers(len(ascii_text) - 1):
        with pytest.raises(rtproto.RemoteProtocolError):
            parse(ascii_text, dialect)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_a_lone_surrogate_in_a_str_is_not_utf8(dialect: Dialect) -> None:
    for parse in _parsers(1 << 20):
        with pytest.raises(rtproto.RemoteProtocolError) as info:
            parse('{"type": "x", "s": "\udcff"}', dialect)
        assert (info.value.message, info.value.hint) == ("message is not valid UTF-8", 1007)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_server_parser_equals_parse_server_event(dialect: Dialect) -> None:
    parse = server_parser(dialect=dialect)
    for sample in SERVER_SAMPLES.values():
        text = json.dumps(sample)
        for data in (text, text.encode()):
            event = parse(data)
            assert event == rtproto.parse_server_event(data, dialect=dialect)
            assert rtproto.event_raw(event) == sample
    beta_name = {**SERVER_SAMPLES["response.output_audio.delta"], "type": "response.audio.delta"}
    expected = E.ResponseOutputAudioDelta if dialect is Dialect.BETA else rtproto.UnknownEvent
    assert type(parse(json.dumps(beta_name))) is expected


def test_the_default_limit_counts_bytes_of_a_str() -> None:
    limit = rtproto.DEFAULT_MAX_MESSAGE_SIZE
    fits = _text_delta("é" * (limit // 4))  # over a quarter, 8 MiB of UTF-8
    over = _text_delta("é" * (limit // 2))  # 8 Mi characters, over 16 MiB of UTF-8
    assert len(fits) > limit >> 2 and len(over) < limit < len(over.encode())
    for parse in (rtproto.parse_server_event, server_parser()):
        assert isinstance(parse(fits), E.ResponseOutputTextDelta)
        with pytest.raises(rtproto.RemoteProtocolError) as info:
            parse(over)
        assert info.value.hint == 1009


@pytest.mark.parametrize("dialect", list(Dialect))
def test_message_size_counts_bytes_of_any_buffer(dialect: Dialect) -> None:
    data = b'{"type":"x", "a":1}' + b" "  # 20 bytes, 5 int32 elements
    int32: Any = np.frombuffer(data, dtype=np.int32)
    for view in (memoryview(int32), memoryview(data).cast("i")):
        assert len(view) == 5 and view.nbytes == 20
        for parse in _parsers(19):
            with pytest.raises(rtproto.RemoteProtocolError) as info:
                parse(view, dialect)
            assert "of 20 bytes" in info.value.message
        for parse in _parsers(20):
            event = parse(view, dialect)
            assert isinstance(event, rtproto.UnknownEvent) and event.raw == {"type": "x", "a": 1}


def test_bytes_bytearray_and_memoryview_inputs() -> None:
    text = json.dumps(SERVER_SAMPLES["response.output_text.delta"])
    buffer = bytearray(text.encode())
    event = rtproto.parse_server_event(memoryview(buffer))
    buffer[:] = b" " * len(buffer)  # the caller reuses its buffer
    assert rtproto.serialize_server_event(event) == text
    assert rtproto.parse_server_event(text.encode()) == event


# --- audio fast path ------------------------------------------------------------------------


def test_audio_delta_decodes_lazily_once() -> None:
    event = rtproto.parse_server_event(json.dumps(SERVER_SAMPLES["response.output_audio.delta"]))
    assert isinstance(event, E.ResponseOutputAudioDelta)
    assert "_audio" not in event.__dict__
    assert event.audio == b"\x00\x00\x01\x00\xff\xff"
    assert event.audio is event.audio
    assert event.pcm.dtype == np.dtype("<i2") and event.pcm.tolist() == [0, 1, -1]


@pytest.mark.parametrize("bad", ["AAA", "AA=A", "AA AA", "AA\nAA", "AAAé", "AAAA===="])
def test_audio_delta_base64_is_strict(bad: str) -> None:
    raw = {**SERVER_SAMPLES["response.output_audio.delta"], "delta": bad}
    event = rtproto.parse_server_event(json.dumps(raw))
    assert isinstance(event, E.ResponseOutputAudioDelta)
    assert rtproto.serialize_server_event(event) == json.dumps(raw)  # forwarding never decodes
    with pytest.raises(rtproto.RemoteProtocolError) as info:
        _ = event.pcm
    assert info.value.event_type == "response.output_audio.delta"


def test_append_from_bytes_and_array() -> None:
    pcm = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    from_array = E.InputAudioBufferAppend.from_pcm(pcm)
    from_bytes = E.InputAudioBufferAppend.from_pcm(pcm.tobytes())
    assert from_array == from_bytes
    assert from_array.audio_bytes == pcm.tobytes()
    big_endian = pcm.astype(">i2")
    assert E.InputAudioBufferAppend.from_pcm(big_endian) == from_array  # type: ignore[arg-type]
    strided = np.repeat(pcm, 2)[::2]
    assert E.InputAudioBufferAppend.from_pcm(strided) == from_array
    text = rtproto.serialize_client_event(E.InputAudioBufferAppend.from_pcm(b"", event_id="a1"))
    assert json.loads(text) == {"type": "input_audio_buffer.append", "audio": "", "event_id": "a1"}
    with pytest.raises(rtproto.RemoteProtocolError):
        _ = E.InputAudioBufferAppend(audio="***").audio_bytes


# --- client events: exact send -----------------------------------------------------------------

FUNCTION_TOOL = M.FunctionTool(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)

CLIENT_LITERALS: list[tuple[E.Event, str]] = [
    (
        E.SessionUpdate(
            session=M.RealtimeSession(
                model="gpt-realtime",
                output_modalities=["audio"],
                instructions="Be brief.",
                audio=M.AudioConfig(
                    input=M.AudioInput(
                        format=M.AudioFormat(type="audio/pcm", rate=24000),
                        turn_detection=M.SemanticVad(eagerness="low"),
                        transcription=None,
                    ),
                    output=M.AudioOutput(voice="marin", speed=1.0),
                ),
                tools=[FUNCTION_TOOL],
                tool_choice="auto",
                max_output_tokens="inf",
                tracing=None,
            ),
            event_id="evt_1",
        ),
        '{"type":"session.update","event_id":"evt_1","session":{"type":"realtime",'
        '"model":"gpt-realtime","output_modalities":["audio"],"instructions":"Be brief.",'
        '"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":null,'
        '"turn_detection":{"type":"semantic_vad","eagerness":"low"}},'
        '"output":{"voice":"marin","speed":1.0}},'
        '"tools":[{"type":"function","name":"get_weather","description":"Weather for a city",'
        '"parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],'
        '"tool_choice":"auto","max_output_tokens":"inf","tracing":null}}',
    ),
    (
        E.SessionUpdate(
            session=M.TranscriptionSession(
                audio=M.TranscriptionAudioConfig(
                    input=M.AudioInput(
                        format=M.AudioFormat(type="audio/pcm", rate=24000),
                        noise_reduction=M.NoiseReduction(type="near_field"),
                        transcription=M.InputTranscription(
                            model="gpt-4o-transcribe", language="en", prompt=""
                        ),
                        turn_detection=M.ServerVad(
                            threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500
                        ),
                    )
                ),
                include=["item.input_audio_transcription.logprobs"],
            )
        ),
        '{"type":"session.update","session":{"type":"transcription",'
        '"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},'
        '"noise_reduction":{"type":"near_field"},'
        '"transcription":{"model":"gpt-4o-transcribe","language":"en","prompt":""},'
        '"turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,'
        '"silence_duration_ms":500}}},"include":["item.input_audio_transcription.logprobs"]}}',
    ),
    (
        E.InputAudioBufferAppend(audio="AAABAA=="),
        '{"type":"input_audio_buffer.append","audio":"AAABAA=="}',
    ),
    (E.InputAudioBufferCommit(), '{"type":"input_audio_buffer.commit"}'),
    (
        E.InputAudioBufferCommit(event_id="commit_10"),
        '{"type":"input_audio_buffer.commit","event_id":"commit_10"}',
    ),
    (E.InputAudioBufferClear(), '{"type":"input_audio_buffer.clear"}'),
    (E.OutputAudioBufferClear(), '{"type":"output_audio_buffer.clear"}'),
    (
        E.ConversationItemCreate(
            item=M.FunctionCallOutputItem(call_id="call_Ijb5", output='{"temp_c":21}')
        ),
        '{"type":"conversation.item.create","item":{"type":"function_call_output",'
        '"call_id":"call_Ijb5","output":"{\\"temp_c\\":21}"}}',
    ),
    (
        E.ConversationItemCreate(
            item=M.MessageItem(
                role="user",
                content=[
                    M.ContentPart(type="input_text", text="What is this?"),
                    M.ContentPart(
                        type="input_image", image_url="data:image/png;base64,AAAA", detail="low"
                    ),
                ],
            ),
            previous_item_id="root",
        ),
        '{"type":"conversation.item.create","item":{"type":"message","role":"user",'
        '"content":[{"type":"input_text","text":"What is this?"},{"type":"input_image",'
        '"image_url":"data:image/png;base64,AAAA","detail":"low"}]},"previous_item_id":"root"}',
    ),
    (
        E.ConversationItemCreate(
            item=M.MessageItem(
                role="system", content=[M.ContentPart(type="input_text", text="Be kind.")]
            )
        ),
        '{"type":"conversation.item.create","item":{"type":"message","role":"system",'
        '"content":[{"type":"input_text","text":"Be kind."}]}}',
    ),
    (
        E.ConversationItemCreate(
            item=M.McpApprovalResponseItem(id="mcpa_1", approval_request_id="mcpr_1", approve=True)
        ),
        '{"type":"conversation.item.create","item":{"type":"mcp_approval_response",'
        '"id":"mcpa_1","approval_request_id":"mcpr_1","approve":true}}',
    ),
    (
        E.ConversationItemRetrieve(item_id="item_A1"),
        '{"type":"conversation.item.retrieve","item_id":"item_A1"}',
    ),
    (
        E.ConversationItemTruncate(item_id="item_A1", content_index=0, audio_end_ms=1500),
        '{"type":"conversation.item.truncate","item_id":"item_A1","content_index":0,'
        '"audio_end_ms":1500}',
    ),
    (
        E.ConversationItemDelete(item_id="item_A1"),
        '{"type":"conversation.item.delete","item_id":"item_A1"}',
    ),
    (E.ResponseCreate(), '{"type":"response.create"}'),
    (
        E.ResponseCreate(
            response=M.ResponseCreateParams(
                conversation="none",
                output_modalities=["text"],
                instructions="Summarise.",
                metadata={"topic": "summary"},
                input=[M.ItemReference(id="item_U1")],
            )
        ),
        '{"type":"response.create","response":{"output_modalities":["text"],'
        '"instructions":"Summarise.","conversation":"none",'
        '"input":[{"type":"item_reference","id":"item_U1"}],"metadata":{"topic":"summary"}}}',
    ),
    (E.ResponseCancel(), '{"type":"response.cancel"}'),
    (
        E.ResponseCancel(response_id="resp_R1"),
        '{"type":"response.cancel","response_id":"resp_R1"}',
    ),
]


def test_every_client_event_type_has_a_literal() -> None:
    assert {event.type for event, _ in CLIENT_LITERALS} == set(E.CLIENT_EVENT_TYPES)


@pytest.mark.parametrize(("event", "literal"), CLIENT_LITERALS)
def test_client_event_serialises_to_the_documented_shape(event: E.Event, literal: str) -> None:
    text = rtproto.serialize_client_event(event)  # type: ignore[arg-type]
    assert json.loads(text) == json.loads(literal)
    assert "null" not in text or "null" in literal
    parsed = rtproto.parse_client_event(literal)
    assert parsed == event


def test_raw_dict_is_sent_as_is() -> None:
    raw = {"type": "session.close", "anything": [1]}
    assert json.loads(rtproto.serialize_client_event(raw)) == raw
    assert json.loads(rtproto.serialize_client_event(raw, dialect=Dialect.BETA)) == raw


@pytest.mark.parametrize(
    "bad", [{"no": "type"}, {"type": 1}, {"type": "x", "f": object()}, "text", 5]
)
def test_serialize_refuses_non_events(bad: Any) -> None:
    with pytest.raises(rtproto.LocalProtocolError):
        rtproto.serialize_client_event(bad)


def test_serialize_refuses_the_wrong_direction() -> None:
    with pytest.raises(rtproto.LocalProtocolError) as info:
        rtproto.serialize_client_event(E.InputAudioBufferCleared())  # type: ignore[arg-type]
    assert info.value.event_type == "input_audio_buffer.cleared"
    with pytest.raises(rtproto.LocalProtocolError):
        rtproto.serialize_server_event(E.InputAudioBufferClear())  # type: ignore[arg-type]


def test_event_raw_of_constructed_event() -> None:
    event = E.ConversationItemDelete(item_id="item_1")
    assert rtproto.event_raw(event) == {"type": "conversation.item.delete", "item_id": "item_1"}
    unknown = rtproto.parse_client_event('{"type":"session.close"}')
    assert rtproto.event_raw(unknown) == {"type": "session.close"}


@pytest.mark.parametrize("event_id", [None, "append_1", 'odd "id" \\ é'])
def test_fast_append_text_equals_the_typed_path(event_id: str | None) -> None:
    pcm = np.arange(-240, 240, dtype=np.int16)
    for data in (pcm, pcm.tobytes(), bytearray(pcm.tobytes()), pcm[::2], pcm.astype(">i2")):
        typed = E.InputAudioBufferAppend.from_pcm(
            data,  # type: ignore[arg-type]
            event_id=event_id if event_id is not None else msgspec.UNSET,
        )
        assert rtproto.encode_audio_append(data, event_id=event_id) == (  # type: ignore[arg-type]
            rtproto.serialize_client_event(typed)
        )
    with pytest.raises(TypeError):
        rtproto.encode_audio_append(np.zeros(4, dtype=np.float32))  # type: ignore[arg-type]


def test_salvage_of_a_constructed_invalid_event_cuts_a_copy_of_its_raw() -> None:
    raw = malformed_response_done()
    parsed = rtproto.parse_server_event(json.dumps(raw))
    assert isinstance(parsed, rtproto.InvalidEvent)
    event = rtproto.InvalidEvent(type="response.done", problem=parsed.problem, raw=raw)
    salvaged = rtproto.salvage(event)
    assert isinstance(salvaged, E.ResponseDone)
    usage = salvaged.response.usage
    assert isinstance(usage, M.Usage) and usage.output_token_details is msgspec.UNSET
    assert isinstance(salvaged.response.output, list)
    message, call = salvaged.response.output
    assert isinstance(message, M.MessageItem) and message.content[0].text is msgspec.UNSET
    assert isinstance(call, M.FunctionCallItem) and call.call_id == "c"
    assert raw == malformed_response_done()  # cut from a copy: the event's raw is whole
    # the raw, encoded, is what it keeps as having arrived
    assert rtproto.event_raw(salvaged) == raw
    assert rtproto.serialize_server_event(salvaged) == json.dumps(raw, separators=(",", ":"))


def test_salvage_gives_up_on_a_raw_it_cannot_encode_or_a_problem_it_cannot_find() -> None:
    raw = malformed_response_done()
    unencodable = rtproto.InvalidEvent(
        type="response.done", problem="p", raw={**raw, "x": object()}
    )
    assert rtproto.salvage(unencodable) is None
    for path in (
        "$.response.nothing.at_all",  # a step that is not there
        "$.response.output[0].content[5].text",  # an index past the end on the way
        "$.response.nothing",  # the last key is not there
        "$.response.output[7]",  # nor the last index
        "$.response.id.x",  # a step into a str
    ):
        problem = f"Expected `int`, got `null` - at `{path}`"
        event = rtproto.InvalidEvent(type="response.done", problem=problem, raw=raw)
        assert rtproto.salvage(event) is None, path


def _event_classes(base: type[E.Event] = E.Event) -> list[type[E.Event]]:
    found = []
    for cls in base.__subclasses__():
        found += [cls, *_event_classes(cls)]
    return found


def test_every_event_class_is_immutable_and_keyword_only() -> None:
    """docs/events.md: one immutable class per event; fields are given by name; defaults are
    left out of the JSON."""
    classes = _event_classes()
    assert len(classes) >= 57  # 46 server and 11 client events, and their shared bases
    classes += [E.UnknownEvent, E.InvalidEvent]  # what the codec makes of anything else
    for cls in classes:
        config = cls.__struct_config__
        assert config.frozen, cls.__name__
        assert config.omit_defaults or cls in (E.UnknownEvent, E.InvalidEvent), cls.__name__
        with pytest.raises(TypeError, match="positional"):
            cls("positional")
