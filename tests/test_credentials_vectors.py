"""eddsa-rdfc-2022 against 1EdTech's published vectors, and the pinned contexts' promises.

The vectors (``tests/fixtures/vc/``, copied byte for byte from the shared ``vc/vectors``)
give the canonical N-Quads, both hashes, the signature and the proofValue for an
Open Badges 3.0 and a CLR 2.0 credential; our canonicalisation and signing must
reproduce each, and our verifier must accept the signed ones.
"""

from __future__ import annotations

import copy
import hashlib
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.credentials import contexts, proof
from ledger.credentials.issuer import key_from_multibase, multibase_key
from ledger.credentials.verify import verify_credential, verify_one

VECTORS = Path(__file__).parent / "fixtures" / "vc"
KINDS = ["ob-v3p0", "clr-v2p0"]
# The sha256 of each context in the shared vc/SHA256SUMS: the packaged copies are those bytes.
SHARED_DIGESTS = {
    "clr-v2p0-context-2.0.1.json": "880f1902d4158f2f33ce06af41b90719977cd1ea337a9de2e41edb3ff5e543d6",
    "credentials-v2.json": "8a9f494a89ecc51db093e90e84713e07e84d6d9204364a9b3c7868b21751236f",
    "ob-v3p0-context-3.0.3.json": "ef2fa9c7846dce233cc166b43639027278be4ee44f00bb1d45c75de2dd0cd761",
    "ob-v3p0-extensions.json": "146f85aa16effd7ca1da8056eb443f53ce1eca8a34186cb062832c0a97d889c3",
}


def vector(kind: str, name: str) -> Any:
    text = (VECTORS / kind / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def controller_documents(kind: str) -> dict[str, Any]:
    """The vectors' issuer is an https URL, not a DID: give its key as a DID document would."""
    pair = vector(kind, "key-pair.json")
    method = {"id": pair["verificationMethod"], "type": "Multikey", "publicKeyMultibase": pair["publicKeyMultibase"]}
    return {pair["controller"]: {"id": pair["controller"], "verificationMethod": [method],
                                 "assertionMethod": [pair["verificationMethod"]]}}


def test_the_fixtures_are_the_published_vectors() -> None:
    for line in (VECTORS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() == digest, name


def test_the_packaged_contexts_are_the_pinned_bytes_and_are_checked() -> None:
    assert contexts.checksums() == SHARED_DIGESTS
    assert set(contexts.pinned()) == set(contexts.FILES)
    with pytest.raises(contexts.ContextError, match="altered"):
        contexts.checked("credentials-v2.json", b'{"@context": {"@vocab": "https://evil.example/"}}',
                         contexts.checksums())


@pytest.mark.parametrize("kind", KINDS)
def test_canonicalisation_and_signing_reproduce_the_vector(kind: str) -> None:
    credential, expected = vector(kind, "credential.json"), vector(kind, "expected.json")
    pair = vector(kind, "key-pair.json")
    hashes = proof.hashes(credential, vector(kind, "proof-options.json"))
    assert hashes.document_canon == vector(kind, "document-canon.txt")
    assert hashes.proof_canon == vector(kind, "proof-canon.txt")
    assert hashes.document_hash.hex() == expected["documentHash"]
    assert hashes.proof_hash.hex() == expected["proofHash"]
    assert hashes.data_to_sign.hex() == expected["dataToSign"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(pair["seedHex"]))
    assert bytes.fromhex(pair["privateKeyHex"])[32:].hex() == pair["publicKeyHex"]
    assert multibase_key(key.public_key()) == pair["publicKeyMultibase"]
    assert key.sign(hashes.data_to_sign).hex() == expected["signature"]
    signed = proof.sign(credential, key, pair["verificationMethod"], vector(kind, "proof-options.json")["created"])
    assert signed["proof"]["proofValue"] == expected["proofValue"]
    published = vector(kind, "signed-credential.json")
    published_proof = published["proof"][0] if isinstance(published["proof"], list) else published["proof"]
    assert signed["proof"] == published_proof
    assert {k: v for k, v in signed.items() if k != "proof"} == {k: v for k, v in published.items() if k != "proof"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_published_signed_vectors_verify_and_a_changed_one_does_not(kind: str) -> None:
    signed = vector(kind, "signed-credential.json")
    keys = controller_documents(kind)
    result = verify_credential(signed, keys)
    assert result["issuer"] == "https://example.edu/issuers/565049"
    changed = copy.deepcopy(signed)
    changed["name"] = changed["name"][:-1] + "X"
    with pytest.raises(proof.CredentialError, match="signature"):
        verify_credential(changed, keys)
    assert verify_one(json.dumps(signed), {})["ok"] is False  # no key for that issuer: never fetched


def test_the_public_key_of_a_did_key_round_trips() -> None:
    pair = vector("ob-v3p0", "key-pair.json")
    assert multibase_key(key_from_multibase(pair["publicKeyMultibase"])) == pair["publicKeyMultibase"]
    with pytest.raises(proof.CredentialError):
        key_from_multibase("z" + "1" * 10)


def test_an_undefined_property_is_refused_before_signing() -> None:
    credential = vector("ob-v3p0", "credential.json")
    key = Ed25519PrivateKey.generate()
    for where in (credential, credential["credentialSubject"], credential["credentialSubject"]["achievement"]):
        where["favouriteColour"] = "blue"
        with pytest.raises(proof.UndefinedTerm, match="favouriteColour"):
            proof.sign(credential, key, "did:example:x#k", "2010-01-01T00:00:00Z")
        del where["favouriteColour"]
    credential["credentialSubject"]["type"] = ["AchievementSubject", "MadeUpType"]
    with pytest.raises(proof.UndefinedTerm, match="MadeUpType"):
        proof.sign(credential, key, "did:example:x#k", "2010-01-01T00:00:00Z")


def test_contexts_are_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(contexts.ContextError, match="never fetched"):
        contexts.load_document("https://example.org/context.jsonld")
    credential = vector("ob-v3p0", "credential.json")
    for extra in ("https://example.org/context.jsonld", {"@vocab": "https://example.org/#"}):
        credential["@context"] = [contexts.VC_V2, contexts.OB_V3, extra]
        with pytest.raises(contexts.ContextError):
            proof.canonical(credential)
    credential["@context"] = [contexts.VC_V2, contexts.OB_V3]
    credential["credentialSubject"]["@context"] = "https://example.org/scoped.jsonld"
    with pytest.raises(contexts.ContextError):
        proof.canonical(credential)
    assert proof.canonical(vector("ob-v3p0", "credential.json")) == vector("ob-v3p0", "document-canon.txt")
