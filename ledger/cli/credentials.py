"""Commands for portable credentials: export the signed Open Badges / CLR credentials, verify them, publish the DID."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

import click

from ledger.cli.common import Context, issuer_options
from ledger.cli.render import emit_json, err, fail


@click.group("credentials")
@issuer_options
@click.pass_obj
def credentials(obj: Context, issuer_key: str | None, issuer_did: str | None, issuer_name: str | None,
                public_url: str | None) -> None:
    """Open Badges 3.0 and CLR 2.0 credentials: signed, portable, verifiable offline.

    One AchievementCredential per completed course and one ClrCredential per officer
    holding them, derived from the events alone and signed (eddsa-rdfc-2022) with the
    issuer key, which lives in a file outside the database. Each carries its place in a
    revocation status list (W3C Bitstring Status List); `status` prints the lists.
    """
    obj.settings = obj.settings.with_overrides(issuer_key=issuer_key, issuer_did=issuer_did,
                                               issuer_name=issuer_name, public_url=public_url)


def _issuer(obj: Context) -> Any:
    from ledger.credentials.issuer import for_settings

    return for_settings(obj.settings)


@credentials.command("export")
@click.option("--officer", "officer_id", metavar="ID", help="Only this officer's lines of the full export.")
@click.pass_obj
def export(obj: Context, officer_id: str | None) -> None:
    """Write the credentials as JSON Lines, one signed credential a line.

    For each officer who is not erased, in officer id order: an AchievementCredential
    per completed course, then the ClrCredential holding them. The same events give
    byte-identical output. With --officer, nothing for an erased officer; exit 1 for
    an unknown one.
    """
    from ledger.credentials.issue import CredentialIssuer, json_line

    issuer = CredentialIssuer(obj.ledger, _issuer(obj))
    if officer_id is not None:
        found = issuer.for_officer(officer_id)
        if found is None:
            fail(f"officer {officer_id!r} is not registered")
        lines = iter(found)
    else:
        lines = issuer.export()
    for credential in lines:
        sys.stdout.write(json_line(credential) + "\n")


@credentials.command("status")
@click.option("--list", "list_no", type=click.IntRange(min=0), metavar="N",
              help="Only status list N (exit 1 when no credential has a place in it).")
@click.pass_obj
def status(obj: Context, list_no: int | None) -> None:
    """Print the signed revocation status lists, one JSON line each (as GET /credentials/status/<n>).

    Each is a W3C BitstringStatusListCredential of 131,072 entries: a set bit is a revoked
    credential (its completion was retracted, or it is a ClrCredential that held one).
    Without --list, every list that holds a credential, in order.
    """
    from ledger.credentials.issue import CredentialIssuer, json_line

    issuer = CredentialIssuer(obj.ledger, _issuer(obj))
    lists = issuer.lists
    numbers = [list_no] if list_no is not None else lists.numbers() if lists is not None else []
    for number in numbers:
        found = issuer.status_list(number)
        if found is None:
            fail(f"no status list {number}: no credential has a place in it")
        sys.stdout.write(json_line(found) + "\n")
    if not numbers:
        err.print("no status list yet: no credential has been issued", highlight=False, markup=False)


def _did_documents(files: tuple[str, ...]) -> dict[str, Any]:
    from ledger.domain.errors import LedgerError
    from ledger.write.strictjson import decode_json

    documents: dict[str, Any] = {}
    for name in files:
        try:
            document = decode_json(Path(name).read_bytes(), max_bytes=1 << 20)
        except OSError as exc:
            fail(f"--did-document: cannot read {name}: {exc.strerror}")
        except LedgerError as exc:
            fail(f"--did-document {name}: {exc}")
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            fail(f"--did-document {name}: not a DID document (an object with an id)")
        documents[document["id"]] = document
    return documents


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _trusted(obj: Context, issuers: tuple[str, ...], any_issuer: bool,
             documents: dict[str, Any]) -> set[str] | None:
    """The issuer DIDs to trust (None: --any-issuer, signatures only)."""
    from ledger.credentials.issuer import existing

    if issuers and any_issuer:
        fail("--issuer and --any-issuer exclude each other")
    if any_issuer:
        return None
    if issuers:
        return set(issuers)
    own = existing(obj.settings)  # never creates a key
    if own is None:
        fail(f"no issuer to trust: this ledger has no issuer key ({obj.settings.issuer_key_path}); "
             "name the issuers you trust with --issuer DID, or check signatures only with --any-issuer")
    documents.setdefault(own.did, own.did_document())  # our own did:web needs no published copy
    return {own.did}


@credentials.command("verify")
@click.argument("file", metavar="FILE|-")
@click.option("--issuer", "issuers", multiple=True, metavar="DID",
              help="Trust credentials issued by this DID (repeatable). Default: this ledger's own issuer, "
                   "when its key file exists.")
@click.option("--any-issuer", is_flag=True,
              help="Trust any issuer: check signatures only (anyone can sign with a key of their own).")
@click.option("--did-document", "did_document_files", multiple=True, metavar="FILE",
              help="The DID document of a did:web issuer (repeatable); DIDs are never fetched.")
@click.option("--json", "as_json", is_flag=True, help='One {"line", "ok", "id", "type", "issuer", "trusted"} or '
              '{"line", "ok": false, "error"} per credential.')
@click.pass_obj
def verify(obj: Context, file: str, issuers: tuple[str, ...], any_issuer: bool,
           did_document_files: tuple[str, ...], as_json: bool) -> None:
    """Verify JSON Lines credentials (FILE, or - for stdin) with the ledger's own verifier.

    Each line must be one credential issued by a trusted issuer: the DIDs given with
    --issuer, else this ledger's own issuer (its key file must exist; it is never
    created here), else nothing verifies until you name one; --any-issuer checks
    signatures only. Each credential must use exactly the pinned contexts, every term
    defined by them and no other JSON-LD keyword, one eddsa-rdfc-2022 proof by a key
    of its issuer (a did:key carries its key; a did:web needs --did-document), and, for
    a CLR, hold only AchievementCredentials of the same issuer that verify too. No
    store is needed. Exit 0 when every line verified, 1 when any did not (or there was none).
    """
    from ledger.credentials.verify import verify_lines

    documents = _did_documents(did_document_files)
    trusted = _trusted(obj, issuers, any_issuer, documents)
    note = "" if trusted is not None else " (signature only: issuer not checked, --any-issuer)"
    stream: IO[bytes]
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        fail(f"FILE: cannot read {file}: {exc.strerror}")
    good = bad = 0
    try:
        for result in verify_lines(stream, documents, trusted):
            if result["ok"]:
                good += 1
                result["trusted"] = trusted is not None
            else:
                bad += 1
            if as_json:
                emit_json(result)
            elif result["ok"]:
                sys.stdout.write(f"line {result['line']}: verified {result['type']} "
                                 f"{_printable(str(result['id']))} issued by {_printable(result['issuer'])}{note}\n")
            else:
                sys.stdout.write(f"line {result['line']}: FAILED: {_printable(result['error'])}\n")
    except OSError as exc:
        fail(f"FILE: cannot read {file}: {exc.strerror}")
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    err.print(f"{good + bad:,} credentials: {good:,} verified, {bad:,} failed", highlight=False, markup=False)
    if trusted is None:
        err.print("--any-issuer: only signatures were checked, not who signed; anyone can sign a credential "
                  "with a key of their own", highlight=False, markup=False)
    else:
        err.print(f"trusted issuers: {', '.join(sorted(trusted))}", highlight=False, markup=False, emoji=False)
    if good + bad == 0:
        err.print("no credentials in the input", highlight=False, markup=False)
    sys.exit(0 if good and not bad else 1)


@credentials.command("did-document")
@click.pass_obj
def did_document(obj: Context) -> None:
    """Print the issuer's DID document (for a did:web, publish it where the DID says)."""
    from ledger.credentials.issuer import did_web_url

    issuer = _issuer(obj)
    sys.stdout.write(json.dumps(issuer.did_document(), indent=2) + "\n")
    url = did_web_url(issuer.did)
    if url is not None:
        err.print(f"publish it at {url}", highlight=False, markup=False)


COMMANDS: tuple[click.Command, ...] = (credentials,)
