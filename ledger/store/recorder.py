"""What the ledger's event recorders add to the library's, in either dialect.

:class:`ledger.store.sqlite.LedgerSQLiteRecorder` and
:class:`ledger.store.postgres.LedgerPostgresRecorder` keep the hash chains, command
receipts, officers' access and data keys beside the events, in the events' own
transaction; these are the queries over them that both answer, documented once here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ledger.integrity import chain
from ledger.store.receipts import Access, Receipt


class LedgerRecorder:
    """The ledger's queries of an application recorder (each dialect implements them)."""

    def select_chain(self, originator: str) -> dict[int, bytes]:
        """Recorded chain hashes of one aggregate (hex UUID), by version."""
        raise NotImplementedError

    def select_log_chain(self, after: int, limit: int) -> list[chain.Link]:
        """Log-chain rows (position, entity, version, hash) after a position, in order."""
        raise NotImplementedError

    def select_log_head(self) -> tuple[int, bytes] | None:
        """The last log-chain row (position, hash), or None for an empty log."""
        raise NotImplementedError

    def originators(self) -> set[str]:
        """Every aggregate (hex UUID) that has events or chain entries."""
        raise NotImplementedError

    def count_notifications(self, after: int, upto: int) -> int:
        """How many events have a notification id above ``after`` and at most ``upto``: on
        PostgreSQL ids come from a sequence, and a rolled-back insert leaves a gap in them,
        so ``upto - after`` may count events that do not exist."""
        raise NotImplementedError

    def select_receipts(self, command_ids: Iterable[str]) -> dict[str, Receipt]:
        """The stored receipt of each of these command ids that was accepted."""
        raise NotImplementedError

    def select_access(self, officer_id: str) -> Access | None:
        """The officer's current ministry and whether it was erased, as committed with its events."""
        raise NotImplementedError

    def select_key(self, officer_id: str) -> bytes | None:
        """The officer's data key, or None once it was destroyed."""
        return self.select_keys([officer_id]).get(officer_id)

    def select_keys(self, officer_ids: Iterable[str]) -> dict[str, bytes]:
        """Data keys of several officers at once (missing ones are absent)."""
        raise NotImplementedError

    def select_by_entity(
        self, upto: int, after: tuple[str, int] | None, below: str | None, limit: int
    ) -> list[tuple[str, int, str, bytes]]:
        """Up to ``limit`` events (entity as hex, version, topic, state) at or before
        notification ``upto``, in entity and version order, after the (entity, version)
        ``after`` and before the entity ``below``.

        A rebuild reads the history entity by entity in such keyset pages: each page is
        one short read along the primary key, so no snapshot stays open against writers.
        """
        raise NotImplementedError

    def select_log_except(
        self, prefix: str, after: int, upto: int, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` events (notification id, entity as hex, version, topic, state)
        after ``after`` and at most ``upto``, in log order, leaving out those whose topic
        starts with ``prefix``."""
        raise NotImplementedError

    def select_log_of(
        self, topics: Sequence[str], after: int, upto: int, limit: int
    ) -> list[tuple[int, str, int, str, bytes]]:
        """Up to ``limit`` events (as ``select_log_except``) after ``after`` and at most ``upto``,
        in log order, of these ``topics`` only."""
        raise NotImplementedError

    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every stored event of these aggregates, by aggregate and version, in as few
        queries as the dialect allows: a batch's officers are loaded together, not one by one."""
        raise NotImplementedError

    def scrub(self) -> None:
        """Leave no copy of a destroyed data key in the database's files."""
        raise NotImplementedError
