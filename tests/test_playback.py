"""What the user heard: the playback tracker's positions stay within what arrived."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rtproto.session.playback import PlaybackTracker

steps = st.lists(
    st.one_of(
        st.tuples(st.just("audio"), st.sampled_from(["a", "b", "c"]), st.integers(0, 96_000)),
        st.tuples(st.just("progress"), st.sampled_from(["a", "b", "z"]), st.floats(-10, 5000)),
        st.tuples(st.just("wait"), st.floats(0, 3)),
    ),
    max_size=30,
)


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
            item.received_bytes += step[2]
        elif step[0] == "progress":
            tracker.progress(step[1], step[2])
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
        unheard = {item.item_id for item, _ in tracker.unheard(now)}
        assert unheard == {item.item_id for item, ms in played if ms < item.received_whole_ms}
