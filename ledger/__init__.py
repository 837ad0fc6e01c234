"""The learning-record ledger: an event-sourced system of record for civil-service training."""

__version__ = "0.1.0"
