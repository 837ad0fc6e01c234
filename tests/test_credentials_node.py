"""An independent verifier checks our output: Digital Bazaar's @digitalbazaar/vc with eddsa-rdfc-2022.

``tests/vc-verifier/`` pins the exact versions in its ``package-lock.json``; ``npm ci``
there installs them (``make test`` does). Every credential exported for a generated
dataset must verify; one-byte changes (name, validFrom, subject, score, issuer) and an
undefined property must each fail.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.credentials.issue import CredentialIssuer, json_line
from ledger.credentials.issuer import for_settings
from ledger.credentials.stored import stored_credential_lines, stored_list
from ledger.generate import generate_lines
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import issue_credentials, present

VERIFIER = Path(__file__).parent / "vc-verifier"
CONTEXTS = Path(__file__).parent.parent / "ledger" / "credentials" / "contexts"


def node_verify(lines: list[str], lists: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each line's result from the Node verifier; ``lists``: the status list credentials it
    may load (by their ids, as ``GET /credentials/status/<n>`` serves them)."""
    node = shutil.which("node")
    installed = all((VERIFIER / "node_modules" / "@digitalbazaar" / name).is_dir()
                    for name in ("vc", "vc-bitstring-status-list"))
    if node is None or not installed:
        message = "the Node verifier is not installed (node on PATH, then `npm ci` in tests/vc-verifier)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as served:
        served.write("".join(json_line(credential) + "\n" for credential in lists or []))
        served.flush()
        done = subprocess.run([node, str(VERIFIER / "verify.mjs"), str(CONTEXTS), served.name],
                              input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=300,
                              cwd=VERIFIER)
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(lines), done.stderr
    assert done.returncode == (0 if all(r["ok"] for r in results) else 1)
    return results


@pytest.fixture
def issued(sqlite_settings: Settings, tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A generated population's credentials as the issuing worker stored them (and the API serves
    them), equal byte for byte to the export, and the status list they name, as stored."""
    settings = replace(sqlite_settings, issuer_key=str(tmp_path / "issuer.pem"))
    ledger = Ledger(settings)
    outcomes = list(ledger.ingest(generate_lines(officers=12, seed=14)))
    assert sum(o.status == "accepted" for o in outcomes) > 100
    issue_credentials(settings)
    db = Database(settings)
    with db.reading() as c:
        c.execute("SELECT DISTINCT officer_id FROM rm_issued_credentials ORDER BY officer_id")
        stored = [line for (officer_id,) in c.fetchall() for line in stored_credential_lines(c, officer_id)]
        status_list = present(stored_list(c, 0))
    issuer = CredentialIssuer(ledger, for_settings(settings))
    assert stored == [json_line(credential) for credential in issuer.export()]
    assert status_list == json_line(present(issuer.status_list(0)))
    return [json.loads(line) for line in stored], [json.loads(status_list)]


def test_every_exported_credential_verifies_independently(
    issued: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    exported, lists = issued
    kinds = {c["type"][1] for c in exported}
    assert kinds == {"AchievementCredential", "ClrCredential"}
    results = node_verify([json_line(c) for c in exported], lists)
    assert [r for r in results if not r["ok"]] == []
    assert {(r["revoked"], r["listLength"]) for r in results} == {(False, 131_072)}
    # The list itself verifies as a credential too (it carries no status of its own).
    assert node_verify([json_line(lists[0])])[0]["ok"] is True


def test_changed_credentials_fail_independently(issued: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    exported, lists = issued
    assessed = next(c for c in exported if "result" in c["credentialSubject"])
    clr = next(c for c in exported if c["type"][1] == "ClrCredential")

    def changed(credential: dict[str, Any], change: Any) -> str:
        copied = copy.deepcopy(credential)
        change(copied)
        return json_line(copied)

    def flip(text: str) -> str:
        return text[:-1] + chr(ord(text[-1]) ^ 1)

    subject = "credentialSubject"
    variants = [
        changed(assessed, lambda c: c.update(name=flip(c["name"]))),
        changed(assessed, lambda c: c.update(validFrom=c["validFrom"].replace(":", ";", 1))),
        changed(assessed, lambda c: c[subject]["identifier"][0].update(identityHash=flip(
            c[subject]["identifier"][0]["identityHash"]))),
        changed(assessed, lambda c: c[subject]["result"][0].update(value=flip(c[subject]["result"][0]["value"]))),
        changed(assessed, lambda c: c["issuer"].update(name=flip(c["issuer"]["name"]))),
        changed(assessed, lambda c: c["issuer"].update(id=flip(c["issuer"]["id"]))),
        changed(assessed, lambda c: c[subject].update(officerName="Asha Verma")),  # undefined: dropped
        changed(clr, lambda c: c[subject]["verifiableCredential"][0].update(name="Forged")),
    ]
    results = node_verify(variants, lists)
    assert [r["ok"] for r in results] == [False] * len(variants)
    assert "Safe mode" in " ".join(results[6]["errors"])
