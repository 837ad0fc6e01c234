"""Domain errors. Every rejected command raises one of these; its message names the field or rule."""


class LedgerError(Exception):
    """Root of every error the ledger reports to a user."""


class InvalidCommand(LedgerError):
    """A command is malformed: unknown, missing or wrongly typed field, value out of range."""


class RuleViolation(LedgerError):
    """A well-formed command breaks a rule of the domain."""


class NotFound(RuleViolation):
    """A command names an entity that does not exist."""


class AlreadyExists(RuleViolation):
    """A command would define an entity that is already defined."""


class OfficerErasedError(RuleViolation):
    """A command names an officer whose personal data was erased."""


class NotPermitted(LedgerError):
    """The command's sender (an API token's role) may not send that command."""


class DuplicateCommandConflict(RuleViolation):
    """A command_id was already accepted with different content."""
