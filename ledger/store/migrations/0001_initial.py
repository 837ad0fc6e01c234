"""The first versioned schema: exactly the tables of the store before migrations existed.

Every statement is ``IF NOT EXISTS`` (or idempotent), so on a store created by the
unversioned layout this migration changes nothing and only records version 1.
The event tables are those of eventsourcing 9.5.6's recorders, written out here so
that the schema no longer depends on the library creating tables at start-up.
"""

from __future__ import annotations

from ledger.store.db import Cursor

NAME = "initial: event store, receipts, keys, chain, read models, positions, tokens, access log"

_SQLITE_STORE = [
    "CREATE TABLE IF NOT EXISTS stored_events (originator_id TEXT, originator_version INTEGER, "
    "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))",
    "CREATE TABLE IF NOT EXISTS command_receipts (command_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS officer_keys (officer_id TEXT PRIMARY KEY, data_key BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_chain (originator_id TEXT NOT NULL, version INTEGER NOT NULL, "
    "hash BLOB NOT NULL, PRIMARY KEY (originator_id, version))",
]

_POSTGRES_STORE = [
    "DO $$ BEGIN CREATE TYPE stored_event_uuid AS (originator_id uuid, originator_version bigint, "
    "topic text, state bytea); EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    "CREATE TABLE IF NOT EXISTS ledger_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
    "topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version)) "
    "WITH (autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000, "
    "autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000, "
    "autovacuum_analyze_scale_factor = 0.01)",
    "CREATE UNIQUE INDEX IF NOT EXISTS ledger_events_notification_id_idx ON ledger_events (notification_id ASC)",
    "CREATE OR REPLACE FUNCTION es_insert_events_uuid(events stored_event_uuid[]) RETURNS SETOF bigint "
    "LANGUAGE plpgsql AS $BODY$BEGIN SET LOCAL lock_timeout = '30s'; NOTIFY \"ledger_events\"; "
    "RETURN QUERY INSERT INTO ledger_events AS t (originator_id, originator_version, topic, state) "
    "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
    "RETURNING notification_id; END;$BODY$",
    "CREATE TABLE IF NOT EXISTS ledger_command_receipts (command_id text PRIMARY KEY, content_hash text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_officer_keys (officer_id text PRIMARY KEY, data_key bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_chain (originator_id text NOT NULL, version bigint NOT NULL, "
    "hash bytea NOT NULL, PRIMARY KEY (originator_id, version))",
]

_READ_MODELS = [
    "CREATE TABLE IF NOT EXISTS rm_records (officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_competencies (officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_posts (post_id TEXT PRIMARY KEY, org_id TEXT NOT NULL, "
    "version BIGINT NOT NULL, required TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_courses (course_id TEXT PRIMARY KEY, "
    "duration_hours DOUBLE PRECISION NOT NULL, competencies TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_ministry_officers (officer_id TEXT PRIMARY KEY, version BIGINT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_ministries (ministry_id TEXT PRIMARY KEY, headcount BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_ministry_years (ministry_id TEXT NOT NULL, fy TEXT NOT NULL, "
    "enrolments BIGINT NOT NULL, completions BIGINT NOT NULL, learning_hours DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (ministry_id, fy))",
    "CREATE TABLE IF NOT EXISTS rm_ministry_completers (ministry_id TEXT NOT NULL, fy TEXT NOT NULL, "
    "officer_id TEXT NOT NULL, PRIMARY KEY (ministry_id, fy, officer_id))",
]

_OPERATIONS = [
    "CREATE TABLE IF NOT EXISTS ledger_positions (name TEXT PRIMARY KEY, position BIGINT NOT NULL, "
    "updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ledger_relay_offsets (topic TEXT NOT NULL, part INTEGER NOT NULL, "
    "next_offset BIGINT NOT NULL, PRIMARY KEY (topic, part))",
    "CREATE TABLE IF NOT EXISTS ledger_offsets (projection TEXT NOT NULL, source TEXT NOT NULL, "
    "part INTEGER NOT NULL, next_offset BIGINT NOT NULL, updated_at TEXT NOT NULL, "
    "PRIMARY KEY (projection, source, part))",
    "CREATE TABLE IF NOT EXISTS ledger_dead_letters (source TEXT NOT NULL, part INTEGER NOT NULL, "
    "position BIGINT NOT NULL, officer_id TEXT, reason TEXT NOT NULL, payload TEXT, "
    "recorded_at TEXT NOT NULL, PRIMARY KEY (source, part, position))",
    "CREATE TABLE IF NOT EXISTS api_tokens (token_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
    "role TEXT NOT NULL, ministry_id TEXT, officer_id TEXT, secret_hash TEXT NOT NULL, "
    "created_at TEXT NOT NULL, revoked_at TEXT)",
    "CREATE TABLE IF NOT EXISTS access_log (at TEXT NOT NULL, token_name TEXT NOT NULL, role TEXT NOT NULL, "
    "officer_id TEXT NOT NULL, endpoint TEXT NOT NULL)",
]

# Append-only: the database itself refuses to change or remove an access-log entry.
_SQLITE_GUARDS = [
    "CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log "
    "BEGIN SELECT RAISE(ABORT, 'access_log is append-only'); END",
]
_POSTGRES_GUARDS = [
    "CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'access_log is append-only'; END $$",
    "DROP TRIGGER IF EXISTS access_log_append_only ON access_log",
    "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
    "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()",
]


def apply(c: Cursor, dialect: str) -> None:
    postgres = dialect == "postgres"
    for statement in [
        *(_POSTGRES_STORE if postgres else _SQLITE_STORE),
        *_READ_MODELS,
        *_OPERATIONS,
        *(_POSTGRES_GUARDS if postgres else _SQLITE_GUARDS),
    ]:
        c.execute(statement)
