"""The xAPI Learning Record Store (DOMAIN.md "xAPI statements"): statements as events.

Below the API layer: the statement model and its validation, storage as immutable events,
queries, and the mapping into ledger commands. The HTTP resources live in ``ledger.api``.
"""
