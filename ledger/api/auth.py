"""Bearer tokens, roles, and the append-only access log.

A token is shown once (``lrl_<id>_<secret>``); only a SHA-256 of its 256-bit random
secret is stored, so the table alone cannot be used to call the API.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from ledger.domain.errors import AlreadyExists, LedgerError
from ledger.store.db import Database

ROLES = ("ingest", "registrar", "officer", "ministry_hr", "cbc", "auditor", "admin", "lrs")

# What create_token makes: 8 random bytes in hex, then 32 in URL-safe base64 (unpadded).
_SHAPE = re.compile(r"lrl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name, role and scope."""

    name: str
    role: str
    ministry_id: str | None = None
    officer_id: str | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(db: Database, name: str, role: str, ministry_id: str | None = None,
                 officer_id: str | None = None) -> str:
    """Create a token and return it (the only time it is ever shown).

    Raises ``AlreadyExists`` when the name is taken, also when another request takes
    it at the same moment: the database's uniqueness rule decides, in one statement.
    """
    if role not in ROLES:
        raise LedgerError(f"--role: must be one of {', '.join(ROLES)}")
    if role == "ministry_hr" and not ministry_id:
        raise LedgerError("--ministry: required for the ministry_hr role")
    if role == "officer" and not officer_id:
        raise LedgerError("--officer: required for the officer role")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with db.transaction() as c:
        c.execute(
            "INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL) "
            "ON CONFLICT (name) DO NOTHING RETURNING token_id",
            (token_id, name, role, ministry_id, officer_id, _hash(secret),
             datetime.now(timezone.utc).isoformat()),
        )
        if not c.fetchall():  # the name was taken: nothing inserted, nothing returned
            raise AlreadyExists(f"--name: a token named {name!r} already exists")
    return f"lrl_{token_id}_{secret}"


def revoke_token(db: Database, name: str) -> None:
    with db.transaction() as c:
        c.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                  (datetime.now(timezone.utc).isoformat(), name))
        c.execute("SELECT revoked_at FROM api_tokens WHERE name = ?", (name,))
        if c.fetchone() is None:
            raise LedgerError(f"NAME: no token named {name!r}")


def list_tokens(db: Database) -> list[dict[str, Any]]:
    with db.reading() as c:
        c.execute("SELECT name, role, ministry_id, officer_id, created_at, revoked_at FROM api_tokens ORDER BY created_at")
        keys = ("name", "role", "ministry_id", "officer_id", "created_at", "revoked_at")
        return [dict(zip(keys, row, strict=True)) for row in c.fetchall()]


def _parse(token: str) -> tuple[str, str] | None:
    """(token id, secret) of a token shaped as ``create_token`` makes them, else None."""
    found = _SHAPE.fullmatch(token)
    return None if found is None else (found[1], found[2])


def token_id_of(token: str) -> str | None:
    """The public id part of a token shaped as ``create_token`` makes them, else None."""
    parsed = _parse(token)
    return None if parsed is None else parsed[0]


def _load(db: Database, token_id: str, secret: str) -> Principal | None:
    row = _read_one(db, "SELECT name, role, ministry_id, officer_id, secret_hash, revoked_at FROM api_tokens "
                        "WHERE token_id = ?", (token_id,))
    if row is None or row[5] is not None or not hmac.compare_digest(row[4], _hash(secret)):
        return None
    return Principal(row[0], row[1], row[2], row[3])


def _read_one(db: Database, sql: str, params: tuple[Any, ...]) -> Any:
    """The first row of one read-only statement, run on its own (autocommit).

    Not ``db.transaction()``: on SQLite that begins IMMEDIATE, which takes the
    database's write lock, so every lookup would wait behind the writers (the group
    commit, the projections) and hold them up in turn. ``db.reading()`` never does.
    """
    try:
        with db.reading() as c:
            c.execute(sql, params)
            rows = c.fetchall()
    except Exception:
        db.close()  # a broken connection is opened afresh by the next lookup
        raise
    return rows[0] if rows else None


def log_access(db: Database, who: Principal, officer_id: str, endpoint: str) -> None:
    with db.transaction() as c:
        c.execute("INSERT INTO access_log VALUES (?, ?, ?, ?, ?)",
                  (datetime.now(timezone.utc).isoformat(), who.name, who.role, officer_id, endpoint))


def read_access_log(db: Database, officer_id: str | None = None, latest: int | None = None) -> list[dict[str, Any]]:
    """The access log in time order (with ``latest``: only that many newest entries, newest first)."""
    order = "ORDER BY at" if latest is None else f"ORDER BY at DESC LIMIT {int(latest)}"
    with db.reading() as c:
        if officer_id:
            c.execute(f"SELECT at, token_name, role, officer_id, endpoint FROM access_log WHERE officer_id = ? {order}", (officer_id,))
        else:
            c.execute(f"SELECT at, token_name, role, officer_id, endpoint FROM access_log {order}")
        keys = ("at", "token_name", "role", "officer_id", "endpoint")
        return [dict(zip(keys, row, strict=True)) for row in c.fetchall()]


class Lookup(Enum):
    """What ``TokenCache.cached`` answers for a token it cannot judge without the database."""

    UNKNOWN = "unknown"  # not seen lately, or refused long ago
    EXPIRED = "expired"  # valid when last asked, ``ttl`` seconds ago or more


class TokenCache:
    """Authentication results kept for ``ttl`` seconds, so a known token costs no query.

    Valid tokens and refused ones are kept apart, each in its own bounded LRU: a
    flood of made-up tokens only ever evicts other made-up tokens, never a valid one.
    A token not shaped like ours is refused without being kept or looked up. A revoked
    token stops working within ``ttl`` seconds.

    ``cached`` never blocks (it may run on the event loop); ``lookup`` queries the
    database and belongs on a worker thread. No lock is held during a query.
    """

    def __init__(self, database: Callable[[], Database], ttl: float = 2.0,
                 size: int = 10_000, refused_size: int = 1_000) -> None:
        self.database = database  # this thread's handle (lookups run on many threads)
        self.ttl = ttl
        self.size = size
        self.refused_size = refused_size
        self._lock = threading.Lock()
        self._valid: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._refused: OrderedDict[str, float] = OrderedDict()
        # How many times the database was asked, in all and per valid token's name
        # (for tests and metrics: a cached token is not looked up again).
        self.queries = 0
        self.loads: Counter[str] = Counter()

    def cached(self, token: str) -> Principal | None | Lookup:
        """The caller (None: refused) when known without a query, else why a query is needed.

        An expired valid token stays known as such until it is looked up again, so its
        lookup can be told apart from (and need not queue behind) a flood of strangers.
        """
        if _parse(token) is None:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._valid.get(token)
            if hit is not None:
                self._valid.move_to_end(token)
                return hit[1] if now - hit[0] < self.ttl else Lookup.EXPIRED
            refused_at = self._refused.get(token)
            if refused_at is not None and now - refused_at < self.ttl:
                return None
        return Lookup.UNKNOWN

    def lookup(self, token: str) -> Principal | None:
        """Ask the database (blocking) and remember the answer."""
        parsed = _parse(token)
        if parsed is None:
            return None
        found = _load(self.database(), *parsed)
        now = time.monotonic()
        with self._lock:
            self.queries += 1
            if found is None:
                self._valid.pop(token, None)
                _put(self._refused, token, now, self.refused_size)
            else:
                self.loads[found.name] += 1
                self._refused.pop(token, None)
                _put(self._valid, token, (now, found), self.size)
        return found

    def get(self, token: str) -> Principal | None:
        """The caller named by ``token`` (None: refused), from the cache or the database."""
        found = self.cached(token)
        return self.lookup(token) if isinstance(found, Lookup) else found


def _put(entries: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > size:
        entries.popitem(last=False)
