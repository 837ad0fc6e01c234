"""Recovering from dead letters: `ledger dead-letters retry` folds the store, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.config import Settings
from ledger.consumers.log import LogFollower, entity_key
from ledger.domain.officer import Officer
from ledger.projections.rebuild import rebuild
from ledger.projections.recovery import Retried, retry
from ledger.projections.runner import LOG_SOURCE, Item, Runner
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, present, reference, register
from tests.oracle import exported, fold_store

KEYS = {"records": "officer_id", "competencies": "officer_id", "ministries": "ministry_id"}
Models = dict[str, dict[str, dict[str, Any]]]

# O1 (v1..v5): registers under MOF, enrols, transfers to MOH, progresses and completes
# there. O2 completes the same course under MOF; O3 is registered under MOH.
CAREERS: list[dict[str, Any]] = [
    register("O1"), register("O2"), register("O3", org_id="AIIMS", post_id="P-DOC"),
    officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
    officer_cmd("enrol", 1, "O2", course_id="K-ETH"),
    officer_cmd("transfer_officer", 2, "O1", org_id="AIIMS", post_id="P-DOC"),
    officer_cmd("record_progress", 3, "O1", course_id="K-ETH", percent=100),
    officer_cmd("record_progress", 3, "O2", course_id="K-ETH", percent=100),
    officer_cmd("complete_course", 4, "O1", course_id="K-ETH"),
    officer_cmd("complete_course", 4, "O2", course_id="K-ETH"),
]


class World:
    """A store, the runner over its read models, and ways to feed the runner by hand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        self.db = Database(settings)
        self.runner = Runner(self.db)
        self.read = ReadModels(self.db, self.ledger)

    def ingest(self, *commands: dict[str, Any]) -> None:
        outcomes = list(self.ledger.ingest(json.dumps(c) for c in commands))
        assert all(o.status == "accepted" for o in outcomes), outcomes

    def log_items(self) -> list[Item]:
        return [Item(LOG_SOURCE, 0, nid, entity_key(e), e) for nid, e in self.ledger.iter_log()]

    def follow(self) -> None:
        LogFollower(self.ledger, self.runner).run(until_idle=True)

    def models(self) -> Models:
        return {model: exported(list(self.read.export(model)), key) for model, key in KEYS.items()}

    def dead(self) -> list[tuple[str | None, int, str]]:
        return [(d["officer_id"], d["position"], d["reason"].split(":")[0]) for d in self.read.dead_letters()]

    def retry(self, officer_id: str | None = None) -> list[Retried]:
        return retry(self.ledger, self.runner, officer_id)

    def close(self) -> None:
        self.ledger.close()
        self.db.close()


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    w = World(settings)
    try:
        yield w
    finally:
        w.close()


def without(items: list[Item], officer_id: str, version: int) -> list[Item]:
    """The batch as a source that lost one officer event would deliver it."""
    return [i for i in items if not (i.event and i.event.get("officer_id") == officer_id
                                     and i.event["version"] == version)]


def position_of(items: list[Item], officer_id: str, version: int) -> int:
    return next(i.offset for i in items if i.event and i.event.get("officer_id") == officer_id
                and i.event["version"] == version)


def assert_equal_to_the_fold(settings: Settings, models: Models) -> None:
    expected = fold_store(settings)
    for model in KEYS:
        assert models[model] == expected[model], model


def cli_run(settings: Settings, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--store", settings.store, *args])
    return result.exit_code, result.stdout, result.stderr


def test_retry_applies_the_held_back_events_once_and_clears_the_dead_letters(world: World) -> None:
    world.ingest(*reference(), *CAREERS)
    items = world.log_items()
    world.runner.process(without(items, "O1", 2))
    assert world.dead() == [("O1", position_of(items, "O1", 3), "version gap"),
                            ("O1", position_of(items, "O1", 4), "held back"),
                            ("O1", position_of(items, "O1", 5), "held back")]
    stuck = world.models()
    assert stuck["records"]["O1"]["enrolments"] == [] and stuck["records"]["O1"]["ministry_id"] == "MOF"

    assert world.retry() == [Retried("O1", "officer", 3, 4, 0, True)]

    assert world.dead() == []
    after = world.models()
    assert_equal_to_the_fold(world.settings, after)
    for model, key in (("records", "O2"), ("records", "O3"), ("competencies", "O2"), ("competencies", "O3")):
        assert after[model][key] == stuck[model][key]  # other officers untouched
    # O1's enrolment counts under MOF, its completion under MOH: each once.
    assert after["ministries"]["MOF"] == {"ministry_id": "MOF", "headcount": 1, "years": {"2025-26": {
        "enrolments": 2, "completions": 1, "learning_hours": 4.0, "officers_completed": 1}}}
    assert after["ministries"]["MOH"] == {"ministry_id": "MOH", "headcount": 2, "years": {"2025-26": {
        "enrolments": 0, "completions": 1, "learning_hours": 4.0, "officers_completed": 1}}}

    # Running it again, and the source delivering everything again, change nothing.
    assert world.retry() == []
    with world.db.transaction() as c:
        c.execute("DELETE FROM ledger_offsets")  # as if the positions were lost
    world.runner.process(items)
    assert world.models() == after and world.dead() == []


def test_after_a_retry_the_live_consumer_carries_on_with_the_officer(world: World) -> None:
    world.ingest(*reference(), *CAREERS)
    world.runner.process(without(world.log_items(), "O1", 3))
    world.ingest(officer_cmd("enrol", 5, "O1", course_id="K-BUD"))
    world.follow()  # O1's new event is held back too
    assert [d[2] for d in world.dead()] == ["version gap", "held back", "held back"]

    assert world.retry("O1") == [Retried("O1", "officer", 3, 4, 0, True)]

    world.ingest(officer_cmd("record_progress", 6, "O1", course_id="K-BUD", percent=50),
                 officer_cmd("transfer_officer", 7, "O1", org_id="CBIC", post_id="P-DIR"))
    world.follow()
    assert world.dead() == []
    assert_equal_to_the_fold(world.settings, world.models())


def test_retry_keeps_the_dead_letters_while_the_store_itself_skips_a_version(world: World) -> None:
    world.ingest(*reference(), *CAREERS)
    delete_stored_event(world.settings, "O1", 2)  # the cause, in the store itself
    world.follow()
    dead = world.dead()
    assert [d[2] for d in dead] == ["version gap", "held back", "held back"]
    before = world.models()

    [result] = world.retry()
    assert (result.officer_id, result.cleared, result.applied) == ("O1", False, 0)
    assert result.problem is not None and "expected 2, got 3" in result.problem

    assert world.dead() == dead and world.models() == before
    code, out, _ = cli_run(world.settings, "dead-letters", "retry", "--json")
    answer = json.loads(out)
    assert code == 1 and answer["ok"] is False and answer["officers"][0]["cleared"] is False
    assert world.dead() == dead


def test_after_a_rebuild_retry_only_clears_the_dead_letters(world: World) -> None:
    world.ingest(*reference(), *CAREERS)
    world.runner.process(without(world.log_items(), "O2", 2))
    assert {d[0] for d in world.dead()} == {"O2"}
    rebuild(world.ledger, world.runner, [p.name for p in world.runner.projections])
    rebuilt = world.models()
    assert_equal_to_the_fold(world.settings, rebuilt)

    assert world.retry() == [Retried("O2", "officer", 2, 0, 0, True)]
    assert world.dead() == [] and world.models() == rebuilt


def test_a_lost_reference_message_is_applied_again_and_keyless_ones_are_kept(world: World) -> None:
    world.ingest(*reference(), *CAREERS)
    items = world.log_items()
    post = next(i for i in items if i.event and i.event["type"] == "PostDefined" and i.key == "P-US")
    # In Kafka mode an undecodable message keeps its key: for the reference topic, the entity's id.
    garbled = [Item(i.source, i.part, i.offset, i.key, None, "bad magic", "AAAA") if i is post else i for i in items]
    world.runner.process(garbled)
    world.runner.process([Item("t.officers", 0, 7, None, None, "no key, bad magic"),
                          Item("t.officers", 1, 8, "NOBODY", None, "bad magic")])
    assert present(world.read.competency_profile("O2"))["required"] == {}

    results = {r.officer_id: r for r in world.retry()}
    assert results["P-US"] == Retried("P-US", "reference", 1, 0, 1, True)
    assert results["NOBODY"].kind == "unmatched" and not results["NOBODY"].cleared
    assert results[None].kind == "unmatched" and not results[None].cleared
    assert present(world.read.competency_profile("O2"))["required"] == {"C1": 4, "C2": 2}
    assert_equal_to_the_fold(world.settings, world.models())
    assert sorted(world.dead(), key=str) == sorted([(None, 7, "no key, bad magic"), ("NOBODY", 8, "bad magic")],
                                                   key=str)
    code, _, err = cli_run(world.settings, "dead-letters", "retry")
    assert code == 1 and "0 recovered, 2 kept" in err


def test_the_dead_letters_command_still_lists_and_retry_reports_per_officer(world: World) -> None:
    world.ingest(*reference(), *CAREERS)
    world.runner.process(without(world.log_items(), "O1", 4))
    code, listed, _ = cli_run(world.settings, "dead-letters", "--json")
    rows = [json.loads(line) for line in listed.splitlines()]
    assert code == 0 and [(r["officer_id"], r["reason"].split(":")[0]) for r in rows] == [
        ("O1", "version gap")]
    assert cli_run(world.settings, "dead-letters", "list", "--json")[1] == listed
    code, table, _ = cli_run(world.settings, "dead-letters")
    assert code == 0 and "1 dead letters" in table

    code, out, err = cli_run(world.settings, "dead-letters", "retry", "O2")
    assert (code, out) == (0, "") and "no dead letters for O2" in err
    code, out, _ = cli_run(world.settings, "dead-letters", "retry", "O1")
    assert code == 0 and "O1: 2 events applied, 1 dead letters cleared" in out
    code, out, _ = cli_run(world.settings, "dead-letters", "retry", "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "officers": []}
    assert_equal_to_the_fold(world.settings, world.models())


def delete_stored_event(settings: Settings, officer_id: str, version: int) -> None:
    """Remove one event row behind the ledger's back (raw SQL, as an intruder would)."""
    oid = Officer.create_id(officer_id)
    if settings.is_postgres:
        import psycopg

        with psycopg.connect(settings.store) as conn:
            conn.execute("DELETE FROM ledger_events WHERE originator_id = %s AND originator_version = %s",
                         (oid, version))
    else:
        import sqlite3

        lite = sqlite3.connect(settings.sqlite_path)
        lite.execute("DELETE FROM stored_events WHERE originator_id = ? AND originator_version = ?",
                     (oid.hex, version))
        lite.commit()
        lite.close()


@pytest.mark.kafka
def test_a_corrupt_kafka_message_is_recovered_from_the_store(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    from kafka import KafkaProducer

    from tests.integration.util import run_ledger

    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    ledger = Ledger(settings)
    list(ledger.ingest(json.dumps(c) for c in [*reference(), register("O1"), register("O2")]))
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(f"{topic_prefix}.officers", key=b"O1", value=b"\xc3\x01garbage!garbage!").get(timeout=30)
    producer.close()
    list(ledger.ingest(json.dumps(c) for c in [officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
                                               officer_cmd("enrol", 1, "O2", course_id="K-ETH")]))
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
    assert run_ledger(settings, *kafka, "project", "--until-idle").returncode == 1  # O1 held back

    done = run_ledger(settings, *kafka, "dead-letters", "retry", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["officers"] == [{
        "officer_id": "O1", "kind": "officer", "dead_letters": 2, "applied": 1, "reapplied_reference": 0,
        "cleared": True, "problem": None}]
    # The consumer carries on with O1: new events flow, redelivered ones count once.
    list(ledger.ingest(json.dumps(c) for c in [officer_cmd("record_progress", 2, "O1", course_id="K-ETH",
                                                           percent=40)]))
    ledger.close()
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
    done = run_ledger(settings, *kafka, "project", "--until-idle")
    assert done.returncode == 0, done.stderr
    models = World(settings)
    try:
        assert models.dead() == []
        assert_equal_to_the_fold(settings, models.models())
    finally:
        models.close()
