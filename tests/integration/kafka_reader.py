"""An independent subscriber: plain kafka-python + fastavro + the .avsc files, nothing else.

It deliberately does not import the ledger's codec, so the tests prove that a
downstream system holding only ``schemas/`` can decode every message.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from kafka import KafkaConsumer, TopicPartition

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def load_writer_schemas() -> dict[bytes, Any]:
    found: dict[bytes, Any] = {}
    for path in [*SCHEMAS.glob("*.avsc"), *SCHEMAS.glob("history/*/*.avsc")]:
        schema = fastavro.parse_schema(json.loads(path.read_text()))
        fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        found[fp] = schema
    return found


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    record: dict[str, Any]


def decode(value: bytes, writers: dict[bytes, Any]) -> dict[str, Any]:
    assert value[:2] == b"\xc3\x01", "not single-object encoded"
    schema = writers[value[2:10]]
    record = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
    assert isinstance(record, dict)
    return {"type": schema["name"].rsplit(".", 1)[-1], **record}


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 60.0,
               distinct: Callable[[Message], Hashable] | None = None) -> list[Message]:
    """Read a topic from the beginning until ``expected`` messages (or the timeout).

    With ``distinct``, until ``expected`` distinct values of it: a topic an at-least-once
    publisher wrote duplicates to holds more messages than events, so a count of messages
    can be reached while some events are still unread.
    """
    writers = load_writer_schemas()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    deadline = time.monotonic() + timeout
    partitions = None
    while partitions is None and time.monotonic() < deadline:
        consumer.topics()
        parts = consumer.partitions_for_topic(topic)
        partitions = [TopicPartition(topic, p) for p in sorted(parts)] if parts else None
        if partitions is None:
            time.sleep(0.2)
    assert partitions, f"topic {topic} does not exist"
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    out: list[Message] = []
    seen: set[Hashable] = set()

    def take(polled: dict[TopicPartition, list[Any]]) -> None:
        for tp, batch in polled.items():
            for m in batch:
                message = Message(tp.topic, tp.partition, m.offset, m.key, m.value, decode(m.value, writers))
                out.append(message)
                if distinct is not None:
                    seen.add(distinct(message))

    # Not end_offsets(): some brokers under-report it right after a batched produce.
    while (len(seen) if distinct is not None else len(out)) < expected and time.monotonic() < deadline:
        take(consumer.poll(timeout_ms=500))
    # Give any extra (duplicate) messages a moment to show up too.
    take(consumer.poll(timeout_ms=1000))
    consumer.close()
    return out
