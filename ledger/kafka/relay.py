"""Relay: publishes the event store's notification log to Kafka, at least once.

Pipelined, with no flush per page: the next page is read and encoded while the sends
of the previous one are in flight, and goes to the idempotent producer (acks=all) once
what is in flight leaves room for it (``max_in_flight`` events, one page by default).
An :class:`~ledger.kafka.client.AckWindow` keeps each send's future with its event's position;
the saved position is the end of the *contiguous acknowledged prefix*, saved with the
partition ends in one transaction just before a page goes out (once the prefix moved
by a page, or a second passed), when the log is drained, after a failed send and on
stop. Saved just before the next page leaves, it covers all that was sent before it:
a crash republishes little more than the page in flight.

Reading, decoding and encoding share one interpreter lock with the producer. So given
a backlog (``HELPER_BACKLOG`` events), a helper process (:class:`PageSource`) prepares
the next page while the relay sends this one; it exits when the relay's end of its
socket closes (also after a SIGKILL), and if it fails the relay reads itself again.

A failed send stops the pipeline: the prefix acknowledged before it is saved, the
producer dropped, and publication restarts from there with backoff. A later page
acknowledged while an earlier one failed never moves the position past the failure:
nothing is skipped; consumers deduplicate what comes twice by (officer_id, version).

With a signing key, a signed checkpoint of the log chain at the saved (acknowledged)
position goes to ``<prefix>.checkpoints`` every ``checkpoint_every`` seconds while the
relay advances, and once more when it stops. It is signed by a
:class:`~ledger.integrity.signer.Signer`: only if the store's history extends the last
checkpoint this key signed. When it does not (a history rewritten or truncated: a fork),
the relay signs and publishes no checkpoint for the rest of its run, logs an error
naming the position, sets ``ledger_relay_checkpoint_refused`` to 1 and records the
position as ``relay.checkpoint_refused`` in ``ledger_positions``, which ``ledger
status`` reports as a problem. It keeps relaying events: they are what the store holds
and what is published is never taken back; what a subscriber must not get is a
signature over the forged history, and without new checkpoints the new events stay
uncovered. A last-checkpoint file that cannot be used, or cannot be written, is
reported the same way but tried again at the next checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from ledger.integrity import checkpoint
from ledger.integrity.signer import ForkError, Signer
from ledger.kafka.client import (
    AckWindow,
    checkpoints_topic,
    ensure_topics,
    make_producer,
    officers_topic,
    reference_topic,
)
from ledger.kafka.codec import Codec, default_codec
from ledger.kafka.history import describe, retention_problems
from ledger.kafka.relay_pages import HELPER_BACKLOG, Outgoing, PageSource, Partitions
from ledger.ops import metrics
from ledger.store.db import RELAY_CHECKPOINT_REFUSED, Database, Positions

log = logging.getLogger("ledger.kafka.relay")

POSITION = "relay"


@dataclass
class RelayStats:
    published: int = 0  # sends acknowledged (one republished after a failure counts again)
    batches: int = 0  # pages sent
    position: int = 0  # the saved position: every event at or below it is acknowledged
    checkpoints: int = 0


class Relay:
    """Follows the store's notification log and publishes each event to its topic."""

    def __init__(self, ledger: Any, db: Database, bootstrap: str, prefix: str, codec: Codec | None = None,
                 page: int = 2000, poll_interval: float = 0.2, max_backoff: float = 5.0,
                 signing_key: checkpoint.SigningKey | None = None, checkpoint_every: float = 60.0,
                 max_in_flight: int | None = None, save_every: float = 1.0, drain_timeout: float = 20.0,
                 helper_backlog: int | None = HELPER_BACKLOG) -> None:
        self.ledger, self.db, self.positions = ledger, db, Positions(db)
        self.bootstrap, self.prefix = bootstrap, prefix
        self.codec = codec or default_codec()
        self.page, self.poll_interval, self.max_backoff = page, poll_interval, max_backoff
        # Sends not yet in the acknowledged prefix, at most (memory stays bounded):
        # the next page, read meanwhile, goes out when it fits.
        self.max_in_flight = max_in_flight or page
        self.save_every = save_every
        self.drain_timeout = drain_timeout  # on stop: how long in-flight sends may take
        # A helper process reads ahead from this backlog on (None: never). It encodes
        # with the packaged schemas, so not for a codec given here.
        self.helper_backlog = helper_backlog if codec is None else None
        self.stop = threading.Event()
        self._producer: Any = None
        self.signer = Signer(signing_key) if signing_key is not None else None
        self.checkpoint_every = checkpoint_every
        self.fork: ForkError | None = None  # once found, no checkpoint is signed for the rest of the run
        self._refused = True  # unknown until the first checkpoint, which clears a marker an earlier run left
        self._checkpointed = 0  # the last position a checkpoint was published for
        self._checkpoint_at = self._saved_at = 0.0
        self._retention_checked = False

    def _connect(self) -> Any:
        if self._producer is None:
            ensure_topics(self.bootstrap, self.prefix)
            if not self._retention_checked:
                self._check_retention()
            self._producer = make_producer(self.bootstrap)
        return self._producer

    def _check_retention(self) -> None:
        """Log each topic that may delete events (or whose retention cannot be checked), once a run."""
        topics = [officers_topic(self.prefix), reference_topic(self.prefix), checkpoints_topic(self.prefix)]
        try:
            warnings = retention_problems(describe(self.bootstrap, topics), topics)
        except KafkaError as exc:
            warnings = [f"cannot check retention: {type(exc).__name__}: {exc}"]
        for warning in warnings:
            log.warning("%s", warning)
        self._retention_checked = True

    def _drop_producer(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=1)
            except Exception:  # already broken; nothing more to release
                pass
            self._producer = None

    def send_page(self, page: list[Outgoing], window: AckWindow) -> None:
        """Hand a page to the producer, each send tracked in ``window`` (no waiting)."""
        producer = self._connect()
        for m in page:
            window.add(m.position, producer.send(m.topic, key=m.key, value=m.value, headers=m.headers,
                                                 partition=m.partition))

    def partitions(self) -> Partitions:
        """The officers' and reference topics' partitions, as the producer knows them."""
        producer = self._connect()
        return {topic: tuple(sorted(producer.partitions_for(topic)))
                for topic in (officers_topic(self.prefix), reference_topic(self.prefix))}

    def save(self, window: AckWindow, stats: RelayStats) -> None:
        """Save the window's acknowledged prefix and partition ends in one transaction."""
        now = time.monotonic()
        took, self._saved_at = now - self._saved_at, now
        if window.position <= stats.position:
            return
        with self.db.transaction() as c:
            Positions.advance(c, POSITION, window.position)
            # The partitions' ends as the broker acknowledged them: status measures
            # consumer lag against these, since ListOffsets may under-report.
            c.executemany(
                "INSERT INTO ledger_relay_offsets (topic, part, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (topic, part) DO UPDATE SET next_offset = excluded.next_offset "
                "WHERE ledger_relay_offsets.next_offset < excluded.next_offset",
                [(t, p, o) for (t, p), o in sorted(window.ends.items())],
            )
        metrics.RELAY_PUBLISHED.inc(window.acknowledged - window.counted)
        window.counted = window.acknowledged
        metrics.RELAY_BATCH_DURATION.observe(took)  # since the last save: publish and acknowledge
        stats.position = window.position

    def publish_checkpoint(self, position: int) -> dict[str, Any] | None:
        """Sign the log chain's root at ``position`` (acknowledged: the saved one) and publish it,
        unless the history no longer extends the last checkpoint signed (see the module)."""
        if self.signer is None or self.fork is not None or position <= 0 or position == self._checkpointed:
            return None
        try:
            body = self.signer.sign_at(self.ledger.recorder, position)
        except checkpoint.CheckpointError as exc:
            self._refuse(exc)
            return None
        if self._refused:
            self._mark_refused(None)
        if body is None:
            log.info("position %d is below the last signed checkpoint; no checkpoint until the relay passes it",
                     position)
            self._checkpointed = position
            return None
        value = self.codec.encode({"type": "Checkpoint", **body})
        self._connect().send(checkpoints_topic(self.prefix), key=b"checkpoint", value=value).get(timeout=60)
        self._checkpointed = position
        self._checkpoint_at = time.monotonic()
        return body

    def _refuse(self, exc: checkpoint.CheckpointError) -> None:
        """Sign nothing: for the rest of the run after a fork, until the next try otherwise."""
        self._checkpoint_at = time.monotonic()
        if isinstance(exc, ForkError):
            self.fork = exc
            log.error("no checkpoint signed or published from now on: %s; the relay keeps publishing events", exc)
        else:
            log.error("checkpoint not signed: %s", exc)
        self._mark_refused(exc.position if isinstance(exc, ForkError) else 0)

    def _mark_refused(self, position: int | None) -> None:
        """Record (``position``) or clear (None) the refusal where ``ledger status`` sees it."""
        self._refused = position is not None
        metrics.RELAY_CHECKPOINT_REFUSED.set(1 if self._refused else 0)
        with self.db.transaction() as c:
            if position is None:
                Positions.remove(c, RELAY_CHECKPOINT_REFUSED)
            else:
                Positions.put(c, RELAY_CHECKPOINT_REFUSED, position)

    def _maybe_checkpoint(self, stats: RelayStats, force: bool = False) -> None:
        if not (force or time.monotonic() - self._checkpoint_at >= self.checkpoint_every):
            return
        try:
            if self.publish_checkpoint(stats.position) is not None:
                stats.checkpoints += 1
                metrics.RELAY_CHECKPOINTS.inc()
        except KafkaError as exc:  # the events are published; the next checkpoint covers them
            # The producer is kept: if the broker is in trouble, the sends in flight
            # fail too and the pipeline restarts from its prefix.
            log.warning("checkpoint at position %d not published (%s)", stats.position, type(exc).__name__)

    def run(self, until_idle: bool = False) -> RelayStats:
        """Publish until stopped (or, with ``until_idle``, until nothing is left)."""
        stats = RelayStats(position=self.positions.get(POSITION))
        self._saved_at = time.monotonic()
        source = PageSource(self.ledger, self.codec, self.prefix, self.page, self.helper_backlog)
        backoff = 0.5
        try:
            while not self.stop.is_set():
                window = AckWindow(start := stats.position)
                try:
                    self._follow(source, window, stats, until_idle)
                    break
                except KafkaError as exc:
                    metrics.RELAY_BROKER_ERRORS.inc()
                    self.save(window, stats)  # what was acknowledged before the failure
                    if window.position > start:  # it had recovered: back off from the start
                        backoff = 0.5
                    log.warning(
                        "broker %s unavailable (%s); retrying from position %d in %.1fs",
                        self.bootstrap, type(exc).__name__, stats.position, backoff,
                    )
                    self._drop_producer()
                    source.partitions = None  # read again from the next producer's metadata
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
            if self.stop.is_set():
                self._maybe_checkpoint(stats, force=True)  # stopped: commit to what was published
        finally:
            self._drop_producer()
            source.close()
        return stats

    def _follow(self, source: PageSource, window: AckWindow, stats: RelayStats, until_idle: bool) -> None:
        """Publish from ``window.position`` until stopped or, with ``until_idle``, drained.

        Raises KafkaError when a send fails (the caller saves the prefix and restarts).
        """
        while not self.stop.is_set():
            stats.published += window.advance()
            if source.partitions is None:
                # Pages from here on carry their partition (the producer's own choice,
                # computed where they are encoded): no partitioner work per send here.
                source.partitions = self.partitions()
            page = source.next(window.sent_to)  # while the sends before it are in flight
            if not page:
                if len(window):  # caught up with the log; the prefix waits for the broker
                    self._wait(window, self.poll_interval)
                    continue
                self.save(window, stats)
                self._maybe_checkpoint(stats, force=until_idle)
                if until_idle:
                    return
                self.stop.wait(self.poll_interval)
                continue
            while len(window) and len(window) + len(page) > self.max_in_flight and not self.stop.is_set():
                self._wait(window, 1.0)  # full: the oldest send must be acknowledged first
                stats.published += window.advance()
            if self.stop.is_set():
                break
            # Saved just before the page goes out, not after: a crash then republishes
            # as little as possible (sends linger a moment before they leave).
            moved = window.position - stats.position
            if moved >= self.page or (moved > 0 and time.monotonic() - self._saved_at >= self.save_every):
                self.save(window, stats)
                self._maybe_checkpoint(stats)
            self.send_page(page, window)
            stats.batches += 1
        self._drain(window, stats)

    def _wait(self, window: AckWindow, timeout: float) -> None:
        """Wait up to ``timeout`` for the oldest send in flight to complete."""
        oldest = window.oldest()
        if oldest is not None:
            with contextlib.suppress(KafkaError):  # advance() raises a failure; a timeout is "not yet"
                oldest.get(timeout=timeout)

    def _drain(self, window: AckWindow, stats: RelayStats) -> None:
        """On stop: let the sends in flight complete (for a bounded time), save the prefix."""
        deadline = time.monotonic() + self.drain_timeout
        try:
            while len(window) and (left := deadline - time.monotonic()) > 0:
                self._wait(window, min(left, 1.0))
                stats.published += window.advance()
            if len(window):
                log.warning("stopping with %d sends unacknowledged: published again on restart", len(window))
        except KafkaError as exc:
            log.warning("a send failed while stopping (%s): published again on restart", type(exc).__name__)
        finally:
            self.save(window, stats)
