"""Capacity-building plans and competency gaps equal an independent fold written from the
spec (tests/plan_oracle.py), in both modes, through the scenarios that make them hard:
a transfer across ministries in the middle of a financial year, a plan declared after
its year's completions, a FRAC revision of a post, and an erased officer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.generate import generate_lines
from ledger.projections.runner import Runner
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register
from tests.plan_oracle import fold


def plan(ministry: str, fy: str, hours: float, *targets: tuple[str, int, int], day: int = 0) -> dict[str, Any]:
    cmd: dict[str, Any] = {"type": "declare_capacity_plan", "ministry_id": ministry, "fy": fy,
                           "min_learning_hours": hours,
                           "targets": [{"competency_id": c, "level": lvl, "officers": n} for c, lvl, n in targets]}
    return cmd


def complete(officer: str, course: str, day: int) -> list[dict[str, Any]]:
    steps = [officer_cmd("enrol", day, officer, course_id=course),
             officer_cmd("record_progress", day, officer, course_id=course, percent=100)]
    if course == "K-BUD":
        steps.append(officer_cmd("attempt_assessment", day, officer, course_id=course, score=80))
    return [*steps, officer_cmd("complete_course", day, officer, course_id=course)]


def scenario() -> list[dict[str, Any]]:
    return [
        *reference(),
        register("O1"), register("O2"), register("O3", org_id="AIIMS", post_id="P-DOC"),
        register("O4", org_id="CBIC", post_id="P-DIR"),
        # Completions before any plan exists: the plan declared later still counts them.
        *complete("O1", "K-BUD", 3), *complete("O2", "K-ETH", 4),
        plan("MOF", "2025-26", 10, ("C1", 2, 2), ("C2", 3, 1)),
        plan("MOH", "2025-26", 0, ("C2", 1, 5)),
        # O1 moves to Health mid-year: its Finance completion stays with Finance, the next goes to Health.
        officer_cmd("transfer_officer", 20, "O1", org_id="AIIMS", post_id="P-DOC"),
        *complete("O1", "K-ETH", 25),
        # A FRAC revision of the Director post: O4 suddenly needs Taxation at 4.
        {"type": "define_post", "post_id": "P-DIR", "org_id": "CBIC", "title": "Director",
         "roles": [{"name": "Lead", "activities": [{"name": "Tax", "competencies": [
             {"competency_id": "C3", "level": 4}, {"competency_id": "C1", "level": 1}]}]}]},
        # A revision of Finance's plan replaces it.
        plan("MOF", "2025-26", 12.5, ("C1", 1, 1), ("C2", 3, 4), ("C3", 2, 1)),
        *complete("O2", "K-BUD", 30),
        {"type": "erase_marker", "officer_id": "O2"},  # replaced by an erasure below
    ]


def _apply(ledger: Ledger, commands: list[dict[str, Any]]) -> None:
    for command in commands:
        if command["type"] == "erase_marker":
            ledger.erase(command["officer_id"], reason="request")
            continue
        outcome = ledger.execute(command)
        assert outcome.status == "accepted", (command, outcome)


def _expected(settings: Settings) -> tuple[dict[Any, Any], dict[str, Any]]:
    return fold([e for _, e in Ledger(settings).iter_log()])


def _actual(settings: Settings) -> tuple[dict[Any, Any], dict[str, Any]]:
    reads = ReadModels(Database(settings), Ledger(settings))
    plans = {(p["ministry_id"], p["fy"]): p for p in reads.export("plans")}
    gaps = {g["ministry_id"]: g for g in reads.export("gaps")}
    return plans, gaps


def test_the_hard_scenario_equals_the_fold(settings: Settings) -> None:
    ledger = Ledger(settings)
    _apply(ledger, scenario())
    LogFollower(ledger, Runner(Database(settings))).run(until_idle=True)
    expected_plans, expected_gaps = _expected(settings)
    plans, gaps = _actual(settings)
    assert plans == expected_plans
    assert gaps == expected_gaps
    # Spot checks against the spec, by hand.
    mof = plans[("MOF", "2025-26")]
    assert mof["min_learning_hours"] == 12.5 and [t["competency_id"] for t in mof["targets"]] == ["C1", "C2", "C3"]
    assert mof["targets"][0]["achieved"] == 2  # O1 (before moving) and O2 (erased, still counted) reached C1
    assert mof["headcount"] == 1  # O4 only: O1 moved to Health, O2 erased
    moh = plans[("MOH", "2025-26")]
    assert moh["targets"][0]["achieved"] == 1 and moh["officers_meeting_hours"] == moh["headcount"] == 2
    director = {r["competency_id"]: r for r in gaps["MOF"]["competencies"]}
    assert director["C3"] == {"competency_id": "C3", "required_officers": 1, "officers_with_gap": 1, "total_gap": 4}


def test_a_generated_history_equals_the_fold_and_survives_a_rebuild(settings: Settings) -> None:
    from ledger.projections.rebuild import rebuild

    ledger = Ledger(settings)
    list(ledger.ingest(generate_lines(150, seed=11)))
    runner = Runner(Database(settings))
    LogFollower(ledger, runner).run(until_idle=True)
    expected = _expected(settings)
    assert _actual(settings) == expected
    assert any(p["targets"] for p in expected[0].values()), "the generator declares plans"
    rebuild(ledger, runner, ["plans", "gaps"])
    assert _actual(settings) == expected


@pytest.mark.kafka
def test_kafka_mode_equals_the_fold(settings: Settings, kafka_bootstrap: str, topic_prefix: str) -> None:
    from tests.integration.util import run_ledger

    settings = Settings(store=settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    ledger = Ledger(settings)
    _apply(ledger, scenario())
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
    done = run_ledger(settings, *kafka, "project", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert _actual(settings) == _expected(settings)


def test_cli_plan_and_gaps(sqlite_settings: Settings, tmp_path: Any) -> None:
    from click.testing import CliRunner

    from ledger.cli import cli

    ledger = Ledger(sqlite_settings)
    _apply(ledger, scenario())
    LogFollower(ledger, Runner(Database(sqlite_settings))).run(until_idle=True)
    store = ["--store", sqlite_settings.store]
    shown = CliRunner().invoke(cli, [*store, "plan", "MOF", "2025-26", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["fy"] == "2025-26"
    assert CliRunner().invoke(cli, [*store, "plan", "MOF", "2030-31"]).exit_code == 1
    table = CliRunner().invoke(cli, [*store, "plan", "MOF", "2025-26"])
    assert table.exit_code == 0 and "C3" in table.stdout
    csv = CliRunner().invoke(cli, [*store, "gaps", "MOF", "--csv"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("ministry_id,officers_on_posts")
    assert CliRunner().invoke(cli, [*store, "gaps", "NOPE"]).exit_code == 1
    exported = CliRunner().invoke(cli, [*store, "export", "gaps"])
    assert {json.loads(line)["ministry_id"] for line in exported.stdout.splitlines()} == {"MOF", "MOH"}
