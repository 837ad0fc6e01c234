"""Schemathesis against the app's own OpenAPI document: no 500, no schema violation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.consumers.log import LogFollower
from ledger.generate import generate_lines
from ledger.projections.runner import Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import issue_credentials

_STORE = Path(__file__).resolve().parent / ".schemathesis-store"


def _app_with_data() -> tuple[FastAPI, dict[str, str]]:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ledger-api-"))
    settings = Settings(store=f"sqlite:///{folder / 'api.db'}", issuer_key=str(folder / "issuer-key.pem"))
    ledger = Ledger(settings)
    list(ledger.ingest(generate_lines(20, seed=9)))
    db = Database(settings)
    LogFollower(ledger, Runner(db)).run(until_idle=True)
    issue_credentials(settings)  # the issuing worker has run: /issuer and the credentials are stored
    tokens = {"ingest": create_token(db, "feed", "ingest"), "auditor": create_token(db, "audit", "auditor")}
    return create_app(settings, project=False), tokens


APP, TOKENS = _app_with_data()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(APP) as c:
        yield c


@schema.parametrize()
@hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_honours_its_openapi_document(case: schemathesis.Case[Any], client: TestClient) -> None:
    role = "ingest" if case.method.upper() == "POST" else "auditor"
    case.headers = CaseInsensitiveDict({**case.headers, "Authorization": f"Bearer {TOKENS[role]}"})
    response = case.call(session=client)
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
