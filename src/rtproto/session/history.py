"""The conversation as the client knows it: items in server order, kept from item events."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from ..errors import LocalProtocolError
from ..events import ConversationItemCreate, ConversationItemDelete
from ..models import Item, MessageItem

__all__ = ["History", "diff_history"]


def item_id_of(item: Item) -> str | None:
    """The item's id, or None when it has none."""
    return item.id if isinstance(item.id, str) else None


class History:
    """Items by id, in conversation order, bounded to ``max_items`` (oldest dropped).

    Items arrive at the end nearly always, so positions are looked up from the end and the
    ordered items are kept as a list: a snapshot is one copy, not a lookup per item.
    """

    def __init__(self, max_items: int = 4096) -> None:
        self.max_items = max_items
        self._order: list[str] = []  # ids, in order
        self._entries: list[Item] = []  # the items, in the same order
        self._items: dict[str, Item] = {}
        self._previous: dict[str, str | None] = {}

    def items(self) -> tuple[Item, ...]:
        """All items, in order."""
        return tuple(self._entries)

    def get(self, item_id: str) -> Item | None:
        """The item with this id, if known."""
        return self._items.get(item_id)

    def previous_of(self, item_id: str) -> str | None:
        """The id of the item before this one, as the server placed it."""
        return self._previous.get(item_id)

    def put(self, item: Item, previous_item_id: str | None, *, place: bool) -> bool:
        """Insert or replace an item. ``place`` puts it after ``previous_item_id``.

        Returns whether ``previous_item_id`` names an item this history does not know.
        """
        item_id = item_id_of(item)
        if item_id is None:
            return False
        missing = previous_item_id is not None and previous_item_id not in self._items
        if item_id in self._items:
            if not place:
                self._set(item_id, item)
                return missing
            position = self._position(item_id)
            del self._order[position]
            del self._entries[position]
        self._items[item_id] = item
        if not place:
            # no placement given (a retrieved item): before the item that names it as previous
            follower = next((i for i, p in self._previous.items() if p == item_id), None)
            index = self._position(follower) if follower is not None else len(self._order)
        else:
            self._previous[item_id] = previous_item_id
            if previous_item_id is None:
                index = 0
            elif missing or previous_item_id == item_id:
                # (the service appends an item created again with its own id as previous)
                index = len(self._order)
            else:
                index = self._position(previous_item_id) + 1
        self._order.insert(index, item_id)
        self._entries.insert(index, item)
        while len(self._order) > self.max_items:
            oldest = self._order.pop(0)
            del self._entries[0]
            del self._items[oldest]
            self._previous.pop(oldest, None)
        return missing

    def replace(self, item: Item, *, keep_transcripts: bool = False) -> bool:
        """Replace a known item's content in place; False when the id is unknown.

        ``keep_transcripts`` keeps transcripts the old version had and the new one lacks
        (a truncated or retrieved item comes back without them).
        """
        item_id = item_id_of(item)
        if item_id is None or item_id not in self._items:
            return False
        old = self._items[item_id]
        if keep_transcripts and isinstance(item, MessageItem) and isinstance(old, MessageItem):
            item = _keep_transcripts(old, item)
        self._set(item_id, item)
        return True

    def delete(self, item_id: str) -> bool:
        """Remove an item; False when it was not known."""
        if item_id not in self._items:
            return False
        position = self._position(item_id)
        del self._order[position]
        del self._entries[position]
        del self._items[item_id]
        self._previous.pop(item_id, None)
        return True

    def set_transcript(self, item_id: str, content_index: int, transcript: str) -> Item | None:
        """Attach a finished transcript to one content part; the new item, or None."""
        item = self._items.get(item_id)
        if not isinstance(item, MessageItem) or not 0 <= content_index < len(item.content):
            return None
        content = list(item.content)
        content[content_index] = msgspec.structs.replace(
            content[content_index], transcript=transcript
        )
        updated = msgspec.structs.replace(item, content=content)
        self._set(item_id, updated)
        return updated

    def _set(self, item_id: str, item: Item) -> None:
        self._items[item_id] = item
        self._entries[self._position(item_id)] = item

    def _position(self, item_id: str) -> int:
        """Where a known id is in the order: looked for among the last few first."""
        order = self._order
        index = len(order)
        stop = index - 4 if index > 4 else 0
        while index > stop:
            index -= 1
            if order[index] == item_id:
                return index
        return order.index(item_id)


def _keep_transcripts(old: MessageItem, new: MessageItem) -> MessageItem:
    content = list(new.content)
    changed = False
    for index, (before, after) in enumerate(zip(old.content, new.content, strict=False)):
        if isinstance(before.transcript, str) and not isinstance(after.transcript, str):
            content[index] = msgspec.structs.replace(after, transcript=before.transcript)
            changed = True
    return msgspec.structs.replace(new, content=content) if changed else new


def diff_history(
    current: Iterable[Item], wanted: Iterable[Item]
) -> tuple[list[ConversationItemDelete], list[ConversationItemCreate], list[str]]:
    """The deletes and creates that turn ``current`` into ``wanted`` (by item id).

    Removed and changed items are deleted; added and changed messages are created again.
    Assistant audio cannot be recreated and an id may appear only once in ``wanted``
    (``LocalProtocolError``); other item kinds that cannot be created are returned as
    warnings. Linear in the number of items.
    """
    before = {item_id_of(item): item for item in current}
    wanted = list(wanted)
    wanted_by_id: dict[str | None, Item] = {}
    for item in wanted:
        item_id = item_id_of(item)
        if item_id is not None and item_id in wanted_by_id:
            raise LocalProtocolError(
                f"item id {item_id!r} appears twice in the history asked for",
                event_type="conversation.item.create",
            )
        wanted_by_id[item_id] = item
    deletes: list[ConversationItemDelete] = []
    creates: list[ConversationItemCreate] = []
    warnings: list[str] = []
    for item_id, item in before.items():
        if item_id is not None and wanted_by_id.get(item_id, _MISSING) != item:
            deletes.append(ConversationItemDelete(item_id=item_id))
    for item in wanted:
        item_id = item_id_of(item)
        if item_id is not None and before.get(item_id, _MISSING) == item:
            continue  # unchanged
        if not isinstance(item, MessageItem):
            warnings.append(f"cannot recreate a {item.type} item ({item_id})")
            continue
        if any(part.type == "output_audio" for part in item.content):
            raise LocalProtocolError(
                f"item {item_id}: assistant output_audio cannot be recreated; "
                "send its transcript as output_text instead",
                event_type="conversation.item.create",
            )
        creates.append(ConversationItemCreate(item=_creatable(item)))
    return deletes, creates, warnings


_MISSING = object()


def _creatable(item: MessageItem) -> MessageItem:
    # what conversation.item.create accepts: no server-side object tag, no system status
    return MessageItem(
        id=item.id,
        role=item.role,
        content=item.content,
        status=msgspec.UNSET if item.role == "system" else item.status,
    )
