"""Bearer tokens, roles, and the append-only access log.

A token is shown once (``lrl_<id>_<secret>``); only a SHA-256 of its 256-bit random
secret is stored, so the table alone cannot be used to call the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import anyio

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
    """What ``TokenCache.cached`` answers for a token it cannot judge from what it holds."""

    UNKNOWN = "unknown"  # not among the tokens read last (a new token, or a made-up one)
    EXPIRED = "expired"  # known, but the table was read ``ttl`` seconds ago or more


class TokenCache:
    """The token table kept in memory, so no request costs a query of its own.

    A valid token is judged from memory (one SHA-256) while the table is younger than
    ``ttl`` seconds, so a revoked token stops working within ``ttl`` seconds. A token
    the table does not hold (made just now, or made up) waits for the next reading of
    the whole table, and all such tokens share it: at most one reading is under way
    and readings start at most every ``min_interval`` seconds, however many strangers
    knock. A flood of made-up tokens therefore costs a few queries a second, never one
    each, and never delays a token the table holds. A token not shaped like ours is
    refused at once.

    ``cached`` never blocks (it runs on the event loop); ``judge`` awaits a reading
    done on a worker thread; ``get`` reads on the calling thread.
    """

    def __init__(self, database: Callable[[], Database], ttl: float = 2.0, min_interval: float = 0.25) -> None:
        self.database = database  # the reading thread's handle
        self.ttl = ttl
        self.min_interval = min(min_interval, ttl)
        self._lock = threading.Lock()
        self._table: dict[str, tuple[str, Principal | None]] = {}  # id -> (secret hash, caller; None: revoked)
        self._read_at: float | None = None  # when the table's reading began (monotonic)
        self._last_start = float("-inf")
        self._flights: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self.queries = 0  # readings of the table (for tests and metrics)

    def _judge(self, token: str) -> Principal | None | Lookup:
        parsed = _parse(token)
        if parsed is None:
            return None
        entry = self._table.get(parsed[0])
        if entry is None:
            return Lookup.UNKNOWN
        return entry[1] if hmac.compare_digest(entry[0], _hash(parsed[1])) else None

    def cached(self, token: str) -> Principal | None | Lookup:
        """The caller (None: refused) when the table in memory decides, else why a reading is needed."""
        if _parse(token) is None:
            return None
        read_at = self._read_at
        if read_at is None:
            return Lookup.UNKNOWN
        found = self._judge(token)
        if time.monotonic() - read_at >= self.ttl and found is not Lookup.UNKNOWN:
            return Lookup.EXPIRED
        return found

    def refresh(self) -> None:
        """Read the whole token table (blocking)."""
        started = time.monotonic()
        with self._lock:
            self._last_start = started
        db = self.database()
        try:
            # Not db.transaction(): on SQLite that takes the write lock, so a reading would
            # wait behind the writers (the group commit, the projections) and hold them up.
            with db.reading() as c:
                c.execute("SELECT token_id, name, role, ministry_id, officer_id, secret_hash, revoked_at "
                          "FROM api_tokens")
                rows = c.fetchall()
        except Exception:
            db.close()  # a broken connection is opened afresh by the next reading
            raise
        table = {row[0]: (row[5], None if row[6] is not None else Principal(row[1], row[2], row[3], row[4]))
                 for row in rows}
        with self._lock:
            self.queries += 1
            if self._read_at is None or started > self._read_at:
                self._table, self._read_at = table, started

    def _answer(self, token: str) -> Principal | None:
        found = self._judge(token)
        return None if isinstance(found, Lookup) else found

    async def judge(self, token: str) -> Principal | None:
        """The caller named by ``token`` (None: refused), waiting for a reading begun after this call if needed."""
        found = self.cached(token)
        if not isinstance(found, Lookup):
            return found
        asked = time.monotonic()
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._read_at is not None and self._read_at >= asked:
                    break
                flight = self._flights.get(loop)
                if flight is None or flight.done():
                    flight = self._flights[loop] = loop.create_task(self._read_soon())
            await asyncio.shield(flight)
        return self._answer(token)

    async def _read_soon(self) -> None:
        wait = self.min_interval - (time.monotonic() - self._last_start)
        if wait > 0:
            await asyncio.sleep(wait)
        await anyio.to_thread.run_sync(self.refresh)

    def get(self, token: str) -> Principal | None:
        """The caller named by ``token`` (None: refused), reading the table on this thread if needed."""
        found = self.cached(token)
        if not isinstance(found, Lookup):
            return found
        self.refresh()
        return self._answer(token)


