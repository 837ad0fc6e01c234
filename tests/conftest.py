"""Shared fixtures: a fresh store per test on SQLite, and on PostgreSQL when it answers."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.config import Settings

PG_ADMIN = os.environ.get("LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# Key files created on first use (checkpoint and credential issuer keys) by tests that do
# not name one go to a scratch folder, never into the user's ~/.config/ledger.
os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(tempfile.gettempdir(), "ledger-tests", "config"))


def _pg_admin_connect() -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


def postgres_available() -> bool:
    try:
        with _pg_admin_connect():
            return True
    except Exception:
        return False


def pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{dbname}"


def drop_database(dbname: str) -> None:
    with _pg_admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def create_database() -> str:
    dbname = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    return dbname


def migrated(settings: Settings) -> Settings:
    """The store with its schema created by the migrations, as `ledger migrate` does."""
    from ledger.store import schema
    from ledger.store.db import Database

    db = Database(settings)
    db.schema_checked = True  # migrate explicitly, not through the first-use check
    try:
        schema.migrate(db)
    finally:
        db.close()
    return settings


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return migrated(Settings(store=f"sqlite:///{tmp_path / 'ledger.store.db'}"))


@pytest.fixture
def pg_settings() -> Iterator[Settings]:
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL does not answer at {PG_ADMIN}")
        pytest.skip(f"PostgreSQL does not answer at {PG_ADMIN}")
    dbname = create_database()
    try:
        yield migrated(Settings(store=pg_url(dbname)))
    finally:
        drop_database(dbname)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Each test that takes ``settings`` runs once per backend."""
    name = "sqlite_settings" if request.param == "sqlite" else "pg_settings"
    found: Settings = request.getfixturevalue(name)
    return found


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker for the whole run (see ledger.kafka.broker for the order tried)."""
    from ledger.kafka.broker import kafka_broker

    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic prefix per test, so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"
