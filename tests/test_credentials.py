"""Credentials issued from the events: shape, privacy, determinism, erasure, tampering, the key."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.config import Settings
from ledger.credentials import issuer as issuers
from ledger.credentials import proof
from ledger.credentials.issue import CredentialIssuer, json_line
from ledger.credentials.verify import verify_credential, verify_one
from ledger.domain.errors import LedgerError
from ledger.write.application import Ledger
from tests.helpers import lines, officer_cmd, reference, register

NAME, EMAIL = "Asha Verma", "asha.verma@example.gov.in"


def career() -> list[dict[str, Any]]:
    """O1 fails then passes K-BUD (assessed) and completes K-ETH; O2 completes K-ETH then is
    erased later; O3 completes nothing."""
    return [
        *reference(),
        register("O1"),
        register("O2", org_id="AIIMS", post_id="P-DOC", name="Ravi Nair", email="ravi@example.gov.in"),
        register("O3"),
        officer_cmd("enrol", 1, course_id="K-BUD"),
        officer_cmd("record_progress", 2, course_id="K-BUD", percent=100),
        officer_cmd("attempt_assessment", 3, course_id="K-BUD", score=41),
        officer_cmd("attempt_assessment", 4, course_id="K-BUD", score=72.5),
        officer_cmd("complete_course", 5, course_id="K-BUD"),
        officer_cmd("enrol", 6, course_id="K-ETH"),
        officer_cmd("record_progress", 7, course_id="K-ETH", percent=100),
        officer_cmd("complete_course", 8, course_id="K-ETH"),
        officer_cmd("enrol", 2, "O2", course_id="K-ETH"),
        officer_cmd("record_progress", 3, "O2", course_id="K-ETH", percent=100),
        officer_cmd("complete_course", 4, "O2", course_id="K-ETH"),
    ]


@pytest.fixture
def world(sqlite_settings: Settings, tmp_path: Path) -> tuple[Ledger, CredentialIssuer]:
    settings = replace(sqlite_settings, issuer_key=str(tmp_path / "keys" / "issuer.pem"))
    ledger = Ledger(settings)
    outcomes = list(ledger.ingest(lines(career())))
    assert {o.status for o in outcomes} == {"accepted"}, [o for o in outcomes if o.status != "accepted"]
    return ledger, CredentialIssuer(ledger, issuers.for_settings(settings))


def test_one_achievement_per_completion_then_the_clr_holding_them(world: tuple[Ledger, CredentialIssuer]) -> None:
    _, issuer = world
    creds = issuer.for_officer("O1")
    assert creds is not None
    assert [c["type"][1] for c in creds] == ["AchievementCredential", "AchievementCredential", "ClrCredential"]
    budget, ethics, clr = creds
    assert budget["@context"] == ["https://www.w3.org/ns/credentials/v2",
                                  "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"]
    assert clr["@context"][1] == "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
    assert budget["validFrom"] == "2025-04-06T03:30:00Z" == budget["proof"]["created"]  # day 5, 09:00 IST
    achievement = budget["credentialSubject"]["achievement"]
    assert (achievement["name"], achievement["achievementType"], achievement["creditsAvailable"]) == (
        "Budgeting", "Course", 12.5)
    assert achievement["creator"]["name"] == "NIFM"
    assert [(a["targetCode"], a["targetName"]) for a in achievement["alignment"]] == [("C1", "Budgeting")]
    assert "level 2" in achievement["alignment"][0]["targetDescription"]
    assert budget["credentialSubject"]["result"] == [{"type": ["Result"], "value": "72.5"}]
    assert "result" not in ethics["credentialSubject"]  # no assessment, no result
    assert ethics["credentialSubject"]["achievement"]["creditsAvailable"] == 4
    assert clr["credentialSubject"]["verifiableCredential"] == [budget, ethics]
    assert clr["validFrom"] == ethics["validFrom"] == clr["proof"]["created"]
    assert budget["issuer"] == {"id": issuer.issuer.did, "type": ["Profile"], "name": "iGOT Karmayogi"}
    assert budget["proof"]["verificationMethod"] == f"{issuer.issuer.did}#{issuer.issuer.did[len('did:key:'):]}"
    for credential in creds:
        assert verify_credential(credential)["issuer"] == issuer.issuer.did


def test_the_subject_is_a_salted_hash_and_nothing_personal_appears(world: tuple[Ledger, CredentialIssuer]) -> None:
    _, issuer = world
    creds = issuer.for_officer("O1") or []
    identity = creds[0]["credentialSubject"]["identifier"][0]
    expected = hashlib.sha256(("O1" + identity["salt"]).encode()).hexdigest()
    assert identity == {"type": "IdentityObject", "hashed": True, "identityType": "identifier",
                        "identityHash": f"sha256${expected}", "salt": identity["salt"]}
    assert all(c["credentialSubject"]["identifier"] == [identity] for c in creds)
    text = "\n".join(json_line(c) for c in creds)
    for personal in (NAME, "Asha", EMAIL, '"O1"', ":O1", "O1#", "/O1"):
        assert personal not in text
    other = (issuer.for_officer("O2") or [])[0]["credentialSubject"]["identifier"][0]
    assert other["salt"] != identity["salt"]


def test_the_same_events_give_the_same_bytes(world: tuple[Ledger, CredentialIssuer], tmp_path: Path) -> None:
    ledger, issuer = world
    first = [json_line(c) for c in issuer.export()]
    again = CredentialIssuer(Ledger(ledger.settings), issuers.Issuer.create(issuer.issuer.private))
    assert [json_line(c) for c in again.export()] == first
    assert len(first) == 3 + 2  # O1: two and a CLR; O2: one and a CLR; O3: nothing
    assert first == [json_line(c) for o in ("O1", "O2") for c in issuer.for_officer(o) or []]


def test_an_erased_officer_gets_no_new_credentials(world: tuple[Ledger, CredentialIssuer]) -> None:
    ledger, issuer = world
    before = issuer.for_officer("O2") or []
    assert len(before) == 2
    ledger.erase("O2", "DPDP request")
    assert issuer.for_officer("O2") == []
    assert [c["id"] for c in issuer.export()] == [c["id"] for c in issuer.for_officer("O1") or []]
    assert all(verify_credential(c) for c in before)  # what the officer holds stays valid
    assert issuer.for_officer("NOBODY") is None


def test_changing_any_byte_of_a_signed_credential_fails_verification(world: tuple[Ledger, CredentialIssuer]) -> None:
    _, issuer = world
    budget, _, clr = issuer.for_officer("O1") or []
    text = json_line(budget)
    assert verify_one(text)["ok"] is True
    targeted = [text.index('"Budgeting"') + 3, text.index('"validFrom":"') + 14, text.index("sha256$") + 9,
                text.index('"value":"72.5"') + 10, text.index('"id":"did:key:') + 20,
                text.index('"creditsAvailable":') + 19]
    spread = list(range(0, len(text), max(1, len(text) // 40)))
    for at in targeted + spread:
        changed = text[:at] + chr(ord(text[at]) ^ 1) + text[at + 1:]
        assert verify_one(changed)["ok"] is False, (at, text[max(0, at - 30):at + 30])
    embedded = copy.deepcopy(clr)
    embedded["credentialSubject"]["verifiableCredential"][0]["validFrom"] = "2025-04-06T03:30:01Z"
    assert "signature" in verify_one(json_line(embedded))["error"]
    # Re-signed around an altered embedded credential: the outer proof holds, the inner one does not.
    outer = {k: v for k, v in embedded.items() if k != "proof"}
    resigned = proof.sign(outer, issuer.issuer.private, issuer.issuer.verification_method, clr["validFrom"])
    result = verify_one(json_line(resigned))
    assert result["ok"] is False and "verifiableCredential[0]" in result["error"]


def test_an_undefined_property_fails_verification_though_the_signature_would_match(
    world: tuple[Ledger, CredentialIssuer],
) -> None:
    _, issuer = world
    credential = (issuer.for_officer("O1") or [])[0]
    credential["credentialSubject"]["officerName"] = NAME  # dropped by JSON-LD: the signature still matches
    result = verify_one(json_line(credential))
    assert result["ok"] is False and "officerName" in result["error"]


def test_a_did_web_issuer_needs_its_did_document(world: tuple[Ledger, CredentialIssuer]) -> None:
    ledger, issuer = world
    web = issuers.Issuer.create(issuer.issuer.private, "did:web:credentials.example.gov.in", "Karmayogi Bharat")
    creds = CredentialIssuer(ledger, web).for_officer("O1") or []
    assert creds[0]["issuer"]["id"] == "did:web:credentials.example.gov.in"
    assert verify_one(json_line(creds[-1]))["ok"] is False  # never fetched
    documents = {web.did: web.did_document()}
    assert verify_one(json_line(creds[-1]), documents)["ok"] is True
    stranger = issuers.Issuer.create(Ed25519PrivateKey.generate(), web.did)
    assert verify_one(json_line(creds[0]), {web.did: stranger.did_document()})["ok"] is False
    assert issuers.did_web_url(web.did) == "https://credentials.example.gov.in/.well-known/did.json"
    with pytest.raises(LedgerError, match="did:web"):
        issuers.Issuer.create(issuer.issuer.private, "https://example.gov.in")


def test_the_issuer_key_is_a_private_file_and_never_leaves_it(
    world: tuple[Ledger, CredentialIssuer], caplog: pytest.LogCaptureFixture,
) -> None:
    ledger, issuer = world
    path = ledger.settings.issuer_key_path
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o600
    raw = issuer.issuer.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())
    pem_body = "".join(path.read_text().splitlines()[1:-1])
    with caplog.at_level(logging.DEBUG):
        text = "\n".join(json_line(c) for c in issuer.export()) + json.dumps(issuer.issuer.public_view())
    for secret in (raw.hex(), pem_body, pem_body[:20]):
        assert secret not in text and secret not in caplog.text
    store = ledger.settings.sqlite_path.read_bytes()
    wal = ledger.settings.sqlite_path.with_name(ledger.settings.sqlite_path.name + "-wal")
    store += wal.read_bytes() if wal.exists() else b""
    assert raw not in store and pem_body.encode() not in store
    assert issuers.for_settings(ledger.settings).public_multibase == issuer.issuer.public_multibase
    assert os.fspath(path).endswith("issuer.pem")


def test_signing_refuses_a_document_the_contexts_do_not_define(world: tuple[Ledger, CredentialIssuer]) -> None:
    _, issuer = world
    credential = {k: v for k, v in (issuer.for_officer("O1") or [])[0].items() if k != "proof"}
    credential["credentialSubject"] = {**credential["credentialSubject"], "postingHistory": ["MOF"]}
    with pytest.raises(proof.UndefinedTerm, match="postingHistory"):
        proof.sign(credential, issuer.issuer.private, issuer.issuer.verification_method, credential["validFrom"])


def test_credentials_follow_the_business_history(world: tuple[Ledger, CredentialIssuer]) -> None:
    ledger, issuer = world
    # O1's K-ETH completion (version 9) is retracted: it has no credential, the CLR holds K-BUD only.
    outcomes = list(ledger.ingest(lines([
        {"type": "retract", "officer_id": "O1", "versions": [9], "reason": "recorded_in_error"},
        # O3 completes K-ETH on day 11; a K-BUD completion of day 3 is reported afterwards (late).
        officer_cmd("enrol", 10, "O3", course_id="K-ETH"),
        officer_cmd("record_progress", 10, "O3", course_id="K-ETH", percent=100),
        officer_cmd("complete_course", 11, "O3", course_id="K-ETH"),
        officer_cmd("enrol", 1, "O3", course_id="K-BUD"),
        officer_cmd("record_progress", 2, "O3", course_id="K-BUD", percent=100),
        officer_cmd("attempt_assessment", 2, "O3", course_id="K-BUD", score=80),
        officer_cmd("complete_course", 3, "O3", course_id="K-BUD"),
    ])))
    assert {o.status for o in outcomes} == {"accepted"}, outcomes
    o1 = issuer.for_officer("O1") or []
    assert [c["name"] for c in o1] == ["Budgeting", "Comprehensive Learner Record"]
    assert o1[-1]["credentialSubject"]["verifiableCredential"] == o1[:1]
    o3 = issuer.for_officer("O3") or []
    assert [(c["name"], c["validFrom"]) for c in o3] == [
        ("Budgeting", "2025-04-04T03:30:00Z"), ("Ethics", "2025-04-12T03:30:00Z"),
        ("Comprehensive Learner Record", "2025-04-12T03:30:00Z")]
    assert o3[0]["credentialSubject"]["result"] == [{"type": ["Result"], "value": "80"}]
