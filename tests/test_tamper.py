"""Tamper evidence against an insider with write access to the database.

Written from DOMAIN.md's "Tamper evidence": the log chain and each entity's chain
cover type, entity, version and bytes; a signed checkpoint catches truncation and a
history rewritten with freshly recomputed hashes; appends after it do not matter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from ledger.config import Settings
from ledger.domain.officer import Officer
from ledger.integrity import chain, checkpoint
from ledger.integrity.signer import Signer
from ledger.read.audit import AuditReader
from ledger.write.application import Ledger
from tests.helpers import officer_cmd, reference, register


def _world(settings: Settings) -> Ledger:
    """Three officers whose events interleave in the log, then more for O3 at the end."""
    ledger = Ledger(settings)
    commands: list[dict[str, Any]] = [*reference(), register("O1"), register("O2"), register("O3")]
    for day, officer in [(1, "O1"), (1, "O2"), (2, "O1"), (2, "O3"), (3, "O2"), (3, "O1")]:
        if day == 1 or officer == "O3":
            commands.append(officer_cmd("enrol", day, officer, course_id="K-ETH"))
        else:
            commands.append(officer_cmd("record_progress", day, officer, course_id="K-ETH", percent=20 * day))
    commands += [officer_cmd("enrol", 5, "O3", course_id="K-BUD"),
                 officer_cmd("record_progress", 6, "O3", course_id="K-BUD", percent=30)]
    answers = list(ledger.ingest(json.dumps(c) for c in commands))
    assert all(o.status == "accepted" for o in answers), answers
    return ledger


def _sql(settings: Settings, run: Callable[[Any, str, str], None]) -> None:
    """Run raw SQL as an intruder: ``run(execute, events_table, position_column)``."""
    if settings.is_postgres:
        with psycopg.connect(settings.store) as conn:
            run(lambda sql, *p: conn.execute(sql.replace("?", "%s"), p), "ledger_events", "notification_id")
    else:
        import sqlite3

        db = sqlite3.connect(settings.sqlite_path)
        run(lambda sql, *p: db.execute(sql, p), "stored_events", "rowid")
        db.commit()
        db.close()


def _oid(settings: Settings, officer: str) -> Any:
    uuid = Officer.create_id(officer)
    return uuid if settings.is_postgres else uuid.hex


def _full_verify(settings: Settings) -> list[dict[str, Any]]:
    return AuditReader(Ledger(settings)).verify()[1]


@pytest.fixture
def key(tmp_path: Path) -> checkpoint.SigningKey:
    return checkpoint.SigningKey.load_or_create(tmp_path / "keys" / "signing-key.pem")


def test_an_untouched_store_verifies_and_so_does_its_checkpoint(settings: Settings, key: checkpoint.SigningKey) -> None:
    ledger = _world(settings)
    assert AuditReader(ledger).verify()[1] == []
    cp = Signer(key).sign_head(ledger.recorder)
    assert cp["position"] == ledger.recorder.max_notification_id()
    assert checkpoint.verify_against(ledger.recorder, checkpoint.parse(json.dumps(cp).encode()), key.public) == []


def test_an_enrolment_retyped_as_a_withdrawal_is_found(settings: Settings) -> None:
    _world(settings)
    oid = _oid(settings, "O1")

    def retype(execute: Any, table: str, _: str) -> None:
        execute(f"UPDATE {table} SET topic = ? WHERE originator_id = ? AND originator_version = 2",
                "ledger.domain.officer:Officer.CourseWithdrawn", oid)

    _sql(settings, retype)
    assert [e["type"] for e in Ledger(settings).officer_events("O1")][1] == "CourseWithdrawn"
    breaks = _full_verify(settings)
    assert any(b["entity"] == "officer_id=O1" and b["version"] == 2 for b in breaks), breaks


def test_deleting_an_officers_last_events_with_their_chain_rows_is_found(settings: Settings) -> None:
    _world(settings)
    oid = _oid(settings, "O1")
    entity = Officer.create_id("O1").hex

    def cut_tail(execute: Any, table: str, _: str) -> None:
        execute(f"DELETE FROM {table} WHERE originator_id = ? AND originator_version >= 3", oid)
        execute(f"DELETE FROM {chain.TABLE} WHERE originator_id = ? AND version >= 3", entity)
        execute(f"DELETE FROM {chain.LOG_TABLE} WHERE originator_id = ? AND version >= 3", entity)

    _sql(settings, cut_tail)
    assert len(Ledger(settings).officer_events("O1")) == 2
    assert AuditReader(Ledger(settings)).verify("O1")[1] == []  # O1's own chain is consistent now...
    breaks = _full_verify(settings)
    assert breaks, "the log chain must notice"  # ...but the log's next links are not


def test_deleting_a_whole_officer_is_found(settings: Settings) -> None:
    _world(settings)
    oid = _oid(settings, "O2")
    entity = Officer.create_id("O2").hex

    def erase_o2(execute: Any, table: str, _: str) -> None:
        execute(f"DELETE FROM {table} WHERE originator_id = ?", oid)
        execute(f"DELETE FROM {chain.TABLE} WHERE originator_id = ?", entity)
        execute(f"DELETE FROM {chain.LOG_TABLE} WHERE originator_id = ?", entity)

    _sql(settings, erase_o2)
    assert Ledger(settings).officer_events("O2") == []
    assert _full_verify(settings), "a whole officer vanished unnoticed"


def _forge_everything(settings: Settings, ledger: Ledger, edit: Callable[[int, Any], bytes | None]) -> None:
    """Rewrite stored events, then recompute both chains exactly as the ledger would."""
    events = list(checkpoint.iter_events(ledger.recorder))

    def forge(execute: Any, table: str, position_column: str) -> None:
        head = chain.GENESIS
        entity_heads: dict[str, bytes] = {}
        execute(f"DELETE FROM {chain.TABLE}")
        execute(f"DELETE FROM {chain.LOG_TABLE}")
        for position, s in events:
            state = edit(position, s)
            if state is None:
                execute(f"DELETE FROM {table} WHERE {position_column} = ?", position)
                continue
            if state != s.state:
                execute(f"UPDATE {table} SET state = ? WHERE {position_column} = ?", state, position)
            forged = StoredEvent(originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic, state=state)
            key = chain.originator_key(s.originator_id)
            entity_heads[key] = chain.link_of(entity_heads.get(key, chain.GENESIS), forged)
            execute(f"INSERT INTO {chain.TABLE} VALUES (?, ?, ?)", key, s.originator_version, entity_heads[key])
            head = chain.link_of(head, forged)
            execute(f"INSERT INTO {chain.LOG_TABLE} VALUES (?, ?, ?, ?)", position, key, s.originator_version, head)

    _sql(settings, forge)


def test_a_forged_but_self_consistent_history_fails_against_a_checkpoint(
    settings: Settings, key: checkpoint.SigningKey
) -> None:
    ledger = _world(settings)
    cp = Signer(key).sign_head(ledger.recorder)

    def raise_progress(position: int, s: Any) -> bytes:
        return bytes(s.state).replace(b'"percent":40', b'"percent":100')

    _forge_everything(settings, ledger, raise_progress)
    fresh = Ledger(settings)
    assert AuditReader(fresh).verify()[1] == []  # without a checkpoint, a perfect forgery is consistent
    problems = checkpoint.verify_against(fresh.recorder, cp, key.public)
    assert problems and "differs from the checkpoint" in problems[0], problems


def test_a_truncated_history_fails_against_a_checkpoint(settings: Settings, key: checkpoint.SigningKey) -> None:
    ledger = _world(settings)
    cp = Signer(key).sign_head(ledger.recorder)
    last = cp["position"]

    def drop_tail(execute: Any, table: str, position_column: str) -> None:
        execute(f"DELETE FROM {table} WHERE {position_column} > ?", last - 2)
        execute(f"DELETE FROM {chain.LOG_TABLE} WHERE position > ?", last - 2)
        execute(f"DELETE FROM {chain.TABLE} WHERE originator_id = ? AND version > 2", Officer.create_id("O3").hex)

    _sql(settings, drop_tail)
    fresh = Ledger(settings)
    assert AuditReader(fresh).verify()[1] == []  # the tail is gone with its chain rows: consistent
    problems = checkpoint.verify_against(fresh.recorder, cp, key.public)
    assert problems and "truncated" in problems[0], problems


def test_events_appended_after_a_checkpoint_do_not_matter(settings: Settings, key: checkpoint.SigningKey) -> None:
    ledger = _world(settings)
    cp = Signer(key).sign_head(ledger.recorder)
    assert ledger.execute(officer_cmd("record_progress", 9, "O3", course_id="K-BUD", percent=90)).status == "accepted"
    ledger.erase("O2", reason="request")  # erasure keeps every chain passing
    assert AuditReader(ledger).verify()[1] == []
    assert checkpoint.verify_against(Ledger(settings).recorder, cp, key.public) == []


def test_a_checkpoint_signed_by_another_key_or_edited_is_refused(
    settings: Settings, key: checkpoint.SigningKey, tmp_path: Path
) -> None:
    ledger = _world(settings)
    cp = Signer(key).sign_head(ledger.recorder)
    other = checkpoint.SigningKey.load_or_create(tmp_path / "other.pem")
    assert checkpoint.verify_against(ledger.recorder, cp, other.public)
    edited = dict(cp, position=cp["position"] - 1)
    problems = checkpoint.verify_against(ledger.recorder, edited, key.public)
    assert any("signature" in p for p in problems), problems
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.parse(b'{"position": 1}')
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.parse(b"\xff\xfe not json")


def test_the_signing_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "k" / "signing-key.pem"
    first = checkpoint.SigningKey.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert checkpoint.SigningKey.load_or_create(path).key_id == first.key_id
    path.write_text("garbage")
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.SigningKey.load_or_create(path)
