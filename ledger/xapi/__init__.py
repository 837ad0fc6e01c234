"""The xAPI Learning Record Store (DOMAIN.md "xAPI statements"): statements as events.

Below the API layer: the statement model and its validation, storage as immutable events,
queries, and the mapping into ledger commands. The HTTP resources live in ``ledger.api``
(``routes/xapi.py`` and the ``xapi_*`` helpers beside it).

Design:

- **One aggregate per statement** (:mod:`ledger.xapi.statement`), its id derived from the
  statement id, with one event ``StatementStored``: the statement as stored (``stored``,
  ``authority``, ``version`` set). The store refuses a second version 1 of the same
  aggregate, so an id is never stored twice; the same content again is answered as stored
  (204 / 200 with the ids), other content is 409. The event is chained, checkpointed and
  published like every event (Avro ``StatementStored`` on ``<prefix>.xapi``).
- **Personal data sealed per person** (:mod:`ledger.xapi.privacy`): every agent's
  identifying fields are AES-256-GCM ciphertext under the officer's data key (an officer of
  this ledger: ``account.homePage`` = LEDGER_XAPI_HOMEPAGE, ``account.name`` = officer id)
  or a key of that person's own (``xapi_person_keys``, under a SHA-256 of the identifier).
  ``ledger erase`` destroys an officer's key and with it their statements' personal data.
- **A query index in the same transaction** (migration 0010, the recorders' ``side_rows``):
  ``xapi_statements`` (``seq`` the storage order, ``stored_us`` strictly increasing
  microseconds, verb, registration, StatementRef target, voided flag, writer token),
  ``xapi_agents`` (hashed agent keys) and ``xapi_activities``, each with ``related`` for the
  ``related_*`` parameters. GET is a keyset query on them (:mod:`ledger.xapi.query`).
- Reading: an ``lrs`` token reads what it wrote; auditors read everything.
"""
