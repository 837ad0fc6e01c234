"""Commands for operators: keeping the read models and topics fed, health, serving, migrating.

A new operations command goes here and into ``COMMANDS`` at the bottom.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from ledger.cli.common import (
    Context,
    audit_reader,
    log_to_stderr,
    metrics_options,
    on_sigterm,
    require_kafka,
    serve_metrics,
)
from ledger.cli.render import (
    emit_json,
    err,
    print_event_counts,
    print_status,
    progress_bar,
    rate,
)
from ledger.domain.errors import LedgerError


@click.command()
@click.option("--until-idle", is_flag=True, help="Bring every projection up to date, then exit.")
@click.option("--idle", default=2.0, show_default=True, help="Kafka mode: seconds without a message that count as idle.")
@click.option("--page", default=2000, show_default=True, help="Events per batch (one transaction each).")
@click.option("--partitions", metavar="LIST",
              help="Kafka mode: consume only these partitions of <prefix>.officers, e.g. 0,2,4.")
@click.option("--instance", metavar="I/N",
              help="Kafka mode: be instance I of N processes: the partitions p of <prefix>.officers with p % N == I.")
@click.option("--cache-officers", default=10_000, show_default=True, type=click.IntRange(min=0),
              help="Officers whose documents each read model keeps in memory between batches "
                   "(about 9 KB an officer over all five; 0: none).")
@click.option("--helper/--no-helper", default=True, show_default=True,
              help="Kafka mode: when a run starts behind by --helper-backlog messages or more, poll and "
                   "decode the topics in a helper process (on another core), so this process only applies "
                   "the decoded batches; --no-helper does both in this process (in a prefetch thread). "
                   "Should the helper fail, this process carries on without it.")
@click.option("--helper-backlog", default=20_000, show_default=True, type=click.IntRange(min=0),
              help="Messages waiting at the start from which the helper process is used (0: always).")
@click.option("--forget-offsets", "forget", metavar="TOPIC", multiple=True,
              help="Kafka mode, every consumer stopped: read TOPIC again from offset 0 (after it was recreated).")
@click.option("--issue/--no-issue", default=False, show_default=True,
              help="Also run the issuing worker (issued_credentials: signs credentials with the issuer key, "
                   "LEDGER_ISSUER_KEY) in this process (after the read models with --until-idle); default: leave "
                   "it to `ledger issue`, a process of its own, as `ledger up` does (signing is slow).")
@metrics_options
@click.pass_obj
def project(obj: Context, until_idle: bool, idle: float, page: int, partitions: str | None, instance: str | None,
            cache_officers: int, helper: bool, helper_backlog: int, forget: tuple[str, ...], issue: bool,
            metrics_port: int | None,
            metrics_host: str) -> None:
    """Keep the read models (records, competencies, ministries, plans, gaps, credential_status) up to
    date, and with --issue the signed credentials (issued_credentials) too.

    Embedded mode follows the event store directly; with LEDGER_KAFKA_BOOTSTRAP set
    it consumes the topics (and credential_status, numbered in the store's log order, from
    the store beside them). Positions are stored with each change, so a restart
    resumes exactly where the last committed batch ended. SIGTERM finishes the
    batch and exits 0. With --until-idle, exit status 1 if any event is in the
    dead-letter table.

    Scale-out (Kafka mode): run one process per share of the officer topic's
    partitions (--instance 0/3, 1/3, 2/3, on one machine or several, or
    --partitions); each keeps its own positions, all write the same read models,
    and every one also reads <prefix>.reference.
    """
    from ledger.projections.runner import Runner
    from ledger.store.db import Database

    share: Any = None
    if obj.settings.kafka_bootstrap:
        from ledger.consumers.topics import Share

        try:
            share = Share.parse(partitions, instance)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    elif partitions is not None or instance is not None:
        raise click.UsageError("--partitions and --instance choose Kafka partitions: they need LEDGER_KAFKA_BOOTSTRAP")
    log_to_stderr("projector")
    serve_metrics(obj, metrics_host, metrics_port, "projector", relay=False)
    from ledger.cli.issuing import beside, follow_beside

    runner = Runner(Database(obj.settings), cache_officers=cache_officers)
    for topic in forget:
        from ledger.kafka.history import forget_offsets

        with runner.db.transaction() as c:
            runner.lock(c)
            err.print(f"project: {forget_offsets(c, topic)} offsets of {topic} forgotten", highlight=False)
    follower: Any
    issuing = beside(obj) if issue else None
    if obj.settings.kafka_bootstrap:
        from ledger.consumers.log import TypedLogFollower
        from ledger.consumers.topics import KafkaFollower

        # credential_status follows the store's log, never a topic: fed beside the topics.
        logged = [p for p in runner.projections if p.follows_log]
        typed = TypedLogFollower(obj.ledger, Runner(runner.db, logged, cache_officers=0), page) if logged else None
        follower = KafkaFollower(obj.settings.kafka_bootstrap, obj.settings.topic_prefix, runner,
                                 max_records=page, share=share, helper=helper, helper_backlog=helper_backlog,
                                 log_follower=typed)
        stats = follow_beside(follower, lambda: follower.run(until_idle=until_idle, idle=idle), issuing, until_idle)
    else:
        from ledger.consumers.log import LogFollower

        follower = LogFollower(obj.ledger, runner, page=page)
        stats = follow_beside(follower, lambda: follower.run(until_idle=until_idle), issuing, until_idle)
    dead = runner.dead_letter_count()
    err.print(f"project: {stats.events:,} events in {stats.batches:,} batches; {dead:,} dead letters", highlight=False)
    # A run to idle reports dead letters in its exit status; a stopped follower exits 0.
    sys.exit(1 if dead and until_idle else 0)


@click.command()
@click.argument("projection", type=click.Choice(["records", "competencies", "ministries", "plans", "gaps",
                                                 "credential_status", "issued_credentials", "all"]))
@click.option("--page", default=2000, show_default=True, help="Events per batch of the catch-up after the bulk fold.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes sharing the bulk fold (officers split by id hash).")
@click.pass_obj
def rebuild(obj: Context, projection: str, page: int, progress: bool | None, workers: int) -> None:
    """Rebuild a read model (or all) from the event store, then swap it in atomically.

    Builds fresh tables beside the live ones, streaming the history (memory stays
    flat), and swaps them in one transaction. Queries and the live `ledger project`
    keep working throughout; afterwards consumption continues with nothing lost or
    counted twice. issued_credentials signs, so it needs the issuer key (LEDGER_ISSUER_KEY);
    it is rebuilt together with credential_status, whose indexes it reads.
    """
    from ledger.cli.issuing import add_to_rebuild
    from ledger.projections.rebuild import rebuild as run_rebuild
    from ledger.projections.runner import Runner
    from ledger.store.db import Database

    runner = Runner(Database(obj.settings))
    add_to_rebuild(obj, runner, required=projection == "issued_credentials")
    names = [p.name for p in runner.projections] if projection == "all" else [projection]
    show = err.is_terminal if progress is None else progress
    started = time.perf_counter()
    with progress_bar(f"rebuilding {projection}", "events", show) as bar:
        task = bar.add_task("rebuild", total=None, rate="-")

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, rate=rate(done, time.perf_counter() - started))

        folded = run_rebuild(obj.ledger, runner, names, page, report,
                             embedded=not obj.settings.kafka_bootstrap, workers=workers)
    elapsed = time.perf_counter() - started
    err.print(f"rebuilt {', '.join(names)} from {folded:,} events in {elapsed:.1f}s "
              f"({folded / elapsed if elapsed else 0:,.0f} events/s) and swapped it in", highlight=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--stuck-after", default=60.0, show_default=True, help="Seconds without progress, while behind, that count as stuck.")
@click.pass_obj
def status(obj: Context, as_json: bool, stuck_after: float) -> None:
    """Report position, lag and health of the relay and each projection.

    Lag is in events and in seconds behind the newest event. Exit status 1 when the
    store or broker does not answer or something is behind and not moving, so it
    can serve as a health check.
    """
    from ledger.monitor.status import collect

    try:
        ledger = obj.ledger
    except LedgerError as exc:
        report: dict[str, Any] = {"ok": False, "store": {"ok": False, "error": str(exc)}, "problems": [str(exc)]}
    else:
        report = collect(ledger, obj.settings, stuck_after)
    if as_json:
        emit_json(report)
    else:
        print_status(report)
    sys.exit(0 if report["ok"] else 1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Counts as a JSON object.")
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """Count the events in the store, by type."""
    counts = audit_reader(obj).event_counts()
    if as_json:
        emit_json(counts)
    else:
        print_event_counts(obj.settings.store_shown, counts)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Worker processes (each group-commits its own requests).")
@click.option("--project/--no-project", default=None, help="Follow the store and keep the read models fresh in-process (default: on in embedded mode).")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply pending schema migrations before serving.")
@click.option("--issue/--no-issue", default=None,
              help="Run the issuing worker (`ledger issue`, which holds the credential issuer key) as a child "
                   "process (default: when the read models are projected in-process).")
@click.pass_obj
def serve(obj: Context, host: str, port: int, workers: int, project: bool | None, migrate: bool,
          issue: bool | None) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs).

    Create tokens first with `ledger token create`. Pending schema migrations are
    applied first (as `ledger migrate` does), unless --no-migrate. The server holds no
    credential key: it serves the credentials the issuing worker stored; with --issue
    (the default when it projects in-process) it starts that worker as a child process.
    """
    import os
    import threading

    import uvicorn

    if migrate:
        _apply_migrations(obj)
    # The workers build their app from the environment (uvicorn's factory takes no arguments).
    os.environ["LEDGER_STORE"] = obj.settings.store
    os.environ["LEDGER_TOPIC_PREFIX"] = obj.settings.topic_prefix
    for name, value in (("LEDGER_SIGNING_KEY", obj.settings.signing_key), ("LEDGER_ISSUER_KEY", obj.settings.issuer_key),
                        ("LEDGER_ISSUER_DID", obj.settings.issuer_did), ("LEDGER_ISSUER_NAME", obj.settings.issuer_name)):
        if value:  # options given before `serve` reach the app as the environment does
            os.environ[name] = value
    if obj.settings.kafka_bootstrap:
        os.environ["LEDGER_KAFKA_BOOTSTRAP"] = obj.settings.kafka_bootstrap
    if project is not None:
        os.environ["LEDGER_SERVE_PROJECT"] = "1" if project else "0"
    if workers > 1 and (project or (project is None and not obj.settings.kafka_bootstrap)):
        os.environ["LEDGER_SERVE_PROJECT"] = "0"
        err.print("note: with several workers, run `ledger project` beside the server to keep read models fresh")
    log_to_stderr("api")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler found
    # before it started: this one, so a stopped server exits 0 like relay and project.
    on_sigterm(threading.Event())
    # Our handler for uvicorn's loggers too (log_config=None), so LEDGER_LOG_FORMAT=json covers them.
    from ledger.cli.issuing import child_beside

    in_process = project if project is not None else not obj.settings.kafka_bootstrap
    with child_beside(obj.settings, issue if issue is not None else in_process and workers == 1):
        uvicorn.run("ledger.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", log_config=None)


@click.command()
@click.option("--until-idle", is_flag=True, help="Publish what the store has, then exit.")
@click.option("--page", default=2000, show_default=True, help="Events per publish batch.")
@click.option("--checkpoint-every", default=60.0, show_default=True, metavar="SECONDS",
              help="Publish a signed checkpoint to <prefix>.checkpoints this often while advancing (0: never).")
@click.option("--republish", is_flag=True, help="Publish the whole store again from its first event (after a topic was recreated).")
@metrics_options
@click.pass_obj
def relay(obj: Context, until_idle: bool, page: int, checkpoint_every: float, republish: bool,
          metrics_port: int | None, metrics_host: str) -> None:
    """Publish the event store to Kafka, from the last published position.

    Officer events go to <prefix>.officers keyed by officer_id, reference events to
    <prefix>.reference keyed by the entity id, Avro single-object encoded. At least
    once: after a crash a batch may be published again (consumers deduplicate by
    officer_id and version). SIGTERM finishes the current batch and exits 0.
    Signed checkpoints of the log chain go to <prefix>.checkpoints, each only if the
    store's history extends the last checkpoint the key signed (kept beside it,
    <key file>.last.json). When it does not (a fork), the relay logs an error naming
    the position, signs and publishes no checkpoint until restarted, keeps publishing
    events, and `ledger status` reports the refusal as a problem.
    """
    from ledger.integrity.checkpoint import SigningKey
    from ledger.kafka.relay import Relay
    from ledger.store.db import Database

    log_to_stderr("relay")
    bootstrap = require_kafka(obj.settings)
    serve_metrics(obj, metrics_host, metrics_port, "relay", projections=False)
    db = Database(obj.settings)
    if republish:
        from ledger.kafka.history import restart_relay
        from ledger.kafka.relay import POSITION

        with db.transaction() as c:
            restart_relay(c, obj.settings.topic_prefix, POSITION)
    key = SigningKey.load_or_create(obj.settings.signing_key_path) if checkpoint_every > 0 else None
    worker = Relay(obj.ledger, db, bootstrap, obj.settings.topic_prefix, page=page,
                   signing_key=key, checkpoint_every=checkpoint_every)
    on_sigterm(worker.stop)
    stats = worker.run(until_idle=until_idle)
    err.print(f"relay: published {stats.published:,} events in {stats.batches:,} batches; position {stats.position:,}", highlight=False)


@click.command()
@click.pass_obj
def migrate(obj: Context) -> None:
    """Bring the store's schema to this ledger's version (numbered migrations, each once).

    A new, empty store is also created on first use by any command; an existing
    store at an older version is refused by every other command until it is
    migrated. Back up the database first: a migration is not undone.
    """
    _apply_migrations(obj, report=True)


def _apply_migrations(obj: Context, report: bool = False) -> None:
    from ledger.store import schema
    from ledger.store.db import Database

    db = Database(obj.settings)
    db.schema_checked = True  # this is the one place that changes it
    try:
        before = schema.version(db)
        for migration in schema.migrate(db):
            err.print(f"applied {migration.version:04d} {migration.name}", highlight=False)
        if report:
            was = before if before is not None else "empty"
            err.print(f"schema at version {schema.version(db)} (was {was})", highlight=False)
    finally:
        db.close()


COMMANDS: tuple[click.Command, ...] = (project, rebuild, status, stats, serve, relay, migrate)
