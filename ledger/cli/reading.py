"""Commands that read the read models: records, competency profiles, ministries, exports."""

from __future__ import annotations

import sys

import click

from ledger.cli.common import Context, audit_reader, projected, read_models
from ledger.cli.render import (
    emit_json,
    print_competencies,
    print_gaps,
    print_ministry,
    print_plan,
    print_record,
    required,
    show,
)
from ledger.domain.values import parse_instant
from ledger.projections.gaps import to_csv


@click.command()
@click.argument("officer_id")
@click.option("--as-of", "as_of", metavar="INSTANT", help="Fold the officer's business history with occurred_at <= INSTANT (ISO 8601 with offset) instead of reading the read model.")
@click.option("--known-at", "known_at", metavar="INSTANT", help="Fold the business history as the ledger knew it at INSTANT: only events recorded by then, and only the retractions recorded by then.")
@click.option("--json", "as_json", is_flag=True, help="The record as JSON.")
@click.pass_obj
def record(obj: Context, officer_id: str, as_of: str | None, known_at: str | None, as_json: bool) -> None:
    """Show OFFICER_ID's learning record.

    Without --as-of and --known-at it comes from the read model (kept by `ledger
    project`); with either it is folded from the event store. --as-of T: the record as
    it was at business time T. --known-at K: what the ledger said at K (late facts
    recorded after K and retractions recorded after K left out). Both: what the ledger
    said at K about T.
    """
    if as_of or known_at:
        when = parse_instant(as_of, "--as-of") if as_of else None
        known = parse_instant(known_at, "--known-at") if known_at else None
        result = required(audit_reader(obj).record(officer_id, when, known),
                          f"officer {officer_id!r} is not registered"
                          + (f" as of {as_of}" if as_of else "") + (f" as known at {known_at}" if known_at else ""))
    else:
        result = projected(obj, officer_id, read_models(obj).record(officer_id))
    show(result, as_json, print_record)


@click.command()
@click.argument("officer_id")
@click.option("--json", "as_json", is_flag=True, help="The profile as JSON.")
@click.pass_obj
def competencies(obj: Context, officer_id: str, as_json: bool) -> None:
    """Show OFFICER_ID's competency profile: FRAC needs of the post, acquired levels, gaps, recommended courses."""
    profile = projected(obj, officer_id, read_models(obj).competency_profile(officer_id))
    show(profile, as_json, print_competencies)


@click.command()
@click.argument("ministry_id")
@click.option("--json", "as_json", is_flag=True, help="The aggregates as JSON.")
@click.pass_obj
def ministry(obj: Context, ministry_id: str, as_json: bool) -> None:
    """Show MINISTRY_ID's headcount and, per financial year, enrolments, completions and hours."""
    found = required(read_models(obj).ministry(ministry_id), f"ministry {ministry_id!r} is not in the read model")
    show(found, as_json, print_ministry)


@click.command()
@click.argument("ministry_id")
@click.argument("fy")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON.")
@click.pass_obj
def plan(obj: Context, ministry_id: str, fy: str, as_json: bool) -> None:
    """Show MINISTRY_ID's Annual Capacity Building Plan for FY (e.g. 2025-26) against what happened.

    Headcount, how many officers met the minimum learning hours in the year, and per
    competency target how many officers reached it there. Exit 1 when no plan was declared.
    """
    found = required(read_models(obj).plan(ministry_id, fy),
                     f"no capacity-building plan of {ministry_id!r} for {fy!r} (declare one with declare_capacity_plan)")
    show(found, as_json, print_plan)


@click.command()
@click.argument("ministry_id")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="The competency rows as CSV, for the Commission.")
@click.pass_obj
def gaps(obj: Context, ministry_id: str, as_json: bool, as_csv: bool) -> None:
    """Show MINISTRY_ID's competency gaps: what its HR cell reports to the Capacity Building Commission.

    For officers on posts now: per competency their posts require (current FRAC
    revision), how many require it, how many fall short, and the total shortfall in levels.
    """
    found = required(read_models(obj).gap_report(ministry_id), f"ministry {ministry_id!r} is not in the read model")
    if as_csv and not as_json:  # --json wins
        sys.stdout.write(to_csv([found]))
    else:
        show(found, as_json, print_gaps)


@click.command()
@click.argument("model", type=click.Choice(["records", "competencies", "ministries", "plans", "gaps"]))
@click.pass_obj
def export(obj: Context, model: str) -> None:
    """Print every row of a read model as JSON Lines on stdout."""
    for row in read_models(obj).export(model):
        emit_json(row)


COMMANDS: tuple[click.Command, ...] = (record, competencies, ministry, plan, gaps, export)
