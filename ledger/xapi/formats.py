"""The formatted string types of xAPI statements, checked without I/O.

xAPI 1.0.3 Data 2.2 (IRIs, RFC 5646 language tags), 2.4.2.3 (mbox, mbox_sha1sum),
2.4.10 / Communication 3.3 (versions), 4.4 (UUIDs), 4.5 (ISO 8601 timestamps),
4.6 (ISO 8601 durations), 2.4.11 (SHA-2, Internet media types); the same rules in
IEEE 9274.1.1-2023 (xAPI 2.0) 4.2.7 "Additional requirements for data types", where a
timestamp also needs its time zone and "-00:00" (an unknown offset) is refused.

Each function answers a plain bool (or a value, or None) for any ``str``, including
strings with NUL, lone surrogates or control characters, which fail every format here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# Characters RFC 3987 allows nowhere in an IRI: controls, space, the excluded delimiters
# of RFC 3986 and the surrogate range (lone surrogates come from JSON's \ud800 escapes).
_NOT_IN_IRI = re.compile(r'[\x00-\x20\x7f-\x9f<>"{}|\\^`\ud800-\udfff\ufffe\uffff]')
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


# Verb, activity and extension IRIs and language tags repeat across statements; short
# ones are remembered (bounded, so a client cannot fill memory with long unique values).
_CACHED_LENGTH = 512


def is_iri(value: str) -> bool:
    """An absolute IRI (RFC 3987): a scheme, ":", then at least one allowed character."""
    return _cached_iri(value) if len(value) <= _CACHED_LENGTH else _iri(value)


@lru_cache(maxsize=4096)
def _cached_iri(value: str) -> bool:
    return _iri(value)


def _iri(value: str) -> bool:
    scheme, colon, rest = value.partition(":")
    if not colon or not rest or not _SCHEME.fullmatch(scheme):
        return False
    return not _NOT_IN_IRI.search(rest) and not _BAD_PERCENT.search(rest)


# An addr-spec of RFC 5322 in its everyday form: a local part and a domain, no spaces.
_MAILBOX = re.compile(r"[^@\s]+@[^@\s.][^@\s]*")


def is_mailto(value: str) -> bool:
    """A "mailto:" IRI naming one mailbox (the mbox property, Data 2.4.2.3)."""
    return value.startswith("mailto:") and is_iri(value) and bool(_MAILBOX.fullmatch(value[7:]))


_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
_SHA2 = re.compile(r"[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128}")


def is_sha1_hex(value: str) -> bool:
    """A hex-encoded SHA-1 digest (mbox_sha1sum)."""
    return bool(_SHA1.fullmatch(value))


def is_sha2_hex(value: str) -> bool:
    """A hex-encoded SHA-224/256/384/512 digest (an attachment's sha2)."""
    return bool(_SHA2.fullmatch(value))


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(value: str) -> bool:
    """A UUID in the standard string form, 8-4-4-4-12 hex digits (Data 4.4)."""
    return bool(_UUID.fullmatch(value))


# RFC 5646 section 2.1 ABNF, matched case-insensitively.
_ALNUM = "[a-z0-9]"
_LANGTAG = (
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language (+ extlang)
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    rf"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"  # variants
    rf"(?:-[0-9a-wyz](?:-{_ALNUM}{{2,8}})+)*"  # extensions
    rf"(?:-x(?:-{_ALNUM}{{1,8}})+)?"  # private use
)
_PRIVATEUSE = rf"x(?:-{_ALNUM}{{1,8}})+"
_GRANDFATHERED = (
    "en-gb-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|"
    "i-pwn|i-tao|i-tay|i-tsu|sgn-be-fr|sgn-be-nl|sgn-ch-de|art-lojban|cel-gaulish|no-bok|"
    "no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
_LANGUAGE_TAG = re.compile(rf"(?:{_LANGTAG}|{_PRIVATEUSE}|{_GRANDFATHERED})", re.IGNORECASE | re.ASCII)


def is_language_tag(value: str) -> bool:
    """A well-formed RFC 5646 language tag (syntax and subtag lengths; Data 2.2.s4.b2)."""
    return len(value) <= _CACHED_LENGTH and _cached_language_tag(value)


@lru_cache(maxsize=1024)
def _cached_language_tag(value: str) -> bool:
    return value.isascii() and bool(_LANGUAGE_TAG.fullmatch(value))


_NUM = r"[0-9]+(?:[.,][0-9]+)?"
_DURATION = re.compile(
    rf"P(?:(?P<weeks>{_NUM})W"
    rf"|(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}D)?(?:T(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?)"
)


def is_duration(value: str) -> bool:
    """An ISO 8601:2004 4.4.3.2 duration (PnYnMnDTnHnMnS or PnW; not the alternative format).

    At least one component; "T" only before a time component; a decimal fraction only in
    the last component.
    """
    if not _DURATION.fullmatch(value) or value in ("P", "PT") or value.endswith("T"):
        return False
    numbers = re.findall(r"[0-9]+(?:[.,][0-9]+)?", value)
    return all("." not in n and "," not in n for n in numbers[:-1])


_EXTENDED = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"T(?P<h>[0-9]{2})(?::(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?)?"
    r"(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_BASIC = re.compile(
    r"(?P<y>[0-9]{4})(?P<mo>[0-9]{2})(?P<d>[0-9]{2})"
    r"T(?P<h>[0-9]{2})(?:(?P<mi>[0-9]{2})(?:(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?)?"
    r"(?P<tz>Z|[+-][0-9]{2}(?:[0-9]{2})?)?"
)


def parse_timestamp(value: str, *, need_zone: bool = False) -> datetime | None:
    """The instant an ISO 8601 date-time names (extended or basic format), or None.

    A time without a zone is read as UTC unless ``need_zone``; a zero offset written
    negatively ("-00", "-0000", "-00:00", RFC 3339's "unknown local offset") is refused.
    Fractions beyond microseconds are truncated, the spec's "at least milliseconds".
    """
    found = _EXTENDED.fullmatch(value) or _BASIC.fullmatch(value)
    if found is None:
        return None
    zone = found["tz"]
    if zone is None and need_zone:
        return None
    tzinfo: timezone = UTC
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or "0")
        if hours > 23 or minutes > 59:
            return None
        if zone[0] == "-" and hours == 0 and minutes == 0:
            return None
        sign = -1 if zone[0] == "-" else 1
        tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
    fraction = (found["f"] or "")[:6].ljust(6, "0")
    try:
        return datetime(
            int(found["y"]), int(found["mo"]), int(found["d"]),
            int(found["h"]), int(found["mi"] or 0), int(found["s"] or 0), int(fraction),
            tzinfo=tzinfo,
        )
    except ValueError:
        return None


_VERSION = {
    "1.0.3": re.compile(r"1\.0(?:\.[0-9]+)?"),
    "2.0.0": re.compile(r"(?:1\.0|2\.0)(?:\.[0-9]+)?"),
}


def is_statement_version(value: str, version: str) -> bool:
    """A statement's "version" this LRS accepts under the request's X-Experience-API-Version.

    1.0.3 (Data 2.4.10): versions starting "1.0"; 2.0.0 (9274.1.1 4.2.4.3): "1.0.x" or "2.0.x".
    """
    pattern = _VERSION.get(version, _VERSION["2.0.0"])
    return bool(pattern.fullmatch(value))


# RFC 2046 / RFC 6838 type "/" subtype, optional parameters (token characters only).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f]*\"))*"
)


def is_media_type(value: str) -> bool:
    """An Internet media type such as ``application/json; charset=utf-8`` (contentType)."""
    return bool(_MEDIA_TYPE.fullmatch(value))
