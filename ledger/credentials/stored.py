"""The issued credentials as stored: what the API and the console serve (they hold no key, sign nothing).

Written only by the issuing projection (:mod:`ledger.credentials.issuing`); read here as the
JSON text it stored, byte for byte what was signed.
"""

from __future__ import annotations

from ledger.store.db import Cursor

PROJECTION = "issued_credentials"  # the issuing projection's name (its position in ledger_offsets)
ISSUED = "rm_issued_credentials"
ISSUED_LISTS = "rm_issued_lists"
ISSUER = "rm_issuer"


def stored_credential_lines(c: Cursor, officer_id: str) -> list[str]:
    """The officer's stored credentials in order, as their JSON text ([] when none were issued)."""
    c.execute(f"SELECT doc FROM {ISSUED} WHERE officer_id = ? ORDER BY seq", (officer_id,))
    return [str(r[0]) for r in c.fetchall()]


def stored_list(c: Cursor, list_no: int) -> str | None:
    """Status list ``list_no`` as stored (its JSON text), None when none was signed."""
    c.execute(f"SELECT doc FROM {ISSUED_LISTS} WHERE list_no = ?", (list_no,))
    row = c.fetchone()
    return None if row is None else str(row[0])


def stored_issuer(c: Cursor) -> str | None:
    """The issuer's public view as the issuing worker stored it (JSON text), None before it ran."""
    c.execute(f"SELECT doc FROM {ISSUER} WHERE name = 'issuer'")
    row = c.fetchone()
    return None if row is None else str(row[0])
