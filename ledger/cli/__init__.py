"""The ``ledger`` command line.

Exit status: 0 success; 1 some input was rejected or the thing asked for does not
exist; 2 bad usage (unknown option, bad argument); 70 an internal error. Errors go to stderr, never as a
traceback; ``--json`` output is machine-readable on stdout.

This module only assembles the root group; the commands live in one module per
audience (``writing``, ``reading``, ``operations``, ``audit``, ``admin``), each
listing its commands in ``COMMANDS``, and speak through ``render``.
"""

from __future__ import annotations

import click

from ledger.cli import admin, audit, credentials, operations, reading, supervise, writing, xapi
from ledger.cli.common import Context
from ledger.cli.render import LedgerGroup
from ledger.config import Settings


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", envvar="LEDGER_STORE", help="Event store URL: sqlite:///PATH (default sqlite:///ledger.db) or postgresql://USER@HOST:PORT/DB. [env LEDGER_STORE]")
@click.option("--kafka", "kafka_bootstrap", envvar="LEDGER_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers; unset means embedded mode. [env LEDGER_KAFKA_BOOTSTRAP]")
@click.option("--topic-prefix", envvar="LEDGER_TOPIC_PREFIX", help="Topic prefix (default 'ledger'). [env LEDGER_TOPIC_PREFIX]")
@click.option("--signing-key", envvar="LEDGER_SIGNING_KEY", metavar="FILE", help="Ed25519 checkpoint key file, created on first use (default ~/.config/ledger/signing-key.pem). [env LEDGER_SIGNING_KEY]")
@click.option("--trusted-public-key", envvar="LEDGER_TRUSTED_PUBLIC_KEY", metavar="PEM", help="The public key (PEM file) `verify` checks checkpoints against; never the signing key. [env LEDGER_TRUSTED_PUBLIC_KEY]")
@click.version_option(package_name="learning-record-ledger")
@click.pass_context
def cli(ctx: click.Context, store: str | None, kafka_bootstrap: str | None, topic_prefix: str | None,
        signing_key: str | None, trusted_public_key: str | None) -> None:
    """The learning-record ledger: an event-sourced system of record for civil-service learning.

    Every registration, transfer, enrolment, progress report, assessment attempt and
    completion is written once as an immutable event; the read models are folded
    from them.
    """
    settings = Settings.from_env({}).with_overrides(
        store=store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, signing_key=signing_key,
        trusted_public_key=trusted_public_key,
    )
    ctx.obj = Context(settings)


for _audience in (writing, reading, operations, supervise, audit, admin, credentials, xapi):
    for _command in _audience.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ledger")
