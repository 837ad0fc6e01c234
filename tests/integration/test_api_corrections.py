"""Corrections through the HTTP API (DOMAIN.md "Who may correct"): per command, by role;
who made each is kept; known-at reads; hostile correction bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import at, officer_cmd, reference, register


class Api:
    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings, self.client = settings, client
        db = Database(settings)
        self.tokens = {role: create_token(db, name, role, officer_id="O1" if role == "officer" else None)
                       for role, name in (("ingest", "lms-feed"), ("registrar", "grievance-cell"),
                                          ("admin", "ops"), ("auditor", "audit"), ("officer", "asha"))}

    def post(self, role: str, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        # json.dumps escapes what UTF-8 cannot carry (a lone surrogate): the server decodes it.
        response = self.client.post("/commands", content=json.dumps(list(commands)),
                                    headers={"Authorization": f"Bearer {self.tokens[role]}",
                                             "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        return list(response.json())

    def get(self, role: str, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[role]}"})


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings, project=False)) as client:
        a = Api(settings, client)
        answers = a.post("ingest", *reference(), register("O1"), officer_cmd("enrol", 1, course_id="K-ETH"))
        assert {r["status"] for r in answers} == {"accepted"}
        yield a


def retract(versions: list[int]) -> dict[str, Any]:
    return {"type": "retract", "officer_id": "O1", "versions": versions, "reason": "recorded_in_error"}


def correct(name: str) -> dict[str, Any]:
    return {"type": "correct_officer_details", "officer_id": "O1", "name": name, "occurred_at": at(0)}


def test_an_ingest_token_cannot_correct_and_its_neighbours_are_applied(api: Api) -> None:
    answers = api.post("ingest", officer_cmd("record_progress", 2, course_id="K-ETH", percent=10),
                       retract([2]), correct("Asha Varma"),
                       officer_cmd("record_progress", 3, course_id="K-ETH", percent=20))
    assert [a["status"] for a in answers] == ["accepted", "rejected", "rejected", "accepted"]
    assert "role 'ingest' may not send retract" in answers[1]["error"]
    assert "role 'ingest' may not send correct_officer_details" in answers[2]["error"]
    assert [e["type"] for e in Ledger(api.settings).officer_events("O1")][-2:] == ["ProgressRecorded"] * 2


def test_a_registrar_corrects_and_sends_nothing_else(api: Api) -> None:
    answers = api.post("registrar", correct("Asha Varma"), officer_cmd("record_progress", 2, course_id="K-ETH", percent=10),
                       retract([2]))
    assert [a["status"] for a in answers] == ["accepted", "rejected", "accepted"]
    assert "role 'registrar' sends only corrections" in answers[1]["error"]
    assert api.post("admin", officer_cmd("enrol", 4, course_id="K-BUD"), retract([5])) == [
        {"index": 0, "status": "accepted", "error": None}, {"index": 1, "status": "accepted", "error": None}]
    with Database(api.settings).reading() as c:
        c.execute("SELECT version, role, token_name FROM correction_actors WHERE officer_id = 'O1' ORDER BY version")
        assert [tuple(r) for r in c.fetchall()] == [(3, "registrar", "grievance-cell"), (4, "registrar", "grievance-cell"),
                                                      (6, "admin", "ops")]
    # Nothing of the actor reaches the events (and so the topics).
    assert "grievance-cell" not in json.dumps(Ledger(api.settings).officer_events("O1"))


def test_a_resent_correction_is_a_duplicate_and_another_with_its_id_a_conflict(api: Api) -> None:
    first = api.post("registrar", {**correct("Asha Varma"), "command_id": "fix-1"})
    again = api.post("registrar", {**correct("Asha Varma"), "command_id": "fix-1"})
    other = api.post("registrar", {**correct("Asha Verma-Rao"), "command_id": "fix-1"})
    assert [first[0]["status"], again[0]["status"], other[0]["status"]] == ["accepted", "duplicate", "rejected"]


def test_known_at_through_the_api(api: Api) -> None:
    before = Ledger(api.settings).officer_events("O1")[-1]["recorded_at"]
    assert api.post("registrar", correct("Asha Varma"))[0]["status"] == "accepted"
    LogFollower(Ledger(api.settings), Runner(Database(api.settings))).run(until_idle=True)
    now = api.get("auditor", "/officers/O1/record?as_of=" + at(5).replace("+", "%2B"))
    then = api.get("auditor", "/officers/O1/record?known_at=" + before.replace("+", "%2B"))
    assert now.status_code == then.status_code == 200
    assert now.json()["name"] == "Asha Varma" and then.json()["name"] == "Asha Verma"
    for bad in ("yesterday", "2025-04-01T09:00:00", "%00", "%ED%A0%80", "9" * 5000):
        response = api.get("auditor", f"/officers/O1/record?known_at={bad}")
        assert response.status_code == 422 and "known_at" in response.json()["detail"], bad
    assert api.get("auditor", "/officers/O1/record?known_at=2000-01-01T00:00:00Z").status_code == 404


@pytest.mark.parametrize("body", [
    {"versions": "2"}, {"versions": [True]}, {"versions": [2.5]}, {"versions": [10**30]}, {"versions": [2] * 101},
    {"reason": "\ud800"}, {"reason": None}, {"ticket": "a b"}, {"ticket": "x" * 65}, {"ticket": "\x00"},
])
def test_hostile_retractions_are_rejected_naming_the_field(api: Api, body: dict[str, Any]) -> None:
    command = {**retract([2]), **body}
    answer = api.post("admin", command)[0]
    assert answer["status"] == "rejected" and answer["error"].split(":")[0].split("[")[0] in body, answer
    assert len(Ledger(api.settings).officer_events("O1")) == 2
