"""The xAPI document resources (DOMAIN.md "xAPI statements"; xAPI Communication "Document Resources").

Documents are mutable, unlike statements: one row per document, replaced or merged in place in
a transaction of its own, never an event. ``kind`` is ``state``, ``activity_profile`` or
``agent_profile``; ``writer`` the ``lrs`` token that wrote it (each token has documents of its
own); ``agent`` only the hashed agent key (``ledger.xapi.privacy.agent_ref``), '' where the
resource has none, as ``activity_id`` and ``registration``. ``person`` names whose key seals
``content`` (state and agent profile documents belong to the agent: ``o:<officer>`` or
``p:<hash>``, the keys of ``xapi_person_keys``); NULL for activity profiles, stored as sent.
No digest of the content is kept (a digest of a short document would outlive its erasure):
the ETag is computed from the content when it is read.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "xAPI documents: state, activity profile and agent profile"


def apply(c: Cursor, dialect: str) -> None:
    blob = "BYTEA" if dialect == "postgres" else "BLOB"
    c.execute(
        "CREATE TABLE xapi_documents (kind TEXT NOT NULL, writer TEXT NOT NULL, activity_id TEXT NOT NULL, "
        "agent TEXT NOT NULL, registration TEXT NOT NULL, doc_id TEXT NOT NULL, person TEXT, "
        f"content_type TEXT NOT NULL, updated_us BIGINT NOT NULL, content {blob} NOT NULL, "
        "PRIMARY KEY (kind, writer, activity_id, agent, registration, doc_id))"
    )
    c.execute("CREATE INDEX xapi_documents_scope ON xapi_documents "
              "(kind, activity_id, agent, registration, updated_us)")
    c.execute("CREATE INDEX xapi_documents_person ON xapi_documents (person)")
