"""Operations: status and lag, and rebuilding read models under live load."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import present
from tests.integration.test_projections import assert_matches_fold, export_all
from tests.integration.util import popen_ledger, run_ledger


def _status(settings: Settings) -> tuple[int, dict[str, Any]]:
    done = run_ledger(settings, "status", "--json", "--stuck-after", "3600")
    return done.returncode, json.loads(done.stdout)


def test_status_reports_the_lag_of_what_is_not_yet_projected(settings: Settings, tmp_path: Path) -> None:
    lines = list(generate_lines(80, seed=41))
    half = len(lines) // 2
    ledger = Ledger(settings)
    list(ledger.ingest(lines[:half]))
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    code, report = _status(settings)
    assert code == 0 and report["ok"]
    assert {p["lag_events"] for p in report["projections"].values()} == {0}

    before = present(ledger.recorder.max_notification_id())
    list(ledger.ingest(lines[half:]))
    added = present(ledger.recorder.max_notification_id()) - before
    assert added > 100
    code, report = _status(settings)
    assert {p["lag_events"] for p in report["projections"].values()} == {added}
    assert all(p["lag_seconds"] >= 0 for p in report["projections"].values())

    # Behind and not moving is a failed health check.
    stuck = run_ledger(settings, "status", "--json", "--stuck-after", "0")
    assert stuck.returncode == 1 and json.loads(stuck.stdout)["problems"]

    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    code, report = _status(settings)
    assert code == 0 and {p["lag_events"] for p in report["projections"].values()} == {0}


def test_status_fails_when_the_broker_does_not_answer(sqlite_settings: Settings) -> None:
    from tests.ports import free_port

    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=f"127.0.0.1:{free_port()}")
    list(Ledger(settings).ingest(generate_lines(5, seed=1)))
    done = run_ledger(settings, "--kafka", settings.kafka_bootstrap or "", "status", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1 and report["broker"]["ok"] is False


def test_rebuild_equals_the_incremental_model(settings: Settings) -> None:
    list(Ledger(settings).ingest(generate_lines(120, seed=42)))
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    incremental = export_all(settings)
    for target in ("records", "all", "ministries"):  # twice over the same tables, too
        done = run_ledger(settings, "rebuild", target)
        assert done.returncode == 0, done.stderr
        assert export_all(settings) == incremental


def test_rebuild_under_live_ingest_and_projection_swaps_without_a_failed_query(settings: Settings, tmp_path: Path) -> None:
    lines = list(generate_lines(900, seed=43))
    reference = [line for line in lines if "officer_id" not in json.loads(line)]
    officers = [line for line in lines if "officer_id" in json.loads(line)]
    list(Ledger(settings).ingest(reference + officers[: len(officers) // 3]))
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    rest = tmp_path / "rest.jsonl"
    rest.write_text("\n".join(officers[len(officers) // 3:]) + "\n")
    known = json.loads(officers[0])["officer_id"]  # registered in the part already projected

    failures: list[str] = []
    answered = 0
    stop = threading.Event()

    def query_loop() -> None:
        nonlocal answered
        ledger = Ledger(settings)
        reads = ReadModels(Database(settings), ledger)
        while not stop.is_set():
            try:
                record = reads.record(known)
                profile = reads.competency_profile(known)
                ministry = reads.ministry("MOF")
                assert record is not None and profile is not None and ministry is not None
                answered += 1
            except Exception as exc:  # any failure is a finding
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.005)

    reader = threading.Thread(target=query_loop)
    reader.start()
    ingest = popen_ledger(settings, "ingest", str(rest), "--batch-size", "100")
    live = popen_ledger(settings, "project", "--page", "200")
    time.sleep(0.5)
    rebuild = run_ledger(settings, "rebuild", "all", "--page", "500")
    ingest.communicate(timeout=300)
    time.sleep(1.0)
    live.terminate()
    _, live_err = live.communicate(timeout=60)
    stop.set()
    reader.join(timeout=30)

    assert rebuild.returncode == 0, rebuild.stderr
    assert ingest.returncode in (0, 1)
    assert live.returncode == 0, live_err
    assert failures == [] and answered > 10
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    assert_matches_fold(settings)


def test_rebuild_under_ingest_relay_and_consume_equals_the_fold(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    import pytest

    pytest.importorskip("kafka")
    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    lines = list(generate_lines(700, seed=44))
    reference = [line for line in lines if "officer_id" not in json.loads(line)]
    officers = [line for line in lines if "officer_id" in json.loads(line)]
    list(Ledger(settings).ingest(reference + officers[: len(officers) // 3]))
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
    assert run_ledger(settings, *kafka, "project", "--until-idle").returncode == 0
    rest = tmp_path / "rest.jsonl"
    rest.write_text("\n".join(officers[len(officers) // 3:]) + "\n")
    known = json.loads(officers[0])["officer_id"]  # registered in the part already projected

    failures: list[str] = []
    stop = threading.Event()

    def query_loop() -> None:
        reads = ReadModels(Database(settings), Ledger(settings))
        while not stop.is_set():
            try:
                assert reads.record(known) is not None and reads.ministry("MOF") is not None
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.005)

    reader = threading.Thread(target=query_loop)
    reader.start()
    ingest = popen_ledger(settings, "ingest", str(rest), "--batch-size", "100")
    relay = popen_ledger(settings, *kafka, "relay", "--page", "300")
    consumer = popen_ledger(settings, *kafka, "project", "--page", "300")
    time.sleep(0.5)
    rebuild = run_ledger(settings, *kafka, "rebuild", "all", "--page", "500")
    ingest.communicate(timeout=300)
    time.sleep(2.0)
    for child in (relay, consumer):
        child.terminate()
        child.communicate(timeout=60)
    stop.set()
    reader.join(timeout=30)

    assert rebuild.returncode == 0, rebuild.stderr
    assert relay.returncode == 0 and consumer.returncode == 0
    assert failures == []
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
    assert run_ledger(settings, *kafka, "project", "--until-idle").returncode == 0
    assert_matches_fold(settings)


def test_kafka_status_counts_what_was_relayed_but_not_yet_consumed(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    ledger = Ledger(settings)
    list(ledger.ingest(generate_lines(40, seed=45)))
    stored = ledger.recorder.max_notification_id()
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0

    def lags() -> set[int]:
        done = run_ledger(settings, *kafka, "status", "--json", "--stuck-after", "3600")
        report = json.loads(done.stdout)
        assert report["relay"]["lag_events"] == 0 and report["broker"]["ok"]
        return {p["lag_events"] for p in report["projections"].values()}

    # Not from the broker's end offsets (they under-report here): from what the relay had acknowledged.
    assert lags() == {stored}
    assert run_ledger(settings, *kafka, "project", "--until-idle").returncode == 0
    assert lags() == {0}
