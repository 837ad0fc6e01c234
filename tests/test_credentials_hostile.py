"""Hostile credentials: costly canonicalisation, self-signed forgeries, edits the signature does not
cover, and careless key files. Each gets a quick, clear refusal."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.credentials import build, proof
from ledger.credentials.contexts import CLR_V2, OB_EXTENSIONS, OB_V3, VC_V2
from ledger.credentials.issue import json_line, sign_credential
from ledger.credentials.issuer import Issuer
from ledger.credentials.status import status_entry
from ledger.credentials.verify import verify_one
from ledger.domain.errors import LedgerError
from ledger.integrity import checkpoint
from tests.test_credentials_cli import Cli, ingested

BASE = "https://ledger.example.gov.in"
OURS = Issuer.create(Ed25519PrivateKey.generate())
ATTACKER = Issuer.create(Ed25519PrivateKey.generate(), None, "iGOT Karmayogi")


def credentials(issuer: Issuer = OURS, completions: int = 2) -> list[dict[str, Any]]:
    """``completions`` signed AchievementCredentials and the ClrCredential holding them."""
    facts = build.OfficerFacts("OFF-1", "0b7c5c1e-0000-4000-8000-000000000001", False, [
        build.Completion(f"ev-{n}", f"K-{n}", "2025-04-06T09:00:00+05:30", 72.5) for n in range(completions)])

    def course(course_id: str) -> dict[str, Any]:
        return {"course_id": course_id, "title": f"Course {course_id}", "provider": "NIFM", "duration_hours": 4,
                "assessment": {"pass_mark": 60}, "competencies": [{"competency_id": "C1", "level": 2}]}

    def competency(cid: str) -> dict[str, Any]:
        return {"name": "Budgeting", "kind": "functional"}

    signed = [sign_credential(build.achievement_credential(facts, c, issuer.profile(), course(c.course_id), competency,
                                                           status=status_entry(BASE, 2 * n)), issuer)
              for n, c in enumerate(facts.completions)]
    clr = build.clr_credential(facts, issuer.profile(), signed, created_by=facts.completions[-1].event_id,
                               status=status_entry(BASE, 2 * len(signed) - 1))
    return [*signed, sign_credential(clr, issuer)]


def timed(text: str, **kwargs: Any) -> tuple[dict[str, Any], float]:
    start = time.monotonic()
    result = verify_one(text, **kwargs)
    return result, time.monotonic() - start


# 1. Canonicalisation that would take hours


def blank_clique(credential: dict[str, Any], n: int) -> str:
    """n named blank nodes each linking to all others (an @id-typed term): RDFC-1.0 tries n! orders."""
    hostile = copy.deepcopy(credential)
    hostile["credentialSubject"]["sub"] = [
        {"id": f"_:n{i}", "sub": [f"_:n{j}" for j in range(n) if j != i]} for i in range(n)]
    return json.dumps(hostile)


def alike_subtrees(credential: dict[str, Any], k: int) -> str:
    """No explicit blank node at all: two identical subjects of k identical identifiers (k! as well)."""
    hostile = copy.deepcopy(credential)
    identity = hostile["credentialSubject"]["identifier"][0]
    subject = {"type": ["AchievementSubject"], "identifier": [copy.deepcopy(identity) for _ in range(k)]}
    hostile["credentialSubject"] = [copy.deepcopy(subject) for _ in range(2)]
    return json.dumps(hostile)


def test_named_blank_nodes_are_refused_before_canonicalising() -> None:
    good = credentials()[0]
    result, seconds = timed(blank_clique(good, 8))  # 117 s before
    assert result["ok"] is False and "blank node" in result["error"] and seconds < 3
    for key_or_value in ({"_:p": "x"}, {"type": ["AchievementSubject", "_:t"]}):
        hostile = copy.deepcopy(good)
        hostile["credentialSubject"].update(key_or_value)
        assert "blank node" in verify_one(json.dumps(hostile))["error"]


def test_blank_nodes_that_cannot_be_told_apart_stop_at_a_work_budget() -> None:
    result, seconds = timed(alike_subtrees(credentials()[0], 8))  # 20 s before; 10 would take half an hour
    assert result["ok"] is False and "canonicalisation needs more than" in result["error"] and seconds < 3


def test_a_large_clr_stays_far_within_the_budget_and_the_size_limits() -> None:
    clr = credentials(completions=60)[-1]
    assert verify_one(json_line(clr))["ok"] is True
    canonical = proof.canonical({k: v for k, v in clr.items() if k != "proof"})
    assert canonical.count("\n") * proof.WORK_PER_QUAD + proof.WORK_ALLOWANCE > 4 * 60  # room to spare


def test_too_many_nodes_or_list_items_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    good = credentials()[0]
    hostile = copy.deepcopy(good)
    hostile["credentialSubject"]["result"] = [{"type": ["Result"], "value": "1"}] * (proof.MAX_ARRAY_ITEMS + 1)
    result, seconds = timed(json.dumps(hostile))
    assert result["ok"] is False and "items in one list" in result["error"] and seconds < 3
    monkeypatch.setattr(proof, "MAX_NODES", 100)
    hostile["credentialSubject"]["result"] = [{"type": ["Result"], "value": "1"}] * 30
    assert "too large" in verify_one(json.dumps(hostile))["error"]


def test_many_values_gathered_on_one_node_are_refused() -> None:
    """Objects with one id are one node: pyld compares each of their values with all before it."""
    hostile = credentials()[0]
    creator = hostile["credentialSubject"]["achievement"]["creator"]
    hostile["credentialSubject"]["achievement"]["creator"] = [
        {**creator, "name": [f"{copy_}-{n}" for n in range(1000)]} for copy_ in range(10)]
    result, seconds = timed(json.dumps(hostile))  # 52 s before
    assert result["ok"] is False and "too many values to gather" in result["error"] and seconds < 3


def test_the_command_answers_hostile_lines_one_by_one_and_quickly(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    exported = c.run("credentials", "export", "--officer", "O1")[1].splitlines()
    good = json.loads(exported[0])
    lines = [blank_clique(good, 8), alike_subtrees(good, 9), exported[0]]
    start = time.monotonic()
    code, out, _ = c.run("credentials", "verify", c.file("dos.jsonl", "\n".join(lines) + "\n"))
    assert time.monotonic() - start < 5
    answers = out.splitlines()
    assert code == 1 and len(answers) == 3
    assert "FAILED: explicit blank node" in answers[0] and "FAILED: canonicalisation needs" in answers[1]
    assert ": verified " in answers[2]


# 2. Trust: a valid signature by anyone is not a credential of ours


def test_a_self_signed_forgery_is_not_trusted(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    ours = c.run("credentials", "export", "--officer", "O1")[1].splitlines()[0]
    forged = {k: v for k, v in json.loads(ours).items() if k != "proof"}
    forged["issuer"] = ATTACKER.profile()  # same name, "iGOT Karmayogi"; another key
    forged["name"] = forged["credentialSubject"]["achievement"]["name"] = "Advanced Leadership"
    line = json_line(sign_credential(forged, ATTACKER))
    assert verify_one(line)["ok"] is True  # the signature alone is fine: that is the point
    path = c.file("forged.jsonl", line + "\n" + ours + "\n")
    code, out, err = c.run("credentials", "verify", path)  # default: this ledger's own issuer
    assert code == 1 and f"trusted issuers: {json.loads(ours)['issuer']['id']}" in err
    assert out.splitlines()[0] == f"line 1: FAILED: issuer {ATTACKER.did!r} is not trusted"
    assert ": verified " in out.splitlines()[1]
    code, out, _ = c.run("credentials", "verify", path, "--issuer", ATTACKER.did, "--json")
    assert code == 1 and [json.loads(x)["ok"] for x in out.splitlines()] == [True, False]
    code, out, err = c.run("credentials", "verify", path, "--any-issuer")
    assert code == 0 and out.count("signature only") == 2 and "only signatures were checked" in err
    assert c.run("credentials", "verify", path, "--any-issuer", "--issuer", ATTACKER.did)[0] == 1


def test_without_a_key_file_verify_needs_an_issuer_and_creates_no_key(tmp_path: Path) -> None:
    c = Cli(tmp_path)
    path = c.file("c.jsonl", json_line(credentials()[0]) + "\n")
    code, _, err = c.run("credentials", "verify", path)
    assert code == 1 and "--issuer" in err and "--any-issuer" in err
    assert not Path(c.key).exists()
    assert c.run("credentials", "verify", path, "--issuer", OURS.did)[0] == 0
    assert c.run("credentials", "verify", path, "--issuer", ATTACKER.did)[0] == 1


def test_a_clr_holds_only_achievement_credentials_of_its_own_issuer() -> None:
    theirs = credentials(ATTACKER)[0]
    ours = credentials()
    mixed = {k: v for k, v in ours[-1].items() if k != "proof"}
    mixed["credentialSubject"] = {**mixed["credentialSubject"], "verifiableCredential": [ours[0], theirs]}
    with pytest.raises(proof.CredentialError, match=r"verifiableCredential\[1\].*not the ClrCredential's issuer"):
        sign_credential(mixed, OURS)
    signed = proof.sign(mixed, OURS.private, OURS.verification_method, mixed["validFrom"])
    result = verify_one(json_line(signed), trusted={OURS.did, ATTACKER.did})
    assert result["ok"] is False and "not the ClrCredential's issuer" in result["error"]
    nested = {**mixed, "credentialSubject": {**mixed["credentialSubject"], "verifiableCredential": [ours[-1]]}}
    signed = proof.sign(nested, OURS.private, OURS.verification_method, mixed["validFrom"])
    assert "only AchievementCredentials" in verify_one(json_line(signed))["error"]


# 3. JSON edits that leave the canonical RDF, and so the signature, unchanged


def _edits() -> list[tuple[str, Any]]:
    def achievement(c: dict[str, Any]) -> dict[str, Any]:
        return c["credentialSubject"]["achievement"]  # type: ignore[no-any-return]

    return [
        ("@index at the top", lambda c: c.update({"@index": "REVOKED - do not trust"})),
        ("@index in achievement", lambda c: achievement(c).update({"@index": "Score 100"})),
        ("@nest", lambda c: c.update({"@nest": {"name": c.pop("name")}})),
        ("@value and @direction", lambda c: c.update(name={"@value": c["name"], "@direction": "rtl"})),
        ("id as @id", lambda c: c.update({"@id": c.pop("id")})),
        ("[VC, CLR, OB]", lambda c: c.update({"@context": [VC_V2, CLR_V2, OB_V3]})),
        ("[VC, OB, OB]", lambda c: c.update({"@context": [VC_V2, OB_V3, OB_V3]})),
        ("[VC, VC, OB]", lambda c: c.update({"@context": [VC_V2, VC_V2, OB_V3]})),
        ("extensions added", lambda c: c["@context"].append(OB_EXTENSIONS)),
        ("nested @context", lambda c: achievement(c).update({"@context": [VC_V2, OB_EXTENSIONS]})),
    ]


@pytest.mark.parametrize(("label", "edit"), _edits(), ids=[label for label, _ in _edits()])
def test_an_edit_the_signature_does_not_cover_fails(label: str, edit: Any) -> None:
    good = credentials()[0]
    assert verify_one(json_line(good))["ok"] is True
    changed = copy.deepcopy(good)
    edit(changed)
    result = verify_one(json_line(changed))
    assert result["ok"] is False, label
    unsigned = {k: v for k, v in changed.items() if k != "proof"}
    with pytest.raises(LedgerError):  # and the issuer's own signing path refuses it too
        sign_credential(unsigned, OURS)


def test_a_clr_and_its_embedded_credentials_have_exact_contexts() -> None:
    clr = credentials()[-1]
    for context in ([VC_V2, OB_V3, CLR_V2], [VC_V2, CLR_V2, OB_V3, OB_EXTENSIONS], [VC_V2, OB_V3]):
        changed = copy.deepcopy(clr)
        changed["@context"] = context
        assert "@context" in verify_one(json_line(changed))["error"]
    changed = copy.deepcopy(clr)
    changed["credentialSubject"]["verifiableCredential"][0]["@context"].append(OB_EXTENSIONS)
    result = verify_one(json_line(changed))
    assert result["ok"] is False and "verifiableCredential[0].@context" in result["error"]
    changed = copy.deepcopy(clr)
    changed["credentialSubject"]["verifiableCredential"][1]["@index"] = "x"
    assert "@index" in verify_one(json_line(changed))["error"]


# 4. Key files


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    checkpoint.SigningKey.load_or_create(path)
    os.chmod(path, 0o644)
    with pytest.raises(checkpoint.CheckpointError, match="chmod 600"):
        checkpoint.SigningKey.load_or_create(path)
    c = ingested(tmp_path)
    c.key = str(tmp_path / "shared-issuer.pem")
    checkpoint.SigningKey.load_or_create(Path(c.key))
    os.chmod(c.key, 0o640)
    for command in (("credentials", "export"), ("credentials", "verify", c.file("x.jsonl", "{}\n"))):
        code, out, err = c.run(*command)
        assert code == 1 and "issuer key" in err and "chmod 600" in err and out == ""


def test_the_issuer_key_cannot_be_the_checkpoint_key(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    c.key = str(tmp_path / "signing.pem")  # the file Cli passes as --signing-key
    code, out, err = c.run("credentials", "export")
    assert code == 1 and "also the checkpoint signing key" in err and out == ""
    assert not Path(c.key).exists()  # refused before creating anything
