"""POST /officers/{id}/erase and the console's erasure take a reason code and an optional ticket id, nothing else.

Whatever else is sent is 422 naming the field, and nothing is erased: no event is
written, the officer is not marked erased, and the name is still on the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.config import Settings
from ledger.write.application import Ledger
from tests.conftest import migrated
from tests.integration.console_world import NAME, build, csrf_of, sign_in

CODES = ["data_principal_request", "purpose_served", "legal_order", "other"]


class World:
    def __init__(self, settings: Settings, client: TestClient, tokens: dict[str, str]) -> None:
        self.settings, self.client, self.tokens = settings, client, tokens
        self.store = Ledger(settings)  # one, kept: what the store holds, whatever the API did

    def erase(self, officer_id: str, body: Any, role: str = "admin") -> Any:
        return self.client.post(f"/officers/{officer_id}/erase", json=body,
                                headers={"Authorization": f"Bearer {self.tokens[role]}"})

    def position(self) -> int:
        return int(self.store.recorder.max_notification_id() or 0)

    def erased(self, officer_id: str) -> bool:
        access = self.store.access(officer_id)
        assert access is not None
        return bool(access.erased)

    def last_event(self, officer_id: str) -> dict[str, Any]:
        history = self.client.get(f"/officers/{officer_id}/history",
                                  headers={"Authorization": f"Bearer {self.tokens['auditor']}"})
        assert history.status_code == 200, history.text
        last: dict[str, Any] = history.json()[-1]
        return last


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    settings = migrated(Settings(store=settings.store, signing_key=str(tmp_path / "signing-key.pem")))
    tokens = build(settings)
    with TestClient(create_app(settings, project=False, token_ttl=0.0)) as client:
        world = World(settings, client, tokens)
        yield world
        world.store.close()


BAD_BODIES: list[tuple[Any, str]] = [
    ({"reason": "DPDP request"}, "reason"),
    ({"reason": "asked by Asha Verma"}, "reason"),
    ({"reason": ""}, "reason"),
    ({"reason": "OTHER"}, "reason"),
    ({"reason": 3}, "reason"),
    ({"reason": None}, "reason"),
    ({}, "reason"),
    ({"ticket": "GR-1"}, "reason"),
    ({"reason": "other", "ticket": "GR 1"}, "ticket"),
    ({"reason": "other", "ticket": ""}, "ticket"),
    ({"reason": "other", "ticket": "GR-1\n"}, "ticket"),
    ({"reason": "other", "ticket": "T" * 65}, "ticket"),
    ({"reason": "other", "ticket": 42}, "ticket"),
    ({"reason": "other", "note": "the officer phoned"}, "note"),
    (["other"], "body"),
    ("other", "body"),
]


def test_a_body_that_is_not_a_code_and_an_id_is_422_naming_the_field_and_erases_nothing(world: World) -> None:
    before = world.position()
    for body, field in BAD_BODIES:
        answer = world.erase("O1", body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"].startswith(f"{field}:"), (body, answer.json())
        assert "Asha" not in answer.json()["detail"]  # what was sent instead of a code is not echoed
    assert world.position() == before and not world.erased("O1")
    record = world.client.get("/officers/O1/record", headers={"Authorization": f"Bearer {world.tokens['auditor']}"})
    assert record.json()["name"] == NAME


def test_authorization_comes_before_the_body(world: World) -> None:
    for role in ("auditor", "hr_mof", "officer", "cbc", "ingest"):
        assert world.erase("O1", {"reason": "free text"}, role).status_code == 403, role
    assert world.erase("NOBODY", {"reason": "other"}).status_code == 404
    assert world.erase("bad%20id", {"reason": "other"}).status_code == 404


def test_a_code_and_a_ticket_are_recorded_in_officer_erased(world: World) -> None:
    answer = world.erase("O1", {"reason": "legal_order", "ticket": "HC-2025:17"})
    assert answer.status_code == 200 and answer.json()["erased"] is True, answer.text
    last = world.last_event("O1")
    assert (last["type"], last["reason"], last["ticket"]) == ("OfficerErased", "legal_order", "HC-2025:17")
    answer = world.erase("O2", {"reason": "purpose_served", "ticket": None})
    assert answer.status_code == 200, answer.text
    assert (world.last_event("O2")["reason"], world.last_event("O2").get("ticket")) == ("purpose_served", None)
    assert world.erase("O1", {"reason": "other"}).status_code == 422  # already erased: refused as before


def test_the_openapi_document_lists_the_codes_and_the_ticket(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    body = spec["paths"]["/officers/{officer_id}/erase"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["reason"]["enum"] == CODES and body["required"] == ["reason"]
    ticket = body["properties"]["ticket"]["anyOf"]
    assert {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"} in ticket and {"type": "null"} in ticket
    assert body["additionalProperties"] is False


def _console_as_admin(world: World) -> str:
    world.client.cookies.clear()
    sign_in(world.client, world.tokens["admin"])
    form = world.client.get("/console/erase")
    assert form.status_code == 200
    for code in CODES:
        assert f'<option value="{code}">' in form.text
    assert 'id="ticket" name="ticket"' in form.text and "<textarea" not in form.text
    return csrf_of(form.text)


def test_the_console_erasure_needs_a_code_and_a_valid_ticket(world: World) -> None:
    csrf = _console_as_admin(world)
    before = world.position()
    for fields in ({}, {"reason": ""}, {"reason": "DPDP request"}, {"reason": "other", "ticket": "GR 17"},
                   {"reason": "other", "ticket": "x" * 65}):
        for step, extra in (("/console/erase/confirm", {}), ("/console/erase", {"confirm": "yes"})):
            answer = world.client.post(step, data={"csrf": csrf, "officer_id": "O1", **fields, **extra})
            assert answer.status_code == 422, (step, fields, answer.text[:300])
    assert world.position() == before and not world.erased("O1")
    confirm = world.client.post("/console/erase/confirm", data={"csrf": csrf, "officer_id": "O1",
                                                                 "reason": "purpose_served", "ticket": ""})
    assert confirm.status_code == 200 and "without a ticket" in confirm.text
    assert '<input type="hidden" name="reason" value="purpose_served">' in confirm.text
    done = world.client.post("/console/erase", data={"csrf": csrf, "officer_id": "O1", "reason": "purpose_served",
                                                     "ticket": " ", "confirm": "yes"})
    assert done.status_code == 200, done.text
    last = world.last_event("O1")
    assert (last["type"], last["reason"], last.get("ticket")) == ("OfficerErased", "purpose_served", None)
