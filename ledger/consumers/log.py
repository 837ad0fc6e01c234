"""Embedded mode: projections follow the event store's notification log directly.

The SQLite recorder has no push subscription, so the loop polls
``select_notifications`` after the lowest position any projection still needs.
:class:`TypedLogFollower` does the same for projections that follow the log and name
the few event types they apply (credential status): it reads only those.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ledger.events import is_officer_event
from ledger.projections.decode import Decoder, officer_topics
from ledger.projections.runner import LOG_SOURCE as SOURCE
from ledger.projections.runner import Item, Runner


def entity_key(event: dict[str, Any]) -> str | None:
    if is_officer_event(event):
        return str(event["officer_id"])
    for field in ("post_id", "course_id", "competency_id", "org_id"):
        if event.get(field):
            return str(event[field])
    return None


@dataclass
class FollowStats:
    events: int = 0
    batches: int = 0


class LogFollower:
    """Reads the store's log page by page and hands each page to the runner."""

    def __init__(self, ledger: Any, runner: Runner, page: int = 2000, poll_interval: float = 0.2) -> None:
        self.ledger = ledger
        self.runner = runner
        self.page = page
        self.poll_interval = poll_interval
        self.stop = threading.Event()

    def run(self, until_idle: bool = False) -> FollowStats:
        stats = FollowStats()
        after = self.runner.start_offsets().get((SOURCE, 0), 1) - 1
        while not self.stop.is_set():
            page = self.ledger.read_log(after, self.page)
            if not page:
                if until_idle:
                    break
                self.stop.wait(self.poll_interval)
                continue
            items = [Item(SOURCE, 0, nid, entity_key(event), event) for nid, event in page]
            self.runner.process(items)
            after = page[-1][0]
            stats.events += len(page)
            stats.batches += 1
        return stats


class TypedLogFollower:
    """Brings projections that follow the store's log and name the officer event types they
    apply (``log_types``) up to the store's head, reading only events of those types: the
    others cost a scan in the database, no decoding. For ``ledger project`` in Kafka mode
    (beside the topics) and for reading credential status up to date."""

    def __init__(self, ledger: Any, runner: Runner, page: int = 2000) -> None:
        if not all(p.follows_log and p.log_types for p in runner.projections):
            raise ValueError("a typed log follower applies only projections that follow the log and name log_types")
        self.ledger = ledger
        self.runner = runner
        self.page = page
        self.topics = officer_topics(kind for p in runner.projections for kind in p.log_types or ())
        self.decode = Decoder(ledger.mapper)
        self.stop = threading.Event()

    def run(self) -> FollowStats:
        """Up to the head of the log as it is now; returns what was applied."""
        stats = FollowStats()
        after = self.runner.start_offsets().get((SOURCE, 0), 1) - 1
        head = int(self.ledger.recorder.max_notification_id() or 0)
        while after < head and not self.stop.is_set():
            rows = self.ledger.recorder.select_log_of(self.topics, after, head, self.page)
            end = rows[-1][0] if len(rows) == self.page else head
            items = [Item(SOURCE, 0, nid, None, self.decode(entity, version, topic, state))
                     for nid, entity, version, topic, state in rows]
            # The end of what was scanned, so the position passes the events of other types. A
            # runner of log projections alone has no dead letters: an item without an event is none.
            items.append(Item(SOURCE, 0, end, None, None, "scanned up to here"))
            self.runner.process(items)
            after = end
            stats.events += len(rows)
            stats.batches += 1
        return stats
