"""Embedded mode: projections follow the event store's notification log directly.

The SQLite recorder has no push subscription, so the loop polls
``select_notifications`` after the lowest position any projection still needs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ledger.events import is_officer_event
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
