"""What the subcommands share: the context with settings and the app, and a few small needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from ledger.cli.render import fail
from ledger.config import Settings
from ledger.domain.errors import LedgerError

if TYPE_CHECKING:
    from ledger.audit import AuditReader


class Context:
    """What every subcommand needs: settings read once, the app built lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ledger: Any = None

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            from ledger.application import Ledger

            try:
                self._ledger = Ledger(self.settings)
            except LedgerError:
                raise
            except Exception as exc:  # connection refused, bad path, ...
                raise LedgerError(f"cannot open the event store {self.settings.store!r}: {exc}") from exc
        return self._ledger


def read_models(obj: Context) -> Any:
    """The query side: records, competency profiles, ministries, dead letters."""
    from ledger.db import Database
    from ledger.readmodels import ReadModels

    return ReadModels(Database(obj.settings), obj.ledger)


def audit_reader(obj: Context) -> AuditReader:
    """The audit side: history, a record as of an instant, chain checks, event counts."""
    from ledger.audit import AuditReader

    return AuditReader(obj.ledger)


def not_projected(obj: Context, officer_id: str) -> NoReturn:
    """Exit 1 for an officer missing from a read model, saying whether projecting would help."""
    if obj.ledger.officer_events(officer_id):
        fail(f"officer {officer_id!r} is in the store but not yet in the read model: run `ledger project`")
    fail(f"officer {officer_id!r} is not registered")


def on_sigterm(stop: Any) -> None:
    """SIGTERM (and Ctrl-C) ask the loop to finish its batch and exit 0."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def require_kafka(settings: Settings) -> str:
    """The bootstrap servers, or a LedgerError saying how to get a broker."""
    if not settings.kafka_bootstrap:
        raise LedgerError(
            "LEDGER_KAFKA_BOOTSTRAP is not set: the relay and tail need a broker "
            "(embedded mode has no Kafka; `ledger broker` starts one for trying things out)"
        )
    return settings.kafka_bootstrap


def log_to_stderr() -> None:
    """INFO logs for the long-running loops; the kafka client's own chatter silenced."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
