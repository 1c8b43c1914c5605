"""The Twilio bridge, sans I/O: scripted calls with the exact messages sent both ways."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from rtproto.errors import LocalProtocolError
from rtproto.phone import TwilioBridge, TwilioBridgeOptions, TwilioMessageReceived
from rtproto.session import (
    AudioInterrupted,
    ClientSession,
    ProtocolWarning,
    SessionOptions,
)
from rtproto.wire.twilio import StreamDtmf, StreamStart

from .scripts import Server

MULAW_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
#: The server's session in the phone profile: G.711 mu-law both ways, semantic VAD.
PHONE_AUDIO = {
    "input": {"format": {"type": "audio/pcmu"}, "turn_detection": {"type": "semantic_vad"}},
    "output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"},
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Call:
    """A phone-profile session, its bridge, and helpers to play both peers."""

    def __init__(self, connect: bool = True, **options: Any) -> None:
        bridge_options = options.pop("bridge", None)
        self.session = ClientSession(SessionOptions(profile="phone", **options))
        self.bridge = TwilioBridge(self.session, bridge_options)
        self.server = Server()
        self.seq = 0
        if connect:
            self.session.connection_made(0.0)
            self.feed(self.server.session_created(audio=PHONE_AUDIO))
            self.to_realtime()

    # -- Twilio's side --
    def twilio(self, event: str, now: float = 0.0, **fields: Any) -> None:
        self.seq += 1
        message = {"event": event, "sequenceNumber": str(self.seq), "streamSid": "MZ1", **fields}
        self.bridge.receive_twilio(json.dumps(message), now)
        self.pump()

    def start(self, media_format: dict[str, Any] | None = None, now: float = 0.0) -> None:
        start = {
            "streamSid": "MZ1",
            "callSid": "CA1",
            "accountSid": "AC1",
            "tracks": ["inbound"],
            "mediaFormat": media_format or MULAW_FORMAT,
            "customParameters": {"who": "caller"},
        }
        self.twilio("start", now, start=start)

    def media(
        self, data: bytes, timestamp: int | None = None, now: float = 0.0, **extra: Any
    ) -> None:
        media = {"track": "inbound", "chunk": str(self.seq), "payload": b64(data), **extra}
        if timestamp is not None:
            media["timestamp"] = str(timestamp)
        self.twilio("media", now, media=media)

    def mark(self, name: str, now: float = 0.0) -> None:
        self.twilio("mark", now, mark={"name": name})

    # -- the Realtime server's side --
    def feed(self, text: str, now: float = 0.0) -> None:
        self.session.receive(text, now)
        self.pump()

    def audio(self, item_id: str, data: bytes, response_id: str = "resp_1", index: int = 0) -> None:
        ctx = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        self.feed(
            self.server.event(
                "response.output_audio.delta", **ctx, content_index=index, delta=b64(data)
            )
        )

    def audio_done(self, item_id: str, response_id: str = "resp_1", index: int = 0) -> None:
        ctx = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        self.feed(self.server.event("response.output_audio.done", **ctx, content_index=index))

    # -- what came out --
    def pump(self) -> None:
        self.events = getattr(self, "events", [])
        for event in self.session.events():
            self.bridge.handle_session_event(event)
            self.events.append(event)
        self.events.extend(self.bridge.events())

    def to_twilio(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.bridge.twilio_messages_to_send()]

    def to_realtime(self) -> list[dict[str, Any]]:
        out = [json.loads(text) for text in self.session.messages_to_send()]
        for message in out:
            message.pop("event_id", None)
        return out

    def appended(self) -> list[bytes]:
        return [
            base64.b64decode(m["audio"])
            for m in self.to_realtime()
            if m["type"] == "input_audio_buffer.append"
        ]


def test_the_phone_profile_speaks_mulaw_both_ways() -> None:
    session = ClientSession(SessionOptions(profile="phone", model="gpt-realtime"))
    session.connection_made(0.0)
    (update,) = [json.loads(text) for text in session.messages_to_send()]
    audio = update["session"]["audio"]
    assert audio["input"]["format"] == audio["output"]["format"] == {"type": "audio/pcmu"}


def test_the_bridge_needs_a_phone_session_in_mulaw() -> None:
    with pytest.raises(LocalProtocolError, match=r"phone profile.*profile='phone'"):
        TwilioBridge(ClientSession(SessionOptions(profile="websocket")))
    pcm = {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}}}}
    with pytest.raises(LocalProtocolError, match=r"session.audio.output.format is 'audio/pcm'"):
        TwilioBridge(ClientSession(SessionOptions(profile="phone", session=pcm)))
    ulaw = {"inputAudioFormat": "g711_ulaw", "outputAudioFormat": "g711_ulaw"}
    TwilioBridge(ClientSession(SessionOptions(profile="phone", session=ulaw)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_inactivity_timeout", 0),
        ("input_inactivity_timeout", -1.0),
        ("input_inactivity_timeout", True),
        ("input_inactivity_timeout", 3e6),
        ("input_inactivity_timeout", "1"),
        ("max_message_size", 0),
        ("max_pending_marks", True),
        ("max_pending_messages", 1.5),
        ("max_pending_events", -3),
    ],
)
def test_bad_options_are_refused(field: str, value: Any) -> None:
    with pytest.raises(LocalProtocolError, match=f"TwilioBridgeOptions.{field}"):
        TwilioBridgeOptions(**{field: value})


def test_caller_audio_passes_through_untouched() -> None:
    call = Call()
    call.start()
    voice = bytes(range(160))
    call.media(voice, timestamp=0)
    call.media(voice[::-1], timestamp=20)
    assert call.appended() == [voice, voice[::-1]]
    (start, *media) = [e.message for e in call.events if isinstance(e, TwilioMessageReceived)]
    assert [m.payload for m in media] == [b64(voice), b64(voice[::-1])]
    assert isinstance(start, StreamStart)
    assert call.bridge.start == start and call.bridge.stream_sid == "MZ1"
    assert start.custom_parameters == {"who": "caller"}


def test_caller_audio_before_the_session_is_connected_is_dropped() -> None:
    call = Call(connect=False)
    call.start()
    call.media(b"\x01" * 160, timestamp=0)
    assert call.bridge.dropped_media == 1
    call.session.connection_made(1.0)
    call.media(b"\x02" * 160, timestamp=20)
    assert call.appended() == [b"\x02" * 160]


def test_only_the_callers_track_goes_to_the_model() -> None:
    call = Call()
    call.start()
    call.media(b"\x01" * 160, timestamp=0, track="outbound")
    call.media(b"\x02" * 160, timestamp=0)
    assert call.appended() == [b"\x02" * 160]


def test_a_gap_in_the_timestamps_is_filled_with_silence() -> None:
    call = Call()
    call.start()
    call.media(b"\x01" * 160, timestamp=0)
    call.media(b"\x02" * 160, timestamp=60)  # 40 ms never arrived
    assert call.appended() == [b"\x01" * 160, b"\xff" * 320, b"\x02" * 160]


def test_no_padding_for_a_stream_that_is_not_mulaw() -> None:
    call = Call()
    call.start({"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})
    call.media(b"\x01" * 160, timestamp=0)
    call.media(b"\x02" * 160, timestamp=60)
    assert call.appended() == [b"\x01" * 160, b"\x02" * 160]
    call.feed(
        call.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U")
    )
    assert call.bridge.get_timer() is None


def test_silence_follows_when_the_caller_goes_quiet_mid_speech() -> None:
    call = Call()
    call.start()
    call.media(b"\x01" * 160, timestamp=0, now=1.0)
    assert call.bridge.get_timer() is None  # the server hears no speech yet
    call.feed(
        call.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U")
    )
    assert call.bridge.get_timer() == 1.75
    call.bridge.handle_timer(1.7)  # not yet
    call.bridge.handle_timer(1.75)
    assert call.appended() == [b"\x01" * 160, b"\xff" * 8000]
    assert call.bridge.get_timer() is None  # once
    call.media(b"\x02" * 160, timestamp=2000, now=3.0)  # that gap was padded already
    assert call.appended() == [b"\x02" * 160]
    assert call.bridge.get_timer() == 3.75
    call.feed(
        call.server.event("input_audio_buffer.speech_stopped", audio_end_ms=0, item_id="item_U")
    )
    assert call.bridge.get_timer() is None


def test_model_audio_goes_to_twilio_with_its_marks() -> None:
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    chunk = bytes(range(200)) * 4  # 800 bytes: 100 ms
    call.audio("item_A", chunk)
    call.audio("item_A", chunk[:401])  # 50.125 ms
    call.audio_done("item_A")
    call.audio_done("item_A")  # (a repeat sends no second done mark)
    assert call.to_twilio() == [
        {"event": "media", "streamSid": "MZ1", "media": {"payload": b64(chunk)}},
        {"event": "mark", "streamSid": "MZ1", "mark": {"name": "item_A:100:g1:m1"}},
        {"event": "media", "streamSid": "MZ1", "media": {"payload": b64(chunk[:401])}},
        {"event": "mark", "streamSid": "MZ1", "mark": {"name": "item_A:150:g1:m2"}},
        {"event": "mark", "streamSid": "MZ1", "mark": {"name": "done:item_A:g1:m3"}},
    ]


def test_model_audio_in_fixed_frames() -> None:
    """outbound_frame_ms=20: 160-byte media messages, each with its mark; an item's rest
    goes out when its audio ends, or when another item's audio begins."""
    call = Call(bridge=TwilioBridgeOptions(outbound_frame_ms=20))
    call.start()
    call.feed(call.server.response_created("resp_1"))
    audio = bytes(range(256)) * 2
    call.audio("item_A", audio[:100])  # under a frame: held
    assert call.to_twilio() == []
    call.audio("item_A", audio[100:350])  # 350 bytes: two frames, 30 held
    call.audio_done("item_A")
    call.audio("item_B", audio[:170])  # one frame, 10 held
    call.audio("item_C", audio[:8])  # item B's rest first
    sent = [m["media"]["payload"] if "media" in m else m["mark"]["name"] for m in call.to_twilio()]
    assert (
        sent
        == [
            b64(audio[:160]),
            "item_A:20:g1:m1",
            b64(audio[160:320]),
            "item_A:40:g1:m2",
            b64(audio[320:350]),  # the rest, at the item's end
            "item_A:43:g1:m3",
            "done:item_A:g1:m4",
            b64(audio[:160]),
            "item_B:20:g1:m5",
            b64(audio[160:170]),  # the rest, as item C begins
            "item_B:21:g1:m6",
        ]
    )


def test_held_audio_of_an_interrupted_item_is_dropped() -> None:
    call = Call(bridge=TwilioBridgeOptions(outbound_frame_ms=20))
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 200)  # a frame sent, 40 bytes held
    call.to_twilio()
    call.mark("item_A:20:g1:m1")
    call.session.interrupt(1.0)
    call.pump()
    assert [m["event"] for m in call.to_twilio()] == ["clear"]
    call.audio_done("item_A")  # nothing held any more: no media, and no done mark
    assert call.to_twilio() == []
    truncate = [m for m in call.to_realtime() if m["type"] == "conversation.item.truncate"]
    assert [m["audio_end_ms"] for m in truncate] == [25]  # 20 ms heard + lead, within 25 ms


def test_a_new_stream_does_not_get_the_last_ones_held_audio() -> None:
    call = Call(bridge=TwilioBridgeOptions(outbound_frame_ms=20))
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x01" * 200)  # a frame sent, 40 bytes held
    assert [m["event"] for m in call.to_twilio()] == ["media", "mark"]
    call.start()  # Twilio restarted the stream
    call.audio_done("item_A")
    assert call.to_twilio() == []  # no rest of the old stream (and no done mark: a new one)


@pytest.mark.parametrize("frame", [0, 1001, 2.5, True, "20"])
def test_the_frame_is_whole_milliseconds(frame: object) -> None:
    with pytest.raises(LocalProtocolError, match="outbound_frame_ms"):
        TwilioBridgeOptions(outbound_frame_ms=frame)  # type: ignore[arg-type]


def test_model_audio_before_the_stream_started_is_not_sent() -> None:
    call = Call()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 800)
    call.audio_done("item_A")
    assert call.to_twilio() == []


def interrupted_call() -> Call:
    """Item A: 200 ms sent, 100 ms acknowledged; item B: 100 ms sent, none acknowledged."""
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 800)
    call.audio("item_A", b"\x00" * 800)
    call.audio_done("item_A")
    call.audio("item_B", b"\x00" * 800)
    call.to_twilio()
    call.mark("item_A:100:g1:m1")
    return call


def test_the_server_hearing_the_caller_clears_twilio_and_cuts_where_heard() -> None:
    call = interrupted_call()
    call.feed(
        call.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U")
    )
    assert call.to_twilio() == [{"event": "clear", "streamSid": "MZ1"}]
    assert call.to_realtime() == [  # the server cancels by itself (semantic VAD)
        {
            "type": "conversation.item.truncate",
            "item_id": "item_A",
            "content_index": 0,
            "audio_end_ms": 150,
        },
        {
            "type": "conversation.item.truncate",
            "item_id": "item_B",
            "content_index": 0,
            "audio_end_ms": 0,
        },
    ]
    (interrupted,) = [e for e in call.events if isinstance(e, AudioInterrupted)]
    assert [(t.item_id, t.audio_end_ms, t.received_ms) for t in interrupted.truncated] == [
        ("item_A", 150, 200),
        ("item_B", 0, 100),
    ]


def test_an_interrupt_from_the_app_cancels_too() -> None:
    call = interrupted_call()
    call.session.interrupt(5.0)  # the clock plays no part in the phone profile
    call.pump()
    assert call.to_twilio() == [{"event": "clear", "streamSid": "MZ1"}]
    assert [(m["type"], m.get("audio_end_ms")) for m in call.to_realtime()] == [
        ("response.cancel", None),
        ("conversation.item.truncate", 150),
        ("conversation.item.truncate", 0),
    ]


def test_the_oldest_item_is_cut_50_ms_in_even_unacknowledged() -> None:
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 161)  # 20.125 ms
    call.audio("item_B", b"\x00" * 800)
    call.session.interrupt(0.0)
    call.pump()
    cuts = [(m["item_id"], m["audio_end_ms"]) for m in call.to_realtime() if "item_id" in m]
    assert cuts == [("item_A", 20), ("item_B", 0)]  # min(sent, 0 + 50) floored; later: 0


def test_an_item_heard_to_the_end_is_not_cut_and_the_next_is_the_oldest() -> None:
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 800)
    call.audio_done("item_A")
    call.audio("item_B", b"\x00" * 800)
    call.mark("item_A:100:g1:m1")
    call.mark("done:item_A:g1:m2")
    call.session.interrupt(0.0)
    call.pump()
    cuts = [(m["item_id"], m["audio_end_ms"]) for m in call.to_realtime() if "item_id" in m]
    assert cuts == [("item_B", 50)]


def test_marks_of_cleared_audio_are_ignored_and_late_audio_dropped() -> None:
    call = interrupted_call()
    call.session.interrupt(0.0)
    call.pump()
    call.to_twilio(), call.to_realtime()
    call.mark("item_A:200:g1:m2")  # Twilio returns the pending marks after a clear
    call.audio("item_A", b"\x00" * 800)  # the interrupted response's audio, still in flight
    assert call.to_twilio() == []
    assert not [e for e in call.events[-3:] if type(e).__name__ == "AudioChunk"]
    call.feed(call.server.response_created("resp_2"))
    call.audio("item_C", b"\x00" * 800, response_id="resp_2")
    assert [m.get("mark", {}).get("name") for m in call.to_twilio()] == [None, "item_C:100:g2:m5"]


def test_a_new_stream_starts_a_new_generation() -> None:
    call = interrupted_call()
    call.start()
    call.mark("item_A:200:g1:m2")  # a mark of the previous stream: unknown now
    call.feed(call.server.response_created("resp_2"))
    call.audio("item_C", b"\x00" * 800, response_id="resp_2")
    assert [m["mark"]["name"] for m in call.to_twilio() if m["event"] == "mark"] == [
        "item_C:100:g2:m1"
    ]


def test_the_stream_stopping_ends_the_bridge() -> None:
    call = Call()
    call.start()
    call.twilio("stop", stop={"accountSid": "AC1", "callSid": "CA1"})
    assert call.bridge.ended and call.bridge.start is None and call.bridge.stream_sid is None
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 800)
    assert call.to_twilio() == []
    call.start()
    assert not call.bridge.ended
    call.bridge.twilio_closed()
    assert call.bridge.ended


def test_other_twilio_messages_are_events_and_bad_ones_warnings() -> None:
    call = Call()
    call.start()
    call.twilio("dtmf", dtmf={"track": "inbound_track", "digit": "7"})
    call.bridge.receive_twilio("not json", 0.0)
    call.bridge.receive_twilio('{"event":"media","media":{}}', 0.0)
    call.pump()
    assert isinstance(call.events[-3], TwilioMessageReceived)
    assert isinstance(call.events[-3].message, StreamDtmf) and call.events[-3].message.digit == "7"
    warnings = [e.message for e in call.events if isinstance(e, ProtocolWarning)]
    assert [w.split(":")[0] for w in warnings] == ["dropped a Twilio message"] * 2
    assert "media.payload" in warnings[1]
    call.twilio("mark", mark={"name": "an app's own mark"})  # not the bridge's: an event only
    assert call.to_realtime() == []


def test_a_server_session_in_pcm_is_reported() -> None:
    call = Call()
    call.feed(call.server.session_updated())  # the sample session is PCM 24 kHz
    warnings = [e.message for e in call.events if isinstance(e, ProtocolWarning)]
    assert warnings == [
        "the server's session.audio.input.format is 'audio/pcm': Twilio carries G.711"
        " mu-law only ('audio/pcmu')",
        "the server's session.audio.output.format is 'audio/pcm': Twilio carries G.711"
        " mu-law only ('audio/pcmu')",
    ]


def test_a_lost_connection_clears_the_marks() -> None:
    call = interrupted_call()
    call.session.connection_lost("gone", 1.0)
    call.pump()
    call.mark("item_A:200:g1:m2")  # (cleared: ignored)
    call.media(b"\x01" * 160, timestamp=40)  # no session to take it
    assert call.bridge.dropped_media == 1
    assert call.bridge.get_timer() is None


def test_what_waits_is_bounded() -> None:
    call = Call(bridge=TwilioBridgeOptions(max_pending_messages=3, max_pending_events=1))
    call.start()
    call.bridge.receive_twilio("{}", 0.0)  # a warning, not taken
    with pytest.raises(LocalProtocolError, match="bridge events are waiting"):
        call.bridge.receive_twilio("{}", 0.0)
    assert call.bridge.next_event() is not None
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 8)
    with pytest.raises(LocalProtocolError, match="messages for Twilio are waiting"):
        call.audio("item_A", b"\x00" * 8)
    assert len(call.bridge.twilio_messages_to_send()) == 3


def test_only_audio_formats_named_are_checked() -> None:
    call = Call()
    call.feed(call.server.session_updated(audio=PHONE_AUDIO))
    call.feed(call.server.event("session.updated", session={"type": "realtime"}))
    only_voice = {"type": "realtime", "audio": {"output": {"voice": "alloy"}}}
    call.feed(call.server.event("session.updated", session=only_voice))
    transcription = {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm"}}}}
    call.feed(call.server.event("session.updated", session=transcription))
    assert not [e for e in call.events if isinstance(e, ProtocolWarning)]


def test_an_interruption_after_the_stream_ended_clears_nothing() -> None:
    call = interrupted_call()
    call.twilio("stop", stop={})
    call.session.interrupt(0.0)
    call.pump()
    assert [e for e in call.events if isinstance(e, AudioInterrupted)]
    assert call.to_twilio() == []


@pytest.mark.parametrize("lead", [-1.0, float("nan"), float("inf"), True, "50"])
def test_the_phone_lead_must_be_a_duration(lead: Any) -> None:
    with pytest.raises(
        LocalProtocolError, match="phone_playback_lead_ms must be a finite number of milliseconds"
    ):
        SessionOptions(profile="phone", phone_playback_lead_ms=lead)


def test_a_lead_of_zero_cuts_at_the_acknowledged_position() -> None:
    call = Call(phone_playback_lead_ms=0)
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 1600)
    call.to_twilio()
    call.mark("item_A:200:g1:m1")
    call.session.interrupt(0.0)
    call.pump()
    call.audio("item_B", b"\x00" * 800, response_id="resp_2")
    cuts = [(m["item_id"], m["audio_end_ms"]) for m in call.to_realtime() if "item_id" in m]
    assert cuts == [("item_A", 200)]


def test_a_new_stream_forgets_what_the_old_one_played() -> None:
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 800)
    call.audio_done("item_A")
    call.start()  # the old stream's audio is not playing any more
    call.audio("item_B", b"\x00" * 800)
    call.session.interrupt(0.0)
    call.pump()
    cuts = [(m["item_id"], m["audio_end_ms"]) for m in call.to_realtime() if "item_id" in m]
    assert cuts == [("item_B", 50)]


def test_a_response_the_server_cancels_before_its_audio_is_not_played_late() -> None:
    call = Call()  # semantic VAD: the server cancels responses itself
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.to_twilio()
    call.feed(
        call.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U")
    )
    assert call.to_realtime() == []  # (no cancel of ours)
    assert call.to_twilio() == [{"event": "clear", "streamSid": "MZ1"}]
    (interrupted,) = [e for e in call.events if isinstance(e, AudioInterrupted)]
    assert interrupted.response_id == "resp_1" and interrupted.truncated == ()
    call.audio("item_A", b"\x00" * 800)  # in flight when the server cancelled
    assert call.to_twilio() == []
    call.session.interrupt(0.0)  # again: nothing is running any more
    call.pump()
    assert call.to_realtime() == [] and call.to_twilio() == []


def test_audio_under_a_millisecond_is_not_heard_without_a_mark() -> None:
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 5)  # 0.625 ms
    call.audio_done("item_A")
    call.audio("item_B", b"\x00" * 800)
    call.session.interrupt(0.0)
    call.pump()
    cuts = [(m["item_id"], m["audio_end_ms"]) for m in call.to_realtime() if "item_id" in m]
    assert cuts == [("item_A", 0), ("item_B", 0)]


def test_model_audio_that_is_not_base64_is_not_played() -> None:
    call = Call()
    call.start()
    call.feed(call.server.response_created("resp_1"))
    ctx = {"response_id": "resp_1", "item_id": "item_A", "output_index": 0, "content_index": 0}
    call.feed(call.server.event("response.output_audio.delta", **ctx, delta="=="))
    assert call.to_twilio() == []
    warnings = [e.message for e in call.events if isinstance(e, ProtocolWarning)]
    assert warnings == ["audio of item 'item_A' is not base64: not played"]


def test_the_bridge_s_values_are_immutable() -> None:
    import dataclasses

    options = TwilioBridgeOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_message_size = 1  # type: ignore[misc]
    event = TwilioMessageReceived(message=None)
    with pytest.raises(AttributeError):
        event.message = 1  # type: ignore[misc]
    assert TwilioBridgeOptions(input_inactivity_timeout=2**31 / 1000 - 1).input_inactivity_timeout
    with pytest.raises(LocalProtocolError, match="at most 2147483"):
        TwilioBridgeOptions(input_inactivity_timeout=2**31 / 1000)


def test_a_stopped_stream_pads_nothing_and_takes_no_late_marks() -> None:
    call = Call()
    assert call.bridge.ended is False
    call.start()
    call.feed(call.server.response_created("resp_1"))
    call.audio("item_A", b"\x00" * 1600)
    call.to_twilio()
    call.media(b"\x01" * 160, timestamp=0, now=1.0)
    call.twilio("stop", stop={})
    call.mark("item_A:200:g1:m1")  # (from before the stop: the stream is gone)
    call.feed(
        call.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U")
    )
    assert call.bridge.get_timer() is None  # no stream: no silence to add
    cuts = [(m["item_id"], m["audio_end_ms"]) for m in call.to_realtime() if "item_id" in m]
    assert cuts == [("item_A", 50)]  # not 200: that mark came for a stream that had ended


def test_a_session_that_ended_gets_no_silence() -> None:
    call = Call()
    call.start()
    call.media(b"\x01" * 160, timestamp=0, now=1.0)
    call.feed(
        call.server.event("input_audio_buffer.speech_started", audio_start_ms=0, item_id="item_U")
    )
    assert call.bridge.get_timer() == 1.75
    call.session.connection_lost("gone", 1.2)
    call.pump()
    assert call.bridge.get_timer() is None
