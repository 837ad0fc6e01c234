"""The HTTP API on a real store: roles, access log, bad input, and the OpenAPI contract."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.auth import create_token, read_access_log, revoke_token
from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.projections.runner import Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register


class Api:
    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.client = client
        db = Database(settings)
        self.tokens = {
            "ingest": create_token(db, "feed", "ingest"),
            "officer": create_token(db, "asha", "officer", officer_id="O1"),
            "hr_mof": create_token(db, "hr-finance", "ministry_hr", ministry_id="MOF"),
            "hr_moh": create_token(db, "hr-health", "ministry_hr", ministry_id="MOH"),
            "cbc": create_token(db, "commission", "cbc"),
            "auditor": create_token(db, "audit", "auditor"),
            "admin": create_token(db, "ops", "admin"),
            "registrar": create_token(db, "grievance-cell", "registrar"),
        }
        self.db = db

    def call(self, who: str | None, method: str, path: str, body: Any = None) -> Any:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens.get(who, who)}"}
        return self.client.request(method, path, headers=headers, json=body)

    def post(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.call("ingest", "POST", "/commands", list(commands))
        assert response.status_code == 200, response.text
        return list(response.json())

    def project(self) -> None:
        LogFollower(Ledger(self.settings), Runner(self.db)).run(until_idle=True)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings, project=False, token_ttl=0.3)) as client:
        a = Api(settings, client)
        results = a.post(*reference(), register("O1"),
                         register("O2", org_id="AIIMS", post_id="P-DOC", name="Ravi Nair", email="ravi@example.gov.in"))
        assert {r["status"] for r in results} == {"accepted"}
        a.project()
        yield a


ROLES = ["ingest", "registrar", "officer", "hr_mof", "hr_moh", "cbc", "auditor", "admin"]
# endpoint -> roles allowed (everyone else: 403, but a ministry HR token outside its
# scope gets 404, the same as for an unknown officer). O1 is under MOF, O2 under MOH.
MATRIX = {
    ("GET", "/officers/O1/record"): {"officer", "hr_mof", "auditor"},
    ("GET", "/officers/O1/competencies"): {"officer", "hr_mof", "auditor"},
    ("GET", "/officers/O1/history"): {"officer", "hr_mof", "auditor"},
    ("GET", "/officers/O2/record"): {"hr_moh", "auditor"},
    ("GET", "/officers/O2/history"): {"hr_moh", "auditor"},
    ("GET", "/ministries/MOF"): {"hr_mof", "cbc", "auditor"},
    ("GET", "/ministries/MOH"): {"hr_moh", "cbc", "auditor"},
    ("GET", "/status"): {"auditor", "admin"},
    ("POST", "/commands"): {"ingest", "registrar", "admin"},  # which commands: decided per command
    ("POST", "/tokens"): {"admin"},
}


def _probe(api: Api, who: str | None, method: str, path: str) -> int:
    body: Any = None
    if path == "/commands":
        body = officer_cmd("enrol", 30, "O2", course_id="K-BUD")
    elif path == "/tokens":
        body = {"name": f"t-{time.monotonic_ns()}", "role": "cbc"}
    return int(api.call(who, method, path, body).status_code)


def test_every_role_against_every_endpoint(api: Api) -> None:
    for (method, path), allowed in MATRIX.items():
        assert _probe(api, None, method, path) == 401, path
        assert _probe(api, "lrl_0000_forged", method, path) == 401, path
        for role in ROLES:
            expected = 200 if role in allowed else 403
            if expected == 403 and role.startswith("hr_") and path.startswith("/officers/"):
                expected = 404
            assert _probe(api, role, method, path) == expected, (role, method, path)


def test_ministry_hr_follows_the_officer_after_a_transfer(api: Api) -> None:
    assert api.call("hr_mof", "GET", "/officers/O1/record").status_code == 200
    assert api.post(officer_cmd("transfer_officer", 5, "O1", org_id="AIIMS", post_id="P-DOC"))[0]["status"] == "accepted"
    api.project()
    assert api.call("hr_mof", "GET", "/officers/O1/record").status_code == 404
    assert api.call("hr_moh", "GET", "/officers/O1/record").status_code == 200
    assert api.call("officer", "GET", "/officers/O1/record").status_code == 200


def test_a_revoked_token_is_refused(api: Api) -> None:
    assert api.call("cbc", "GET", "/ministries/MOF").status_code == 200
    revoke_token(api.db, "commission")
    time.sleep(0.35)  # authentication results are reused for token_ttl seconds
    assert api.call("cbc", "GET", "/ministries/MOF").status_code == 401


def test_each_personal_data_read_leaves_exactly_one_access_log_entry(api: Api) -> None:
    before = len(read_access_log(api.db))
    reads = [("officer", "/officers/O1/record", "record"), ("auditor", "/officers/O1/history", "history"),
             ("hr_moh", "/officers/O2/record", "record"), ("auditor", "/officers/O1/record?as_of=2025-04-01T12:00:00%2B05:30", "record")]
    for who, path, _ in reads:
        assert api.call(who, "GET", path).status_code == 200
    # A competency profile is personal data too; aggregates and a denied read are not.
    assert api.call("auditor", "GET", "/officers/O1/competencies").status_code == 200
    assert api.call("cbc", "GET", "/ministries/MOF").status_code == 200
    assert api.call("hr_moh", "GET", "/officers/O1/record").status_code == 404
    log = read_access_log(api.db)[before:]
    assert [(e["token_name"], e["officer_id"], e["endpoint"]) for e in log] == [
        ("asha", "O1", "record"), ("audit", "O1", "history"), ("hr-health", "O2", "record"), ("audit", "O1", "record"),
        ("audit", "O1", "competencies")]
    # The log is append-only in the database itself.
    with pytest.raises(Exception, match="append-only"):
        with api.db.transaction() as c:
            c.execute("DELETE FROM access_log")


def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(api: Api) -> None:
    store = Ledger(api.settings)
    before = store.recorder.max_notification_id()
    headers = {"Authorization": f"Bearer {api.tokens['ingest']}", "Content-Type": "application/json"}
    assert api.client.post("/commands", content=b"{not json", headers=headers).status_code == 400
    assert api.client.post("/commands", content=b"x" * (1024 * 1024 + 1), headers=headers).status_code == 413
    assert api.client.post("/commands", content=b"[]", headers=headers).status_code == 422
    not_objects = api.client.post("/commands", content=b"[1, 2]", headers=headers)  # each its own answer
    assert not_objects.status_code == 200 and [a["status"] for a in not_objects.json()] == ["rejected"] * 2
    rejected = api.post({"type": "enrol", "officer_id": "O1", "course_id": "K-BUD", "occurred_at": 5})[0]
    assert rejected["status"] == "rejected" and rejected["error"].startswith("occurred_at")
    unknown = api.post(officer_cmd("enrol", 3, "NOBODY", course_id="K-BUD"))[0]
    assert unknown["status"] == "rejected" and unknown["error"].startswith("officer_id")
    assert store.recorder.max_notification_id() == before
    assert api.call("auditor", "GET", "/officers/NOBODY/record").status_code == 404
    # An id that is not a valid id answers like an unknown officer (issue 11).
    assert api.call("auditor", "GET", "/officers/bad%20id/record").status_code == 404
    assert api.call("auditor", "GET", "/officers/O1/record?as_of=yesterday").status_code == 422


def test_one_rejected_command_in_an_array_does_not_affect_the_others(api: Api) -> None:
    results = api.post(officer_cmd("enrol", 3, "O1", course_id="K-ETH"),
                       officer_cmd("enrol", 3, "O1", course_id="K-404"),
                       {**officer_cmd("enrol", 3, "O2", course_id="K-ETH"), "command_id": "web-1"})
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    again = api.post({**officer_cmd("enrol", 3, "O2", course_id="K-ETH"), "command_id": "web-1"})
    assert again[0]["status"] == "duplicate"


def test_the_openapi_document_lists_every_endpoint(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert set(spec["paths"]) >= {"/commands", "/officers/{officer_id}/record", "/officers/{officer_id}/competencies",
                                  "/officers/{officer_id}/history", "/ministries/{ministry_id}", "/status", "/healthz"}
    assert api.client.get("/docs").status_code == 200


def test_admin_erases_through_the_api_and_only_admin_may(api: Api) -> None:
    body = {"reason": "data principal's request"}
    for role in ("ingest", "officer", "hr_mof", "cbc", "auditor"):
        assert api.call(role, "POST", "/officers/O1/erase", body).status_code == 403
    assert api.call("admin", "POST", "/officers/NOBODY/erase", body).status_code == 404
    assert api.call("admin", "POST", "/officers/O1/erase", {"reason": ""}).status_code == 422
    assert api.call("admin", "POST", "/officers/O1/erase", body).json() == {"officer_id": "O1", "erased": True, "scrubbed": True}
    api.project()
    record = api.call("auditor", "GET", "/officers/O1/record").json()
    assert record["name"] is None and record["email"] is None
    assert api.post(officer_cmd("enrol", 40, "O1", course_id="K-BUD"))[0]["status"] == "rejected"


def test_admin_creates_and_revokes_tokens_through_the_api(api: Api) -> None:
    made = api.call("admin", "POST", "/tokens", {"name": "hr-2", "role": "ministry_hr", "ministry_id": "MOH"})
    assert made.status_code == 200
    token = made.json()["token"]
    assert api.call(token, "GET", "/ministries/MOH").status_code == 200
    assert api.call("admin", "POST", "/tokens", {"name": "x", "role": "ministry_hr"}).status_code == 422
    assert api.call("admin", "DELETE", "/tokens/hr-2").status_code == 200
    time.sleep(0.35)
    assert api.call(token, "GET", "/ministries/MOH").status_code == 401
