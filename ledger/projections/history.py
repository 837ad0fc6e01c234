"""Officers' stored events, for the re-folds of the read models (see ``OfficerDocProjection.refold``)."""

from __future__ import annotations

from typing import Any

from ledger.store.db import Database

HISTORIES_KEPT = 64  # officers whose stored events are kept for re-folds


class StoredHistory:
    """An officer's events through a version, from the event store, the system of record.

    The read models live in the store's database, in Kafka mode too, and stored events
    never change, so what a topic delivered is there. The five read models re-fold the
    same officer in a batch: the events read for the first serve the others (kept for the
    last few officers; read again when a later version is needed).
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._store: Any = None  # the event store, opened on the first re-fold
        self._kept: dict[str, list[dict[str, Any]]] = {}  # officer -> stored events, least recent first

    def __call__(self, officer_id: str, version: int) -> list[dict[str, Any]]:
        kept = self._kept.pop(officer_id, None)
        if kept is None or len(kept) < version:
            if self._store is None:
                from ledger.write.application import Ledger

                self._store = Ledger(self.db.settings, cache_size=0)
            kept = self._store.officer_events(officer_id)
        self._kept[officer_id] = kept
        while len(self._kept) > HISTORIES_KEPT:
            del self._kept[next(iter(self._kept))]
        return [e for e in kept if e["version"] <= version]
