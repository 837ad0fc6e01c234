"""After an erasure: scrubbing the database files of the destroyed key's old bytes."""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("ledger.write.application")


def scrub_after_erasure(recorder: Any, officer_id: str) -> bool:
    """Scrub the store's files (a few attempts); False, logged, if it could not run now.

    The erasure itself has happened either way, and a later erasure's scrub covers it too.
    Run it outside the write lock: a VACUUM takes seconds and writers need not wait.
    """
    for attempt, pause in enumerate((0.2, 1.0, 0.0)):
        try:
            recorder.scrub()
            return True
        except Exception as exc:
            log.warning(
                "officer %s erased, but scrubbing the database files failed (attempt %d): %s",
                officer_id, attempt + 1, exc,
            )
            time.sleep(pause)
    return False
