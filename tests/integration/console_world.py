"""A small ledger for the console's tests: officers of two ministries, a hostile name, a plan, tokens per role.

O4 (Finance) moves to CBIC on day 3 and back on day 6: retracting the first move alone would
leave the second a transfer to where the officer already is (the orphaning a retraction must
not cause); the browser tests correct O4, so O1 stays as the other tests expect it."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register

HOSTILE = "<script>alert('pwned')</script> & <b>Bold</b>"
NAME = "Asha Verma"
O4_NAME = "Meera Iyer"


def commands() -> list[dict[str, Any]]:
    """O1 (Finance) completes Ethics in early April and is halfway through Budgeting by mid-April."""
    return [
        *reference(),
        register("O1"),
        officer_cmd("enrol", 1, "O1", course_id="K-ETH"),
        officer_cmd("record_progress", 2, "O1", course_id="K-ETH", percent=100),
        officer_cmd("complete_course", 3, "O1", course_id="K-ETH"),
        officer_cmd("enrol", 10, "O1", course_id="K-BUD"),
        officer_cmd("record_progress", 11, "O1", course_id="K-BUD", percent=50),
        register("O2", org_id="AIIMS", post_id="P-DOC", name="Ravi Kumar", email="ravi@example.gov.in"),
        register("O3", name=HOSTILE, email="x@example.gov.in"),
        register("O4", name=O4_NAME, email="meera.iyer@example.gov.in"),
        officer_cmd("transfer_officer", 3, "O4", org_id="CBIC", post_id="P-DIR"),
        officer_cmd("transfer_officer", 6, "O4", org_id="DOR", post_id="P-US"),
        {"type": "declare_capacity_plan", "ministry_id": "MOF", "fy": "2025-26", "min_learning_hours": 2,
         "targets": [{"competency_id": "C2", "level": 3, "officers": 2}]},
    ]


def build(settings: Settings) -> dict[str, str]:
    """Apply the commands, project them, and return a token per role (by short name)."""
    ledger = Ledger(settings)
    for command in commands():
        outcome = ledger.execute(command)
        assert outcome.status == "accepted", (command, outcome)
    LogFollower(ledger, Runner(Database(settings))).run(until_idle=True)
    ledger.close()
    db = Database(settings)
    tokens = {
        "auditor": create_token(db, "audit-1", "auditor"),
        "hr_mof": create_token(db, "hr-finance", "ministry_hr", ministry_id="MOF"),
        "hr_moh": create_token(db, "hr-health", "ministry_hr", ministry_id="MOH"),
        "cbc": create_token(db, "commission", "cbc"),
        "officer": create_token(db, "asha", "officer", officer_id="O1"),
        "admin": create_token(db, "dpo", "admin"),
        "ingest": create_token(db, "feed", "ingest"),
        "registrar": create_token(db, "registry-1", "registrar"),
    }
    db.close()
    return tokens


def apply(settings: Settings, *commands: dict[str, Any]) -> list[str]:
    """Apply commands from the command line (no token) and project them; each one's status."""
    ledger = Ledger(settings)
    try:
        statuses = [ledger.execute(command).status for command in commands]
        LogFollower(ledger, Runner(Database(settings))).run(until_idle=True)
    finally:
        ledger.close()
    return statuses


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found is not None, html[:500]
    return found[1]


def sign_in(client: TestClient, token: str) -> None:
    """Sign in through the form, as a browser does; the client keeps the session cookie."""
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    answer = client.post("/console/sign-in", data={"csrf": csrf_of(page.text), "token": token},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
