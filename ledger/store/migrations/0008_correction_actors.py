"""Who made each correction, for the auditors (DOMAIN.md "Who may correct").

A retraction or a detail correction records, beside its event and in the same
transaction, the role and the token name of whoever sent it (``cli`` and no name for
the command line). Token names are staff identities: kept here, for auditors, never
on the event or the topics.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "correction_actors: the role and token of whoever made each retraction or detail correction"


def apply(c: Cursor, dialect: str) -> None:
    c.execute("CREATE TABLE correction_actors (officer_id TEXT NOT NULL, version BIGINT NOT NULL, "
              "role TEXT NOT NULL, token_name TEXT, PRIMARY KEY (officer_id, version))")
