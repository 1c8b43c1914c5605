"""The beta dialect maps onto the same typed events, both directions (spec section 5)."""

from __future__ import annotations

import json

import msgspec
import pytest

import rtproto
from rtproto import events as E
from rtproto import models as M
from rtproto.dialect import Dialect, from_beta, to_beta

from .samples import SERVER_SAMPLES

BETA = Dialect.BETA

BETA_SESSION = {
    "modalities": ["text", "audio"],
    "instructions": "Be brief.",
    "voice": "alloy",
    "input_audio_format": "pcm16",
    "output_audio_format": "g711_ulaw",
    "input_audio_transcription": {"model": "whisper-1", "language": None, "prompt": None},
    "input_audio_noise_reduction": None,
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    },
    "tools": [],
    "tool_choice": "auto",
    "temperature": 0.8,
    "max_response_output_tokens": "inf",
    "speed": 1.0,
    "tracing": None,
}


@pytest.mark.parametrize(
    ("beta", "ga"),
    [
        ("response.text.delta", "response.output_text.delta"),
        ("response.audio.delta", "response.output_audio.delta"),
        ("response.audio_transcript.delta", "response.output_audio_transcript.delta"),
        ("response.text.done", "response.output_text.done"),
        ("response.audio.done", "response.output_audio.done"),
        ("response.audio_transcript.done", "response.output_audio_transcript.done"),
    ],
)
def test_renamed_server_events(beta: str, ga: str) -> None:
    raw = {**SERVER_SAMPLES[ga], "type": beta}
    if ga.endswith(".done"):
        raw.pop("delta", None)
    event = rtproto.parse_server_event(json.dumps(raw), dialect=BETA)
    assert type(event) is E.SERVER_EVENT_TYPES[ga]
    ga_text = rtproto.serialize_server_event(event)
    assert json.loads(ga_text)["type"] == ga
    rebuilt = E.SERVER_EVENT_TYPES[ga](**{f: getattr(event, f) for f in event.__struct_fields__})
    assert json.loads(rtproto.serialize_server_event(rebuilt, dialect=BETA)) == raw


def test_flat_beta_session_maps_to_nested_ga() -> None:
    raw = {"type": "session.created", "event_id": "event_1", "session": BETA_SESSION}
    event = rtproto.parse_server_event(json.dumps(raw), dialect=BETA)
    assert isinstance(event, E.SessionCreated)
    session = event.session
    assert isinstance(session, M.RealtimeSession)
    assert session.output_modalities == ["audio"]
    assert session.max_output_tokens == "inf" and session.temperature == 0.8
    assert session.audio == M.AudioConfig(
        input=M.AudioInput(
            format=M.AudioFormat(type="audio/pcm", rate=24000),
            transcription=M.InputTranscription(model="whisper-1", language=None, prompt=None),
            noise_reduction=None,
            turn_detection=M.ServerVad(
                threshold=0.5,
                prefix_padding_ms=300,
                silence_duration_ms=500,
                create_response=True,
                interrupt_response=True,
            ),
        ),
        output=M.AudioOutput(format=M.AudioFormat(type="audio/pcmu"), voice="alloy", speed=1.0),
    )
    # the typed event written back in beta is the flat object we started from
    rebuilt = E.SessionCreated(session=session, event_id="event_1")
    assert json.loads(rtproto.serialize_server_event(rebuilt, dialect=BETA)) == raw


def test_beta_turn_detection_without_type_is_server_vad() -> None:
    raw = {"type": "session.update", "session": {"turn_detection": {"threshold": 0.6}}}
    event = rtproto.parse_client_event(json.dumps(raw), dialect=BETA)
    assert isinstance(event, E.SessionUpdate)
    assert isinstance(event.session, M.RealtimeSession)
    assert isinstance(event.session.audio, M.AudioConfig)
    assert isinstance(event.session.audio.input, M.AudioInput)
    assert event.session.audio.input.turn_detection == M.ServerVad(threshold=0.6)


def test_ga_session_update_in_beta() -> None:
    update = E.SessionUpdate(
        session=M.RealtimeSession(
            output_modalities=["audio"],
            audio=M.AudioConfig(
                input=M.AudioInput(format=M.AudioFormat(type="audio/pcma"), turn_detection=None),
                output=M.AudioOutput(voice="verse"),
            ),
        )
    )
    assert json.loads(rtproto.serialize_client_event(update, dialect=BETA)) == {
        "type": "session.update",
        "session": {
            "modalities": ["text", "audio"],
            "input_audio_format": "g711_alaw",
            "turn_detection": None,
            "voice": "verse",
        },
    }


def test_transcription_session_update() -> None:
    update = E.SessionUpdate(
        session=M.TranscriptionSession(
            audio=M.TranscriptionAudioConfig(
                input=M.AudioInput(
                    format=M.AudioFormat(type="audio/pcm", rate=24000),
                    transcription=M.InputTranscription(model="gpt-4o-transcribe"),
                )
            ),
            include=["item.input_audio_transcription.logprobs"],
        )
    )
    beta = json.loads(rtproto.serialize_client_event(update, dialect=BETA))
    assert beta == {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"model": "gpt-4o-transcribe"},
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    assert rtproto.parse_client_event(json.dumps(beta), dialect=BETA) == update
    updated = {"type": "transcription_session.updated", "event_id": "e", "session": beta["session"]}
    event = rtproto.parse_server_event(json.dumps(updated), dialect=BETA)
    assert isinstance(event, E.SessionUpdated)
    assert isinstance(event.session, M.TranscriptionSession)


def test_assistant_part_types_in_items() -> None:
    beta_item = {
        "id": "item_A1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "audio", "transcript": "Hi"}, {"type": "text", "text": "Hi"}],
    }
    raw = {"type": "conversation.item.created", "event_id": "e", "item": beta_item}
    event = rtproto.parse_server_event(json.dumps(raw), dialect=BETA)
    assert isinstance(event, E.ConversationItemCreated)
    assert isinstance(event.item, M.MessageItem)
    assert [part.type for part in event.item.content] == ["output_audio", "output_text"]
    # user parts and content_part events keep their names
    user = {**beta_item, "role": "user", "content": [{"type": "input_text", "text": "x"}]}
    assert from_beta({"type": "conversation.item.created", "item": user})["item"] == user
    part_event = SERVER_SAMPLES["response.content_part.added"]
    assert from_beta(part_event) == part_event


def test_response_objects_and_params() -> None:
    beta_response = {
        "id": "resp_1",
        "object": "realtime.response",
        "status": "in_progress",
        "modalities": ["text", "audio"],
        "voice": "alloy",
        "output_audio_format": "pcm16",
        "max_output_tokens": "inf",
        "output": [],
    }
    event = rtproto.parse_server_event(
        json.dumps({"type": "response.created", "event_id": "e", "response": beta_response}),
        dialect=BETA,
    )
    assert isinstance(event, E.ResponseCreated)
    assert event.response.output_modalities == ["audio"]
    assert event.response.audio == M.ResponseAudio(
        output=M.ResponseAudioOutput(
            format=M.AudioFormat(type="audio/pcm", rate=24000), voice="alloy"
        )
    )
    create = E.ResponseCreate(
        response=M.ResponseCreateParams(
            output_modalities=["text"], max_output_tokens=100, temperature=0.7
        )
    )
    assert to_beta(json.loads(rtproto.serialize_client_event(create)))["response"] == {
        "modalities": ["text"],
        "max_response_output_tokens": 100,
        "temperature": 0.7,
    }


def test_unmapped_things_pass_through() -> None:
    odd = {"type": "session.update", "session": "not an object"}
    assert from_beta(odd) == odd and to_beta(odd) == odd
    assert to_beta({"type": 5}) == {"type": 5} and from_beta({"no": "type"}) == {"no": "type"}
    for odd in (
        {"type": "response.create", "response": "x"},
        {"type": "response.done", "response": {"output": "not a list"}},
        {"type": "response.created", "response": None},
        {"type": "conversation.item.create", "item": {"type": "message", "role": "assistant"}},
    ):
        assert from_beta(to_beta(odd)) == odd
    custom = {"type": "audio/pcm", "rate": 16000}
    session = {"type": "realtime", "audio": {"input": {"format": custom}}}
    beta = to_beta({"type": "session.update", "session": session})
    assert beta["session"] == {"input_audio_format": custom}
    assert from_beta(beta)["session"] == session


def test_malformed_items_formats_and_parts_pass_through_both_ways() -> None:
    """What does not have the shape a mapping expects is left as it is, never a crash."""
    assistant = {"type": "message", "role": "assistant"}
    for odd in (
        {"type": "conversation.item.added", "item": None},
        {"type": "conversation.item.added", "item": "text"},
        {"type": "conversation.item.added"},
        {"type": "conversation.item.added", "item": {**assistant, "content": ["a", 1, None]}},
        {"type": "conversation.item.added", "item": {**assistant, "content": [{"type": 5}]}},
        # not an item event: its "item" is not mapped (in either direction's names)
        {"type": "x.custom", "item": {**assistant, "content": [{"type": "output_text"}]}},
        {"type": "x.custom", "item": {**assistant, "content": [{"type": "text"}]}},
    ):
        assert to_beta(odd) == odd
        assert from_beta(odd) == odd
    extra = {"type": "audio/pcm", "rate": 24000, "channels": 1}  # not only type and rate
    session = {"type": "realtime", "audio": {"output": {"format": extra}}}
    beta = to_beta({"type": "session.update", "session": session})
    assert beta["session"] == {"output_audio_format": extra}


def test_beta_parse_reports_mistyped_fields() -> None:
    raw = {"type": "response.audio.delta", "event_id": "e", "delta": 5}
    event = rtproto.parse_server_event(json.dumps(raw), dialect=BETA)
    assert isinstance(event, rtproto.InvalidEvent)
    assert event.type == "response.output_audio.delta" and event.raw == raw
    unknown = rtproto.parse_server_event('{"type":"beta.only"}', dialect=BETA)
    assert isinstance(unknown, rtproto.UnknownEvent)


def test_empty_audio_objects_are_not_sent_to_beta() -> None:
    # a beta server answers session.audio with unknown_parameter (spec 5.4): whatever is left
    # empty under audio once its keys are flat goes, the containers given empty included
    update = E.SessionUpdate(
        session=M.RealtimeSession(
            audio=M.AudioConfig(input=M.AudioInput(), output=M.AudioOutput(voice="x"))
        )
    )
    beta = rtproto.serialize_client_event(update, dialect=BETA)
    assert beta == '{"type":"session.update","session":{"voice":"x"}}'
    back = rtproto.parse_client_event(beta, dialect=BETA)
    assert isinstance(back, E.SessionUpdate) and isinstance(back.session, M.RealtimeSession)
    assert back.session.audio == M.AudioConfig(output=M.AudioOutput(voice="x"))
    for session in (
        M.RealtimeSession(audio=M.AudioConfig()),
        M.RealtimeSession(audio=M.AudioConfig(input=M.AudioInput(), output=M.AudioOutput())),
        M.TranscriptionSession(audio=M.TranscriptionAudioConfig(input=M.AudioInput())),
    ):
        sent = json.loads(
            rtproto.serialize_client_event(E.SessionUpdate(session=session), dialect=BETA)
        )
        assert sent["session"] == {}, sent
    create = E.ResponseCreate(
        response=M.ResponseCreateParams(audio=M.ResponseAudio(output=M.ResponseAudioOutput()))
    )
    assert rtproto.serialize_client_event(create, dialect=BETA) == (
        '{"type":"response.create","response":{}}'
    )
    # what beta cannot flatten stays where it is
    odd = {"type": "realtime", "audio": {"input": {"new": 1}, "output": {}, "other": {}}}
    assert to_beta({"type": "session.update", "session": odd})["session"] == {
        "audio": {"input": {"new": 1}, "other": {}}
    }


def test_pcm_without_a_rate_is_pcm16_in_beta() -> None:
    # audio/pcm has one rate, 24 kHz: no rate means it, and beta's pcm16 says so explicitly
    for rate in (msgspec.UNSET, 24000):
        update = E.SessionUpdate(
            session=M.RealtimeSession(
                audio=M.AudioConfig(
                    input=M.AudioInput(format=M.AudioFormat(type="audio/pcm", rate=rate))
                )
            )
        )
        beta = rtproto.serialize_client_event(update, dialect=BETA)
        assert beta == '{"type":"session.update","session":{"input_audio_format":"pcm16"}}'
        back = rtproto.parse_client_event(beta, dialect=BETA)
        assert isinstance(back, E.SessionUpdate) and isinstance(back.session, M.RealtimeSession)
        assert isinstance(back.session.audio, M.AudioConfig)
        assert isinstance(back.session.audio.input, M.AudioInput)
        assert back.session.audio.input.format == M.AudioFormat(type="audio/pcm", rate=24000)
    other = {"type": "audio/pcm", "rate": 16000}  # not expressible in beta: passed through
    assert to_beta(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"format": other}}},
        }
    )["session"] == {"output_audio_format": other}
