"""The string formats of xAPI statements: IRIs, mailboxes, RFC 5646 language tags, UUIDs,
ISO 8601 timestamps and durations, versions, digests and media types (xAPI 1.0.3 Data
2.2, 2.4.2.3, 4.4-4.6; IEEE 9274.1.1-2023 4.2.7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.xapi import formats


@pytest.mark.parametrize("good", [
    "http://example.org", "https://example.org/a/b?c=d#e", "urn:isbn:0451450523",
    "mailto:a@example.org", "tag:example.org,2024:x", "http://example.org/पाठ", "x-y.z+w:1",
    "http://example.org/%20space",
])
def test_absolute_iris_are_accepted(good: str) -> None:
    assert formats.is_iri(good)


@pytest.mark.parametrize("bad", [
    "", "example.org/x", "/relative", "http:", ":nothing", "1http://example.org",
    "ab=c://example.org", "http://exa mple.org", "http://example.org/\x00", "http://example.org/\n",
    "http://example.org/\ud800", "http://example.org/<a>", 'http://example.org/"', "http://example.org/%zz",
    "http://example.org/\x7f",
])
def test_values_that_are_not_iris_are_refused(bad: str) -> None:
    assert not formats.is_iri(bad)


@pytest.mark.parametrize(("value", "ok"), [
    ("mailto:a@example.org", True), ("mailto:A.B+c@Example.ORG", True),
    ("a@example.org", False), ("mailto:", False), ("mailto:a", False), ("mailto:@example.org", False),
    ("mailto:a@", False), ("mailto:a b@example.org", False), ("MAILTO:a@example.org", False),
    ("mailto:a@example.org\x00", False),
])
def test_mbox_is_a_mailto_iri_of_one_mailbox(value: str, ok: bool) -> None:
    assert formats.is_mailto(value) is ok


@pytest.mark.parametrize("good", [
    "en", "en-US", "de-CH-1901", "zh-Hant-TW", "sr-Latn-RS", "es-419", "tlh", "hi-IN",
    "x-whatever", "en-a-bbb-x-a-ccc", "i-klingon", "en-GB-oed", "zh-yue-HK", "EN-us",
    "sl-rozaj-biske", "qaa-Qaaa-QM-x-southern",
])
def test_rfc_5646_language_tags_are_accepted(good: str) -> None:
    assert formats.is_language_tag(good)


@pytest.mark.parametrize("bad", [
    "", "something", "en_US", "e", "en-", "-en", "en--US", "en-US-", "123", "en-x",
    "a-DE", "en-a", "en-US-x-abcdefghi", "ënglish", "en\x00", "en\ud800", "en US", "de-1",
])
def test_malformed_language_tags_are_refused(bad: str) -> None:
    assert not formats.is_language_tag(bad)


@pytest.mark.parametrize(("value", "ok"), [
    ("fd41c918-b88b-4b20-a0a5-a4c32391aaa0", True), ("FD41C918-B88B-4B20-A0A5-A4C32391AAA0", True),
    ("fd41c918b88b4b20a0a5a4c32391aaa0", False), ("{fd41c918-b88b-4b20-a0a5-a4c32391aaa0}", False),
    ("fd41c918-b88b-4b20-a0a5-a4c32391aaa", False), ("gd41c918-b88b-4b20-a0a5-a4c32391aaa0", False),
    ("fd41c918-b88b-4b20-a0a5-a4c32391aaa0\n", False), ("", False),
])
def test_uuids_are_in_the_standard_string_form(value: str, ok: bool) -> None:
    assert formats.is_uuid(value) is ok


@pytest.mark.parametrize(("value", "instant"), [
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T15:30:00.123+05:30", datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),
    ("2024-05-01T05:00:00-0500", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T12:00:00+02", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("20240501T100000Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T10:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2024-05-01T10:00:00,5+00:00", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
])
def test_iso_8601_timestamps_name_their_instant(value: str, instant: datetime) -> None:
    parsed = formats.parse_timestamp(value, need_zone=True)
    assert parsed is not None and parsed == instant


@pytest.mark.parametrize("bad", [
    "", "should fail", "01/011/2015", "2024-05-01", "2024-05-01 10:00:00Z", "2024-02-30T10:00:00Z",
    "2024-05-01T24:00:01Z", "2024-05-01T10:00:00+24:00", "2024-05-01T10:00:00-00", "2024-05-01T10:00:00-0000",
    "2024-05-01T10:00:00-00:00", "2024-05-01T10:00:00Z\n", "２０２４-05-01T10:00:00Z", "2024-05-01T10:00:00+5:30",
])
def test_malformed_timestamps_and_the_unknown_offset_are_refused(bad: str) -> None:
    assert formats.parse_timestamp(bad) is None


def test_a_timestamp_without_a_zone_is_utc_unless_a_zone_is_needed() -> None:
    assert formats.parse_timestamp("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert formats.parse_timestamp("2024-05-01T10:00:00", need_zone=True) is None
    east = formats.parse_timestamp("2024-05-01T10:00:00+14:00")
    assert east is not None and east.utcoffset() == timedelta(hours=14)


@pytest.mark.parametrize(("value", "ok"), [
    ("PT1H0M0S", True), ("P3Y1M29DT4H35M59.14S", True), ("PT16559.14S", True), ("P3Y", True),
    ("P4W", True), ("P0D", True), ("PT0.001S", True), ("P1.5Y", True), ("PT1,5S", True),
    ("P4W1D", False), ("P", False), ("PT", False), ("P1DT", False), ("1H", False), ("PT1.5H30M", False),
    ("P0000-00-01T01:00:00", False), ("pt1h", False), ("PT-1S", False), ("PT1H ", False), ("P１D", False),
])
def test_durations_use_the_iso_8601_designator_format(value: str, ok: bool) -> None:
    assert formats.is_duration(value) is ok


@pytest.mark.parametrize(("value", "version", "ok"), [
    ("1.0.0", "1.0.3", True), ("1.0.3", "1.0.3", True), ("1.0", "1.0.3", True), ("1.0.99", "1.0.3", True),
    ("2.0.0", "1.0.3", False), ("1.1.0", "1.0.3", False), ("0.9.9", "1.0.3", False), ("1.0.", "1.0.3", False),
    ("2.0.0", "2.0.0", True), ("2.0.1", "2.0.0", True), ("1.0.3", "2.0.0", True), ("2.1.0", "2.0.0", False),
    ("v2.0.0", "2.0.0", False),
])
def test_statement_versions(value: str, version: str, ok: bool) -> None:
    assert formats.is_statement_version(value, version) is ok


def test_sha_digests_and_media_types() -> None:
    assert formats.is_sha1_hex("cd9b00a5611f94eaa7b1661edab976068e364975")
    assert not formats.is_sha1_hex("cd9b00a5611f94eaa7b1661edab976068e36497")
    for length in (56, 64, 96, 128):
        assert formats.is_sha2_hex("a" * length)
    assert not formats.is_sha2_hex("a" * 40) and not formats.is_sha2_hex("g" * 64)
    for good in ("text/plain", "application/json; charset=utf-8", 'multipart/mixed; boundary="a b"'):
        assert formats.is_media_type(good)
    for bad in ("pdf", "text/", "/plain", "text/plain; charset", "text/plain\n"):
        assert not formats.is_media_type(bad)
