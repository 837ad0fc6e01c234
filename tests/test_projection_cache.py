"""Consumers keep documents in memory between batches; that never changes what the read models say.

The runner's cache is dropped when the read models' generation changes (a rebuild by
another process) and is never trusted over a document another writer moved ahead.
Two runners on disjoint partitions (two processes) end equal to one fold in any
interleaving of reference and officer events.
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.kafka.client import route
from ledger.projections.base import DocCache
from ledger.projections.rebuild import rebuild
from ledger.projections.runner import Item, Runner, all_projections
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register
from tests.oracle import exported, fold_store
from tests.plan_oracle import fold as plan_fold

KEYS = {"records": "officer_id", "competencies": "officer_id", "ministries": "ministry_id", "plans": "plan",
        "gaps": "ministry_id"}
Models = dict[str, dict[str, dict[str, Any]]]
OFFICERS, REFERENCE = "t.officers", "t.reference"
PARTITIONS = 6


class Store:
    """A store and, per simulated process, a runner with its own database connection."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        self.dbs: list[Database] = []

    def runner(self, cache_officers: int = 20_000) -> Runner:
        db = Database(self.settings)
        self.dbs.append(db)
        return Runner(db, cache_officers=cache_officers)

    def ingest(self, *commands: dict[str, Any]) -> None:
        outcomes = list(self.ledger.ingest(json.dumps(c) for c in commands))
        assert all(o.status == "accepted" for o in outcomes), outcomes

    def items(self, republish: random.Random | None = None) -> list[Item]:
        """The log as the relay publishes it: officer events by officer on 6 partitions.

        With ``republish``, now and then the last few events are published again (new
        offsets, same events), as a relay restarted after a crash does.
        """
        offsets: dict[tuple[str, int], int] = {}
        out: list[Item] = []
        published: list[tuple[str, int, str, dict[str, Any]]] = []

        def publish(source: str, part: int, key: str, event: dict[str, Any]) -> None:
            offsets[(source, part)] = offsets.get((source, part), -1) + 1
            out.append(Item(source, part, offsets[(source, part)], key, event))
            published.append((source, part, key, event))

        for _, event in self.ledger.iter_log():
            topic, key = route("t", event)
            part = zlib.crc32(key) % PARTITIONS if topic == OFFICERS else 0
            publish(topic, part, key.decode(), event)
            if republish is not None and republish.random() < 0.02:
                for again in published[-republish.randint(1, 30):]:
                    publish(*again)
        return out

    def models(self) -> Models:
        db = Database(self.settings)
        try:
            read = ReadModels(db, self.ledger)
            found = {}
            for model, key in KEYS.items():
                rows = list(read.export(model))
                if model == "plans":
                    rows = [{**row, "plan": f"{row['ministry_id']}:{row['fy']}"} for row in rows]
                found[model] = exported(rows, key)
            return found
        finally:
            db.close()

    def fold(self) -> Models:
        """What one fold of the whole store gives (``tests/oracle.py``, ``tests/plan_oracle.py``)."""
        expected = fold_store(self.settings)
        plans, gaps = plan_fold([e for _, e in self.ledger.iter_log()])
        expected["plans"] = {f"{m}:{fy}": {**p, "plan": f"{m}:{fy}"} for (m, fy), p in plans.items()}
        expected["gaps"] = gaps
        return expected

    def close(self) -> None:
        for db in self.dbs:
            db.close()
        self.ledger.close()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings)
    try:
        yield s
    finally:
        s.close()


def of(items: list[Item], officer_id: str, *versions: int) -> list[Item]:
    return [i for i in items if i.officer == officer_id and i.event and i.event["version"] in versions]


def reference_items(items: list[Item]) -> list[Item]:
    return [i for i in items if i.source == REFERENCE]


def test_a_rebuild_by_another_process_drops_the_cached_documents(store: Store) -> None:
    store.ingest(*reference(), register("O1"), officer_cmd("enrol", 1, "O1", course_id="K-ETH"))
    consumer = store.runner()
    items = store.items()
    consumer.process(items)  # O1 at version 2, kept in memory

    # Another process rebuilds: the swapped-in document differs from the one in memory
    # (here: by hand, to tell them apart), and the swap bumps the generation.
    rebuilder = store.runner()
    with rebuilder.db.transaction() as c:
        rebuilder.lock(c)
        c.execute("SELECT doc FROM rm_records WHERE officer_id = 'O1'")
        doc = json.loads(c.fetchone()[0])
        doc["postings"][0]["from"] = "rebuilt"
        c.execute("UPDATE rm_records SET doc = ? WHERE officer_id = 'O1'", (json.dumps(doc),))
        Runner.bump_generation(c)

    store.ingest(officer_cmd("record_progress", 2, "O1", course_id="K-ETH", percent=40))
    consumer.process(store.items()[len(items):])

    record = store.models()["records"]["O1"]
    assert record["postings"][0]["from"] == "rebuilt"  # built on the rebuilt document
    assert record["enrolments"][0]["progress"] == 40


def test_without_a_generation_change_the_documents_come_from_memory(store: Store) -> None:
    # The counterpart of the test above: the cache really is used, so the generation
    # is what keeps a rebuilt document from being overwritten by a remembered one.
    store.ingest(*reference(), register("O1"), officer_cmd("enrol", 1, "O1", course_id="K-ETH"))
    consumer = store.runner()
    items = store.items()
    consumer.process(items)
    with consumer.db.transaction() as c:
        c.execute("SELECT doc FROM rm_records WHERE officer_id = 'O1'")
        doc = json.loads(c.fetchone()[0])
        doc["postings"][0]["from"] = "changed behind its back"
        c.execute("UPDATE rm_records SET doc = ? WHERE officer_id = 'O1'", (json.dumps(doc),))
    store.ingest(officer_cmd("record_progress", 2, "O1", course_id="K-ETH", percent=40))
    consumer.process(store.items()[len(items):])
    assert store.models()["records"]["O1"]["postings"][0]["from"] != "changed behind its back"


def test_a_document_another_writer_moved_ahead_is_not_applied_twice(store: Store) -> None:
    store.ingest(*reference(), register("O1"), officer_cmd("enrol", 1, "O1", course_id="K-ETH"))
    store.ingest(officer_cmd("record_progress", 2, "O1", course_id="K-ETH", percent=100),
                 officer_cmd("complete_course", 3, "O1", course_id="K-ETH"),
                 officer_cmd("enrol", 4, "O1", course_id="K-BUD"))
    items = store.items()
    consumer = store.runner()
    consumer.process([*reference_items(items), *of(items, "O1", 1, 2)])  # cached at version 2

    # Another writer applies versions 3 and 4 straight into the read models, as a
    # dead-letter retry does (under the exclusive lock, positions left alone): the
    # completion is counted once, there.
    other = store.runner()
    apply_directly(other, of(items, "O1", 3, 4))

    # The consumer then gets 3 (again), 4 and 5: from its cached version-2 document it
    # would count the completion a second time; the compare-and-set write refuses, and
    # the batch is applied again from the database's document.
    consumer.process(of(items, "O1", 3, 4, 5))
    assert consumer.retries == 1
    years = store.models()["ministries"]["MOF"]["years"]["2025-26"]
    assert (years["enrolments"], years["completions"], years["officers_completed"]) == (2, 1, 1)
    assert store.models() == store.fold()

    # A batch whose first event does not follow the cached version is decided on the
    # database's document: here a duplicate (the other writer got there first), not a gap.
    store.ingest(officer_cmd("record_progress", 5, "O1", course_id="K-BUD", percent=10),
                 officer_cmd("record_progress", 6, "O1", course_id="K-BUD", percent=20))
    newest = store.items()[len(items):]
    apply_directly(other, newest)
    consumer.process(newest[1:])
    assert ReadModels(consumer.db, store.ledger).dead_letters() == []
    assert store.models() == store.fold()


def apply_directly(runner: Runner, items: list[Item]) -> None:
    with runner.db.transaction() as c:
        runner.lock(c)
        for projection in runner.projections:
            projection.apply_batch(c, [i.event for i in items if i.event is not None])


def test_the_cache_keeps_the_most_recently_used_documents() -> None:
    cache = DocCache(limit=2)
    cache.put("A", 1, {"a": 1})
    cache.put("B", 1, {"b": 1})
    assert cache.get("A") == (1, {"a": 1})  # A is now the most recent
    cache.put("C", 1, {"c": 1})
    assert (cache.get("B"), len(cache)) == (None, 2)
    assert cache.get("A") is not None and cache.get("C") is not None


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_two_processes_on_disjoint_partitions_equal_one_fold_in_any_interleaving(store: Store, seed: int) -> None:
    list(store.ledger.ingest(generate_lines(40, seed=seed)))  # a few commands are rejected: fine
    rng = random.Random(seed)
    items = store.items(republish=rng)
    # Caches big enough for everyone, tiny ones (documents evicted all the time), none.
    runners = [store.runner(n) for n in rng.choice([(20_000, 20_000), (5, 0), (0, 3)])]
    # Each process: its officer partitions and the whole reference topic, in batches.
    # Whether reference events come first, last or in between differs per process.
    queues: list[list[Item]] = []
    for share in (0, 1):
        officers = [i for i in items if i.source == OFFICERS and i.part % 2 == share]
        refs = reference_items(items)
        where = rng.choice(["first", "last", "between"])
        if where == "first":
            mine = [*refs, *officers]
        elif where == "last":
            mine = [*officers, *refs]
        else:
            cut = rng.randrange(len(officers))
            mine = [*officers[:cut], *refs, *officers[cut:]]
        queues.append(mine)
    while any(queues):
        turn = rng.choice([n for n, q in enumerate(queues) if q])
        size = rng.randint(1, 120)
        batch, queues[turn] = queues[turn][:size], queues[turn][size:]
        runners[turn].process(batch)
    assert store.models() == store.fold()


def _queues(items: list[Item], shares: int, rng: random.Random) -> list[list[Item]]:
    """Per process: its officer partitions and the whole reference topic, reference first or mixed in."""
    refs = reference_items(items)
    queues = []
    for share in range(shares):
        officers = [i for i in items if i.source == OFFICERS and i.part % shares == share]
        cut = rng.randrange(len(officers) + 1)
        queues.append([*officers[:cut], *refs, *officers[cut:]])
    return queues


@pytest.mark.parametrize("overlap", [False, True])
def test_runners_in_threads_writing_at_once_equal_one_fold(store: Store, overlap: bool) -> None:
    # Real concurrent transactions (on PostgreSQL: row locks on the shared aggregate
    # rows, speculative inserts of the same new keys; deadlock victims retried).
    # With ``overlap``, a fourth process is misconfigured to consume every partition:
    # the compare-and-set document writes keep every event counted once.
    list(store.ledger.ingest(generate_lines(60, seed=9)))
    rng = random.Random(9)
    items = store.items(republish=rng)
    queues = _queues(items, 3, rng)
    if overlap:
        queues.append(list(items))
    runners = [store.runner() for _ in queues]
    failures: list[BaseException] = []

    def work(runner: Runner, queue: list[Item]) -> None:
        try:
            for start in range(0, len(queue), 25):
                runner.process(queue[start : start + 25])
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=pair) for pair in zip(runners, queues, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == [] and not any(t.is_alive() for t in threads)
    assert store.models() == store.fold()


def test_a_real_rebuild_bumps_the_generation_and_the_consumer_continues_on_the_new_tables(store: Store) -> None:
    list(store.ledger.ingest(generate_lines(30, seed=5)))
    items = store.items()
    consumer = store.runner()
    consumer.process(items[: len(items) // 2])
    with consumer.db.transaction() as c:
        before = Runner.read_generation(c)
    rebuild(store.ledger, store.runner(), ["records", "competencies", "ministries", "plans", "gaps"],
            embedded=False)
    with consumer.db.transaction() as c:
        assert Runner.read_generation(c) == before + 1
    drops = consumer.cache_drops
    consumer.process(items[len(items) // 2 :])  # the rest, and what the rebuild already holds
    assert consumer.cache_drops == drops + 1 and consumer.retries == 0
    assert store.models() == store.fold()


@pytest.mark.postgres
def test_a_swap_lock_holds_back_consumer_batches_of_its_projections_only_while_held(pg_settings: Settings) -> None:
    store = Store(pg_settings)
    try:
        store.ingest(*reference(), register("O1"))
        items = store.items()
        consumer, swapper = store.runner(), store.runner()
        finished = threading.Event()

        def consume() -> None:
            consumer.process(items)
            finished.set()

        worker = threading.Thread(target=consume)
        with swapper.db.transaction() as c:
            swapper.lock(c, ["plans"])  # as a rebuild of plans alone does
            worker.start()
            assert not finished.wait(1.0)  # the consumer writes plans too: it waits
        worker.join(timeout=30)
        assert finished.is_set()
        # A lock on projections a runner does not write does not hold it back.
        records_only = Runner(Database(pg_settings), [all_projections()[0]])
        store.dbs.append(records_only.db)
        store.ingest(officer_cmd("enrol", 1, "O1", course_id="K-ETH"))
        applied = threading.Event()

        def consume_records() -> None:
            records_only.process(store.items()[len(items):])
            applied.set()

        other = threading.Thread(target=consume_records)
        with swapper.db.transaction() as c:
            swapper.lock(c, ["plans", "gaps"])
            other.start()
            assert applied.wait(10)
        other.join(timeout=30)
        assert store.models()["records"]["O1"]["enrolments"]
    finally:
        store.close()


def test_what_a_batch_is_retried_for() -> None:
    import psycopg.errors

    from ledger.projections.base import DocumentMoved, is_retryable

    def chained(cause: BaseException) -> BaseException:
        try:
            raise RuntimeError("the pipeline was aborted") from cause
        except RuntimeError as exc:
            return exc

    assert is_retryable(DocumentMoved("moved"))
    assert is_retryable(psycopg.errors.DeadlockDetected("victim"))
    assert is_retryable(psycopg.errors.SerializationFailure("victim"))
    assert is_retryable(chained(psycopg.errors.DeadlockDetected("victim")))
    assert not is_retryable(psycopg.errors.UniqueViolation("a bug, not a race"))
    assert not is_retryable(chained(ValueError("bad")))
