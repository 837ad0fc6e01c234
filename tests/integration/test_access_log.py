"""An officer's access log (DPDP Act 2023, s. 11): GET /officers/{id}/access-log and the console's table.

The officer reads their own, auditors any officer's: newest first, `at`, `role`, the
reader's `ministry_id` (a ministry HR token's), and `what` was read; token names (staff
identities) only in an auditor's answer. Everyone else is refused as on the other officer
endpoints, and a refused read leaves no entry. Reading the log is logged too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.auth import create_token, read_access_log, revoke_token
from ledger.config import Settings
from ledger.domain.values import parse_instant
from ledger.store.db import Database
from tests.conftest import migrated
from tests.integration.console_world import build, sign_in

STAFF = ("audit-1", "hr-finance", "hr-health", "commission", "dpo", "feed")  # token names in console_world
HOSTILE_IDS = ["O1%0A", "O1%00", "%ED%A0%80", "O1%20", "%C3%A9", "-O1", "O" * 65, "O1%5Cud800", "O1%3B%20DROP"]


class World:
    def __init__(self, settings: Settings, client: TestClient, tokens: dict[str, str]) -> None:
        self.settings, self.client, self.tokens = settings, client, tokens
        self.db = Database(settings)

    def get(self, who: str | None, path: str) -> Any:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens.get(who, who)}"}
        return self.client.get(path, headers=headers)

    def log(self, who: str, officer_id: str = "O1", query: str = "") -> list[dict[str, Any]]:
        answer = self.get(who, f"/officers/{officer_id}/access-log{query}")
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()
        return entries

    def entries(self, officer_id: str) -> int:
        return len(read_access_log(self.db, officer_id))


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    settings = migrated(Settings(store=settings.store, signing_key=str(tmp_path / "signing-key.pem")))
    tokens = build(settings)
    db = Database(settings)
    tokens["officer2"] = create_token(db, "ravi", "officer", officer_id="O2")
    tokens["scoped_auditor"] = create_token(db, "audit-scoped", "auditor", ministry_id="MOH")  # a scope it has no use for
    db.close()
    with TestClient(create_app(settings, project=False, token_ttl=0.0)) as client:
        world = World(settings, client, tokens)
        yield world
        world.db.close()


def _read_o1(world: World) -> None:
    """Three staff reads and the officer's own, in this order; one refused read that leaves nothing."""
    assert world.get("hr_mof", "/officers/O1/record").status_code == 200
    assert world.get("auditor", "/officers/O1/history").status_code == 200
    assert world.get("hr_moh", "/officers/O1/record").status_code == 404  # not theirs: no entry
    assert world.get("officer", "/officers/O1/competencies").status_code == 200
    assert world.get("scoped_auditor", "/officers/O1/credentials").status_code == 200


def test_the_officer_sees_who_read_their_data_newest_first_without_names(world: World) -> None:
    _read_o1(world)
    answer = world.get("officer", "/officers/O1/access-log")
    assert answer.status_code == 200, answer.text
    entries = answer.json()
    assert [(e["role"], e["ministry_id"], e["what"]) for e in entries] == [
        ("auditor", None, "credentials"), ("officer", None, "competencies"), ("auditor", None, "history"),
        ("ministry_hr", "MOF", "record")]
    assert all(set(e) == {"at", "role", "ministry_id", "what"} for e in entries)
    instants = [parse_instant(e["at"], "at") for e in entries]
    assert instants == sorted(instants, reverse=True)
    for name in (*STAFF, "asha", "audit-scoped"):  # no token name anywhere in the officer's answer
        assert name not in answer.text, name


def test_the_auditor_sees_the_token_names(world: World) -> None:
    _read_o1(world)
    entries = world.log("auditor")
    assert [(e["token_name"], e["role"], e["ministry_id"], e["what"]) for e in entries] == [
        ("audit-scoped", "auditor", None, "credentials"), ("asha", "officer", None, "competencies"),
        ("audit-1", "auditor", None, "history"), ("hr-finance", "ministry_hr", "MOF", "record")]
    assert world.log("auditor", "O2") == []  # nobody read O2 yet
    [again] = world.log("auditor", "O2")
    assert again == {"at": again["at"], "role": "auditor", "ministry_id": None, "what": "access-log",
                     "token_name": "audit-1"}


def test_reading_the_access_log_is_logged_after_the_answer(world: World) -> None:
    before = world.entries("O1")
    assert world.log("officer") == []  # nothing read yet; this read is not in its own answer
    assert world.entries("O1") == before + 1
    assert [e["what"] for e in world.log("officer")] == ["access-log"]
    assert [(e["token_name"], e["what"]) for e in world.log("auditor")] == [("asha", "access-log"), ("asha", "access-log")]
    assert [(e["role"], e["what"]) for e in world.log("officer")][0] == ("auditor", "access-log")


def test_every_other_role_and_another_officer_are_refused_and_leave_nothing(world: World) -> None:
    before = world.entries("O1")
    for who in ("hr_mof", "hr_moh", "cbc", "admin", "ingest", "officer2"):
        answer = world.get(who, "/officers/O1/access-log")
        assert answer.status_code == 403, (who, answer.text)
        assert "O1" not in answer.text or who == "officer2"
    assert world.get("officer2", "/officers/O2/access-log").status_code == 200  # their own
    for stranger in (None, "lrl_0000_forged"):
        assert world.get(stranger, "/officers/O1/access-log").status_code == 401
    assert world.entries("O1") == before
    # A ministry HR token is refused its own officers' log and others' alike: the answer tells it nothing.
    mine, theirs = world.get("hr_mof", "/officers/O1/access-log"), world.get("hr_mof", "/officers/O2/access-log")
    unknown = world.get("hr_mof", "/officers/NOBODY/access-log")
    assert mine.status_code == theirs.status_code == unknown.status_code == 403
    assert mine.json() == theirs.json() == unknown.json()


def test_a_revoked_readers_entries_keep_their_ministry(world: World) -> None:
    assert world.get("hr_mof", "/officers/O1/record").status_code == 200
    revoke_token(world.db, "hr-finance")
    assert world.get("hr_mof", "/officers/O1/record").status_code == 401
    assert [(e["role"], e["ministry_id"]) for e in world.log("officer")] == [("ministry_hr", "MOF")]


@pytest.mark.parametrize("officer_id", HOSTILE_IDS)
def test_a_hostile_id_answers_like_an_unknown_officer(world: World, officer_id: str) -> None:
    unknown = world.get("auditor", "/officers/NOBODY/access-log")
    assert unknown.status_code == 404
    answer = world.get("auditor", f"/officers/{officer_id}/access-log")
    assert answer.status_code == 404, (officer_id, answer.text)
    assert answer.json()["detail"].endswith(unknown.json()["detail"].removeprefix("no officer 'NOBODY'"))
    assert world.get("officer", f"/officers/{officer_id}/access-log").status_code == 403  # not theirs
    assert world.get("cbc", f"/officers/{officer_id}/access-log").status_code == 403


def test_paging_with_limit_and_before(world: World) -> None:
    for _ in range(5):
        assert world.get("hr_mof", "/officers/O1/record").status_code == 200
    everything = world.log("auditor", query="?limit=1000")
    assert [e["what"] for e in everything] == ["record"] * 5
    first = world.log("auditor", query="?limit=2")  # the read of everything (logged), then the newest record
    assert first[0]["what"] == "access-log" and first[1] == everything[0]
    rest = world.log("auditor", query=f"?limit=1000&before={first[-1]['at'].replace('+', '%2B')}")
    assert rest == everything[1:]  # strictly before the boundary: the listings' own reads are newer
    for query in ("?limit=0", "?limit=1001", "?limit=x", "?before=yesterday", "?before=%00", "?before=" + "9" * 5000):
        answer = world.get("auditor", f"/officers/O1/access-log{query}")
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["detail"].split(":")[0] in ("query.limit", "before"), answer.json()
    # A refused caller is refused first, whatever the query says.
    assert world.get("cbc", "/officers/O1/access-log?limit=0").status_code == 403
    assert world.get("hr_mof", "/officers/O1/access-log?before=yesterday").status_code == 403


def test_an_erased_officers_log_stays_readable(world: World) -> None:
    assert world.get("hr_mof", "/officers/O1/record").status_code == 200
    erase = world.client.post("/officers/O1/erase", json={"reason": "data_principal_request"},
                              headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    assert erase.status_code == 200, erase.text
    assert [e["what"] for e in world.log("auditor")] == ["record"]
    assert [e["role"] for e in world.log("officer")][-1] == "ministry_hr"


def test_the_openapi_document_describes_the_access_log(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    operation = spec["paths"]["/officers/{officer_id}/access-log"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["type"] == "array" and schema["items"]["$ref"].endswith("/AccessEntry")
    entry = spec["components"]["schemas"]["AccessEntry"]
    assert set(entry["required"]) == {"at", "role", "ministry_id", "what"}
    assert "token_name" in entry["properties"] and "auditor" in entry["properties"]["token_name"]["description"]
    assert {p["name"] for p in operation["parameters"]} == {"officer_id", "limit", "before"}
    assert {"401", "403", "404", "422"} <= set(operation["responses"])


def _readers_table(page: str) -> str:
    start = page.index('id="readers-h"')
    return page[start:page.index("</table>", start)]


def test_the_console_shows_who_read_the_record_to_the_officer_and_to_auditors(world: World) -> None:
    _read_o1(world)
    client = world.client
    sign_in(client, world.tokens["officer"])
    page = client.get("/console/officers/O1").text
    table = _readers_table(page)
    assert "Who read this record" in table and "<th scope=\"col\">Token</th>" not in table
    assert "<td>ministry_hr</td><td>MOF</td><td>record</td>" in table
    assert "<td>officer</td><td>—</td><td>record, competencies and history (console)</td>" in table
    for name in (*STAFF, "asha", "audit-scoped"):
        assert name not in table, name
    client.cookies.clear()
    sign_in(client, world.tokens["auditor"])
    table = _readers_table(client.get("/console/officers/O1").text)
    assert "<th scope=\"col\">Token</th>" in table
    assert "<td>hr-finance</td><td>ministry_hr</td><td>MOF</td><td>record</td>" in table
    assert "<td>asha</td><td>officer</td>" in table and "<td>audit-1</td><td>auditor</td>" in table
    client.cookies.clear()
    sign_in(client, world.tokens["hr_mof"])
    page = client.get("/console/officers/O1").text
    assert 'id="readers"' not in page and "Who read this record" not in page


def test_the_console_table_is_newest_first(world: World) -> None:
    _read_o1(world)
    sign_in(world.client, world.tokens["auditor"])
    table = _readers_table(world.client.get("/console/officers/O1").text)
    shown = [datetime.fromisoformat(t) for t in re.findall(r'<time datetime="([^"]+)">', table)]
    assert len(shown) == 5 and shown == sorted(shown, reverse=True)
