"""The ledger's database schema: every table, created and changed only by numbered migrations.

Migrations live in ``ledger/store/migrations/NNNN_name.py``, each with ``NAME`` (one line)
and ``apply(c, dialect)``. ``migrate()`` applies the ones a database has not had, in
order, each in its own transaction together with its row in ``ledger_schema_version``;
a released migration is never edited, a change is a new migration.

Nothing else in the ledger issues DDL, with one exception that lives here too: a
rebuild's shadow tables, created from :data:`READ_MODEL_TABLES` (the read models'
current shape, which a test checks against what the migrations produce).

A database with none of the ledger's tables is created on first use (so a new
embedded ledger just works); a database at an older version is refused with a
message naming ``ledger migrate`` (upgrading an existing store is an operator's
decision, made once, not a side effect of whichever process starts first).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.store.db import Cursor, Database

Dialect = Literal["sqlite", "postgres"]
VERSION_TABLE = "ledger_schema_version"
_LOCK = 0x1ED6E5  # PostgreSQL advisory-lock key: one migrating process at a time

# The read models' tables as they are now (after every migration): a rebuild creates
# ``<name><suffix>`` from these, fills it, then swaps it in.
READ_MODEL_TABLES: dict[str, str] = {
    "rm_records": "officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL",
    "rm_competencies": "officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL",
    "rm_posts": "post_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, version BIGINT NOT NULL, required TEXT NOT NULL",
    "rm_courses": "course_id TEXT PRIMARY KEY, duration_hours DOUBLE PRECISION NOT NULL, competencies TEXT NOT NULL",
    "rm_ministry_officers": "officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL",
    "rm_ministries": "ministry_id TEXT PRIMARY KEY, headcount BIGINT NOT NULL",
    "rm_ministry_years": (
        "ministry_id TEXT NOT NULL, fy TEXT NOT NULL, enrolments BIGINT NOT NULL, "
        "completions BIGINT NOT NULL, learning_hours DOUBLE PRECISION NOT NULL, "
        "PRIMARY KEY (ministry_id, fy)"
    ),
    "rm_ministry_completers": (
        "ministry_id TEXT NOT NULL, fy TEXT NOT NULL, officer_id TEXT NOT NULL, "
        "PRIMARY KEY (ministry_id, fy, officer_id)"
    ),
    "rm_plan_officers": "officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL",
    "rm_plans": "ministry_id TEXT NOT NULL, fy TEXT NOT NULL, version BIGINT NOT NULL, plan TEXT NOT NULL, "
                "PRIMARY KEY (ministry_id, fy)",
    "rm_plan_levels": "ministry_id TEXT NOT NULL, fy TEXT NOT NULL, competency_id TEXT NOT NULL, "
                      "level INTEGER NOT NULL, officers BIGINT NOT NULL, "
                      "PRIMARY KEY (ministry_id, fy, competency_id, level)",
    "rm_plan_hours": "ministry_id TEXT NOT NULL, fy TEXT NOT NULL, hours DOUBLE PRECISION NOT NULL, "
                     "officer_id TEXT NOT NULL, PRIMARY KEY (ministry_id, fy, hours, officer_id)",
    "rm_plan_headcount": "ministry_id TEXT PRIMARY KEY, officers BIGINT NOT NULL",
    "rm_gap_officers": "officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL",
    "rm_gap_posts": "post_id TEXT PRIMARY KEY, version BIGINT NOT NULL, required TEXT NOT NULL",
    "rm_gap_groups": "ministry_id TEXT NOT NULL, post_id TEXT NOT NULL, officers BIGINT NOT NULL, "
                     "PRIMARY KEY (ministry_id, post_id)",
    "rm_gap_levels": "ministry_id TEXT NOT NULL, post_id TEXT NOT NULL, competency_id TEXT NOT NULL, "
                     "level INTEGER NOT NULL, officers BIGINT NOT NULL, "
                     "PRIMARY KEY (ministry_id, post_id, competency_id, level)",
    "rm_gap_ministries": "ministry_id TEXT PRIMARY KEY",
    "rm_credential_status": "officer_id TEXT NOT NULL, version BIGINT NOT NULL, kind TEXT NOT NULL, "
                            "event_id TEXT NOT NULL, idx BIGINT NOT NULL, revoked_at TEXT, "
                            "PRIMARY KEY (officer_id, version, kind)",
    "rm_credential_revoked": "idx BIGINT PRIMARY KEY, revoked_at TEXT NOT NULL",
    "rm_credential_lists": "list_no BIGINT PRIMARY KEY, entries BIGINT NOT NULL, valid_from TEXT NOT NULL",
    "rm_issued_credentials": "officer_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
                             "digest TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (officer_id, seq)",
    "rm_issued_lists": "list_no BIGINT PRIMARY KEY, digest TEXT NOT NULL, doc TEXT NOT NULL",
    "rm_issuer": "name TEXT PRIMARY KEY, doc TEXT NOT NULL",
}


class SchemaError(LedgerError):
    """The database's schema is not the one this ledger needs."""


@dataclass(frozen=True)
class Migration:
    """One numbered, append-only change of the schema."""

    version: int
    name: str
    apply: Callable[[Cursor, Dialect], None]


def migrations() -> list[Migration]:
    """Every migration shipped with this ledger, in order (numbers from 1, no gaps)."""
    import ledger.store.migrations as package

    found: list[Migration] = []
    for info in pkgutil.iter_modules(package.__path__):
        number, _, _ = info.name.partition("_")
        if not number.isdigit():
            continue
        module = importlib.import_module(f"ledger.store.migrations.{info.name}")
        found.append(Migration(int(number), module.NAME, module.apply))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise AssertionError(f"migrations are not numbered 1..n: {[m.version for m in found]}")
    return found


def latest() -> int:
    """The schema version this ledger needs."""
    return len(migrations())


def dialect_of(db: Database) -> Dialect:
    return "postgres" if db.is_postgres else "sqlite"


def _tables(c: Cursor, dialect: Dialect) -> set[str]:
    if dialect == "postgres":
        c.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    else:
        c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in c.fetchall()}


def version(db: Database) -> int | None:
    """The database's schema version: None when it holds none of the ledger's tables,
    0 for a store created before versioned migrations (tables but no version table).
    Reads only: it never waits for (or holds up) a writer."""
    with db.reading() as c:
        tables = _tables(c, dialect_of(db))
        if VERSION_TABLE not in tables:
            return 0 if tables else None
        c.execute(f"SELECT MAX(version) FROM {VERSION_TABLE}")
        row = c.fetchone()
        return int(row[0] or 0)


def migrate(db: Database, progress: Callable[[Migration], None] | None = None) -> list[Migration]:
    """Apply every migration the database has not had; returns those applied."""
    applied: list[Migration] = []
    dialect = dialect_of(db)
    for migration in migrations():
        with db.transaction() as c:
            if dialect == "postgres":
                c.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK,))
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            c.execute(f"SELECT 1 FROM {VERSION_TABLE} WHERE version = ?", (migration.version,))
            if c.fetchone() is not None:
                continue  # applied before (or by a process that migrated meanwhile)
            migration.apply(c, dialect)
            c.execute(
                f"INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(timezone.utc).isoformat()),
            )
        applied.append(migration)
        if progress:
            progress(migration)
    return applied


def ensure(db: Database) -> None:
    """Make sure the database has the schema this ledger needs.

    An empty database is created from the migrations; one at another version is refused
    with the command that fixes it. Checked once per :class:`Database`.
    """
    if db.schema_checked:
        return
    found = version(db)
    need = latest()
    if found is None:
        migrate(db)
    elif found < need:
        raise SchemaError(
            f"the store's schema is at version {found}, this ledger needs {need}: "
            "run `ledger migrate` (back up the database first)"
        )
    elif found > need:
        raise SchemaError(
            f"the store's schema is at version {found}, newer than this ledger ({need}): "
            "upgrade the ledger"
        )
    db.schema_checked = True


def create_shadow_tables(c: Cursor, tables: Iterable[str], suffix: str) -> None:
    """Fresh ``<table><suffix>`` copies of read-model tables, for a rebuild to fill."""
    for table in tables:
        c.execute(f"DROP TABLE IF EXISTS {table}{suffix}")
        c.execute(f"CREATE TABLE {table}{suffix} ({READ_MODEL_TABLES[table]})")


def ensure_store(settings: Settings) -> None:
    """:func:`ensure` for a store about to be opened by the event-sourcing recorders."""
    db = Database(settings)
    try:
        with db.reading():  # opening the connection checks the schema (and creates an empty store)
            pass
    finally:
        db.close()


def swap_in_shadow_tables(c: Cursor, tables: Iterable[str], suffix: str, postgres: bool) -> None:
    """Replace each live read-model table by its filled shadow, inside the caller's transaction."""
    for table in tables:
        c.execute(f"DROP TABLE IF EXISTS {table}")
        c.execute(f"ALTER TABLE {table}{suffix} RENAME TO {table}")
        if postgres:  # index names are schema-wide there; free the shadow name
            c.execute(f"ALTER INDEX IF EXISTS {table}{suffix}_pkey RENAME TO {table}_pkey")
