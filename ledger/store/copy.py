"""Bulk writes to PostgreSQL with ``COPY``: a batch's events, chain links and receipts.

``COPY ... FROM STDIN (FORMAT BINARY)`` sends the rows as one stream, each value in its
binary form, with no statement per row and no array to build; psycopg's C extension
formats the rows. COPY cannot run in pipeline mode, so a batch written this way runs in
a plain transaction (:func:`insert_by_copy`), with the same steps and the same rows as the
library's pipelined insert: side tables first, then the events under the table lock the
library takes (so positions are handed out in commit order), then the log chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from psycopg import Cursor
from psycopg.pq import PipelineStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable

from ledger.integrity import chain

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent

    from ledger.store.postgres import LedgerPostgresRecorder

# Fewer events than this go in with the pipelined statements (a COPY's own round trips
# cost more than it saves on a handful of rows).
MIN_COPY_EVENTS = 64


def can_copy(curs: Cursor[DictRow]) -> bool:
    """Whether this cursor's connection may run a COPY now (not in pipeline mode)."""
    return curs.connection.pgconn.pipeline_status == PipelineStatus.OFF


# The names COPY's binary format knows the recorders' column types by.
_BINARY_NAMES = {"bigint": "int8", "integer": "int4"}


def copy_rows(curs: Cursor[DictRow], into: Composable, types: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Rows into ``into`` (a table, with its column list when the rows do not fill every
    column), of these PostgreSQL ``types``, with one binary COPY."""
    with curs.copy(SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(into)) as copy:
        copy.set_types([_BINARY_NAMES.get(t, t) for t in types])
        for row in rows:
            copy.write_row(row)


def insert_by_copy(recorder: LedgerPostgresRecorder, stored_events: Sequence[StoredEvent],
                   **kwargs: Any) -> list[int]:
    """Write the batch in one transaction, events and per-event rows by COPY; their positions."""
    with recorder.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
        recorder._insert_events(curs, stored_events, **kwargs)  # chain links and side tables
        recorder._lock_table(curs)
        recorder._notify_channel(curs)
        events = recorder.events_identifier
        copy_rows(curs, SQL("{} (originator_id, originator_version, topic, state)").format(events),
                  ("uuid", "bigint", "text", "bytea"),
                  ((s.originator_id, s.originator_version, s.topic, s.state) for s in stored_events))
        ids = _positions(curs, recorder, stored_events)
        curs.execute(SQL("SELECT hash FROM {} ORDER BY position DESC LIMIT 1").format(recorder.log_table))
        head = curs.fetchone()
        links = chain.extend_log(bytes(head["hash"]) if head else chain.GENESIS, zip(ids, stored_events, strict=True))
        copy_rows(curs, recorder.log_table, ("bigint", "text", "bigint", "bytea"), links)
        return ids


def _positions(curs: Cursor[DictRow], recorder: LedgerPostgresRecorder,
               stored_events: Sequence[StoredEvent]) -> list[int]:
    """The positions the COPY gave the events, in their order.

    Under the table lock no other transaction takes numbers from the events' sequence,
    so they are the ``n`` numbers ending at this session's last one; checked on the first
    and the last event, and otherwise read back event by event.
    """
    events = recorder.events_identifier
    curs.execute(SQL("SELECT currval(pg_get_serial_sequence(%s, 'notification_id')) AS last"),
                 (recorder.events_qualified_name,))
    row = curs.fetchone()
    assert row is not None
    last = int(row["last"])
    ids = list(range(last - len(stored_events) + 1, last + 1))
    probe = SQL("SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s").format(events)
    ends = ((0, stored_events[0]), (len(ids) - 1, stored_events[-1]))
    for index, s in ends:
        curs.execute(probe, (s.originator_id, s.originator_version))
        found = curs.fetchone()
        if found is None or int(found["notification_id"]) != ids[index]:
            break
    else:
        return ids
    out = []
    for s in stored_events:
        curs.execute(probe, (s.originator_id, s.originator_version))
        found = curs.fetchone()
        assert found is not None
        out.append(int(found["notification_id"]))
    return out
