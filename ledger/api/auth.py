"""Bearer tokens, roles, and the append-only access log.

A token is shown once (``lrl_<id>_<secret>``); only a SHA-256 of its 256-bit random
secret is stored, so the table alone cannot be used to call the API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ledger.db import Database
from ledger.domain.errors import LedgerError

ROLES = ("ingest", "officer", "ministry_hr", "cbc", "auditor", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, role and scope."""

    name: str
    role: str
    ministry_id: str | None = None
    officer_id: str | None = None


def ensure_tables(db: Database) -> None:
    """The token and access-log tables exist: the store's schema is current (ledger.schema)."""
    from ledger import schema

    schema.ensure(db)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, name: str, role: str, ministry_id: str | None = None,
                 officer_id: str | None = None) -> str:
    """Create a token and return it (the only time it is ever shown)."""
    if role not in ROLES:
        raise LedgerError(f"--role: must be one of {', '.join(ROLES)}")
    if role == "ministry_hr" and not ministry_id:
        raise LedgerError("--ministry: required for the ministry_hr role")
    if role == "officer" and not officer_id:
        raise LedgerError("--officer: required for the officer role")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with db.transaction() as c:
        c.execute("SELECT 1 FROM api_tokens WHERE name = ?", (name,))
        if c.fetchone():
            raise LedgerError(f"--name: a token named {name!r} already exists")
        c.execute(
            "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (token_id, name, role, ministry_id, officer_id, _hash(secret),
             datetime.now(timezone.utc).isoformat()),
        )
    return f"lrl_{token_id}_{secret}"


def revoke_token(db: Database, name: str) -> None:
    with db.transaction() as c:
        c.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                  (datetime.now(timezone.utc).isoformat(), name))
        c.execute("SELECT revoked_at FROM api_tokens WHERE name = ?", (name,))
        if c.fetchone() is None:
            raise LedgerError(f"NAME: no token named {name!r}")


def list_tokens(db: Database) -> list[dict[str, Any]]:
    with db.transaction() as c:
        c.execute("SELECT name, role, ministry_id, officer_id, created_at, revoked_at FROM api_tokens ORDER BY created_at")
        keys = ("name", "role", "ministry_id", "officer_id", "created_at", "revoked_at")
        return [dict(zip(keys, row, strict=True)) for row in c.fetchall()]


def authenticate(db: Database, token: str) -> Principal | None:
    """The principal of a valid, unrevoked token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "lrl":
        return None
    with db.transaction() as c:
        c.execute("SELECT name, role, ministry_id, officer_id, secret_hash, revoked_at FROM api_tokens "
                  "WHERE token_id = ?", (parts[1],))
        row = c.fetchone()
    if row is None or row[5] is not None or not hmac.compare_digest(row[4], _hash(parts[2])):
        return None
    return Principal(row[0], row[1], row[2], row[3])


def log_access(db: Database, who: Principal, officer_id: str, endpoint: str) -> None:
    with db.transaction() as c:
        c.execute("INSERT INTO access_log VALUES (?, ?, ?, ?, ?)",
                  (datetime.now(timezone.utc).isoformat(), who.name, who.role, officer_id, endpoint))


def read_access_log(db: Database, officer_id: str | None = None) -> list[dict[str, Any]]:
    with db.transaction() as c:
        if officer_id:
            c.execute("SELECT at, token_name, role, officer_id, endpoint FROM access_log WHERE officer_id = ? ORDER BY at", (officer_id,))
        else:
            c.execute("SELECT at, token_name, role, officer_id, endpoint FROM access_log ORDER BY at")
        keys = ("at", "token_name", "role", "officer_id", "endpoint")
        return [dict(zip(keys, row, strict=True)) for row in c.fetchall()]


class TokenCache:
    """Authentication results kept for a few seconds, so a request costs no query.

    A revoked token stops working within ``ttl`` seconds.
    """

    def __init__(self, db: Database, ttl: float = 2.0) -> None:
        import threading

        self.db = db
        self.ttl = ttl
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Principal | None]] = {}

    def get(self, token: str) -> Principal | None:
        import time

        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(token)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]
            found = authenticate(self.db, token)
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[token] = (now, found)
            return found
