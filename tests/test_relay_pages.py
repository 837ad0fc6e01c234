"""The relay's page source: a helper process reads and encodes ahead, page for page what the relay would."""

from __future__ import annotations

import os
import signal
import time

from ledger.application import Ledger
from ledger.avro import default_codec
from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.relay_pages import Outgoing, PageSource

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
