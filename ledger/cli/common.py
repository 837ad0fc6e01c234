"""What the subcommands share: the context with settings and the app, and a few small needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ledger.cli.render import fail
from ledger.config import Settings
from ledger.domain.errors import LedgerError

if TYPE_CHECKING:
    from ledger.read.audit import AuditReader

F = TypeVar("F", bound="Callable[..., Any]")
T = TypeVar("T")


class Context:
    """What every subcommand needs: settings read once, the app built lazily."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ledger: Any = None

    @property
    def ledger(self) -> Any:
        if self._ledger is None:
            from ledger.write.application import Ledger

            try:
                self._ledger = Ledger(self.settings)
            except LedgerError:
                raise
            except Exception as exc:  # connection refused, bad path, ...
                raise LedgerError(f"cannot open the event store {self.settings.store_shown!r}: "
                                  f"{str(exc).replace(self.settings.store, self.settings.store_shown)}") from exc
        return self._ledger


def read_models(obj: Context) -> Any:
    """The query side: records, competency profiles, ministries, dead letters."""
    from ledger.read.models import ReadModels
    from ledger.store.db import Database

    return ReadModels(Database(obj.settings), obj.ledger)


def audit_reader(obj: Context) -> AuditReader:
    """The audit side: history, a record as of an instant, chain checks, event counts."""
    from ledger.read.audit import AuditReader

    return AuditReader(obj.ledger)


def projected(obj: Context, officer_id: str, found: T | None) -> T:
    """``found`` from a read model; None exits 1, saying whether projecting would help."""
    if found is not None:
        return found
    if obj.ledger.officer_events(officer_id):
        fail(f"officer {officer_id!r} is in the store but not yet in the read model: run `ledger project`")
    fail(f"officer {officer_id!r} is not registered")


def on_sigterm(stop: Any) -> None:
    """SIGTERM (and Ctrl-C) ask the loop to finish its batch and exit 0."""
    import signal

    def handler(_signum: int, _frame: Any) -> None:
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


def metrics_options(command: F) -> F:
    """``--metrics-port`` and ``--metrics-host`` for a long-running command."""
    import click

    command = click.option("--metrics-host", default="127.0.0.1", show_default=True,
                           help="Address of the metrics endpoint.")(command)
    return click.option("--metrics-port", type=int, default=None, metavar="PORT",
                        help="Serve Prometheus metrics at http://HOST:PORT/metrics.")(command)


def issuer_options(command: F) -> F:
    """``--issuer-key``, ``--issuer-did``, ``--issuer-name`` and ``--public-url``: who signs credentials, and where."""
    import click

    for option in reversed((
        click.option("--issuer-key", envvar="LEDGER_ISSUER_KEY", metavar="FILE",
                     help="Ed25519 issuer key file, created on first use (default ~/.config/ledger/issuer-key.pem). "
                          "[env LEDGER_ISSUER_KEY]"),
        click.option("--issuer-did", envvar="LEDGER_ISSUER_DID", metavar="DID",
                     help="Issue as this did:web (default: the did:key of the issuer key). [env LEDGER_ISSUER_DID]"),
        click.option("--issuer-name", envvar="LEDGER_ISSUER_NAME", metavar="NAME",
                     help="The issuer profile's name (default 'iGOT Karmayogi'). [env LEDGER_ISSUER_NAME]"),
        click.option("--public-url", envvar="LEDGER_PUBLIC_URL", metavar="URL",
                     help="Where `ledger serve` is reached: status lists are <URL>/credentials/status/<n> "
                          "(default http://127.0.0.1:8080). [env LEDGER_PUBLIC_URL]"),
    )):
        command = option(command)
    return command


def serve_metrics(obj: Context, host: str, port: int | None, component: str, relay: bool = True,
                  projections: bool = True) -> None:
    """Start this process's /metrics endpoint (positions and lags as ``ledger status`` has them)."""
    if port is None:
        return
    from ledger.monitor.collector import export_status
    from ledger.monitor.collector import serve_metrics as serve

    export_status(obj.ledger, obj.settings, component, relay=relay, projections=projections)
    try:
        serve(port, host)
    except OSError as exc:
        raise LedgerError(f"--metrics-port: cannot listen on {host}:{port} ({exc.strerror})") from None


def log_to_stderr(component: str = "ledger") -> None:
    """INFO logs for the long-running loops, as text or JSON (LEDGER_LOG_FORMAT); kafka's chatter silenced."""
    from ledger.ops.logs import configure

    configure(component)
