"""Rebuild as a sorted fold: the read models equal the log-order fold and the independent one.

The rebuild folds the history entity by entity (reference events first, in log order;
then each officer's events in version order) instead of page by page in log order.
These tests hold it to the same tables, row for row, as the live projections fed in
log order, and to ``tests/oracle.py``, on both stores; and check that what is written
while it folds is caught up exactly once.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from uuid import UUID

import pytest

from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.events import OFFICER_EVENTS, to_public
from ledger.generate import generate_lines
from ledger.projections import bulk, sorted_fold
from ledger.projections.decode import Decoder
from ledger.projections.rebuild import rebuild
from ledger.projections.runner import LOG_SOURCE, Runner
from ledger.projections.sorted_fold import OFFICER_TOPICS
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.store.schema import READ_MODEL_TABLES
from ledger.write.application import Ledger
from tests.oracle import exported, fold_store

KEYS = {"records": "officer_id", "competencies": "officer_id", "ministries": "ministry_id"}
ERASED = ("OFF-0000003", "OFF-0000010", "OFF-0000042")
Tables = dict[str, list[tuple[Any, ...]]]


def _ingest(ledger: Ledger, lines: list[str]) -> None:
    outcomes = list(ledger.ingest(lines, batch_size=200))
    assert sum(o.status == "accepted" for o in outcomes) > len(outcomes) * 0.9


def _history(settings: Settings, officers: int = 300, seed: int = 61, erased: tuple[str, ...] = ERASED) -> Ledger:
    """A generated store (transfers, FRAC revisions, invalid commands) with a few erasures."""
    ledger = Ledger(settings)
    _ingest(ledger, list(generate_lines(officers, seed)))
    for officer_id in erased:
        ledger.erase(officer_id, reason="request")
    return ledger


def present(value: int | None) -> int:
    assert value is not None
    return value


def _hex(entity: UUID | str) -> str:
    return entity.hex if isinstance(entity, UUID) else UUID(entity).hex


def _counters(ddl: str) -> list[int]:
    """Positions of a read-model table's counters: numbers outside its key (not a version)."""
    key = re.search(r"PRIMARY KEY \(([^)]*)\)", ddl)
    keys = {k.strip() for k in key.group(1).split(",")} if key else set()
    columns = re.sub(r",\s*PRIMARY KEY \([^)]*\)", "", ddl).split(",")
    return [
        i for i, column in enumerate(columns)
        if (parts := column.split())[0] not in keys and parts[0] != "version" and "PRIMARY KEY" not in column
        and parts[1] in ("BIGINT", "INTEGER", "DOUBLE")
    ]


def _tables(db: Database) -> Tables:
    """Every read-model row, as stored (documents as their JSON text), in a stable order.

    Except aggregate rows whose counters are all zero: no query sees them, and whether
    one is left behind (+1 in one batch, -1 in a later one) depends on where the batch
    boundaries fell, in the live path as much as in a rebuild.
    """
    out: Tables = {}
    with db.reading() as c:
        for table, ddl in READ_MODEL_TABLES.items():
            counters = _counters(ddl)
            c.execute(f"SELECT * FROM {table}")
            rows = [tuple(row) for row in c.fetchall()]
            out[table] = sorted((r for r in rows if not counters or any(r[i] for i in counters)), key=repr)
    return out


def _positions(db: Database) -> dict[str, int]:
    with db.reading() as c:
        c.execute("SELECT projection, next_offset FROM ledger_offsets WHERE source = ? AND part = 0", (LOG_SOURCE,))
        return {r[0]: int(r[1]) for r in c.fetchall()}


def _assert_matches_oracle(settings: Settings, ledger: Ledger, db: Database) -> None:
    expected = fold_store(settings)
    reads = ReadModels(db, ledger)
    for model, key in KEYS.items():
        actual = exported(list(reads.export(model)), key)
        assert actual.keys() == expected[model].keys(), model
        for ident, row in expected[model].items():
            assert actual[ident] == row, (model, ident)


def _log_order_tables(ledger: Ledger, db: Database) -> Tables:
    """The read models as the live projections build them: every event in log order, in pages."""
    with db.transaction() as c:
        for table in READ_MODEL_TABLES:
            c.execute(f"DELETE FROM {table}")
        c.execute("DELETE FROM ledger_offsets")
    LogFollower(ledger, Runner(db), page=97).run(until_idle=True)
    return _tables(db)


def test_zero_rows_are_left_out_only_where_a_table_counts_something() -> None:
    assert _counters(READ_MODEL_TABLES["rm_ministry_years"]) == [2, 3, 4]
    assert _counters(READ_MODEL_TABLES["rm_ministries"]) == [1]
    assert _counters(READ_MODEL_TABLES["rm_records"]) == []
    assert _counters(READ_MODEL_TABLES["rm_posts"]) == []


def test_the_decoder_gives_exactly_the_public_events_of_the_mapper(settings: Settings) -> None:
    ledger = _history(settings, officers=60, seed=62)
    decode = Decoder(ledger.mapper)
    stored = ledger.recorder.select_notifications(start=1, limit=1_000_000)
    assert len(stored) > 1000
    for n in stored:
        expected = to_public(ledger.mapper.to_domain_event(n))
        assert decode(_hex(n.originator_id), n.originator_version, n.topic, n.state) == expected
        assert decode.is_officer(n.topic) == (expected["type"] in OFFICER_EVENTS)
        assert n.topic.startswith(OFFICER_TOPICS) == (expected["type"] in OFFICER_EVENTS)


def test_the_decoder_leaves_what_it_does_not_read_itself_to_the_mapper(sqlite_settings: Settings) -> None:
    ledger = _history(sqlite_settings, officers=5, seed=64, erased=())
    decode = Decoder(ledger.mapper)
    progress = next(n for n in ledger.recorder.select_notifications(start=1, limit=100_000)
                    if n.topic.endswith(".ProgressRecorded"))
    body = json.loads(progress.state)
    variants = [
        # A number wider than 64 bits (orjson reads it as a float), another tagged value,
        # a class version.
        {**body, "percent": 10**30},
        {**body, "note": {"_type_": "uuid_hex", "_data_": "ab" * 16}},
        {**body, "class_version": 1},
    ]
    for variant in variants:
        stored = dataclasses.replace(progress, state=json.dumps(variant).encode())
        expected = to_public(ledger.mapper.to_domain_event(stored))
        assert decode(_hex(stored.originator_id), stored.originator_version, stored.topic, stored.state) == expected
    assert expected["recorded_at"] == to_public(ledger.mapper.to_domain_event(progress))["recorded_at"]


@pytest.mark.parametrize("workers", [1, 2])
def test_sorted_rebuild_equals_the_log_order_fold_and_the_oracle(settings: Settings, workers: int) -> None:
    ledger = _history(settings)
    db = Database(settings)
    runner = Runner(db)
    every = [p.name for p in runner.projections]  # every read model the runner keeps
    log_order = _log_order_tables(ledger, db)
    assert len(log_order["rm_records"]) >= 300 and log_order["rm_ministry_years"]

    last = present(ledger.recorder.max_notification_id())
    assert rebuild(ledger, runner, every, workers=workers) == last
    assert _tables(db) == log_order
    assert _positions(db) == {name: last + 1 for name in every}
    _assert_matches_oracle(settings, ledger, db)

    # One model alone leaves the others as they were, and equals them again.
    assert rebuild(ledger, runner, ["ministries"], workers=workers) == last
    assert _tables(db) == log_order


def test_writes_during_the_sorted_fold_are_caught_up_exactly_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages and write batches: the writes below land while officers are still to be
    # read, so the keyset pages after them must leave out what came after the snapshot.
    monkeypatch.setattr(sorted_fold, "READ_PAGE", 500)
    monkeypatch.setattr(bulk, "WRITE_BATCH", 40)
    lines = list(generate_lines(300, seed=63))
    reference = [line for line in lines if "officer_id" not in json.loads(line)]
    officers = [line for line in lines if "officer_id" in json.loads(line)]
    ledger = Ledger(settings)
    _ingest(ledger, reference + officers[: len(officers) // 2])
    db = Database(settings)
    runner = Runner(db)
    LogFollower(ledger, runner).run(until_idle=True)
    snapshot = present(ledger.recorder.max_notification_id())

    # While the rebuild folds up to its snapshot, the other half arrives: new officers,
    # later versions of officers being folded, erasures.
    writer = Ledger(settings)
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if not calls:
            _ingest(writer, officers[len(officers) // 2 :])
            writer.erase("OFF-0000005", reason="request")
        calls.append((done, total))

    every = [p.name for p in runner.projections]
    end = rebuild(ledger, runner, every, progress=progress)
    # The first report came early in the sorted fold (of ``snapshot`` events).
    assert calls[0][1] == snapshot and calls[0][0] < snapshot // 2
    assert end == present(writer.recorder.max_notification_id()) > snapshot
    assert _positions(db) == {name: end + 1 for name in every}

    # The live follower has nothing left to do, and nothing was counted twice.
    LogFollower(ledger, runner).run(until_idle=True)
    rebuilt = _tables(db)
    _assert_matches_oracle(settings, ledger, db)
    assert _log_order_tables(ledger, db) == rebuilt
