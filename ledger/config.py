"""Configuration: one frozen Settings, read once at the entry point and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlparse

from ledger.domain.errors import LedgerError

DEFAULT_STORE = "sqlite:///ledger.db"
# Where ``ledger serve`` answers by default: the base of the credentials' status list URLs.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


def _key_file(configured: str | None, name: str) -> Path:
    """The configured key file, else ``name`` in the user's config folder (XDG_CONFIG_HOME)."""
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ledger" / name


@dataclass(frozen=True)
class Settings:
    """Where the ledger keeps its events and whether it talks to Kafka."""

    store: str = DEFAULT_STORE
    kafka_bootstrap: str | None = None
    topic_prefix: str = "ledger"
    signing_key: str | None = None  # checkpoint signing key file (default: signing_key_path)
    trusted_public_key: str | None = None  # PEM file of the public key checkpoints are verified against
    issuer_key: str | None = None  # credential issuer key file (default: issuer_key_path)
    issuer_did: str | None = None  # a did:web for the credentials' issuer (default: did:key of the key)
    issuer_name: str | None = None  # the issuer profile's name (default: DEFAULT_ISSUER_NAME)
    public_url: str | None = None  # where the API is reached from outside (default: DEFAULT_PUBLIC_URL)
    xapi_homepage: str | None = None  # an officer's xAPI account homePage (default: the public URL)
    xapi_activity_base: str | None = None  # a course's xAPI activity id prefix (default: <public URL>/courses)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read LEDGER_STORE, LEDGER_KAFKA_BOOTSTRAP, LEDGER_TOPIC_PREFIX, LEDGER_SIGNING_KEY,
        LEDGER_TRUSTED_PUBLIC_KEY, LEDGER_ISSUER_* and LEDGER_PUBLIC_URL."""
        env = os.environ if environ is None else environ
        return cls(
            store=env.get("LEDGER_STORE") or DEFAULT_STORE,
            kafka_bootstrap=env.get("LEDGER_KAFKA_BOOTSTRAP") or None,
            topic_prefix=env.get("LEDGER_TOPIC_PREFIX") or "ledger",
            signing_key=env.get("LEDGER_SIGNING_KEY") or None,
            trusted_public_key=env.get("LEDGER_TRUSTED_PUBLIC_KEY") or None,
            issuer_key=env.get("LEDGER_ISSUER_KEY") or None,
            issuer_did=env.get("LEDGER_ISSUER_DID") or None,
            issuer_name=env.get("LEDGER_ISSUER_NAME") or None,
            public_url=env.get("LEDGER_PUBLIC_URL") or None,
            xapi_homepage=env.get("LEDGER_XAPI_HOMEPAGE") or None,
            xapi_activity_base=env.get("LEDGER_XAPI_ACTIVITY_BASE") or None,
        )

    def to_env(self) -> dict[str, str]:
        """These settings as the environment :meth:`from_env` reads: how a child process gets
        them, since a command line (the store URL's password with it) is readable by any
        local user through ``ps``."""
        values = {"LEDGER_STORE": self.store, "LEDGER_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                  "LEDGER_TOPIC_PREFIX": self.topic_prefix, "LEDGER_SIGNING_KEY": self.signing_key,
                  "LEDGER_TRUSTED_PUBLIC_KEY": self.trusted_public_key,
                  "LEDGER_ISSUER_KEY": self.issuer_key, "LEDGER_ISSUER_DID": self.issuer_did,
                  "LEDGER_ISSUER_NAME": self.issuer_name, "LEDGER_PUBLIC_URL": self.public_url,
                  "LEDGER_XAPI_HOMEPAGE": self.xapi_homepage, "LEDGER_XAPI_ACTIVITY_BASE": self.xapi_activity_base}
        return {name: value or "" for name, value in values.items()}

    @property
    def officer_homepage(self) -> str:
        """The xAPI account ``homePage`` that names an officer of this ledger (LEDGER_XAPI_HOMEPAGE)."""
        return self.xapi_homepage or (self.public_url or DEFAULT_PUBLIC_URL)

    @property
    def course_activity_base(self) -> str:
        """The prefix of a course's xAPI activity id (LEDGER_XAPI_ACTIVITY_BASE), without the last slash."""
        return (self.xapi_activity_base or f"{self.public_url or DEFAULT_PUBLIC_URL}/courses").rstrip("/")

    @property
    def store_shown(self) -> str:
        """The store URL fit for messages and logs: any password replaced by ``***``."""
        parsed = urlparse(self.store)
        if parsed.password is None:
            return self.store
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
        return parsed._replace(netloc=netloc).geturl()

    def with_overrides(self, **changes: str | None) -> Settings:
        """A copy with the given non-None values replaced (command-line options)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def signing_key_path(self) -> Path:
        """The Ed25519 checkpoint key file: LEDGER_SIGNING_KEY, else in the user's config folder.

        Never inside the database: whoever can rewrite the store must not also hold the key.
        """
        return _key_file(self.signing_key, "signing-key.pem")

    @property
    def issuer_key_path(self) -> Path:
        """The Ed25519 credential issuer key file: LEDGER_ISSUER_KEY, else in the user's config folder."""
        return _key_file(self.issuer_key, "issuer-key.pem")

    @property
    def public_base(self) -> str:
        """LEDGER_PUBLIC_URL without a trailing slash: an http(s) URL with a host, no query or fragment.

        Credentials name their status lists under it (``<base>/credentials/status/<n>``),
        so it is part of what they say: set it to where verifiers reach ``ledger serve``.
        """
        base = (self.public_url or DEFAULT_PUBLIC_URL).rstrip("/")
        url = urlparse(base)
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment \
                or "#" in base or "?" in base or any(c.isspace() for c in base):
            raise LedgerError(f"LEDGER_PUBLIC_URL: expected an http(s) URL such as https://ledger.example.gov.in, "
                              f"got {base[:100]!r}")
        return base

    @property
    def is_postgres(self) -> bool:
        return self.store.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
        if not self.store.startswith("sqlite:///"):
            raise LedgerError(f"LEDGER_STORE: not a sqlite:/// URL: {self.store!r}")
        return Path(self.store[len("sqlite:///") :])

    def eventsourcing_env(self) -> dict[str, str]:
        """The eventsourcing library's environment for this store.

        The library never creates tables: the schema is ledger.store.schema's migrations.
        """
        common = {"ORIGINATOR_ID_TYPE": "uuid", "CREATE_TABLE": "n"}
        if self.is_postgres:
            url = urlparse(self.store)
            if not url.hostname or not url.path.strip("/"):
                raise LedgerError(f"LEDGER_STORE: cannot read host and database from {self.store!r}")
            return {
                **common,
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "APPLICATION_RECORDER_TOPIC": "ledger.store.postgres:LedgerPostgresRecorder",
                "POSTGRES_DBNAME": unquote(url.path.lstrip("/")),
                "POSTGRES_HOST": url.hostname,
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or os.environ.get("USER", "postgres")),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": "2",
                "POSTGRES_MAX_OVERFLOW": "4",
                "POSTGRES_LOCK_TIMEOUT": "30",
                # Seconds to wait for a connection: a server that is down is reported
                # after this long instead of the library's 30 s.
                "POSTGRES_CONNECT_TIMEOUT": "10",
            }
        if self.store.startswith("sqlite:///"):
            path = self.sqlite_path
            if path.parent and not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
            return {
                **common,
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "APPLICATION_RECORDER_TOPIC": "ledger.store.sqlite:LedgerSQLiteRecorder",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        raise LedgerError(
            f"LEDGER_STORE: expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB, got {self.store!r}"
        )
