"""Health and lag of the relay and each projection, for people and for health checks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ledger.config import Settings
from ledger.credentials.stored import PROJECTION
from ledger.domain.values import parse_instant
from ledger.store.db import RELAY_CHECKPOINT_REFUSED as REFUSED
from ledger.store.db import Database


def _recorded_at(ledger: Any, position: int) -> datetime | None:
    """When the event at notification id ``position`` was recorded."""
    if position < 1:
        return None
    page = ledger.read_log(position - 1, 1)
    return parse_instant(page[0][1]["recorded_at"]) if page else None


def _lag(ledger: Any, newest: int, newest_at: datetime | None, position: int) -> dict[str, Any]:
    # Counted, not subtracted: PostgreSQL's notification ids have gaps (rolled-back inserts).
    lag_events = ledger.recorder.count_notifications(position, newest) if newest > position else 0
    lag_seconds = 0.0
    if lag_events and newest_at is not None:
        # Behind by the age difference between the newest event and the first unprocessed one.
        first_unprocessed = _recorded_at(ledger, position + 1)
        if first_unprocessed is not None:
            lag_seconds = max((newest_at - first_unprocessed).total_seconds(), 0.0)
    return {"position": position, "lag_events": lag_events, "lag_seconds": round(lag_seconds, 3)}


def _stuck(entry: dict[str, Any], now: datetime, stuck_after: float) -> bool:
    if not entry["lag_events"]:
        return False
    last = entry.get("last_processed_at")
    return last is None or (now - parse_instant(last)).total_seconds() > stuck_after


def _relayed_ends(db: Database, prefix: str) -> dict[tuple[str, int], int]:
    """Partition ends as acknowledged to the relay (empty if it never ran against this database)."""
    with db.reading() as c:
        c.execute("SELECT topic, part, next_offset FROM ledger_relay_offsets")
        return {(t, int(p)): int(o) for t, p, o in c.fetchall() if t.startswith(prefix + ".")}


def _kafka_lag(settings: Settings, offsets: dict[tuple[str, int], int]) -> int:
    from ledger.kafka.client import make_consumer, officers_topic, partitions_of, reference_topic

    consumer = make_consumer(settings.kafka_bootstrap or "")
    try:
        parts = [tp for t in (officers_topic(settings.topic_prefix), reference_topic(settings.topic_prefix))
                 for tp in partitions_of(consumer, t, timeout=5)]
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
    return sum(max(end - offsets.get((tp.topic, tp.partition), 0), 0) for tp, end in ends.items())


def _partitions(mine: dict[tuple[str, int], int], relayed: dict[tuple[str, int], int]) -> list[dict[str, Any]]:
    """Per topic partition: the projection's next offset and what it has not consumed of the relayed."""
    return [
        {"topic": topic, "partition": part, "position": mine.get((topic, part), 0),
         "lag_events": max(relayed.get((topic, part), 0) - mine.get((topic, part), 0), 0)}
        for topic, part in sorted(set(mine) | set(relayed))
    ]


def _kafka_lag_seconds(entry: dict[str, Any]) -> None:
    """Lag seconds of a Kafka-mode projection: 0 when caught up, else unknown and why."""
    if entry["lag_events"] == 0:
        entry["lag_seconds"] = 0.0
    elif entry["lag_events"] is None:
        entry["lag_seconds_unknown"] = "lag in events is unknown (the relay never ran against this database)"
    else:
        # Offsets are not store positions: when the first unconsumed message was recorded
        # is known only to the broker's copy of it.
        entry["lag_seconds_unknown"] = "Kafka mode while behind: the age of unconsumed messages is in the broker, not the store"


def _kafka_entry(settings: Settings, mine: dict[tuple[str, int], int], relayed: dict[tuple[str, int], int],
                 broker_ok: bool) -> dict[str, Any]:
    """A Kafka-mode projection's position (summed over partitions) and lag."""
    entry: dict[str, Any] = {"position": sum(mine.values()), "lag_seconds": None, "lag_events": None}
    if relayed:
        # Messages the relay had acknowledged that this projection has not consumed.
        entry["lag_events"] = sum(max(end - mine.get(key, 0), 0) for key, end in relayed.items())
        entry["partitions"] = _partitions(mine, relayed)
    elif broker_ok:
        try:
            # Without the relay's record, ask the broker; some brokers
            # under-report end offsets, so this is a lower bound.
            entry["lag_events"] = _kafka_lag(settings, mine)
        except Exception as exc:
            entry["error"] = str(exc)
    _kafka_lag_seconds(entry)
    return entry


def _history(settings: Settings, db: Database, start: dict[tuple[str, int], int]) -> dict[str, Any]:
    """Whether the topics still hold what the consumers' offsets say they read, and keep it:
    the same topics (ids), nothing deleted before the offsets, unlimited retention."""
    from ledger.kafka.client import (
        checkpoints_topic,
        make_consumer,
        officers_topic,
        partitions_of,
        reference_topic,
    )
    from ledger.kafka.history import (
        describe,
        identity_problems,
        log_start_problems,
        recorded_ids,
        retention_problems,
    )

    bootstrap, prefix = settings.kafka_bootstrap or "", settings.topic_prefix
    consumed = [officers_topic(prefix), reference_topic(prefix)]
    try:
        described = describe(bootstrap, [*consumed, checkpoints_topic(prefix)])
        existing = [t for t in consumed if t in described.ids]  # none before the relay's first run
        consumer = make_consumer(bootstrap)
        try:
            parts = [tp for t in existing for tp in partitions_of(consumer, t, timeout=5)]
            earliest = {(tp.topic, tp.partition): int(o) for tp, o in consumer.beginning_offsets(parts).items()}
            ends = None
            if any(described.ids[t] is None for t in existing):
                ends = {(tp.topic, tp.partition): int(o) for tp, o in consumer.end_offsets(parts).items()}
        finally:
            consumer.close()
    except Exception as exc:
        return {"problems": [], "warnings": [f"cannot check the topics' history: {type(exc).__name__}: {exc}"]}
    mine = {k: v for k, v in start.items() if k[0] in existing}
    with db.reading() as c:
        recorded = recorded_ids(c)
    return {
        "topics": {t: {"topic_id": described.ids.get(t), "recorded_id": recorded.get(t)} for t in existing},
        "problems": identity_problems(recorded, {t: described.ids[t] for t in existing}, mine, ends)
        or log_start_problems(earliest, mine),
        "warnings": retention_problems(described, [t for t in described.ids]),
    }


def _broker(bootstrap: str) -> dict[str, Any]:
    from ledger.kafka.client import check_reachable

    try:
        check_reachable(bootstrap)
        return {"ok": True, "bootstrap": bootstrap}
    except Exception as exc:
        return {"ok": False, "bootstrap": bootstrap, "error": str(exc)}


def _positions(report: dict[str, Any], ledger: Any, settings: Settings, newest: int,
               newest_at: datetime | None) -> None:
    """The relay's and each projection's position and lag, and the dead letters, into ``report``."""
    from ledger.projections.runner import Runner

    db = Database(settings)
    runner = Runner(db)
    with db.reading() as c:
        c.execute("SELECT name, position, updated_at FROM ledger_positions")
        positions = {r[0]: (int(r[1]), r[2]) for r in c.fetchall()}
        c.execute("SELECT projection, MAX(updated_at) FROM ledger_offsets GROUP BY projection")
        updated = {r[0]: r[1] for r in c.fetchall()}
    offsets = runner.offsets()

    if settings.kafka_bootstrap or "relay" in positions or REFUSED in positions:
        position, at = positions.get("relay", (0, None))
        report["relay"] = {**_lag(ledger, newest, newest_at, position), "last_processed_at": at}
        if REFUSED in positions:  # written by the relay itself (ledger.kafka.relay)
            report["relay"]["checkpoint_refused"] = {"position": positions[REFUSED][0],
                                                     "since": positions[REFUSED][1]}

    relayed = _relayed_ends(db, settings.topic_prefix) if settings.kafka_bootstrap else {}
    projections = {}
    for projection in runner.projections:
        mine = offsets.get(projection.name, {})
        if settings.kafka_bootstrap and not projection.follows_log:
            entry = _kafka_entry(settings, mine, relayed, report["broker"]["ok"])
        else:
            # A projection that follows the log does so in Kafka mode too (``ledger project``).
            entry = _lag(ledger, newest, newest_at, mine.get(("log", 0), 1) - 1)
        entry["last_processed_at"] = updated.get(projection.name)
        projections[projection.name] = entry
    # The issuing worker's read model, once one has run (only a process with the issuer key applies it).
    issued = offsets.get(PROJECTION, {}).get(("log", 0))
    if issued is not None:
        projections[PROJECTION] = {**_lag(ledger, newest, newest_at, issued - 1),
                                   "last_processed_at": updated.get(PROJECTION)}
    report["projections"] = projections
    report["dead_letters"] = runner.dead_letter_count()
    if settings.kafka_bootstrap and report["broker"]["ok"]:
        report["kafka_history"] = _history(settings, db, runner.start_offsets())
    db.close()


def _problems(report: dict[str, Any], now: datetime, stuck_after: float) -> list[str]:
    """What is down, of unknown lag, or behind and not moving."""
    problems = []
    if report.get("broker", {}).get("ok") is False:
        problems.append("broker unreachable")
    problems.extend(f"consumers: {p}" for p in report.get("kafka_history", {}).get("problems", []))
    components: list[tuple[str, dict[str, Any]]] = list(report["projections"].items())
    if "relay" in report:
        components.insert(0, ("relay", report["relay"]))
    for name, entry in components:
        if entry.get("lag_events") is None:
            problems.append(f"{name}: lag unknown")
        elif _stuck(entry, now, stuck_after):
            problems.append(f"{name}: {entry['lag_events']} events behind and not moving")
    refused = report.get("relay", {}).get("checkpoint_refused")
    if refused is not None:
        problems.append(
            f"relay: signs no checkpoints since {refused['since']}: the store's history no longer extends the "
            f"checkpoint it signed last (fork at position {refused['position']}); see the relay's log"
            if refused["position"] else
            f"relay: signs no checkpoints since {refused['since']}: its last-checkpoint file cannot be used; "
            "see the relay's log")
    return problems


def collect(ledger: Any, settings: Settings, stuck_after: float = 60.0) -> dict[str, Any]:
    """Everything ``ledger status`` reports; ``ok`` is False when something is stuck or down."""
    now = datetime.now(timezone.utc)
    report: dict[str, Any] = {"checked_at": now.isoformat(), "mode": "kafka" if settings.kafka_bootstrap else "embedded"}
    try:
        newest = int(ledger.recorder.max_notification_id() or 0)
        newest_at = _recorded_at(ledger, newest)
        report["store"] = {"ok": True, "events": newest, "newest_recorded_at": newest_at.isoformat() if newest_at else None}
    except Exception as exc:
        report["store"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        report["ok"] = False
        return report
    if settings.kafka_bootstrap:
        report["broker"] = _broker(settings.kafka_bootstrap)
    _positions(report, ledger, settings, newest, newest_at)
    report["problems"] = _problems(report, now, stuck_after)
    # What may go wrong but has not: the topics' retention (nothing is lost yet), or that it cannot be checked.
    report["warnings"] = report.get("kafka_history", {}).get("warnings", [])
    report["ok"] = not report["problems"]
    return report
