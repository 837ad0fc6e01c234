"""Prometheus metrics of the ledger: one registry, every metric named here.

Naming follows the Prometheus conventions: counters end in ``_total``, durations are
``_seconds`` histograms, sizes are plain histograms; labels are low-cardinality only
(event or command type, rejection reason, projection, topic, partition, route
template, method, status). No label or value ever holds an officer id, a name or an
email: an officer's path is counted under its route template (``/officers/{officer_id}/record``).

Hot paths count per batch, never per event with a label lookup each; the positions
and lags come from the same code as ``ledger status`` at scrape time
(``ledger.monitor.collector``), so the two can never disagree.

This module imports nothing of the ledger, so every layer may count into it.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

# Batch and request durations: from a millisecond to a minute.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

# ---- the write side -------------------------------------------------------------

EVENTS_WRITTEN = Counter(
    "ledger_events_written_total", "Events stored, by event type.", ["type"], registry=REGISTRY
)
COMMANDS = Counter(
    "ledger_commands_total", "Commands answered, by command type and status (accepted, duplicate, rejected).",
    ["type", "status"], registry=REGISTRY,
)
COMMANDS_REJECTED = Counter(
    "ledger_commands_rejected_total", "Rejected commands, by command type and reason (the error's class).",
    ["type", "reason"], registry=REGISTRY,
)

# ---- group commit (the API's online writes) --------------------------------------

GROUP_COMMIT_COMMANDS = Histogram(
    "ledger_group_commit_batch_commands", "Commands per group-commit transaction.",
    buckets=SIZE_BUCKETS, registry=REGISTRY,
)
GROUP_COMMIT_REQUESTS = Histogram(
    "ledger_group_commit_batch_requests", "Requests sharing one group-commit transaction.",
    buckets=SIZE_BUCKETS, registry=REGISTRY,
)
GROUP_COMMIT_WAIT = Histogram(
    "ledger_group_commit_wait_seconds", "From a request's submission until its commands are durable.",
    buckets=DURATION_BUCKETS, registry=REGISTRY,
)
GROUP_COMMIT_DURATION = Histogram(
    "ledger_group_commit_duration_seconds", "Time to apply and commit one group-commit batch.",
    buckets=DURATION_BUCKETS, registry=REGISTRY,
)

# ---- relay ------------------------------------------------------------------------

RELAY_PUBLISHED = Counter(
    "ledger_relay_published_total", "Events the relay published and the broker acknowledged.", registry=REGISTRY
)
RELAY_BATCH_DURATION = Histogram(
    "ledger_relay_batch_duration_seconds", "Time from one saved relay position to the next: publishing and acknowledging a batch.",
    buckets=DURATION_BUCKETS, registry=REGISTRY,
)
RELAY_BROKER_ERRORS = Counter(
    "ledger_relay_broker_errors_total", "Publish attempts that failed because the broker did not answer.",
    registry=REGISTRY,
)
RELAY_CHECKPOINTS = Counter(
    "ledger_relay_checkpoints_total", "Signed checkpoints published.", registry=REGISTRY
)
RELAY_CHECKPOINT_REFUSED = Gauge(
    "ledger_relay_checkpoint_refused",
    "1 while the relay signs no checkpoint: the store's history no longer extends the one it signed last "
    "(a fork), or its last checkpoint file cannot be used; 0 otherwise.",
    registry=REGISTRY,
)

# ---- projections and consumers ----------------------------------------------------

PROJECTION_EVENTS = Counter(
    "ledger_projection_events_total", "Events applied, by projection.", ["projection"], registry=REGISTRY
)
PROJECTION_BATCH_DURATION = Histogram(
    "ledger_projection_batch_duration_seconds", "Time to apply one batch to every projection and commit it.",
    buckets=DURATION_BUCKETS, registry=REGISTRY,
)
DEAD_LETTERS_WRITTEN = Counter(
    "ledger_dead_letters_written_total", "Messages put in the dead-letter table, by reason.",
    ["reason"], registry=REGISTRY,
)
CONSUMER_MESSAGES = Counter(
    "ledger_consumer_messages_total", "Kafka messages consumed (polled and decoded), by topic and partition.",
    ["topic", "partition"], registry=REGISTRY,
)

# ---- HTTP API ---------------------------------------------------------------------

HTTP_DURATION = Histogram(
    "ledger_http_request_duration_seconds", "HTTP request durations, by route template, method and status.",
    ["route", "method", "status"], buckets=DURATION_BUCKETS, registry=REGISTRY,
)
XAPI_UNMAPPED = Counter(
    "ledger_xapi_unmapped_total",
    "xAPI statements that map to a ledger command the ledger's rules refused (stored all the same), by verb.",
    ["verb"], registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "ledger_auth_failures_total", "Requests refused by authentication or authorization, by reason.",
    ["reason"], registry=REGISTRY,
)

# ---- the process ------------------------------------------------------------------

UP = Gauge("ledger_component_info", "Which ledger component this process runs.", ["component"], registry=REGISTRY)


def dead_letter_reason(reason: str) -> str:
    """A dead letter's reason text reduced to its kind (the text names officers)."""
    if reason.startswith("held back"):
        return "held_back"
    if reason.startswith("version gap"):
        return "version_gap"
    return "undecodable"


def count_commands(answers: Iterable[tuple[str, str, str | None]]) -> None:
    """Count one batch of (command type, status, rejection reason) answers."""
    tally = Tally(answers)
    for (kind, status, reason), n in tally.items():
        COMMANDS.labels(kind, status).inc(n)
        if reason is not None:
            COMMANDS_REJECTED.labels(kind, reason).inc(n)


def count_events(types: Iterable[str]) -> None:
    """Count one transaction's stored events by type."""
    for kind, n in Tally(types).items():
        EVENTS_WRITTEN.labels(kind).inc(n)


SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "info": ("_info",), "summary": ("_sum", "_count", "_created")}


def names() -> set[str]:
    """Every series name this module's metrics export, as PromQL names them (with suffixes)."""
    found: set[str] = set()
    for family in REGISTRY.collect():
        found.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return found
