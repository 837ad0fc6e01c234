"""The xAPI document resources' storage: state, activity profile and agent profile documents.

xAPI 1.0.3 Communication 2.2-2.3, 2.6-2.7 and 3.1; IEEE 9274.1.1-2023 4.1.4 (Concurrency) and
4.1.6.2, 4.1.6.5, 4.1.6.6. Documents are mutable, so they are not events: each is one row of
``xapi_documents`` (migration 0013), read, checked and written in one database transaction.

- **Whose documents**: every ``lrs`` token has documents of its own (the writer is part of a
  document's key), as it reads only the statements it wrote; one LMS never reads another's
  learners' state. An auditor reads every token's documents (for one key, the one written
  last).
- **Personal data**: the agent a state or agent profile document is about is kept only as its
  hashed key (:func:`ledger.xapi.privacy.agent_ref`); the content is AES-256-GCM ciphertext
  under that person's key (an officer's data key, else the person's key in
  ``xapi_person_keys``), so ``ledger erase`` leaves nothing readable. A document whose key is
  gone reads as absent. Activity profiles name no person and are stored as sent.
- **ETag**: the quoted SHA-1 of the content, computed when it is read (no digest is stored).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.integrity import crypto
from ledger.store.db import Cursor, Database
from ledger.xapi import privacy
from ledger.xapi.compat import agent_key

STATE, ACTIVITY_PROFILE, AGENT_PROFILE = "state", "activity_profile", "agent_profile"
PERSONAL_KINDS = (STATE, AGENT_PROFILE)
JSON_TYPE = "application/json"
_AAD = "xapi-document"
_NONCE = 12
RETRIES = 5


class Refused(Exception):
    """A request the document rules refuse: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Scope:
    """Where documents live: a resource and its parameters besides the document id."""

    kind: str
    activity_id: str = ""
    agent: dict[str, Any] | None = None
    registration: str = ""

    @property
    def agent_ref(self) -> str:
        key = agent_key(self.agent) if self.agent is not None else None
        return privacy.agent_ref(key) if key is not None else ""

    def where(self) -> tuple[str, list[Any]]:
        """One document's scope: without a registration, the documents that have none."""
        return ("kind = ? AND activity_id = ? AND agent = ? AND registration = ?",
                [self.kind, self.activity_id, self.agent_ref, self.registration])

    def where_all(self) -> tuple[str, list[Any]]:
        """Many documents' scope (ids, delete all): the activity and agent, and the registration
        only if one is given ("Activity + Agent [+ registration if specified]")."""
        if self.registration:
            return self.where()
        return "kind = ? AND activity_id = ? AND agent = ?", [self.kind, self.activity_id, self.agent_ref]


@dataclass(frozen=True)
class Document:
    content: bytes
    content_type: str
    updated_us: int

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.content).hexdigest() + '"'

    @property
    def is_json(self) -> bool:
        return is_json_type(self.content_type)


@dataclass(frozen=True)
class Conditions:
    """A write's preconditions: ``If-Match`` / ``If-None-Match`` (ETags or ``*``), and what a
    PUT without either header means: ``existing`` 409 for a document that exists, ``new`` 400
    for one that does not (a client MUST send one of them to a profile resource)."""

    if_match: str | None = None
    if_none_match: str | None = None
    existing_needs_header: bool = False
    new_needs_header: bool = False


def is_json_type(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == JSON_TYPE


def _tags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def check(conditions: Conditions, current: Document | None, method: str) -> None:
    """RFC 7232 preconditions as the xAPI's Concurrency section asks: 412 when one fails."""
    if conditions.if_match is not None:
        tags = _tags(conditions.if_match)
        if current is None or not ("*" in tags or current.etag in tags):
            raise Refused(412, "If-Match: the document's current ETag differs (or there is no document); "
                               "GET it again and retry with its ETag")
    if conditions.if_none_match is not None:
        tags = _tags(conditions.if_none_match)
        if current is not None and ("*" in tags or current.etag in tags):
            raise Refused(412, "If-None-Match: the document exists (or has that ETag)")
    if method == "PUT" and conditions.if_match is None and conditions.if_none_match is None:
        if current is not None and conditions.existing_needs_header:
            raise Refused(409, "the document exists: GET it to check its current state, then PUT with "
                               "If-Match set to its ETag")
        if current is None and conditions.new_needs_header:
            raise Refused(400, "a PUT to this resource sends If-Match (an ETag) or If-None-Match: *")


def merged(current: Document, content: bytes, content_type: str, value: Any) -> bytes:
    """The JSON merge of a POST: the stored object's top-level properties, overwritten by the
    posted object's (one level deep). Both must be JSON objects, else 400."""
    if not current.is_json or not is_json_type(content_type):
        raise Refused(400, "POST merges JSON documents: the stored document and the posted one must both be "
                           f"{JSON_TYPE} (stored: {current.content_type!r}, posted: {content_type!r})")
    try:
        old = json.loads(current.content)
    except ValueError:
        old = None
    if not isinstance(old, dict) or not isinstance(value, dict):
        raise Refused(400, "POST merges JSON objects: the stored document or the posted one is not a JSON object")
    return json.dumps({**old, **value}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _seal(key: bytes, person: str, content: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, content, f"{person}\x00{_AAD}".encode("utf-8", "surrogatepass"))


def _open(key: bytes | None, person: str, sealed: bytes) -> bytes | None:
    if key is None:
        return None
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], f"{person}\x00{_AAD}".encode("utf-8", "surrogatepass"))
    except InvalidTag:
        return None


class DocumentStore:
    """Reads and writes documents (see the module's docstring)."""

    def __init__(self, ledger: Any, homepage: str, db: Callable[[], Database]) -> None:
        self.ledger = ledger
        self.homepage = homepage
        self.db = db

    # ---- keys --------------------------------------------------------------------------

    def person(self, agent: dict[str, Any]) -> str:
        """Whose key seals documents about ``agent``: an officer with a data key, else the person."""
        key = agent_key(agent) or json.dumps(agent, sort_keys=True)
        ref = privacy.person_of(agent, agent_key, self.homepage, lambda: key)
        if ref.startswith(privacy.OFFICER) and self.ledger.recorder.select_key(ref[len(privacy.OFFICER):]) is None:
            return privacy.PERSON + privacy.agent_ref(key)
        return ref

    def keys(self, c: Cursor, persons: set[str]) -> dict[str, bytes]:
        """The keys of these persons that still exist."""
        officers = {p[len(privacy.OFFICER):]: p for p in persons if p.startswith(privacy.OFFICER)}
        found = {officers[o]: k for o, k in self.ledger.recorder.select_keys(list(officers)).items()} if officers else {}
        others = sorted(p for p in persons if p.startswith(privacy.PERSON))
        if others:
            c.execute(f"SELECT person, data_key FROM xapi_person_keys WHERE person IN ({','.join('?' * len(others))})",
                      others)
            found.update({str(r[0]): bytes(r[1]) for r in c.fetchall()})
        return found

    def _key_for_writing(self, c: Cursor, person: str) -> bytes:
        found = self.keys(c, {person}).get(person)
        if found is not None:
            return found
        if person.startswith(privacy.OFFICER):  # erased since: nothing may be written under it
            raise Refused(409, "the agent's key was destroyed while the request ran; retry")
        c.execute("INSERT INTO xapi_person_keys (person, data_key) VALUES (?, ?) ON CONFLICT (person) DO NOTHING",
                  [person, crypto.new_data_key()])
        c.execute("SELECT data_key FROM xapi_person_keys WHERE person = ?", [person])
        return bytes(c.fetchone()[0])

    # ---- reading -----------------------------------------------------------------------

    def _decode(self, c: Cursor, rows: list[Any]) -> list[tuple[str, Document]]:
        """(writer, document) of rows (writer, person, content_type, updated_us, content); those
        whose person's key is gone are left out."""
        keys = self.keys(c, {str(r[1]) for r in rows if r[1] is not None})
        out = []
        for writer, person, ctype, updated, content in rows:
            plain = bytes(content) if person is None else _open(keys.get(str(person)), str(person), bytes(content))
            if plain is not None:
                out.append((str(writer), Document(plain, str(ctype), int(updated))))
        return out

    def _select(self, c: Cursor, scope: Scope, doc_id: str, writer: str | None, lock: bool = False) -> list[Any]:
        where, params = scope.where()
        sql = (f"SELECT writer, person, content_type, updated_us, content FROM xapi_documents WHERE {where} "
               "AND doc_id = ?")
        params.append(doc_id)
        if writer is not None:
            sql += " AND writer = ?"
            params.append(writer)
        if lock and self.db().is_postgres:
            sql += " FOR UPDATE"
        c.execute(sql, params)
        return list(c.fetchall())

    def get(self, scope: Scope, doc_id: str, writer: str | None) -> Document | None:
        """The document (``writer`` None: any token's, the one written last), else None."""
        with self.db().reading() as c:
            found = self._decode(c, self._select(c, scope, doc_id, writer))
        return max((d for _, d in found), key=lambda d: d.updated_us, default=None)

    def ids(self, scope: Scope, writer: str | None, since_us: int | None) -> tuple[list[str], int | None]:
        """The ids of the documents in ``scope`` (updated after ``since_us``) and the latest update."""
        where, params = scope.where_all()
        sql = f"SELECT doc_id, person, updated_us FROM xapi_documents WHERE {where}"
        if writer is not None:
            sql += " AND writer = ?"
            params.append(writer)
        if since_us is not None:
            sql += " AND updated_us > ?"
            params.append(since_us)
        with self.db().reading() as c:
            c.execute(sql, params)
            rows = c.fetchall()
            keys = self.keys(c, {str(r[1]) for r in rows if r[1] is not None})
        live = [r for r in rows if r[1] is None or str(r[1]) in keys]
        return sorted({str(r[0]) for r in live}), max((int(r[2]) for r in live), default=None)

    # ---- writing -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self.db().transaction() as c:
            yield c

    def write(self, scope: Scope, doc_id: str, writer: str, method: str, content: bytes, content_type: str,
              value: Any, conditions: Conditions) -> None:
        """PUT (replace) or POST (merge, or store when absent) one document; ``value`` is the
        parsed JSON body when ``content_type`` is JSON."""
        for attempt in range(RETRIES):
            try:
                self._write_once(scope, doc_id, writer, method, content, content_type, value, conditions)
                return
            except (sqlite3.IntegrityError, psycopg.IntegrityError):  # a concurrent first write of the key
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def _write_once(self, scope: Scope, doc_id: str, writer: str, method: str, content: bytes, content_type: str,
                    value: Any, conditions: Conditions) -> None:
        person = self.person(scope.agent) if scope.kind in PERSONAL_KINDS and scope.agent is not None else None
        with self._transaction() as c:
            rows = self._select(c, scope, doc_id, writer, lock=True)
            found = self._decode(c, rows)
            current = found[0][1] if found else None
            check(conditions, current, method)
            if method == "POST" and current is not None:
                content = merged(current, content, content_type, value)
                content_type = current.content_type
            now = max(time.time_ns() // 1000, (current.updated_us + 1) if current else 0)
            stored = content if person is None else _seal(self._key_for_writing(c, person), person, content)
            where, params = scope.where()
            if rows:
                c.execute(f"UPDATE xapi_documents SET person = ?, content_type = ?, updated_us = ?, content = ? "
                          f"WHERE {where} AND doc_id = ? AND writer = ?",
                          [person, content_type, now, stored, *params, doc_id, writer])
            else:
                c.execute("INSERT INTO xapi_documents (kind, writer, activity_id, agent, registration, doc_id, person, "
                          "content_type, updated_us, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [scope.kind, writer, scope.activity_id, scope.agent_ref, scope.registration, doc_id,
                           person, content_type, now, stored])

    def delete(self, scope: Scope, doc_id: str | None, writer: str, conditions: Conditions) -> None:
        """Delete one document (its preconditions checked) or, ``doc_id`` None, every document
        of the scope (the State Resource's DELETE without stateId)."""
        with self._transaction() as c:
            if doc_id is None:
                where, params = scope.where_all()
                c.execute(f"DELETE FROM xapi_documents WHERE {where} AND writer = ?", [*params, writer])
                return
            where, params = scope.where()
            found = self._decode(c, self._select(c, scope, doc_id, writer, lock=True))
            check(conditions, found[0][1] if found else None, "DELETE")
            c.execute(f"DELETE FROM xapi_documents WHERE {where} AND doc_id = ? AND writer = ?",
                      [*params, doc_id, writer])
