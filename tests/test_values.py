"""Identifiers, instants and financial years."""

from __future__ import annotations

import pytest

from ledger.domain.errors import InvalidCommand
from ledger.domain.values import ID_PATTERN, check_id, financial_year, parse_instant
from ledger.write.commands import parse_line


@pytest.mark.parametrize(("instant", "fy"), [
    ("2025-04-01T00:00:00+05:30", "2025-26"),
    ("2025-03-31T18:29:59Z", "2024-25"),   # 23:59:59 IST on 31 March
    ("2025-03-31T18:30:00Z", "2025-26"),   # 00:00 IST on 1 April
    ("2026-03-31T23:59:59+05:30", "2025-26"),
    ("2099-12-31T10:00:00+05:30", "2099-00"),
])
def test_financial_year_is_april_to_march_in_ist(instant: str, fy: str) -> None:
    assert financial_year(parse_instant(instant)) == fy


@pytest.mark.parametrize("good", ["A", "a" * 64, "OFF-0000001", "x.y_z:1-2", "9"])
def test_valid_ids(good: str) -> None:
    assert check_id(good, "f") == good


@pytest.mark.parametrize("bad", [
    "", "a" * 65, "-x", ".x", "a b", "ä", 5, None,
    "OFF-0000007\n", "OFF-0000007\r\n", "OFF-0000007 ", " OFF-0000007", "OFF-0000007\x00",
    "OFF\x000007", "OFF-000000\u0667", "ＯFF-1", "OFF-1\u2028", "OFF-1\ud800", "\ud800",
])
def test_invalid_ids_name_the_field(bad: object) -> None:
    with pytest.raises(InvalidCommand, match="^officer_id"):
        check_id(bad, "officer_id")


@pytest.mark.parametrize("bad", ["OFF-0000007\n", "a" * 64 + "\n"])
def test_the_id_pattern_means_the_whole_string_even_with_match(bad: str) -> None:
    assert ID_PATTERN.match(bad) is None
    assert ID_PATTERN.search(bad) is None


def test_a_rejected_id_is_shown_short_and_escaped() -> None:
    with pytest.raises(InvalidCommand) as caught:
        check_id("x\n" * 100_000, "org_id")
    message = str(caught.value)
    assert len(message) < 300 and "\n" not in message and "200,000 characters" in message


@pytest.mark.parametrize("bad", [
    "2025-04-01T00:00:00Z\x00", "2025-04-01T00:00:00Z\n", " 2025-04-01T00:00:00Z",
    "２０２５-04-01T00:00:00Z", "2025-04-01T00:00:00\ud800Z", "2025-04-01T00:00:00",
    "0001-01-01T00:00:00+05:30", "9999-12-31T23:00:00Z", "", 20250401,
])
def test_invalid_instants_name_the_field(bad: object) -> None:
    with pytest.raises(InvalidCommand, match="^occurred_at: "):
        parse_instant(bad)


@pytest.mark.parametrize("line,field", [
    ('{"type":"enrol"', "json"),
    ("[1,2]", "command"),
    ('{"officer_id":"O1"}', "type"),
    ('{"type":"fly"}', "type"),
    ('{"type":"enrol","officer_id":"O1","course_id":"K","occurred_at":"2025-04-01T00:00:00Z","command_id":""}', "command_id"),
    ('{"type":"enrol","officer_id":"O1","course_id":"K","occurred_at":"2025-04-01T00:00:00Z","command_id":"' + "c" * 129 + '"}', "command_id"),
    ('{"type":"enrol","officer_id":"O1","course_id":"K","occurred_at":"yesterday"}', "occurred_at"),
    ('{"type":"enrol","officer_id":1,"course_id":"K","occurred_at":"2025-04-01T00:00:00Z"}', "officer_id"),
    ('{"type":"record_progress","officer_id":"O1","course_id":"K","percent":true,"occurred_at":"2025-04-01T00:00:00Z"}', "percent"),
    ('{"type":"publish_course","course_id":"K","title":"t","provider":"p","duration_hours":"2"}', "duration_hours"),
    ('{"type":"publish_course","course_id":"K","title":"t","provider":"p","duration_hours":2,"assessment":{"pass_mark":50}}', "assessment.max_attempts"),
    ('{"type":"define_post","post_id":"P","org_id":"O","title":"t","roles":[{"name":"r","activities":[{"name":"a","competencies":[{"competency_id":"C","level":1,"x":1}]}]}]}', "roles[0].activities[0].competencies[0].x"),
])
def test_malformed_commands_are_rejected_naming_the_field(line: str, field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        parse_line(line)
    assert str(caught.value).startswith(field), str(caught.value)
