"""What the recorders keep beside the events, in the events' own transaction (plain values)."""

from __future__ import annotations

from typing import NamedTuple

ACCESS = "officer_access"
ACTORS = "correction_actors"


class Receipt(NamedTuple):
    """An accepted command id: its content digest, keyed by ``officer_id``'s data key if set.

    A command that carried personal data (a registration's name and email) gets an
    HMAC under that officer's data key instead of a plain hash: once the key is
    destroyed on erasure, the receipt can no longer confirm any guess of the content.
    """

    digest: str
    officer_id: str | None = None


class Access(NamedTuple):
    """Whom an officer belongs to now, for access decisions: never read from a lagging read model."""

    ministry_id: str
    erased: bool


class Actor(NamedTuple):
    """Who made a correction (an officer's event ``version``): a token's role and name, or the
    command line (role ``cli``, no name)."""

    officer_id: str
    version: int
    role: str
    token_name: str | None
