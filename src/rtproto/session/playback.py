"""What the user actually heard: received and played audio per assistant item.

Interruption truncates each queued item at its played position, in whole milliseconds, never
beyond the audio received for it. Played positions come from the application
(:meth:`PlaybackTracker.progress`, e.g. phone bridges acknowledging marks) or, when it reports
nothing, from time elapsed since the first audio of the queue, as if playback started at once
and ran in real time (the JS SDK's default), continuing from one item to the next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["PlaybackItem", "PlaybackTracker"]

_EPSILON_MS = 1e-6


@dataclass(slots=True)
class PlaybackItem:
    """One assistant audio content part the application is playing."""

    item_id: str
    response_id: str
    content_index: int
    first_audio_at: float
    #: Of the output format when the first audio arrived (sample rate x 2 for PCM16).
    bytes_per_second: int
    #: The audio received, as base64 (receive() adds each delta here without decoding it):
    #: its length in characters and its ``=`` padding (one per missing byte).
    base64_chars: int = 0
    base64_padding: int = 0
    reported_ms: float | None = None
    #: All its audio arrived (``response.output_audio.done``, or its ``response.done``): the
    #: server holds no more of it than was received.
    complete: bool = False

    @property
    def received_bytes(self) -> int:
        """Decoded audio bytes received: 3 per 4 base64 characters, less the padding."""
        return max(self.base64_chars // 4 * 3 - self.base64_padding, 0)

    def add_base64(self, delta: str) -> None:
        """Count one base64 chunk of this item's audio (what receive() does inline)."""
        self.base64_chars += len(delta)
        if delta and delta[-1] == "=":
            self.base64_padding += 2 if delta[-2:] == "==" else 1

    @property
    def received_ms(self) -> float:
        """Milliseconds of audio received."""
        return self.received_bytes * 1000 / self.bytes_per_second

    @property
    def received_whole_ms(self) -> int:
        """Whole milliseconds of audio received (floor, in integers: exact)."""
        return self.received_bytes * 1000 // self.bytes_per_second

    def heard_to_the_end(self, played_ms: int) -> bool:
        """Whether, played up to ``played_ms``, the user heard all of it: all its audio
        arrived and was played."""
        return self.complete and played_ms >= self.received_whole_ms


class PlaybackTracker:
    """Tracks the items whose audio is playing or queued, oldest first.

    ``estimate`` (the default) fills in played positions from elapsed time when the
    application reports none; without it (phone bridges) unreported audio counts as unheard.
    ``lead_ms`` (phone bridges, whose reports are marks coming back after their audio
    played) cuts a reported item that far past its report, and the oldest item not heard to
    the end that far into its audio even unreported; later unreported items are cut at 0 (as
    the JS Twilio transport does). Whether an item was heard to the end goes by its report
    alone.
    """

    def __init__(self, *, estimate: bool = True, max_items: int = 64, lead_ms: float = 0.0) -> None:
        self.estimate = estimate
        self.max_items = max_items
        self.lead_ms = lead_ms
        self.items: dict[str, PlaybackItem] = {}
        #: The item the latest audio went to, while tracked (audio arrives item after item:
        #: the session's hot path looks it up only when the item changes).
        self.last: PlaybackItem | None = None

    def start(
        self,
        item_id: str,
        response_id: str,
        content_index: int,
        now: float,
        bytes_per_second: int,
    ) -> PlaybackItem:
        """Track a new item whose first audio arrived at ``now`` (the caller counts its audio
        with :meth:`PlaybackItem.add_base64`)."""
        self._prune(now)
        item = PlaybackItem(item_id, response_id, content_index, now, bytes_per_second)
        self.items[item_id] = item
        self.last = item
        return item

    def audio_for(self, item_id: str) -> PlaybackItem | None:
        """The tracked item audio just arrived for (now ``last``), if it is tracked."""
        item = self.items.get(item_id)
        if item is not None:
            self.last = item
        return item

    def progress(self, item_id: str, played_ms: float) -> bool:
        """The application reports how much of an item was played; False if unknown item."""
        item = self.items.get(item_id)
        if item is None:
            return False
        if item.reported_ms is None or played_ms > item.reported_ms:
            item.reported_ms = played_ms
        return True

    def played(self, now: float) -> list[tuple[PlaybackItem, int]]:
        """Each tracked item with its played position in whole ms (floor, clamped)."""
        return [(item, ms) for item, ms, _ in self._positions(now)]

    def _positions(self, now: float) -> Iterator[tuple[PlaybackItem, int, bool]]:
        """:meth:`played`, item by item (oldest first), and whether each was heard to the
        end."""
        now_ms = now * 1000.0
        lead = self.lead_ms
        oldest_unheard = True  # no item before this one is still playing (for lead_ms)
        cursor = -math.inf  # when the previous item finished playing, by the estimate (ms)
        for item in self.items.values():
            first = item.first_audio_at * 1000.0
            start = cursor if cursor > first else first  # (a NaN reading stays NaN: 0 below)
            if item.reported_ms is not None:
                position = item.reported_ms
            elif self.estimate:
                position = now_ms - start
            else:
                position = 0.0
            cursor = start + item.received_ms
            # (unreported audio, however short, counts as heard only by the estimate)
            heard = item.heard_to_the_end(_whole(position, item)) and (
                self.estimate or item.reported_ms is not None or not item.received_bytes
            )
            if lead and not heard and (oldest_unheard or item.reported_ms is not None):
                position += lead
            oldest_unheard = oldest_unheard and heard
            yield item, _whole(position, item), heard

    def unheard(self, now: float) -> list[tuple[PlaybackItem, int]]:
        """The items the user has not heard to the end, and where to cut them: every item
        whose audio is still arriving (the server may hold more than was received, even when
        all of that was played), and complete items not played to the end."""
        return [(item, ms) for item, ms, heard in self._positions(now) if not heard]

    def complete(self, item_id: str) -> None:
        """The item's audio is all there (``response.output_audio.done``)."""
        item = self.items.get(item_id)
        if item is not None:
            item.complete = True

    def response_done(self, response_id: str) -> None:
        """Every item of a finished response has all its audio."""
        for item in self.items.values():
            if item.response_id == response_id:
                item.complete = True

    def clear(self) -> None:
        """Forget all items (after an interruption, or when the connection ends)."""
        self.items.clear()
        self.last = None

    def forget(self, item_id: str) -> None:
        """Stop tracking one item (deleted from the conversation)."""
        if self.items.pop(item_id, None) is self.last:
            self.last = None

    def _prune(self, now: float) -> None:
        """Drop the oldest items while they were heard to the end, and keep the table
        bounded. (Audio plays in order: the first item not heard to the end ends the search,
        so a new item costs O(1), not a walk over every item still queued.)"""
        heard = []
        for item, _, heard_to_the_end in self._positions(now):
            if not heard_to_the_end:
                break
            heard.append(item.item_id)
        for item_id in heard:
            del self.items[item_id]
        while len(self.items) >= self.max_items:
            del self.items[next(iter(self.items))]


def _whole(position: float, item: PlaybackItem) -> int:
    """A played position in whole ms: floor, clamped to 0 and to the audio received."""
    if not position > 0.0:  # (before the start, or NaN from a NaN clock reading)
        return 0
    # floor, forgiving the last bits of float error (0.7 s - 0.5 s is 199.99... ms)
    return min(math.floor(min(position, item.received_ms) + _EPSILON_MS), item.received_whole_ms)
