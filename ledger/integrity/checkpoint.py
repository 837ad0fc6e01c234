"""Signed checkpoints: the ledger's commitment to its whole history up to a position.

A checkpoint is ``{"position", "root", "at", "key_id", "signature"}``: ``root`` is the
log chain's head (``ledger.integrity.chain``) at ``position``, hex; ``signature`` is an Ed25519
signature (base64url, no padding) over the canonical JSON of the other four fields
(sorted keys, no spaces). The signing key is a PEM file outside the database
(``LEDGER_SIGNING_KEY``), created on first use with mode 0600; ``key_id`` names its
public key, so a verifier can tell which key to hold it against.

Verifying a checkpoint recomputes the root from the stored events alone, so it
catches a truncated log and a history rewritten with freshly recomputed hashes;
events appended after ``position`` do not matter. Verifying takes a public key, never
the signing key. Signers sign through ``ledger.integrity.signer`` (never a root that does
not extend what the key signed before); ``ledger.integrity.forks`` checks many
checkpoints against each other.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.persistence import StoredEvent

from ledger.domain.errors import LedgerError
from ledger.integrity import chain
from ledger.ops.paging import pages

FIELDS = ("position", "root", "at", "key_id", "signature")


class CheckpointError(LedgerError):
    """A checkpoint file that cannot be read or a key that cannot be used."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise CheckpointError(f"public key: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError("public key: not an Ed25519 key")
    return key


@dataclass(frozen=True)
class SigningKey:
    """The ledger's Ed25519 signing key, from its file (never from the database)."""

    private: Ed25519PrivateKey
    path: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """Read the key file; create it (0600, never overwritten) when there is none."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(pem)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Read an existing key file; refused when group or others may read or write it."""
        try:
            with open(path, "rb") as source:
                mode = os.fstat(source.fileno()).st_mode
                data = source.read()
        except OSError as exc:
            raise CheckpointError(f"signing key {path}: cannot be read ({exc.strerror})") from None
        if os.name == "posix" and mode & 0o077:
            raise CheckpointError(f"signing key {path}: group or others may read or write it (mode {mode & 0o777:o}); "
                                  f"a private key must be 600 (chmod 600 {path})")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"signing key {path}: cannot be read ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"signing key {path}: not an Ed25519 private key")
        return cls(key, path)


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return orjson.dumps({k: body[k] for k in ("at", "key_id", "position", "root")}, option=orjson.OPT_SORT_KEYS)


def sign(key: SigningKey, position: int, root: bytes, at: datetime | None = None) -> dict[str, Any]:
    """A checkpoint for ``root`` at ``position``."""
    body: dict[str, Any] = {
        "position": position,
        "root": root.hex(),
        "at": (at or datetime.now(timezone.utc)).isoformat(),
        "key_id": key.key_id,
    }
    body["signature"] = _b64(key.private.sign(_signed_bytes(body)))
    return body


def parse(data: bytes) -> dict[str, Any]:
    """A checkpoint from its JSON, with every field checked."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CheckpointError(f"checkpoint: not JSON ({exc})") from None
    return checked(body)


def checked(body: Any) -> dict[str, Any]:
    """A checkpoint from a decoded JSON value, with every field checked."""
    if not isinstance(body, dict) or set(body) != set(FIELDS):
        raise CheckpointError(f"checkpoint: expected exactly the fields {', '.join(FIELDS)}")
    position = body["position"]
    if isinstance(position, bool) or not isinstance(position, int) or position < 0:
        raise CheckpointError("checkpoint: position must be a non-negative integer")
    for field in ("root", "at", "key_id", "signature"):
        if not isinstance(body[field], str):
            raise CheckpointError(f"checkpoint: {field} must be a string")
    try:
        if len(bytes.fromhex(body["root"])) != 32:
            raise ValueError
    except ValueError:
        raise CheckpointError("checkpoint: root must be 64 hex digits") from None
    return dict(body)


def signature_ok(body: dict[str, Any], public: Ed25519PublicKey) -> bool:
    if body["key_id"] != key_id_of(public):
        return False
    try:
        public.verify(_unb64(body["signature"]), _signed_bytes(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def iter_events(recorder: Any, page: int = 5000, after: int = 0) -> Iterator[tuple[int, StoredEvent]]:
    """Every stored event after position ``after`` with its position, in log order, a page at a time."""
    read = partial(recorder.select_notifications, limit=page, inclusive_of_start=False)
    for batch in pages(read, attrgetter("id"), after):
        for n in batch:
            yield n.id, n


def iter_links(recorder: Any, page: int = 5000, after: int = 0) -> Iterator[chain.Link]:
    """Every log-chain row after position ``after``, in position order."""
    for batch in pages(partial(recorder.select_log_chain, limit=page), itemgetter(0), after):
        yield from batch


def head(recorder: Any) -> tuple[int, bytes]:
    """The log chain's last recorded (position, hash); (0, genesis) for an empty log."""
    last = recorder.select_log_head()
    return last if last is not None else (0, chain.GENESIS)


def verify_against(recorder: Any, body: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    """Every way the stored history differs from what ``body`` committed to ([] = none)."""
    problems = []
    if not signature_ok(body, public):
        problems.append(
            f"checkpoint signature does not verify with key {key_id_of(public)} "
            f"(the checkpoint names {body['key_id']})"
        )
    root, last, count = chain.log_root(iter_events(recorder), body["position"])
    if last < body["position"]:
        problems.append(
            f"history truncated or removed: no event at position {body['position']} "
            f"(the last one at or before it is {last})"
        )
    elif root.hex() != body["root"]:
        problems.append(
            f"history up to position {body['position']} differs from the checkpoint "
            f"(recomputed root {root.hex()[:16]}…, committed {body['root'][:16]}…; {count} events folded)"
        )
    return problems


def verify_log(recorder: Any) -> tuple[int, list[chain.Break]]:
    """Recompute the whole log chain from the stored events and compare with its rows."""
    return chain.verify_log(iter_events(recorder), iter_links(recorder))
