"""The issued credentials (DOMAIN.md "Portable credentials"; "Tamper evidence": keys only where signing happens).

Filled by the projection ``issued_credentials`` (the issuing worker, `ledger issue`, or
`ledger project`, which holds the issuer key): each officer's current signed credentials
in the order they are served, each status list signed, and the issuer's public profile.
The API and the console serve these stored documents and hold no private key. On an
existing store the worker (or `ledger rebuild issued_credentials`) signs them from the
start of the log.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "read model: issued credentials (signed documents, signed status lists, the issuer's public profile)"

STATEMENTS = [
    "CREATE TABLE rm_issued_credentials (officer_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
    "digest TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (officer_id, seq))",
    "CREATE TABLE rm_issued_lists (list_no BIGINT PRIMARY KEY, digest TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE rm_issuer (name TEXT PRIMARY KEY, doc TEXT NOT NULL)",
]


def apply(c: Cursor, dialect: str) -> None:
    for statement in STATEMENTS:
        c.execute(statement)
