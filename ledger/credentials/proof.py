"""Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite (W3C VC Data Integrity EdDSA).

To sign: canonicalise the credential without its proof (RDFC-1.0, which pyld calls
URDNA2015) and the proof options with the credential's ``@context``; sha256 each; sign
``proofHash || documentHash`` with Ed25519; ``proofValue`` is ``"z"`` + base58btc of
the signature. Verifying recomputes both hashes from what it was given.

Canonicalisation uses only the pinned contexts (:mod:`ledger.credentials.contexts`) and
refuses any document with a term they do not define: a JSON-LD processor silently
drops an undefined property (or a relative ``type`` or ``id``), so a signature would
not cover it. That check runs before signing and before verifying.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld.context_resolver import ContextResolver
from pyld.jsonld import JsonLdError, JsonLdProcessor

from ledger.credentials.contexts import check_contexts, load_document
from ledger.domain.errors import LedgerError

CRYPTOSUITE = "eddsa-rdfc-2022"
PROOF_TYPE = "DataIntegrityProof"
PURPOSE = "assertionMethod"

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
# An IRI pyld keeps (scheme ":" ...) or a blank node; anything else is dropped from the RDF.
_ABSOLUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*|_):\S*")
# Resolved pinned contexts, shared by every canonicalisation (only pinned URLs ever get here).
_RESOLVED: dict[Any, Any] = {}


class CredentialError(LedgerError):
    """A credential that cannot be signed or does not verify."""


class UndefinedTerm(CredentialError):
    """A property, type or id that the pinned contexts do not define (it would be dropped)."""


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as multibase ``z`` uses it."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rest = divmod(number, 58)
        digits.append(_ALPHABET[rest])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """The bytes of a base58 text; ValueError for a character outside the alphabet."""
    if len(text) > 256:
        raise ValueError("longer than any key or signature")
    number = 0
    for char in text:
        if char not in _INDEX:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + _INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def _undefined(expanded: Any, found: list[str]) -> None:
    """Collect every ``@id`` and ``@type`` of the expanded form that is not an absolute IRI."""
    if isinstance(expanded, list):
        for item in expanded:
            _undefined(item, found)
        return
    if not isinstance(expanded, dict):
        return
    value_object = "@value" in expanded
    for key, value in expanded.items():
        if key == "@id" and isinstance(value, str) and not _ABSOLUTE.fullmatch(value):
            found.append(f"id {value[:80]!r} (not an absolute IRI)")
        elif key == "@type" and not value_object:
            for t in value if isinstance(value, list) else [value]:
                if isinstance(t, str) and not _ABSOLUTE.fullmatch(t):
                    found.append(f"type {t[:80]!r}")
        elif key == "@type" and isinstance(value, str) and not _ABSOLUTE.fullmatch(value):
            found.append(f"datatype {value[:80]!r}")
        elif key != "@value":
            _undefined(value, found)


def _options() -> dict[str, Any]:
    return {
        "documentLoader": load_document,
        "contextResolver": ContextResolver(_RESOLVED, load_document),
        "processingMode": "json-ld-1.1",
        # No base: a relative IRI stays relative, so _undefined finds it. (pyld would
        # otherwise resolve it against http://example.org/base/, where jsonld.js drops it.)
        "base": None,
    }


class _CheckedProcessor(JsonLdProcessor):  # type: ignore[misc]
    """pyld's processor, refusing the expansion it is about to turn into RDF if it dropped anything.

    Checking inside ``expand`` checks exactly what is canonicalised, in one expansion.
    """

    def __init__(self) -> None:
        self.dropped: list[str] = []
        super().__init__(on_property_dropped=lambda p: self.dropped.append(str(p)))

    def expand(self, input_: Any, options: Any) -> Any:
        expanded = super().expand(input_, options)
        problems = [f"property {p[:80]!r}" for p in self.dropped]
        _undefined(expanded, problems)
        if problems:
            raise UndefinedTerm("not defined by the pinned contexts (a JSON-LD processor would drop it): "
                                + ", ".join(sorted(set(problems))[:5]))
        return expanded


def canonical(document: dict[str, Any]) -> str:
    """The RDFC-1.0 canonical N-Quads of ``document``; UndefinedTerm if anything would be dropped."""
    check_contexts(document)
    try:
        nquads: str = _CheckedProcessor().normalize(
            document, {**_options(), "algorithm": "URDNA2015", "format": "application/n-quads"}
        )
    except JsonLdError as exc:
        raise CredentialError(f"JSON-LD: {_cause(exc)}") from None
    return nquads


def _cause(exc: BaseException) -> str:
    """The innermost message of a pyld error chain (where the real reason is)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


@dataclass(frozen=True)
class Hashes:
    """What eddsa-rdfc-2022 signs, step by step (the test vectors publish each)."""

    document_canon: str
    proof_canon: str

    @property
    def document_hash(self) -> bytes:
        return hashlib.sha256(self.document_canon.encode("utf-8")).digest()

    @property
    def proof_hash(self) -> bytes:
        return hashlib.sha256(self.proof_canon.encode("utf-8")).digest()

    @property
    def data_to_sign(self) -> bytes:
        return self.proof_hash + self.document_hash


def hashes(unsigned: dict[str, Any], options: dict[str, Any]) -> Hashes:
    """Canonicalise the credential (without proof) and the proof options (with its @context)."""
    body = {k: v for k, v in unsigned.items() if k != "proof"}
    config = {"@context": unsigned.get("@context"), **{k: v for k, v in options.items() if k != "proofValue"}}
    return Hashes(canonical(body), canonical(config))


def proof_options(verification_method: str, created: str) -> dict[str, Any]:
    """The proof without its value, in the order the vectors use."""
    return {
        "type": PROOF_TYPE,
        "created": created,
        "verificationMethod": verification_method,
        "cryptosuite": CRYPTOSUITE,
        "proofPurpose": PURPOSE,
    }


def sign(unsigned: dict[str, Any], key: Ed25519PrivateKey, verification_method: str,
         created: str) -> dict[str, Any]:
    """``unsigned`` with a DataIntegrityProof (Ed25519 is deterministic: same input, same bytes)."""
    if "proof" in unsigned:
        raise CredentialError("proof: the credential is already signed")
    options = proof_options(verification_method, created)
    signature = key.sign(hashes(unsigned, options).data_to_sign)
    return {**unsigned, "proof": {**options, "proofValue": "z" + b58encode(signature)}}


def the_proof(document: dict[str, Any]) -> dict[str, Any]:
    """The one proof of a signed document (an object, or a list holding one)."""
    proof = document.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if not isinstance(proof, dict):
        raise CredentialError("proof: expected exactly one proof object")
    for field, expected in (("type", PROOF_TYPE), ("cryptosuite", CRYPTOSUITE), ("proofPurpose", PURPOSE)):
        if proof.get(field) != expected:
            raise CredentialError(f"proof.{field}: expected {expected!r}")
    for field in ("verificationMethod", "proofValue"):
        if not isinstance(proof.get(field), str):
            raise CredentialError(f"proof.{field}: missing or not a string")
    if "created" in proof and not isinstance(proof["created"], str):
        raise CredentialError("proof.created: not a string")
    return proof


def check(document: dict[str, Any], public: Ed25519PublicKey) -> None:
    """Raise CredentialError unless ``document``'s proof verifies with ``public``."""
    proof = the_proof(document)
    value = proof["proofValue"]
    try:
        if not value.startswith("z"):
            raise ValueError("not base58btc multibase")
        signature = b58decode(value[1:])
    except ValueError as exc:
        raise CredentialError(f"proof.proofValue: {exc}") from None
    if len(signature) != 64:
        raise CredentialError("proof.proofValue: not a 64-byte Ed25519 signature")
    try:
        public.verify(signature, hashes(document, proof).data_to_sign)
    except InvalidSignature:
        raise CredentialError("proof: the signature does not match the credential "
                              "(altered, or signed by another key)") from None
