"""Group commit for online writes.

Concurrent requests put their commands on one queue; a single writer thread takes
everything waiting (up to a batch), applies it as one transaction, and only then
answers each request with its own commands' outcomes. One fsync serves many
requests, and a rejected command still writes nothing and affects no other.

The batch is sized by the load alone: the writer blocks until something is queued,
then takes whatever is waiting, up to ``max_batch`` commands, and never sleeps to let
a batch fill. Under light load a request is written on its own at once; under heavy
load the requests that arrived during one transaction make up the next.

Requests from the event loop (``submit_async``) are answered with one
``call_soon_threadsafe`` per batch and loop, not one wake-up of the loop per request.

A request that goes away (its client disconnects, its task is cancelled) changes
nothing here: once submitted, its commands are applied exactly once with the others,
only the answer is lost, and a resend with the same ``command_id`` answers
``duplicate``. Nothing a caller does to its future can stop the writer thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import replace
from typing import Any, TypeAlias

from ledger.domain.errors import LedgerError
from ledger.ops import metrics
from ledger.write.application import Outcome
from ledger.write.commands import Command, Sender
from ledger.write.unit import parse_all

log = logging.getLogger("ledger.api")

_Answer: TypeAlias = "Future[list[Outcome]] | asyncio.Future[list[Outcome]]"
_Request: TypeAlias = "tuple[list[str], _Answer, Sender | None]"


class CommitterClosed(RuntimeError):
    """The server is shutting down: no more commands are taken."""


class GroupCommitter:
    """Batches commands from many requests into few transactions."""

    def __init__(self, ledger: Any, max_batch: int = 500) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._closing = threading.Lock()  # nothing is queued behind the stop marker
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, lines: list[str], sender: Sender | None = None) -> Future[list[Outcome]]:
        """Queue one request's commands; the future resolves once they are durable.

        ``sender``: the token that sent them, which decides per command what it may send
        and is recorded beside every correction.

        The future is already running, so it cannot be cancelled: an awaiting request
        that is cancelled (``asyncio.wrap_future`` then cancels the future it wraps)
        leaves it alone, and its commands are applied like everyone else's.
        """
        future: Future[list[Outcome]] = Future()
        future.set_running_or_notify_cancel()
        with self._closing:
            if not self._closed:
                self._queue.put((lines, future, sender))
                return future
        future.set_exception(CommitterClosed("the server is shutting down"))
        return future

    def submit_async(self, lines: list[str], sender: Sender | None = None) -> asyncio.Future[list[Outcome]]:
        """As ``submit``, for a caller on the running event loop: an asyncio future of that loop.

        Cancelling it (the awaiting request went away) changes nothing here: the
        commands are applied with the others, only the answer is dropped.
        """
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        with self._closing:
            if not self._closed:
                self._queue.put((lines, future, sender))
                return future
        future.set_exception(CommitterClosed("the server is shutting down"))
        return future

    def close(self) -> None:
        """Apply what is queued, then stop the writer thread."""
        with self._closing:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while (requests := self._take()) is not None:
            try:
                self._commit(requests)
            except Exception as exc:  # a bug of ours must not stop every later request
                log.exception("group commit failed unexpectedly")
                _answer([(future, exc) for _, future, _ in requests])

    def _take(self) -> list[_Request] | None:
        """The next batch: everything waiting, up to ``max_batch`` commands (None: stop)."""
        first = self._queue.get()
        if first is None:
            return None
        requests = [first]
        size = len(first[0])
        while size < self.max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)  # stop after this batch
                break
            requests.append(more)
            size += len(more[0])
        return requests

    def _commit(self, requests: list[_Request]) -> None:
        chunk: list[tuple[int, str | LedgerError | Command]] = []
        for lines, _, sender in requests:
            for line in lines:
                number = len(chunk) + 1
                if sender is None:
                    chunk.append((number, line))
                    continue
                parsed = parse_all([(number, line)])[0][1]
                chunk.append((number, parsed if isinstance(parsed, LedgerError) else replace(parsed, sender=sender)))
        metrics.GROUP_COMMIT_COMMANDS.observe(len(chunk))
        metrics.GROUP_COMMIT_REQUESTS.observe(len(requests))
        started = time.perf_counter()
        try:
            outcomes = self.ledger.apply_batch(chunk)
        except Exception as exc:  # the database is down: every waiting request learns it
            log.exception("group commit failed")
            _answer([(future, exc) for _, future, _ in requests])
            return
        finally:
            metrics.GROUP_COMMIT_DURATION.observe(time.perf_counter() - started)
        start = 0
        answers: list[tuple[_Answer, list[Outcome] | Exception]] = []
        for lines, future, _ in requests:
            answers.append((future, outcomes[start : start + len(lines)]))
            start += len(lines)
        _answer(answers)


def _answer(answers: list[tuple[_Answer, list[Outcome] | Exception]]) -> None:
    """Resolve the batch's futures: thread futures at once, each loop's futures in one call on that loop."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[_Answer, list[Outcome] | Exception]]] = {}
    for future, result in answers:
        if isinstance(future, asyncio.Future):
            loops.setdefault(future.get_loop(), []).append((future, result))
        else:
            _settle(future, result)
    for loop, theirs in loops.items():
        try:
            loop.call_soon_threadsafe(_settle_all, theirs)
        except RuntimeError:  # that loop is closed: nobody waits for these answers any more
            log.warning("%d answers for a closed event loop dropped", len(theirs))


def _settle_all(answers: list[tuple[_Answer, list[Outcome] | Exception]]) -> None:
    """On the futures' own loop: resolve each one still waiting (a cancelled one is left alone)."""
    for future, result in answers:
        _settle(future, result)


def _settle(future: _Answer, result: list[Outcome] | Exception) -> None:
    """Resolve one request's future; one that is already resolved (or cancelled) is left as it is."""
    if isinstance(future, asyncio.Future) and future.done():
        return
    try:
        if isinstance(result, Exception):
            future.set_exception(result)
        else:
            future.set_result(result)
    except (InvalidStateError, asyncio.InvalidStateError):  # never worth the thread
        log.warning("a request's answer was already settled; dropped")
