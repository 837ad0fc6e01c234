"""Authorization from the truth, and receipts that erasure can silence.

* ``officer_access``: each officer's current ministry and whether it was erased,
  written by the recorders in the events' own transaction. Access decisions read it
  instead of a read model that may lag (or be held back by a dead letter). Filled
  here once by folding the stored registrations, transfers and erasures in log order.
* ``officer_id`` on command receipts: a receipt of a command that carried personal
  data is keyed with that officer's data key (an HMAC, not a plain hash), so once the
  key is destroyed on erasure nothing the ledger keeps can confirm a guess about the
  erased name or email. Receipts written before this migration cannot be tied to
  their officer (events do not record command ids) and stay as they were; README
  says so.
"""

from __future__ import annotations

import json

from ledger.store.db import Cursor

NAME = "officer_access (current ministry, erased) written with the events; keyed receipts"
PAGE = 5000
_TOPICS = (
    "ledger.domain.officer:Officer.OfficerRegistered",
    "ledger.domain.officer:Officer.OfficerTransferred",
    "ledger.domain.officer:Officer.OfficerErased",
)


def apply(c: Cursor, dialect: str) -> None:
    postgres = dialect == "postgres"
    receipts, events, position = (
        ("ledger_command_receipts", "ledger_events", "notification_id") if postgres
        else ("command_receipts", "stored_events", "rowid")
    )
    c.execute(f"ALTER TABLE {receipts} ADD COLUMN officer_id TEXT")
    c.execute(
        "CREATE TABLE officer_access (officer_id TEXT PRIMARY KEY, ministry_id TEXT NOT NULL, "
        "erased INTEGER NOT NULL)"
    )
    after = 0
    marks = ", ".join("?" * len(_TOPICS))
    while True:  # page by page, so memory stays flat however many officers
        c.execute(
            f"SELECT {position}, topic, state FROM {events} WHERE {position} > ? AND topic IN ({marks}) "
            f"ORDER BY {position} LIMIT {PAGE}",
            (after, *_TOPICS),
        )
        rows = c.fetchall()
        if not rows:
            break
        ministries: dict[str, str] = {}  # the page's last posting per officer
        erased: set[str] = set()  # erasure is an officer's last event: nothing follows it
        for _, topic, state in rows:
            data = json.loads(bytes(state))
            if topic.endswith("OfficerErased"):
                erased.add(data["officer_id"])
            else:
                ministries[data["officer_id"]] = data["ministry_id"]
        c.executemany(
            "INSERT INTO officer_access (officer_id, ministry_id, erased) VALUES (?, ?, 0) "
            "ON CONFLICT (officer_id) DO UPDATE SET ministry_id = excluded.ministry_id",
            sorted(ministries.items()),
        )
        if erased:
            c.executemany("UPDATE officer_access SET erased = 1 WHERE officer_id = ?", [(o,) for o in sorted(erased)])
        after = int(rows[-1][0])
