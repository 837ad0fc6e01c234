"""Projections in both modes: equal to an independent fold, through crashes and duplicates."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import present
from tests.integration.util import popen_ledger, run_ledger
from tests.oracle import exported, fold_store
from tests.plan_oracle import fold as plan_fold

KEYS = {"records": "officer_id", "competencies": "officer_id", "ministries": "ministry_id"}


def export_rows(settings: Settings, model: str, in_process: bool = False) -> list[dict[str, Any]]:
    """``ledger export MODEL``'s rows: from the command, or (``in_process``, no interpreter
    to start) from the same query with the same JSON encoding."""
    if in_process:
        from ledger.read.models import ReadModels

        ledger, db = Ledger(settings), Database(settings)
        try:
            return [json.loads(json.dumps(row, ensure_ascii=False)) for row in ReadModels(db, ledger).export(model)]
        finally:
            db.close()
            ledger.close()
    done = run_ledger(settings, "export", model)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def export_all(settings: Settings, in_process: bool = False) -> dict[str, dict[str, dict[str, Any]]]:
    return {model: exported(export_rows(settings, model, in_process), key) for model, key in KEYS.items()}


def assert_matches_fold(settings: Settings, in_process: bool = False) -> None:
    expected = fold_store(settings)
    actual = export_all(settings, in_process)
    for model in KEYS:
        assert actual[model].keys() == expected[model].keys(), model
        for key, row in expected[model].items():
            assert actual[model][key] == row, (model, key)
    # The capacity-building plans and gap reports, against their own fold from the spec.
    plans, gaps = plan_fold([e for _, e in Ledger(settings).iter_log()])
    for model, want in (("plans", {f"{m}:{fy}": p for (m, fy), p in plans.items()}), ("gaps", gaps)):
        rows = export_rows(settings, model, in_process)
        got = {f"{r['ministry_id']}:{r['fy']}" if model == "plans" else r["ministry_id"]: r for r in rows}
        assert got == want, model


def kafka_args(settings: Settings) -> list[str]:
    assert settings.kafka_bootstrap
    return ["--kafka", settings.kafka_bootstrap, "--topic-prefix", settings.topic_prefix]


def test_embedded_projections_equal_a_fresh_fold(settings: Settings) -> None:
    list(Ledger(settings).ingest(generate_lines(150, seed=31)))
    Ledger(settings).erase("OFF-0000007", reason="request")
    done = run_ledger(settings, "project", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert_matches_fold(settings)
    record = json.loads(run_ledger(settings, "record", "OFF-0000007", "--json").stdout)
    assert record["name"] is None and record["email"] is None


@pytest.mark.kafka
def test_kafka_projections_equal_a_fresh_fold(settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = Settings(store=settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    list(Ledger(settings).ingest(generate_lines(150, seed=32)))
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert_matches_fold(settings)

    # The same topic data again: offsets reset to the start, and every event
    # published a second time by a relay whose position was lost.
    before = export_all(settings)
    db = Database(settings)
    with db.transaction() as c:
        c.execute("DELETE FROM ledger_offsets")
        c.execute("DELETE FROM ledger_positions WHERE name = 'relay'")
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    assert run_ledger(settings, *kafka_args(settings), "project", "--until-idle").returncode == 0
    assert export_all(settings) == before


def _progress(settings: Settings, source: str | None = None) -> int:
    """How many events the slowest projection has applied (sum over partitions)."""
    db = Database(settings)
    try:
        with db.transaction() as c:
            c.execute("CREATE TABLE IF NOT EXISTS ledger_offsets (projection TEXT NOT NULL, source TEXT NOT NULL, "
                      "part INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TEXT NOT NULL, "
                      "PRIMARY KEY (projection, source, part))")
            c.execute("SELECT projection, source, next_offset FROM ledger_offsets")
            rows = c.fetchall()
    finally:
        db.close()
    per: dict[str, int] = {}
    for projection, src, next_offset in rows:
        if source is None or src == source:
            per[projection] = per.get(projection, 0) + int(next_offset)
    return min(per.values()) if per else 0


def _kill_at_marks(
    settings: Settings, start: Any, total: int, marks: list[float], source: str | None = None
) -> tuple[int, list[int]]:
    """Start processes with ``start()``; SIGKILL them as progress passes each mark.

    Returns the number of processes that died by the signal and the progress seen
    just after each round of kills.
    """
    kills = 0
    seen = []
    for mark in marks:
        children = start()
        deadline = time.monotonic() + 120
        while _progress(settings, source) < mark * total and time.monotonic() < deadline:
            time.sleep(0.01)
        for child in children:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
            kills += child.returncode == -signal.SIGKILL
        seen.append(_progress(settings, source))
    return kills, seen


@pytest.mark.slow
def test_projection_killed_ten_times_ends_equal_to_the_fold(sqlite_settings: Settings) -> None:
    settings = sqlite_settings
    list(Ledger(settings).ingest(generate_lines(1000, seed=33)))
    ledger = Ledger(settings)
    total = present(ledger.recorder.max_notification_id())
    rng = random.Random(7)
    marks = sorted(rng.uniform(0.05, 0.95) for _ in range(10))
    kills, seen = _kill_at_marks(settings, lambda: [popen_ledger(settings, "project", "--page", "300")], total, marks)
    assert kills == 10
    assert sum(0 < p < total for p in seen) >= 8, f"the kills did not land mid-run: {seen}"
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    assert_matches_fold(settings)


@pytest.mark.kafka
@pytest.mark.slow
def test_relay_and_consumer_killed_together_end_equal_to_the_fold(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    list(Ledger(settings).ingest(generate_lines(600, seed=34)))
    officer_events = sum(1 for _, e in Ledger(settings).iter_log() if "officer_id" in e)
    rng = random.Random(8)
    marks = sorted(rng.uniform(0.05, 0.9) for _ in range(10))

    def start() -> list[Any]:
        return [popen_ledger(settings, *kafka_args(settings), "relay", "--page", "200"),
                popen_ledger(settings, *kafka_args(settings), "project", "--page", "300")]

    kills, seen = _kill_at_marks(settings, start, officer_events, marks, source=f"{topic_prefix}.officers")
    assert kills == 20
    assert 0 < seen[0] < officer_events, f"the first kill did not land mid-run: {seen}"
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    assert run_ledger(settings, *kafka_args(settings), "project", "--until-idle").returncode == 0
    assert_matches_fold(settings)


@pytest.mark.kafka
def test_a_corrupt_message_is_dead_lettered_and_holds_back_only_its_officer(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    from tests.helpers import officer_cmd, reference, register

    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    ledger = Ledger(settings)
    list(ledger.ingest(json.dumps(c) for c in [*reference(), register("O1"), register("O2")]))
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    # A message for O1 that no schema can decode, on the partition O1's events use.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(f"{topic_prefix}.officers", key=b"O1", value=b"\xc3\x01garbage!garbage!").get(timeout=30)
    producer.close()
    list(ledger.ingest(json.dumps(c) for c in [officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
                                               officer_cmd("enrol", 1, "O2", course_id="K-ETH")]))
    assert run_ledger(settings, *kafka_args(settings), "relay", "--until-idle").returncode == 0
    done = run_ledger(settings, *kafka_args(settings), "project", "--until-idle")
    assert done.returncode == 1 and "2 dead letters" in done.stderr  # the corrupt one, O1 held back

    letters = [json.loads(line) for line in run_ledger(settings, "dead-letters", "--json").stdout.splitlines()]
    assert [(d["officer_id"], d["reason"].split(":")[0]) for d in letters] == [
        ("O1", "message"), ("O1", "held back")]
    o1 = json.loads(run_ledger(settings, "record", "O1", "--json").stdout)
    o2 = json.loads(run_ledger(settings, "record", "O2", "--json").stdout)
    assert o1["enrolments"] == [] and [e["course_id"] for e in o2["enrolments"]] == ["K-ETH"]
