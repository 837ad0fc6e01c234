"""What the LRS takes from the statement model (validation and shapes), in one place."""

from __future__ import annotations

from ledger.xapi.errors import XapiInvalid
from ledger.xapi.shape import agent_key, formatted, normalise, parse_accept_language, same_statement
from ledger.xapi.validate import validate_statement

__all__ = ["XapiInvalid", "agent_key", "formatted", "normalise", "parse_accept_language", "same_statement",
           "validate_statement"]
