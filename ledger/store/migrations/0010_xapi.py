"""The xAPI Learning Record Store's tables (DOMAIN.md "xAPI statements").

Each statement is an event of its own aggregate (``ledger.xapi.statement``); these tables are
written in that event's transaction (the recorders' ``side_rows``) and answer the queries:

- ``xapi_statements``: one row per statement, ``seq`` its order of storage (keyset paging),
  ``stored_us`` its ``stored`` instant in microseconds (monotonic), the filter columns and the
  statement as stored (personal data encrypted, as in the event).
- ``xapi_activities`` / ``xapi_agents``: the activity ids and agent keys (hashed) a statement
  names, ``related`` 0 for the object/actor, 1 for anything else (``related_*`` queries).
- ``xapi_person_keys``: the data key of each person who is not an officer of this ledger (an
  officer's personal data uses the officer's own key); destroying it erases the person.
- ``xapi_attachments``: attachment contents by SHA-2.
- ``xapi_mapped``: the officer event versions each mapped statement produced (voiding retracts them).
- ``xapi_unmapped``: statements that map to a ledger command the ledger's rules refused.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "xAPI statements, their query index, person keys and attachments"


def apply(c: Cursor, dialect: str) -> None:
    blob = "BYTEA" if dialect == "postgres" else "BLOB"
    c.execute(
        "CREATE TABLE xapi_statements (seq BIGINT PRIMARY KEY, statement_id TEXT NOT NULL UNIQUE, "
        "stored_us BIGINT NOT NULL, verb TEXT NOT NULL, registration TEXT, voided INTEGER NOT NULL DEFAULT 0, "
        "ref TEXT, writer TEXT NOT NULL, doc TEXT NOT NULL)"
    )
    c.execute("CREATE INDEX xapi_statements_verb ON xapi_statements (verb, seq)")
    c.execute("CREATE INDEX xapi_statements_registration ON xapi_statements (registration, seq)")
    c.execute("CREATE INDEX xapi_statements_stored ON xapi_statements (stored_us)")
    c.execute("CREATE INDEX xapi_statements_ref ON xapi_statements (ref)")
    # The few statements whose object is a StatementRef, newest first (queries include them when
    # their target matches the filters).
    c.execute("CREATE INDEX xapi_statements_refs ON xapi_statements (seq) WHERE ref IS NOT NULL")
    c.execute("CREATE INDEX xapi_statements_writer ON xapi_statements (writer, seq)")
    c.execute("CREATE TABLE xapi_activities (activity_id TEXT NOT NULL, seq BIGINT NOT NULL, related INTEGER NOT NULL, "
              "PRIMARY KEY (activity_id, seq, related))")
    c.execute("CREATE TABLE xapi_agents (agent TEXT NOT NULL, seq BIGINT NOT NULL, related INTEGER NOT NULL, "
              "PRIMARY KEY (agent, seq, related))")
    c.execute(f"CREATE TABLE xapi_person_keys (person TEXT PRIMARY KEY, data_key {blob} NOT NULL)")
    c.execute(f"CREATE TABLE xapi_attachments (sha2 TEXT PRIMARY KEY, content_type TEXT NOT NULL, content {blob} NOT NULL)")
    c.execute("CREATE TABLE xapi_mapped (statement_id TEXT PRIMARY KEY, writer TEXT NOT NULL, officer_id TEXT NOT NULL, "
              "versions TEXT NOT NULL)")
    c.execute("CREATE TABLE xapi_unmapped (statement_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, writer TEXT NOT NULL, "
              "verb TEXT NOT NULL, command TEXT NOT NULL, rule TEXT NOT NULL, stored_us BIGINT NOT NULL)")
