"""The issuing projection: every credential and status list signed once, stored, and equal byte for
byte to what issuing from the events gives, after retractions, erasure, replays and rebuilds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.credentials import issuer as issuers
from ledger.credentials.issue import CredentialIssuer, json_line
from ledger.credentials.issuing import IssuedCredentialsProjection
from ledger.credentials.stored import stored_credential_lines, stored_issuer, stored_list
from ledger.credentials.verify import verify_credential
from ledger.credentials.worker import IssuingWorker
from ledger.projections.credential_status import CredentialStatusProjection
from ledger.projections.rebuild import rebuild
from ledger.projections.runner import Runner, all_projections
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import lines, officer_cmd
from tests.test_credentials import career

OFFICERS = ("O1", "O2", "O3")


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ledger = Ledger(settings)
        self.db = Database(settings)
        self.issuer = issuers.for_settings(settings)
        self.worker = IssuingWorker(self.ledger, self.db, self.issuer, page=3)  # pages of 3: many batches

    def ingest(self, commands: list[dict[str, Any]]) -> None:
        outcomes = list(self.ledger.ingest(lines(commands)))
        assert {o.status for o in outcomes} == {"accepted"}, [o for o in outcomes if o.status != "accepted"]

    def stored(self) -> dict[str, list[str]]:
        with self.db.reading() as c:
            return {o: stored_credential_lines(c, o) for o in OFFICERS}

    def expected(self) -> dict[str, list[str]]:
        """What issuing from the store's events gives now (signing on demand, as before)."""
        issuing = CredentialIssuer(Ledger(self.settings), self.issuer)
        return {o: [json_line(c) for c in issuing.for_officer(o) or []] for o in OFFICERS}

    def tables(self) -> list[Any]:
        with self.db.reading() as c:
            c.execute("SELECT officer_id, seq, kind, digest, doc FROM rm_issued_credentials ORDER BY officer_id, seq")
            rows = c.fetchall()
            c.execute("SELECT list_no, doc FROM rm_issued_lists ORDER BY list_no")
            return [*map(tuple, rows), *map(tuple, c.fetchall())]


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> World:
    w = World(replace(settings, issuer_key=str(tmp_path / "keys" / "issuer.pem")))
    w.ingest(career())
    return w


def test_stored_credentials_are_the_issued_ones_byte_for_byte_and_verify(world: World) -> None:
    assert world.stored() == {o: [] for o in OFFICERS}  # nothing before the worker runs
    stats = world.worker.run(until_idle=True)
    assert stats.batches > 3
    stored = world.stored()
    assert stored == world.expected()
    assert [len(stored[o]) for o in OFFICERS] == [3, 2, 0]
    for line in stored["O1"] + stored["O2"]:
        assert verify_credential(json.loads(line))
    with world.db.reading() as c:
        status_list, issuer = stored_list(c, 0), stored_issuer(c)
    assert status_list is not None and '"BitstringStatusListCredential"' in status_list
    assert issuer is not None and world.issuer.public_multibase in issuer and "PRIVATE" not in issuer
    assert world.worker.run(until_idle=True).batches == 0  # nothing new: nothing signed again


def test_a_retraction_revokes_and_stores_the_new_clr_and_erasure_empties(world: World) -> None:
    world.worker.run(until_idle=True)
    before = world.stored()
    with world.db.reading() as c:
        list_before = stored_list(c, 0)
    world.ingest([{"type": "retract", "officer_id": "O1", "versions": [9], "reason": "recorded_in_error"}])
    world.worker.run(until_idle=True)
    after = world.stored()
    assert after == world.expected()
    assert after["O1"][0] == before["O1"][0]  # the kept achievement is not signed again
    assert len(after["O1"]) == 2 and after["O1"][1] != before["O1"][2]  # the new CLR, with a new id
    with world.db.reading() as c:
        list_after = stored_list(c, 0)
    assert list_after is not None and list_after != list_before  # bits set for the revoked ones
    world.ledger.erase("O2", "DPDP request")
    world.worker.run(until_idle=True)
    assert world.stored()["O2"] == [] == world.expected()["O2"]


def test_the_same_events_give_the_same_tables_after_rebuild_and_a_replay(world: World) -> None:
    world.ingest([
        {"type": "retract", "officer_id": "O1", "versions": [9], "reason": "recorded_in_error"},
        officer_cmd("enrol", 10, "O3", course_id="K-ETH"),
        officer_cmd("record_progress", 10, "O3", course_id="K-ETH", percent=100),
        officer_cmd("complete_course", 11, "O3", course_id="K-ETH"),
        officer_cmd("enrol", 1, "O3", course_id="K-BUD"),  # late, before the other
        officer_cmd("record_progress", 2, "O3", course_id="K-BUD", percent=100),
        officer_cmd("attempt_assessment", 2, "O3", course_id="K-BUD", score=80),
        officer_cmd("complete_course", 3, "O3", course_id="K-BUD"),
    ])
    world.worker.run(until_idle=True)
    live = world.tables()
    assert world.stored() == world.expected()
    # Rebuilt (with credential_status) from pages of two events: the same bytes (nothing depends on batching).
    runner = Runner(Database(world.settings), [*all_projections(),
                                               IssuedCredentialsProjection(world.ledger, world.issuer)])
    rebuild(world.ledger, runner, ["issued_credentials"], page_size=2)
    assert world.tables() == live
    # Positions lost: the events delivered again change nothing.
    again = Runner(world.db, [CredentialStatusProjection(), IssuedCredentialsProjection(world.ledger, world.issuer)],
                   cache_officers=0)
    with world.db.transaction() as c:
        c.execute("DELETE FROM ledger_offsets WHERE projection = 'issued_credentials'")
    from ledger.projections.runner import LOG_SOURCE, Item

    page = world.ledger.read_log(0, 10_000)
    again.process([Item(LOG_SOURCE, 0, nid, None, event) for nid, event in page])
    assert world.tables() == live


def test_without_the_key_nothing_is_applied(world: World) -> None:
    runner = Runner(world.db, [IssuedCredentialsProjection(world.ledger, None)], cache_officers=0)
    from ledger.projections.runner import LOG_SOURCE, Item

    page = world.ledger.read_log(0, 10_000)
    with pytest.raises(Exception, match="holds no issuer key"):
        runner.process([Item(LOG_SOURCE, 0, nid, None, event) for nid, event in page])
    assert world.stored() == {o: [] for o in OFFICERS}


def test_ledger_status_reports_the_issuer_once_it_has_run(world: World) -> None:
    from ledger.monitor.status import collect

    assert "issued_credentials" not in collect(world.ledger, world.settings)["projections"]  # no issuer yet
    world.worker.run(until_idle=True)
    entry = collect(world.ledger, world.settings)["projections"]["issued_credentials"]
    assert entry["lag_events"] == 0
    world.ingest([officer_cmd("enrol", 20, "O3", course_id="K-ETH")])
    assert collect(world.ledger, world.settings)["projections"]["issued_credentials"]["lag_events"] == 1


def test_the_worker_signs_before_the_transaction_never_inside_it(world: World,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing takes seconds for a large CLR: the store's write lock must not be held meanwhile."""
    from ledger.credentials import issue

    inside = {"now": False}
    signed = {"outside": 0, "inside": 0}
    real_sign, real_apply = issue.sign_credential, world.worker.projection.apply_batch

    def counting_sign(unsigned: dict[str, Any], issuer: Any) -> dict[str, Any]:
        signed["inside" if inside["now"] else "outside"] += 1
        return real_sign(unsigned, issuer)

    def marked_apply(*args: Any, **kwargs: Any) -> Any:
        inside["now"] = True
        try:
            return real_apply(*args, **kwargs)
        finally:
            inside["now"] = False

    monkeypatch.setattr(issue, "sign_credential", counting_sign)
    monkeypatch.setattr(world.worker.projection, "apply_batch", marked_apply)
    world.worker.run(until_idle=True)
    assert world.stored() == world.expected()
    # Status lists are signed in the transaction (they are small); credentials never are.
    assert signed["outside"] >= 5 and signed["inside"] <= 2, signed
