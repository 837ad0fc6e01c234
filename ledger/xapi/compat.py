"""Where the LRS takes statement validation and shape helpers from (one place to switch)."""

from __future__ import annotations

from ledger.xapi.errors import XapiInvalid
from ledger.xapi.interim import agent_key, formatted, parse_accept_language, same_statement
from ledger.xapi.validate import validate_statement

__all__ = ["XapiInvalid", "agent_key", "formatted", "parse_accept_language", "same_statement", "validate_statement"]
