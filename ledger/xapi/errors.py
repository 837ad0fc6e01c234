"""The error an invalid xAPI statement raises (xAPI 1.0.3 Data 2.2, IEEE 9274.1.1 4.2.1)."""

from ledger.domain.errors import LedgerError


class XapiInvalid(LedgerError):
    """A statement breaks a rule of the xAPI data model; the message names the property path."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
