"""Kafka history, ensured: which topic the consumers' offsets belong to, and the reference
entities' versions delivered so far.

- ``ledger_topic_ids``: the topic id (Kafka's KIP-516 UUID) of each topic whose offsets
  ``ledger_offsets`` holds, recorded by the first consumer to read it. A topic deleted
  and created again under the same name has another id: its offsets mean other events,
  and the consumers stop instead of reading on (``ledger.kafka.history``).
- ``ledger_reference_versions``: per reference entity (its public type and key), the
  highest version the projection consumers were given; a later one that skips a version
  is a gap, dead-lettered like an officer's (``ledger.projections.reference_gaps``).

A store that already has positions was consumed before versions were kept: for it the
first version seen of an entity is taken as it comes (marked by a row for the empty
entity, :data:`LENIENT`, which names no reference entity); a new store requires every
entity to start at version 1.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "ledger_topic_ids and ledger_reference_versions: recreated topics and reference gaps are detected"

# The entity of the row in ledger_reference_versions present when versions began to be
# kept on a store already consumed (an entity is "Type:key", never empty).
LENIENT = ""


def apply(c: Cursor, dialect: str) -> None:
    c.execute("CREATE TABLE ledger_topic_ids (topic TEXT PRIMARY KEY, topic_id TEXT NOT NULL, "
              "recorded_at TEXT NOT NULL)")
    c.execute("CREATE TABLE ledger_reference_versions (entity TEXT PRIMARY KEY, version BIGINT NOT NULL)")
    c.execute("SELECT 1 FROM ledger_offsets LIMIT 1")
    if c.fetchone() is not None:
        c.execute("INSERT INTO ledger_reference_versions (entity, version) VALUES (?, 0)", (LENIENT,))
