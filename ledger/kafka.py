"""Kafka adapter: topics, the idempotent producer, and partition-assigned consumers.

Consumers assign partitions explicitly (no consumer groups): offsets belong to the
projection database, committed with the read-model change, not to the broker.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from ledger.events import is_officer_event

log = logging.getLogger("ledger.kafka")

OFFICER_PARTITIONS = 6
REFERENCE_PARTITIONS = 1
_KEYS = ("officer_id", "post_id", "course_id", "competency_id", "org_id")


def officers_topic(prefix: str) -> str:
    return f"{prefix}.officers"


def reference_topic(prefix: str) -> str:
    return f"{prefix}.reference"


def checkpoints_topic(prefix: str) -> str:
    return f"{prefix}.checkpoints"


def route(prefix: str, event: dict[str, Any]) -> tuple[str, bytes]:
    """The topic and key of a public event: officer events by officer_id, others by entity id."""
    if is_officer_event(event):
        return officers_topic(prefix), event["officer_id"].encode("utf-8")
    if event["type"] == "CapacityPlanDeclared":  # one plan per ministry and financial year
        return reference_topic(prefix), f"{event['ministry_id']}:{event['fy']}".encode()
    for field in _KEYS[1:]:
        if event.get(field):
            return reference_topic(prefix), str(event[field]).encode("utf-8")
    raise ValueError(f"no key for event {event['type']}")


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
    """Create the officers, reference and checkpoints topics if they do not exist yet."""
    check_reachable(bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        wanted = {
            officers_topic(prefix): OFFICER_PARTITIONS,
            reference_topic(prefix): REFERENCE_PARTITIONS,
            checkpoints_topic(prefix): 1,
        }
        existing = set(admin.list_topics())
        new = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def make_producer(bootstrap: str) -> KafkaProducer:
    """At-least-once, in-order per partition: acks=all with the idempotent producer."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=256 * 1024,
        max_in_flight_requests_per_connection=5,
        request_timeout_ms=15_000,
        max_block_ms=15_000,
        retries=5,
    )


def make_consumer(bootstrap: str) -> KafkaConsumer:
    """A group-less consumer; the caller assigns partitions and seeks."""
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
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
