"""Playback acknowledged by marks: what was sent to the phone line, item by item, and which
marks are waiting to come back.

After each chunk of an assistant item's audio the bridge sends a mark named after the item
and the audio sent so far; when the line echoes it, that much of the item has played. A
``done`` mark follows an item's last audio. Names carry a generation, bumped by every
interruption (``clear``) and every new stream: marks of an older generation that come back
afterwards are ignored. Names are the JS Twilio transport's: ``<item_id>:<sent_ms>:g<gen>:
m<seq>`` and ``done:<item_id>:g<gen>:m<seq>``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["Acknowledged", "MarkLedger", "SentItem"]


@dataclass(slots=True)
class SentItem:
    """One assistant audio content part sent to the line."""

    response_id: str
    item_id: str
    content_index: int
    #: Milliseconds of its audio sent so far.
    sent_ms: float = 0.0
    done_mark_sent: bool = False


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A mark came back: ``item`` has played up to ``played_ms`` (all of it, for a ``done``
    mark)."""

    item: SentItem
    played_ms: float
    done: bool


class MarkLedger:
    """The items sent in the current generation and the marks not yet echoed (at most
    ``max_pending``; the oldest are forgotten beyond that, and come back as unknown)."""

    def __init__(self, max_pending: int = 4096) -> None:
        self.max_pending = max_pending
        self.generation = 0
        self._sequence = 0
        self._items: dict[tuple[str, str, int], SentItem] = {}
        self._pending: OrderedDict[str, tuple[SentItem, float, bool]] = OrderedDict()
        self._cleared: OrderedDict[str, None] = OrderedDict()

    @property
    def pending(self) -> int:
        """Marks sent and not yet echoed."""
        return len(self._pending)

    def audio_sent(self, response_id: str, item_id: str, content_index: int, ms: float) -> str:
        """``ms`` more of an item's audio went out: the name of the mark to send after it."""
        key = (response_id, item_id, content_index)
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = SentItem(response_id, item_id, content_index)
        item.sent_ms += ms
        return self._name(item, done=False)

    def done(self, response_id: str, item_id: str, content_index: int) -> str | None:
        """All of an item's audio went out: the name of its ``done`` mark (None when none is
        due: nothing of it was sent in this generation, or its mark went already)."""
        item = self._items.get((response_id, item_id, content_index))
        if item is None or item.done_mark_sent:
            return None
        item.done_mark_sent = True
        return self._name(item, done=True)

    def acknowledge(self, name: str) -> Acknowledged | bool:
        """A mark came back: what it acknowledges; True for a mark of a cleared generation
        (ignored), False for a name this ledger never gave (or has forgotten)."""
        if name in self._cleared:
            del self._cleared[name]
            return True
        entry = self._pending.pop(name, None)
        if entry is None:
            return False
        item, played_ms, done = entry
        if done:
            self._items.pop((item.response_id, item.item_id, item.content_index), None)
        return Acknowledged(item, played_ms, done)

    def new_generation(self, *, cleared: bool) -> None:
        """Forget the items sent. ``cleared`` (an interruption): the marks still pending will
        come back and are ignored then; otherwise (a new stream) they never will."""
        self.generation += 1
        if cleared:
            for name in self._pending:
                self._cleared[name] = None
            while len(self._cleared) > self.max_pending:
                self._cleared.popitem(last=False)
        else:
            self._sequence = 0
            self._cleared.clear()
        self._pending.clear()
        self._items.clear()

    def _name(self, item: SentItem, *, done: bool) -> str:
        self._sequence += 1
        suffix = f"g{self.generation}:m{self._sequence}"
        if done:
            name = f"done:{item.item_id}:{suffix}"
        else:
            name = f"{item.item_id}:{int(item.sent_ms)}:{suffix}"
        self._pending[name] = (item, item.sent_ms, done)
        if len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        return name
