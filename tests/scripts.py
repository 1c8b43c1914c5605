"""Server-side scripts of the spec's typical turns, as JSON text, for the session tests."""

from __future__ import annotations

import base64
import json
from typing import Any

from .samples import SESSION, USAGE


class Server:
    """Writes server events with fresh ``event_id``s (GA shapes, spec section 4)."""

    def __init__(self) -> None:
        self.count = 0

    def event(self, kind: str, **fields: Any) -> str:
        self.count += 1
        return json.dumps({"type": kind, "event_id": f"event_{self.count}", **fields})

    def session_created(self, **session: Any) -> str:
        return self.event("session.created", session={**SESSION, **session})

    def session_updated(self, **session: Any) -> str:
        return self.event("session.updated", session={**SESSION, **session})

    def user_turn(self, item_id: str, previous: str | None = None) -> list[str]:
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        return [
            self.event("input_audio_buffer.speech_started", audio_start_ms=100, item_id=item_id),
            self.event("input_audio_buffer.speech_stopped", audio_end_ms=1500, item_id=item_id),
            self.event("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id),
            self.event("conversation.item.added", previous_item_id=previous, item=item),
            self.event("conversation.item.done", previous_item_id=previous, item=item),
        ]

    def response_created(self, response_id: str, conversation: bool = True) -> str:
        return self.event(
            "response.created",
            response={
                "object": "realtime.response",
                "id": response_id,
                "status": "in_progress",
                "status_details": None,
                "output": [],
                "conversation_id": "conv_1" if conversation else None,
                "output_modalities": ["audio"],
                "usage": None,
                "metadata": None,
            },
        )

    def response_done(
        self,
        response_id: str,
        output: list[dict[str, Any]] | None = None,
        status: str = "completed",
        reason: str | None = None,
    ) -> str:
        return self.event(
            "response.done",
            response={
                "object": "realtime.response",
                "id": response_id,
                "status": status,
                "status_details": None if reason is None else {"type": status, "reason": reason},
                "output": output or [],
                "conversation_id": "conv_1",
                "output_modalities": ["audio"],
                "usage": USAGE,
                "metadata": None,
            },
        )

    def assistant_audio(
        self,
        response_id: str,
        item_id: str,
        previous: str | None,
        chunks_ms: list[int],
        transcript: str = "Hello there.",
        index: int = 0,
    ) -> list[str]:
        """An assistant audio item: item events, audio deltas of the given lengths, dones."""
        ctx = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": index,
            "content_index": 0,
        }
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        done_item = {
            **item,
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": transcript}],
        }
        out = [
            self.event(
                "response.output_item.added", response_id=response_id, output_index=index, item=item
            ),
            self.event("conversation.item.added", previous_item_id=previous, item=item),
            self.event(
                "response.content_part.added", **ctx, part={"type": "audio", "transcript": ""}
            ),
        ]
        for number, ms in enumerate(chunks_ms):
            pcm = bytes([number % 256]) * (ms * 48)  # 24 kHz PCM16: 48 bytes per ms
            out.append(
                self.event(
                    "response.output_audio.delta", **ctx, delta=base64.b64encode(pcm).decode()
                )
            )
            out.append(
                self.event(
                    "response.output_audio_transcript.delta",
                    **ctx,
                    delta=f"w{number} ",
                    obfuscation="x",
                )
            )
        out += [
            self.event("response.output_audio.done", **ctx),
            self.event("response.output_audio_transcript.done", **ctx, transcript=transcript),
            self.event(
                "response.content_part.done",
                **ctx,
                part={"type": "audio", "transcript": transcript},
            ),
            self.event("conversation.item.done", previous_item_id=previous, item=done_item),
            self.event(
                "response.output_item.done",
                response_id=response_id,
                output_index=index,
                item=done_item,
            ),
        ]
        return out

    def function_call(
        self, response_id: str, item_id: str, call_id: str, previous: str | None, index: int = 0
    ) -> list[str]:
        base = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "name": "get_weather",
            "call_id": call_id,
        }
        ctx = {"response_id": response_id, "item_id": item_id, "output_index": index}
        added = {**base, "status": "in_progress", "arguments": ""}
        done = {**base, "status": "completed", "arguments": '{"city":"Paris"}'}
        return [
            self.event(
                "response.output_item.added",
                response_id=response_id,
                output_index=index,
                item=added,
            ),
            self.event("conversation.item.added", previous_item_id=previous, item=added),
            self.event(
                "response.function_call_arguments.delta", **ctx, call_id=call_id, delta='{"city":'
            ),
            self.event(
                "response.function_call_arguments.done",
                **ctx,
                call_id=call_id,
                name="get_weather",
                arguments='{"city":"Paris"}',
            ),
            self.event("conversation.item.done", previous_item_id=previous, item=done),
            self.event(
                "response.output_item.done", response_id=response_id, output_index=index, item=done
            ),
        ]
