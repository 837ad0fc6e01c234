"""The xAPI Learning Record Store on the command line: ``ledger xapi unmapped``."""

from __future__ import annotations

import click
from rich.console import Console

from ledger.cli.common import Context
from ledger.cli.render import emit_json
from ledger.store.db import Database
from ledger.xapi.query import unmapped as unmapped_rows
from ledger.xapi.store import iso_of


@click.group()
def xapi() -> None:
    """The xAPI Learning Record Store at /xapi on `ledger serve`."""


@xapi.command("unmapped")
@click.option("--limit", default=100, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def unmapped(obj: Context, limit: int, as_json: bool) -> None:
    """Statements that report an officer's learning but that the ledger's rules refused: stored
    by the LRS all the same, not in the learning record; each with the rule it broke."""
    db = Database(obj.settings)
    try:
        rows = unmapped_rows(db, limit)
    finally:
        db.close()
    for row in rows:
        row["stored"] = iso_of(row.pop("stored_us"))
    if as_json:
        emit_json(rows)
        return
    out = Console(highlight=False)
    if not rows:
        out.print("no unmapped statements")
    for row in rows:
        out.print(f"{row['stored']}  {row['statement_id']}  {row['writer']}  {row['command']}: {row['rule']}",
                  markup=False)


COMMANDS: tuple[click.Command, ...] = (xapi,)
