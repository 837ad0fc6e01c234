"""`ledger credentials`: export, verify and did-document, with exit codes scripts can trust."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ledger.cli import cli
from tests.helpers import lines
from tests.test_credentials import career


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.store = f"sqlite:///{tmp_path / 'cli.db'}"
        self.key = str(tmp_path / "issuer.pem")
        self.tmp = tmp_path

    def run(self, *args: str, stdin: bytes | str | None = None, issuer: tuple[str, ...] = ()) -> tuple[int, str, str]:
        argv = ["--store", self.store, "--signing-key", str(self.tmp / "signing.pem")]
        if args and args[0] == "credentials":
            argv += ["credentials", "--issuer-key", self.key, *issuer, *args[1:]]
        else:
            argv += list(args)
        result = CliRunner().invoke(cli, argv, input=stdin)
        return result.exit_code, result.stdout, result.stderr

    def file(self, name: str, data: bytes | str) -> str:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)


def ingested(tmp_path: Path) -> Cli:
    c = Cli(tmp_path)
    code, _, err = c.run("ingest", "-", stdin="\n".join(lines(career())) + "\n")
    assert code == 0, err
    return c


def test_export_verify_and_the_officer_filter(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    code, exported, _ = c.run("credentials", "export")
    assert code == 0 and len(exported.splitlines()) == 5
    code, out, err = c.run("credentials", "verify", c.file("all.jsonl", exported))
    assert code == 0 and out.count(": verified ") == 5 and "5 verified, 0 failed" in err
    code, out, _ = c.run("credentials", "verify", "-", "--json", stdin=exported)
    assert code == 0 and [json.loads(line)["line"] for line in out.splitlines()] == [1, 2, 3, 4, 5]
    code, mine, _ = c.run("credentials", "export", "--officer", "O1")
    assert code == 0 and mine == "".join(exported.splitlines(keepends=True)[:3])
    assert c.run("credentials", "export", "--officer", "O3")[:2] == (0, "")  # nothing completed
    code, _, err = c.run("credentials", "export", "--officer", "NOBODY")
    assert code == 1 and "not registered" in err
    assert c.run("erase", "O2", "--reason", "data_principal_request", "--yes")[0] == 0
    assert c.run("credentials", "export", "--officer", "O2")[:2] == (0, "")
    assert c.run("credentials", "export")[1] == mine
    # what O2 was given before the erasure still verifies
    assert c.run("credentials", "verify", c.file("o2.jsonl", "".join(exported.splitlines(keepends=True)[3:])))[0] == 0


def test_the_export_is_byte_identical_after_a_rebuild(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    before = c.run("credentials", "export")[1]
    assert c.run("project", "--until-idle")[0] == 0
    assert c.run("rebuild", "all")[0] == 0
    assert c.run("credentials", "export")[1] == before != ""


def test_a_tampered_line_fails_alone(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    exported = c.run("credentials", "export")[1].splitlines()
    exported[1] = exported[1].replace('"name":"Ethics"', '"name":"Ethict"', 1)
    code, out, err = c.run("credentials", "verify", c.file("t.jsonl", "\n".join(exported) + "\n"))
    assert code == 1 and "1 failed" in err
    assert out.splitlines()[1].startswith("line 2: FAILED: proof: the signature does not match")
    assert all(": verified " in line for n, line in enumerate(out.splitlines()) if n != 1)


def test_hostile_input_gets_an_answer_per_line_and_never_a_traceback(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    good = c.run("credentials", "export", "--officer", "O1")[1].splitlines()[0].encode()
    nested: object = "deep"
    for _ in range(55):  # defined terms all the way down: the JSON-LD processor walks every level
        nested = {"narrative": nested}
    parsed = json.loads(good)
    parsed["credentialSubject"]["achievement"]["criteria"] = nested
    deep = json.dumps(parsed).encode()
    hostile = [
        b"\xff\xfe not UTF-8",
        b"[" * 200_000,
        b"not json",
        b"{}",
        b'"a string"',
        b'{"@context": 5, "type": ["VerifiableCredential"], "issuer": "did:key:z6Mk", "proof": {}}',
        deep,
        good.replace(b'"https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"', b'"https://evil.example/x"'),
        b"x" * (17 << 20),
        good,
    ]
    path = c.file("hostile.jsonl", b"\n".join(hostile) + b"\n")
    code, out, err = c.run("credentials", "verify", path, "--json")
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and "Traceback" not in out + err
    assert [r["line"] for r in results] == list(range(1, len(hostile) + 1))
    assert [r["ok"] for r in results] == [False] * (len(hostile) - 1) + [True]
    assert "UTF-8" in results[0]["error"] and "nested" in results[1]["error"] and "longer" in results[8]["error"]
    assert "pinned" in results[7]["error"]
    code, out, err = c.run("credentials", "verify", path)
    assert code == 1 and out.count("FAILED") == len(hostile) - 1 and "Traceback" not in out + err


def test_an_empty_or_missing_input_is_not_a_success(tmp_path: Path) -> None:
    c = Cli(tmp_path)
    code, _, err = c.run("credentials", "verify", "-", "--any-issuer", stdin=b"\n\n")
    assert code == 1 and "no credentials" in err
    code, _, err = c.run("credentials", "verify", str(tmp_path / "missing.jsonl"), "--any-issuer")
    assert code == 1 and "cannot read" in err and "Traceback" not in err


def test_did_document_and_a_did_web_issuer(tmp_path: Path) -> None:
    c = ingested(tmp_path)
    code, out, _ = c.run("credentials", "did-document")
    document = json.loads(out)
    assert code == 0 and document["id"].startswith("did:key:z6Mk")
    assert document["assertionMethod"] == [document["verificationMethod"][0]["id"]]
    assert "PRIVATE" not in out and Path(c.key).read_text() not in out
    web = ("--issuer-did", "did:web:example.gov.in:karmayogi")
    code, out, err = c.run("credentials", "did-document", issuer=web)
    assert code == 0 and "https://example.gov.in/karmayogi/did.json" in err
    did_file = c.file("did.json", out)
    exported = c.file("web.jsonl", c.run("credentials", "export", issuer=web)[1])
    trust = ("--issuer", "did:web:example.gov.in:karmayogi")
    code, out, _ = c.run("credentials", "verify", exported, *trust)
    assert code == 1 and "no DID document" in out  # the did:web document is never fetched
    code, out, _ = c.run("credentials", "verify", exported)
    assert code == 1 and "is not trusted" in out  # the default trust is the did:key of the key file
    code, out, _ = c.run("credentials", "verify", exported, "--did-document", did_file, *trust)
    assert code == 0 and "did:web:example.gov.in:karmayogi" in out
    assert c.run("credentials", "did-document", issuer=("--issuer-did", "did:web:bad host"))[0] == 1


def test_ledger_issue_stores_exactly_what_export_signs(tmp_path: Path) -> None:
    """`ledger issue` (the worker) and `ledger credentials export` (the CLI with the key) sign the same bytes."""
    from ledger.config import Settings
    from ledger.credentials.stored import stored_credential_lines
    from ledger.store.db import Database

    c = ingested(tmp_path)
    code, exported, _ = c.run("credentials", "export")
    assert code == 0
    code, _, err = c.run("issue", "--until-idle", "--issuer-key", c.key)
    assert code == 0 and "batches" in err, err
    with Database(Settings(store=c.store)).reading() as cur:
        stored = [line for officer in ("O1", "O2", "O3") for line in stored_credential_lines(cur, officer)]
    assert "".join(line + "\n" for line in stored) == exported
    code, _, err = c.run("issue", "--until-idle", "--issuer-key", c.key)
    assert code == 0 and "0 events in 0 batches" in err  # exactly once: nothing is issued twice


def test_ledger_project_issues_only_when_asked(tmp_path: Path) -> None:
    from ledger.config import Settings
    from ledger.credentials.stored import stored_credential_lines
    from ledger.store.db import Database

    c = ingested(tmp_path)
    db = Database(Settings(store=c.store))
    assert c.run("project", "--until-idle")[0] == 0
    with db.reading() as cur:
        assert stored_credential_lines(cur, "O1") == []  # the read models' projector holds no key by default
    env_run = CliRunner().invoke(cli, ["--store", c.store, "project", "--until-idle", "--issue"],
                                 env={"LEDGER_ISSUER_KEY": c.key})
    assert env_run.exit_code == 0, env_run.stderr
    with db.reading() as cur:
        assert len(stored_credential_lines(cur, "O1")) == 3


def test_ledger_rebuild_rebuilds_the_issued_credentials_where_the_key_is(tmp_path: Path) -> None:
    from ledger.config import Settings
    from ledger.store.db import Database

    c = ingested(tmp_path)
    db = Database(Settings(store=c.store))

    def tables() -> list[tuple[object, ...]]:
        with db.reading() as cur:
            cur.execute("SELECT officer_id, seq, doc FROM rm_issued_credentials ORDER BY officer_id, seq")
            rows = [tuple(r) for r in cur.fetchall()]
            cur.execute("SELECT list_no, doc FROM rm_issued_lists ORDER BY list_no")
            return rows + [tuple(r) for r in cur.fetchall()]

    def rebuild(what: str, key: str) -> tuple[int, str]:
        done = CliRunner().invoke(cli, ["--store", c.store, "rebuild", what, "--no-progress"],
                                  env={"LEDGER_ISSUER_KEY": key})
        return done.exit_code, done.stderr

    code, _, err = c.run("issue", "--until-idle", "--issuer-key", c.key)
    assert code == 0, err
    issued = tables()
    assert len(issued) == 5 + 1
    code, err = rebuild("all", c.key)
    assert code == 0 and "no issuer key" not in err and "credential_status, issued_credentials" in err
    assert tables() == issued
    code, err = rebuild("all", str(tmp_path / "elsewhere.pem"))
    assert code == 0 and "issued_credentials is not rebuilt: no issuer key here" in err
    assert not (tmp_path / "elsewhere.pem").exists() and tables() == issued
    code, err = rebuild("issued_credentials", c.key)
    assert code == 0 and "rebuilt issued_credentials" in err and tables() == issued  # (with credential_status)
