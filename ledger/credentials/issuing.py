"""The issuing projection: credentials and status lists signed once, stored, served as stored.

``issued_credentials`` is a read model like the others (its position and its changes in one
transaction, exactly once, rebuilt by ``ledger rebuild``), with one difference: applying
it signs, so only a process holding the issuer key runs it (``ledger issue``, ``ledger
project``; never the API or the console, which serve what it stored). Its tables:

- ``rm_issued_credentials``: per officer, the signed credentials in the order they are
  served (``seq``): one AchievementCredential per current completion, in business order,
  then the current ClrCredential holding them, exactly what
  :meth:`~ledger.credentials.issue.CredentialIssuer.for_officer` gives for the officer's
  events so far; nothing for an erased officer. Each row keeps the digest of its unsigned
  document, so only what changed is signed again;
- ``rm_issued_lists``: each revocation status list, signed, in the state the
  ``credential_status`` read model holds;
- ``rm_issuer``: the issuer's public profile, verification method and DID document.

It follows the store's log and reads only the officer events a credential depends on
(:data:`ISSUING_TYPES`). For each officer in a batch, it issues from the officer's events up
to the last version the batch holds, so what is stored after an event depends on the events
up to it and never on how they were batched: the same log gives the same bytes, also after
a rebuild. Indexes come from ``credential_status``, which must have applied the batch's
events first (the issuing worker brings it up to date before each batch; a rebuild rebuilds
the two together, :data:`IssuedCredentialsProjection.rebuilt_with`). A retraction revokes
through the status list (``credential_status`` sets the bit; the list is signed again here)
and the officer's new ClrCredential replaces the stored one.

Signing is slow (a ClrCredential of 200 completions takes seconds), so the worker signs a
batch before its transaction (:meth:`IssuedCredentialsProjection.presign`, reading only),
and the transaction finds the signatures ready: the store's write lock is never held
while signing. Whatever the transaction finds not signed yet, it signs itself, so the
result never depends on the pre-signing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.credentials.issue import CredentialIssuer, digest, json_line
from ledger.credentials.issuer import Issuer
from ledger.credentials.proof import CredentialError
from ledger.credentials.stored import ISSUED, ISSUED_LISTS, ISSUER, PROJECTION
from ledger.domain.officer import Officer
from ledger.events import to_public
from ledger.projections.base import Gap, Projection, select_in
from ledger.projections.business import RETRACTION
from ledger.projections.credential_status import (
    COMPLETED,
    LIST_SIZE,
    LISTS,
    REVOKED,
    officer_entries,
)
from ledger.store.db import Cursor, Database

# The officer events a credential depends on (officer_facts, business order, status entries).
ISSUING_TYPES = ("OfficerRegistered", "CourseEnrolled", "AssessmentAttempted", COMPLETED, "OfficerErased",
                 RETRACTION)


class _TableIndexes:
    """Indexes from the ``credential_status`` tables the transaction sees (``suffix``: a rebuild's)."""

    def __init__(self, c: Cursor, suffix: str) -> None:
        self.c = c
        self.suffix = suffix

    def indexes(self, officer_id: str, needed: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
        found = {e.key: e.index for e in officer_entries(self.c, [officer_id], self.suffix)}
        missing = set(needed) - set(found)
        if missing:
            what = ", ".join(f"{kind} of version {version}" for version, kind in sorted(missing))
            raise CredentialError(f"no status list index for {officer_id}'s {what}: credential_status has not "
                                  "applied these events yet (it must be applied before issued_credentials)")
        return found


@dataclass
class _Issued:
    """What one batch stores: credentials by officer (in order), status lists by number."""

    officers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lists: dict[int, dict[str, Any]] = field(default_factory=dict)


class IssuedCredentialsProjection(Projection):
    """Signs each officer's credentials and the status lists, and stores them."""

    name = PROJECTION
    follows_log = True
    log_types = ISSUING_TYPES
    rebuilt_with = ("credential_status",)  # whose indexes it reads: rebuilt together

    def __init__(self, ledger: Any, issuer: Issuer | None) -> None:
        self.ledger = ledger
        self.issuer = issuer  # None: only for listing the projection (status, metrics); it cannot apply
        self.signatures: dict[str, dict[str, Any]] = {}
        self._issued: dict[tuple[str, int], list[dict[str, Any]]] = {}  # by (officer, through version)
        self._credentials: CredentialIssuer | None = None

    def tables(self) -> list[str]:
        return [ISSUED, ISSUED_LISTS, ISSUER]

    def _issuing(self, c: Cursor, suffix: str) -> CredentialIssuer:
        if self.issuer is None:
            raise CredentialError("issued_credentials: this process holds no issuer key and cannot sign")
        if self._credentials is None:
            self._credentials = CredentialIssuer(self.ledger, self.issuer, status=_TableIndexes(c, suffix),
                                                 signatures=self.signatures)
        self._credentials.status = _TableIndexes(c, suffix)
        return self._credentials

    @staticmethod
    def _through(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
        """The batch's officers and, for each, the last version of theirs it holds."""
        through: dict[str, int] = {}
        for event in events:
            if event["type"] in ISSUING_TYPES:
                officer_id = event["officer_id"]
                through[officer_id] = max(through.get(officer_id, 0), int(event["version"]))
        return through

    def _officer(self, credentials: CredentialIssuer, officer_id: str, version: int) -> list[dict[str, Any]]:
        """The officer's signed credentials from its events up to ``version``."""
        key = (officer_id, version)
        if key not in self._issued:
            events = [to_public(e) for e in self.ledger.events.get(Officer.create_id(officer_id), lte=version)]
            self._issued[key] = credentials.for_officer(officer_id, events) or []
        return self._issued[key]

    def presign(self, c: Cursor, events: list[dict[str, Any]], stop: Any = None) -> None:
        """Sign what applying ``events`` will store, reading only (``c``: a read snapshot); stops
        early when ``stop`` (an Event) is set."""
        credentials = self._issuing(c, "")
        for officer_id, version in sorted(self._through(events).items()):
            if stop is not None and stop.is_set():
                return
            self._officer(credentials, officer_id, version)

    def forget(self) -> None:
        """Drop what was signed for the last batch (after its commit, or its failure)."""
        self.signatures.clear()
        self._issued.clear()

    def apply_batch(self, c: Cursor, events: list[dict[str, Any]], suffix: str = "", cache: Any = None) -> list[Gap]:
        through = self._through(events)
        if not through:
            return []
        credentials = self._issuing(c, suffix)
        try:
            issued = _Issued({officer_id: self._officer(credentials, officer_id, version)
                              for officer_id, version in sorted(through.items())})
            if any(e["type"] in (COMPLETED, RETRACTION) for e in events):
                issued.lists = self._lists(c, credentials, suffix)
        finally:
            self.forget()  # what was signed ahead served this batch only (a retried one signs again)
        _write(c, issued, suffix)
        self._issuer_view(c, suffix)
        return []

    def _issuer_view(self, c: Cursor, suffix: str = "") -> None:
        """The issuer's public profile, key and DID document, for ``GET /issuer`` (nothing secret)."""
        assert self.issuer is not None
        c.execute(f"INSERT INTO {ISSUER}{suffix} (name, doc) VALUES ('issuer', ?) "
                  "ON CONFLICT (name) DO UPDATE SET doc = excluded.doc", (json_line(self.issuer.public_view()),))

    def store_issuer_view(self, db: Database) -> None:
        """The same in a transaction of its own (the worker, when it starts)."""
        if self.issuer is None:
            raise CredentialError("issued_credentials: this process holds no issuer key")
        with db.transaction() as c:
            self._issuer_view(c)

    @staticmethod
    def _lists(c: Cursor, credentials: CredentialIssuer, suffix: str) -> dict[int, dict[str, Any]]:
        """Every status list whose state differs from the one signed last, signed as it is now."""
        c.execute(f"SELECT list_no, valid_from FROM {LISTS}{suffix} ORDER BY list_no")
        states = [(int(r[0]), str(r[1])) for r in c.fetchall()]
        c.execute(f"SELECT list_no, digest FROM {ISSUED_LISTS}{suffix}")
        signed = {int(r[0]): r[1] for r in c.fetchall()}
        found: dict[int, dict[str, Any]] = {}
        for list_no, valid_from in states:
            start = list_no * LIST_SIZE
            c.execute(f"SELECT idx FROM {REVOKED}{suffix} WHERE idx >= ? AND idx < ? ORDER BY idx",
                      (start, start + LIST_SIZE))
            revoked = [int(r[0]) - start for r in c.fetchall()]
            if digest(credentials.unsigned_list(list_no, valid_from, revoked)) != signed.get(list_no):
                found[list_no] = credentials.sign_list(list_no, valid_from, revoked)
        return found


def _unsigned_digest(credential: Mapping[str, Any]) -> str:
    return digest({k: v for k, v in credential.items() if k != "proof"})


def _write(c: Cursor, issued: _Issued, suffix: str) -> None:
    """Each officer's rows that changed (by seq), the rows past its new end deleted; the lists signed again."""
    stored: dict[str, dict[int, str]] = {}
    for officer_id, seq, sha in select_in(c, f"SELECT officer_id, seq, digest FROM {ISSUED}{suffix} "
                                             "WHERE officer_id IN ({})", sorted(issued.officers)):
        stored.setdefault(officer_id, {})[int(seq)] = sha
    rows = []
    gone: list[tuple[str, int]] = []
    for officer_id, credentials in sorted(issued.officers.items()):
        mine = stored.get(officer_id, {})
        for seq, credential in enumerate(credentials):
            sha = _unsigned_digest(credential)
            if mine.get(seq) != sha:
                rows.append((officer_id, seq, credential["type"][-1], sha, json_line(credential)))
        gone.extend((officer_id, seq) for seq in sorted(mine) if seq >= len(credentials))
    if gone:
        c.executemany(f"DELETE FROM {ISSUED}{suffix} WHERE officer_id = ? AND seq = ?", gone)
    if rows:
        c.executemany(f"INSERT INTO {ISSUED}{suffix} (officer_id, seq, kind, digest, doc) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (officer_id, seq) DO UPDATE SET kind = excluded.kind, digest = excluded.digest, "
                      "doc = excluded.doc", rows)
    if issued.lists:
        c.executemany(f"INSERT INTO {ISSUED_LISTS}{suffix} (list_no, digest, doc) VALUES (?, ?, ?) "
                      "ON CONFLICT (list_no) DO UPDATE SET digest = excluded.digest, doc = excluded.doc",
                      [(n, _unsigned_digest(doc), json_line(doc)) for n, doc in sorted(issued.lists.items())])
