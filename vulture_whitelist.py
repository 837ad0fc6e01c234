"""What vulture cannot see being used (checked by `make lint`; settings in pyproject.toml).

Only names used from outside Python's view belong here: by a framework or library, by
a string (a subprocess's `-c`, uvicorn's factory), by a template. Routes, click
commands and pytest fixtures and hooks are left out in pyproject.toml by decorator and name.
"""

# ruff: noqa
# mypy: ignore-errors
from ledger.api import app, models
from ledger.consumers import fetcher
from ledger.kafka import relay_pages

_: object

# Run by name from a string: uvicorn's factory (`ledger serve --workers`) and the helper
# processes' `python -c` entry points.
app.app_from_env
fetcher.fetcher_process_main
relay_pages.encoder_process_main

# Written by position into the store (ledger.store.receipts.Actor, a row of correction_actors).
_.token_name

# Fields of the API's response models and pydantic's model settings.
models.model_config
_.completed_count
_.learning_hours
_.learning_hours_by_year
_.recommended
_.officers_meeting_hours
_.required_officers
_.officers_with_gap
_.total_gap
_.officers_on_posts

# Read by the console's chart template.
_.label_width

# Hooks and attributes of the libraries, set or overridden here.
_._fetch_ids_after_insert_events  # eventsourcing's PostgreSQL recorder calls it after the insert
_.canonical_issuer  # pyld's URDNA2015 reads it
_.autocommit  # psycopg's connection
_.row_factory  # sqlite3's cursor
_.should_exit  # uvicorn's server (tests stop it)
_.optionxform  # configparser (tests read case-sensitive keys)
_.readable  # io's raw stream protocol (a test's fake stream)
_.readinto
_.available_partitions_for_topic  # kafka-python's consumer (a test's fake)

# A test fixture requested by name only, and a constant of the tests' helpers no test uses yet.
restore_logging
T0
