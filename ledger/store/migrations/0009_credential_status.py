"""The credentials' status lists (DOMAIN.md "Portable credentials", Revocation).

Filled by the projection ``credential_status`` in the store's log order like the other
read models; on an existing store the follower (or `ledger rebuild credential_status`)
folds it from the start of the log, and issuing a credential brings it up to date first.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "read model: credential status (status list indexes and revocations)"

STATEMENTS = [
    "CREATE TABLE rm_credential_status (officer_id TEXT NOT NULL, version BIGINT NOT NULL, kind TEXT NOT NULL, "
    "event_id TEXT NOT NULL, idx BIGINT NOT NULL, revoked_at TEXT, PRIMARY KEY (officer_id, version, kind))",
    "CREATE TABLE rm_credential_revoked (idx BIGINT PRIMARY KEY, revoked_at TEXT NOT NULL)",
    "CREATE TABLE rm_credential_lists (list_no BIGINT PRIMARY KEY, entries BIGINT NOT NULL, valid_from TEXT NOT NULL)",
]


def apply(c: Cursor, dialect: str) -> None:
    for statement in STATEMENTS:
        c.execute(statement)
