"""What the user heard: the playback tracker's positions stay within what arrived."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rtproto.session.playback import PlaybackItem, PlaybackTracker

steps = st.lists(
    st.one_of(
        st.tuples(st.just("audio"), st.sampled_from(["a", "b", "c"]), st.integers(0, 96_000)),
        st.tuples(st.just("progress"), st.sampled_from(["a", "b", "z"]), st.floats(-10, 5000)),
        st.tuples(st.just("wait"), st.floats(0, 3)),
        st.tuples(st.just("done"), st.sampled_from(["a", "b", "z"])),
    ),
    max_size=30,
)


def pcm_base64(size: int) -> str:
    """``size`` bytes of audio as a delta carries them."""
    return base64.b64encode(bytes(size)).decode()


@settings(max_examples=300, deadline=None)
@given(
    steps=steps,
    estimate=st.booleans(),
    rate=st.sampled_from([8000, 16000, 24000, 48000, 2140]),
)
def test_played_positions_are_whole_ms_within_the_audio_received(
    steps: list[tuple[Any, ...]], estimate: bool, rate: int
) -> None:
    tracker = PlaybackTracker(estimate=estimate, max_items=2)
    now = 0.0
    for step in steps:
        if step[0] == "audio":
            item = tracker.items.get(step[1]) or tracker.start(step[1], "r", 0, now, rate)
            item.add_base64(pcm_base64(step[2]))
        elif step[0] == "progress":
            tracker.progress(step[1], step[2])
        elif step[0] == "done":
            tracker.complete(step[1])
        else:
            now += step[1]
        assert len(tracker.items) <= 2
        played = tracker.played(now)
        later = dict((item.item_id, ms) for item, ms in tracker.played(now + 1.0))
        for item, ms in played:
            assert type(ms) is int and 0 <= ms <= item.received_whole_ms
            assert later[item.item_id] >= ms  # time only moves playback forward
            if not estimate and item.reported_ms is None:
                assert ms == 0  # unreported audio counts as unheard without the estimate
        # what is cut: every item still arriving (the server may hold more than was
        # received), and complete items not played to the end
        unheard = {item.item_id for item, _ in tracker.unheard(now)}
        assert unheard == {
            item.item_id
            for item, ms in played
            if not item.complete
            or ms < item.received_whole_ms
            # without the estimate, audio nobody reported is not heard, even under 1 ms
            or (not estimate and item.reported_ms is None and item.received_bytes > 0)
        }


def test_an_item_still_arriving_is_cut_even_when_all_received_was_played() -> None:
    """Found by replaying traces through the JS transport (tests/test_js_conformance.py): the
    server may hold audio the client has not received yet, so the item is cut at what was
    received; only a complete item played to the end is left alone."""
    tracker = PlaybackTracker()
    tracker.start("a", "r", 0, 0.0, 48_000).add_base64(pcm_base64(4800))  # 100 ms at 24 kHz
    assert [(item.item_id, ms) for item, ms in tracker.unheard(5.0)] == [("a", 100)]
    tracker.complete("a")
    assert tracker.unheard(5.0) == []
    assert [(item.item_id, ms) for item, ms in tracker.unheard(0.04)] == [("a", 40)]
    tracker.start("b", "r", 0, 5.0, 48_000)  # a finished item is forgotten
    assert list(tracker.items) == ["b"]
    tracker.start("c", "r", 0, 5.0, 48_000)  # an unfinished one is kept
    assert list(tracker.items) == ["b", "c"]
    tracker.complete("z")  # unknown: nothing happens
    tracker.response_done("r")  # every item of a finished response is complete
    assert tracker.unheard(10.0) == []


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 200), max_size=40))
def test_base64_audio_counts_exactly_what_decoding_gives(sizes: list[int]) -> None:
    """receive() counts each delta's base64 characters and padding instead of decoding it:
    the total is always the decoded size, whatever the padding of each chunk."""
    item = PlaybackItem("a", "r", 0, 0.0, 48_000)
    decoded = 0
    for size in sizes:
        delta = pcm_base64(size)
        decoded += len(base64.b64decode(delta))
        item.add_base64(delta)
        assert item.received_bytes == decoded


def test_a_new_item_prunes_only_the_items_heard_before_the_first_unheard_one() -> None:
    """Starting an item drops the oldest items heard to the end, and stops at the first one
    not heard: audio plays in order, so the search never walks the whole queue."""
    tracker = PlaybackTracker(estimate=False)
    for item_id in ("heard", "unheard", "reported"):
        item = tracker.start(item_id, "r", 0, 0.0, 48000)
        item.add_base64(pcm_base64(4800))  # 100 ms
        tracker.complete(item_id)
    tracker.progress("heard", 100.0)
    tracker.progress("reported", 100.0)  # (out of order: kept until the one before is heard)
    tracker.start("next", "r", 0, 1.0, 48000)
    assert list(tracker.items) == ["unheard", "reported", "next"]
    assert [item.item_id for item, _ in tracker.unheard(1.0)] == ["unheard", "next"]
    tracker.progress("unheard", 100.0)
    tracker.start("last", "r", 0, 2.0, 48000)
    assert list(tracker.items) == ["next", "last"]


def test_a_lead_cuts_past_the_reports_and_into_the_oldest_unheard_item() -> None:
    """Phone bridges: marks come back after their audio played, so a reported item is cut
    ``lead_ms`` past its report (within what arrived), the oldest item not heard to the end
    ``lead_ms`` in even unreported, a later unreported one at 0; heard-to-the-end goes by
    the report alone."""
    tracker = PlaybackTracker(estimate=False, lead_ms=50.0)
    for item_id, size in (("heard", 800), ("first", 161), ("later", 800), ("acked", 800)):
        tracker.start(item_id, "r", 0, 0.0, 8000).add_base64(pcm_base64(size))  # mu-law
    tracker.complete("heard")
    tracker.progress("heard", 100.0)  # all of it: not cut, and not "the oldest"
    tracker.progress("acked", 70.0)
    assert [(item.item_id, ms) for item, ms in tracker.unheard(9.0)] == [
        ("first", 20),  # min(20.125 received, 0 + 50), floored
        ("later", 0),
        ("acked", 100),  # min(100 received, 70 + 50)
    ]
    tracker.progress("first", 10.0)
    assert dict((item.item_id, ms) for item, ms in tracker.unheard(9.0))["first"] == 20
    tracker.complete("acked")
    tracker.progress("acked", 99.0)  # the lead would reach the end: still cut, at 100
    assert ("acked", 100) in [(item.item_id, ms) for item, ms in tracker.unheard(9.0)]
