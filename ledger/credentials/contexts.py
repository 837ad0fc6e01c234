"""The pinned JSON-LD contexts, and the one document loader that serves them.

The files in ``ledger/credentials/contexts/`` are byte-for-byte copies of the contexts
pinned in the shared ``vc/contexts/`` (the W3C VC 2.0 context is renamed ``.json`` so
it ships as package data); ``SHA256SUMS`` lists their digests and every file is
checked against it when first loaded. The loader answers these URLs and refuses every
other one: nothing is ever fetched over the network.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from ledger.domain.errors import LedgerError

VC_V2 = "https://www.w3.org/ns/credentials/v2"
OB_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CLR_V2 = "https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json"
OB_EXTENSIONS = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"

# URL -> file in the package; the only documents the loader will ever return.
FILES = {
    VC_V2: "credentials-v2.json",
    OB_V3: "ob-v3p0-context-3.0.3.json",
    CLR_V2: "clr-v2p0-context-2.0.1.json",
    OB_EXTENSIONS: "ob-v3p0-extensions.json",
}

ACHIEVEMENT_CONTEXT = [VC_V2, OB_V3]
CLR_CONTEXT = [VC_V2, CLR_V2, OB_V3]


class ContextError(LedgerError):
    """A pinned context is missing or altered, or a document asks for another one."""


def checksums() -> dict[str, str]:
    text = resources.files("ledger.credentials").joinpath("contexts", "SHA256SUMS").read_text("ascii")
    sums: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            sums[name.strip()] = digest.strip()
    return sums


@lru_cache(maxsize=1)
def pinned() -> dict[str, Any]:
    """Every pinned context by URL, parsed, after checking each file's sha256."""
    sums = checksums()
    documents: dict[str, Any] = {}
    for url, name in FILES.items():
        data = resources.files("ledger.credentials").joinpath("contexts", name).read_bytes()
        documents[url] = json.loads(checked(name, data, sums))
    return documents


def checked(name: str, data: bytes, sums: dict[str, str]) -> bytes:
    """``data`` if its sha256 is the one SHA256SUMS lists for ``name``, else ContextError."""
    if name not in sums:
        raise ContextError(f"pinned context {name}: not listed in SHA256SUMS")
    if hashlib.sha256(data).hexdigest() != sums[name]:
        raise ContextError(f"pinned context {name}: its sha256 differs from SHA256SUMS (altered copy)")
    return data


def load_document(url: str, options: Any = None) -> dict[str, Any]:
    """pyld's document loader: a pinned context, or ContextError; never the network."""
    documents = pinned()
    if url not in documents:
        raise ContextError(f"@context: {url!r} is not one of the pinned contexts; it is never fetched")
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": copy.deepcopy(documents[url]),  # the processor may rewrite what it is given
        # pyld keeps a resolved remote context for later documents only when it is tagged
        # "static"; these never change, so each is resolved once per process.
        "tag": "static",
    }


def check_contexts(document: Any, path: str = "") -> None:
    """Refuse any ``@context`` that is not a list of pinned URLs, at any depth.

    Inline contexts could redefine terms (or add ``@vocab``, under which nothing is
    ever undefined), so only the pinned files may give terms their meaning.
    """
    if isinstance(document, list):
        for n, item in enumerate(document):
            check_contexts(item, f"{path}[{n}]")
        return
    if not isinstance(document, dict):
        return
    for key, value in document.items():
        where = f"{path}.{key}" if path else key
        if key == "@context":
            if not isinstance(value, list) or not value or value[0] != VC_V2:
                raise ContextError(f"{where}: must be a list of context URLs starting with {VC_V2}")
            for url in value:
                if not isinstance(url, str) or url not in FILES:
                    raise ContextError(f"{where}: {str(url)[:100]!r} is not a pinned context URL")
        else:
            check_contexts(value, where)
