"""The credentials' issuer: an Ed25519 key in a file, its DID, its profile and DID document.

The key lives outside the database (``LEDGER_ISSUER_KEY``, created with mode 0600 on
first use, the same way as the checkpoint key; never the same file). The issuer is
``did:key`` of that key by default, or the configured ``did:web`` (whose DID document,
from ``ledger credentials did-document``, is then published at the web address). Its
verification method is ``<did>#<publicKeyMultibase>`` either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.config import Settings
from ledger.credentials.proof import CredentialError, b58encode, from_multibase
from ledger.domain.errors import LedgerError
from ledger.integrity.checkpoint import SigningKey

DEFAULT_ISSUER_NAME = "iGOT Karmayogi"
DID_CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
_ED25519_MULTICODEC = b"\xed\x01"
# did:web:<host>[%3A<port>][:<path segment>]*
_DID_WEB = re.compile(r"did:web:[A-Za-z0-9.-]+(?:%3[Aa][0-9]{1,5})?(?::[A-Za-z0-9._~-]+)*")


def multibase_key(public: Ed25519PublicKey) -> str:
    """``z`` + base58btc(0xed 0x01 + the raw public key): Multikey and did:key form."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + b58encode(_ED25519_MULTICODEC + raw)


def key_from_multibase(value: str) -> Ed25519PublicKey:
    """The Ed25519 public key of a ``z6Mk...`` multibase value; CredentialError otherwise."""
    raw = from_multibase(value, f"public key {value[:60]!r}")
    if len(raw) != 34 or not raw.startswith(_ED25519_MULTICODEC):
        raise CredentialError(f"public key {value[:60]!r}: not an Ed25519 multikey")
    return Ed25519PublicKey.from_public_bytes(raw[2:])


@dataclass(frozen=True)
class Issuer:
    """Who signs the credentials, and with what."""

    private: Ed25519PrivateKey
    did: str
    name: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_multibase(self) -> str:
        return multibase_key(self.public)

    @property
    def verification_method(self) -> str:
        return f"{self.did}#{self.public_multibase}"

    def profile(self) -> dict[str, Any]:
        """The ``issuer`` of every credential: an Open Badges Profile."""
        return {"id": self.did, "type": ["Profile"], "name": self.name}

    def did_document(self) -> dict[str, Any]:
        """The DID document: for did:web, what to publish at ``/.well-known/did.json``."""
        method = self.verification_method
        return {
            "@context": DID_CONTEXT,
            "id": self.did,
            "verificationMethod": [
                {"id": method, "type": "Multikey", "controller": self.did,
                 "publicKeyMultibase": self.public_multibase}
            ],
            "authentication": [method],
            "assertionMethod": [method],
        }

    def public_view(self) -> dict[str, Any]:
        """What ``GET /issuer`` shows: profile, key and DID document (nothing secret)."""
        return {
            "issuer": self.profile(),
            "verificationMethod": self.verification_method,
            "publicKeyMultibase": self.public_multibase,
            "didDocument": self.did_document(),
        }

    @classmethod
    def create(cls, private: Ed25519PrivateKey, did: str | None = None, name: str | None = None) -> Issuer:
        """An issuer for ``private``: ``did:key`` of it unless a ``did:web`` is given."""
        if did is None:
            did = "did:key:" + multibase_key(private.public_key())
        elif _DID_WEB.fullmatch(did) is None:
            raise LedgerError(f"LEDGER_ISSUER_DID: {did[:100]!r} is not a did:web (did:web:example.gov.in[:path])")
        return cls(private, did, name or DEFAULT_ISSUER_NAME)


def did_web_url(did: str) -> str | None:
    """Where a did:web's DID document is published (None for any other DID)."""
    if _DID_WEB.fullmatch(did) is None:
        return None
    host, *path = did[len("did:web:"):].split(":")
    host = host.replace("%3A", ":").replace("%3a", ":")
    return f"https://{host}/" + ("/".join(path) + "/did.json" if path else ".well-known/did.json")


def _same_file(a: os.PathLike[str], b: os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def _check_apart(settings: Settings) -> None:
    if _same_file(settings.issuer_key_path, settings.signing_key_path):
        raise LedgerError(f"LEDGER_ISSUER_KEY: {settings.issuer_key_path} is also the checkpoint signing key "
                          "(LEDGER_SIGNING_KEY); the issuer key must be a file of its own")


@lru_cache(maxsize=8)
def for_settings(settings: Settings) -> Issuer:
    """The configured issuer; its key file is created on first use."""
    path = settings.issuer_key_path
    _check_apart(settings)
    try:
        key = SigningKey.load_or_create(path)
    except OSError as exc:
        raise LedgerError(f"LEDGER_ISSUER_KEY: cannot create the issuer key {path} ({exc.strerror})") from None
    except LedgerError as exc:
        raise LedgerError(f"LEDGER_ISSUER_KEY: {str(exc).replace('signing key', 'issuer key', 1)}") from None
    return Issuer.create(key.private, settings.issuer_did, settings.issuer_name)


def existing(settings: Settings) -> Issuer | None:
    """The configured issuer when its key file exists (None otherwise); never creates a key."""
    path = settings.issuer_key_path
    if not path.exists():
        return None
    _check_apart(settings)
    try:
        key = SigningKey.load(path)
    except LedgerError as exc:
        raise LedgerError(f"LEDGER_ISSUER_KEY: {str(exc).replace('signing key', 'issuer key', 1)}") from None
    return Issuer.create(key.private, settings.issuer_did, settings.issuer_name)


def resolve_key(method: str, issuer_id: str, documents: Mapping[str, Mapping[str, Any]]) -> Ed25519PublicKey:
    """The public key of verification method ``method`` of issuer ``issuer_id``.

    The method must belong to the issuer (``<issuer>#...``). A ``did:key`` carries its
    key; any other issuer's key comes from its DID document in ``documents`` (by DID),
    where the method must be listed under ``assertionMethod``. Nothing is fetched.
    """
    did, hash_, fragment = method.partition("#")
    if not hash_ or did != issuer_id:
        raise CredentialError(f"proof.verificationMethod: {method[:100]!r} is not a key of the issuer {issuer_id[:100]!r}")
    if did.startswith("did:key:"):
        if fragment != did[len("did:key:"):]:
            raise CredentialError(f"proof.verificationMethod: {method[:100]!r} is not the did:key's own key")
        return key_from_multibase(fragment)
    document = documents.get(did)
    if document is None:
        raise CredentialError(f"issuer {did[:100]!r}: no DID document given for it (it is never fetched)")
    listed = [m if isinstance(m, str) else m.get("id") for m in document.get("assertionMethod") or []
              if isinstance(m, str | dict)]
    for candidate in document.get("verificationMethod") or []:
        if not isinstance(candidate, dict):
            continue
        cid = candidate.get("id")
        full = f"{did}{cid}" if isinstance(cid, str) and cid.startswith("#") else cid
        if full == method and (cid in listed or full in listed):
            value = candidate.get("publicKeyMultibase")
            if not isinstance(value, str):
                raise CredentialError(f"{method[:100]}: the DID document gives no publicKeyMultibase")
            return key_from_multibase(value)
    raise CredentialError(f"proof.verificationMethod: {method[:100]!r} is not an assertionMethod of {did[:100]!r}")
