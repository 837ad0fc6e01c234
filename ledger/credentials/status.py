"""Revocation with W3C Bitstring Status List v1.0: each credential's status entry, and the lists.

Every credential carries ``credentialStatus``, a ``BitstringStatusListEntry`` with purpose
``revocation`` naming its place in a list published at ``<LEDGER_PUBLIC_URL>/credentials/status/<n>``.
The places come from the ``credential_status`` read model (assigned once, in the store's
log order; see :mod:`ledger.projections.credential_status`): credential ``i`` is position
``i mod LIST_SIZE`` of list ``i // LIST_SIZE``, because ``statusListIndex`` is a position in
the one list's bitstring (so below 131,072 credentials the position is ``i`` itself).

A list is a signed ``BitstringStatusListCredential`` of the same issuer and proof as the
credentials: ``encodedList`` is ``u`` (multibase base64url, no padding) + base64url of the
GZIP of the bitstring, LIST_SIZE bits, bit 0 the leftmost bit of the first byte; a set bit
is a revoked credential. It is a function of the read model (its ``validFrom`` is when the
list last changed, the ``recorded_at`` of that event), so the same events give the same bytes.

The read model is brought up to date from the store's log before it is read here
(:meth:`StatusLists.catch_up`, exactly once under the projection's lock, as ``ledger
project`` applies it): credentials are issued from the store and must never miss a place,
in Kafka mode too, where it is fed beside the topics and may lag them.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger.consumers.log import TypedLogFollower
from ledger.credentials.build import utc_text
from ledger.credentials.contexts import VC_V2
from ledger.credentials.proof import CredentialError
from ledger.projections.credential_status import (
    LIST_SIZE,
    CredentialStatusProjection,
    list_numbers,
    list_state,
    officer_entries,
)
from ledger.projections.runner import Runner
from ledger.store.db import Database

PURPOSE = "revocation"
ENTRY_TYPE = "BitstringStatusListEntry"
LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
PAGE = 2000  # log events per catch-up batch


def list_url(base: str, list_no: int) -> str:
    return f"{base}/credentials/status/{list_no}"


def status_entry(base: str, index: int) -> dict[str, Any]:
    """The ``credentialStatus`` of the credential at ``index`` (its list, and its position there)."""
    list_no, position = divmod(index, LIST_SIZE)
    url = list_url(base, list_no)
    return {"id": f"{url}#{position}", "type": ENTRY_TYPE, "statusPurpose": PURPOSE,
            "statusListIndex": str(position), "statusListCredential": url}


def encode_list(positions: Iterable[int], size: int = LIST_SIZE) -> str:
    """The ``encodedList`` of a bitstring of ``size`` bits with ``positions`` set."""
    bits = bytearray(size // 8)
    for position in positions:
        if not 0 <= position < size:
            raise ValueError(f"position {position} is outside a list of {size} entries")
        bits[position // 8] |= 0x80 >> (position % 8)
    packed = gzip.compress(bytes(bits), compresslevel=9, mtime=0)  # mtime 0: the same bits, the same bytes
    return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")


def decode_list(encoded: str, max_bytes: int = 1 << 24) -> bytes:
    """The bitstring of an ``encodedList``; CredentialError when it is not one."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise CredentialError("encodedList: not multibase base64url (must start with 'u')")
    try:
        packed = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # GZIP only, and bounded
        bits = inflater.decompress(packed, max_bytes)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise CredentialError(f"encodedList: not base64url of a GZIP stream ({exc})") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise CredentialError("encodedList: truncated, or larger than any status list")
    return bits


def is_set(bits: bytes, position: int) -> bool:
    """Bit ``position`` of a bitstring (0: the leftmost bit of the first byte)."""
    if not 0 <= position < len(bits) * 8:
        raise CredentialError(f"statusListIndex {position} is outside the list ({len(bits) * 8} entries)")
    return bool(bits[position // 8] & (0x80 >> (position % 8)))


def list_credential(base: str, list_no: int, valid_from: str, revoked: Sequence[int],
                    issuer: Mapping[str, Any]) -> dict[str, Any]:
    """List ``list_no`` as an unsigned BitstringStatusListCredential (``revoked``: its set positions)."""
    url = list_url(base, list_no)
    return {
        "@context": [VC_V2],
        "id": url,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        # The pinned VC 2.0 context defines no Profile type: the issuer's id and name.
        "issuer": {"id": issuer["id"], "name": issuer["name"]},
        "validFrom": utc_text(valid_from),
        "credentialSubject": {"id": f"{url}#list", "type": "BitstringStatusList", "statusPurpose": PURPOSE,
                              "encodedList": encode_list(revoked)},
    }


class StatusLists:
    """The ``credential_status`` read model, brought up to date from the store's log when read."""

    def __init__(self, ledger: Any, db: Database | None = None) -> None:
        self.ledger = ledger
        self.db = db if db is not None else Database(ledger.settings)
        self._follower = TypedLogFollower(ledger, Runner(self.db, [CredentialStatusProjection()], cache_officers=0),
                                          PAGE)

    def catch_up(self) -> None:
        """Apply what the store's log holds beyond the read model's position (usually nothing)."""
        self._follower.run()

    def indexes(self, officer_id: str, needed: Iterable[tuple[int, str]]) -> dict[tuple[int, str], int]:
        """The indexes of the officer's credentials ``needed`` (by creating version and kind)."""
        wanted = set(needed)
        for attempt in range(2):
            with self.db.reading() as c:
                found = {e.key: e.index for e in officer_entries(c, [officer_id])}
            if wanted <= set(found):
                return found
            if attempt == 0:
                self.catch_up()  # events stored since the read model was last brought up
        missing = ", ".join(f"{kind} of version {version}" for version, kind in sorted(wanted - set(found)))
        raise CredentialError(f"no status list index for {officer_id}'s {missing}: the credential_status "
                              "read model does not follow the store (`ledger rebuild credential_status`)")

    def state(self, list_no: int) -> tuple[str, list[int]] | None:
        """List ``list_no``'s last change and revoked positions, up to date (None when it has no entry)."""
        self.catch_up()
        with self.db.reading() as c:
            return list_state(c, list_no)

    def numbers(self) -> list[int]:
        """The lists that hold at least one entry, up to date."""
        self.catch_up()
        with self.db.reading() as c:
            return list_numbers(c)
