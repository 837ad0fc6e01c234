"""Where a projection consumer starts reading, and whether the topics still hold what it read.

Offsets live in the read-model database. Before the first poll of a run,
:func:`check_history` asks the broker whether they still mean what they meant when they
were stored (:mod:`ledger.kafka.history`): the same topics (ids), nothing deleted
before them (log start); it stops the consumer with :class:`HistoryLost` otherwise and
logs the topics whose retention is not unlimited. Then :func:`seek` puts each partition
at its stored offset, explicitly (offset 0 too, never "the earliest there is"): with the
consumer's reset policy ``none``, a position the broker no longer holds raises from
``poll`` (:func:`lost_position`) instead of moving on silently.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kafka.errors import KafkaError, OffsetOutOfRangeError

from ledger.kafka.history import HistoryLost

if TYPE_CHECKING:
    from ledger.store.db import Database

# The fetcher process imports seek and is_idle from here: what checks the history is
# imported where it is used, so that process starts as fast as before.

log = logging.getLogger("ledger.consumers")

Start = dict[tuple[str, int], int]


def seek(consumer: Any, partitions: list[Any], start: Start) -> None:
    """Seek each assigned partition to its stored next offset (0 when none)."""
    for tp in partitions:
        consumer.seek(tp, start.get((tp.topic, tp.partition), 0))


def is_idle(consumer: Any, quiet: float, idle: float) -> bool:
    """Whether a run to idle may stop: ``idle`` seconds without a message and, as far as
    the broker tells, nothing left to read (a slow first fetch is not idleness).

    The end offsets only confirm: a broker may under-report them (so they never decide
    alone that we are done), and after five idle periods the quiet alone decides.
    """
    if quiet <= idle:
        return False
    if quiet > 5 * idle:
        return True
    try:
        assigned = list(consumer.assignment())
        ends = consumer.end_offsets(assigned)
        return all(consumer.position(tp) >= ends.get(tp, 0) for tp in assigned)
    except KafkaError as exc:  # the broker does not answer: the quiet decides, as before
        log.warning("end offsets not available (%s): idle by the clock alone", exc)
        return True


def check_history(bootstrap: str, consumer: Any, db: Database, partitions: list[Any], start: Start) -> None:
    """Before reading: HistoryLost when a topic was recreated or a partition's log start
    passed the stored offset; records the topics' ids; logs retention warnings."""
    from ledger.kafka.history import (
        consumed,
        describe,
        identity_problems,
        log_start_problems,
        record_ids,
        recorded_ids,
        retention_problems,
    )

    topics = sorted({tp.topic for tp in partitions})
    described = describe(bootstrap, topics)
    for warning in retention_problems(described, topics):
        log.warning("%s", warning)
    earliest = {(tp.topic, tp.partition): int(o) for tp, o in consumer.beginning_offsets(partitions).items()}
    ends = None
    if any(described.ids.get(t) is None for t in topics):  # no ids: the end offsets tell instead
        log.warning("the broker gives no topic ids: a recreated topic is recognised only by its end offsets")
        ends = {(tp.topic, tp.partition): int(o) for tp, o in consumer.end_offsets(partitions).items()}
    with db.reading() as c:
        recorded = recorded_ids(c)
    problems = identity_problems(recorded, described.ids, start, ends) or log_start_problems(earliest, start)
    if problems:
        raise HistoryLost("; ".join(problems))
    if any(i is not None and recorded.get(t) != i and (t not in recorded or not consumed(t, start))
           for t, i in described.ids.items()):
        with db.transaction() as c:
            record_ids(c, described.ids, start)


def recheck_identity(bootstrap: str, db: Database, topics: list[str], start: Start) -> None:
    """While running: HistoryLost when a topic was recreated since the start (a broker may
    answer fetches past a new topic's end with nothing rather than an error)."""
    from ledger.kafka.history import describe, identity_problems, recorded_ids

    described = describe(bootstrap, topics, configs=False)
    with db.reading() as c:
        recorded = recorded_ids(c)
    problems = identity_problems(recorded, described.ids, start)
    if problems:
        raise HistoryLost("; ".join(problems))


def lost_position(exc: BaseException) -> BaseException:
    """A poll's error as the consumer reports it: a position the broker no longer holds
    (OffsetOutOfRangeError) is a HistoryLost; anything else is itself."""
    if not isinstance(exc, OffsetOutOfRangeError):
        return exc
    where = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    named = ", ".join(f"{tp.topic}[{tp.partition}] at offset {offset}" for tp, offset in where.items()) or str(exc)
    return HistoryLost(f"the broker no longer holds the consumer's position ({named}): behind the log start, or "
                       "past the end of a recreated topic. Stopping rather than skip events (see `ledger status`)")
