"""The relay's acknowledgement window: the saved position is the contiguous acknowledged prefix.

Pure bookkeeping, so the sends' futures are stand-ins completed by hand, in any order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.errors import KafkaError, KafkaTimeoutError

from ledger.kafka.client import AckWindow


class Sent(NamedTuple):
    topic: str
    partition: int
    offset: int


class FakeSend:
    """A send's future, completed when the test says so."""

    def __init__(self) -> None:
        self.is_done = False
        self.exception: BaseException | None = None
        self.value: Any = None

    def get(self, timeout: float | None = None) -> Any:
        if not self.is_done:
            raise KafkaTimeoutError("not yet")
        if self.exception is not None:
            raise self.exception
        return self.value

    def acknowledge(self, topic: str = "t.officers", partition: int = 0, offset: int = 0) -> None:
        self.value, self.is_done = Sent(topic, partition, offset), True

    def fail(self, error: BaseException) -> None:
        self.exception, self.is_done = error, True


def _window(positions: list[int], start: int = 0) -> tuple[AckWindow, dict[int, FakeSend]]:
    window = AckWindow(start)
    sends = {p: FakeSend() for p in positions}
    for p in positions:
        window.add(p, sends[p])
    return window, sends


def test_acknowledgements_out_of_order_move_the_position_only_over_the_contiguous_prefix() -> None:
    window, sends = _window([1, 2, 3, 4, 5, 6])
    for p in (3, 4, 5):
        sends[p].acknowledge(offset=p)
    assert window.advance() == 0 and window.position == 0  # 1 and 2 are still in flight
    sends[1].acknowledge(offset=1)
    assert window.advance() == 1 and window.position == 1
    sends[2].acknowledge(offset=2)
    assert window.advance() == 4 and window.position == 5  # 2, then the waiting 3, 4, 5
    assert len(window) == 1 and window.oldest() is sends[6]


def test_a_failed_send_stops_the_position_however_much_was_acknowledged_after_it() -> None:
    window, sends = _window([1, 2, 3, 4, 5])
    for p in (1, 2, 4, 5):
        sends[p].acknowledge(offset=p)
    sends[3].fail(KafkaTimeoutError("batch expired"))
    with pytest.raises(KafkaTimeoutError):
        window.advance()
    assert window.position == 2
    with pytest.raises(KafkaError):  # and it stays failed: never skipped on a second look
        window.advance()
    assert window.position == 2
    assert window.ends == {("t.officers", 0): 3}  # only offsets inside the prefix


def test_partition_ends_cover_the_acknowledged_prefix_only() -> None:
    window, sends = _window([10, 11, 12, 15])  # notification ids need not be contiguous
    sends[10].acknowledge("t.officers", 2, 40)
    sends[11].acknowledge("t.reference", 0, 7)
    sends[15].acknowledge("t.officers", 2, 42)
    window.advance()
    assert window.position == 11
    assert window.ends == {("t.officers", 2): 41, ("t.reference", 0): 8}
    sends[12].acknowledge("t.officers", 5, 3)
    window.advance()
    assert window.position == 15
    assert window.ends == {("t.officers", 2): 43, ("t.reference", 0): 8, ("t.officers", 5): 4}


def test_sends_are_tracked_in_log_order_only() -> None:
    window, _ = _window([5, 6], start=4)
    assert window.sent_to == 6
    with pytest.raises(ValueError):
        window.add(6, FakeSend())
    with pytest.raises(ValueError):
        AckWindow(10).add(10, FakeSend())


def test_an_empty_window_waits_for_nothing() -> None:
    window = AckWindow(7)
    assert window.advance() == 0 and window.position == 7 and window.oldest() is None


@given(
    outcomes=st.lists(st.sampled_from(["ack", "pending", "fail"]), min_size=1, max_size=40),
    order=st.randoms(use_true_random=False),
)
def test_the_position_is_always_the_end_of_the_acknowledged_prefix(outcomes: list[str], order: Any) -> None:
    positions = list(range(1, len(outcomes) + 1))
    window, sends = _window(positions)
    completing = [p for p, o in zip(positions, outcomes, strict=True) if o != "pending"]
    order.shuffle(completing)
    failed = False
    for p in completing:  # complete one at a time, in a random order, looking after each
        if outcomes[p - 1] == "ack":
            sends[p].acknowledge(offset=p)
        else:
            sends[p].fail(KafkaTimeoutError())
        try:
            window.advance()
        except KafkaError:
            failed = True
        prefix = 0
        for q in positions:
            if not (sends[q].is_done and sends[q].exception is None):
                break
            prefix = q
        assert window.position == prefix
        assert all(sends[q].exception is None for q in positions if q <= window.position)
    first_failure = next((p for p, o in zip(positions, outcomes, strict=True) if o == "fail"), None)
    first_pending = next((p for p, o in zip(positions, outcomes, strict=True) if o == "pending"), None)
    if first_failure is not None and (first_pending is None or first_failure < first_pending):
        assert failed and window.position == first_failure - 1
