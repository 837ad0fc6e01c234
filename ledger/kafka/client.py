"""Kafka adapter: topics, the idempotent producer and its acknowledgements, and
partition-assigned consumers.

Consumers assign partitions explicitly (no consumer groups): offsets belong to the
projection database, committed with the read-model change, not to the broker.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from ledger.events import is_officer_event, reference_key

log = logging.getLogger("ledger.kafka.client")

OFFICER_PARTITIONS = 6
REFERENCE_PARTITIONS = 1
XAPI_PARTITIONS = 6
# Every topic is created to keep its history for ever: a consumer started at any time,
# or rebuilding, must find every event since the first (ledger.kafka.history checks it).
UNLIMITED_RETENTION = {"retention.ms": "-1", "retention.bytes": "-1"}


def officers_topic(prefix: str) -> str:
    return f"{prefix}.officers"


def reference_topic(prefix: str) -> str:
    return f"{prefix}.reference"


def xapi_topic(prefix: str) -> str:
    """The xAPI statements' topic (``StatementStored``, keyed by statement id)."""
    return f"{prefix}.xapi"


def checkpoints_topic(prefix: str) -> str:
    return f"{prefix}.checkpoints"


def route(prefix: str, event: dict[str, Any]) -> tuple[str, bytes]:
    """The topic and key of a public event: officer events by officer_id, others by entity id."""
    if is_officer_event(event):
        return officers_topic(prefix), event["officer_id"].encode("utf-8")
    if event["type"] == "StatementStored":
        return xapi_topic(prefix), str(event["statement_id"]).encode("utf-8")
    key = reference_key(event)
    if key is None:
        raise ValueError(f"no key for event {event['type']}")
    return reference_topic(prefix), key.encode("utf-8")


def partition_for(key: bytes, partitions: tuple[int, ...]) -> int:
    """The partition kafka-python's default partitioner picks for ``key`` among the topic's
    ``partitions`` (sorted): murmur2 of the key, as the Java client does too.

    The relay computes it in its encoder process and sends with it, which spares the
    producer's own look-up per message; the placement is the same, so an officer's
    events land on one partition whichever path sent them.
    """
    index: int = (murmur2(key) & 0x7FFFFFFF) % len(partitions)
    return partitions[index]


def check_reachable(bootstrap: str, timeout: float = 2.0) -> None:
    """Fail fast (KafkaConnectionError) when no bootstrap server accepts a connection.

    The client library would otherwise spend its whole bootstrap timeout (30 s)
    before saying the same thing.
    """
    import socket

    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout):
                return
        except (OSError, ValueError):
            continue
    raise KafkaConnectionError(f"no broker accepts connections at {bootstrap}")


def ensure_topics(bootstrap: str, prefix: str) -> None:
    """Create the officers, reference, checkpoints and xapi topics if they do not exist yet, with
    unlimited retention (an existing topic's retention is checked, never changed: see
    :func:`ledger.kafka.history.retention_problems`)."""
    check_reachable(bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        wanted = {
            officers_topic(prefix): OFFICER_PARTITIONS,
            reference_topic(prefix): REFERENCE_PARTITIONS,
            checkpoints_topic(prefix): 1,
            xapi_topic(prefix): XAPI_PARTITIONS,
        }
        existing = set(admin.list_topics())
        new = [NewTopic(name, n, 1, topic_configs=dict(UNLIMITED_RETENTION))
               for name, n in wanted.items() if name not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def make_producer(bootstrap: str) -> KafkaProducer:
    """At-least-once, in-order per partition: acks=all with the idempotent producer.

    Every send's future completes within ``delivery_timeout_ms`` (at least
    ``linger_ms + request_timeout_ms``): the relay keeps sending without a flush and
    learns of a lost broker from its futures. The library's default (120 s) would
    let a batch whose leader is gone wait two minutes before failing.
    """
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=15_000,
        delivery_timeout_ms=30_000,
        max_block_ms=15_000,
        retries=5,
    )


class Ack(Protocol):
    """What the window needs of a send's future (kafka-python's ``FutureRecordMetadata``)."""

    is_done: bool
    exception: BaseException | None
    value: Any  # once acknowledged: the record's metadata (topic, partition, offset)

    def get(self, timeout: float | None = None) -> Any: ...


class AckWindow:
    """The sends in flight, in log order, and the end of their contiguous acknowledged prefix.

    Pure bookkeeping: :meth:`add` each send's future with its event's position in log
    order; :meth:`advance` moves :attr:`position` over the acknowledged futures at the
    front and stops at the first that is not. A failed future raises its error from
    :meth:`advance` once it is at the front, and the position never passes it, however
    many later sends were acknowledged.
    """

    def __init__(self, position: int) -> None:
        self.position = position  # every event at or below it is acknowledged
        self.sent_to = position  # the position of the last event added
        # Next offset per (topic, partition) over the prefix only: saved with it.
        self.ends: dict[tuple[str, int], int] = {}
        # Events folded into the prefix, and how many of them were counted as published
        # (positions have gaps on PostgreSQL: they do not count events).
        self.acknowledged = self.counted = 0
        self._pending: deque[tuple[int, Ack]] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, position: int, ack: Ack) -> None:
        """Track the send of the event at ``position`` (after every position added so far)."""
        if position <= self.sent_to:
            raise ValueError(f"position {position} added after {self.sent_to}: sends are tracked in log order")
        self._pending.append((position, ack))
        self.sent_to = position

    def oldest(self) -> Ack | None:
        """The first send not yet in the prefix (what the prefix waits for)."""
        return self._pending[0][1] if self._pending else None

    def advance(self) -> int:
        """Fold the acknowledged front into the prefix; returns how many were folded.

        Raises the send's error when the first one not folded failed.
        """
        pending, ends = self._pending, self.ends
        folded = 0
        while pending and pending[0][1].is_done:
            position, ack = pending[0]
            if ack.exception is not None:
                raise ack.exception
            sent = ack.value
            where = (sent.topic, sent.partition)
            ends[where] = max(ends.get(where, 0), sent.offset + 1)
            self.position = position
            pending.popleft()
            folded += 1
            self.acknowledged += 1
        return folded


def make_consumer(bootstrap: str, reset: str = "earliest") -> KafkaConsumer:
    """A group-less consumer; the caller assigns partitions and seeks.

    ``reset="none"`` (the projection consumers'): a position the broker no longer holds
    (behind the log start, or past the end of a topic created again) raises
    ``OffsetOutOfRangeError`` from ``poll`` instead of moving silently to the earliest
    offset, which would skip the events in between.
    """
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset=reset,
        max_poll_records=2000,
        fetch_max_bytes=16 * 1024 * 1024,
        consumer_timeout_ms=1000,
    )


def partitions_of(consumer: KafkaConsumer, topic: str, timeout: float = 10.0) -> list[TopicPartition]:
    """Every partition of ``topic`` (waits for metadata)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic!r} has no partitions (does it exist?)")
        consumer.topics()  # refresh metadata
        time.sleep(0.2)
