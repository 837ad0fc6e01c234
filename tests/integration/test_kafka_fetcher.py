"""The Kafka consumer's fetcher process (``helper=True``; here from any backlog): polls and decodes in a child,
the consumer applies; same read models, dead letters and stops as in-process, and no
helper outlives its consumer.

Kept fast: small stores, relayed in this process, read models compared with the fold
in this process too.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ledger.config import Settings
from ledger.consumers.topics import KafkaFollower
from ledger.generate import generate_lines
from ledger.kafka.relay import Relay
from ledger.projections.runner import Item, Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.conftest import migrated
from tests.integration.test_projections import (
    _progress,
    assert_matches_fold,
    export_rows,
    kafka_args,
)
from tests.integration.util import popen_ledger, run_ledger

pytestmark = pytest.mark.kafka


def _kafka(settings: Settings, bootstrap: str, prefix: str) -> Settings:
    return Settings(store=settings.store, kafka_bootstrap=bootstrap, topic_prefix=prefix)


def _ingest(settings: Settings, lines: Sequence[str]) -> None:
    ledger = Ledger(settings)
    try:
        list(ledger.ingest(lines))
    finally:
        ledger.close()


def _relay(settings: Settings) -> int:
    """Publish what the store has (in this process: no interpreter to start); how many were sent."""
    assert settings.kafka_bootstrap
    ledger, db = Ledger(settings), Database(settings)
    try:
        return Relay(ledger, db, settings.kafka_bootstrap, settings.topic_prefix).run(until_idle=True).published
    finally:
        db.close()
        ledger.close()


def _applied(runner: Runner) -> int:
    """Messages every projection is past, over all partitions (one relay run: no duplicates).

    While a run goes on in another thread, ask another Runner (a connection is not shared).
    """
    return sum(runner.start_offsets().values())


def _gone(pid: int) -> bool:
    """Whether the process has exited (reaped, or a zombie waiting for its new parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_helper_read_models_equal_a_fresh_fold(settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = _kafka(settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, list(generate_lines(30, seed=51)))
    published = _relay(settings)
    runner = Runner(Database(settings))
    follower = KafkaFollower(kafka_bootstrap, topic_prefix, runner, max_records=100, helper=True, helper_backlog=0)
    stats = follower.run(until_idle=True, idle=0.5)
    assert stats.events == published == _applied(runner)
    assert follower.fetcher_pid is None and _threads("ledger-kafka-prefetch") == []  # all through the helper
    assert_matches_fold(settings, in_process=True)


def test_waiting_batches_from_the_helper_are_merged(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, list(generate_lines(30, seed=52)))
    published = _relay(settings)

    sizes: list[int] = []

    class Slow(Runner):
        def process(self, items: Sequence[Item]) -> int:
            if not sizes:
                time.sleep(0.3)  # a backlog of decoded batches builds up meanwhile
            sizes.append(len(items))
            return super().process(items)

    max_records = 5
    follower = KafkaFollower(kafka_bootstrap, topic_prefix, Slow(Database(settings)), max_records=max_records,
                             helper=True, helper_backlog=0)
    stats = follower.run(until_idle=True, idle=0.5)
    assert stats.events == sum(sizes) == published
    polls = math.ceil(published / max_records)  # at least this many polls
    assert stats.batches == len(sizes) < polls / 2, sizes
    assert max(sizes) <= follower.merge_limit + max_records
    assert_matches_fold(settings, in_process=True)


def test_a_poison_message_is_dead_lettered_through_the_helper_as_in_process(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    from tests.helpers import officer_cmd, reference, register

    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, [json.dumps(c) for c in [*reference(), register("O1"), register("O2")]])
    _relay(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(f"{topic_prefix}.officers", key=b"O1", value=b"\xc3\x01garbage!garbage!").get(timeout=30)
    producer.close()
    _ingest(settings, [json.dumps(officer_cmd("enrol", 1, o, course_id="K-ETH")) for o in ("O1", "O2")])
    _relay(settings)

    def dead_letters(helper: bool, db: Database) -> list[tuple[str, int, int, str, str, str]]:
        runner = Runner(db)
        KafkaFollower(kafka_bootstrap, topic_prefix, runner, helper=helper, helper_backlog=0).run(
            until_idle=True, idle=0.5)
        with db.transaction() as c:
            c.execute("SELECT source, part, position, officer_id, reason, payload FROM ledger_dead_letters "
                      "ORDER BY source, part, position")
            return [(str(s), int(p), int(o), str(officer), str(reason), str(payload))
                    for s, p, o, officer, reason, payload in c.fetchall()]

    through_helper = dead_letters(True, Database(settings))
    in_process = dead_letters(False, Database(migrated(Settings(store=f"sqlite:///{tmp_path / 'other.db'}"))))
    assert through_helper == in_process
    assert [(officer, reason.split(":")[0]) for _, _, _, officer, reason, _ in through_helper] == [
        ("O1", "message"), ("O1", "held back")]
    assert through_helper[0][5]  # the undecodable bytes, kept (base64)
    records = {r["officer_id"]: r for r in export_rows(settings, "records", in_process=True)}
    assert records["O1"]["enrolments"] == [] and [e["course_id"] for e in records["O2"]["enrolments"]] == ["K-ETH"]


def test_a_killed_consumer_leaves_no_helper_behind(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, list(generate_lines(30, seed=53)))
    _relay(settings)
    project = popen_ledger(settings, *kafka_args(settings), "project", "--page", "20", "--helper-backlog", "0")
    children = Path(f"/proc/{project.pid}/task/{project.pid}/children")
    try:
        # Its helper runs, and batches are being applied.
        def running() -> bool:
            assert project.poll() is None, project.communicate()
            return bool(children.read_text().split()) and _progress(settings) > 0

        _wait_for(running, what="the helper")
        helpers = [int(pid) for pid in children.read_text().split()]
    finally:
        project.send_signal(signal.SIGKILL)
        project.wait(timeout=30)
    assert project.returncode == -signal.SIGKILL
    assert len(helpers) == 1
    _wait_for(lambda: _gone(helpers[0]), timeout=5, what="the orphaned helper to exit")

    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle", "--idle", "0.5")
    assert done.returncode == 0, done.stderr
    assert_matches_fold(settings, in_process=True)


def test_a_killed_helper_is_replaced_by_polling_in_process(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    lines = list(generate_lines(30, seed=54))
    half = len(lines) // 2
    _ingest(settings, lines[:half])
    first = _relay(settings)
    caplog.set_level(logging.WARNING, "ledger.consumers")

    # Killed under a backlog, with batches on their way: those sent are applied, the
    # rest is polled here from the positions committed.
    follower: KafkaFollower | None = None
    killed: list[int] = []

    class Killing(Runner):
        def process(self, items: Sequence[Item]) -> int:
            if not killed and follower is not None and follower.fetcher_pid is not None:
                killed.append(follower.fetcher_pid)
                os.kill(killed[0], signal.SIGKILL)
            return super().process(items)

    runner = Killing(Database(settings))
    follower = KafkaFollower(kafka_bootstrap, topic_prefix, runner, max_records=10, helper=True, helper_backlog=0)
    stats = follower.run(until_idle=True, idle=0.5)
    assert killed and _gone(killed[0])
    assert stats.events == first == _applied(runner)  # none twice, none lost
    assert "exited unexpectedly" in caplog.text

    # Killed while a run waits for messages: what arrives later is applied all the same.
    caplog.clear()
    live = KafkaFollower(kafka_bootstrap, topic_prefix, Runner(Database(settings)), max_records=50, helper=True,
                         helper_backlog=0)
    watching = Runner(Database(settings))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(live.run(idle=0.5).events))
    thread.start()
    try:
        _wait_for(lambda: live.fetcher_pid is not None, what="the helper")
        helper = live.fetcher_pid
        assert helper is not None
        # Running: its main thread, the parent watch, the sending thread and the Kafka client's.
        _wait_for(lambda: len(os.listdir(f"/proc/{helper}/task")) >= 4, what="the helper's consumer")
        os.kill(helper, signal.SIGKILL)
        _wait_for(lambda: bool(_threads("ledger-kafka-prefetch")), what="polling in process")
        _ingest(settings, lines[half:])
        total = first + _relay(settings)
        _wait_for(lambda: _applied(watching) >= total, what="the second half")
    finally:
        live.stop.set()
        thread.join(timeout=30)
    assert result == [total - first] and _gone(helper)
    assert "exited unexpectedly" in caplog.text
    assert_matches_fold(settings, in_process=True)


def test_stop_ends_a_helper_run_promptly(sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    from tests.helpers import reference, register

    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, [json.dumps(c) for c in [*reference(), *(register(f"O{n}") for n in range(5))]])
    published = _relay(settings)
    follower = KafkaFollower(kafka_bootstrap, topic_prefix, Runner(Database(settings)), helper=True,
                             helper_backlog=0)
    watching = Runner(Database(settings))
    stopped: list[float] = []
    helpers: list[int] = []

    def stop_once_idle() -> None:
        try:
            _wait_for(lambda: _applied(watching) >= published, what="the messages")
            pid = follower.fetcher_pid
            assert pid is not None
            helpers.append(pid)
            time.sleep(0.3)  # the helper is polling an empty topic now
        finally:
            stopped.append(time.monotonic())
            follower.stop.set()

    stopper = threading.Thread(target=stop_once_idle)
    stopper.start()
    stats = follower.run()
    took = time.monotonic() - stopped[0]
    stopper.join()
    assert stats.events == published and len(helpers) == 1
    assert took < 2, took
    assert _gone(helpers[0]) and follower.fetcher_pid is None


def test_a_small_backlog_polls_in_process(sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = _kafka(sqlite_settings, kafka_bootstrap, topic_prefix)
    _ingest(settings, list(generate_lines(10, seed=55)))
    published = _relay(settings)
    seen: list[int | None] = []

    class Watching(Runner):
        def process(self, items: Sequence[Item]) -> int:
            seen.append(follower.fetcher_pid)
            return super().process(items)

    follower = KafkaFollower(kafka_bootstrap, topic_prefix, Watching(Database(settings)), helper=True,
                             helper_backlog=published + 1)
    assert follower.run(until_idle=True, idle=0.5).events == published
    assert seen and seen == [None] * len(seen)  # no fetcher process: the backlog was below the threshold
    assert_matches_fold(settings, in_process=True)
