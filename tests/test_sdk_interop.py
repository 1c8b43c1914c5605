"""The official ``openai`` Python SDK, unchanged, against ``rtproto serve`` (in a thread).

Every event the SDK receives is checked against the SDK's own types: the raw bytes of each
message are validated with pydantic against ``RealtimeServerEvent`` (the union must yield the
class whose ``type`` literal matches, never a loose fallback) and against that class alone,
and ``connection.parse_event`` (what ``connection.recv()`` does) must give the same class.
"""

from __future__ import annotations

import base64
import json
import typing
from collections.abc import Iterator
from typing import Any

import anyio
import numpy as np
import openai
import pytest
from openai.types.realtime import RealtimeErrorEvent, RealtimeServerEvent, SessionCreatedEvent
from pydantic import TypeAdapter
from rtproto.adapters.server import RunningServer, ServerConfig, start_in_thread

from rtproto.server import HookResponder, ResponseContext, ResponsePlan, SpeechPart

#: The union's members, by their ``type`` literal.
MEMBERS: dict[str, type[Any]] = {}
for _member in typing.get_args(typing.get_args(RealtimeServerEvent)[0]):
    for _literal in typing.get_args(_member.model_fields["type"].annotation):
        MEMBERS[_literal] = _member
UNION: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
TIMEOUT = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _answer(context: ResponseContext) -> ResponsePlan:
    # a short "thinking" delay keeps each response active long enough to race a second one
    return ResponsePlan((SpeechPart("Hello from the emulator."),), delay=0.2)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    config = ServerConfig(responder=lambda: HookResponder(_answer))
    with start_in_thread(config) as running:
        yield running


class Checked:
    """Receives through the SDK and checks every event against the SDK's types."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.seen: list[Any] = []

    async def next(self) -> Any:
        with anyio.fail_after(TIMEOUT):
            raw = await self.connection.recv_bytes()
        data = json.loads(raw)
        kind = data["type"]
        assert kind in MEMBERS, f"the SDK has no type for {kind!r}"
        typed = UNION.validate_json(raw)
        assert type(typed) is MEMBERS[kind], (kind, type(typed))
        TypeAdapter(MEMBERS[kind]).validate_python(data)  # the exact class, on its own
        parsed = self.connection.parse_event(raw)  # what connection.recv() returns
        assert type(parsed) is MEMBERS[kind]
        self.seen.append(typed)
        return typed

    async def until(self, kind: str) -> list[Any]:
        events = []
        while True:
            events.append(await self.next())
            if events[-1].type == kind:
                return events


def _tone(seconds: float) -> str:
    t = np.arange(int(24000 * seconds)) / 24000
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()
    return base64.b64encode(pcm).decode()


@pytest.mark.anyio
async def test_official_sdk_full_session(server: RunningServer) -> None:
    client = openai.AsyncOpenAI(
        api_key="sk-test", base_url=server.base_url, websocket_base_url=server.websocket_base_url
    )
    async with client.realtime.connect(model="gpt-realtime") as connection:
        # connection.recv(): a typed model
        first = await connection.recv()
        assert isinstance(first, SessionCreatedEvent)
        assert first.session.model == "gpt-realtime"  # type: ignore[union-attr]
        events = Checked(connection)

        await connection.session.update(
            session={
                "type": "realtime",
                "instructions": "Be brief.",
                "audio": {"input": {"turn_detection": None}},
            }
        )
        updated = await events.until("session.updated")
        assert updated[-1].session.instructions == "Be brief."

        # audio in, committed
        await connection.input_audio_buffer.append(audio=_tone(0.5))
        await connection.input_audio_buffer.commit()
        committed = await events.until("conversation.item.done")
        kinds = [e.type for e in committed]
        assert kinds[0] == "input_audio_buffer.committed"

        # a full response
        await connection.response.create()
        turn = await events.until("response.done")
        done = turn[-1]
        assert done.response.status == "completed"
        item_id = done.response.output[0].id
        audio = b"".join(
            base64.b64decode(e.delta) for e in turn if e.type == "response.output_audio.delta"
        )
        audio_ms = len(audio) // 48
        assert audio_ms > 200
        transcript = [e for e in turn if e.type == "response.output_audio_transcript.done"]
        assert transcript[0].transcript == "Hello from the emulator."

        # truncate beyond the audio: an error; within it: truncated
        await connection.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=audio_ms + 5000, event_id="too_long"
        )
        error = (await events.until("error"))[-1]
        assert isinstance(error, RealtimeErrorEvent)
        assert "already shorter than" in error.error.message
        assert error.error.event_id == "too_long"
        await connection.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=100
        )
        truncated = (await events.until("conversation.item.truncated"))[-1]
        assert (truncated.item_id, truncated.audio_end_ms) == (item_id, 100)

        # cancel with nothing active
        await connection.response.cancel(event_id="cancel_1")
        error = (await events.until("error"))[-1]
        assert error.error.code == "response_cancel_not_active"
        assert error.error.event_id == "cancel_1"

        # a second response.create while one is active
        await connection.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "And again?"}],
            }
        )
        await connection.response.create()
        await connection.response.create(event_id="second")
        racing = await events.until("response.done")
        errors = [e for e in racing if e.type == "error"]
        assert [e.error.code for e in errors] == ["conversation_already_has_active_response"]
        assert errors[0].error.event_id == "second"
        assert [e.type for e in racing].count("response.created") == 1
        assert racing[-1].response.status == "completed"

        # a bad session.update: rejected whole
        await connection.send(
            {"type": "session.update", "session": {"type": "realtime", "bogus_field": 1}}
        )
        error = (await events.until("error"))[-1]
        assert error.error.code == "unknown_parameter"
        assert error.error.param == "session.bogus_field"

        # the session is still usable
        await connection.response.create()
        assert (await events.until("response.done"))[-1].response.status == "completed"

    kinds = {event.type for event in events.seen}
    assert {"response.output_audio.delta", "conversation.item.added", "error"} <= kinds
    assert len(events.seen) > 40
