"""``ledger up``: the production shape on one machine, supervised.

A new supervision command goes here and into ``COMMANDS`` at the bottom.
"""

from __future__ import annotations

import os
import sys

import click

from ledger.cli.common import Context, log_to_stderr, on_sigterm
from ledger.cli.render import err
from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.ops.supervisor import ChildSpec, Supervisor


def _base(settings: Settings) -> list[str]:
    """The ``ledger`` command line a child starts with. The settings themselves go to the
    children through their environment (:func:`child_env`), never on a command line,
    which any local user can read through ``ps`` (a store URL may hold a password)."""
    return [sys.executable, "-m", "ledger.cli"]


def child_env(settings: Settings) -> dict[str, str]:
    """The children's environment: this process's, with its settings as LEDGER_* variables (one not
    set here, e.g. LEDGER_ISSUER_KEY, which only the commands that use it read, is passed on as it is)."""
    return {**os.environ, **{name: value for name, value in settings.to_env().items() if value}}


def children(settings: Settings, host: str, port: int, metrics_port: int, projectors: int,
             api: bool = True, checkpoint_every: float = 60.0) -> list[ChildSpec]:
    """The children of ``ledger up``: relay (Kafka mode), projection consumers, the issuing worker, the API."""
    base = _base(settings)
    found: list[ChildSpec] = []
    if settings.kafka_bootstrap:
        found.append(ChildSpec("relay", (*base, "relay", "--metrics-port", str(metrics_port),
                                         "--checkpoint-every", str(checkpoint_every))))
    for n in range(1, projectors + 1):
        # Each consumer takes its share of the officer topic's partitions (all of them when alone).
        share = ("--instance", f"{n - 1}/{projectors}") if projectors > 1 else ()
        found.append(ChildSpec(f"projector-{n}", (*base, "project", *share, "--no-issue",
                                                  "--metrics-port", str(metrics_port + n))))
    # The one process holding the credential issuer key: signs credentials once, stores them.
    found.append(ChildSpec("issuer", (*base, "issue")))
    if api:
        found.append(ChildSpec("api", (*base, "serve", "--host", host, "--port", str(port),
                                       "--no-project", "--no-migrate")))
    return found


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the API and the metrics endpoints.")
@click.option("--port", default=8080, show_default=True, help="Port of the API (GET /metrics there too).")
@click.option("--metrics-port", default=9300, show_default=True,
              help="The relay's /metrics port; projection consumer N serves on this port + N.")
@click.option("--projectors", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Projection consumers, each on its share of the officer topic's partitions (Kafka mode).")
@click.option("--api/--no-api", default=True, show_default=True, help="Run the HTTP API too.")
@click.option("--checkpoint-every", default=60.0, show_default=True, metavar="SECONDS",
              help="The relay's signed-checkpoint interval.")
@click.option("--max-backoff", default=30.0, show_default=True, metavar="SECONDS",
              help="Longest wait before restarting a child that keeps crashing.")
@click.option("--stop-timeout", default=20.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM, how long children get to finish their batch before SIGKILL.")
@click.pass_obj
def up(obj: Context, host: str, port: int, metrics_port: int, projectors: int, api: bool,
       checkpoint_every: float, max_backoff: float, stop_timeout: float) -> None:
    """Run the production shape: relay, projection consumers, the issuer and the API, supervised.

    Applies pending migrations, then starts each part as a child process: in Kafka
    mode (LEDGER_KAFKA_BOOTSTRAP) the relay, the projection consumers, the issuing
    worker (`ledger issue`, the only one holding the credential issuer key) and the API;
    in embedded mode the projection consumer, the issuing worker and the API. A child that exits is
    restarted with a backoff. SIGTERM or Ctrl-C stops every child cleanly (each
    finishes its batch) and exits 0; nothing is left running.
    """
    if projectors > 1 and not _can_share():
        # Until consumers can be given their own partitions, a second one would only
        # repeat the first one's work under the same lock.
        raise LedgerError("--projectors: one projection consumer reads every partition "
                          "(more need partition scale-out, not available yet)")
    if projectors > 1 and not obj.settings.kafka_bootstrap:
        raise LedgerError("--projectors: embedded mode has one log to follow; more consumers need Kafka mode")
    log_to_stderr("supervisor")
    _migrate(obj.settings)
    specs = children(obj.settings, host, port, metrics_port, projectors, api, checkpoint_every)
    supervisor = Supervisor(specs, env=child_env(obj.settings), max_backoff=max_backoff, stop_timeout=stop_timeout)
    on_sigterm(supervisor.stop)
    err.print(f"up: {', '.join(s.name for s in specs)}; API on http://{host}:{port} "
              f"(metrics at /metrics), relay and projector metrics from port {metrics_port}", highlight=False)
    sys.exit(supervisor.run())


def _can_share() -> bool:
    """Whether `ledger project` takes ``--instance I/N`` (partition scale-out)."""
    from ledger.cli.operations import project

    return any(param.name == "instance" for param in project.params)


def _migrate(settings: Settings) -> None:
    """Pending migrations, once, before any child opens the store."""
    from ledger.store import schema
    from ledger.store.db import Database

    db = Database(settings)
    db.schema_checked = True  # this is one of the places that changes it
    try:
        for migration in schema.migrate(db):
            err.print(f"applied {migration.version:04d} {migration.name}", highlight=False)
    finally:
        db.close()


COMMANDS: tuple[click.Command, ...] = (up,)
