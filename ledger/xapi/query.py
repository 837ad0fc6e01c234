"""GET /statements: the filters as one indexed query, newest first (or ascending), keyset pages.

Each filter narrows on an index: ``verb``, ``registration``, ``stored_us`` on the statements'
table, ``agent`` and ``activity`` through their own tables (``related`` widening from the
actor/object to every agent or activity the statement names). A page ends with the ``seq``
of its last statement; the next page starts after it (``cursor``), so a page costs the same
however deep it is. Voided statements are left out (they are fetched by ``voidedStatementId``).
"""

from __future__ import annotations

import dataclasses
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
    narrowed = any(v is not None for v in (f.agent, f.activity, f.verb, f.registration))
    if f.writer is not None:
        # With another filter its own index leads; the writer is then checked row by row
        # (``|| ''`` keeps the planner off the writer's index, which would scan all its rows).
        outer.append("s.writer || '' = ?" if narrowed else "s.writer = ?")
        outer_params.append(f.writer)
    order = "ASC" if f.ascending else "DESC"
    columns = "SELECT s.seq, s.stored_us, s.doc FROM xapi_statements s"
    direct, direct_params, source = _direct(f)
    page_on = "d.seq" if source else "s.seq"
    cursor = [] if f.cursor is None else [f"{page_on} {'>' if f.ascending else '<'} ?"]
    cursor_params = [] if f.cursor is None else [f.cursor]
    with db.reading() as c:
        # ``stored`` grows with ``seq`` (both assigned under one lock, refused on a race): since
        # and until become a range of seq, found on the stored index, so the page walks the
        # primary key (or the writer's index) and never the statements outside the range.
        for bound, instant in (("since", f.since_us), ("until", f.until_us)):
            if instant is None:
                continue
            c.execute("SELECT seq FROM xapi_statements WHERE stored_us > ? ORDER BY stored_us LIMIT 1"
                      if bound == "since" else
                      "SELECT seq FROM xapi_statements WHERE stored_us <= ? ORDER BY stored_us DESC LIMIT 1",
                      (instant,))
            edge = c.fetchone()
            outer.append("s.seq >= ?" if bound == "since" else "s.seq <= ?")
            outer_params.append(int(edge[0]) if edge is not None else (2**62 if bound == "since" else 0))
        c.execute(f"{columns}{source} WHERE {' AND '.join(outer + direct + cursor)} "
                  f"ORDER BY {page_on} {order} LIMIT {limit + 1}", outer_params + direct_params + cursor_params)
        rows = c.fetchall()
        if narrowed:
            match, match_params = _matching(f, "m")
            refs_cursor = [] if f.cursor is None else [f"s.seq {'>' if f.ascending else '<'} ?"]
            # CROSS JOIN: the statements with a StatementRef lead (few, on their partial index).
            c.execute(f"{columns} CROSS JOIN xapi_statements m "
                      f"WHERE m.statement_id = s.ref AND s.ref IS NOT NULL AND {' AND '.join(outer + match + refs_cursor)} "
                      f"ORDER BY s.seq {order} LIMIT {limit + 1}", outer_params + match_params + cursor_params)
            found = {int(r[0]): r for r in rows}
            found.update({int(r[0]): r for r in c.fetchall()})
            rows = [found[k] for k in sorted(found, reverse=not f.ascending)][: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([json.loads(r[2]) for r in rows], int(rows[-1][0]) if more and rows else None,
                max((int(r[1]) for r in rows), default=None))


def _direct(f: Filters) -> tuple[list[str], list[Any], str]:
    """The filters on the returned statement itself: conditions, parameters and the table that
    leads (an agent's or an activity's rows, in ``seq`` order on their primary key), if any."""
    where: list[str] = []
    params: list[Any] = []
    source = ""
    if f.agent is not None:
        source = " JOIN xapi_agents d ON d.seq = s.seq"
        where.append("d.agent = ?" + ("" if f.related_agents else " AND d.related = 0"))
        params.append(f.agent)
        if f.related_agents:  # one row per statement: the lowest ``related`` it has
            where.append("d.related = (SELECT min(x.related) FROM xapi_agents x WHERE x.agent = d.agent "
                         "AND x.seq = d.seq)")
    elif f.activity is not None:
        source = " JOIN xapi_activities d ON d.seq = s.seq"
        where.append("d.activity_id = ?" + ("" if f.related_activities else " AND d.related = 0"))
        params.append(f.activity)
        if f.related_activities:
            where.append("d.related = (SELECT min(x.related) FROM xapi_activities x WHERE x.activity_id = "
                         "d.activity_id AND x.seq = d.seq)")
    rest = dataclasses.replace(f, agent=None) if f.agent is not None else dataclasses.replace(f, activity=None)
    more, more_params = _matching(rest, "s")
    return where + more, params + more_params, source


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
