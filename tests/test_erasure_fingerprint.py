"""After erasure nothing the ledger keeps or answers can confirm a guess about the erased
name or email: receipts of personal-data commands are keyed with the officer's data key,
and a resend answers the same whatever personal data it carries."""

from __future__ import annotations

import json
import sqlite3

import psycopg

from ledger.config import Settings
from ledger.write.application import Ledger
from ledger.write.commands import parse_line
from tests.helpers import reference, register


def _receipt_rows(settings: Settings) -> list[tuple[str, str, str | None]]:
    if settings.is_postgres:
        with psycopg.connect(settings.store) as conn:
            return [tuple(r) for r in conn.execute(
                "SELECT command_id, content_hash, officer_id FROM ledger_command_receipts").fetchall()]
    with sqlite3.connect(settings.sqlite_path) as conn:
        return list(conn.execute("SELECT command_id, content_hash, officer_id FROM command_receipts"))


def _answers(ledger: Ledger, *commands: dict[str, object]) -> list[tuple[str, str | None]]:
    return [(o.status, o.error) for o in ledger.ingest(json.dumps(c) for c in commands)]


TRUE = {**register("O1", name="Meera Iyer", email="meera.iyer@example.gov.in"), "command_id": "reg-O1"}
GUESS = {**TRUE, "name": "Someone Else", "email": "someone.else@example.gov.in"}


def test_a_registration_receipt_is_keyed_and_not_the_plain_content_hash(settings: Settings) -> None:
    ledger = Ledger(settings)
    assert {s for s, _ in _answers(ledger, *reference(), TRUE)} == {"accepted"}
    plain = parse_line(json.dumps(TRUE)).content_hash
    rows = {cid: (digest, officer) for cid, digest, officer in _receipt_rows(settings)}
    assert rows["reg-O1"][1] == "O1" and rows["reg-O1"][0] != plain
    # Before erasure the ledger still tells a resend from a conflicting one.
    assert _answers(ledger, TRUE) == [("duplicate", None)]
    assert _answers(ledger, GUESS)[0][0] == "rejected"


def test_after_erasure_a_resend_answers_the_same_whatever_name_and_email_it_carries(settings: Settings) -> None:
    ledger = Ledger(settings)
    _answers(ledger, *reference(), TRUE)
    ledger.erase("O1", reason="data principal's request")
    for fresh in (ledger, Ledger(settings)):  # the writing process, and a new one
        truth, guess = _answers(fresh, TRUE), _answers(fresh, GUESS)
        assert truth == guess, (truth, guess)
        assert truth[0][0] == "rejected" and "erased" in (truth[0][1] or "")
        # Without a command_id the answer is the same too: the officer exists and was erased.
        bare_truth = _answers(fresh, {k: v for k, v in TRUE.items() if k != "command_id"})
        bare_guess = _answers(fresh, {k: v for k, v in GUESS.items() if k != "command_id"})
        assert bare_truth == bare_guess
    plain = parse_line(json.dumps(TRUE)).content_hash
    assert all(plain not in row for row in _receipt_rows(settings))


def test_an_unkeyed_receipt_from_before_the_upgrade_no_longer_answers_a_guess(settings: Settings) -> None:
    ledger = Ledger(settings)
    _answers(ledger, *reference(), TRUE)
    plain = parse_line(json.dumps(TRUE)).content_hash
    sql = "UPDATE {} SET content_hash = {p}, officer_id = NULL WHERE command_id = 'reg-O1'"
    if settings.is_postgres:
        with psycopg.connect(settings.store) as conn:
            conn.execute(sql.format("ledger_command_receipts", p="%s"), (plain,))
    else:
        with sqlite3.connect(settings.sqlite_path) as conn:
            conn.execute(sql.format("command_receipts", p="?"), (plain,))
    fresh = Ledger(settings)
    assert _answers(fresh, TRUE) == [("duplicate", None)]  # as it always did before erasure
    fresh.erase("O1", reason="request")
    assert _answers(fresh, TRUE) == _answers(fresh, GUESS)
    assert _answers(fresh, TRUE)[0][0] == "rejected"


def test_other_commands_keep_plain_receipts_and_their_duplicates(settings: Settings) -> None:
    ledger = Ledger(settings)
    commands = [{**c, "command_id": f"ref-{i}"} for i, c in enumerate(reference())]
    assert {s for s, _ in _answers(ledger, *commands)} == {"accepted"}
    assert {s for s, _ in _answers(Ledger(settings), *commands)} == {"duplicate"}
    assert all(officer is None for _, _, officer in _receipt_rows(settings))
