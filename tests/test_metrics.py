"""Metrics: the counters of writes, and position and lag gauges that agree with `ledger status`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ledger.config import Settings
from ledger.generate import generate_lines
from ledger.monitor.collector import StatusCollector
from ledger.ops.metrics import REGISTRY
from ledger.write.application import Ledger
from tests.integration.util import run_ledger

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(collector: StatusCollector) -> Samples:
    """What Prometheus would read from the collector, through the text exposition."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def status(settings: Settings, *kafka: str) -> dict[str, Any]:
    done = run_ledger(settings, *kafka, "status", "--json", "--stuck-after", "3600")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_written_events_and_answered_commands_are_counted_by_type_status_and_reason(settings: Settings) -> None:
    ledger = Ledger(settings)
    before = {k: value("ledger_events_written_total", type=k) for k in ("OfficerRegistered", "OrganisationDefined")}
    accepted_before = value("ledger_commands_total", type="register_officer", status="accepted")
    rejected_before = value("ledger_commands_rejected_total", type="invalid", reason="InvalidCommand")
    lines = list(generate_lines(30, seed=71))
    outcomes = list(ledger.ingest([*lines, '{"type": "nonsense"}']))
    stored = [e["type"] for _, e in ledger.iter_log()]

    for kind in before:
        assert value("ledger_events_written_total", type=kind) - before[kind] == stored.count(kind) > 0
    registered = sum(1 for line, o in zip(lines, outcomes, strict=False)
                     if json.loads(line).get("type") == "register_officer" and o.status == "accepted")
    assert value("ledger_commands_total", type="register_officer", status="accepted") - accepted_before == registered
    assert value("ledger_commands_rejected_total", type="invalid", reason="InvalidCommand") - rejected_before >= 1
    # A resend is a duplicate, and writes no event.
    written = value("ledger_events_written_total", type="OfficerRegistered")
    first = next(line for line in lines if json.loads(line).get("type") == "register_officer")
    duplicates = value("ledger_commands_total", type="register_officer", status="duplicate")
    assert ledger.execute(first).status == "duplicate"
    assert value("ledger_commands_total", type="register_officer", status="duplicate") == duplicates + 1
    assert value("ledger_events_written_total", type="OfficerRegistered") == written


def test_embedded_lag_gauges_agree_with_ledger_status_while_behind(settings: Settings) -> None:
    ledger = Ledger(settings)
    lines = list(generate_lines(60, seed=72))
    list(ledger.ingest(lines[: len(lines) // 2]))
    assert run_ledger(settings, "project", "--until-idle").returncode == 0
    list(ledger.ingest(lines[len(lines) // 2 :]))

    scraped = scrape(StatusCollector(ledger, settings, min_interval=0))
    report = status(settings)
    assert scraped[("ledger_status_ok", ())] == 1.0
    assert scraped[("ledger_store_events", ())] == report["store"]["events"]
    assert scraped[("ledger_dead_letters", ())] == report["dead_letters"] == 0
    for name, entry in report["projections"].items():
        label = (("projection", name),)
        assert entry["lag_events"] > 100 and entry["lag_seconds"] > 0
        assert scraped[("ledger_projection_position", label)] == entry["position"]
        assert scraped[("ledger_projection_lag_events", label)] == entry["lag_events"]
        assert scraped[("ledger_projection_lag_seconds", label)] == pytest.approx(entry["lag_seconds"])
    assert not any(name.startswith("ledger_relay") for name, _ in scraped)  # no relay in embedded mode


def test_projection_only_collector_leaves_out_the_relay_and_a_down_store_still_answers(sqlite_settings: Settings) -> None:
    ledger = Ledger(sqlite_settings)
    down = Settings(store="postgresql://nobody@127.0.0.1:1/none")
    scraped = scrape(StatusCollector(ledger, down, relay=False))
    assert scraped[("ledger_store_up", ())] == 1.0 or scraped[("ledger_status_ok", ())] == 0.0
    broken = StatusCollector(None, sqlite_settings)
    assert scrape(broken) == {("ledger_status_ok", ()): 0.0, ("ledger_store_up", ()): 0.0}


@pytest.mark.kafka
def test_kafka_partition_gauges_agree_with_ledger_status_while_behind(
    sqlite_settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = Settings(store=sqlite_settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    kafka = ("--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix)
    ledger = Ledger(settings)
    list(ledger.ingest(generate_lines(30, seed=73)))
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0

    scraped = scrape(StatusCollector(ledger, settings, min_interval=0))
    report = status(settings, *kafka)
    assert scraped[("ledger_relay_position", ())] == report["relay"]["position"] > 0
    assert scraped[("ledger_broker_up", ())] == 1.0
    for name, entry in report["projections"].items():
        if name == "credential_status":  # it follows the store's log, never a topic: a store position and lag
            assert entry["lag_events"] == report["store"]["events"] and "partitions" not in entry
            assert scraped[("ledger_projection_lag_events", (("projection", name),))] == entry["lag_events"]
            continue
        assert entry["lag_events"] > 0 and entry["lag_seconds"] is None and "broker" in entry["lag_seconds_unknown"]
        assert ("ledger_projection_lag_seconds", (("projection", name),)) not in scraped  # unknown: absent
        assert sum(p["lag_events"] for p in entry["partitions"]) == entry["lag_events"]
        for part in entry["partitions"]:
            key = (("partition", str(part["partition"])), ("projection", name), ("topic", part["topic"]))
            assert scraped[("ledger_projection_partition_lag_events", key)] == part["lag_events"]
            assert scraped[("ledger_projection_partition_position", key)] == part["position"] == 0
    text = run_ledger(settings, *kafka, "status", "--stuck-after", "3600")
    assert "None" not in text.stdout and "lag in seconds unknown" in text.stdout


def test_the_api_serves_metrics_by_route_template_counts_auth_failures_and_group_commits_without_personal_data(
    sqlite_settings: Settings,
) -> None:
    from fastapi.testclient import TestClient

    from ledger.api.app import create_app
    from ledger.api.auth import create_token
    from ledger.consumers.log import LogFollower
    from ledger.projections.runner import Runner
    from ledger.store.db import Database
    from tests.helpers import reference, register

    db = Database(sqlite_settings)
    ingest, auditor = create_token(db, "feed", "ingest"), create_token(db, "audit", "auditor")
    route = "/officers/{officer_id}/record"
    before = {
        "ok": value("ledger_http_request_duration_seconds_count", route=route, method="GET", status="200"),
        "missing": value("ledger_auth_failures_total", reason="missing"),
        "invalid": value("ledger_auth_failures_total", reason="invalid"),
        "forbidden": value("ledger_auth_failures_total", reason="forbidden"),
        "batches": value("ledger_group_commit_batch_commands_count"),
        "waits": value("ledger_group_commit_wait_seconds_count"),
        "projected": value("ledger_projection_events_total", projection="records"),
        "projection_batches": value("ledger_projection_batch_duration_seconds_count"),
    }
    with TestClient(create_app(sqlite_settings, project=False)) as client:
        def get(path: str, token: str | None) -> int:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return int(client.get(path, headers=headers).status_code)

        commands = [*reference(), register("OFF-4242424", name="Meera Iyer", email="meera.iyer@gov.in")]
        answer = client.post("/commands", json=commands, headers={"Authorization": f"Bearer {ingest}"})
        assert answer.status_code == 200 and answer.headers["x-request-id"]
        stored = len(list(Ledger(sqlite_settings).iter_log()))
        LogFollower(Ledger(sqlite_settings), Runner(Database(sqlite_settings))).run(until_idle=True)
        assert get("/officers/OFF-4242424/record", auditor) == 200
        assert get("/officers/OFF-4242424/record", None) == 401
        assert get("/officers/OFF-4242424/record", "made-up") == 401
        assert get("/officers/OFF-4242424/record", ingest) == 403
        scraped = client.get("/metrics")  # no token needed

    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert value("ledger_http_request_duration_seconds_count", route=route, method="GET", status="200") == before["ok"] + 1
    for reason in ("missing", "invalid", "forbidden"):
        assert value("ledger_auth_failures_total", reason=reason) == before[reason] + 1
    assert value("ledger_group_commit_batch_commands_count") == before["batches"] + 1
    assert value("ledger_group_commit_wait_seconds_count") == before["waits"] + 1
    assert value("ledger_projection_events_total", projection="records") == before["projected"] + stored
    assert value("ledger_projection_batch_duration_seconds_count") > before["projection_batches"]
    # Status gauges of this app (no relay in embedded mode), and nothing personal anywhere.
    assert 'ledger_projection_lag_events{projection="records"} 0.0' in text
    assert f'route="{route}"' in text and "OFF-4242424" not in text
    assert "Meera" not in text and "meera" not in text and "@gov.in" not in text


def test_dead_letters_and_projected_batches_are_counted_once_committed(sqlite_settings: Settings) -> None:
    from ledger.projections.runner import Item, Runner
    from ledger.store.db import Database

    runner = Runner(Database(sqlite_settings))
    kinds = ("undecodable", "held_back")
    before = {k: value("ledger_dead_letters_written_total", reason=k) for k in kinds}
    batches = value("ledger_projection_batch_duration_seconds_count")
    later = {"type": "CourseEnrolled", "officer_id": "OFF-9", "version": 2}
    runner.process([Item("t.officers", 0, 0, "OFF-9", None, "not Avro", "AA=="),
                    Item("t.officers", 0, 1, "OFF-9", later)])
    assert {k: value("ledger_dead_letters_written_total", reason=k) - before[k] for k in kinds} == dict.fromkeys(kinds, 1)
    assert value("ledger_projection_batch_duration_seconds_count") == batches + 1
    assert runner.dead_letter_count() == 2
