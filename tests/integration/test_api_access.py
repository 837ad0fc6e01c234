"""Authorization from the truth: a transfer moves access at once, whatever the read models say.

In embedded mode the API runs without its in-process follower (`--no-project`); in
Kafka mode the consumer is simply not running after the transfer. Either way the
read models still show the officer under the old ministry, and access must not.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.auth import create_token
from ledger.config import Settings
from ledger.read.models import ReadModels
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register
from tests.integration.util import run_ledger


def _tokens(settings: Settings) -> dict[str, str]:
    db = Database(settings)
    return {
        "ingest": create_token(db, "feed", "ingest"),
        "hr_mof": create_token(db, "hr-finance", "ministry_hr", ministry_id="MOF"),
        "hr_moh": create_token(db, "hr-health", "ministry_hr", ministry_id="MOH"),
    }


def _get(client: TestClient, token: str, path: str) -> Any:
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def _transfer_then_read(settings: Settings, client: TestClient, tokens: dict[str, str]) -> None:
    for path in ("/officers/O1/record", "/officers/O1/history", "/officers/O1/competencies"):
        assert _get(client, tokens["hr_mof"], path).status_code == 200, path
        assert _get(client, tokens["hr_moh"], path).status_code == 404, path
    moved = client.post("/commands", json=officer_cmd("transfer_officer", 5, "O1", org_id="AIIMS", post_id="P-DOC"),
                        headers={"Authorization": f"Bearer {tokens['ingest']}"})
    assert moved.status_code == 200 and moved.json()[0]["status"] == "accepted", moved.text
    record = ReadModels(Database(settings), Ledger(settings)).record("O1")
    assert record is not None and record["ministry_id"] == "MOF"  # the read model has not moved
    for path in ("/officers/O1/record", "/officers/O1/history", "/officers/O1/competencies"):
        lost = _get(client, tokens["hr_mof"], path)
        assert lost.status_code == 404, (path, lost.text)
        unknown = _get(client, tokens["hr_mof"], path.replace("O1", "NOBODY"))
        assert (unknown.status_code, unknown.json()["detail"]) == (404, lost.json()["detail"].replace("O1", "NOBODY"))
        assert _get(client, tokens["hr_moh"], path).status_code == 200, path


def _setup_commands() -> list[dict[str, Any]]:
    return [*reference(), register("O1")]


def test_embedded_transfer_moves_access_at_once_without_projection(settings: Settings) -> None:
    tokens = _tokens(settings)
    with TestClient(create_app(settings, project=False)) as client:
        answers = client.post("/commands", json=_setup_commands(), headers={"Authorization": f"Bearer {tokens['ingest']}"})
        assert {a["status"] for a in answers.json()} == {"accepted"}
        assert run_ledger(settings, "project", "--until-idle").returncode == 0
        _transfer_then_read(settings, client, tokens)


@pytest.mark.kafka
def test_kafka_transfer_moves_access_at_once_with_the_consumer_stopped(
    settings: Settings, kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = Settings(store=settings.store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    kafka = ["--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix]
    tokens = _tokens(settings)
    with TestClient(create_app(settings, project=False)) as client:
        answers = client.post("/commands", json=_setup_commands(), headers={"Authorization": f"Bearer {tokens['ingest']}"})
        assert {a["status"] for a in answers.json()} == {"accepted"}
        assert run_ledger(settings, *kafka, "relay", "--until-idle").returncode == 0
        assert run_ledger(settings, *kafka, "project", "--until-idle").returncode == 0
        _transfer_then_read(settings, client, tokens)
