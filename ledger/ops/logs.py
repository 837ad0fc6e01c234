"""Logs of the long-running processes: readable text by default, JSON Lines for machines.

``LEDGER_LOG_FORMAT=json`` gives one JSON object per line with ``time`` (UTC, ISO
8601), ``level``, ``component`` (relay, projector, api, supervisor, ...), ``logger``,
``message`` and, when the record carries them, ids: ``officer``, ``position``,
``partition``, ``topic``, ``projection``, ``request_id``, ``child``, ``pid``. Pass ids
with ``log.info("...", extra={"officer": officer_id})``; only the ids named in
``IDS`` are ever emitted, so a stray ``extra`` cannot put a personal field in a log.

Never personal data: the ledger logs ids and counts, never names or emails, and as a
second line of defence anything shaped like an email address in a message or an
error is replaced by ``<email>`` in both formats.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from datetime import datetime, timezone
from typing import IO, Any

IDS = ("officer", "position", "partition", "topic", "projection", "request_id", "child", "pid", "status", "route")
EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(component)s %(name)s: %(message)s"

# The request being answered, set by the API's middleware for the logs written meanwhile.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("ledger_request_id", default=None)


def scrub(text: str) -> str:
    """``text`` with anything shaped like an email address replaced."""
    return EMAIL.sub("<email>", text)


class _Context(logging.Filter):
    """Stamps each record with the process's component and the current request id."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": getattr(record, "component", None),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key in IDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            out["error"] = type(record.exc_info[1]).__name__
            out["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The readable default: time, level, component, logger, message, then ids as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = " ".join(f"{key}={getattr(record, key)}" for key in IDS if getattr(record, key, None) is not None)
        first, nl, rest = text.partition("\n")  # ids before a traceback, on the first line
        return scrub(f"{first} {ids}{nl}{rest}" if ids else text)


def configure(component: str, fmt: str | None = None, stream: IO[str] | None = None,
              level: int = logging.INFO) -> logging.Handler:
    """Send the process's logs to ``stream`` (stderr) as text or JSON (``LEDGER_LOG_FORMAT``).

    Replaces earlier handlers of the root logger, so calling it again (a supervisor's
    child, a test) leaves one handler. The kafka client's own chatter is silenced.
    """
    fmt = (fmt or os.environ.get("LEDGER_LOG_FORMAT") or "text").lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_Context(component))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return handler
