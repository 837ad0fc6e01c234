"""GET /statements: the filters as one indexed query, newest first (or ascending), keyset pages.

Each filter narrows on an index: ``verb``, ``registration``, ``stored_us`` on the statements'
table, ``agent`` and ``activity`` through their own tables (``related`` widening from the
actor/object to every agent or activity the statement names). A page ends with the ``seq``
of its last statement; the next page starts after it (``cursor``), so a page costs the same
however deep it is. Voided statements are left out (they are fetched by ``voidedStatementId``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ledger.store.db import Database

MAX_PAGE = 500


@dataclass(frozen=True)
class Filters:
    """What a query asks for (agent already hashed into its index key)."""

    agent: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since_us: int | None = None
    until_us: int | None = None
    limit: int = 0
    ascending: bool = False
    writer: str | None = None  # a token that reads only what it wrote
    cursor: int | None = None


@dataclass(frozen=True)
class Page:
    docs: list[dict[str, Any]]  # the stored (sealed) statements, in order
    last_seq: int | None  # where the next page starts, when there may be one
    last_stored_us: int | None  # the newest ``stored`` among them


def find(db: Database, f: Filters) -> Page:
    """One page of statements matching ``f``.

    A statement whose object is a StatementRef to a statement that matches the filters
    (``agent``, ``verb``, ``activity``, ``registration``) matches them too (xAPI "Filter
    Conditions for StatementRefs"); ``since``, ``until``, the page and the reader's scope
    apply to the returned statement itself. Two keyset queries, each on its indexes, merged.
    """
    limit = MAX_PAGE if f.limit <= 0 else min(f.limit, MAX_PAGE)
    outer = ["s.voided = 0"]
    outer_params: list[Any] = []
    if f.writer is not None:
        outer.append("s.writer = ?")
        outer_params.append(f.writer)
    if f.since_us is not None:
        outer.append("s.stored_us > ?")
        outer_params.append(f.since_us)
    if f.until_us is not None:
        outer.append("s.stored_us <= ?")
        outer_params.append(f.until_us)
    if f.cursor is not None:
        outer.append("s.seq > ?" if f.ascending else "s.seq < ?")
        outer_params.append(f.cursor)
    match, match_params = _matching(f, "m")
    order = "ASC" if f.ascending else "DESC"
    tail = f" ORDER BY s.seq {order} LIMIT {limit + 1}"
    columns = "SELECT s.seq, s.stored_us, s.doc FROM xapi_statements s"
    with db.reading() as c:
        if not match:
            c.execute(f"{columns} WHERE {' AND '.join(outer)}{tail}", outer_params)
            rows = c.fetchall()
        else:
            direct = [w.replace("m.", "s.") for w in match]
            c.execute(f"{columns} WHERE {' AND '.join(outer + direct)}{tail}", outer_params + match_params)
            rows = c.fetchall()
            c.execute(f"{columns} JOIN xapi_statements m ON m.statement_id = s.ref "
                      f"WHERE {' AND '.join(outer + match)}{tail}", outer_params + match_params)
            found = {int(r[0]): r for r in rows}
            found.update({int(r[0]): r for r in c.fetchall()})
            rows = [found[k] for k in sorted(found, reverse=not f.ascending)][: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([json.loads(r[2]) for r in rows], int(rows[-1][0]) if more and rows else None,
                max((int(r[1]) for r in rows), default=None))


def _matching(f: Filters, alias: str) -> tuple[list[str], list[Any]]:
    """The conditions on the statement the filters name (alias ``m``), and their parameters."""
    where: list[str] = []
    params: list[Any] = []
    if f.verb is not None:
        where.append(f"{alias}.verb = ?")
        params.append(f.verb)
    if f.registration is not None:
        where.append(f"{alias}.registration = ?")
        params.append(f.registration.lower())
    if f.agent is not None:
        where.append(f"{alias}.seq IN (SELECT seq FROM xapi_agents WHERE agent = ?"
                     + ("" if f.related_agents else " AND related = 0") + ")")
        params.append(f.agent)
    if f.activity is not None:
        where.append(f"{alias}.seq IN (SELECT seq FROM xapi_activities WHERE activity_id = ?"
                     + ("" if f.related_activities else " AND related = 0") + ")")
        params.append(f.activity)
    return where, params


def one(db: Database, statement_id: str, voided: bool, writer: str | None) -> tuple[dict[str, Any], int] | None:
    """The stored statement with this id if its voided flag is ``voided`` (and ``writer`` wrote it)."""
    sql = "SELECT doc, stored_us FROM xapi_statements WHERE statement_id = ? AND voided = ?"
    params: list[Any] = [statement_id.lower(), int(voided)]
    if writer is not None:
        sql += " AND writer = ?"
        params.append(writer)
    with db.reading() as c:
        c.execute(sql, params)
        row = c.fetchone()
    return None if row is None else (json.loads(row[0]), int(row[1]))


def attachments(db: Database, hashes: list[str]) -> dict[str, tuple[str, bytes]]:
    """Stored attachment contents by SHA-2 (content type, bytes)."""
    if not hashes:
        return {}
    with db.reading() as c:
        c.execute(f"SELECT sha2, content_type, content FROM xapi_attachments WHERE sha2 IN ({','.join('?' * len(hashes))})",
                  hashes)
        return {str(r[0]): (str(r[1]), bytes(r[2])) for r in c.fetchall()}



def unmapped(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """The newest statements that map to a command the ledger's rules refused, with the rule."""
    with db.reading() as c:
        c.execute("SELECT statement_id, stored_us, writer, verb, command, rule FROM xapi_unmapped "
                  "ORDER BY seq DESC LIMIT ?", (limit,))
        rows = c.fetchall()
    return [{"statement_id": r[0], "stored_us": int(r[1]), "writer": r[2], "verb": r[3], "command": r[4],
             "rule": r[5]} for r in rows]
