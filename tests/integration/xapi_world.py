"""A small ledger with an LRS for the xAPI tests: reference data, officer O1, tokens per role."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fastapi.testclient import TestClient

from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import reference, register

HOMEPAGE = "https://igot.example.gov.in"
BASE = "https://igot.example.gov.in/courses"
VERBS = "http://adlnet.gov/expapi/verbs/"
V2 = {"X-Experience-API-Version": "2.0.0"}


def lrs_settings(settings: Settings) -> Settings:
    return settings.with_overrides(xapi_homepage=HOMEPAGE, xapi_activity_base=BASE)


def build(settings: Settings) -> dict[str, str]:
    """Reference data and officer O1 (Asha Verma); a token per role (by name)."""
    ledger = Ledger(settings)
    for command in [*reference(), register("O1")]:
        assert ledger.execute(command).status == "accepted"
    ledger.close()
    db = Database(settings)
    tokens = {name: create_token(db, name, role) for name, role in
              (("lms-a", "lrs"), ("lms-b", "lrs"), ("audit", "auditor"), ("feed", "ingest"), ("dpo", "admin"))}
    db.close()
    return tokens


def basic(name: str, token: str) -> dict[str, str]:
    return {**V2, "Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


def statement(verb: str = "experienced", activity: str = "http://example.com/a/1", **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()),
            "actor": {"objectType": "Agent", "name": "Ravi Learner", "mbox": "mailto:ravi.learner@example.org"},
            "verb": {"id": VERBS + verb, "display": {"en-US": verb}},
            "object": {"objectType": "Activity", "id": activity}, **extra}


def officer_statement(verb: str, course: str = "K-BUD", officer: str = "O1", **extra: Any) -> dict[str, Any]:
    return {**statement(verb, f"{BASE}/{course}", **extra),
            "actor": {"objectType": "Agent", "name": "Asha Verma", "account": {"homePage": HOMEPAGE, "name": officer}}}


def post(client: TestClient, headers: dict[str, str], body: Any) -> Any:
    return client.post("/xapi/statements", json=body, headers=headers)
