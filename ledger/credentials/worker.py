"""The issuing worker: keeps ``issued_credentials`` up to the store's log, signing outside the write lock.

Each round brings ``credential_status`` up to the head of the log first (its indexes are in
every credential; exactly once, as ``ledger project`` applies it, whichever of the two gets
there first), then applies ``issued_credentials`` page by page up to the position
``credential_status`` reached: each page is signed on a read snapshot
(:meth:`~ledger.credentials.issuing.IssuedCredentialsProjection.presign`), then stored
with the projection's position in one short transaction by the runner. Only this worker
(``ledger issue``, or ``ledger project`` beside its read models) holds the issuer key.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ledger.consumers.log import FollowStats, TypedLogFollower
from ledger.credentials.issuer import Issuer
from ledger.credentials.issuing import IssuedCredentialsProjection
from ledger.projections.credential_status import CredentialStatusProjection
from ledger.projections.decode import Decoder, officer_topics
from ledger.projections.runner import LOG_SOURCE, Item, Runner
from ledger.store.db import Database

log = logging.getLogger("ledger.credentials.worker")


class IssuingWorker:
    """Signs and stores credentials and status lists as the store's log grows."""

    def __init__(self, ledger: Any, db: Database, issuer: Issuer, page: int = 200,
                 poll_interval: float = 0.2, stop: threading.Event | None = None) -> None:
        self.ledger = ledger
        self.db = db
        self.page = page
        self.poll_interval = poll_interval
        self.stop = stop if stop is not None else threading.Event()
        self.status = TypedLogFollower(ledger, Runner(db, [CredentialStatusProjection()], cache_officers=0), 2000)
        self.status.stop = self.stop
        self.projection = IssuedCredentialsProjection(ledger, issuer)
        self.runner = Runner(db, [self.projection], cache_officers=0)
        self.topics = officer_topics(self.projection.log_types or ())
        self.decode = Decoder(ledger.mapper)

    def _status_position(self) -> int:
        """The last log position credential_status has applied."""
        return self.status.runner.offsets().get(CredentialStatusProjection.name, {}).get((LOG_SOURCE, 0), 1) - 1

    def run_once(self) -> FollowStats:
        """Up to the head of the log as it is now; returns what was applied."""
        self.status.run()
        stats = FollowStats()
        upto = self._status_position()
        after = self.runner.offsets().get(self.projection.name, {}).get((LOG_SOURCE, 0), 1) - 1
        while after < upto and not self.stop.is_set():
            rows = self.ledger.recorder.select_log_of(self.topics, after, upto, self.page)
            end = rows[-1][0] if len(rows) == self.page else upto
            items = [Item(LOG_SOURCE, 0, nid, None, self.decode(entity, version, topic, state))
                     for nid, entity, version, topic, state in rows]
            try:
                with self.db.reading() as c:  # the slow part, holding no lock
                    self.projection.presign(c, [i.event for i in items if i.event is not None], self.stop)
                if self.stop.is_set():
                    break  # stopped while signing: the page is left for the next run
                items.append(Item(LOG_SOURCE, 0, end, None, None, "scanned up to here"))
                self.runner.process(items)
            finally:
                self.projection.forget()
            after = end
            stats.events += len(rows)
            stats.batches += 1
        return stats

    def publish_issuer(self) -> None:
        """Store the issuer's public view (``GET /issuer``), also before anything is issued."""
        self.projection.store_issuer_view(self.db)

    def run(self, until_idle: bool = False) -> FollowStats:
        """Follow the log until stopped (or, ``until_idle``, until it holds nothing new)."""
        self.publish_issuer()
        total = FollowStats()
        while not self.stop.is_set():
            done = self.run_once()
            total.events += done.events
            total.batches += done.batches
            if not done.batches:
                if until_idle:
                    break
                self.stop.wait(self.poll_interval)
        return total
