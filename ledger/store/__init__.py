"""The store: connections, the schema and its numbered migrations, the event recorders.

Importing any module of the package wires the schema's version check into the first
connection of every :class:`ledger.store.db.Database` (an older store is refused until
``ledger migrate``; an empty one is created).
"""

from ledger.store import db, schema

db.FIRST_USE.append(schema.ensure)
