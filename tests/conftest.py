"""Shared fixtures: a fresh store per test on SQLite, and on PostgreSQL when it answers.

Safe under pytest-xdist (``make test`` runs several workers): each worker has its own
scratch folder (key files, config), its own broker, its own migrated template database
and its own block of ports (tests/ports.py); every store is a fresh file or database.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.config import Settings

PG_ADMIN = os.environ.get("LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# One scratch folder per run, made by the process that starts the run (xdist's workers
# inherit the variable), and one folder in it per worker ("main" without xdist).
_RUN_VAR = "LEDGER_TESTS_RUN_DIR"
_STARTED_RUN = _RUN_VAR not in os.environ
if _STARTED_RUN:
    _base = Path(tempfile.gettempdir()) / "ledger-tests"
    _base.mkdir(parents=True, exist_ok=True)
    for _old in _base.glob("run-*"):  # earlier runs' screenshots, after a day
        with contextlib.suppress(OSError):
            if time.time() - _old.stat().st_mtime > 86_400:
                shutil.rmtree(_old, ignore_errors=True)
    os.environ[_RUN_VAR] = tempfile.mkdtemp(prefix="run-", dir=_base)
RUN_DIR = Path(os.environ[_RUN_VAR])
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
WORKER_DIR = RUN_DIR / WORKER
# Key files created on first use (checkpoint and credential issuer keys) by tests that do
# not name one go to this worker's folder, never into the user's ~/.config/ledger, and
# never into a folder another worker creates keys in at the same moment.
os.environ["XDG_CONFIG_HOME"] = str(WORKER_DIR / "config")


def pytest_unconfigure(config: pytest.Config) -> None:
    """The run's starter removes the key files; the console's screenshots stay (named in the summary)."""
    if _STARTED_RUN and not hasattr(config, "workerinput"):
        for entry in RUN_DIR.iterdir() if RUN_DIR.is_dir() else []:
            if entry.name != "console-screenshots":
                shutil.rmtree(entry, ignore_errors=True)
        if not (RUN_DIR / "console-screenshots").is_dir():
            shutil.rmtree(RUN_DIR, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test its own node id. Schemathesis names each API operation's test
    ``test_x[POST /commands]`` but, on pytest 9 (which keeps node ids in ``_id``, not in the
    ``_nodeid`` it sets), leaves all of them with the function's node id; pytest-xdist,
    which tells tests apart by node id, then reports one of the fifteen."""
    counts = collections.Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.parent is not None:
            unique = item.parent.id.child(item.name)  # as pytest itself names a child node
            object.__setattr__(item, "_id", unique)


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


def create_database(template: str | None = None) -> str:
    """A new, uniquely named database: empty, or a copy of ``template`` (which nobody may be connected to)."""
    dbname = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with _pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"' + (f' TEMPLATE "{template}"' if template else ""))
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


def require_postgres() -> None:
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL does not answer at {PG_ADMIN}")
        pytest.skip(f"PostgreSQL does not answer at {PG_ADMIN}")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """This worker's database with every migration applied, made once and copied for each test.

    ``CREATE DATABASE ... TEMPLATE`` copies it in a fraction of the time the migrations take.
    """
    require_postgres()
    dbname = create_database()
    try:
        migrated(Settings(store=pg_url(dbname)))
        yield dbname
    finally:
        drop_database(dbname)


class _Dropper:
    """Drops databases in a thread of its own: DROP DATABASE waits for a checkpoint (a third
    of a second on a busy server), which the next test need not wait for."""

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="drop-test-databases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (name := self._names.get()) is not None:
            try:
                drop_database(name)
            except Exception as exc:  # the server went away: say so, and leave it
                print(f"could not drop test database {name}: {exc}", file=sys.stderr)

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()


@pytest.fixture(scope="session")
def _dropper() -> Iterator[_Dropper]:
    dropper = _Dropper()
    try:
        yield dropper
    finally:
        dropper.close()


@pytest.fixture
def pg_settings(pg_template: str, _dropper: _Dropper) -> Iterator[Settings]:
    """A fresh migrated PostgreSQL store (a copy of this worker's template), dropped afterwards."""
    require_postgres()
    dbname = create_database(template=pg_template)
    try:
        yield Settings(store=pg_url(dbname))
    finally:
        _dropper.drop(dbname)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Each test that takes ``settings`` runs once per backend."""
    name = "sqlite_settings" if request.param == "sqlite" else "pg_settings"
    found: Settings = request.getfixturevalue(name)
    return found


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka-protocol broker for this worker's whole run (see ledger.kafka.broker).

    The bundled broker listens on a port from this worker's own block (tests/ports.py).
    """
    from ledger.kafka.broker import docker_available, kafka_broker, start_tansu
    from tests.ports import free_port

    if os.environ.get("LEDGER_KAFKA_BOOTSTRAP") or docker_available():
        with kafka_broker() as bootstrap:
            yield bootstrap
        return
    proc, bootstrap = start_tansu(free_port())
    assert proc.poll() is None, f"the broker for {bootstrap} exited at start"
    try:
        yield bootstrap
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic prefix per test, so tests sharing the broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"
