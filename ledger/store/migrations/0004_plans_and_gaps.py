"""Read models for capacity-building plans and competency-gap reports (DOMAIN.md).

Filled by the projection runner like the other read models; on an existing store,
`ledger rebuild plans` and `ledger rebuild gaps` fold them from history.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "read models: capacity-building plans and competency gaps"

STATEMENTS = [
    "CREATE TABLE rm_plan_officers (officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE rm_plans (ministry_id TEXT NOT NULL, fy TEXT NOT NULL, version BIGINT NOT NULL, "
    "plan TEXT NOT NULL, PRIMARY KEY (ministry_id, fy))",
    "CREATE TABLE rm_plan_levels (ministry_id TEXT NOT NULL, fy TEXT NOT NULL, competency_id TEXT NOT NULL, "
    "level INTEGER NOT NULL, officers BIGINT NOT NULL, PRIMARY KEY (ministry_id, fy, competency_id, level))",
    "CREATE TABLE rm_plan_hours (ministry_id TEXT NOT NULL, fy TEXT NOT NULL, hours DOUBLE PRECISION NOT NULL, "
    "officer_id TEXT NOT NULL, PRIMARY KEY (ministry_id, fy, hours, officer_id))",
    "CREATE TABLE rm_plan_headcount (ministry_id TEXT PRIMARY KEY, officers BIGINT NOT NULL)",
    "CREATE TABLE rm_gap_officers (officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE rm_gap_posts (post_id TEXT PRIMARY KEY, version BIGINT NOT NULL, required TEXT NOT NULL)",
    "CREATE TABLE rm_gap_groups (ministry_id TEXT NOT NULL, post_id TEXT NOT NULL, officers BIGINT NOT NULL, "
    "PRIMARY KEY (ministry_id, post_id))",
    "CREATE TABLE rm_gap_levels (ministry_id TEXT NOT NULL, post_id TEXT NOT NULL, competency_id TEXT NOT NULL, "
    "level INTEGER NOT NULL, officers BIGINT NOT NULL, PRIMARY KEY (ministry_id, post_id, competency_id, level))",
    "CREATE TABLE rm_gap_ministries (ministry_id TEXT PRIMARY KEY)",
]


def apply(c: Cursor, dialect: str) -> None:
    for statement in STATEMENTS:
        c.execute(statement)
