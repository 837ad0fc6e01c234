"""Plans and gap reports over HTTP: who may read which, and the CSV the Commission collects."""

from __future__ import annotations

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
from tests.test_plans_gaps import _apply, scenario


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    ledger = Ledger(settings)
    _apply(ledger, scenario())
    LogFollower(ledger, Runner(Database(settings))).run(until_idle=True)
    db = Database(settings)
    tokens = {
        "hr_mof": create_token(db, "hr-finance", "ministry_hr", ministry_id="MOF"),
        "hr_moh": create_token(db, "hr-health", "ministry_hr", ministry_id="MOH"),
        "cbc": create_token(db, "commission", "cbc"),
        "auditor": create_token(db, "audit", "auditor"),
        "ingest": create_token(db, "feed", "ingest"),
        "officer": create_token(db, "asha", "officer", officer_id="O1"),
    }
    with TestClient(create_app(settings, project=False)) as http:
        yield http, tokens


def _get(client: tuple[TestClient, dict[str, str]], who: str, path: str, accept: str | None = None) -> Any:
    http, tokens = client
    headers = {"Authorization": f"Bearer {tokens[who]}"}
    if accept:
        headers["Accept"] = accept
    return http.get(path, headers=headers)


def test_who_may_read_plans_and_gap_reports(client: tuple[TestClient, dict[str, str]]) -> None:
    for who, expected in [("hr_mof", 200), ("cbc", 200), ("auditor", 200), ("hr_moh", 403), ("ingest", 403),
                          ("officer", 403)]:
        assert _get(client, who, "/ministries/MOF/plans/2025-26").status_code == expected, who
        assert _get(client, who, "/ministries/MOF/gaps").status_code == expected, who
    for who, expected in [("cbc", 200), ("auditor", 200), ("hr_mof", 403), ("ingest", 403)]:
        assert _get(client, who, "/gaps").status_code == expected, who
    http, _ = client
    assert http.get("/gaps").status_code == 401


def test_plan_and_gaps_answers_match_the_read_models(client: tuple[TestClient, dict[str, str]]) -> None:
    plan = _get(client, "hr_mof", "/ministries/MOF/plans/2025-26").json()
    assert plan["fy"] == "2025-26" and [t["competency_id"] for t in plan["targets"]] == ["C1", "C2", "C3"]
    assert _get(client, "hr_mof", "/ministries/MOF/plans/2030-31").status_code == 404
    assert _get(client, "auditor", "/ministries/NOPE/gaps").status_code == 404
    assert _get(client, "auditor", "/ministries/bad%20id/gaps").status_code == 422
    every = _get(client, "cbc", "/gaps").json()
    assert {g["ministry_id"] for g in every} == {"MOF", "MOH"}
    assert _get(client, "hr_mof", "/ministries/MOF/gaps").json() == next(g for g in every if g["ministry_id"] == "MOF")


def test_gap_reports_as_csv(client: tuple[TestClient, dict[str, str]]) -> None:
    one = _get(client, "hr_mof", "/ministries/MOF/gaps", accept="text/csv")
    assert one.status_code == 200 and one.headers["content-type"].startswith("text/csv")
    lines = one.text.splitlines()
    assert lines[0] == "ministry_id,officers_on_posts,competency_id,required_officers,officers_with_gap,total_gap"
    assert "MOF,1,C3,1,1,4" in lines
    every = _get(client, "cbc", "/gaps", accept="text/csv").text.splitlines()
    assert every[0] == lines[0] and set(lines[1:]) <= set(every[1:])
