"""Kafka history is ensured, not assumed (issue 21), against the real broker.

Topics are created to keep every event; a consumer whose offsets no longer mean what
they meant (a topic deleted and created again, a partition whose log start passed the
stored offset) stops with exit 1 and ``ledger status`` is red, instead of skipping
events; reference events that skip a version are dead-lettered like officer events;
lag counts events, not notification ids, which have gaps on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError
from kafka.structs import TopicPartition

from ledger.config import Settings
from ledger.consumers.positions import lost_position
from ledger.kafka.client import (
    OFFICER_PARTITIONS,
    REFERENCE_PARTITIONS,
    UNLIMITED_RETENTION,
    ensure_topics,
)
from ledger.kafka.history import (
    HistoryLost,
    describe,
    identity_problems,
    log_start_problems,
    retention_problems,
)
from ledger.kafka.relay import Relay
from ledger.monitor.status import collect
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register
from tests.integration.kafka_reader import Message, read_topic
from tests.integration.test_projections import assert_matches_fold, export_rows, kafka_args
from tests.integration.util import popen_ledger, run_ledger

pytestmark = pytest.mark.kafka


def _kafka(settings: Settings, bootstrap: str, prefix: str) -> Settings:
    return Settings(store=settings.store, kafka_bootstrap=bootstrap, topic_prefix=prefix)


def _ingest(settings: Settings, commands: list[dict[str, Any]]) -> None:
    ledger = Ledger(settings)
    try:
        answers = list(ledger.ingest(json.dumps(c) for c in commands))
    finally:
        ledger.close()
    assert all(a.status == "accepted" for a in answers), answers


def _relay(settings: Settings) -> int:
    assert settings.kafka_bootstrap
    ledger, db = Ledger(settings), Database(settings)
    try:
        return Relay(ledger, db, settings.kafka_bootstrap, settings.topic_prefix).run(until_idle=True).published
    finally:
        db.close()
        ledger.close()


def _status(settings: Settings) -> tuple[int, dict[str, Any]]:
    done = run_ledger(settings, *kafka_args(settings), "status", "--json")
    return done.returncode, json.loads(done.stdout)


def _recreate(bootstrap: str, topic: str, partitions: int, configs: dict[str, str] | None = None) -> None:
    """Delete ``topic`` and create it again under the same name (the broker deletes asynchronously)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs or {})])
                return
            except TopicAlreadyExistsError:
                assert time.monotonic() < deadline, f"{topic} was not deleted within 30 s"
                time.sleep(0.2)
    finally:
        admin.close()


def _world() -> list[dict[str, Any]]:
    return [*reference(), register("O1"), register("O2"), officer_cmd("enrol", 1, "O1", course_id="K-ETH")]


def test_topics_are_created_with_unlimited_retention(kafka_bootstrap: str, topic_prefix: str) -> None:
    ensure_topics(kafka_bootstrap, topic_prefix)
    topics = [f"{topic_prefix}.officers", f"{topic_prefix}.reference", f"{topic_prefix}.checkpoints"]
    described = describe(kafka_bootstrap, topics)
    assert described.configs is not None, described.configs_error  # the bundled broker answers DescribeConfigs
    for topic in topics:
        assert described.configs[topic]["retention.ms"] == "-1", topic
        assert described.configs[topic]["retention.bytes"] == "-1", topic
        assert described.ids[topic] is not None, topic  # Metadata v10+: the id that tells a recreated topic
    assert retention_problems(described, topics) == []


def test_topics_made_without_unlimited_retention_are_a_warning_in_status(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    try:  # made by someone else, with the broker's defaults (retention of a week on Apache Kafka)
        admin.create_topics([NewTopic(f"{topic_prefix}.officers", OFFICER_PARTITIONS, 1),
                             NewTopic(f"{topic_prefix}.reference", REFERENCE_PARTITIONS, 1)])
    finally:
        admin.close()
    _ingest(settings, _world())
    _relay(settings)  # finds the topics there: checks, never changes them
    assert run_ledger(settings, *kafka_args(settings), "project", "--until-idle").returncode == 0
    code, report = _status(settings)
    assert code == 0, report["problems"]  # nothing is lost yet: a warning, not a problem
    officers = [w for w in report["warnings"] if f"{topic_prefix}.officers" in w]
    # Apache Kafka reports its default retention; the bundled Tansu reports nothing for such a topic.
    assert officers and all("retention" in w for w in officers), report["warnings"]
    done = run_ledger(settings, *kafka_args(settings), "status")
    assert "warning:" in done.stderr and f"{topic_prefix}.officers" in done.stderr


def test_a_recreated_topic_stops_the_consumer_and_status_is_red(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, _world())
    _relay(settings)
    assert run_ledger(settings, *kafka_args(settings), "project", "--until-idle").returncode == 0
    code, report = _status(settings)
    assert code == 0 and report["kafka_history"]["problems"] == [], report
    before = {m: export_rows(settings, m, in_process=True) for m in ("records", "ministries")}

    # The officer topic is deleted and made again; new events go to it from offset 0.
    _recreate(kafka_bootstrap, f"{topic_prefix}.officers", OFFICER_PARTITIONS, dict(UNLIMITED_RETENTION))
    _ingest(settings, [register("O3"), officer_cmd("enrol", 2, "O2", course_id="K-BUD")])
    assert _relay(settings) == 2

    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle")
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # the error's one line, after the log's
    assert f"topic {topic_prefix}.officers was recreated" in last and "Traceback" not in done.stderr
    code, report = _status(settings)
    assert code == 1 and any("was recreated" in p for p in report["problems"]), report["problems"]
    # Nothing of the new topic was applied: no event skipped, none applied out of place.
    assert {m: export_rows(settings, m, in_process=True) for m in ("records", "ministries")} == before

    # Starting over: the store published again into the new topic, the consumers read it from 0.
    assert run_ledger(settings, *kafka_args(settings), "relay", "--republish", "--until-idle").returncode == 0
    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle",
                      "--forget-offsets", f"{topic_prefix}.officers")
    assert done.returncode == 0 and "0 dead letters" in done.stderr, done.stderr
    assert_matches_fold(settings, in_process=True)
    code, report = _status(settings)
    assert code == 0 and report["kafka_history"]["problems"] == [], report["problems"]


def test_a_running_consumer_stops_when_its_topic_is_recreated(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A broker may answer fetches past a new topic's end with nothing (Tansu does): the
    running consumer checks the topics' ids while idle and stops, not waiting for the new
    topic to grow past its offsets."""
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, _world())
    _relay(settings)
    consumer = popen_ledger(settings, *kafka_args(settings), "project", "--no-helper")
    try:
        deadline = time.monotonic() + 60
        while _applied(settings) < 3 and time.monotonic() < deadline:  # the officer events
            time.sleep(0.2)
        assert consumer.poll() is None and _applied(settings) == 3
        _recreate(kafka_bootstrap, f"{topic_prefix}.reference", REFERENCE_PARTITIONS, dict(UNLIMITED_RETENTION))
        _, stderr = consumer.communicate(timeout=60)
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
    assert consumer.returncode == 1 and f"topic {topic_prefix}.reference was recreated" in stderr, stderr


def _applied(settings: Settings) -> int:
    """How many officer events the records projection applied (its offsets' sum)."""
    db = Database(settings)
    try:
        with db.reading() as c:
            c.execute("SELECT next_offset FROM ledger_offsets WHERE projection = 'records' AND source = ?",
                      (f"{settings.topic_prefix}.officers",))
            return sum(int(r[0]) for r in c.fetchall())
    finally:
        db.close()


def test_a_consumer_behind_the_log_start_stops(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """Records deleted from a partition's start (DeleteRecords, as retention would) past the
    consumer's offset: it stops and status is red. The bundled Tansu cannot delete records:
    there this runs only against a broker that can (LEDGER_KAFKA_BOOTSTRAP, or Docker);
    the decision itself is checked on every broker by the next test."""
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, [*reference(), register("O1")])
    _relay(settings)
    assert run_ledger(settings, *kafka_args(settings), "project", "--until-idle").returncode == 0
    _ingest(settings, [officer_cmd("enrol", 1, "O1", course_id="K-ETH"), officer_cmd("enrol", 2, "O1", course_id="K-BUD")])
    _relay(settings)
    messages = read_topic(kafka_bootstrap, f"{topic_prefix}.officers", 3)
    part = messages[-1].partition
    end = max(m.offset for m in messages if m.partition == part) + 1
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=10_000)
    try:
        admin.delete_records({TopicPartition(f"{topic_prefix}.officers", part): end})
    except (KafkaError, OSError, NotImplementedError) as exc:
        pytest.skip(f"the broker cannot delete records ({type(exc).__name__}: {exc})")
    finally:
        admin.close()
    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle")
    assert done.returncode == 1 and "were deleted before they were applied" in done.stderr, done.stderr
    code, report = _status(settings)
    assert code == 1 and any("begins at offset" in p for p in report["problems"]), report["problems"]


def test_offsets_the_topic_no_longer_holds_are_reported_never_skipped() -> None:
    """The decisions behind both stops, on the answers a broker gives (ids, earliest and end offsets)."""
    start = {("p.officers", 0): 40, ("p.officers", 1): 0, ("p.reference", 0): 12}
    # Log start above the next offset: the events in between are gone.
    assert log_start_problems({("p.officers", 0): 40, ("p.officers", 1): 0, ("p.reference", 0): 0}, start) == []
    found = log_start_problems({("p.officers", 0): 41, ("p.officers", 1): 0}, start)
    assert len(found) == 1 and found[0].startswith("p.officers[0] begins at offset 41")
    # A partition never read (next offset 0) whose start moved: lost too.
    assert log_start_problems({("p.officers", 1): 5}, start)[0].startswith("p.officers[1] begins at offset 5")
    # Another id than the one recorded: recreated; the same, or nothing consumed yet: fine.
    recorded = {"p.officers": "id-1", "p.reference": "id-2"}
    assert identity_problems(recorded, {"p.officers": "id-1", "p.reference": "id-2"}, start) == []
    assert "p.reference was recreated" in identity_problems(recorded, {"p.reference": "id-3"}, start)[0]
    assert identity_problems(recorded, {"p.reference": "id-3"}, {("p.reference", 0): 0}) == []
    # A broker without ids: an end offset below the stored one tells instead.
    assert "ends at offset 3" in identity_problems(recorded, {"p.reference": None}, start, {("p.reference", 0): 3})[0]
    assert identity_problems(recorded, {"p.reference": None}, start, {("p.reference", 0): 12}) == []
    # A fetch the broker answers "out of range" (Apache Kafka, reset policy none) stops the consumer.
    lost = lost_position(OffsetOutOfRangeError({TopicPartition("p.officers", 0): 40}))
    assert isinstance(lost, HistoryLost) and "p.officers[0] at offset 40" in str(lost)
    other = KafkaError("x")
    assert lost_position(other) is other


def _by_entity(messages: list[Message]) -> dict[tuple[str, int], Message]:
    return {(m.record["type"] + ":" + m.key.decode(), m.record["version"]): m for m in messages}


def _copy(bootstrap: str, messages: list[Message], topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for m in messages:
            producer.send(topic, key=m.key, value=m.value, partition=m.partition)
        producer.flush(timeout=30)
    finally:
        producer.close()


def test_a_gap_in_reference_events_is_dead_lettered_and_retried_from_the_store(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A post's FRAC revision lost on the way: the next one is a version gap, the one after it
    held back; `ledger dead-letters retry` folds the post from the store, and later revisions flow."""
    relayed = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    post = reference()[8]
    assert post["post_id"] == "P-US"
    revisions = [{**post, "title": f"Under Secretary ({n})"} for n in (2, 3, 4)]
    _ingest(relayed, [*reference(), *revisions, register("O1")])
    _relay(relayed)
    officers = read_topic(kafka_bootstrap, f"{topic_prefix}.officers", 1)
    refs = read_topic(kafka_bootstrap, f"{topic_prefix}.reference", len(reference()) + 3)
    assert {v for (e, v) in _by_entity(refs) if e == "PostDefined:P-US"} == {1, 2, 3, 4}

    # The consumer reads a copy of the topics that lacks revision 2 of P-US.
    copied = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix + "-copy")
    ensure_topics(kafka_bootstrap, copied.topic_prefix)
    lost = _by_entity(refs)[("PostDefined:P-US", 2)]
    _copy(kafka_bootstrap, [m for m in refs if m is not lost], f"{copied.topic_prefix}.reference")
    _copy(kafka_bootstrap, officers, f"{copied.topic_prefix}.officers")
    done = run_ledger(copied, *kafka_args(copied), "project", "--until-idle")
    assert done.returncode == 1 and "2 dead letters" in done.stderr, done.stderr
    letters = [json.loads(line) for line in run_ledger(copied, "dead-letters", "--json").stdout.splitlines()]
    assert [(d["officer_id"], d["reason"]) for d in letters] == [
        ("P-US", "version gap: PostDefined:P-US expected 2, got 3"),
        ("P-US", "held back: reference entity P-US has an earlier dead letter")]

    retried = run_ledger(copied, *kafka_args(copied), "dead-letters", "retry", "--json")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert run_ledger(copied, "dead-letters", "--json").stdout.strip() == ""
    assert_matches_fold(copied, in_process=True)

    # A fifth revision comes on: it follows the store's version, which the retry recorded.
    _ingest(relayed, [{**post, "title": "Under Secretary (5)"}])
    _relay(relayed)
    newer = read_topic(kafka_bootstrap, f"{topic_prefix}.reference", len(refs) + 1)
    _copy(kafka_bootstrap, [m for m in newer if m.record.get("title") == "Under Secretary (5)"],
          f"{copied.topic_prefix}.reference")
    done = run_ledger(copied, *kafka_args(copied), "project", "--until-idle")
    assert done.returncode == 0 and "0 dead letters" in done.stderr, done.stderr
    assert_matches_fold(copied, in_process=True)


@pytest.mark.postgres
def test_relay_lag_counts_events_not_notification_ids(
    pg_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    """PostgreSQL's notification ids come from a sequence: a rolled-back insert leaves a gap,
    and lag is the events not yet published, not the distance between ids."""
    settings = _kafka(pg_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, [*reference(), register("O1")])
    published = _relay(settings)
    with psycopg.connect(settings.store) as conn:  # a transaction that took ids, then rolled back
        conn.execute("SELECT nextval(pg_get_serial_sequence('ledger_events', 'notification_id')) "
                      "FROM generate_series(1, 7)")
        conn.rollback()
    _ingest(settings, [register("O2"), officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
                       officer_cmd("enrol", 1, "O2", course_id="K-BUD")])
    ledger = Ledger(settings)
    try:
        newest = int(ledger.recorder.max_notification_id() or 0)
        report = collect(ledger, settings)
    finally:
        ledger.close()
    assert newest - report["relay"]["position"] == 3 + 7  # the ids skip the seven taken
    assert report["relay"]["lag_events"] == 3
    # Never consumed: credential_status (which follows the store's log) lags by every event.
    assert report["projections"]["credential_status"]["lag_events"] == published + 3
