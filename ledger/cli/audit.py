"""Commands for auditors: an officer's history, the hash chains, who read what, what could not be applied."""

from __future__ import annotations

import sys

import click

from ledger.cli.common import Context, read_models
from ledger.cli.render import (
    access_line,
    emit_json,
    fail,
    print_chain_breaks,
    print_dead_letters,
    print_history,
)


@click.command()
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
        print_history(events)


@click.command()
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
        print_chain_breaks(checked, breaks)
    sys.exit(1 if breaks else 0)


@click.command("access-log")
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
            sys.stdout.write(access_line(row))


@click.command("dead-letters")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
@click.pass_obj
def dead_letters(obj: Context, as_json: bool) -> None:
    """List events the projections could not apply (and the officers held back behind them)."""
    rows = read_models(obj).dead_letters()
    if as_json:
        for row in rows:
            emit_json(row)
    else:
        print_dead_letters(rows)


COMMANDS: tuple[click.Command, ...] = (history, verify, access_log, dead_letters)
