"""Console sessions kept on the server.

The console's cookie holds a random session id, never the API token: the server keeps
the id's hash with the token it was opened for, when it expires and when it ended.
Signing out ends the session for good (a copy of the cookie no longer works), the
expiry is the server's, and revoking the token ends every session opened with it.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "console_sessions: the console's sessions on the server (id hash, token, expiry, end)"


def apply(c: Cursor, dialect: str) -> None:
    c.execute("CREATE TABLE console_sessions (session_hash TEXT PRIMARY KEY, token_id TEXT NOT NULL, "
              "created_at TEXT NOT NULL, expires_at TEXT NOT NULL, ended_at TEXT)")
