"""The shape every credential we sign or accept must have, beyond what the signature covers.

The signature covers the canonical RDF, not the JSON: JSON-LD keywords (``@index``,
``@nest``, ``@value`` objects, ...), a reordered or repeated ``@context`` list, an extra
context that defines nothing used, or a nested ``@context`` change the JSON without
changing the RDF. So a credential may use no keyword but its own top-level ``@context``,
and that list is exactly:

- AchievementCredential (or OpenBadgeCredential): ``[VC 2.0, OB 3.0]``;
- ClrCredential: ``[VC 2.0, CLR 2.0, OB 3.0]``, and each credential it holds is an
  AchievementCredential of the same issuer, with its own list as above;
- BitstringStatusListCredential (a revocation list): ``[VC 2.0]``, which defines its terms;

with the OB extensions context appended only when the credential uses one of the types it
defines (1EdTech's own CLR 2.0 vector embeds such a credential; ours never do).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.credentials import contexts
from ledger.credentials.proof import CredentialError, check_plain

ACHIEVEMENT_TYPES = ("AchievementCredential", "OpenBadgeCredential")
CLR_TYPE = "ClrCredential"
STATUS_LIST_TYPE = "BitstringStatusListCredential"


def kinds(document: dict[str, Any]) -> list[Any]:
    types = document.get("type")
    return types if isinstance(types, list) else [types]


def issuer_id(document: dict[str, Any]) -> str:
    issuer = document.get("issuer")
    found = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(found, str):
        raise CredentialError("issuer: missing, or without an id")
    return found


def _types_used(value: Any, skip: str | None) -> Iterator[str]:
    """Every string under a ``type`` key (not below the key ``skip``)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                if key == skip:
                    continue
                if key == "type":
                    yield from (t for t in (inner if isinstance(inner, list) else [inner]) if isinstance(t, str))
                stack.append(inner)


def _extension_terms() -> set[str]:
    context = contexts.pinned()[contexts.OB_EXTENSIONS]["@context"]
    return {term for term in context if not term.startswith("@") and term not in ("id", "type")}


def expected_context(document: dict[str, Any], embedded: bool = False) -> list[str]:
    """The one @context list a credential of this type may have."""
    types = kinds(document)
    if "VerifiableCredential" not in types:
        raise CredentialError("type: not a VerifiableCredential")
    if CLR_TYPE in types and not embedded:
        base = list(contexts.CLR_CONTEXT)
        skip: str | None = "credentialSubject"  # its embedded credentials have their own lists
        subject_types = set(_types_used(document.get("credentialSubject"), "verifiableCredential"))
    elif any(t in types for t in ACHIEVEMENT_TYPES):
        base, skip, subject_types = list(contexts.ACHIEVEMENT_CONTEXT), None, set()
    elif STATUS_LIST_TYPE in types and not embedded:
        return [contexts.VC_V2]
    elif embedded:
        raise CredentialError("a ClrCredential holds only AchievementCredentials")
    else:
        raise CredentialError(f"type: expected an AchievementCredential, a ClrCredential or a "
                              f"BitstringStatusListCredential, not {types!r:.100}")
    used = set(_types_used(document, skip)) | subject_types
    if used & _extension_terms():
        base.append(contexts.OB_EXTENSIONS)
    return base


def check_credential(document: Any, embedded: bool = False) -> None:
    """CredentialError (or ContextError) unless ``document`` has the shape above, embedded ones included."""
    if not isinstance(document, dict):
        raise CredentialError("not a JSON object")
    contexts.check_contexts(document)  # only pinned URLs (a clearer answer for an unknown one)
    check_plain(document)  # no keyword but @context (at any depth), bounded size
    expected = expected_context(document, embedded)
    if document.get("@context") != expected:
        raise contexts.ContextError(f"@context: must be exactly the pinned contexts {expected} "
                                    f"for this {kinds(document)[-1]!s:.60}")
    subject = document.get("credentialSubject")
    held = subject.get("verifiableCredential") if isinstance(subject, dict) else None
    is_clr = CLR_TYPE in kinds(document) and not embedded
    _no_nested_context(document, is_clr)
    if held is None:
        return
    if not is_clr:
        raise CredentialError("credentialSubject.verifiableCredential: only a ClrCredential holds credentials")
    issuer = issuer_id(document)
    for n, inner in enumerate(held if isinstance(held, list) else [held]):
        where = f"credentialSubject.verifiableCredential[{n}]"
        try:
            check_credential(inner, embedded=True)
            if issuer_id(inner) != issuer:
                raise CredentialError(f"issuer {issuer_id(inner)[:100]!r} is not the ClrCredential's issuer")
        except CredentialError as exc:
            raise CredentialError(f"{where}: {exc}") from None
        except contexts.ContextError as exc:
            raise contexts.ContextError(f"{where}.{exc}") from None


def _no_nested_context(document: dict[str, Any], is_clr: bool) -> None:
    """No @context below the top level, except at the top of a CLR's embedded credentials."""
    stack: list[tuple[Any, str]] = [(v, k) for k, v in document.items() if k != "@context"]
    while stack:
        value, where = stack.pop()
        if isinstance(value, list):
            stack.extend((v, f"{where}[{n}]") for n, v in enumerate(value))
        elif isinstance(value, dict):
            if is_clr and where.startswith("credentialSubject.verifiableCredential"):
                continue  # an embedded credential: checked on its own
            if "@context" in value:
                raise contexts.ContextError(f"{where}.@context: only a credential's top level has a @context")
            stack.extend((v, f"{where}.{k}") for k, v in value.items())
