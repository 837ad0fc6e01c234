"""A statement in the event store: one aggregate per statement id, one event.

The aggregate's id is derived from the statement id (``aggregate_id("xapi-statement", id)``),
so the store itself refuses a statement id twice (the second version-1 event of the same
aggregate is a unique-key violation), and no client can pick an id that lands on another
aggregate's stream (an officer's, a course's). The event carries the statement as stored
(``stored``, ``authority`` and ``version`` set) with its personal data sealed
(:mod:`ledger.xapi.privacy`); it is chained, checkpointed and published like every event.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.domain.ids import aggregate_id


class Statement(Aggregate):
    """One stored xAPI statement (immutable: it has only its creation event)."""

    @staticmethod
    def create_id(statement_id: str) -> UUID:
        return aggregate_id("xapi-statement", statement_id.lower())

    @event("StatementStored")
    def __init__(self, statement_id: str, stored: str, writer: str, doc: str) -> None:
        self.statement_id = statement_id
        self.stored = stored
        self.writer = writer
        self.doc = doc
