"""The session's history store: its ordered snapshot always agrees with its index."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtproto import LocalProtocolError
from rtproto import models as M
from rtproto.session.history import History

ids = st.sampled_from(["a", "b", "c", "d", "e", "f"])


def message(item_id: str, text: str) -> M.MessageItem:
    return M.MessageItem(
        id=item_id, role="user", content=[M.ContentPart(type="input_audio", transcript=text)]
    )


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("put"), ids, st.one_of(st.none(), ids), st.booleans(), st.text(max_size=2)
        ),
        st.tuples(st.just("replace"), ids, st.text(max_size=2)),
        st.tuples(st.just("delete"), ids),
        st.tuples(st.just("transcript"), ids, st.text(max_size=2)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(operations=operations, bound=st.integers(1, 5))
def test_snapshot_agrees_with_the_index_after_any_operations(
    operations: list[tuple[Any, ...]], bound: int
) -> None:
    history = History(max_items=bound)
    for operation in operations:
        kind, item_id = operation[0], operation[1]
        if kind == "put":
            history.put(message(item_id, operation[4]), operation[2], place=operation[3])
        elif kind == "replace":
            history.replace(message(item_id, operation[2]), keep_transcripts=True)
        elif kind == "delete":
            history.delete(item_id)
        else:
            history.set_transcript(item_id, 0, operation[2])
        snapshot = history.items()
        assert [item.id for item in snapshot] == history._order
        assert snapshot == tuple(history._items[i] for i in history._order)
        assert len(set(history._order)) == len(history._order) <= bound
        assert all(history.get(str(item.id)) is item for item in snapshot)


def test_items_are_placed_after_their_previous_item_and_retrieved_ones_before_followers() -> None:
    history = History()
    history.put(message("a", ""), None, place=True)
    history.put(message("c", ""), "b", place=True)  # b unknown: placed last, reported
    assert [i.id for i in history.items()] == ["a", "c"]
    history.put(message("b", ""), None, place=False)  # retrieved: before c, which follows it
    history.put(message("d", ""), "a", place=True)  # after a, in the middle
    assert [i.id for i in history.items()] == ["a", "d", "b", "c"]
    assert history.replace(message("b", "hello"))
    assert history.items()[2] == message("b", "hello")
    assert history.delete("d") and not history.delete("d")
    assert [i.id for i in history.items()] == ["a", "b", "c"]


histories = st.lists(
    st.tuples(ids, st.sampled_from(["", "x", "y"])), max_size=6, unique_by=lambda t: t[0]
)


@settings(max_examples=300, deadline=None)
@given(current=histories, wanted=histories)
def test_reset_history_diff_turns_current_into_wanted(
    current: list[tuple[str, str]], wanted: list[tuple[str, str]]
) -> None:
    from rtproto.session.history import diff_history

    before = [message(i, t) for i, t in current]
    after = [message(i, t) for i, t in wanted]
    deletes, creates, warnings = diff_history(before, after)
    assert warnings == []
    deleted = {d.item_id for d in deletes}
    assert len(deleted) == len(deletes)  # each at most once
    result = {item.id: item for item in before if item.id not in deleted}
    for create in creates:
        assert create.item.id not in result, "created over an item still there"
        result[create.item.id] = create.item
    assert result == {item.id: item for item in after}
    unchanged = [item for item in before if item in after]
    assert not deleted & {item.id for item in unchanged}  # nothing needlessly recreated


def test_reset_history_diff_refuses_a_repeated_id() -> None:
    from rtproto.session.history import diff_history

    with pytest.raises(LocalProtocolError, match="'a' appears twice"):
        diff_history([message("a", "x")], [message("a", "x"), message("a", "y")])


def test_reset_history_diff_is_linear() -> None:
    """It looked every item up among all the others: 0.66 s at 4096 items, about 16 s at
    20,000. Now about 5 ms at 20,000, so the 2 s allowed here only fails when quadratic."""
    from rtproto.session.history import diff_history

    items = [message(f"item_{n}", str(n)) for n in range(20_000)]
    wanted = [*items[1:], message("new", "")]
    start = time.perf_counter()
    deletes, creates, _ = diff_history(items, wanted)
    assert time.perf_counter() - start < 2.0
    assert [d.item_id for d in deletes] == ["item_0"]
    assert [c.item.id for c in creates] == ["new"]


def test_an_item_with_no_previous_item_goes_first() -> None:
    """``previous_item_id: null`` is the conversation's root (the service's answer to an item
    created at ``"root"``), even when items are already there."""
    history = History()
    history.put(message("a", ""), None, place=True)
    history.put(message("b", ""), "a", place=True)
    history.put(message("r", ""), None, place=True)
    assert [i.id for i in history.items()] == ["r", "a", "b"]


def chain(count: int, **options: Any) -> History:
    """A history of ``count`` items i0, i1, ..., each placed after the one before."""
    history = History(**options)
    for n in range(count):
        history.put(message(f"i{n}", ""), f"i{n - 1}" if n else None, place=True)
    return history


def test_items_far_from_the_end_are_found() -> None:
    history = chain(10)
    assert history.replace(message("i1", "changed"))
    assert history.items()[1] == message("i1", "changed")
    assert history.delete("i2")
    history.put(message("x", ""), "i0", place=True)
    assert [i.id for i in history.items()][:4] == ["i0", "x", "i1", "i3"]


def test_a_known_item_put_without_placement_is_replaced_where_it_is() -> None:
    history = History()
    history.put(message("a", ""), None, place=True)
    history.put(message("b", ""), "a", place=True)
    assert history.put(message("a", "new"), "unknown", place=False)  # previous unknown: said
    assert not history.put(message("a", "newer"), None, place=False)
    assert history.items() == (message("a", "newer"), message("b", ""))


def test_forgotten_items_leave_nothing_behind() -> None:
    """Evicted and deleted items drop their placement too: memory stays bounded."""
    history = chain(100, max_items=3)
    assert history.delete("i99")
    assert set(history._previous) == set(history._items) == {"i97", "i98"}


def test_replacing_keeps_old_transcripts_only_when_asked_and_only_where_missing() -> None:
    def parts(*transcripts: str | None) -> M.MessageItem:
        content = [M.ContentPart(type="output_audio", transcript=t) for t in transcripts]
        return M.MessageItem(id="a", role="assistant", content=content)

    history = History()
    history.put(parts("old one", "old two"), None, place=True)
    assert history.replace(parts(None, "new two"), keep_transcripts=True)
    assert history.get("a") == parts("old one", "new two")
    assert history.replace(parts(None, None))  # the server's version, as it is
    assert history.get("a") == parts(None, None)
