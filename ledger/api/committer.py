"""Group commit for online writes.

Concurrent requests put their commands on one queue; a single writer thread takes
everything waiting (up to a batch), applies it as one transaction, and only then
answers each request with its own commands' outcomes. One fsync serves many
requests, and a rejected command still writes nothing and affects no other.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from ledger.application import Outcome

log = logging.getLogger("ledger.api")


class GroupCommitter:
    """Batches commands from many requests into few transactions."""

    def __init__(self, ledger: Any, max_batch: int = 500) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[list[str], Future[list[Outcome]]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, lines: list[str]) -> Future[list[Outcome]]:
        """Queue one request's commands; the future resolves once they are durable."""
        future: Future[list[Outcome]] = Future()
        self._queue.put((lines, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            requests = [first]
            size = len(first[0])
            while size < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                requests.append(more)
                size += len(more[0])
            chunk: list[tuple[int, str]] = []
            for lines, _ in requests:
                chunk.extend((len(chunk) + 1, line) for line in lines)
            try:
                outcomes = self.ledger._apply_batch(chunk)
            except Exception as exc:  # the database is down: every waiting request learns it
                log.exception("group commit failed")
                for _, future in requests:
                    future.set_exception(exc)
                continue
            start = 0
            for lines, future in requests:
                future.set_result(outcomes[start : start + len(lines)])
                start += len(lines)
