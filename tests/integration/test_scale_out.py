"""Projections across processes: `ledger project --instance i/n`, killed at random, end equal to one fold."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from ledger.config import Settings
from ledger.consumers.topics import KafkaFollower, Share
from ledger.domain.errors import LedgerError
from ledger.generate import generate_lines
from ledger.kafka.client import OFFICER_PARTITIONS
from ledger.projections.runner import Item, Runner, all_projections
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import reference, register
from tests.integration.test_projections import (
    _progress,
    assert_matches_fold,
    export_all,
    kafka_args,
)
from tests.integration.util import popen_ledger, run_ledger

INSTANCES = 3


def kafka_settings(settings: Settings, bootstrap: str, prefix: str) -> Settings:
    return Settings(store=settings.store, kafka_bootstrap=bootstrap, topic_prefix=prefix)


def test_a_share_is_a_set_of_partitions_of_the_officer_topic() -> None:
    six = range(6)
    assert [Share.parse(instance=f"{i}/3").pick(six) for i in range(3)] == [[0, 3], [1, 4], [2, 5]]
    assert Share.parse(partitions="4,0,2,2").pick(six) == [0, 2, 4]
    assert Share.parse().pick(six) == list(six)
    assert Share.parse(instance="7/8").pick(six) == []  # only the reference topic
    for bad in ({"instance": "3/3"}, {"instance": "1"}, {"instance": "a/b"}, {"partitions": "x"},
                {"partitions": ","}, {"partitions": "-1"}, {"partitions": "1", "instance": "0/2"}):
        with pytest.raises(ValueError):
            Share.parse(**bad)
    with pytest.raises(LedgerError, match="not \\[6\\]"):
        Share.parse(partitions="1,6").pick(six)


def test_choosing_partitions_needs_kafka(sqlite_settings: Settings) -> None:
    done = run_ledger(sqlite_settings, "project", "--until-idle", "--instance", "0/2")
    assert done.returncode == 2 and "LEDGER_KAFKA_BOOTSTRAP" in done.stderr


@pytest.mark.kafka
def test_a_partition_the_topic_lacks_is_refused(sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = kafka_settings(sqlite_settings, kafka_bootstrap, topic_prefix)
    list(Ledger(settings).ingest(json.dumps(c) for c in [*reference(), register("O1")]))
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle", "--partitions", "0,9")
    assert done.returncode == 1 and "not [9]" in done.stderr


@pytest.mark.kafka
def test_every_instance_reads_the_reference_topic(sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    # An instance with no officer partition still applies reference events, and one
    # whose officers arrive before any reference event ends the same.
    settings = kafka_settings(sqlite_settings, kafka_bootstrap, topic_prefix)
    ledger = Ledger(settings)
    list(ledger.ingest(json.dumps(c) for c in [*reference(), *(register(f"O{n}") for n in range(12))]))
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    lonely = run_ledger(settings, *kafka_args(settings), "project", "--until-idle", "--idle", "1", "--instance", "6/7")
    assert lonely.returncode == 0, lonely.stderr
    assert "project: 13 events" in lonely.stderr  # the reference topic alone
    for i in range(INSTANCES):
        done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle", "--idle", "1",
                          "--instance", f"{i}/{INSTANCES}")
        assert done.returncode == 0, done.stderr
    assert_matches_fold(settings)


def _start(settings: Settings, name: str) -> subprocess.Popen[str]:
    if name == "relay":
        return popen_ledger(settings, *kafka_args(settings), "relay", "--page", "150")
    return popen_ledger(settings, *kafka_args(settings), "project", "--page", "150", "--instance", name)


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.slow
def test_three_instances_killed_at_random_end_equal_to_a_single_fold(
    pg_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    # PostgreSQL: the three consumers' transactions really run at once (shared locks),
    # adding to the same aggregate rows.
    settings = kafka_settings(pg_settings, kafka_bootstrap, topic_prefix)
    list(Ledger(settings).ingest(generate_lines(400, seed=35)))
    officer_events = sum(1 for _, e in Ledger(settings).iter_log() if "officer_id" in e)
    names = ["relay", *(f"{i}/{INSTANCES}" for i in range(INSTANCES))]
    rng = random.Random(10)
    running: dict[str, subprocess.Popen[str]] = {name: _start(settings, name) for name in names}
    kills = 0
    seen = []
    source = f"{topic_prefix}.officers"
    try:
        for mark in sorted(rng.uniform(0.05, 0.9) for _ in range(8)):
            deadline = time.monotonic() + 120
            while _progress(settings, source) < mark * officer_events and time.monotonic() < deadline:
                time.sleep(0.01)
            # SIGKILL a random subset (the relay too, sometimes) and start them again:
            # the others carry on meanwhile.
            for name in rng.sample(names, rng.randint(1, len(names))):
                running[name].send_signal(signal.SIGKILL)
                running[name].wait(timeout=30)
                kills += running[name].returncode == -signal.SIGKILL
                running[name] = _start(settings, name)
            seen.append(_progress(settings, source))
    finally:
        for child in running.values():
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert kills >= 8
    assert sum(0 < p < officer_events for p in seen) >= 4, f"the kills did not land mid-run: {seen}"

    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    finishing = [popen_ledger(settings, *kafka_args(settings), "project", "--until-idle", "--instance", name)
                 for name in names[1:]]
    outcomes: list[Any] = [child.communicate(timeout=300) for child in finishing]
    assert [child.returncode for child in finishing] == [0] * INSTANCES, outcomes  # 1: dead letters
    assert _progress(settings, source) >= officer_events
    # Each instance kept its own positions: one row per projection and officer partition.
    db = Database(settings)
    try:
        with db.transaction() as c:
            c.execute("SELECT COUNT(DISTINCT part), COUNT(*) FROM ledger_offsets WHERE source = ?", (source,))
            assert tuple(c.fetchone()) == (OFFICER_PARTITIONS, OFFICER_PARTITIONS * len(all_projections()))
    finally:
        db.close()
    assert_matches_fold(settings)
    # And equal to a single process folding the whole store again.
    before = export_all(settings)
    assert run_ledger(settings, *kafka_args(settings), "rebuild", "all").returncode == 0
    assert export_all(settings) == before


@pytest.mark.kafka
def test_the_prefetch_thread_hands_batches_over_in_order_and_ends_with_the_consumer(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = kafka_settings(sqlite_settings, kafka_bootstrap, topic_prefix)
    list(Ledger(settings).ingest(json.dumps(c) for c in [*reference(), *(register(f"O{n}") for n in range(40))]))
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0

    class Recording(Runner):
        fail_at: int | None = None

        def __init__(self) -> None:
            super().__init__(Database(settings))
            self.batches: list[list[tuple[str, int, int]]] = []

        def process(self, items: Sequence[Item]) -> int:
            self.batches.append([(i.source, i.part, i.offset) for i in items])
            if len(self.batches) == self.fail_at:
                raise RuntimeError("the database went away")
            return super().process(items)

    def prefetching() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "ledger-kafka-prefetch"]

    runner = Recording()
    stats = KafkaFollower(kafka_bootstrap, topic_prefix, runner, max_records=7).run(until_idle=True, idle=0.5)
    positions = [p for batch in runner.batches for p in batch]
    assert stats.events == len(positions) == len(set(positions)) == 40 + len(reference())
    for source, part in {(s, p) for s, p, _ in positions}:
        offsets = [o for s, p, o in positions if (s, p) == (source, part)]
        assert offsets == sorted(offsets), (source, part)  # in order, across batches
    assert prefetching() == []

    # A failing batch ends the run with its error, and the prefetch thread with it.
    failing = Recording()
    failing.fail_at = 2
    with failing.db.transaction() as c:
        c.execute("DELETE FROM ledger_offsets")  # from the start again: duplicates, then the failure
    with pytest.raises(RuntimeError, match="went away"):
        KafkaFollower(kafka_bootstrap, topic_prefix, failing, max_records=7).run(until_idle=True, idle=0.5)
    assert prefetching() == []

    # A stop (SIGTERM) ends a run that would otherwise wait for messages forever.
    follower = KafkaFollower(kafka_bootstrap, topic_prefix, Recording(), max_records=7)
    threading.Timer(1.0, follower.stop.set).start()
    started = time.monotonic()
    follower.run()
    assert time.monotonic() - started < 10 and prefetching() == []
