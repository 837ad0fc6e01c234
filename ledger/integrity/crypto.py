"""Per-officer encryption of personal data (AES-256-GCM).

Each officer has a random data key kept in the store's key table. Name and email
are stored (and published) only as ciphertext; destroying the one key makes every
copy of them unreadable, wherever the ciphertext went.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def _aad(officer_id: str, field: str) -> bytes:
    # Binding the ciphertext to officer and field stops a copy-paste of one
    # officer's ciphertext into another officer's event from decrypting.
    return f"{officer_id}\x00{field}".encode()


def encrypt(key: bytes, officer_id: str, field: str, plaintext: str) -> str:
    """Encrypt one personal-data field; returns base64 text (nonce + ciphertext + tag)."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _aad(officer_id, field))
    return base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(key: bytes | None, officer_id: str, field: str, token: str) -> str | None:
    """Decrypt a field, or None when the key is gone (erased) or the token is empty."""
    if key is None or not token:
        return None
    raw = base64.b64decode(token)
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(officer_id, field))
    except InvalidTag:
        return None
    return plain.decode("utf-8")


def keyed_digest(key: bytes, digest: str) -> str:
    """A receipt digest keyed with an officer's data key (HMAC-SHA-256).

    Without the key (destroyed on erasure) nobody can tell which content it was made
    from, so it cannot confirm a guess of the personal data the command carried.
    """
    return hmac.new(key, b"ledger-receipt\x00" + digest.encode("ascii"), hashlib.sha256).hexdigest()
