"""A rebuild's bulk phase: the history folded entity by entity, each document written once.

Folding the log in notification order means loading and writing an officer's documents
once per page they appear in. Up to a snapshot position ``upto``, the rebuild reads the
history in two passes instead:

1. every reference event (organisations, competencies, posts, courses, plans), in log
   order, through each projection's ``apply_reference``: the live path's order;
2. every officer's events, officer after officer in version order (keyset pages along
   the events' primary key, decoded by :class:`~ledger.projections.decode.Decoder`),
   folded in memory through each projection's ``apply_event``; each document is then
   written once, in bulk (:class:`~ledger.projections.bulk.BulkWriter`).

This gives what the log order gives because applying an officer event reads nothing but
the officer's own document and the event (courses carry their competencies, transfers
their ministry); the reference tables are read only by queries. A projection for which
that is not true sets ``sorted_fold = False`` and the rebuild folds the log in order.
``tests/test_rebuild_fold.py`` holds the result to the log-order fold, row for row.

Memory stays flat: one officer's events at a time, plus the write buffer. The
projections' accumulators (e.g. the ministry aggregates' deltas, which only add up) are
flushed with each bulk write, as the live path flushes them with each batch: they stay
small however many officers there are.

With ``workers`` above one, officers are split into ranges of their entity ids (uniform
hashes), each range folded by a process of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, ThreadPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

from eventsourcing.utils import get_topic

from ledger.domain.officer import Officer
from ledger.events import OFFICER_EVENTS
from ledger.projections.base import OfficerDocProjection
from ledger.projections.bulk import BulkWriter
from ledger.projections.business import business_order, mark
from ledger.projections.decode import Decoder
from ledger.store.db import Database

Progress = Callable[[int, int], None]

READ_PAGE = 20_000  # events per keyset page
# An officer event's stored topic: ``ledger.domain.officer:Officer.<Event>``.
OFFICER_TOPICS = get_topic(Officer) + "."


def fold_history(
    ledger: Any,
    db: Database,
    projections: Sequence[OfficerDocProjection],
    suffix: str,
    upto: int,
    progress: Progress | None = None,
    workers: int = 1,
) -> int:
    """Fold every event up to notification ``upto`` into the ``suffix`` tables; returns how many."""
    done = _fold_reference(ledger, db, projections, suffix, upto)
    if workers <= 1:
        return done + _fold_officers(ledger, db, projections, suffix, upto, None, None, _reporter(progress, done, upto))
    bounds = [None, *(f"{(i << 128) // workers:032x}" for i in range(1, workers)), None]
    context = get_context("spawn")
    counter = context.Value("q", 0)
    kinds = [type(p) for p in projections]
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(counter,)) as pool:
        futures = [
            pool.submit(_worker, type(ledger), ledger.settings, kinds, suffix, upto, bounds[i], bounds[i + 1])
            for i in range(workers)
        ]
        while True:
            finished, pending = wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION)
            if progress and pending:
                progress(done + int(counter.value), upto)
            if not pending or any(f.exception() for f in finished):
                break
        return done + sum(f.result() for f in futures)  # raises a worker's error, if any


def _reporter(progress: Progress | None, start: int, total: int) -> Callable[[int], None]:
    def report(folded: int) -> None:
        if progress:
            progress(start + folded, total)

    return report


def _fold_reference(ledger: Any, db: Database, projections: Sequence[OfficerDocProjection], suffix: str, upto: int) -> int:
    """Pass 1: the reference events, in log order; returns how many."""
    decode = Decoder(ledger.mapper)
    after = done = 0
    while True:
        rows = ledger.recorder.select_log_except(OFFICER_TOPICS, after, upto, READ_PAGE)
        if not rows:
            return done
        events = [decode(entity, version, topic, state) for _, entity, version, topic, state in rows]
        with db.transaction() as c:
            for projection in projections:
                projection.begin()
                for event in events:
                    if event["type"] not in OFFICER_EVENTS:
                        projection.apply_reference(c, event, suffix)
                projection.flush(c, suffix)
        after = rows[-1][0]
        done += len(rows)


def _entity_rows(
    recorder: Any, upto: int, start: str | None, stop: str | None, ahead: bool
) -> Iterator[tuple[str, int, str, bytes]]:
    """Every event up to ``upto`` of the entities in [start, stop), by entity and version.

    With ``ahead``, the next page is read in a thread while this one is folded (worth it
    when the database works in a process of its own, as PostgreSQL does).
    """
    first = None if start is None else (start, 0)
    if not ahead:
        after = first
        while True:
            rows = recorder.select_by_entity(upto, after, stop, READ_PAGE)
            yield from rows
            if len(rows) < READ_PAGE:
                return
            after = (rows[-1][0], rows[-1][1])
    with ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as reader:
        page = reader.submit(recorder.select_by_entity, upto, first, stop, READ_PAGE)
        while True:
            rows = page.result()
            if len(rows) == READ_PAGE:
                page = reader.submit(recorder.select_by_entity, upto, (rows[-1][0], rows[-1][1]), stop, READ_PAGE)
            yield from rows
            if len(rows) < READ_PAGE:
                return


def fold_officer(
    projections: Sequence[OfficerDocProjection], events: list[dict[str, Any]]
) -> list[tuple[str, int, dict[str, Any]] | None]:
    """Each projection's document of one officer, or None if none applied.

    ``events``: the officer's events with distinct versions in ascending order (as the
    store's primary key gives them).

    As in ``apply_batch``: an event at or below the applied version changes nothing, and
    a skipped version stops the officer there (the live path would hold the rest back).
    The events before it are folded in business order (late facts in their place,
    retracted events left out), as the live path's re-folds leave the documents.
    """
    officer_id = events[0]["officer_id"]
    last = 0
    for event in events:
        if event["version"] <= last:
            continue
        if event["version"] != last + 1:
            break
        last = event["version"]
    if last == 0:
        return [None for _ in projections]
    prefix = events if last == len(events) else [e for e in events if e["version"] <= last]
    ordered = business_order(prefix)
    out: list[tuple[str, int, dict[str, Any]] | None] = []
    for projection in projections:
        doc = projection.new_doc(officer_id)
        apply = projection.apply_event
        for event in ordered:
            apply(None, doc, event)  # pure: reads nothing but doc and event
        mark(doc, prefix)
        out.append((officer_id, last, doc))
    return out


def _fold_officers(
    ledger: Any,
    db: Database,
    projections: Sequence[OfficerDocProjection],
    suffix: str,
    upto: int,
    start: str | None,
    stop: str | None,
    report: Callable[[int], None],
) -> int:
    """Pass 2: officer after officer, documents written in bulk; returns how many events."""
    decode = Decoder(ledger.mapper)
    # On PostgreSQL the server reads and writes while this process folds: read ahead and
    # write behind in threads. SQLite works in this process: threads there only add GIL
    # hand-offs (measured slower), so everything stays in line.
    overlap = db.is_postgres
    writer = BulkWriter(db, projections, suffix, behind=overlap)
    current: str | None = None
    events: list[dict[str, Any]] = []
    folded = 0
    kinds = decode.kinds
    try:
        for entity, version, topic, state in _entity_rows(ledger.recorder, upto, start, stop, ahead=overlap):
            if entity != current:
                if events:
                    writer.add(fold_officer(projections, events))
                    if writer.full():
                        writer.write()
                        report(folded)
                current, events = entity, []
            if (kinds.get(topic) or decode.kind(topic))[2]:
                events.append(decode(entity, version, topic, state))
                folded += 1
        if events:
            writer.add(fold_officer(projections, events))
        writer.write()
    finally:
        writer.close()  # every batch committed (or the first error raised) before returning
    report(folded)
    return folded


# ---- worker processes ----------------------------------------------------------

_COUNTER: Any = None


def _init_worker(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter


def _worker(
    ledger_class: Any,
    settings: Any,
    kinds: list[type[OfficerDocProjection]],
    suffix: str,
    upto: int,
    start: str | None,
    stop: str | None,
) -> int:
    """One range of officers, in a process of its own (its own store connections)."""
    ledger = ledger_class(settings)
    db = Database(settings)
    seen = 0

    def report(folded: int) -> None:
        nonlocal seen
        with _COUNTER.get_lock():
            _COUNTER.value += folded - seen
        seen = folded

    try:
        return _fold_officers(ledger, db, [kind() for kind in kinds], suffix, upto, start, stop, report)
    finally:
        db.close()
        ledger.close()
