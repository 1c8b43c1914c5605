"""The parts of the phone bridge, on their own: the mark ledger (rtproto.phone.marks) and
the input padding (rtproto.phone.padding)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtproto.phone import Acknowledged, InputPadding, MarkLedger, SentItem
from rtproto.phone import padding as padding_module

# --- MarkLedger: names -------------------------------------------------------------------------


def test_mark_names_carry_the_item_the_floor_of_ms_sent_the_generation_and_a_sequence() -> None:
    ledger = MarkLedger()
    assert ledger.generation == 0 and ledger.pending == 0
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:20:g0:m1"
    assert ledger.audio_sent("resp_1", "item_A", 0, 12.9) == "item_A:32:g0:m2"  # 32.9, floored
    assert ledger.audio_sent("resp_1", "item_A", 0, 0.2) == "item_A:33:g0:m3"  # 33.1
    assert ledger.done("resp_1", "item_A", 0) == "done:item_A:g0:m4"
    assert ledger.pending == 4


def test_the_sequence_runs_across_items_and_items_count_their_own_ms() -> None:
    ledger = MarkLedger()
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:20:g0:m1"
    assert ledger.audio_sent("resp_1", "item_B", 0, 40.0) == "item_B:40:g0:m2"
    assert ledger.audio_sent("resp_1", "item_A", 1, 5.0) == "item_A:5:g0:m3"  # another part
    assert ledger.audio_sent("resp_2", "item_A", 0, 5.0) == "item_A:5:g0:m4"  # another response
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:40:g0:m5"


def test_an_item_id_with_colons_is_kept_whole() -> None:
    ledger = MarkLedger()
    name = ledger.audio_sent("r", "a:1:g2:m3", 0, 7.5)
    assert name == "a:1:g2:m3:7:g0:m1"
    assert isinstance(ledger.acknowledge(name), Acknowledged)


# --- MarkLedger: acknowledgements --------------------------------------------------------------


def test_acknowledge_says_what_played() -> None:
    ledger = MarkLedger()
    first = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    second = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    done = ledger.done("resp_1", "item_A", 0)
    assert done is not None
    acknowledged = ledger.acknowledge(first)
    assert isinstance(acknowledged, Acknowledged)
    assert (acknowledged.played_ms, acknowledged.done) == (20.0, False)  # as of that mark
    item = acknowledged.item
    assert isinstance(item, SentItem)
    assert (item.response_id, item.item_id, item.content_index) == ("resp_1", "item_A", 0)
    assert (item.sent_ms, item.done_mark_sent) == (40.0, True)
    assert ledger.pending == 2
    acknowledged = ledger.acknowledge(second)
    assert isinstance(acknowledged, Acknowledged)
    assert (acknowledged.played_ms, acknowledged.done) == (40.0, False)
    acknowledged = ledger.acknowledge(done)
    assert isinstance(acknowledged, Acknowledged)
    assert (acknowledged.played_ms, acknowledged.done) == (40.0, True)
    assert acknowledged.item is item
    assert ledger.pending == 0


def test_acknowledge_is_false_for_a_name_never_given_or_already_acknowledged() -> None:
    ledger = MarkLedger()
    name = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    assert ledger.acknowledge("item_A:20:g0:m2") is False
    assert ledger.acknowledge("") is False
    assert isinstance(ledger.acknowledge(name), Acknowledged)
    assert ledger.acknowledge(name) is False


def test_a_done_mark_acknowledged_forgets_the_item() -> None:
    ledger = MarkLedger()
    ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    done = ledger.done("resp_1", "item_A", 0)
    assert done is not None
    assert isinstance(ledger.acknowledge(done), Acknowledged)
    assert ledger.done("resp_1", "item_A", 0) is None  # nothing of it is known now
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:20:g0:m3"  # from 0 again


def test_a_chunk_mark_acknowledged_keeps_the_item() -> None:
    ledger = MarkLedger()
    name = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    assert isinstance(ledger.acknowledge(name), Acknowledged)
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:40:g0:m2"
    assert ledger.done("resp_1", "item_A", 0) == "done:item_A:g0:m3"


def test_ledger_records_have_no_instance_dict() -> None:
    """(Slots: one SentItem per item and one entry per pending mark, thousands a call.)"""
    ledger = MarkLedger()
    acknowledged = ledger.acknowledge(ledger.audio_sent("r", "i", 0, 1.0))
    assert isinstance(acknowledged, Acknowledged)
    assert not hasattr(acknowledged, "__dict__")
    assert not hasattr(acknowledged.item, "__dict__")


def test_acknowledged_is_immutable() -> None:
    ledger = MarkLedger()
    acknowledged = ledger.acknowledge(ledger.audio_sent("r", "i", 0, 1.0))
    assert isinstance(acknowledged, Acknowledged)
    with pytest.raises(dataclasses.FrozenInstanceError):
        acknowledged.played_ms = 2.0  # type: ignore[misc]


# --- MarkLedger: done marks --------------------------------------------------------------------


def test_done_once_per_item() -> None:
    ledger = MarkLedger()
    ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    assert ledger.done("resp_1", "item_A", 0) == "done:item_A:g0:m2"
    assert ledger.done("resp_1", "item_A", 0) is None
    ledger.audio_sent("resp_1", "item_A", 0, 20.0)  # (more audio: still no second done mark)
    assert ledger.done("resp_1", "item_A", 0) is None
    assert ledger.pending == 3


def test_done_is_none_for_an_item_never_sent() -> None:
    ledger = MarkLedger()
    ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    assert ledger.done("resp_1", "item_B", 0) is None
    assert ledger.done("resp_2", "item_A", 0) is None
    assert ledger.done("resp_1", "item_A", 1) is None
    assert ledger.pending == 1  # no mark was named


# --- MarkLedger: generations -------------------------------------------------------------------


def test_a_cleared_generation_keeps_its_pending_names_as_cleared() -> None:
    ledger = MarkLedger()
    first = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    second = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    acknowledged = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    assert isinstance(ledger.acknowledge(acknowledged), Acknowledged)
    ledger.new_generation(cleared=True)
    assert ledger.generation == 1 and ledger.pending == 0
    assert ledger.acknowledge(second) is True  # cleared: ignored
    assert ledger.acknowledge(second) is False  # once
    assert ledger.acknowledge(acknowledged) is False  # (it was not pending)
    # the items are forgotten; the sequence goes on
    assert ledger.done("resp_1", "item_A", 0) is None
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:20:g1:m4"
    assert ledger.acknowledge(first) is True


def test_a_new_stream_forgets_pending_and_cleared_names_and_restarts_the_sequence() -> None:
    ledger = MarkLedger()
    cleared = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    ledger.new_generation(cleared=True)
    pending = ledger.audio_sent("resp_1", "item_A", 0, 20.0)
    assert pending == "item_A:20:g1:m2"
    ledger.new_generation(cleared=False)
    assert ledger.generation == 2 and ledger.pending == 0
    assert ledger.acknowledge(cleared) is False
    assert ledger.acknowledge(pending) is False
    assert ledger.done("resp_1", "item_A", 0) is None
    assert ledger.audio_sent("resp_1", "item_A", 0, 20.0) == "item_A:20:g2:m1"


def test_names_stay_unique_across_generations() -> None:
    ledger = MarkLedger()
    names = []
    for cleared in (True, False, True, False):
        names.append(ledger.audio_sent("r", "i", 0, 20.0))
        names.append(ledger.done("r", "i", 0))
        ledger.new_generation(cleared=cleared)
    assert len(set(names)) == len(names) == 8


# --- MarkLedger: bounds ------------------------------------------------------------------------


def test_beyond_max_pending_the_oldest_marks_are_forgotten() -> None:
    ledger = MarkLedger(max_pending=3)
    names = [ledger.audio_sent("r", "i", 0, 20.0) for _ in range(5)]
    assert ledger.pending == 3
    assert ledger.acknowledge(names[0]) is False
    assert ledger.acknowledge(names[1]) is False
    for name in names[2:]:
        assert isinstance(ledger.acknowledge(name), Acknowledged)
    assert ledger.pending == 0


def test_exactly_max_pending_marks_are_kept() -> None:
    ledger = MarkLedger(max_pending=3)
    names = [ledger.audio_sent("r", "i", 0, 20.0) for _ in range(3)]
    assert ledger.pending == 3
    assert all(isinstance(ledger.acknowledge(name), Acknowledged) for name in names)


def test_cleared_names_are_bounded_too_oldest_forgotten() -> None:
    ledger = MarkLedger(max_pending=3)
    old = [ledger.audio_sent("r", "i", 0, 20.0) for _ in range(3)]
    ledger.new_generation(cleared=True)
    new = [ledger.audio_sent("r", "i", 0, 20.0) for _ in range(2)]
    ledger.new_generation(cleared=True)  # 5 cleared names: the 2 oldest are forgotten
    assert [ledger.acknowledge(name) for name in old] == [False, False, True]
    assert [ledger.acknowledge(name) for name in new] == [True, True]


def test_the_default_bound() -> None:
    assert MarkLedger().max_pending == 4096


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 2), st.floats(0, 1000, allow_nan=False)),
        max_size=40,
    ),
    st.integers(1, 6),
)
def test_the_ledger_never_holds_more_than_its_bound(
    steps: list[tuple[int, int, float]], bound: int
) -> None:
    ledger = MarkLedger(max_pending=bound)
    given_names: list[str] = []
    for action, item, ms in steps:
        if action == 0:
            given_names.append(ledger.audio_sent("r", f"item_{item}", 0, ms))
        elif action == 1:
            name = ledger.done("r", f"item_{item}", 0)
            if name is not None:
                given_names.append(name)
        elif action == 2 and given_names:
            result = ledger.acknowledge(given_names[int(ms) % len(given_names)])
            assert result is True or result is False or isinstance(result, Acknowledged)
        else:
            ledger.new_generation(cleared=action == 3)
        assert ledger.pending <= bound
        assert len(ledger._cleared) <= bound
    assert len(set(given_names)) == len(given_names)


# --- InputPadding: gaps ------------------------------------------------------------------------


def enabled(timeout: float | None = 0.75) -> InputPadding:
    padding = InputPadding(timeout)
    padding.reset(enabled=True)
    return padding


def test_constants() -> None:
    assert padding_module.BYTES_PER_MS == 8
    assert padding_module.SILENCE_BYTE == 0xFF
    assert padding_module.MAX_GAP_MS == 10_000
    assert padding_module.INACTIVITY_SILENCE_MS == 1_000
    padding = InputPadding()
    assert padding.timeout == 0.75 and padding.enabled is False


def test_a_new_padding_has_heard_no_speech_and_padded_nothing() -> None:
    padding = InputPadding()
    padding.enabled = True  # (without reset(): the state it starts in)
    assert padding.deadline() is None
    assert padding.media(0, 160, 1.0) == 0
    assert padding.deadline() is None  # not speaking
    assert padding.fire(10.0) == 0
    assert padding.media(120, 160, 1.1) == 100
    padding.speech_started()
    assert padding.deadline() == 1.85


def test_contiguous_media_needs_no_silence() -> None:
    padding = enabled()
    assert [padding.media(ts, 160, ts / 1000) for ts in (0, 20, 40, 60)] == [0, 0, 0, 0]


def test_a_gap_is_filled_from_the_end_of_the_previous_media() -> None:
    padding = enabled()
    assert padding.media(1000, 160, 0.0) == 0  # the first: nothing to infer from
    assert padding.media(1120, 160, 0.1) == 100  # 1020 .. 1120
    assert padding.media(1140, 80, 0.2) == 0  # 1140 + 10 ms
    assert padding.media(1151, 160, 0.3) == 1


def test_a_gap_is_floored_to_whole_ms() -> None:
    padding = enabled()
    assert padding.media(0, 100, 0.0) == 0  # 12.5 ms: the next is due at 12.5
    assert padding.media(20, 160, 0.1) == 7  # 7.5 ms missing
    padding = enabled()
    padding.media(0, 100, 0.0)
    assert padding.media(13, 160, 0.1) == 0  # 0.5 ms


@pytest.mark.parametrize(
    ("gap", "silence"),
    [(9_999, 9_999), (10_000, 10_000), (10_001, 10_000), (3_600_000, 10_000), (2**53, 10_000)],
)
def test_a_gap_is_filled_with_at_most_10_s(gap: int, silence: int) -> None:
    padding = enabled()
    padding.media(0, 160, 0.0)
    assert padding.media(20 + gap, 160, 1.0) == silence


def test_a_timestamp_going_backwards_restarts_the_inference() -> None:
    padding = enabled()
    padding.media(1000, 160, 0.0)
    assert padding.media(500, 160, 0.1) == 0  # backwards
    assert padding.media(900, 160, 0.2) == 0  # not measured from 520: nothing to infer from
    assert padding.media(1000, 160, 0.3) == 80  # measured from 920 again


def test_a_timestamp_just_before_the_expected_one_counts_as_backwards() -> None:
    padding = enabled()
    padding.media(0, 160, 0.0)
    assert padding.media(19, 160, 0.1) == 0
    assert padding.media(100, 160, 0.2) == 0  # (restarted)
    assert padding.media(200, 160, 0.3) == 80


def test_a_media_without_timestamp_restarts_the_inference() -> None:
    padding = enabled()
    padding.media(0, 160, 0.0)
    assert padding.media(None, 160, 0.1) == 0
    assert padding.media(5000, 160, 0.2) == 0
    assert padding.media(5100, 160, 0.3) == 80


def test_no_padding_for_a_stream_in_another_format() -> None:
    padding = InputPadding()
    assert padding.media(0, 160, 0.0) == 0
    assert padding.media(5000, 160, 0.1) == 0
    padding.reset(enabled=True)
    padding.media(0, 160, 0.2)
    padding.reset(enabled=False)
    assert padding.media(20, 160, 0.3) == 0
    assert padding.media(5000, 160, 0.4) == 0


def test_reset_keeps_the_format_unless_told_and_forgets_the_stream() -> None:
    padding = enabled()
    padding.media(0, 160, 0.0)
    padding.reset()
    assert padding.enabled is True
    assert padding.media(5000, 160, 0.1) == 0  # a new stream: nothing to infer from
    assert padding.media(5100, 160, 0.2) == 80
    padding.reset(enabled=False)
    assert padding.enabled is False


# --- InputPadding: inactivity ------------------------------------------------------------------


def test_the_deadline_is_the_last_media_plus_the_timeout_while_the_caller_speaks() -> None:
    padding = enabled(timeout=0.75)
    padding.media(0, 160, 10.0)
    assert padding.deadline() is None  # not speaking
    padding.speech_started()
    assert padding.deadline() == 10.75
    padding.media(20, 160, 10.5)
    assert padding.deadline() == 11.25  # each media moves it
    padding.speech_stopped()
    assert padding.deadline() is None
    padding.media(40, 160, 11.0)
    assert padding.deadline() is None


def test_speech_before_any_media_arms_nothing_until_media_comes() -> None:
    padding = enabled()
    padding.speech_started()
    assert padding.deadline() is None
    assert padding.fire(100.0) == 0
    padding.media(0, 160, 2.0)
    assert padding.deadline() == 2.75


def test_fire_sends_one_second_once() -> None:
    padding = enabled()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    assert padding.fire(1.75) == 1000  # at the deadline exactly
    assert padding.deadline() is None
    assert padding.fire(1.75) == 0
    assert padding.fire(10.0) == 0
    padding.media(20, 160, 11.0)  # media again: armed again
    assert padding.deadline() == 11.75
    assert padding.fire(12.0) == 1000


def test_fire_before_the_deadline_sends_nothing_and_keeps_it() -> None:
    padding = enabled()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    assert padding.fire(1.7499) == 0
    assert padding.deadline() == 1.75
    assert padding.fire(1.8) == 1000


def test_speech_stopped_cancels_the_padding() -> None:
    padding = enabled()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    padding.speech_stopped()
    assert padding.fire(5.0) == 0


def test_fire_on_a_session_not_connected_sends_nothing_and_is_spent() -> None:
    padding = enabled()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    assert padding.fire(2.0, connected=False) == 0
    assert padding.deadline() is None
    assert padding.fire(2.0) == 0


def test_a_timeout_of_none_never_arms() -> None:
    padding = enabled(timeout=None)
    padding.speech_started()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    assert padding.deadline() is None
    assert padding.fire(1000.0) == 0


def test_no_inactivity_padding_for_a_stream_in_another_format() -> None:
    padding = InputPadding()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    assert padding.deadline() is None
    assert padding.fire(10.0) == 0


def test_reset_disarms() -> None:
    padding = enabled()
    padding.media(0, 160, 1.0)
    padding.speech_started()
    padding.reset()
    assert padding.deadline() is None
    padding.media(20, 160, 2.0)
    assert padding.deadline() is None  # (no longer speaking)


def test_the_gap_after_an_inactivity_padding_is_not_padded_again() -> None:
    padding = enabled()
    padding.media(0, 160, 0.0)
    padding.speech_started()
    assert padding.fire(0.75) == 1000
    assert padding.media(3000, 160, 3.0) == 0  # the gap (2980 ms) was partly filled
    assert padding.media(4000, 160, 4.0) == 980  # later gaps are filled again


def test_an_inactivity_padding_not_sent_leaves_the_next_gap_padded() -> None:
    padding = enabled()
    padding.media(0, 160, 0.0)
    padding.speech_started()
    assert padding.fire(0.75, connected=False) == 0
    assert padding.media(3000, 160, 3.0) == 2980


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["media", "none", "start", "stop", "fire", "reset"]),
            st.integers(0, 100_000),
            st.integers(0, 2000),
        ),
        max_size=30,
    )
)
def test_silence_is_never_negative_nor_over_10_s(steps: list[tuple[str, int, int]]) -> None:
    padding = enabled()
    now = 0.0
    for action, timestamp, size in steps:
        now += size / 1000
        if action == "media":
            assert 0 <= padding.media(timestamp, size, now) <= 10_000
        elif action == "none":
            assert padding.media(None, size, now) == 0
        elif action == "start":
            padding.speech_started()
        elif action == "stop":
            padding.speech_stopped()
        elif action == "fire":
            assert padding.fire(now) in (0, 1000)
        else:
            padding.reset(enabled=bool(size & 1))
        deadline = padding.deadline()
        assert deadline is None or deadline <= now + 0.75
