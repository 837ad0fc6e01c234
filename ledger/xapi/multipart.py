"""multipart/mixed bodies (RFC 2046) for statements with attachments, both ways."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from ledger.xapi.compat import XapiInvalid

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Part:
    headers: dict[str, str]  # names in lower case
    body: bytes


def boundary_of(content_type: str) -> str:
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise XapiInvalid("Content-Type: multipart/mixed needs a boundary")
    return found.group(1).strip()


def parse(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart body, or XapiInvalid when it is not one."""
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].lstrip().startswith(b"--"):
        raise XapiInvalid("body: not a multipart body with this boundary (no closing delimiter)")
    parts = []
    for chunk in chunks[1:-1]:
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        elif chunk.startswith(b"\n"):
            chunk = chunk[1:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.partition(b"\n\n")
            if not sep:
                if chunk.strip():
                    raise XapiInvalid("body: a multipart part has no blank line after its headers")
                head, content = b"", chunk
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        headers: dict[str, str] = {}
        for line in re.split(rb"\r?\n", head):
            if line.strip():
                name, colon, value = line.decode("latin-1").partition(":")
                if not colon:
                    raise XapiInvalid("body: a multipart header line has no colon")
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return parts


def build(parts: list[tuple[dict[str, str], bytes]]) -> tuple[bytes, str]:
    """A multipart/mixed body of these parts; (body, Content-Type)."""
    boundary = "xapi-" + secrets.token_hex(12)
    out = bytearray()
    for headers, content in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode("latin-1")
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f'multipart/mixed; boundary="{boundary}"'
