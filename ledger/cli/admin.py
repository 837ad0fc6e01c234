"""Commands for administrators: DPDP erasure and API tokens."""

from __future__ import annotations

import sys

import click

from ledger.cli.common import Context
from ledger.cli.render import emit_json, err, fail, token_line
from ledger.domain.errors import LedgerError
from ledger.domain.values import ERASURE_REASONS, check_id


def _ticket(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An id (as every id of the ledger), else a usage error (exit 2) before anything is erased."""
    if value is None:
        return None
    try:
        return check_id(value, "ticket")
    except LedgerError as exc:
        raise click.BadParameter(str(exc).removeprefix("ticket: ")) from None


@click.command()
@click.argument("officer_id")
@click.option("--reason", required=True, type=click.Choice(ERASURE_REASONS),
              help="Why, a code (kept in the OfficerErased event; never free text).")
@click.option("--ticket", callback=_ticket, metavar="ID",
              help="An optional reference kept with it, e.g. a grievance or order number (an id).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def erase(obj: Context, officer_id: str, reason: str, ticket: str | None, yes: bool) -> None:
    """Erase OFFICER_ID's personal data for good (DPDP).

    Destroys the officer's data key (so every copy of the encrypted name and email,
    in the store and on the topics, becomes unreadable), records OfficerErased,
    scrubs the database files of the key's old bytes, and refuses later commands
    for the officer. Learning facts and aggregates stay. Run `ledger project`
    afterwards to clear the read models.
    """
    if not yes and sys.stdin.isatty():
        click.confirm(f"Erase the personal data of {officer_id} for good?", abort=True)
    scrubbed = obj.ledger.erase(officer_id, reason, ticket)
    err.print(f"erased {officer_id}: data key destroyed, OfficerErased recorded", highlight=False)
    if not scrubbed:
        fail("the database files could not be scrubbed now (another process holds the database); "
             "the key is destroyed, but its old bytes may remain until the next erasure or VACUUM")


@click.group()
def token() -> None:
    """Create, list and revoke API bearer tokens."""


@token.command("create")
@click.option("--role", required=True, type=click.Choice(["ingest", "registrar", "officer", "ministry_hr", "cbc", "auditor", "admin", "lrs"]))
@click.option("--ministry", "ministry_id", help="The ministry (ministry_hr).")
@click.option("--officer", "officer_id", help="The officer (officer role).")
@click.option("--name", required=True, help="A unique name; it appears in the access log.")
@click.pass_obj
def token_create(obj: Context, role: str, ministry_id: str | None, officer_id: str | None, name: str) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from ledger.api.auth import create_token
    from ledger.store.db import Database

    sys.stdout.write(create_token(Database(obj.settings), name, role, ministry_id, officer_id) + "\n")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(obj: Context, name: str) -> None:
    """Revoke the token called NAME."""
    from ledger.api.auth import revoke_token
    from ledger.store.db import Database

    revoke_token(Database(obj.settings), name)
    err.print(f"revoked {name}")


@token.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def token_list(obj: Context, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    from ledger.api.auth import list_tokens
    from ledger.store.db import Database

    for row in list_tokens(Database(obj.settings)):
        if as_json:
            emit_json(row)
        else:
            sys.stdout.write(token_line(row))


COMMANDS: tuple[click.Command, ...] = (erase, token)
