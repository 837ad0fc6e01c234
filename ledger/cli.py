"""The ``ledger`` command line.

Exit status: 0 success; 1 some input was rejected or the thing asked for does not
exist; 2 bad usage (unknown option, bad argument); 70 an internal error. Errors go to stderr, never as a
traceback; ``--json`` output is machine-readable on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ledger.config import Settings
from ledger.domain.errors import LedgerError
from ledger.domain.values import parse_instant

err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep stderr
out = Console()


class Context:
    """What every subcommand needs: settings read once, the app built lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ledger: Any = None

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            from ledger.application import Ledger

            try:
                self._ledger = Ledger(self.settings)
            except LedgerError:
                raise
            except Exception as exc:  # connection refused, bad path, ...
                raise LedgerError(f"cannot open the event store {self.settings.store!r}: {exc}") from exc
        return self._ledger


def fail(message: str, code: int = 1) -> None:
    """Print an error for people and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


class LedgerGroup(click.Group):
    """Turns LedgerError into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            fail(str(exc))
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            import os

            if os.environ.get("LEDGER_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (set LEDGER_DEBUG=1 for the traceback)", 70)


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", envvar="LEDGER_STORE", help="Event store URL: sqlite:///PATH (default sqlite:///ledger.db) or postgresql://USER@HOST:PORT/DB. [env LEDGER_STORE]")
@click.option("--kafka", "kafka_bootstrap", envvar="LEDGER_KAFKA_BOOTSTRAP", help="Kafka bootstrap servers; unset means embedded mode. [env LEDGER_KAFKA_BOOTSTRAP]")
@click.option("--topic-prefix", envvar="LEDGER_TOPIC_PREFIX", help="Topic prefix (default 'ledger'). [env LEDGER_TOPIC_PREFIX]")
@click.version_option(package_name="learning-record-ledger")
@click.pass_context
def cli(ctx: click.Context, store: str | None, kafka_bootstrap: str | None, topic_prefix: str | None) -> None:
    """The learning-record ledger: an event-sourced system of record for civil-service learning.

    Every registration, transfer, enrolment, progress report, assessment attempt and
    completion is written once as an immutable event; the read models are folded
    from them.
    """
    settings = Settings.from_env({}).with_overrides(
        store=store, kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix
    )
    ctx.obj = Context(settings)


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError as exc:
        raise LedgerError(f"FILE: cannot read {path!r}: {exc.strerror}") from None


def _open_input(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise LedgerError(f"FILE: cannot read {path!r}: {exc.strerror}") from None


@cli.command()
@click.argument("file", metavar="FILE|-")
@click.option("--json", "as_json", is_flag=True, help="One JSON answer per non-blank line on stdout.")
@click.option("--batch-size", default=500, show_default=True, help="Commands per transaction.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--show-rejected", default=20, show_default=True, help="Without --json: print at most this many rejected lines.")
@click.pass_obj
def ingest(obj: Context, file: str, as_json: bool, batch_size: int, progress: bool | None, show_rejected: int) -> None:
    """Apply the JSON Lines commands in FILE (or - for stdin), in order.

    Each non-blank line is answered accepted, duplicate (same command_id and
    content seen before) or rejected (with the reason). A rejected line writes
    nothing; the lines around it are still applied. Exit status 0 when nothing
    was rejected, 1 otherwise.
    """
    if batch_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch-size")
    ledger = obj.ledger
    total = _count_lines(file)
    show = (err.is_terminal if progress is None else progress) and not as_json
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    with _open_input(file) as fh:
        outcomes = ledger.ingest(fh, batch_size=batch_size)
        with Progress(
            TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} lines/s"), TimeRemainingColumn(),
            console=err, disable=not show, transient=False,
        ) as bar:
            task = bar.add_task("ingest", total=total, rate="-")
            for outcome in outcomes:
                counts[outcome.status] += 1
                if as_json:
                    emit_json(outcome.as_json())
                elif outcome.error and counts["rejected"] <= show_rejected:
                    err.print(f"line {outcome.line}: rejected: {outcome.error}", highlight=False, markup=False)
                if show:
                    elapsed = time.perf_counter() - started
                    bar.update(task, completed=outcome.line, rate=f"{outcome.line / elapsed:,.0f}" if elapsed else "-")
    elapsed = time.perf_counter() - started
    if not as_json:
        n = sum(counts.values())
        if counts["rejected"] > show_rejected:
            err.print(f"... and {counts['rejected'] - show_rejected:,} more rejected lines (--json lists every answer)")
        err.print(
            f"{n:,} lines: {counts['accepted']:,} accepted, {counts['duplicate']:,} duplicate, "
            f"{counts['rejected']:,} rejected in {elapsed:.1f}s ({n / elapsed if elapsed else 0:,.0f} lines/s)",
            highlight=False,
        )
    sys.exit(1 if counts["rejected"] else 0)


def _history_table(events: list[dict[str, Any]]) -> Table:
    table = Table(title=None)
    for column in ("version", "type", "occurred_at", "recorded_at", "details"):
        table.add_column(column)
    skip = {"type", "version", "occurred_at", "recorded_at", "event_id", "officer_id"}
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in skip)
        table.add_row(str(e["version"]), e["type"], e["occurred_at"], e["recorded_at"], details)
    return table


@cli.command()
@click.argument("officer_id")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of events.")
@click.pass_obj
def history(obj: Context, officer_id: str, as_json: bool) -> None:
    """Show OFFICER_ID's events in order, with business time and recorded time."""
    events = obj.ledger.history(officer_id)
    if not events:
        fail(f"officer {officer_id!r} is not registered")
    if as_json:
        emit_json(events)
    else:
        out.print(_history_table(events))


def _record_view(record: dict[str, Any]) -> None:
    out.print(f"[bold]{record['officer_id']}[/]  {record['name'] or '(erased)'}  <{record['email'] or '-'}>", highlight=False)
    out.print(f"posted at {record['org_id']} (ministry {record['ministry_id']}), post {record['post_id'] or '-'}", highlight=False)
    postings = Table(title="postings")
    for column in ("from", "org_id", "post_id"):
        postings.add_column(column)
    for p in record["postings"]:
        postings.add_row(p["from"], p["org_id"], p["post_id"] or "-")
    out.print(postings)
    courses = Table(title="enrolments")
    for column in ("course_id", "status", "progress", "attempts", "enrolled_at", "completed_at"):
        courses.add_column(column)
    for e in record["enrolments"]:
        attempts = " ".join(f"{a['score']:g}{'✓' if a['passed'] else '✗'}" for a in e["attempts"])
        courses.add_row(e["course_id"], e["status"], f"{e['progress']}%", attempts or "-", e["enrolled_at"], e["completed_at"] or "-")
    out.print(courses)
    by_year = ", ".join(f"{fy}: {h:g} h" for fy, h in record["learning_hours_by_year"].items()) or "-"
    out.print(f"completed {record['completed_count']} courses, {record['learning_hours']:g} learning hours ({by_year})", highlight=False)


def _read_models(obj: Context) -> Any:
    from ledger.db import Database
    from ledger.readmodels import ReadModels

    return ReadModels(Database(obj.settings), obj.ledger)


def _not_projected(obj: Context, officer_id: str) -> None:
    if obj.ledger.officer_events(officer_id):
        fail(f"officer {officer_id!r} is in the store but not yet in the read model: run `ledger project`")
    fail(f"officer {officer_id!r} is not registered")


@cli.command()
@click.argument("officer_id")
@click.option("--as-of", "as_of", metavar="INSTANT", help="Fold the officer's events with occurred_at <= INSTANT (ISO 8601 with offset) instead of reading the read model.")
@click.option("--json", "as_json", is_flag=True, help="The record as JSON.")
@click.pass_obj
def record(obj: Context, officer_id: str, as_of: str | None, as_json: bool) -> None:
    """Show OFFICER_ID's learning record.

    Without --as-of it comes from the read model (kept by `ledger project`); with
    --as-of it is folded from the event store: the record as it was at that instant.
    """
    if as_of:
        result = obj.ledger.record(officer_id, parse_instant(as_of, "--as-of"))
        if result is None:
            fail(f"officer {officer_id!r} is not registered as of {as_of}")
    else:
        result = _read_models(obj).record(officer_id)
        if result is None:
            _not_projected(obj, officer_id)
    if as_json:
        emit_json(result)
    else:
        _record_view(result)


@cli.command()
@click.argument("officer_id")
@click.option("--json", "as_json", is_flag=True, help="The profile as JSON.")
@click.pass_obj
def competencies(obj: Context, officer_id: str, as_json: bool) -> None:
    """Show OFFICER_ID's competency profile: FRAC needs of the post, acquired levels, gaps, recommended courses."""
    profile = _read_models(obj).competency_profile(officer_id)
    if profile is None:
        _not_projected(obj, officer_id)
    if as_json:
        emit_json(profile)
        return
    out.print(f"[bold]{profile['officer_id']}[/] on post {profile['post_id'] or '-'}", highlight=False)
    table = Table(title="competencies")
    for column in ("competency", "required", "acquired", "gap"):
        table.add_column(column)
    for cid in sorted(set(profile["required"]) | set(profile["acquired"])):
        table.add_row(cid, str(profile["required"].get(cid, "-")), str(profile["acquired"].get(cid, "-")), str(profile["gaps"].get(cid, "")))
    out.print(table)
    out.print("recommended: " + (", ".join(profile["recommended"]) or "-"), highlight=False)


@cli.command()
@click.argument("ministry_id")
@click.option("--json", "as_json", is_flag=True, help="The aggregates as JSON.")
@click.pass_obj
def ministry(obj: Context, ministry_id: str, as_json: bool) -> None:
    """Show MINISTRY_ID's headcount and, per financial year, enrolments, completions and hours."""
    found = _read_models(obj).ministry(ministry_id)
    if found is None:
        fail(f"ministry {ministry_id!r} is not in the read model")
    if as_json:
        emit_json(found)
        return
    out.print(f"[bold]{found['ministry_id']}[/]: headcount {found['headcount']:,}", highlight=False)
    table = Table(title="by financial year")
    for column in ("year", "enrolments", "completions", "learning hours", "officers completed"):
        table.add_column(column, justify="right")
    for fy, y in found["years"].items():
        table.add_row(fy, f"{y['enrolments']:,}", f"{y['completions']:,}", f"{y['learning_hours']:,.1f}", f"{y['officers_completed']:,}")
    out.print(table)


@cli.command()
@click.argument("model", type=click.Choice(["records", "competencies", "ministries"]))
@click.pass_obj
def export(obj: Context, model: str) -> None:
    """Print every row of a read model as JSON Lines on stdout."""
    for row in _read_models(obj).export(model):
        emit_json(row)


@cli.command()
@click.option("--until-idle", is_flag=True, help="Bring every projection up to date, then exit.")
@click.option("--idle", default=2.0, show_default=True, help="Kafka mode: seconds without a message that count as idle.")
@click.option("--page", default=2000, show_default=True, help="Events per batch (one transaction each).")
@click.pass_obj
def project(obj: Context, until_idle: bool, idle: float, page: int) -> None:
    """Keep the read models (records, competencies, ministries) up to date.

    Embedded mode follows the event store directly; with LEDGER_KAFKA_BOOTSTRAP set
    it consumes the topics. Positions are stored with each change, so a restart
    resumes exactly where the last committed batch ended. SIGTERM finishes the
    batch and exits 0. With --until-idle, exit status 1 if any event is in the
    dead-letter table.
    """
    from ledger.db import Database
    from ledger.projections.runner import Runner

    _logging()
    runner = Runner(Database(obj.settings))
    follower: Any
    if obj.settings.kafka_bootstrap:
        from ledger.consumers.kafka import KafkaFollower

        follower = KafkaFollower(obj.settings.kafka_bootstrap, obj.settings.topic_prefix, runner, max_records=page)
        _on_sigterm(follower.stop)
        stats = follower.run(until_idle=until_idle, idle=idle)
    else:
        from ledger.consumers.log import LogFollower

        follower = LogFollower(obj.ledger, runner, page=page)
        _on_sigterm(follower.stop)
        stats = follower.run(until_idle=until_idle)
    dead = runner.dead_letter_count()
    err.print(f"project: {stats.events:,} events in {stats.batches:,} batches; {dead:,} dead letters", highlight=False)
    # A run to idle reports dead letters in its exit status; a stopped follower exits 0.
    sys.exit(1 if dead and until_idle else 0)


@cli.command()
@click.argument("projection", type=click.Choice(["records", "competencies", "ministries", "all"]))
@click.option("--page", default=2000, show_default=True, help="Events per batch.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.pass_obj
def rebuild(obj: Context, projection: str, page: int, progress: bool | None) -> None:
    """Rebuild a read model (or all) from the event store, then swap it in atomically.

    Builds fresh tables beside the live ones, streaming the history (memory stays
    flat), and swaps them in one transaction. Queries and the live `ledger project`
    keep working throughout; afterwards consumption continues with nothing lost or
    counted twice.
    """
    from ledger.db import Database
    from ledger.projections.rebuild import rebuild as run_rebuild
    from ledger.projections.runner import Runner

    runner = Runner(Database(obj.settings))
    names = [p.name for p in runner.projections] if projection == "all" else [projection]
    show = err.is_terminal if progress is None else progress
    started = time.perf_counter()
    with Progress(
        TextColumn(f"rebuilding {projection}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"), TimeRemainingColumn(),
        console=err, disable=not show,
    ) as bar:
        task = bar.add_task("rebuild", total=None, rate="-")

        def report(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f}" if elapsed else "-")

        folded = run_rebuild(obj.ledger, runner, names, page, report, embedded=not obj.settings.kafka_bootstrap)
    elapsed = time.perf_counter() - started
    err.print(f"rebuilt {', '.join(names)} from {folded:,} events in {elapsed:.1f}s "
              f"({folded / elapsed if elapsed else 0:,.0f} events/s) and swapped it in", highlight=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--stuck-after", default=60.0, show_default=True, help="Seconds without progress, while behind, that count as stuck.")
@click.pass_obj
def status(obj: Context, as_json: bool, stuck_after: float) -> None:
    """Report position, lag and health of the relay and each projection.

    Lag is in events and in seconds behind the newest event. Exit status 1 when the
    store or broker does not answer or something is behind and not moving, so it
    can serve as a health check.
    """
    from ledger.status import collect

    try:
        ledger = obj.ledger
    except LedgerError as exc:
        report: dict[str, Any] = {"ok": False, "store": {"ok": False, "error": str(exc)}, "problems": [str(exc)]}
    else:
        report = collect(ledger, obj.settings, stuck_after)
    if as_json:
        emit_json(report)
    else:
        store = report["store"]
        out.print(f"store: {'ok' if store['ok'] else 'DOWN'} {store.get('events', '')} events, newest recorded {store.get('newest_recorded_at')}", highlight=False)
        if "broker" in report:
            out.print(f"broker {report['broker']['bootstrap']}: {'ok' if report['broker']['ok'] else 'UNREACHABLE'}", highlight=False)
        table = Table()
        for column in ("component", "position", "lag (events)", "lag (s)", "last processed"):
            table.add_column(column)
        rows = ([("relay", report["relay"])] if "relay" in report else []) + list(report.get("projections", {}).items())
        for name, e in rows:
            table.add_row(name, str(e["position"]), str(e["lag_events"]), str(e["lag_seconds"]), str(e["last_processed_at"]))
        out.print(table)
        out.print(f"dead letters: {report.get('dead_letters', 0)}", highlight=False)
        for problem in report.get("problems", []):
            err.print(f"[bold red]problem:[/] {problem}", highlight=False)
    sys.exit(0 if report["ok"] else 1)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Worker processes (each group-commits its own requests).")
@click.option("--project/--no-project", default=None, help="Follow the store and keep the read models fresh in-process (default: on in embedded mode).")
@click.pass_obj
def serve(obj: Context, host: str, port: int, workers: int, project: bool | None) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs).

    Create tokens first with `ledger token create`.
    """
    import os

    import uvicorn

    os.environ["LEDGER_STORE"] = obj.settings.store
    os.environ["LEDGER_TOPIC_PREFIX"] = obj.settings.topic_prefix
    if obj.settings.kafka_bootstrap:
        os.environ["LEDGER_KAFKA_BOOTSTRAP"] = obj.settings.kafka_bootstrap
    if project is not None:
        os.environ["LEDGER_SERVE_PROJECT"] = "1" if project else "0"
    if workers > 1 and (project or (project is None and not obj.settings.kafka_bootstrap)):
        os.environ["LEDGER_SERVE_PROJECT"] = "0"
        err.print("note: with several workers, run `ledger project` beside the server to keep read models fresh")
    uvicorn.run("ledger.api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")


@cli.group()
def token() -> None:
    """Create, list and revoke API bearer tokens."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["ingest", "officer", "ministry_hr", "cbc", "auditor", "admin"]))
@click.option("--ministry", "ministry_id", help="The ministry (ministry_hr).")
@click.option("--officer", "officer_id", help="The officer (officer role).")
@click.option("--name", required=True, help="A unique name; it appears in the access log.")
@click.pass_obj
def token_create(obj: Context, role: str, ministry_id: str | None, officer_id: str | None, name: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from ledger.api.auth import create_token
    from ledger.db import Database

    sys.stdout.write(create_token(Database(obj.settings), name, role, ministry_id, officer_id) + "\n")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(obj: Context, name: str) -> None:
    """Revoke the token called NAME."""
    from ledger.api.auth import revoke_token
    from ledger.db import Database

    revoke_token(Database(obj.settings), name)
    err.print(f"revoked {name}")


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def token_list(obj: Context, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    from ledger.api.auth import list_tokens
    from ledger.db import Database

    for row in list_tokens(Database(obj.settings)):
        if as_json:
            emit_json(row)
        else:
            sys.stdout.write(f"{row['name']:<24} {row['role']:<12} {row['ministry_id'] or '-':<10} {row['officer_id'] or '-':<14} {'revoked' if row['revoked_at'] else 'active'}\n")


@cli.command("access-log")
@click.option("--officer", "officer_id", help="Only reads of this officer.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def access_log(obj: Context, officer_id: str | None, as_json: bool) -> None:
    """Show who read which officer's personal data or history, and when."""
    from ledger.api.auth import read_access_log
    from ledger.db import Database

    for row in read_access_log(Database(obj.settings), officer_id):
        if as_json:
            emit_json(row)
        else:
            sys.stdout.write(f"{row['at']}  {row['token_name']:<20} {row['role']:<12} {row['officer_id']:<16} {row['endpoint']}\n")


@cli.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
@click.pass_obj
def dead_letters(obj: Context, as_json: bool) -> None:
    """List events the projections could not apply (and the officers held back behind them)."""
    rows = _read_models(obj).dead_letters()
    if as_json:
        for row in rows:
            emit_json(row)
        return
    table = Table(title=f"{len(rows)} dead letters")
    for column in ("source", "partition", "position", "officer", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["source"], str(r["partition"]), str(r["position"]), r["officer_id"] or "-", r["reason"])
    out.print(table)


@cli.command()
@click.option("--officers", default=2000, show_default=True, help="How many officers.")
@click.option("--seed", default=1, show_default=True, help="Random seed: the same seed gives the same stream.")
@click.option("--out", "out_path", default="-", show_default=True, help="Output file, or - for stdout.")
def generate(officers: int, seed: int, out_path: str) -> None:
    """Write a realistic synthetic command stream as JSON Lines.

    Ministries, departments and organisations, a competency dictionary, FRAC posts,
    about 50 courses, and officers' careers across three financial years, with a
    few percent of invalid commands. Every command has a command_id.
    """
    from ledger.generate import generate_lines

    if officers < 0:
        raise click.BadParameter("must be >= 0", param_hint="--officers")
    def write(target: IO[str]) -> None:
        for line in generate_lines(officers, seed):
            target.write(line + "\n")

    if out_path == "-":
        write(sys.stdout)
    else:
        with open(out_path, "w", encoding="utf-8") as fh:
            write(fh)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Counts as a JSON object.")
@click.pass_obj
def stats(obj: Context, as_json: bool) -> None:
    """Count the events in the store, by type."""
    counts = obj.ledger.event_counts()
    if as_json:
        emit_json(counts)
        return
    table = Table(title=f"events in {obj.settings.store}")
    table.add_column("type")
    table.add_column("events", justify="right")
    for kind, n in counts.items():
        table.add_row(kind, f"{n:,}")
    table.add_row("[bold]total[/]", f"[bold]{sum(counts.values()):,}[/]")
    out.print(table)


def _on_sigterm(stop: Any) -> None:
    """SIGTERM (and Ctrl-C) ask the loop to finish its batch and exit 0."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _require_kafka(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise LedgerError(
            "LEDGER_KAFKA_BOOTSTRAP is not set: the relay and tail need a broker "
            "(embedded mode has no Kafka; `ledger broker` starts one for trying things out)"
        )
    return settings.kafka_bootstrap


@cli.command()
@click.argument("officer_id")
@click.option("--reason", required=True, help="Why (kept in the OfficerErased event; no personal data).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def erase(obj: Context, officer_id: str, reason: str, yes: bool) -> None:
    """Erase OFFICER_ID's personal data for good (DPDP).

    Destroys the officer's data key (so every copy of the encrypted name and email,
    in the store and on the topics, becomes unreadable), records OfficerErased,
    scrubs the database files of the key's old bytes, and refuses later commands
    for the officer. Learning facts and aggregates stay. Run `ledger project`
    afterwards to clear the read models.
    """
    if not yes and sys.stdin.isatty():
        click.confirm(f"Erase the personal data of {officer_id} for good?", abort=True)
    scrubbed = obj.ledger.erase(officer_id, reason)
    err.print(f"erased {officer_id}: data key destroyed, OfficerErased recorded", highlight=False)
    if not scrubbed:
        fail("the database files could not be scrubbed now (another process holds the database); "
             "the key is destroyed, but its old bytes may remain until the next erasure or VACUUM")


@cli.command()
@click.argument("officer_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="The result as JSON.")
@click.pass_obj
def verify(obj: Context, officer_id: str | None, as_json: bool) -> None:
    """Recompute the hash chains of OFFICER_ID's events (or of every aggregate).

    Reports each altered, removed, inserted or reordered event by officer (or
    entity) and version. Exit status 1 if any chain is broken.
    """
    checked, breaks = obj.ledger.verify(officer_id)
    if officer_id is not None and not obj.ledger.officer_events(officer_id) and not breaks:
        fail(f"officer {officer_id!r} is not registered")
    if as_json:
        emit_json({"checked": checked, "breaks": breaks, "ok": not breaks})
    else:
        for b in breaks:
            err.print(f"{b['entity']} version {b['version']}: {b['problem']}", highlight=False, markup=False)
        err.print(f"verified {checked:,} chains: {'OK' if not breaks else f'{len(breaks)} breaks'}", highlight=False)
    sys.exit(1 if breaks else 0)


@cli.command()
@click.option("--until-idle", is_flag=True, help="Publish what the store has, then exit.")
@click.option("--page", default=2000, show_default=True, help="Events per publish batch.")
@click.pass_obj
def relay(obj: Context, until_idle: bool, page: int) -> None:
    """Publish the event store to Kafka, from the last published position.

    Officer events go to <prefix>.officers keyed by officer_id, reference events to
    <prefix>.reference keyed by the entity id, Avro single-object encoded. At least
    once: after a crash a batch may be published again (consumers deduplicate by
    officer_id and version). SIGTERM finishes the current batch and exits 0.
    """
    from ledger.db import Database
    from ledger.relay import Relay

    _logging()
    bootstrap = _require_kafka(obj.settings)
    db = Database(obj.settings)
    worker = Relay(obj.ledger, db, bootstrap, obj.settings.topic_prefix, page=page)
    _on_sigterm(worker.stop)
    stats = worker.run(until_idle=until_idle)
    err.print(f"relay: published {stats.published:,} events in {stats.batches:,} batches; position {stats.position:,}", highlight=False)


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


@cli.command()
@click.option("--from-beginning", is_flag=True, help="Start at the oldest message (default: only new ones).")
@click.option("--json", "as_json", is_flag=True, help="One decoded event per line as JSON.")
@click.option("--until-idle", is_flag=True, help="Exit once no message arrived for --idle seconds.")
@click.option("--idle", default=3.0, show_default=True, help="Seconds of silence that count as idle.")
@click.option("--reference", "reference_topic", is_flag=True, help="Tail <prefix>.reference instead of <prefix>.officers.")
@click.pass_obj
def tail(obj: Context, from_beginning: bool, as_json: bool, until_idle: bool, idle: float, reference_topic: bool) -> None:
    """Decode and print the officer topic's events (for ops and integrators)."""
    import threading

    from ledger.avro import DecodeError, default_codec
    from ledger.kafka import make_consumer, officers_topic, partitions_of
    from ledger.kafka import reference_topic as ref_topic

    bootstrap = _require_kafka(obj.settings)
    prefix = obj.settings.topic_prefix
    topic = ref_topic(prefix) if reference_topic else officers_topic(prefix)
    codec = default_codec()
    consumer = make_consumer(bootstrap)
    stop = threading.Event()
    _on_sigterm(stop)
    try:
        partitions = partitions_of(consumer, topic)
    except TimeoutError as exc:
        raise LedgerError(str(exc)) from None
    consumer.assign(partitions)
    if from_beginning:
        consumer.seek_to_beginning(*partitions)
    else:
        consumer.seek_to_end(*partitions)
    quiet_since = time.monotonic()
    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=500)
            if not batches:
                if until_idle and time.monotonic() - quiet_since > idle:
                    break
                continue
            quiet_since = time.monotonic()
            for tp, messages in batches.items():
                for m in messages:
                    try:
                        event = codec.decode(m.value)
                    except DecodeError as exc:
                        err.print(f"{tp.topic}[{tp.partition}]@{m.offset}: {exc}", highlight=False)
                        continue
                    if as_json:
                        emit_json({"partition": tp.partition, "offset": m.offset, "event": event})
                    else:
                        who = event.get("officer_id") or m.key.decode()
                        sys.stdout.write(f"{tp.partition}:{m.offset:<8} {who:<16} v{event['version']:<4} {event['type']:<20} {event['occurred_at']}\n")
    finally:
        consumer.close()


@cli.command()
@click.option("--port", default=9092, show_default=True, help="Loopback port to listen on.")
def broker(port: int) -> None:
    """Run the bundled Tansu Kafka-protocol broker in the foreground (memory only).

    For trying the production mode on one machine:
    LEDGER_KAFKA_BOOTSTRAP=127.0.0.1:PORT ledger relay. Ctrl-C stops it.
    """
    from ledger.broker import start_tansu

    proc, bootstrap = start_tansu(port)
    err.print(f"broker listening on {bootstrap} (memory only); Ctrl-C to stop", highlight=False)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ledger")


if __name__ == "__main__":
    main()
