"""The relay's page source: a helper process reads and encodes ahead, page for page what the relay would."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.kafka.codec import default_codec
from ledger.kafka.relay_pages import Outgoing, PageSource
from ledger.write.application import Ledger

PAGE = 50


def _all_pages(source: PageSource, after: int = 0) -> list[list[Outgoing]]:
    pages = []
    while page := source.next(after):
        pages.append(page)
        after = page[-1].position
    return pages


def _until_reading_ahead(source: PageSource, first: list[Outgoing]) -> None:
    """Ask for the first page again until the helper has started (it answers from then on)."""
    deadline = time.monotonic() + 60
    while not source.reading_ahead and time.monotonic() < deadline:
        time.sleep(0.05)
        assert source.next(0) == first
    assert source.reading_ahead, "the helper process never became ready"


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_helper_hands_over_the_pages_read_here_and_rereads_after_a_restart(settings: Settings) -> None:
    list(Ledger(settings).ingest(generate_lines(40, seed=3)))
    ledger = Ledger(settings)
    codec = default_codec()
    expected = _all_pages(PageSource(ledger, codec, "p", PAGE, helper_backlog=None))
    assert len(expected) > 6

    source = PageSource(ledger, codec, "p", PAGE, helper_backlog=0)
    try:
        first = source.next(0)
        assert first == expected[0]
        _until_reading_ahead(source, first)
        pid = source.helper_pid
        assert pid is not None
        assert [first, *_all_pages(source, first[-1].position)] == expected
        # The relay restarting from its saved prefix: what was read ahead is dropped.
        assert source.next(expected[1][-1].position) == expected[2]
        assert source.next(expected[4][-1].position) == expected[5]
        assert source.next(expected[5][-1].position) == expected[6]
        assert source.reading_ahead
    finally:
        source.close()
        ledger.close()
    assert _gone(pid), "the helper process outlived close()"


def test_a_helper_that_dies_is_replaced_by_reading_in_the_relays_process(sqlite_settings: Settings) -> None:
    list(Ledger(sqlite_settings).ingest(generate_lines(30, seed=5)))
    ledger = Ledger(sqlite_settings)
    codec = default_codec()
    expected = _all_pages(PageSource(ledger, codec, "p", PAGE, helper_backlog=None))
    source = PageSource(ledger, codec, "p", PAGE, helper_backlog=0)
    try:
        first = source.next(0)
        _until_reading_ahead(source, first)
        pid = source.helper_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert [first, *_all_pages(source, first[-1].position)] == expected
        assert not source.reading_ahead and source.helper_pid is None
        assert _gone(pid)  # noticed, and reaped
    finally:
        source.close()
        ledger.close()


def test_a_small_backlog_never_starts_a_helper(sqlite_settings: Settings) -> None:
    list(Ledger(sqlite_settings).ingest(generate_lines(10, seed=7)))
    ledger = Ledger(sqlite_settings)
    source = PageSource(ledger, default_codec(), "p", PAGE)  # the default backlog threshold
    try:
        assert _all_pages(source)
        assert source.helper_pid is None
    finally:
        source.close()
        ledger.close()


class _Cluster:
    """The metadata the default partitioner asks for: one topic and its partitions."""

    def __init__(self, parts: tuple[int, ...]) -> None:
        self.parts = parts

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.parts)

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.parts)


def default_partition(partitioner: Any, key: bytes, parts: tuple[int, ...]) -> int:
    """Where kafka-python's producer would put ``key`` by itself."""
    placed: int = partitioner.partition("t", key, key, b"v", b"v", _Cluster(parts))
    return placed


def test_the_partition_of_a_key_is_the_default_partitioners() -> None:
    from kafka.partitioner.default import DefaultPartitioner

    from ledger.kafka.client import partition_for

    keys = [b"", b"OFF-0000001", "ÖFF-é".encode(), bytes(range(256)), *(f"OFF-{i:07d}".encode() for i in range(2000))]
    for parts in ((0,), (0, 1, 2, 3, 4, 5), (0, 1, 2), (2, 5, 9, 11)):
        placed = [partition_for(k, parts) for k in keys]
        assert placed == [default_partition(DefaultPartitioner(), k, parts) for k in keys]
        assert set(placed) <= set(parts)
        if len(parts) > 1:
            assert len(set(placed)) == len(parts)


def test_pages_carry_their_partition_whether_read_here_or_by_the_helper(sqlite_settings: Settings) -> None:
    from ledger.kafka.client import partition_for

    list(Ledger(sqlite_settings).ingest(generate_lines(40, seed=8)))
    ledger = Ledger(sqlite_settings)
    codec = default_codec()
    partitions = {"p.officers": (0, 1, 2, 3, 4, 5), "p.reference": (0,)}
    plain = PageSource(ledger, codec, "p", PAGE, helper_backlog=None)
    plain.partitions = partitions
    expected = _all_pages(plain)
    assert all(m.partition == partition_for(m.key, partitions[m.topic]) for page in expected for m in page)
    assert {m.partition for page in expected for m in page} == set(range(6))
    unplaced = _all_pages(PageSource(ledger, codec, "p", PAGE, helper_backlog=None))
    assert [[m._replace(partition=None) for m in page] for page in expected] == unplaced

    source = PageSource(ledger, codec, "p", PAGE, helper_backlog=0)
    source.partitions = partitions
    try:
        first = source.next(0)
        _until_reading_ahead(source, first)
        assert [first, *_all_pages(source, first[-1].position)] == expected
    finally:
        source.close()
    ledger.close()
