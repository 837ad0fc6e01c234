"""Revocation (DOMAIN.md "Portable credentials"; W3C Bitstring Status List v1.0), from the spec:
every credential names its place in a status list, assigned once in the order of the events
that created it (the same events, the same places, also after a rebuild); a retraction revokes
the completion's credential and every ClrCredential that held it, and the officer's CLR without
it is a new credential; erasure revokes nothing; the list decodes to exactly those bits, and
Digital Bazaar's library reads the same status from the list as served.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.consumers.log import LogFollower, TypedLogFollower
from ledger.credentials.issue import CredentialIssuer, json_line
from ledger.credentials.issuer import for_settings
from ledger.credentials.status import decode_list, encode_list, is_set, status_entry
from ledger.credentials.verify import verify_one
from ledger.projections.credential_status import LIST_SIZE, CredentialStatusProjection
from ledger.projections.rebuild import rebuild
from ledger.projections.runner import Runner
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import issue_credentials, lines, officer_cmd, present, reference, register

BASE = "https://ledger.example.gov.in"
LIST = f"{BASE}/credentials/status/0"
CLR = "Comprehensive Learner Record"
TAX = {"type": "publish_course", "course_id": "K-TAX", "title": "Taxation", "provider": "NACIN",
       "duration_hours": 6, "competencies": [{"competency_id": "C3", "level": 2}], "assessment": None}


def course(officer: str, course_id: str, day: int, score: float | None = None) -> list[dict[str, Any]]:
    """Enrol, progress to 100%, pass the assessment (with ``score``) and complete, all on ``day``."""
    steps = [officer_cmd("enrol", day, officer, course_id=course_id),
             officer_cmd("record_progress", day, officer, course_id=course_id, percent=100)]
    if score is not None:
        steps.append(officer_cmd("attempt_assessment", day, officer, course_id=course_id, score=score))
    return [*steps, officer_cmd("complete_course", day, officer, course_id=course_id)]


def history() -> list[dict[str, Any]]:
    """O1 completes K-BUD (version 5), K-ETH (8), K-TAX (11); then O2 completes K-ETH (4).
    Places in log order: O1 0-5 (each completion's achievement, then the new CLR), O2 6-7."""
    return [*reference(), TAX, register("O1"), register("O2", name="Ravi Nair", email="ravi@example.gov.in"),
            *course("O1", "K-BUD", 1, 72.5), *course("O1", "K-ETH", 2), *course("O1", "K-TAX", 3),
            *course("O2", "K-ETH", 4)]


def retract(versions: list[int], officer: str = "O1") -> dict[str, Any]:
    return {"type": "retract", "officer_id": officer, "versions": versions, "reason": "recorded_in_error"}


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        self.issuer = CredentialIssuer(self.ledger, for_settings(settings))

    def run(self, *commands: dict[str, Any]) -> None:
        outcomes = list(self.ledger.ingest(lines(list(commands))))
        assert {o.status for o in outcomes} == {"accepted"}, [o for o in outcomes if o.status != "accepted"]

    def places(self, officer: str) -> list[tuple[str, str, int]]:
        return [(c["type"][1], c["name"], int(c["credentialStatus"]["statusListIndex"]))
                for c in self.issuer.for_officer(officer) or []]

    def revoked(self) -> set[int]:
        bits = decode_list(present(self.issuer.status_list(0))["credentialSubject"]["encodedList"])
        return {i for i in range(LIST_SIZE) if is_set(bits, i)}

    def rows(self) -> list[tuple[Any, ...]]:
        with Database(self.settings).reading() as c:
            c.execute("SELECT officer_id, version, kind, idx, revoked_at IS NOT NULL FROM rm_credential_status")
            return sorted(tuple(r) for r in c.fetchall())


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> World:
    w = World(replace(settings, issuer_key=str(tmp_path / "issuer.pem"), public_url=BASE + "/"))
    w.run(*history())
    return w


def test_every_credential_names_its_place_in_the_order_of_the_events_that_created_it(world: World) -> None:
    assert world.places("O1") == [("AchievementCredential", "Budgeting", 0), ("AchievementCredential", "Ethics", 2),
                                  ("AchievementCredential", "Taxation", 4), ("ClrCredential", CLR, 5)]
    assert world.places("O2") == [("AchievementCredential", "Ethics", 6), ("ClrCredential", CLR, 7)]
    budget = (world.issuer.for_officer("O1") or [])[0]
    assert budget["credentialStatus"] == {"id": f"{LIST}#0", "type": "BitstringStatusListEntry",
                                          "statusPurpose": "revocation", "statusListIndex": "0",
                                          "statusListCredential": LIST}
    clr = (world.issuer.for_officer("O1") or [])[-1]
    assert [c["credentialStatus"] for c in clr["credentialSubject"]["verifiableCredential"]] == [
        c["credentialStatus"] for c in (world.issuer.for_officer("O1") or [])[:3]]
    # Position i mod 131,072 of list i // 131,072: statusListIndex is a place in that list's bits.
    assert status_entry(BASE, LIST_SIZE + 5)["id"] == f"{BASE}/credentials/status/1#5"
    assert status_entry(BASE, LIST_SIZE + 5)["statusListIndex"] == "5"


def test_a_retraction_revokes_the_completion_and_every_clr_that_held_it(world: World) -> None:
    held_before = world.issuer.for_officer("O1") or []
    assert world.revoked() == set()
    world.run(retract([8]))  # O1's K-ETH completion (places 2, its CLR 3; the CLR of all three is 5)
    # Revoked: K-ETH's credential, and the CLRs that held it (3 and 5). The CLR of K-BUD alone (1),
    # which never held it, stays valid; the CLR without it is new (8), and valid.
    assert world.revoked() == {2, 3, 5}
    assert world.places("O1") == [("AchievementCredential", "Budgeting", 0),
                                  ("AchievementCredential", "Taxation", 4), ("ClrCredential", CLR, 8)]
    new_clr = (world.issuer.for_officer("O1") or [])[-1]
    assert new_clr["id"] != held_before[-1]["id"]
    assert [c["name"] for c in new_clr["credentialSubject"]["verifiableCredential"]] == ["Budgeting", "Taxation"]
    assert world.places("O2") == [("AchievementCredential", "Ethics", 6), ("ClrCredential", CLR, 7)]
    # Retracting the rest: K-BUD and K-TAX (and the CLR 8 that held them) revoked, no new CLR.
    world.run(retract([5, 11]))
    assert world.revoked() == {0, 1, 2, 3, 4, 5, 8}  # now also the CLR of K-BUD alone
    assert world.issuer.for_officer("O1") == []
    assert ("O1", 12, "ClrCredential", 8, True) in world.rows()


def test_a_late_completion_and_a_completion_again_get_new_places(world: World) -> None:
    world.run(retract([8]), *course("O2", "K-BUD", 1, 90))  # O2's K-BUD reported after its K-ETH of day 4
    assert world.places("O2") == [("AchievementCredential", "Budgeting", 9), ("AchievementCredential", "Ethics", 6),
                                  ("ClrCredential", CLR, 10)]
    world.run(officer_cmd("complete_course", 5, "O1", course_id="K-ETH"))  # still enrolled at 100%
    assert [p[2] for p in world.places("O1")] == [0, 4, 11, 12]
    assert world.revoked() == {2, 3, 5}  # a later CLR does not revoke the one before it


def test_erasure_revokes_nothing(world: World) -> None:
    world.run(retract([8]))
    before = json_line(present(world.issuer.status_list(0)))
    world.ledger.erase("O2", reason="request")
    world.ledger.erase("O1", reason="request")
    assert json_line(present(world.issuer.status_list(0))) == before
    assert world.revoked() == {2, 3, 5}


def test_the_same_events_give_the_same_places_also_after_a_rebuild(world: World, tmp_path: Path) -> None:
    world.run(retract([8]), *course("O2", "K-BUD", 1, 90))
    exported = [json_line(c) for c in world.issuer.export()]
    served = json_line(present(world.issuer.status_list(0)))
    rows = world.rows()
    db = Database(world.settings)
    for names in (["credential_status"], [p.name for p in Runner(db).projections]):
        rebuild(world.ledger, Runner(db), names)
        assert world.rows() == rows
        assert [json_line(c) for c in world.issuer.export()] == exported
        assert json_line(present(world.issuer.status_list(0))) == served
    # The live follower (small pages, after the issuer caught up), the typed one that reads only
    # completions and retractions (a page of one), and a fresh store of the same commands give
    # the same places.
    LogFollower(world.ledger, Runner(db), page=7).run(until_idle=True)
    assert world.rows() == rows
    with db.transaction() as c:
        for table in CredentialStatusProjection().tables():
            c.execute(f"DELETE FROM {table}")
        c.execute("DELETE FROM ledger_offsets WHERE projection = 'credential_status'")
    TypedLogFollower(world.ledger, Runner(db, [CredentialStatusProjection()]), page=1).run()
    assert world.rows() == rows
    other = World(Settings(store=f"sqlite:///{tmp_path / 'other.db'}", issuer_key=str(tmp_path / "other.pem")))
    other.run(*history())  # in the same requests: a request's events are logged officer by officer
    other.run(retract([8]), *course("O2", "K-BUD", 1, 90))
    LogFollower(other.ledger, Runner(Database(other.settings)), page=3).run(until_idle=True)
    assert other.rows() == rows


def test_the_list_is_the_specification_s_encoding(world: World) -> None:
    world.run(retract([8]))
    listed = present(world.issuer.status_list(0))
    assert verify_one(json_line(listed))["ok"] is True
    assert listed["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert listed["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert listed["issuer"]["id"] == world.issuer.issuer.did == listed["proof"]["verificationMethod"].split("#")[0]
    assert listed["validFrom"] == listed["proof"]["created"] and listed["validFrom"].endswith("Z")
    subject = listed["credentialSubject"]
    assert (subject["id"], subject["type"], subject["statusPurpose"]) == (f"{LIST}#list", "BitstringStatusList",
                                                                          "revocation")
    # Decoded here from the spec's words: multibase base64url without padding, GZIP, leftmost bit first.
    encoded = subject["encodedList"]
    assert encoded[0] == "u" and "=" not in encoded and "+" not in encoded and "/" not in encoded
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(bits) * 8 == LIST_SIZE == 131_072
    assert bits[0] == 0b0011_0100 and not any(bits[1:])  # positions 2, 3 and 5
    assert world.issuer.status_list(1) is None


def test_encoding_bits() -> None:
    assert decode_list(encode_list([0, 7, 8, LIST_SIZE - 1]))[:2] == bytes([0b1000_0001, 0b1000_0000])
    assert decode_list(encode_list([LIST_SIZE - 1]))[-1] == 1
    # The specification's example list: 131,072 bits, none set.
    example = decode_list("uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA")
    assert len(example) == LIST_SIZE // 8 and not any(example)
    assert encode_list([3]) == encode_list([3])  # no timestamp in the GZIP header
    for bad in ("H4sI", "u!!!", "u" + base64.urlsafe_b64encode(b"not gzip").decode()):
        with pytest.raises(Exception, match="encodedList"):
            decode_list(bad)
    with pytest.raises(ValueError):
        encode_list([LIST_SIZE])


def test_topic_batches_and_dead_letters_do_not_move_the_places(world: World) -> None:
    from ledger.projections.recovery import retry
    from ledger.projections.runner import Item

    db = Database(world.settings)
    present(world.issuer.lists).catch_up()
    rows = world.rows()
    # A topic's message (Kafka mode) is not the log's: the status projection ignores it.
    event = next(e for _, e in world.ledger.iter_log() if e["type"] == "CourseCompleted")
    Runner(db, [CredentialStatusProjection()]).process([Item("ledger.officers", 0, 0, "O1", dict(event, version=99))])
    assert world.rows() == rows
    runner = Runner(db)
    with db.transaction() as c:
        c.execute("INSERT INTO ledger_dead_letters (source, part, position, officer_id, reason, payload, recorded_at) "
                  "VALUES ('log', 0, 1, 'O2', 'test', NULL, 'now')")
    world.run(*course("O2", "K-BUD", 1, 90))  # held back for the documents, not for the places
    LogFollower(world.ledger, runner).run(until_idle=True)
    assert world.rows() == sorted([*rows, ("O2", 8, "AchievementCredential", 8, False),
                                   ("O2", 8, "ClrCredential", 9, False)])
    assert {r.officer_id for r in retry(world.ledger, runner)} == {"O2"}
    assert len(world.rows()) == len(rows) + 2


def test_the_status_list_over_http_and_the_command_line(world: World) -> None:
    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from ledger.api.app import create_app
    from ledger.cli import cli

    world.run(retract([8]))
    expected = json_line(present(world.issuer.status_list(0)))
    with TestClient(create_app(world.settings, project=False)) as client:
        assert client.get("/credentials/status/0").status_code == 404  # not signed yet: the API never signs
        issue_credentials(world.settings)
        served = client.get("/credentials/status/0")  # no token
        assert served.status_code == 200 and served.text == expected  # stored, byte for byte
        assert served.headers["Ledger-Credentials-Lag"] == "0"
        for missing in ("1", "00", "-1", "abc", "0x0", "9" * 40):
            assert client.get(f"/credentials/status/{missing}").status_code == 404, missing
    argv = ["--store", world.settings.store, "credentials", "--issuer-key", str(world.settings.issuer_key_path),
            "--public-url", BASE]
    done = CliRunner().invoke(cli, [*argv, "status"])
    assert done.exit_code == 0 and done.stdout == expected + "\n"
    assert CliRunner().invoke(cli, [*argv, "status", "--list", "0"]).stdout == expected + "\n"
    absent = CliRunner().invoke(cli, [*argv, "status", "--list", "1"])
    assert absent.exit_code == 1 and "no status list 1" in absent.stderr


def test_digital_bazaar_reads_the_same_status_from_the_served_list(world: World) -> None:
    from tests.test_credentials_node import node_verify

    held = [c for o in ("O1", "O2") for c in world.issuer.for_officer(o) or []]
    clrs_before = [json.loads(json_line(c)) for c in held if c["type"][1] == "ClrCredential"]
    world.run(retract([8]))
    # What the holders keep (issued before), the embedded ones on their own, and the new CLR.
    embedded = [c for clr in clrs_before for c in clr["credentialSubject"]["verifiableCredential"]]
    everything = [*held, *embedded, *(world.issuer.for_officer("O1") or [])]
    listed = present(world.issuer.status_list(0))
    results = node_verify([json_line(c) for c in everything], [listed])
    assert [r["errors"] for r in results if not r["ok"]] == []
    revoked = world.revoked()
    assert [r["revoked"] for r in results] == [int(c["credentialStatus"]["statusListIndex"]) in revoked
                                               for c in everything]
    assert sum(r["revoked"] for r in results) == 3  # O1's K-ETH and CLR of all three, and K-ETH in that CLR
    assert {r["listLength"] for r in results} == {LIST_SIZE}
    # A list with one bit changed no longer verifies, nor does any credential checked against it.
    forged = json.loads(json_line(listed))
    forged["credentialSubject"]["encodedList"] = encode_list([])
    assert node_verify([json_line(held[0])], [forged])[0]["ok"] is False
