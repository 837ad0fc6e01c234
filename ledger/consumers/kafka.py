"""Kafka mode: projection consumers read both topics with explicitly assigned partitions.

Offsets live in the read-model database (``ledger_offsets``), written in the same
transaction as the change; the broker's group offsets are never used. Duplicate
deliveries from the at-least-once relay are dropped per (officer_id, version).
"""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

from ledger.avro import Codec, DecodeError, default_codec
from ledger.consumers.log import FollowStats
from ledger.kafka import make_consumer, officers_topic, partitions_of, reference_topic
from ledger.projections.runner import Item, Runner


class KafkaFollower:
    """Consumes ``<prefix>.officers`` and ``<prefix>.reference`` into the projections."""

    def __init__(self, bootstrap: str, prefix: str, runner: Runner, codec: Codec | None = None,
                 max_records: int = 2000) -> None:
        self.bootstrap = bootstrap
        self.topics = [reference_topic(prefix), officers_topic(prefix)]
        self.runner = runner
        self.codec = codec or default_codec()
        self.max_records = max_records
        self.stop = threading.Event()

    def _item(self, topic: str, partition: int, message: Any) -> Item:
        key = message.key.decode("utf-8", "replace") if message.key else None
        try:
            event = self.codec.decode(message.value)
        except DecodeError as exc:
            payload = base64.b64encode(message.value or b"").decode("ascii")
            return Item(topic, partition, message.offset, key, None, str(exc), payload)
        return Item(topic, partition, message.offset, key, event)

    def run(self, until_idle: bool = False, idle: float = 2.0) -> FollowStats:
        stats = FollowStats()
        consumer = make_consumer(self.bootstrap)
        try:
            partitions = [tp for topic in self.topics for tp in partitions_of(consumer, topic)]
            consumer.assign(partitions)
            start = self.runner.start_offsets()
            for tp in partitions:
                offset = start.get((tp.topic, tp.partition), 0)
                if offset > 0:
                    consumer.seek(tp, offset)
                else:
                    consumer.seek_to_beginning(tp)
            quiet_since = time.monotonic()
            while not self.stop.is_set():
                polled = consumer.poll(timeout_ms=500, max_records=self.max_records)
                items = [
                    self._item(tp.topic, tp.partition, m) for tp, messages in polled.items() for m in messages
                ]
                if not items:
                    if until_idle and time.monotonic() - quiet_since > idle:
                        break
                    continue
                quiet_since = time.monotonic()
                self.runner.process(items)
                stats.events += len(items)
                stats.batches += 1
        finally:
            consumer.close()
        return stats
