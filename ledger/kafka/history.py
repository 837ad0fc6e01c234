"""Kafka history, ensured rather than assumed.

The projection consumers keep their offsets in the read-model database, so an offset
means "every event before it was applied" only while the topic holds the same events
it held then. Three things break that, and each is detected here:

- **Retention.** The ledger creates its topics with ``retention.ms=-1`` and
  ``retention.bytes=-1``; a topic made by someone else, or changed since, may delete
  old events (or compact them). :func:`retention_problems` reads the topics'
  configuration (DescribeConfigs) and says what is finite, or that it cannot tell
  (a broker that does not answer, or reports nothing, as Tansu does for a topic created
  without configs). These are warnings: nothing is lost yet.
- **A consumer behind the log start.** When the earliest offset a partition still holds
  (ListOffsets, earliest) is above the consumer's next offset, the events in between are
  gone: :func:`log_start_problems`.
- **A recreated topic.** A topic deleted and created again under the same name starts at
  offset 0 with other events. Its topic id (KIP-516, Metadata v10+: Kafka 2.8 and later,
  and Tansu) changes: the first consumer records each topic's id in ``ledger_topic_ids``
  and every later start compares (:func:`identity_problems`). A broker that gives no ids
  falls back to the end offsets: one below a stored offset means the topic is not the one
  consumed.

The consumers stop on the last two (:class:`HistoryLost`, exit 1) and ``ledger status``
reports them as problems; they never skip ahead to what the broker still has.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ledger.domain.errors import LedgerError
from ledger.kafka.client import UNLIMITED_RETENTION, check_reachable

if TYPE_CHECKING:
    from ledger.store.db import Cursor

log = logging.getLogger("ledger.kafka.history")

# What a broker sends for "no topic id" (Metadata before v10 has none at all).
_NO_ID = {"", "00000000-0000-0000-0000-000000000000", "AAAAAAAAAAAAAAAAAAAAAA"}

Offsets = Mapping[tuple[str, int], int]  # by (topic, partition)


class HistoryLost(LedgerError):
    """A consumer's offsets do not lie in what the topic holds: reading on would skip events."""


@dataclass
class Described:
    """What the broker says of the topics: their ids and configuration."""

    ids: dict[str, str | None] = field(default_factory=dict)  # None: the broker gives no id
    configs: dict[str, dict[str, str]] | None = None  # None: DescribeConfigs not answered
    configs_error: str = ""


def _topic_id(value: Any) -> str | None:
    text = "" if value is None else str(value)
    return None if text in _NO_ID else text


def describe(bootstrap: str, topics: Iterable[str], configs: bool = True) -> Described:
    """The topics' ids (Metadata) and, with ``configs``, their configuration (DescribeConfigs)."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

    names = list(topics)
    check_reachable(bootstrap)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        found = Described()
        for topic in admin.describe_topics(names):
            if topic.get("error_code", 0) == 0:
                found.ids[topic["name"]] = _topic_id(topic.get("topic_id"))
        if configs:
            try:
                # Every key, unfiltered: a filter by key makes some brokers (Tansu) drop the connection.
                answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in names],
                                                config_filter="all")
                by_topic = answer.get("topic", {})
                found.configs = {t: {k: str(v.get("value")) for k, v in (by_topic.get(t) or {}).items()}
                                 for t in names}
            except (KafkaError, OSError, ValueError) as exc:
                found.configs_error = f"{type(exc).__name__}: {exc}"
        return found
    finally:
        admin.close()


def retention_problems(described: Described, topics: Iterable[str]) -> list[str]:
    """Warnings: each topic that may delete events, or whose retention cannot be checked."""
    if described.configs is None:
        return [f"cannot check retention: broker does not answer DescribeConfigs ({described.configs_error})"]
    warnings = []
    for topic in topics:
        config = described.configs.get(topic) or {}
        if not config:
            warnings.append(f"cannot check retention of {topic}: the broker reports no configuration for it")
            continue
        for key, unlimited in UNLIMITED_RETENTION.items():
            value = config.get(key)
            if value is None:
                warnings.append(f"cannot check retention of {topic}: the broker reports no {key}")
            elif value != unlimited:
                warnings.append(f"{topic} has {key}={value}: the broker may delete events before a consumer "
                                f"reads them (set {key}={unlimited})")
        if "compact" in config.get("cleanup.policy", ""):
            warnings.append(f"{topic} has cleanup.policy={config['cleanup.policy']}: compaction deletes "
                            "earlier events of each key (set cleanup.policy=delete)")
    return warnings


def log_start_problems(earliest: Offsets, start: Offsets) -> list[str]:
    """Each partition whose earliest held offset is above the consumer's next offset."""
    return [
        f"{topic}[{part}] begins at offset {first}, but the consumer's next offset is {start.get((topic, part), 0)}: "
        f"the events in between were deleted before they were applied (retention?); stopping rather than skip them"
        for (topic, part), first in sorted(earliest.items())
        if first > start.get((topic, part), 0)
    ]


def recorded_ids(c: Cursor) -> dict[str, str]:
    """The topic ids the consumers' offsets belong to, by topic."""
    c.execute("SELECT topic, topic_id FROM ledger_topic_ids")
    return {str(t): str(i) for t, i in c.fetchall()}


def consumed(topic: str, start: Offsets) -> bool:
    """Whether the consumers stored an offset past the beginning of ``topic``."""
    return any(offset > 0 for (t, _), offset in start.items() if t == topic)


def record_ids(c: Cursor, ids: Mapping[str, str | None], start: Offsets) -> None:
    """Record the ids of the topics: where none is recorded yet, or where nothing of the
    topic was consumed (no stored offset past 0: its recorded id stands for nothing)."""
    now = datetime.now(timezone.utc).isoformat()
    c.executemany("INSERT INTO ledger_topic_ids (topic, topic_id, recorded_at) VALUES (?, ?, ?) "
                  "ON CONFLICT (topic) DO NOTHING",
                  [(t, i, now) for t, i in sorted(ids.items()) if i is not None])
    c.executemany("UPDATE ledger_topic_ids SET topic_id = ?, recorded_at = ? WHERE topic = ? AND topic_id <> ?",
                  [(i, now, t, i) for t, i in sorted(ids.items()) if i is not None and not consumed(t, start)])


def identity_problems(recorded: Mapping[str, str], ids: Mapping[str, str | None], start: Offsets,
                      ends: Offsets | None = None) -> list[str]:
    """Each topic that is not the one the consumers' offsets were stored for.

    ``ends`` (the partitions' end offsets) are used only for a topic the broker gives no id:
    an end below a stored offset means the topic was created again (or truncated).
    """
    problems = []
    for topic, now in sorted(ids.items()):
        was = recorded.get(topic)
        if not consumed(topic, start):
            continue  # nothing of it applied: nothing to skip
        if now is not None and was is not None and now != was:
            problems.append(f"topic {topic} was recreated: its id is {now}, but the consumers' offsets were stored "
                            f"for {was}; those offsets mean other events now, so reading on would skip or repeat "
                            "events. Stopping (see README, 'Kafka history')")
        elif now is None and ends is not None:
            for (t, part), end in sorted(ends.items()):
                mine = start.get((t, part), 0)
                if t == topic and end < mine:
                    problems.append(f"{topic}[{part}] ends at offset {end}, below the consumer's next offset {mine}: "
                                    "the topic was recreated or truncated (the broker gives no topic id to tell). "
                                    "Stopping (see README, 'Kafka history')")
    return problems


# ---- starting over on a recreated topic -----------------------------------------


def forget_offsets(c: Cursor, topic: str) -> int:
    """Every projection's offsets of ``topic`` and its recorded id, removed: the consumers read
    the (new) topic from offset 0. What they applied before is skipped as duplicates (by
    version); what the new topic lacks shows as version gaps, dead letters that ``ledger
    dead-letters retry`` folds from the store. Returns how many offsets were removed."""
    c.execute("SELECT COUNT(*) FROM ledger_offsets WHERE source = ?", (topic,))
    removed = int(c.fetchone()[0])
    c.execute("DELETE FROM ledger_offsets WHERE source = ?", (topic,))
    c.execute("DELETE FROM ledger_topic_ids WHERE topic = ?", (topic,))
    return removed


def restart_relay(c: Cursor, prefix: str, position: str) -> None:
    """The relay publishes the whole store again, from the first event (its ``position`` and
    the partition ends it recorded for ``prefix``'s topics, reset)."""
    from ledger.store.db import Positions

    Positions.put(c, position, 0)
    c.execute("SELECT DISTINCT topic FROM ledger_relay_offsets")
    mine = [(str(t),) for (t,) in c.fetchall() if str(t).startswith(prefix + ".")]
    c.executemany("DELETE FROM ledger_relay_offsets WHERE topic = ?", mine)
