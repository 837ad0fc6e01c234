"""One schema, versioned: migrations create it, upgrade an old store without losing a row,
and nothing outside ledger/store/schema.py and ledger/store/migrations/ issues DDL."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Settings
from ledger.projections.runner import Runner
from ledger.read.audit import AuditReader
from ledger.read.models import ReadModels
from ledger.store import schema
from ledger.store.db import Database
from ledger.write.application import Ledger
from tests.helpers import present

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGE = Path(__file__).parent.parent / "ledger"


def _tables(db: Database) -> list[str]:
    with db.transaction() as c:
        if db.is_postgres:
            c.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        else:
            c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return sorted(str(r[0]) for r in c.fetchall())


def _columns(db: Database, table: str) -> list[str]:
    with db.transaction() as c:
        if db.is_postgres:
            c.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
                (table,),
            )
        else:
            c.execute(f"SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
        return [str(r[0]) for r in c.fetchall()]


def _snapshot(db: Database, shape: dict[str, list[str]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of these tables (these columns), sorted: what an upgrade must keep."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, columns in shape.items():
        with db.transaction() as c:
            c.execute(f"SELECT {', '.join(columns)} FROM {table}")
            rows = (tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in c.fetchall())
            out[table] = sorted(rows, key=repr)
    return out


def _old_layout(settings: Settings, tmp_path: Path) -> None:
    """Restore a store written by the ledger before versioned migrations existed."""
    if settings.is_postgres:
        import psycopg

        dump = gzip.decompress((FIXTURES / "pre-migrations.postgres.sql.gz").read_bytes()).decode()
        with psycopg.connect(settings.store, autocommit=True) as conn:
            conn.execute(dump.encode())
    else:
        with gzip.open(FIXTURES / "pre-migrations.db.gz") as src, open(settings.sqlite_path, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _raw_db(settings: Settings) -> Database:
    """A handle that reads tables without checking (or creating) the schema."""
    db = Database(settings)
    db.schema_checked = True
    return db


@pytest.fixture
def empty_store(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A store with no tables at all (the shared fixtures hand out migrated ones)."""
    if not settings.is_postgres:
        yield Settings(store=f"sqlite:///{tmp_path / 'old.db'}")
        return
    from tests.conftest import create_database, drop_database, pg_url

    name = create_database()
    try:
        yield Settings(store=pg_url(name))
    finally:
        drop_database(name)


def test_a_store_of_the_previous_layout_is_refused_until_migrated_then_keeps_every_row(
    empty_store: Settings, tmp_path: Path
) -> None:
    settings = empty_store
    _old_layout(settings, tmp_path)
    raw = _raw_db(settings)
    shape = {table: _columns(raw, table) for table in _tables(raw)}
    before = _snapshot(raw, shape)
    assert before["ledger_events" if settings.is_postgres else "stored_events"], "fixture has events"
    assert schema.version(raw) == 0

    with pytest.raises(schema.SchemaError, match="ledger migrate"):
        Ledger(settings)

    applied = schema.migrate(raw)
    assert [m.version for m in applied] == list(range(1, schema.latest() + 1))
    assert schema.version(raw) == schema.latest()
    after = _snapshot(raw, shape)
    # Every row of every table, column by column; the entity chain's links are
    # recomputed by migration 0002 (they now cover type, entity and version), so
    # there only the keys must be the same.
    rehashed = "ledger_chain"
    assert {t: r for t, r in after.items() if t != rehashed} == {t: r for t, r in before.items() if t != rehashed}
    assert [row[:2] for row in after[rehashed]] == [row[:2] for row in before[rehashed]]

    # Access decisions now come from officer_access, folded once from the old events.
    with raw.transaction() as c:
        c.execute("SELECT officer_id, ministry_id, erased FROM officer_access ORDER BY officer_id")
        access = {r[0]: (r[1], bool(r[2])) for r in c.fetchall()}
    old_records = {row[0]: json.loads(row[2]) for row in before["rm_records"]}
    assert {o: (d["ministry_id"], d["erased"]) for o, d in old_records.items()} == access
    assert access["OFF-0000003"][1] is True

    # The upgraded store works: reads, verify, new writes, projection.
    ledger = Ledger(settings)
    runner = Runner(Database(settings))
    records = ReadModels(Database(settings), ledger)
    assert records.record("OFF-0000005") is not None
    assert present(records.record("OFF-0000003"))["name"] is None  # erased in the old store
    assert AuditReader(ledger).verify()[1] == []
    outcome = ledger.execute({"type": "transfer_officer", "officer_id": "OFF-0000005", "org_id": "MOF",
                              "occurred_at": "2030-01-01T00:00:00+05:30"})
    assert outcome.status == "accepted", outcome
    from ledger.consumers.log import LogFollower

    LogFollower(ledger, runner).run(until_idle=True)
    assert present(records.record("OFF-0000005"))["org_id"] == "MOF"


def test_migrating_twice_applies_nothing_the_second_time(settings: Settings) -> None:
    db = Database(settings)  # an empty store is created from the migrations on first use
    assert schema.version(db) == schema.latest()
    assert schema.migrate(db) == []


def test_read_model_tables_after_migrations_have_the_shape_a_rebuild_creates(settings: Settings) -> None:
    db = Database(settings)

    def columns(c: Any, table: str) -> list[tuple[str, str]]:
        if db.is_postgres:
            c.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
                (table,),
            )
        else:
            c.execute(f"SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid")
        return [(str(r[0]), str(r[1]).upper()) for r in c.fetchall()]

    with db.transaction() as c:
        schema.create_shadow_tables(c, list(schema.READ_MODEL_TABLES), "_shape")
        for table in schema.READ_MODEL_TABLES:
            assert columns(c, table) == columns(c, f"{table}_shape"), table
            c.execute(f"DROP TABLE {table}_shape")


def test_a_store_newer_than_the_ledger_is_refused(sqlite_settings: Settings) -> None:
    db = Database(sqlite_settings)
    with db.transaction() as c:
        c.execute(f"INSERT INTO {schema.VERSION_TABLE} VALUES (?, 'from the future', 'now')", (schema.latest() + 1,))
    with pytest.raises(schema.SchemaError, match="newer than this ledger"):
        Database(sqlite_settings).transaction().__enter__()


DDL = re.compile(r"\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|TRIGGER|TYPE|FUNCTION|UNIQUE INDEX|OR REPLACE)\b", re.I)


def test_nothing_outside_the_schema_module_and_migrations_issues_ddl() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "store/schema.py" or relative.startswith("store/migrations/"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if DDL.search(line):
                offenders.append(f"ledger/{relative}:{number}: {line.strip()}")
    assert offenders == []


def test_the_sqlite_fixture_really_is_the_unversioned_layout() -> None:
    with gzip.open(FIXTURES / "pre-migrations.db.gz") as src:
        data = src.read()
    assert data.startswith(b"SQLite format 3")
    path = Path("/dev/shm") if Path("/dev/shm").exists() else Path("/tmp")
    copy = path / f"ledger-fixture-{id(data)}.db"
    copy.write_bytes(data)
    try:
        names = {r[0] for r in sqlite3.connect(copy).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        copy.unlink()
    assert schema.VERSION_TABLE not in names and "stored_events" in names


def test_one_officers_readers_are_found_by_index_not_by_scanning_the_log(tmp_path: Path) -> None:
    import sqlite3

    from tests.conftest import migrated

    settings = migrated(Settings(store=f"sqlite:///{tmp_path / 'plan.db'}"))
    db = sqlite3.connect(settings.sqlite_path)
    plan = db.execute("EXPLAIN QUERY PLAN SELECT at, token_name, role, officer_id, endpoint FROM access_log "
                      "WHERE officer_id = ? ORDER BY at DESC LIMIT 200", ("OFF-1",)).fetchall()
    db.close()
    assert any("USING INDEX access_log_by_officer" in str(row[-1]) for row in plan), plan
