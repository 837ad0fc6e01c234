"""Rebuild read models from the event store without stopping anything.

The new tables are built beside the live ones (``<table>_rebuild``). Up to the log's
position when the rebuild starts, the history is folded entity by entity and each
document written once, in bulk (:mod:`ledger.projections.sorted_fold`); memory stays
flat however long the history; a projection that cannot be folded so (one that
``follows_log``, or sets ``sorted_fold = False``) is folded from the log page by page in
log order instead. What was written meanwhile is then applied page by page in log order,
as the live path does. Finally, in one transaction that holds the
read-model write lock (of the rebuilt projections), the rebuild catches up with the
last events, drops the live tables, renames the new ones into place, sets the position
and bumps the read models' generation (so every consumer drops the documents it keeps
in memory). Queries keep reading the live tables until that commit; the live consumer
waits for the lock and continues afterwards. Every officer document carries its last
applied version, so events the consumer delivers again after the swap count once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ledger.projections.base import OfficerDocProjection, Projection
from ledger.projections.decode import Decoder, officer_topics
from ledger.projections.lease import RebuildLease
from ledger.projections.runner import LOG_SOURCE, Runner
from ledger.projections.sorted_fold import READ_PAGE, fold_history
from ledger.store.db import Cursor
from ledger.store.schema import create_shadow_tables, swap_in_shadow_tables

SUFFIX = "_rebuild"
Progress = Callable[[int, int], None]


def _apply(c: Cursor, projections: Sequence[Projection], page: Sequence[tuple[int, dict[str, Any]]],
           folded: dict[str, int] | None = None) -> None:
    """The page's events to each projection, after the position its fold reached (``folded``)."""
    for projection in projections:
        start = (folded or {}).get(projection.name, 0)
        events = [event for position, event in page if position > start]
        if events:
            projection.apply_batch(c, events, SUFFIX)


def rebuild(
    ledger: Any,
    runner: Runner,
    names: Sequence[str],
    page_size: int = 2000,
    progress: Progress | None = None,
    embedded: bool = True,
    workers: int = 1,
) -> int:
    """Rebuild the named projections; returns the log position they were brought up to.

    ``page_size`` is the page of the log-order catch-up; ``workers`` processes share
    the sorted fold of the officers.
    """
    # A projection that reads another's tables (``rebuilt_with``) is rebuilt with it, from the same pages.
    wanted = set(names) | {d for p in runner.projections if p.name in names for d in getattr(p, "rebuilt_with", ())}
    chosen = [p for p in runner.projections if p.name in wanted]
    with RebuildLease(runner.db, [p.name for p in chosen]):
        return _rebuild(ledger, runner, chosen, page_size, progress, embedded, workers)


def _rebuild(ledger: Any, runner: Runner, chosen: Sequence[Projection], page_size: int,
             progress: Progress | None, embedded: bool, workers: int) -> int:
    db = runner.db
    with db.transaction() as c:
        create_shadow_tables(c, [t for p in chosen for t in p.tables()], SUFFIX)
    total = ledger.recorder.max_notification_id() or 0
    sortable = [p for p in chosen if isinstance(p, OfficerDocProjection) and getattr(p, "sorted_fold", True)
                and not p.follows_log]
    folded: dict[str, int] = {}  # projection -> the log position its fold reached
    if sortable:
        fold_history(ledger, db, sortable, SUFFIX, total, progress, workers)
        folded.update(dict.fromkeys((p.name for p in sortable), total))
    # Any other kind folds the log in order: only the event types it applies when it names
    # them, else every event (e.g. one that sets ``sorted_fold = False`` because applying an
    # officer event reads reference state), page by page.
    typed = [p for p in chosen if p.name not in folded and p.log_types is not None]
    if typed:
        _fold_types(ledger, db, typed, total, progress)
        folded.update(dict.fromkeys((p.name for p in typed), total))
    after = total if len(folded) == len(chosen) else 0
    for page in ledger.log_pages(after, page_size):  # in log order: the others, and what came since ``total``
        with db.transaction() as c:
            _apply(c, chosen, page, folded)
        after = page[-1][0]
        if progress:
            progress(after, max(total, after))
    with db.transaction() as c:
        after = _swap_in(c, ledger, runner, chosen, after, page_size, embedded)
    if progress:
        progress(after, after)
    return after


def _fold_types(ledger: Any, db: Any, projections: Sequence[Projection], upto: int,
                progress: Progress | None) -> None:
    """The projections' officer event types (``log_types``) up to notification ``upto``, in log order."""
    topics = officer_topics(kind for p in projections for kind in p.log_types or ())
    decode = Decoder(ledger.mapper)
    after = 0
    while rows := ledger.recorder.select_log_of(topics, after, upto, READ_PAGE):
        events = [decode(entity, version, topic, state) for _, entity, version, topic, state in rows]
        with db.transaction() as c:
            for projection in projections:
                projection.apply_batch(c, events, SUFFIX)
        after = rows[-1][0]
        if progress:
            progress(after, upto)


def _swap_in(c: Cursor, ledger: Any, runner: Runner, chosen: Sequence[Projection], after: int, page_size: int,
             embedded: bool) -> int:
    """In the caller's transaction, under the lock: apply the last events, then put the
    rebuilt tables in place of the live ones; returns the log position they hold."""
    runner.lock(c, [p.name for p in chosen])
    for page in ledger.log_pages(after, page_size):  # what was written meanwhile, under the lock this time
        _apply(c, chosen, page)
        after = page[-1][0]
    swap_in_shadow_tables(c, [t for p in chosen for t in p.tables()], SUFFIX, runner.db.is_postgres)
    # Every consumer (any process) drops the documents it keeps in memory: they are
    # of the tables just dropped.
    runner.bump_generation(c)
    for projection in chosen:
        if embedded or projection.follows_log:
            # The new tables hold every event up to ``after``; the live follower
            # was blocked by the lock, so it had not gone further.
            c.execute(
                "INSERT INTO ledger_offsets (projection, source, part, next_offset, updated_at) "
                "VALUES (?, ?, 0, ?, ?) ON CONFLICT (projection, source, part) "
                "DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at "
                "WHERE ledger_offsets.next_offset < excluded.next_offset",  # a position never moves back
                (projection.name, LOG_SOURCE, after + 1, datetime.now(timezone.utc).isoformat()),
            )
    return after
