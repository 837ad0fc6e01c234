"""Small builders for command streams used across tests, and a look at stored data keys."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from ledger.store.postgres import LedgerPostgresRecorder
from ledger.store.sqlite import LedgerSQLiteRecorder
from ledger.write.application import Ledger

T = TypeVar("T")

T0 = "2025-04-01T09:30:00+05:30"


def at(day: int, hour: int = 9) -> str:
    """An instant in April-May 2025 (IST), ``day`` days after 1 April."""
    from datetime import datetime, timedelta, timezone

    base = datetime(2025, 4, 1, hour, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    return (base + timedelta(days=day)).isoformat()


def reference() -> list[dict[str, Any]]:
    """A small world: a ministry, a department, an organisation, competencies, posts, courses."""
    return [
        {"type": "define_organisation", "org_id": "MOF", "name": "Ministry of Finance", "kind": "ministry"},
        {"type": "define_organisation", "org_id": "MOH", "name": "Ministry of Health", "kind": "ministry"},
        {"type": "define_organisation", "org_id": "DOR", "name": "Department of Revenue", "kind": "department", "parent_id": "MOF"},
        {"type": "define_organisation", "org_id": "CBIC", "name": "Indirect Taxes Board", "kind": "organisation", "parent_id": "DOR"},
        {"type": "define_organisation", "org_id": "AIIMS", "name": "AIIMS", "kind": "organisation", "parent_id": "MOH"},
        {"type": "define_competency", "competency_id": "C1", "name": "Budgeting", "kind": "functional"},
        {"type": "define_competency", "competency_id": "C2", "name": "Integrity", "kind": "behavioural"},
        {"type": "define_competency", "competency_id": "C3", "name": "Taxation", "kind": "domain"},
        {
            "type": "define_post", "post_id": "P-US", "org_id": "DOR", "title": "Under Secretary",
            "roles": [{"name": "Budget", "activities": [
                {"name": "Prepare estimates", "competencies": [{"competency_id": "C1", "level": 3}]},
                {"name": "Audit", "competencies": [{"competency_id": "C1", "level": 4}, {"competency_id": "C2", "level": 2}]},
            ]}],
        },
        {"type": "define_post", "post_id": "P-DIR", "org_id": "CBIC", "title": "Director", "roles": []},
        {"type": "define_post", "post_id": "P-DOC", "org_id": "AIIMS", "title": "Medical Officer", "roles": []},
        {"type": "publish_course", "course_id": "K-BUD", "title": "Budgeting", "provider": "NIFM",
         "duration_hours": 12.5, "competencies": [{"competency_id": "C1", "level": 2}],
         "assessment": {"pass_mark": 60, "max_attempts": 2}},
        {"type": "publish_course", "course_id": "K-ETH", "title": "Ethics", "provider": "LBSNAA",
         "duration_hours": 4, "competencies": [{"competency_id": "C2", "level": 3}], "assessment": None},
    ]


def register(officer_id: str = "O1", day: int = 0, **extra: Any) -> dict[str, Any]:
    cmd = {"type": "register_officer", "officer_id": officer_id, "name": "Asha Verma",
           "email": "asha.verma@example.gov.in", "org_id": "DOR", "post_id": "P-US", "occurred_at": at(day)}
    cmd.update(extra)
    return cmd


def officer_cmd(kind: str, day: int, officer_id: str = "O1", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "officer_id": officer_id, "occurred_at": at(day), **fields}


def lines(commands: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(c) for c in commands]


def data_key(ledger: Ledger, officer_id: str) -> bytes | None:
    """The officer's data key as the store holds it (None once erased)."""
    recorder = ledger.recorder
    assert isinstance(recorder, LedgerSQLiteRecorder | LedgerPostgresRecorder)
    return recorder.select_key(officer_id)


def present(value: T | None) -> T:
    """``value``, failing the test if it is None (a record or profile that must exist)."""
    assert value is not None
    return value


def correct_and_retract(ledger: Ledger, officer_id: str) -> None:
    """Give ``officer_id`` one detail correction and retract its latest business event
    (always valid: nothing comes after it), so a store holds both kinds of correction."""
    events = ledger.officer_events(officer_id)
    registered = events[0]["occurred_at"]
    done = ledger.execute({"type": "correct_officer_details", "officer_id": officer_id,
                           "name": "Corrected Name", "occurred_at": registered})
    assert done.status == "accepted", done
    last = max(e["version"] for e in events if e["type"] != "EventsRetracted")
    assert last > 1, "the officer has nothing but its registration"
    done = ledger.execute({"type": "retract", "officer_id": officer_id, "versions": [last],
                           "reason": "recorded_in_error"})
    assert done.status == "accepted", done


def issue_credentials(settings: Any) -> int:
    """Run the issuing worker (what `ledger issue` runs) until the store's log is signed and stored;
    returns how many log events it read."""
    from ledger.credentials.issuer import for_settings
    from ledger.credentials.worker import IssuingWorker
    from ledger.store.db import Database

    return IssuingWorker(Ledger(settings), Database(settings), for_settings(settings)).run(until_idle=True).events
