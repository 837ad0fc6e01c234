"""Queries over the read models, in the spec's JSON shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.integrity import crypto
from ledger.projections.competency import CompetenciesProjection
from ledger.projections.gaps import GapsProjection
from ledger.projections.ministry import MinistriesProjection
from ledger.projections.plans import PlansProjection
from ledger.projections.record import RecordsProjection, finish
from ledger.projections.runner import Runner
from ledger.store.db import Database


class ReadModels:
    """Reads the projection tables; decrypts personal data with the store's keys."""

    def __init__(self, db: Database, ledger: Any) -> None:
        self.db = db
        self.ledger = ledger
        self.runner = Runner(db)
        self.records = RecordsProjection()
        self.competencies = CompetenciesProjection()
        self.ministries = MinistriesProjection()
        self.plans = PlansProjection()
        self.gaps = GapsProjection()

    def _decrypter(self, officer_id: str, key: bytes | None) -> Any:
        return lambda field, token: crypto.decrypt(key, officer_id, field, token)

    def record(self, officer_id: str) -> dict[str, Any] | None:
        with self.db.reading() as c:
            doc = self.records.get_doc(c, officer_id)
        if doc is None:
            return None
        key = self.ledger.recorder.select_key(officer_id)
        return finish(doc, self._decrypter(officer_id, key))

    def competency_profile(self, officer_id: str) -> dict[str, Any] | None:
        with self.db.reading() as c:
            return self.competencies.profile(c, officer_id)

    def ministry(self, ministry_id: str) -> dict[str, Any] | None:
        with self.db.reading() as c:
            return self.ministries.aggregates(c, ministry_id)

    def plan(self, ministry_id: str, fy: str) -> dict[str, Any] | None:
        """The ministry's plan for the FY against what happened, or None when none was declared."""
        with self.db.reading() as c:
            return self.plans.plan(c, ministry_id, fy)

    def gap_report(self, ministry_id: str) -> dict[str, Any] | None:
        """The ministry's competency gaps, or None for a ministry never defined."""
        with self.db.reading() as c:
            return self.gaps.report(c, ministry_id)

    def gap_reports(self) -> list[dict[str, Any]]:
        """Every ministry's gap report, by ministry id."""
        with self.db.reading() as c:
            return self.gaps.export(c)

    def export(self, model: str) -> Iterator[dict[str, Any]]:
        with self.db.reading() as c:
            if model == "competencies":
                rows = self.competencies.export(c)
            elif model == "ministries":
                rows = self.ministries.export(c)
            elif model == "plans":
                rows = self.plans.export(c)
            elif model == "gaps":
                rows = self.gaps.export(c)
            elif model == "records":
                rows = list(self.records.all_docs(c))
            else:
                raise ValueError(model)
        if model != "records":
            yield from rows
            return
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            keys = self.ledger.recorder.select_keys([d["officer_id"] for d in chunk])
            for doc in chunk:
                yield finish(doc, self._decrypter(doc["officer_id"], keys.get(doc["officer_id"])))

    def dead_letters(self) -> list[dict[str, Any]]:
        with self.db.reading() as c:
            c.execute(
                "SELECT source, part, position, officer_id, reason, recorded_at FROM ledger_dead_letters "
                "ORDER BY recorded_at, source, part, position"
            )
            return [
                {"source": r[0], "partition": int(r[1]), "position": int(r[2]), "officer_id": r[3],
                 "reason": r[4], "recorded_at": r[5]}
                for r in c.fetchall()
            ]
