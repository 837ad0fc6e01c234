"""The erasure's reason is a code with an optional ticket id, never free text (DPDP; spec "Data Principal rights").

The command line: a reason outside the four codes, or a ticket that is not an id, is a
usage error (exit 2) and nothing is erased; a code and a ticket are kept in OfficerErased.
The HTTP body (``EraseRequest``) takes the same codes and ids; the API and the console are
checked end to end in tests/integration/test_erasure_codes_http.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ledger.api.body import validation_message
from ledger.api.models import EraseRequest
from ledger.cli import cli
from ledger.config import Settings
from ledger.console.views import ERASURE_CHOICES
from ledger.domain.values import ERASURE_REASONS
from ledger.write.application import Ledger
from tests.helpers import reference, register

CODES = ["data_principal_request", "purpose_served", "legal_order", "other"]
NOT_CODES = ["DPDP request", "", "Other", "other ", " other", "data_principal_request\n", "purpose-served",
             "asked by Asha Verma (asha.verma@example.gov.in)", "x" * 600, "other\x00"]
NOT_IDS = ["", "bad id", "GR/17", "-GR", "GR\n", "T" * 65, "GR\x00", "é", "GR 17; drop table"]


def run(store: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--store", f"sqlite:///{store}", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    lines = [*reference(), register("O1"), register("O2", name="Ravi Nair", email="ravi@example.gov.in")]
    assert run(path, "ingest", "-", stdin="\n".join(json.dumps(c) for c in lines) + "\n")[0] == 0
    return path


def _history(store: Path, officer_id: str) -> list[dict[str, Any]]:
    code, out, err = run(store, "history", officer_id, "--json")
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


def _erased(store: Path, officer_id: str) -> bool:
    ledger = Ledger(Settings(store=f"sqlite:///{store}"))
    try:
        access = ledger.access(officer_id)
    finally:
        ledger.close()
    assert access is not None
    return bool(access.erased)


def test_the_codes_are_the_specifications_and_defined_once() -> None:
    assert list(ERASURE_REASONS) == CODES
    assert [code for code, _ in ERASURE_CHOICES] == CODES  # the console's select, each with its words
    assert all(label for _, label in ERASURE_CHOICES)
    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "OfficerErased.avsc").read_text())
    doc = next(f["doc"] for f in schema["fields"] if f["name"] == "reason")
    assert all(code in doc for code in CODES)  # what subscribers are told the field holds


@pytest.mark.parametrize("reason", NOT_CODES)
def test_the_cli_refuses_a_reason_that_is_not_a_code_and_erases_nothing(store: Path, reason: str) -> None:
    code, out, err = run(store, "erase", "O1", "--reason", reason, "--yes")
    assert code == 2 and "--reason" in err and out == "", err
    assert "Traceback" not in err
    assert not _erased(store, "O1")
    assert [e["type"] for e in _history(store, "O1")] == ["OfficerRegistered"]


def test_the_cli_requires_a_reason(store: Path) -> None:
    code, _, err = run(store, "erase", "O1", "--yes")
    assert code == 2 and "--reason" in err
    assert not _erased(store, "O1")


@pytest.mark.parametrize("ticket", NOT_IDS)
def test_the_cli_refuses_a_ticket_that_is_not_an_id_and_erases_nothing(store: Path, ticket: str) -> None:
    code, _, err = run(store, "erase", "O1", "--reason", "legal_order", "--ticket", ticket, "--yes")
    assert code == 2 and "--ticket" in err and "not a valid id" in err, err
    assert not _erased(store, "O1")


def test_the_cli_keeps_the_code_and_the_ticket_in_officer_erased(store: Path) -> None:
    code, _, err = run(store, "erase", "O1", "--reason", "legal_order", "--ticket", "HC-2025:17.a_b", "--yes")
    assert code == 0, err
    erased = _history(store, "O1")[-1]
    assert (erased["type"], erased["reason"], erased["ticket"]) == ("OfficerErased", "legal_order", "HC-2025:17.a_b")
    code, _, err = run(store, "erase", "O2", "--reason", "data_principal_request", "--yes")
    assert code == 0, err
    erased = _history(store, "O2")[-1]
    assert (erased["reason"], erased.get("ticket")) == ("data_principal_request", None)
    assert _erased(store, "O1") and _erased(store, "O2")


def test_the_cli_lists_the_codes_in_its_help(store: Path) -> None:
    code, out, _ = run(store, "erase", "--help")
    assert code == 0 and all(c in out for c in CODES) and "--ticket" in out


def test_an_unknown_officer_is_still_exit_1_with_a_valid_code(store: Path) -> None:
    code, _, err = run(store, "erase", "NOBODY", "--reason", "other", "--yes")
    assert code == 1 and "not registered" in err


@pytest.mark.parametrize("reason", CODES)
def test_the_http_body_takes_each_code_with_or_without_a_ticket(reason: str) -> None:
    assert EraseRequest.model_validate({"reason": reason}).ticket is None
    assert EraseRequest.model_validate({"reason": reason, "ticket": None}).ticket is None
    assert EraseRequest.model_validate({"reason": reason, "ticket": "GR-1"}).ticket == "GR-1"


@pytest.mark.parametrize("body, field", [
    *[({"reason": r}, "reason") for r in NOT_CODES],
    *[({"reason": "other", "ticket": t}, "ticket") for t in NOT_IDS],
    ({}, "reason"), ({"reason": 1}, "reason"), ({"reason": None}, "reason"), ({"reason": ["other"]}, "reason"),
    ({"reason": "other", "ticket": 17}, "ticket"), ({"reason": "other", "note": "asked by phone"}, "note"),
    ({"reason": "other", "reason_text": "x"}, "reason_text"),
])
def test_the_http_body_refuses_anything_else_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EraseRequest.model_validate(body)
    message = validation_message(caught.value.errors())
    assert message.startswith(f"{field}: "), message
    if field == "reason" and isinstance(body.get("reason"), str):  # not echoed: it may be personal data
        assert message == f"reason: must be one of {', '.join(CODES)} (a code, never free text)", message
