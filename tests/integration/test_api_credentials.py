"""Credentials over HTTP on a real store: who may read them, the access log, the public issuer.

The API is given an issuer key path that does not exist (in a folder that does not either):
it serves what the issuing worker stored, never loads or creates a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.auth import create_token, read_access_log
from ledger.config import Settings
from ledger.credentials.issue import CredentialIssuer
from ledger.credentials.issuer import for_settings
from ledger.credentials.verify import verify_credential
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import issue_credentials
from tests.test_credentials import career


class Api:
    def __init__(self, settings: Settings, client: TestClient) -> None:
        self.settings = settings
        self.client = client
        self.db = Database(settings)
        self.tokens = {
            "ingest": create_token(self.db, "feed", "ingest"),
            "officer": create_token(self.db, "asha", "officer", officer_id="O1"),
            "hr_mof": create_token(self.db, "hr-finance", "ministry_hr", ministry_id="MOF"),
            "cbc": create_token(self.db, "commission", "cbc"),
            "auditor": create_token(self.db, "audit", "auditor"),
            "admin": create_token(self.db, "ops", "admin"),
        }

    def get(self, who: str | None, path: str) -> Any:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens.get(who, who)}"}
        return self.client.get(path, headers=headers)


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    signer = replace(settings, issuer_key=str(tmp_path / "issuer.pem"))  # the issuing worker's
    server = replace(settings, issuer_key=str(tmp_path / "no-such-folder" / "issuer.pem"))  # the API's: none
    with TestClient(create_app(server, project=False, token_ttl=0.3)) as client:
        a = Api(signer, client)
        answers = client.post("/commands", json=career(), headers={"Authorization": f"Bearer {a.tokens['ingest']}"})
        assert answers.status_code == 200 and {r["status"] for r in answers.json()} == {"accepted"}, answers.text
        issue_credentials(signer)
        yield a
    assert not (tmp_path / "no-such-folder").exists()  # the API never created a key


def test_only_the_officer_and_the_auditor_read_credentials(api: Api) -> None:
    path = "/officers/O1/credentials"
    assert api.get(None, path).status_code == 401
    assert api.get("lrl_0000_forged", path).status_code == 401
    for role in ("ingest", "hr_mof", "cbc", "admin"):
        assert api.get(role, path).status_code == 403, role
    assert api.get("officer", "/officers/O2/credentials").status_code == 403  # not its own
    mine, audited = api.get("officer", path), api.get("auditor", path)
    assert mine.status_code == audited.status_code == 200
    assert mine.json() == audited.json()
    assert [c["type"][1] for c in mine.json()] == ["AchievementCredential", "AchievementCredential", "ClrCredential"]


def test_they_are_the_exported_credentials_and_verify(api: Api) -> None:
    served = api.get("auditor", "/officers/O1/credentials").json()
    exported = CredentialIssuer(Ledger(api.settings), for_settings(api.settings)).for_officer("O1")
    assert served == exported
    issuer = api.get(None, "/issuer").json()
    for credential in served:
        assert verify_credential(credential)["issuer"] == issuer["issuer"]["id"]


def test_unknown_and_invalid_officers_answer_alike(api: Api) -> None:
    unknown = api.get("auditor", "/officers/NOBODY/credentials")
    invalid = api.get("auditor", "/officers/bad%20id/credentials")
    assert unknown.status_code == invalid.status_code == 404
    assert unknown.json()["detail"] == "no officer 'NOBODY' that this token may read"
    assert invalid.json()["detail"] == "no officer 'bad id' that this token may read"


def test_each_read_leaves_one_access_log_entry_and_a_denied_one_none(api: Api) -> None:
    before = len(read_access_log(api.db))
    assert api.get("officer", "/officers/O1/credentials").status_code == 200
    assert api.get("auditor", "/officers/O2/credentials").status_code == 200
    assert api.get("hr_mof", "/officers/O1/credentials").status_code == 403
    assert api.get("auditor", "/officers/NOBODY/credentials").status_code == 404
    log = read_access_log(api.db)[before:]
    assert [(e["token_name"], e["officer_id"], e["endpoint"]) for e in log] == [
        ("asha", "O1", "credentials"), ("audit", "O2", "credentials")]


def test_an_erased_officer_gets_an_empty_list(api: Api) -> None:
    erased = api.client.post("/officers/O2/erase", json={"reason": "data_principal_request"},
                             headers={"Authorization": f"Bearer {api.tokens['admin']}"})
    assert erased.status_code == 200
    response = api.get("auditor", "/officers/O2/credentials")
    assert (response.status_code, response.json()) == (200, [])


def test_get_issuer_only_reads_it_never_creates_the_issuer_key(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "issuer.pem"
    fresh = replace(settings, issuer_key=str(path))
    with TestClient(create_app(fresh, project=False)) as client:
        before = client.get("/issuer")
        assert before.status_code == 503 and "published no key yet" in before.json()["detail"]
        assert str(tmp_path) not in before.text
        assert not path.exists() and not path.parent.exists()
        assert client.get("/officers/O1/credentials").status_code == 401  # nothing signs on a request either
        issue_credentials(fresh)  # the worker creates the key where it signs, and publishes the public part
        after = client.get("/issuer")
        assert after.status_code == 200 and after.json() == for_settings(fresh).public_view()


def test_a_lagging_issuer_serves_what_it_stored_and_says_how_far_behind(api: Api) -> None:
    before = api.get("auditor", "/officers/O1/credentials")
    assert before.headers["Ledger-Credentials-Lag"] == "0"
    retract = {"type": "retract", "officer_id": "O1", "versions": [9], "reason": "recorded_in_error"}
    answers = api.client.post("/commands", json=[retract], headers={"Authorization": f"Bearer {api.tokens['admin']}"})
    assert answers.status_code == 200 and answers.json()[0]["status"] == "accepted"
    lagging = api.get("auditor", "/officers/O1/credentials")
    assert lagging.json() == before.json() and int(lagging.headers["Ledger-Credentials-Lag"]) == 1
    through = int(lagging.headers["Ledger-Credentials-Through"])
    issue_credentials(api.settings)
    after = api.get("auditor", "/officers/O1/credentials")
    assert after.headers["Ledger-Credentials-Lag"] == "0" and int(after.headers["Ledger-Credentials-Through"]) == through + 1
    assert [c["name"] for c in after.json()] == ["Budgeting", "Comprehensive Learner Record"]


def test_the_issuer_is_public_and_shows_no_secret(api: Api) -> None:
    response = api.get(None, "/issuer")
    assert response.status_code == 200
    body = response.json()
    did = body["issuer"]["id"]
    assert did.startswith("did:key:z6Mk") and body["verificationMethod"] == f"{did}#{did[len('did:key:'):]}"
    assert body["didDocument"]["assertionMethod"] == [body["verificationMethod"]]
    key_file = Path(api.settings.issuer_key_path).read_text()
    assert "".join(key_file.splitlines()[1:-1]) not in response.text and "PRIVATE" not in response.text
    assert "/issuer" in api.client.get("/openapi.json").json()["paths"]


def test_an_issuer_key_that_cannot_be_read_changes_nothing_for_the_api(api: Api, tmp_path: Path) -> None:
    """The API never opens a key: one it cannot read (mode 000) serves the same stored documents."""
    unreadable = tmp_path / "locked.pem"
    unreadable.write_text("not a key")
    unreadable.chmod(0)
    served = api.get("auditor", "/officers/O1/credentials").json()
    with TestClient(create_app(replace(api.settings, issuer_key=str(unreadable)), project=False)) as client:
        headers = {"Authorization": f"Bearer {api.tokens['auditor']}"}
        assert client.get("/officers/O1/credentials", headers=headers).json() == served
        assert client.get("/issuer").json()["issuer"]["id"] == served[0]["issuer"]["id"]
        assert client.get("/credentials/status/0").status_code == 200
