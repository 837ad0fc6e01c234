"""Relay: publishes the event store's notification log to Kafka, at least once.

It reads a page of notifications after its saved position, sends them all with the
idempotent producer (acks=all), waits until every send is acknowledged, and only
then saves the new position. A crash in between republishes the page; consumers
deduplicate by (officer_id, version). A broker outage is retried with backoff and
never moves the position, so nothing is skipped.

With a signing key, the relay also publishes a signed checkpoint of the log chain at
the position it has published (``ledger.checkpoint``) to ``<prefix>.checkpoints`` every
``checkpoint_every`` seconds while it advances, and once more when it stops, so that
subscribers hold the ledger's commitments outside its database.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from ledger import checkpoint
from ledger.avro import Codec, default_codec
from ledger.db import Database, Positions
from ledger.kafka import checkpoints_topic, ensure_topics, make_producer, route

log = logging.getLogger("ledger.relay")

POSITION = "relay"

@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    position: int = 0
    checkpoints: int = 0


class Relay:
    """Follows the store's notification log and publishes each event to its topic."""

    def __init__(
        self,
        ledger: Any,
        db: Database,
        bootstrap: str,
        prefix: str,
        codec: Codec | None = None,
        page: int = 2000,
        poll_interval: float = 0.2,
        max_backoff: float = 5.0,
        signing_key: checkpoint.SigningKey | None = None,
        checkpoint_every: float = 60.0,
    ) -> None:
        self.ledger = ledger
        self.positions = Positions(db)
        self.db = db
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.codec = codec or default_codec()
        self.page = page
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.stop = threading.Event()
        self._producer: Any = None
        self.signing_key = signing_key
        self.checkpoint_every = checkpoint_every
        self._checkpointed = 0  # the last position a checkpoint was published for
        self._checkpoint_at = 0.0

    def _connect(self) -> Any:
        if self._producer is None:
            ensure_topics(self.bootstrap, self.prefix)
            self._producer = make_producer(self.bootstrap)
        return self._producer

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # already broken; nothing more to release
                pass
            self._producer = None

    def publish_page(self, after: int) -> int:
        """Publish the page after ``after``; returns the new position (``after`` if none)."""
        page = self.ledger.read_log(after, self.page)
        if not page:
            return after
        producer = self._connect()
        futures = []
        for _, event in page:
            topic, key = route(self.prefix, event)
            headers = [("type", event["type"].encode())]
            futures.append(producer.send(topic, key=key, value=self.codec.encode(event), headers=headers))
        producer.flush(timeout=60)
        ends: dict[tuple[str, int], int] = {}
        for future in futures:
            sent = future.get(timeout=60)  # raises if the broker did not acknowledge
            where = (sent.topic, sent.partition)
            ends[where] = max(ends.get(where, 0), sent.offset + 1)
        position = int(page[-1][0])
        with self.db.transaction() as c:
            Positions.advance(c, POSITION, position)
            # The partitions' ends as the broker acknowledged them: status measures
            # consumer lag against these, since ListOffsets may under-report.
            c.executemany(
                "INSERT INTO ledger_relay_offsets (topic, part, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (topic, part) DO UPDATE SET next_offset = excluded.next_offset "
                "WHERE ledger_relay_offsets.next_offset < excluded.next_offset",
                [(t, p, o) for (t, p), o in sorted(ends.items())],
            )
        return position

    def publish_checkpoint(self, position: int) -> dict[str, Any] | None:
        """Sign the log chain's head at ``position`` and publish it (acknowledged)."""
        if self.signing_key is None or position <= 0 or position == self._checkpointed:
            return None
        links = self.ledger.recorder.select_log_chain(position - 1, 1)
        if not links or links[0][0] != position:
            log.warning("no log-chain entry at position %d; checkpoint skipped", position)
            return None
        body = checkpoint.sign(self.signing_key, position, links[0][3])
        value = self.codec.encode({"type": "Checkpoint", **body})
        self._connect().send(checkpoints_topic(self.prefix), key=b"checkpoint", value=value).get(timeout=60)
        self._checkpointed = position
        self._checkpoint_at = time.monotonic()
        return body

    def _maybe_checkpoint(self, stats: RelayStats, force: bool = False) -> None:
        due = time.monotonic() - self._checkpoint_at >= self.checkpoint_every
        if not (force or due):
            return
        try:
            if self.publish_checkpoint(stats.position) is not None:
                stats.checkpoints += 1
        except KafkaError as exc:  # the events are published; the next checkpoint covers them
            log.warning("checkpoint at position %d not published (%s)", stats.position, type(exc).__name__)
            self._drop_producer()

    def run(self, until_idle: bool = False) -> RelayStats:
        """Publish until stopped (or, with ``until_idle``, until nothing is left)."""
        stats = RelayStats(position=self.positions.get(POSITION))
        backoff = 0.5
        try:
            while not self.stop.is_set():
                try:
                    new = self.publish_page(stats.position)
                except KafkaError as exc:
                    log.warning(
                        "broker %s unavailable (%s); retrying from position %d in %.1fs",
                        self.bootstrap, type(exc).__name__, stats.position, backoff,
                    )
                    self._drop_producer()
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = 0.5
                if new == stats.position:
                    self._maybe_checkpoint(stats, force=until_idle)
                    if until_idle:
                        break
                    self.stop.wait(self.poll_interval)
                    continue
                stats.published += self._count(stats.position, new)
                stats.batches += 1
                stats.position = new
                self._maybe_checkpoint(stats)
            else:
                self._maybe_checkpoint(stats, force=True)  # stopped: commit to what was published
        finally:
            self._drop_producer()
        return stats

    def _count(self, before: int, after: int) -> int:
        # Notification ids have no gaps on either store, so the difference counts events.
        return after - before
