"""Aggregate identities: each business id maps to one stable UUID per kind of entity."""

from __future__ import annotations

from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:igot-karmayogi:learning-record-ledger")


@lru_cache(maxsize=200_000)
def aggregate_id(kind: str, business_id: str) -> UUID:
    """The aggregate UUID for ``kind`` (officer, org, competency, post, course) and id."""
    return uuid5(_NAMESPACE, f"{kind}:{business_id}")
