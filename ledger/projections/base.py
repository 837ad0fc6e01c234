"""What every projection shares: idempotent per-officer documents, applied in batches.

A projection turns events into table changes. It is handed a batch of events in
order inside the runner's transaction, so its change and its position commit
together. Each officer's document remembers the last version applied: an event at
or below it is a duplicate delivery and changes nothing; an event that skips a
version is reported as a gap (never applied out of order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.db import Cursor
from ledger.events import OFFICER_EVENTS

CHUNK = 500


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def select_in(c: Cursor, sql: str, keys: Sequence[Any]) -> list[Any]:
    """``sql`` has one ``IN ({})``; runs it over ``keys`` in chunks and joins the rows."""
    rows: list[Any] = []
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start : start + CHUNK])
        c.execute(sql.format(",".join("?" * len(chunk))), chunk)
        rows.extend(c.fetchall())
    return rows


@dataclass(frozen=True)
class Gap:
    """An officer event refused because it does not follow the last applied version.

    ``held`` marks the officer's later events in the same batch: once a version is
    missing, nothing after it may be applied out of order.
    """

    officer_id: str
    expected: int
    got: int
    held: bool = False


class Projection:
    """A read model: its tables, and how a batch of events changes them."""

    name = "projection"

    def tables(self) -> list[str]:
        """The tables this projection owns (a rebuild recreates exactly these)."""
        raise NotImplementedError

    def apply_batch(self, c: Cursor, events: list[dict[str, Any]], suffix: str = "") -> list[Gap]:
        """Apply events in order; returns the officer events it refused as gaps."""
        raise NotImplementedError


class OfficerDocProjection(Projection):
    """A projection keeping one JSON document per officer, plus optional extra tables."""

    doc_table = "rm_docs"

    def tables(self) -> list[str]:
        return [self.doc_table, *self.extra_tables()]

    def extra_tables(self) -> list[str]:
        return []

    def new_doc(self, officer_id: str) -> dict[str, Any]:
        raise NotImplementedError

    def apply_event(self, c: Any, doc: dict[str, Any], event: dict[str, Any]) -> None:
        """Apply one officer event to its document (pure, apart from batch deltas)."""
        raise NotImplementedError

    def apply_reference(self, c: Cursor, event: dict[str, Any], suffix: str) -> None:
        """Apply one reference event (default: not needed by this read model)."""

    def begin(self) -> None:
        """Called before a batch (to reset per-batch accumulators)."""

    def flush(self, c: Cursor, suffix: str) -> None:
        """Called after a batch's documents are written (to write accumulators)."""

    def load_docs(self, c: Cursor, officer_ids: Iterable[str], suffix: str = "") -> dict[str, tuple[int, dict[str, Any]]]:
        rows = select_in(
            c,
            f"SELECT officer_id, version, doc FROM {self.doc_table}{suffix} WHERE officer_id IN ({{}})",
            sorted(set(officer_ids)),
        )
        return {row[0]: (int(row[1]), loads(row[2])) for row in rows}

    def apply_batch(self, c: Cursor, events: list[dict[str, Any]], suffix: str = "") -> list[Gap]:
        self.begin()
        docs = self.load_docs(c, (e["officer_id"] for e in events if e["type"] in OFFICER_EVENTS), suffix)
        changed: set[str] = set()
        gaps: list[Gap] = []
        stalled: set[str] = set()
        for event in events:
            if event["type"] not in OFFICER_EVENTS:
                self.apply_reference(c, event, suffix)
                continue
            officer_id = event["officer_id"]
            version, doc = docs.get(officer_id) or (0, self.new_doc(officer_id))
            if event["version"] <= version:
                continue  # delivered before: already in the document
            if officer_id in stalled or event["version"] != version + 1:
                gaps.append(Gap(officer_id, version + 1, event["version"], officer_id in stalled))
                stalled.add(officer_id)
                continue
            self.apply_event(c, doc, event)
            docs[officer_id] = (event["version"], doc)
            changed.add(officer_id)
        if changed:
            c.executemany(
                f"INSERT INTO {self.doc_table}{suffix} (officer_id, version, doc) VALUES (?, ?, ?) "
                "ON CONFLICT (officer_id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
                [(oid, docs[oid][0], dumps(docs[oid][1])) for oid in sorted(changed)],
            )
        self.flush(c, suffix)
        return gaps

    def get_doc(self, c: Cursor, officer_id: str) -> dict[str, Any] | None:
        c.execute(f"SELECT doc FROM {self.doc_table} WHERE officer_id = ?", (officer_id,))
        row = c.fetchone()
        return None if row is None else dict(loads(row[0]))

    def all_docs(self, c: Cursor) -> Iterable[dict[str, Any]]:
        c.execute(f"SELECT doc FROM {self.doc_table} ORDER BY officer_id")
        for row in c.fetchall():
            yield loads(row[0])
