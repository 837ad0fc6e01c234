"""Many checkpoints at once: each against the store, and all of them against each other.

``ledger verify --checkpoints FILE|-`` reads checkpoints as JSON Lines (for example all
that was read from ``<prefix>.checkpoints``). Each one must carry a valid signature
under the trusted public key, and the store's history up to its position must have
exactly its root. Then the validly signed ones are compared with each other: two
checkpoints at the same position with different roots are a fork, and so is a later
checkpoint whose history does not extend an earlier one's. That is checked directly
wherever the store holds events at both positions: the log chain is recomputed from the
earlier checkpoint's root over the store's events between them and must reach the
later checkpoint's root. When the store itself holds the later checkpoint's history,
such a failure proves the two signed histories part at or before the earlier position.

One pass over the events (two hash links per event, plus one per extra root at a
position), whatever the number of checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.integrity import chain
from ledger.integrity.checkpoint import (
    CheckpointError,
    checked,
    iter_events,
    key_id_of,
    signature_ok,
)


@dataclass(frozen=True)
class Finding:
    """One problem: ``kind`` is unreadable, signature, store or fork."""

    kind: str
    position: int | None
    problem: str
    checkpoints: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "position": self.position, "problem": self.problem}
        if self.checkpoints:
            out["checkpoints"] = list(self.checkpoints)
        return out


def read_lines(data: bytes) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Checkpoints from JSON Lines; a line may also be a topic record (``"type": "Checkpoint"``)
    or ``ledger tail --json``'s envelope (``{"partition", "offset", "event"}``)."""
    found: list[dict[str, Any]] = []
    problems: list[Finding] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
            if isinstance(value, dict) and isinstance(value.get("event"), dict) and "offset" in value:
                value = value["event"]
            if isinstance(value, dict) and value.get("type") == "Checkpoint":
                value = {k: v for k, v in value.items() if k != "type"}
            found.append(checked(value))
        except orjson.JSONDecodeError as exc:
            problems.append(Finding("unreadable", None, f"line {number}: not JSON ({exc})"))
        except CheckpointError as exc:
            problems.append(Finding("unreadable", None, f"line {number}: {exc}"))
    return found, problems


def _brief(body: dict[str, Any]) -> dict[str, Any]:
    return {"position": body["position"], "root": body["root"], "at": body["at"]}


@dataclass
class _Group:
    """The validly signed checkpoints at one position, by root."""

    position: int
    by_root: dict[str, dict[str, Any]] = field(default_factory=dict)
    store_root: str | None = None  # the store's recomputed root, when it has an event exactly here


def check(recorder: Any, bodies: Iterable[dict[str, Any]], public: Ed25519PublicKey) -> list[Finding]:
    """Every problem with these checkpoints, against the store and against each other ([] = none)."""
    findings: list[Finding] = []
    groups: dict[int, _Group] = {}
    for body in bodies:
        if not signature_ok(body, public):
            findings.append(Finding("signature", body["position"], (
                f"checkpoint at position {body['position']} (signed at {body['at']}): its signature does not "
                f"verify with key {key_id_of(public)} (it names {body['key_id']})"), (_brief(body),)))
            continue
        group = groups.setdefault(body["position"], _Group(body["position"]))
        group.by_root.setdefault(body["root"], body)
    ordered = [groups[p] for p in sorted(groups)]
    for group in ordered:
        if len(group.by_root) > 1:
            findings.append(Finding("fork", group.position, (
                f"{len(group.by_root)} validly signed checkpoints at position {group.position} have different "
                f"roots: {', '.join(r[:16] + '…' for r in group.by_root)}"),
                tuple(_brief(b) for b in group.by_root.values())))
    findings += _walk(recorder, ordered)
    return findings


def _walk(recorder: Any, ordered: list[_Group]) -> list[Finding]:
    """One pass over the store: each group's store root, and the links between covered groups."""
    findings: list[Finding] = []
    store = chain.GENESIS
    bridges: dict[str, bytes] = {}  # from each root of the last covered group, over the events since
    earlier: _Group | None = None
    pending = iter(ordered)
    group = next(pending, None)
    last = 0
    for position, s in iter_events(recorder):
        while group is not None and group.position < position:
            earlier = _close(group, last, store, bridges, earlier, findings)
            group = next(pending, None)
        if group is None:
            break
        store = chain.link_of(store, s)
        bridges = {root: chain.link_of(h, s) for root, h in bridges.items()}
        last = position
    while group is not None:
        earlier = _close(group, last, store, bridges, earlier, findings)
        group = next(pending, None)
    return findings


def _close(group: _Group, last: int, store: bytes, bridges: dict[str, bytes], earlier: _Group | None,
           findings: list[Finding]) -> _Group | None:
    """Judge ``group`` once every event up to its position is folded; the covered group to bridge from next."""
    if last != group.position:
        for body in group.by_root.values():
            findings.append(Finding("store", group.position, (
                f"checkpoint at position {group.position} (signed at {body['at']}): history truncated or "
                f"removed, no event at position {group.position} (the last one at or before it is {last})"),
                (_brief(body),)))
        return earlier
    group.store_root = store.hex()
    for root, body in group.by_root.items():
        if root != group.store_root:
            findings.append(Finding("store", group.position, (
                f"checkpoint at position {group.position} (signed at {body['at']}): the store's history up to "
                f"it differs (recomputed root {group.store_root[:16]}…, signed {root[:16]}…)"), (_brief(body),)))
    if earlier is not None:
        findings += _forks_between(earlier, group, bridges)
    bridges.clear()
    bridges.update({root: bytes.fromhex(root) for root in group.by_root})
    return group


def _forks_between(earlier: _Group, later: _Group, bridges: dict[str, bytes]) -> list[Finding]:
    found = []
    for root, body in later.by_root.items():
        for old_root, reached in bridges.items():
            if reached.hex() == root:
                continue
            old = earlier.by_root[old_root]
            why = ("the store holds the later one's history, which does not pass through the earlier root: "
                   f"the two signed histories part at or before position {earlier.position}"
                   if later.store_root == root else
                   "recomputed from the earlier root over the store's events between them, the chain does not "
                   "reach the later root: a fork, or those events were altered since")
            found.append(Finding("fork", later.position, (
                f"the checkpoint at position {later.position} (signed at {body['at']}) does not extend the one "
                f"at position {earlier.position} (signed at {old['at']}): {why}"), (_brief(old), _brief(body))))
    return found
