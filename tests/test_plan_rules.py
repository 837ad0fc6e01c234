"""Every rule of `declare_capacity_plan` (DOMAIN.md's command table), both sides, on both stores."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ledger.config import Settings
from ledger.write.application import Ledger
from tests.helpers import reference


def plan(**changes: Any) -> dict[str, Any]:
    cmd: dict[str, Any] = {"type": "declare_capacity_plan", "ministry_id": "MOF", "fy": "2025-26",
                           "min_learning_hours": 12.5,
                           "targets": [{"competency_id": "C1", "level": 3, "officers": 40},
                                       {"competency_id": "C2", "level": 2, "officers": 10}]}
    cmd.update(changes)
    return cmd


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("a plan for a ministry", plan(), "accepted", ""),
    ("no targets", plan(targets=[]), "accepted", ""),
    ("zero hours", plan(min_learning_hours=0), "accepted", ""),
    ("1000 hours", plan(min_learning_hours=1000), "accepted", ""),
    ("with occurred_at", plan(occurred_at="2025-04-02T10:00:00+05:30"), "accepted", ""),
    ("the century turn", plan(fy="2099-00"), "accepted", ""),
    ("unknown ministry", plan(ministry_id="NOPE"), "rejected", "ministry_id"),
    ("a department", plan(ministry_id="DOR"), "rejected", "not a ministry"),
    ("an organisation", plan(ministry_id="CBIC"), "rejected", "not a ministry"),
    ("fy with a wrong second year", plan(fy="2025-27"), "rejected", "fy"),
    ("fy without a hyphen", plan(fy="202526"), "rejected", "fy"),
    ("fy with full years", plan(fy="2025-2026"), "rejected", "fy"),
    ("fy as a number", plan(fy=2025), "rejected", "fy"),
    ("fy with a trailing newline", plan(fy="2025-26\n"), "rejected", "fy"),
    ("negative hours", plan(min_learning_hours=-1), "rejected", "min_learning_hours"),
    ("too many hours", plan(min_learning_hours=1000.5), "rejected", "min_learning_hours"),
    ("hours as text", plan(min_learning_hours="12"), "rejected", "min_learning_hours"),
    ("unknown competency", plan(targets=[{"competency_id": "C9", "level": 2, "officers": 5}]), "rejected",
     "targets[0].competency_id"),
    ("repeated competency", plan(targets=[{"competency_id": "C1", "level": 2, "officers": 5},
                                          {"competency_id": "C1", "level": 3, "officers": 5}]), "rejected",
     "listed twice"),
    ("level 0", plan(targets=[{"competency_id": "C1", "level": 0, "officers": 5}]), "rejected", "targets[0].level"),
    ("level 6", plan(targets=[{"competency_id": "C1", "level": 6, "officers": 5}]), "rejected", "targets[0].level"),
    ("level 2.5", plan(targets=[{"competency_id": "C1", "level": 2.5, "officers": 5}]), "rejected", "level"),
    ("no officers", plan(targets=[{"competency_id": "C1", "level": 2, "officers": 0}]), "rejected", "officers"),
    ("officers as float", plan(targets=[{"competency_id": "C1", "level": 2, "officers": 1.5}]), "rejected", "officers"),
    ("a target with an unknown field", plan(targets=[{"competency_id": "C1", "level": 2, "officers": 1, "x": 1}]),
     "rejected", "x"),
    ("201 targets", plan(targets=[{"competency_id": "C1", "level": 1, "officers": 1}] * 201), "rejected",
     "at most 200"),
    ("targets missing", {k: v for k, v in plan().items() if k != "targets"}, "rejected", "targets"),
    ("an unknown field", plan(budget=5), "rejected", "budget"),
]


@pytest.mark.parametrize("name, command, status, fragment", CASES, ids=[c[0] for c in CASES])
def test_declare_capacity_plan_rule(settings: Settings, name: str, command: dict[str, Any], status: str,
                                    fragment: str) -> None:
    ledger = Ledger(settings)
    assert {o.status for o in ledger.ingest(json.dumps(c) for c in reference())} == {"accepted"}
    outcome = ledger.execute(command)
    assert outcome.status == status, outcome
    if status == "rejected":
        assert fragment in (outcome.error or ""), outcome.error
        assert [e for _, e in ledger.iter_log() if e["type"] == "CapacityPlanDeclared"] == []


def test_two_hundred_targets_are_allowed(sqlite_settings: Settings) -> None:
    ledger = Ledger(sqlite_settings)
    skills = [{"type": "define_competency", "competency_id": f"X{i}", "name": f"Skill {i}", "kind": "domain"}
              for i in range(200)]
    assert {o.status for o in ledger.ingest(json.dumps(c) for c in [*reference(), *skills])} == {"accepted"}
    targets = [{"competency_id": f"X{i}", "level": 1 + i % 5, "officers": 1} for i in range(200)]
    assert ledger.execute(plan(targets=targets)).status == "accepted"


def test_declaring_the_same_ministry_and_year_again_is_a_revision(settings: Settings) -> None:
    ledger = Ledger(settings)
    list(ledger.ingest(json.dumps(c) for c in reference()))
    assert ledger.execute(plan()).status == "accepted"
    assert ledger.execute(plan(min_learning_hours=20, targets=[])).status == "accepted"
    assert ledger.execute(plan(fy="2024-25")).status == "accepted"  # another year: another plan
    plans = [e for _, e in Ledger(settings).iter_log() if e["type"] == "CapacityPlanDeclared"]
    assert [(p["fy"], p["version"], p["min_learning_hours"], len(p["targets"])) for p in plans] == [
        ("2025-26", 1, 12.5, 2), ("2025-26", 2, 20.0, 0), ("2024-25", 1, 12.5, 2)]
    assert plans[0]["targets"][0] == {"competency_id": "C1", "level": 3, "officers": 40}


def test_a_plan_travels_on_the_reference_topic_keyed_by_ministry_and_year() -> None:
    from ledger.kafka.client import route
    from ledger.kafka.codec import default_codec

    event = {"type": "CapacityPlanDeclared", "event_id": "e", "ministry_id": "MOF", "fy": "2025-26", "version": 1,
             "occurred_at": "2025-04-01T10:00:00+05:30", "recorded_at": "2025-04-01T04:30:00+00:00",
             "min_learning_hours": 12.0, "targets": [{"competency_id": "C1", "level": 3, "officers": 40}]}
    assert route("ledger", event) == ("ledger.reference", b"MOF:2025-26")
    assert default_codec().decode(default_codec().encode(event)) == event
