"""Numbered schema migrations (``NNNN_name.py``), applied in order by :mod:`ledger.store.schema`.

Append-only: a released migration is never edited; a change of schema is a new file.
"""
