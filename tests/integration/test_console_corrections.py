"""The console and the bitemporal history: the "known at" control, the Corrections panel, the
timeline's marks, and the retract and correct forms (DOMAIN.md "Late facts, corrections and
retractions"; docs/console.md).

A real embedded store (SQLite) and the real app, as in test_console.py; the browser's side
is in test_console_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.config import Settings
from ledger.write.application import Ledger
from tests.conftest import migrated
from tests.helpers import at
from tests.integration.console_world import NAME, apply, build, sign_in

World = tuple[TestClient, dict[str, str], Settings]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = migrated(Settings(store=f"sqlite:///{tmp_path / 'ledger.store.db'}"))
    tokens = build(settings)
    with TestClient(create_app(settings, project=False, token_ttl=0.0)) as client:
        yield client, tokens, settings


def _as(client: TestClient, token: str) -> TestClient:
    client.cookies.clear()
    sign_in(client, token)
    return client


def _latest_recorded(settings: Settings, officer_id: str = "O1") -> str:
    ledger = Ledger(settings)
    try:
        return str(ledger.officer_events(officer_id)[-1]["recorded_at"])
    finally:
        ledger.close()


def _record(page: str) -> str:
    """The record section of an officer page (the heading shows the current name whatever the controls say)."""
    return page[page.index('id="record-h"'):page.index('id="enrolments"')]


def _count(page: str) -> str:
    found = re.search(r'<dd id="completed-count">(\d+)</dd>', page)
    assert found is not None, page[:300]
    return found[1]


def correct_name(name: str = "Asha Varma") -> dict[str, Any]:
    return {"type": "correct_officer_details", "officer_id": "O1", "name": name, "occurred_at": at(0)}


def retract(versions: list[int], officer: str = "O1", **extra: Any) -> dict[str, Any]:
    return {"type": "retract", "officer_id": officer, "versions": versions, "reason": "recorded_in_error", **extra}


def test_known_at_shows_what_the_ledger_said_before_and_after_a_correction_and_a_retraction(world: World) -> None:
    client, tokens, settings = world
    before = _latest_recorded(settings)
    assert apply(settings, correct_name()) == ["accepted"]
    corrected = _latest_recorded(settings)
    assert apply(settings, retract([4])) == ["accepted"]  # O1's completion of K-ETH
    _as(client, tokens["auditor"])
    page = client.get("/console/officers/O1", params={"known_at": before}).text
    assert "as known at" in page and NAME in _record(page) and "Asha Varma" not in _record(page)
    assert _count(page) == "1"
    page = client.get("/console/officers/O1", params={"known_at": corrected}).text
    assert "Asha Varma" in _record(page) and NAME not in _record(page) and _count(page) == "1"
    now = client.get("/console/officers/O1").text
    assert "Current record" in now and _count(now) == "0"
    # Both together: what the ledger said then about 5 April (the completion was on 4 April).
    assert _count(client.get("/console/officers/O1", params={"known_at": before, "as_of": "2025-04-05"}).text) == "1"
    assert _count(client.get("/console/officers/O1", params={"as_of": "2025-04-05"}).text) == "0"
    # The API says the same thing for the same instants.
    api = client.get("/officers/O1/record", params={"known_at": corrected},
                     headers={"Authorization": f"Bearer {tokens['auditor']}"}).json()
    assert api["name"] == "Asha Varma" and api["completed_count"] == 1


def test_known_at_with_compare_diffs_two_dates_as_known_then(world: World) -> None:
    client, tokens, settings = world
    before = _latest_recorded(settings)
    assert apply(settings, retract([4])) == ["accepted"]
    _as(client, tokens["officer"])
    params = {"as_of": "2025-04-20", "compare": "2025-04-02"}
    then = client.get("/console/officers/O1", params={**params, "known_at": before}).text
    assert "<tr><td>completed_count</td><td>0</td><td>1</td></tr>" in then
    now = client.get("/console/officers/O1", params=params).text
    assert "<td>completed_count</td>" not in now and "<td>enrolments[K-BUD].status</td>" in now


def test_the_known_at_control_accepts_a_date_and_time_in_ist_and_shows_it_back(world: World) -> None:
    client, tokens, _ = world
    _as(client, tokens["hr_mof"])
    page = client.get("/console/officers/O1", params={"known_at": "2099-01-02T03:04:05.678"}).text
    assert 'datetime="2099-01-02T03:04:05.678000+05:30"' in page
    assert 'id="known_at" name="known_at" type="datetime-local" step="0.001" value="2099-01-02T03:04:05.678"' in page
    page = client.get("/console/officers/O1", params={"known_at": "2099-01-01T00:00:00Z"}).text
    assert 'value="2099-01-01T05:30:00"' in page  # the same instant, on the IST clock
    for bad in ("2099-02-30T10:00", "2099-01-01T25:00", "10:00", "2099-01-01 10:00"):
        refused = client.get("/console/officers/O1", params={"known_at": bad})
        assert refused.status_code == 422 and "known_at" in refused.text, bad
    missing = client.get("/console/officers/O1", params={"known_at": "2025-03-01"})
    assert missing.status_code == 404 and "was not registered as known at 2025-03-01" in missing.text
    assert NAME not in missing.text
