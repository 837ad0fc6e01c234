"""Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite (W3C VC Data Integrity EdDSA).

To sign: canonicalise the credential without its proof (RDFC-1.0, which pyld calls
URDNA2015) and the proof options with the credential's ``@context``; sha256 each; sign
``proofHash || documentHash`` with Ed25519; ``proofValue`` is ``"z"`` + base58btc of
the signature. Verifying recomputes both hashes from what it was given.

Canonicalisation uses only the pinned contexts (:mod:`ledger.credentials.contexts`) and
refuses any document with a term they do not define: a JSON-LD processor silently
drops an undefined property (or a relative ``type`` or ``id``), so a signature would
not cover it. That check runs before signing and before verifying.

Canonicalising is bounded: a document may hold no explicit blank node (``_:``), no
JSON-LD keyword but ``@context``, at most :data:`MAX_NODES` JSON values, and no lists
or repeated nodes that make pyld's expansion quadratic beyond a budget; RDFC-1.0's search
among blank nodes that cannot be told apart (factorial in the worst case, even without
explicit ids) may spend only a budget linear in the number of quads. Past any of these
the document is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyld.canon import URDNA2015
from pyld.context_resolver import ContextResolver
from pyld.identifier_issuer import IdentifierIssuer
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
# JSON values (objects, arrays, strings, numbers, ...) in one document. An AchievementCredential
# has about 80 and a ClrCredential about 80 per completion held, so this admits a CLR of some
# 3,000 completions (an officer with hundreds of completions is far below it).
MAX_NODES = 250_000
# pyld gathers the values of each property of each node (all objects with one id are one node)
# checking each new one against those before it: quadratic. The sum of those comparisons is
# bounded, and so is one list: a CLR of 2,000 completions, or a course aligned to 1,000
# competencies, fits; a document built for the quadratic cost does not.
MAX_ARRAY_ITEMS = 2_000
MAX_MERGE_WORK = 5_000_000
# RDFC-1.0 work allowed: Hash N-Degree Quads runs, related blank nodes looked at and
# permutations tried, per quad of the document beyond a fixed allowance. Our credentials
# need less than one step per quad; blank nodes that cannot be told apart (even without
# explicit ids) make the work grow factorially, and such a document is refused instead.
WORK_PER_QUAD = 2
WORK_ALLOWANCE = 2_000


class CredentialError(LedgerError):
    """A credential that cannot be signed or does not verify."""


class UndefinedTerm(CredentialError):
    """A property, type or id that the pinned contexts do not define (it would be dropped)."""


class Unbounded(CredentialError):
    """A document too large, or too costly to canonicalise, to be a credential of ours."""


def check_plain(document: Any) -> None:
    """Refuse JSON-LD keywords but ``@context``, and documents too large or too costly to expand.

    A key starting with ``@`` (``@index``, ``@nest``, ``@id``, ``@value``, ``@direction``, ...)
    is a JSON form that the canonical RDF, and so the signature, does not cover; our
    credentials use only ``id`` and ``type``, which the contexts alias to ``@id`` and ``@type``.
    Size: at most MAX_NODES values, MAX_ARRAY_ITEMS items in a list, MAX_MERGE_WORK comparisons
    for gathering the values of each property of each node (see there).
    """
    stack: list[tuple[Any, str]] = [(document, "")]
    nodes = 0
    merge_work = 0
    merged: dict[tuple[str, str], set[Any]] = {}  # (node id, property) -> its distinct values
    while stack:
        value, where = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise Unbounded(f"more than {MAX_NODES:,} JSON values: too large for a credential")
        if isinstance(value, list):
            if len(value) > MAX_ARRAY_ITEMS:
                raise Unbounded(f"{where or 'document'}: more than {MAX_ARRAY_ITEMS:,} items in one list")
            stack.extend((v, f"{where}[{n}]") for n, v in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        node = value.get("id") if isinstance(value.get("id"), str) else None
        for key, item in value.items():
            here = f"{where}.{key[:40]}" if where else key[:40]
            if key == "@context":
                continue  # a list of pinned URLs: contexts.check_contexts
            if key.startswith("@"):
                raise CredentialError(f"{here}: the JSON-LD keyword {key[:40]!r} is not allowed "
                                      "(a credential uses none but its @context)")
            items = item if isinstance(item, list) else [item]
            if node is None:  # a node of its own
                merge_work += len(items) * (len(items) - 1) // 2
            elif key != "id":  # one node with every other object of this id
                seen = merged.setdefault((node, key), set())
                for v in items:
                    token = (("id", v.get("id")) if isinstance(v, dict) and isinstance(v.get("id"), str)
                             else ("object", id(v)) if isinstance(v, dict | list) else ("value", repr(v)))
                    if token not in seen:
                        merge_work += len(seen)
                        seen.add(token)
            if merge_work > MAX_MERGE_WORK:
                raise Unbounded(f"{here}: too many values to gather for one property (over "
                                f"{MAX_MERGE_WORK:,} comparisons): too costly for a credential")
            stack.append((item, here))


class _Work:
    """Counts RDFC-1.0's deep work and stops it past its budget."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self) -> None:
        self.spent += 1
        if self.spent > self.limit:
            raise Unbounded(f"canonicalisation needs more than {self.limit:,} steps (blank nodes that "
                            "cannot be told apart): refused, no credential of ours does that")


class _CountingIssuer(IdentifierIssuer):  # type: ignore[misc]
    """The canonical issuer; RDFC-1.0 asks it once per related blank node of every permutation it tries."""

    def __init__(self, prefix: str, work: _Work) -> None:
        super().__init__(prefix)
        self.work = work

    def has_id(self, old: str) -> bool:
        self.work.spend()
        return bool(super().has_id(old))


class _BoundedURDNA2015(URDNA2015):  # type: ignore[misc]
    """pyld's URDNA2015 (RDFC-1.0) with a work budget; the output is the same when within it."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.work = _Work(limit)
        self.canonical_issuer = _CountingIssuer("_:c14n", self.work)

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        self.work.spend()
        return super().hash_n_degree_quads(id_, issuer)




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


def _undefined(expanded: Any, found: list[str], blank: list[str]) -> None:
    """Collect every ``@id`` and ``@type`` of the expanded form that is not an absolute IRI,
    and in ``blank`` every explicit blank node (``_:`` id, type or property)."""
    if isinstance(expanded, list):
        for item in expanded:
            _undefined(item, found, blank)
        return
    if not isinstance(expanded, dict):
        return
    value_object = "@value" in expanded
    for key, value in expanded.items():
        if key.startswith("_:"):
            blank.append(f"property {key[:40]!r}")
        if key == "@id" and isinstance(value, str) and value.startswith("_:"):
            blank.append(f"id {value[:40]!r}")
        elif key == "@id" and isinstance(value, str) and not _ABSOLUTE.fullmatch(value):
            found.append(f"id {value[:80]!r} (not an absolute IRI)")
        elif key == "@type":
            for t in value if isinstance(value, list) else [value]:
                if isinstance(t, str) and t.startswith("_:"):
                    blank.append(f"type {t[:40]!r}")
                elif isinstance(t, str) and not _ABSOLUTE.fullmatch(t):
                    found.append(f"{'datatype' if value_object else 'type'} {t[:80]!r}")
        elif key != "@value":
            _undefined(value, found, blank)


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
        blank: list[str] = []
        _undefined(expanded, problems, blank)
        if blank:
            # Named blank nodes can be linked alike so that canonicalising them takes factorial time.
            raise CredentialError("explicit blank node (_:) not allowed, credentials name none: "
                                  + ", ".join(sorted(set(blank))[:3]))
        if problems:
            raise UndefinedTerm("not defined by the pinned contexts (a JSON-LD processor would drop it): "
                                + ", ".join(sorted(set(problems))[:5]))
        return expanded


def canonical(document: dict[str, Any]) -> str:
    """The RDFC-1.0 canonical N-Quads of ``document``; UndefinedTerm if anything would be dropped."""
    check_contexts(document)
    check_plain(document)
    try:
        # What pyld's normalize does, with a bounded URDNA2015.
        dataset = _CheckedProcessor().to_rdf(document, {**_options(), "produceGeneralizedRdf": False})
    except JsonLdError as exc:
        raise CredentialError(f"JSON-LD: {_cause(exc)}") from None
    limit = WORK_ALLOWANCE + WORK_PER_QUAD * sum(len(triples) for triples in dataset.values())
    nquads: str = _BoundedURDNA2015(limit).main(dataset, {"format": "application/n-quads"})
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


def from_multibase(value: str, what: str) -> bytes:
    """The bytes of a ``z``-prefixed base58btc multibase value; CredentialError naming ``what`` otherwise."""
    try:
        if not value.startswith("z"):
            raise ValueError("not base58btc multibase")
        return b58decode(value[1:])
    except ValueError as exc:
        raise CredentialError(f"{what}: {exc}") from None


def check(document: dict[str, Any], public: Ed25519PublicKey) -> None:
    """Raise CredentialError unless ``document``'s proof verifies with ``public``."""
    proof = the_proof(document)
    signature = from_multibase(proof["proofValue"], "proof.proofValue")
    if len(signature) != 64:
        raise CredentialError("proof.proofValue: not a 64-byte Ed25519 signature")
    try:
        public.verify(signature, hashes(document, proof).data_to_sign)
    except InvalidSignature:
        raise CredentialError("proof: the signature does not match the credential "
                              "(altered, or signed by another key)") from None
