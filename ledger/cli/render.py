"""How the ``ledger`` command speaks: rich tables for people, JSON for scripts, errors on stderr.

Commands fetch plain data from the application or the read models and hand it to
one of these; nothing here opens a store.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ledger.domain.errors import LedgerError

err = Console(stderr=True, soft_wrap=True)  # one error, one line: scripts grep stderr
out = Console()
T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error for people and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def emit_json(obj: Any) -> None:
    """Write one JSON document as one line on stdout."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def required(found: T | None, message: str) -> T:
    """``found``, unless it is None: then ``message`` as the error, exit 1."""
    if found is None:
        fail(message)
    return found


def show(found: Any, as_json: bool, for_people: Callable[[Any], None]) -> None:
    """A command's result: one JSON line with ``--json``, else as ``for_people`` prints it."""
    if as_json:
        emit_json(found)
    else:
        for_people(found)


class LedgerGroup(click.Group):
    """Turns LedgerError into a one-line message and exit status 1; a closed pipe ends quietly (141)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            fail(str(exc))
        except BrokenPipeError:
            # The reader went away (`ledger export records | head`): end quietly, as
            # other tools killed by SIGPIPE do. What was written stays written.
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(128 + 13)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            import os

            if os.environ.get("LEDGER_DEBUG"):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (set LEDGER_DEBUG=1 for the traceback)", 70)


def progress_bar(label: str, unit: str, show: bool) -> Progress:
    """A progress bar on stderr: done/total, ``unit``/s and time remaining (the task sets ``rate``)."""
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(),
        TextColumn(f"{{task.fields[rate]}} {unit}/s"), TimeRemainingColumn(),
        console=err, disable=not show, transient=False,
    )


def rate(done: int, elapsed: float) -> str:
    """Items per second for a progress bar, or ``-`` before any time has passed."""
    return f"{done / elapsed:,.0f}" if elapsed else "-"


def print_history(events: list[dict[str, Any]]) -> None:
    table = Table(title=None)
    for column in ("version", "type", "occurred_at", "recorded_at", "flags", "details"):
        table.add_column(column)
    skip = {"type", "version", "occurred_at", "recorded_at", "event_id", "officer_id", "retracted_by", "late"}
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in skip)
        flags = [f"retracted by v{e['retracted_by']}"] if "retracted_by" in e else []
        flags += ["late"] if e.get("late") else []
        table.add_row(str(e["version"]), e["type"], e["occurred_at"], e["recorded_at"], ", ".join(flags) or "-", details)
    out.print(table)


def print_record(record: dict[str, Any]) -> None:
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


def print_competencies(profile: dict[str, Any]) -> None:
    out.print(f"[bold]{profile['officer_id']}[/] on post {profile['post_id'] or '-'}", highlight=False)
    table = Table(title="competencies")
    for column in ("competency", "required", "acquired", "gap"):
        table.add_column(column)
    for cid in sorted(set(profile["required"]) | set(profile["acquired"])):
        table.add_row(cid, str(profile["required"].get(cid, "-")), str(profile["acquired"].get(cid, "-")), str(profile["gaps"].get(cid, "")))
    out.print(table)
    out.print("recommended: " + (", ".join(profile["recommended"]) or "-"), highlight=False)


def print_ministry(found: dict[str, Any]) -> None:
    out.print(f"[bold]{found['ministry_id']}[/]: headcount {found['headcount']:,}", highlight=False)
    table = Table(title="by financial year")
    for column in ("year", "enrolments", "completions", "learning hours", "officers completed"):
        table.add_column(column, justify="right")
    for fy, y in found["years"].items():
        table.add_row(fy, f"{y['enrolments']:,}", f"{y['completions']:,}", f"{y['learning_hours']:,.1f}", f"{y['officers_completed']:,}")
    out.print(table)


def _bar(percent: int, width: int = 20) -> str:
    filled = min(width, percent * width // 100)
    return "█" * filled + "·" * (width - filled) + f" {percent}%"


def print_plan(plan: dict[str, Any]) -> None:
    """A plan with a bar per target (the bar stops at 100%, the figure does not)."""
    out.print(
        f"[bold]{plan['ministry_id']} {plan['fy']}[/]: headcount {plan['headcount']:,}; "
        f"{plan['officers_meeting_hours']:,} met the minimum of {plan['min_learning_hours']:g} learning hours",
        highlight=False,
    )
    table = Table(title="competency targets")
    for column in ("competency", "level", "target", "achieved", "progress"):
        table.add_column(column, justify="left" if column in ("competency", "progress") else "right")
    for t in plan["targets"]:
        table.add_row(t["competency_id"], str(t["level"]), f"{t['officers']:,}", f"{t['achieved']:,}", _bar(t["percent"]))
    out.print(table)


def print_gaps(report: dict[str, Any]) -> None:
    out.print(f"[bold]{report['ministry_id']}[/]: {report['officers_on_posts']:,} officers on posts", highlight=False)
    table = Table(title="competency gaps (current FRAC revisions)")
    for column in ("competency", "required by", "with a gap", "total gap (levels)"):
        table.add_column(column, justify="left" if column == "competency" else "right")
    for row in report["competencies"]:
        table.add_row(row["competency_id"], f"{row['required_officers']:,}", f"{row['officers_with_gap']:,}",
                      f"{row['total_gap']:,}")
    out.print(table)


def print_status(report: dict[str, Any]) -> None:
    """The status report on stdout; its problems on stderr."""
    store = report["store"]
    out.print(f"store: {'ok' if store['ok'] else 'DOWN'} {store.get('events', '')} events, newest recorded {store.get('newest_recorded_at')}", highlight=False)
    if "broker" in report:
        out.print(f"broker {report['broker']['bootstrap']}: {'ok' if report['broker']['ok'] else 'UNREACHABLE'}", highlight=False)
    table = Table()
    for column in ("component", "position", "lag (events)", "lag (s)", "last processed"):
        table.add_column(column)
    rows = ([("relay", report["relay"])] if "relay" in report else []) + list(report.get("projections", {}).items())
    unknown: dict[str, str] = {}
    for name, e in rows:
        seconds = str(e["lag_seconds"])
        if e["lag_seconds"] is None:
            seconds = "unknown*"
            unknown[name] = e.get("lag_seconds_unknown", "not reported")
        table.add_row(name, str(e["position"]), str(e["lag_events"]), seconds, str(e["last_processed_at"] or "never"))
    out.print(table)
    for name, why in unknown.items():
        out.print(f"* {name}: lag in seconds unknown: {why}", highlight=False, markup=False)
    out.print(f"dead letters: {report.get('dead_letters', 0)}", highlight=False)
    for warning in report.get("warnings", []):
        err.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    for problem in report.get("problems", []):
        err.print(f"[bold red]problem:[/] {escape(problem)}", highlight=False)


def print_event_counts(store: str, counts: dict[str, int]) -> None:
    table = Table(title=f"events in {store}")
    table.add_column("type")
    table.add_column("events", justify="right")
    for kind, n in counts.items():
        table.add_row(kind, f"{n:,}")
    table.add_row("[bold]total[/]", f"[bold]{sum(counts.values()):,}[/]")
    out.print(table)


def print_dead_letters(rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(rows)} dead letters")
    for column in ("source", "partition", "position", "officer", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["source"], str(r["partition"]), str(r["position"]), r["officer_id"] or "-", r["reason"])
    out.print(table)


def print_chain_breaks(checked: int, breaks: list[dict[str, Any]]) -> None:
    """Each break, then the verdict, on stderr."""
    for b in breaks:
        err.print(f"{b['entity']} version {b['version']}: {b['problem']}", highlight=False, markup=False)
    err.print(f"verified {checked:,} chains: {'OK' if not breaks else f'{len(breaks)} breaks'}", highlight=False)


def token_line(row: dict[str, Any]) -> str:
    return f"{row['name']:<24} {row['role']:<12} {row['ministry_id'] or '-':<10} {row['officer_id'] or '-':<14} {'revoked' if row['revoked_at'] else 'active'}\n"


def access_line(row: dict[str, Any]) -> str:
    return f"{row['at']}  {row['token_name']:<20} {row['role']:<12} {row['officer_id']:<16} {row['endpoint']}\n"


def tail_line(partition: int, offset: int, who: str, event: dict[str, Any]) -> str:
    if event.get("type") == "Checkpoint":
        return (f"{partition}:{offset:<8} checkpoint position {event['position']} root {event['root'][:16]}… "
                f"at {event['at']} {event['key_id']}\n")
    return f"{partition}:{offset:<8} {who:<16} v{event['version']:<4} {event['type']:<20} {event['occurred_at']}\n"
