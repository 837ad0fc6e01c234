"""Verifying credentials with our own code: for holders, integrators and our tests.

A credential verifies when it has the shape of :mod:`ledger.credentials.rules` (exact
``@context`` lists, no other JSON-LD keyword), every term it uses is defined by the pinned
contexts, its issuer is one of the trusted DIDs (when a set is given), its one
``eddsa-rdfc-2022`` proof is by a key of that issuer (a ``did:key`` carries the key; any
other issuer needs its DID document, given, never fetched), and the signature matches; a
ClrCredential's embedded credentials must be AchievementCredentials of the same issuer
and each verify too. JSON Lines input is answered per line, whatever the bytes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from ledger.credentials import proof, rules
from ledger.credentials.issuer import resolve_key
from ledger.domain.errors import LedgerError
from ledger.write.lines import read_lines
from ledger.write.strictjson import decode_json

# A CLR of an officer with hundreds of completions is well under a megabyte.
MAX_CREDENTIAL_BYTES = 16 << 20
# A CLR nests about ten levels; the limit keeps hostile nesting far from any recursion limit.
MAX_DEPTH = 64
_TYPES = ("AchievementCredential", "OpenBadgeCredential", "ClrCredential", "BitstringStatusListCredential")


def _kind(document: Mapping[str, Any]) -> str:
    types = document.get("type")
    types = types if isinstance(types, list) else [types]
    if "VerifiableCredential" not in types:
        raise proof.CredentialError("type: not a VerifiableCredential")
    return next((t for t in types if t in _TYPES), "VerifiableCredential")


def verify_credential(document: Any, did_documents: Mapping[str, Mapping[str, Any]] | None = None,
                      where: str = "", trusted: Collection[str] | None = None) -> dict[str, Any]:
    """Check one credential (and any it embeds); its id, type and issuer, or CredentialError.

    ``trusted``: the issuer DIDs to accept; None checks signatures only (anyone can sign).
    """
    if not isinstance(document, dict):
        raise proof.CredentialError(f"{where}not a JSON object")
    try:
        kind = _kind(document)
        issuer_id = rules.issuer_id(document)
        if trusted is not None and issuer_id not in trusted:
            raise proof.CredentialError(f"issuer {issuer_id[:100]!r} is not trusted")
        if not where:
            rules.check_credential(document)  # the whole shape, embedded credentials included
        the_proof = proof.the_proof(document)
        key = resolve_key(the_proof["verificationMethod"], issuer_id, did_documents or {})
        proof.check(document, key)
    except proof.CredentialError as exc:
        raise proof.CredentialError(f"{where}{exc}") from None
    subject = document.get("credentialSubject")
    embedded = subject.get("verifiableCredential") if isinstance(subject, dict) else None
    if embedded is not None:
        for n, inner in enumerate(embedded if isinstance(embedded, list) else [embedded]):
            verify_credential(inner, did_documents, f"{where}credentialSubject.verifiableCredential[{n}]: ",
                              trusted)
    ident = document.get("id")
    return {"id": ident if isinstance(ident, str) else None, "type": kind, "issuer": issuer_id}


def verify_one(text: str | bytes, did_documents: Mapping[str, Mapping[str, Any]] | None = None,
               trusted: Collection[str] | None = None) -> dict[str, Any]:
    """One JSON text's result: ``{"ok": true, "id", "type", "issuer"}`` or ``{"ok": false, "error"}``.

    The boundary for one item: whatever the text holds, it gets an answer.
    """
    try:
        summary = verify_credential(
            decode_json(text, max_bytes=MAX_CREDENTIAL_BYTES, max_depth=MAX_DEPTH), did_documents, trusted=trusted
        )
    except LedgerError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # a hostile document may break the JSON-LD processor in any way
        return {"ok": False, "error": f"cannot be processed as a credential ({type(exc).__name__})"}
    return {"ok": True, **summary}


def verify_lines(stream: IO[bytes], did_documents: Mapping[str, Mapping[str, Any]] | None = None,
                 trusted: Collection[str] | None = None) -> Iterator[dict[str, Any]]:
    """``{"line": N, "ok", ...}`` for each non-blank line of a JSON Lines stream."""
    for number, text in read_lines(stream, max_bytes=MAX_CREDENTIAL_BYTES):
        if isinstance(text, LedgerError):
            yield {"line": number, "ok": False, "error": str(text)}
        else:
            yield {"line": number, **verify_one(text, did_documents, trusted)}
