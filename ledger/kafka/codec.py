"""One Avro codec: parses the schemas once; encodes and decodes single-object messages.

The schemas ship inside the package (``ledger/kafka/schemas/``, package data read through
:mod:`importlib.resources`), so an installed wheel can encode and decode without the
source tree. The repository's top-level ``schemas/`` is the same tree published for
subscribers; ``tests/test_packaging.py`` fails if the two differ by a byte.

Framing is the Avro specification's single-object encoding: the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
parsing canonical form, then the binary datum. A reader finds the writer schema by
fingerprint among every published version (``schemas/history``) and resolves it to
the current schema of the same name.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from ledger.domain.errors import LedgerError

# The packaged schema tree: ``<Name>.avsc`` (current) and ``history/<Name>/vN.avsc``.
# A Traversable, not necessarily a filesystem path (the package may be zipped).
SCHEMAS: Traversable = files("ledger.kafka") / "schemas"
MAGIC = b"\xc3\x01"
_EMPTY = 0xC15D213AA4D7A795
_TABLE: list[int] = []
for _i in range(256):
    _fp = _i
    for _ in range(8):
        _fp = (_fp >> 1) ^ (_EMPTY & -(_fp & 1))
    _TABLE.append(_fp)

# Fields the store keeps as base64 text and the wire carries as raw bytes.
_BYTES_FIELDS = ("name_ct", "email_ct")


class DecodeError(LedgerError):
    """A message is not a single-object-encoded record of a known schema."""


def crc64_avro(data: bytes) -> int:
    """The Avro specification's 64-bit Rabin fingerprint (CRC-64-AVRO)."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint(schema: Any) -> bytes:
    """The 8 little-endian bytes that identify a parsed schema on the wire."""
    canonical = to_parsing_canonical_form(schema)
    return struct.pack("<Q", crc64_avro(canonical.encode("utf-8")))


def _stem(resource: Traversable) -> str:
    return resource.name[: -len(".avsc")]


def _avsc_files(folder: Traversable) -> list[Traversable]:
    """The ``*.avsc`` files directly in ``folder``, sorted by name (none if it is absent)."""
    if not folder.is_dir():
        return []
    return sorted((f for f in folder.iterdir() if f.name.endswith(".avsc") and f.is_file()),
                  key=lambda f: f.name)


def current_schema_files(schema_dir: Traversable) -> list[tuple[str, Traversable]]:
    """``(name, file)`` for each current schema ``<Name>.avsc``, sorted by name."""
    return [(_stem(f), f) for f in _avsc_files(schema_dir)]


def history_schema_files(schema_dir: Traversable, name: str) -> list[Traversable]:
    """Every published version ``history/<name>/vN.avsc`` of one schema, oldest first."""
    found = [f for f in _avsc_files(schema_dir / "history" / name) if f.name.startswith("v")]
    return sorted(found, key=lambda f: int(_stem(f)[1:]))


def _load(path: Traversable) -> Any:
    return fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")))


class Codec:
    """Encodes public events with the current schemas; decodes any published version."""

    def __init__(self, schema_dir: Traversable = SCHEMAS) -> None:
        self.current: dict[str, Any] = {}
        self.writers: dict[bytes, tuple[str, Any]] = {}
        for name, path in current_schema_files(schema_dir):
            schema = _load(path)
            self.current[name] = schema
            self.writers[fingerprint(schema)] = (name, schema)
        history = schema_dir / "history"
        folders = (sorted((d for d in history.iterdir() if d.is_dir()), key=lambda d: d.name)
                   if history.is_dir() else [])
        for folder in folders:
            for path in _avsc_files(folder):
                schema = _load(path)
                self.writers.setdefault(fingerprint(schema), (folder.name, schema))
        if not self.current:
            raise LedgerError(f"no Avro schemas found in {schema_dir}")
        self._fingerprints = {name: fingerprint(s) for name, s in self.current.items()}
        self._fields = {
            name: [f["name"] for f in s["fields"]] for name, s in self.current.items()
        }

    def encode(self, event: dict[str, Any]) -> bytes:
        """A public event (as from :func:`ledger.events.to_public`) as one message value."""
        name = event["type"]
        try:
            schema = self.current[name]
        except KeyError:
            raise LedgerError(f"type: no schema for event {name!r}") from None
        datum = {field: event.get(field) for field in self._fields[name]}
        for field in _BYTES_FIELDS:
            value = datum.get(field)
            if isinstance(value, str):
                datum[field] = base64.b64decode(value)
        out = io.BytesIO()
        out.write(MAGIC)
        out.write(self._fingerprints[name])
        fastavro.schemaless_writer(out, schema, datum)
        return out.getvalue()

    def decode(self, message: bytes) -> dict[str, Any]:
        """A message value back to a public event (``type`` plus the record's fields)."""
        if len(message) < 10 or message[:2] != MAGIC:
            raise DecodeError("message: not Avro single-object encoding (no C3 01 marker)")
        found = self.writers.get(bytes(message[2:10]))
        if found is None:
            raise DecodeError(f"message: unknown writer schema fingerprint {message[2:10].hex()}")
        name, writer = found
        reader = self.current.get(name, writer)
        try:
            record = fastavro.schemaless_reader(io.BytesIO(message[10:]), writer, reader)
        except Exception as exc:  # truncated or corrupt datum
            raise DecodeError(f"message: cannot decode {name}: {exc}") from exc
        assert isinstance(record, dict)
        for field in _BYTES_FIELDS:
            if isinstance(record.get(field), bytes):
                record[field] = base64.b64encode(record[field]).decode("ascii")
        return {"type": name, **record}


@lru_cache(maxsize=1)
def default_codec() -> Codec:
    """The codec for the packaged schemas (``ledger/kafka/schemas/``), parsed once per process."""
    return Codec()
