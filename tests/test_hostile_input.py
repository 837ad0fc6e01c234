"""Hostile input never escapes its own answer: every line and command is accepted or
rejected with a message, whatever its bytes, and its neighbours are untouched.

The cases come from the rules (DOMAIN.md "Identifiers and time" and "Commands"), not
from the code: each hostile input is an InvalidCommand naming the field or the
problem; the line reader frames bytes only at b"\\n"; and, property-based, no JSON
value, text or byte string makes the parser raise anything else.
"""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ledger.domain.errors import InvalidCommand
from ledger.write.commands import (
    MAX_DEPTH,
    SCHEMAS,
    Command,
    decode_json,
    parse_command,
    parse_line,
)
from ledger.write.lines import MAX_LINE_BYTES, read_lines

AT = "2025-04-01T09:30:00+05:30"
REGISTER = {
    "type": "register_officer", "officer_id": "OFF-0000007", "name": "Ananya Rao",
    "email": "ananya@example.gov.in", "org_id": "MOF", "occurred_at": AT,
}
COURSE = {
    "type": "publish_course", "course_id": "K-1", "title": "Budget basics", "provider": "p",
    "duration_hours": 2.5, "competencies": [{"competency_id": "C1", "level": 2}],
    "assessment": {"pass_mark": 60, "max_attempts": 3},
}
# No test here writes a .hypothesis directory into the work tree.
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def line(base: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**base, **changes})


def rejection(data: str | bytes) -> str:
    with pytest.raises(InvalidCommand) as caught:
        parse_line(data)
    return str(caught.value)


# ---- one line, one answer -------------------------------------------------------------


def test_json_nested_100000_deep_is_rejected_without_recursing() -> None:
    assert rejection("[" * 100_000 + "]" * 100_000) == f"json: nested more than {MAX_DEPTH} levels deep"
    assert "nested more than" in rejection('{"type":' + "[" * 100_000)  # never closed
    assert "nested more than" in rejection(b"{" * 100_000)


def test_nesting_up_to_the_limit_is_parsed_and_the_command_answers() -> None:
    deep = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert rejection(f'{{"type":"enrol","x":{deep}}}').startswith("x: unknown field")
    assert "nested" in rejection(f'{{"type":"enrol","x":[{deep}]}}')


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = line(REGISTER, name="[" * 150 + "{" * 45)
    assert parse_line(text).fields["name"].startswith("[[[")


def test_a_number_with_5000_digits_is_rejected() -> None:
    assert rejection('{"type":"enrol","x":' + "7" * 5000 + "}").startswith("json: a number has more than")


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 400, "1" * 400 + ".5"])
def test_numbers_beyond_a_float_are_out_of_range_for_the_field(number: str) -> None:
    text = line(COURSE).replace('"duration_hours": 2.5', f'"duration_hours": {number}')
    assert rejection(text).startswith("duration_hours: must be a")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(literal: str) -> None:
    text = line(COURSE).replace('"duration_hours": 2.5', f'"duration_hours": {literal}')
    assert rejection(text) == f"json: {literal} is not valid JSON (numbers must be finite)"


@pytest.mark.parametrize("field", ["name", "email", "officer_id", "org_id", "occurred_at"])
def test_a_lone_surrogate_in_a_value_is_rejected_naming_the_field(field: str) -> None:
    text = line(REGISTER, **{field: "ab\ud800"})  # json.dumps writes the escape \ud800
    assert "\\ud800" in text
    assert rejection(text).startswith(f"{field}:")


def test_a_lone_surrogate_in_a_key_is_rejected_and_the_message_is_printable() -> None:
    message = rejection(line(REGISTER, **{"\udc80x": 1}))
    assert message == "'\\udc80x': unknown field"
    message.encode("utf-8")  # the answer itself can be written out


def test_lone_surrogates_in_command_id_and_nested_keys_are_rejected() -> None:
    assert rejection(line(REGISTER, command_id="c\udfff")).startswith("command_id: contains a lone surrogate")
    nested = line(COURSE, competencies=[{"competency_id": "C1", "level": 2, "\ud800": 1}])
    assert rejection(nested).startswith("competencies[0].'\\ud800': unknown field")


def test_a_valid_surrogate_pair_escape_is_ordinary_text() -> None:
    assert parse_line(line(REGISTER, name="Ananya \U0001f600")).fields["name"] == "Ananya \U0001f600"


@pytest.mark.parametrize("data", [b"\xff\xfe{}", b'{"type":"enrol","officer_id":"\xc3"}',
                                  b'{"name":"\xed\xa0\x80"}', b"\xc0\xaf"])
def test_bytes_that_are_not_utf8_are_rejected(data: bytes) -> None:
    assert rejection(data).startswith("line: not valid UTF-8 (byte 0x")


@pytest.mark.parametrize("field", ["name", "email"])
@pytest.mark.parametrize("char", ["\x00", "\x07", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\u2029",
                                  "\u202e", "\u202a", "\u2066", "\u2069"])
def test_control_characters_in_text_fields_are_rejected(field: str, char: str) -> None:
    message = rejection(line(REGISTER, **{field: f"Ananya{char}Rao@x.in" if field == "email" else f"Ananya{char}Rao"}))
    assert message.startswith(f"{field}: "), message


def test_control_characters_name_the_code_point() -> None:
    assert rejection(line(REGISTER, name="A\x00B")) == "name: contains a control character (U+0000)"


def test_a_bidi_override_is_refused_but_right_to_left_text_is_not() -> None:
    # An override reverses whatever follows it on a printed line (a page, a report).
    assert rejection(line(REGISTER, name="Ravi \u202eKumar")).startswith("name: "), "override accepted"
    parse_line(line(REGISTER, name="\u0639\u0644\u06cc \u0631\u0636\u0627"))  # Urdu: implicit order, accepted


@pytest.mark.parametrize("command_id", ["c\x00", "c\n", "\x1b[31mred"])
def test_control_characters_in_command_id_are_rejected(command_id: str) -> None:
    assert rejection(line(REGISTER, command_id=command_id)).startswith("command_id: contains a control character")


def test_text_may_hold_any_other_unicode() -> None:
    name = "अनन्या राव\u200d ﷺ \ufeff"  # Devanagari with a joiner, an Arabic ligature, a stray BOM
    assert parse_line(line(REGISTER, name=name, command_id="क्रम-1")).fields["name"] == name


def test_a_utf8_bom_at_the_start_of_a_line_is_rejected() -> None:
    assert rejection(b"\xef\xbb\xbf" + line(REGISTER).encode()).startswith("json: starts with a byte order mark")
    assert rejection("\ufeff" + line(REGISTER)).startswith("json: starts with a byte order mark")


@pytest.mark.parametrize(("text", "field"), [
    ('{"type":"enrol","type":"withdraw"}', "type"),
    (line(REGISTER)[:-1] + ', "name": "Other"}', "name"),
    (line(COURSE).replace('"level": 2}', '"level": 2, "level": 3}'), "level"),
    ('{"type":"enrol","x":{"a":[{"b":1,"b":1}]}}', "b"),
    ('{"type":"enrol","\\u0061":1,"a":2}', "a"),  # the same key, spelled differently
])
def test_an_object_that_repeats_a_key_is_rejected_at_any_depth(text: str, field: str) -> None:
    assert rejection(text) == f"{field}: the key is repeated in one object (which value was meant is ambiguous)"


def test_an_oversized_line_is_rejected_before_parsing() -> None:
    big = line(REGISTER, name="x" * MAX_LINE_BYTES)
    assert rejection(big) == f"line: longer than {MAX_LINE_BYTES:,} bytes"
    assert rejection(big.encode()) == f"line: longer than {MAX_LINE_BYTES:,} bytes"


@pytest.mark.parametrize(("text", "start"), [
    ("", "json: malformed JSON"),
    ("\x0b", "json: malformed JSON"),
    ('{"type":"enrol"} {}', "json: malformed JSON"),
    ('{"type":"enrol","name":"a\x01"}', "json: malformed JSON"),  # raw control character
    ("[1,2]", "command: must be a JSON object"),
    ('{"type":null}', "type: must be a string naming a command, not null"),
    ('{"type":[[[[]]]]}', "type: must be a string naming a command, not a list"),
    ('{"type":"' + "x" * 100_000 + '"}', "type: unknown command type 'xxx"),
])
def test_other_malformed_lines_get_a_short_message(text: str, start: str) -> None:
    message = rejection(text)
    assert message.startswith(start), message
    assert len(message) < 200


ODD_VALUES: list[dict[Any, Any]] = [
    {"type": "enrol", 1: "x"},
    {1: "x", "type": "enrol"},
    {**REGISTER, ("tuple",): 1},
    {**COURSE, "duration_hours": 10**400},  # float() of it would overflow
    {**COURSE, "duration_hours": float("nan")},
    {**REGISTER, "name": b"bytes"},
]


@pytest.mark.parametrize("obj", ODD_VALUES)
def test_python_values_with_odd_keys_or_numbers_are_rejected(obj: dict[Any, Any]) -> None:
    with pytest.raises(InvalidCommand):
        parse_command(obj)


def test_instants_outside_what_utc_and_ist_can_show_are_rejected() -> None:
    for at in ("0001-01-01T00:00:00+05:30", "9999-12-31T23:00:00Z"):
        assert rejection(line(REGISTER, occurred_at=at)).endswith("is out of range")


@pytest.mark.parametrize("at", [AT + "\x00", AT + "\n", " " + AT, AT + " ", "２０２５-04-01T09:30:00Z"])
def test_instants_with_stray_characters_are_rejected(at: str) -> None:
    assert rejection(line(REGISTER, occurred_at=at)).startswith("occurred_at: ")


def test_content_hash_of_well_formed_commands_is_unchanged() -> None:
    """Digests computed before this parser existed: stored receipts must still match."""
    known = {
        '{"type":"register_officer","command_id":"c-1","officer_id":"OFF-0000007","name":"Ānanya Rāo ✓","email":"a@b.co","org_id":"MOF","occurred_at":"2025-04-01T09:30:00+05:30"}':
            "22f79ad7fdd62f8090ac420b5bd0d52388913087b2b7129dfe7380ab593cb36c",
        '{"type":"publish_course","course_id":"K-1","title":"Budget \\"basics\\"","provider":"p","duration_hours":2.5,"competencies":[{"competency_id":"C1","level":2}],"assessment":{"pass_mark":60,"max_attempts":3},"occurred_at":"2025-04-01T00:00:00Z"}':
            "1b28fcfe2b32a4dfe5961a747d1b11d4683b5152ded8e56e7529d158f5915d11",
        '{"type":"attempt_assessment","officer_id":"O1","course_id":"K","score":1e2,"occurred_at":"2025-04-01T00:00:00Z"}':
            "5414af429c44e793bf2aea333423e1e5851f7898aca2eadac4a2091dc71f6f6b",
    }
    for text, digest in known.items():
        assert parse_line(text).content_hash == digest
        assert parse_line(text.encode()).content_hash == digest


# ---- the line reader -----------------------------------------------------------------


def lines_of(data: bytes, **options: Any) -> list[tuple[int, str]]:
    """The reader's output with errors shown as their message, prefixed "!"."""
    return [(n, f"!{item}" if isinstance(item, InvalidCommand) else item)
            for n, item in read_lines(io.BytesIO(data), **options)]


def test_lines_end_only_at_newline_and_a_cr_before_it_is_dropped() -> None:
    data = b"a\r\nb\rc\nd\x0be\x0cf\x1cg\x1dh\x1ei\xc2\x85j\xe2\x80\xa8k\xe2\x80\xa9l\nlast"
    assert lines_of(data) == [
        (1, "a"), (2, "b\rc"), (3, "d\x0be\x0cf\x1cg\x1dh\x1ei\x85j\u2028k\u2029l"), (4, "last"),
    ]


def test_only_one_cr_is_dropped_and_a_final_cr_without_newline_stays() -> None:
    assert lines_of(b"a\r\r\nb\r") == [(1, "a\r"), (2, "b\r")]


def test_blank_lines_are_counted_but_not_answered() -> None:
    data = b"\n{}\n  \t\n\r\n\n[]\n"
    assert lines_of(data) == [(2, "{}"), (6, "[]")]
    assert lines_of(data, skip_blank=False) == [
        (1, ""), (2, "{}"), (3, "  \t"), (4, ""), (5, ""), (6, "[]"),
    ]
    assert lines_of(b"") == []
    assert lines_of(b"\n") == []


def test_a_line_separator_inside_a_json_string_does_not_split_the_line() -> None:
    command = json.dumps({**REGISTER, "name": "A\u2028B"}, ensure_ascii=False).encode()
    assert command.count(b"\n") == 0
    [(number, text)] = lines_of(command + b"\n")
    assert number == 1 and isinstance(text, str)
    with pytest.raises(InvalidCommand, match=r"^name: contains a line or paragraph separator \(U\+2028\)"):
        parse_line(text)


def test_an_invalid_utf8_line_is_rejected_alone() -> None:
    good = line(REGISTER).encode()
    results = list(read_lines(io.BytesIO(good + b"\n" + b'{"name":"\xff"}\n' + good)))
    assert [n for n, _ in results] == [1, 2, 3]
    assert isinstance(results[0][1], str) and isinstance(results[2][1], str)
    assert isinstance(results[1][1], InvalidCommand)
    assert str(results[1][1]) == "line: not valid UTF-8 (byte 0xff at byte 10: invalid start byte)"
    assert isinstance(parse_line(results[2][1]), Command)


def test_the_line_limit_is_exact() -> None:
    limit = 8
    data = b"12345678\n123456789\n12345678\r\n123456789\r\nabc\n123456789"
    assert lines_of(data, max_bytes=limit) == [
        (1, "12345678"), (2, "!line: longer than 8 bytes"), (3, "12345678"),
        (4, "!line: longer than 8 bytes"), (5, "abc"), (6, "!line: longer than 8 bytes"),
    ]


def test_a_long_line_arriving_a_byte_at_a_time_is_skipped_to_its_newline() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            byte = self.data.read(1)
            buffer[: len(byte)] = byte
            return len(byte)

    stream = io.BufferedReader(Trickle(b"ok\n" + b"x" * 100_000 + b"\nok again\n"))
    results = [(n, str(item)) for n, item in read_lines(stream, max_bytes=1000)]
    assert results == [(1, "ok"), (2, "line: longer than 1,000 bytes"), (3, "ok again")]


def test_a_20_mb_line_between_good_lines_is_rejected_in_bounded_memory(tmp_path: Path) -> None:
    good = line(REGISTER).encode()
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        out.write(good + b"\n\n")
        out.write(b'{"type":"enrol","name":"')
        for _ in range(20):
            out.write(b"y" * (1 << 20))
        out.write(b'"}\r\n' + good + b"\n")
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            results = list(read_lines(stream))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [n for n, _ in results] == [1, 3, 4]
    assert str(results[1][1]) == f"line: longer than {MAX_LINE_BYTES:,} bytes"
    assert isinstance(results[2][1], str) and isinstance(parse_line(results[2][1]), Command)
    # One line's allowance and a read buffer, never the 20 MB line.
    assert peak < 3 * MAX_LINE_BYTES, f"peak {peak:,} bytes"


# ---- properties ----------------------------------------------------------------------

# Every JSON value, with text over all code points (lone surrogates included) and
# integers and floats of any size (NaN and infinities included).
TEXT = st.text(st.characters(), max_size=20)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=30,
)
NEEDS = [{"competency_id": "C1", "level": 2}]
ROLES = [{"name": "r", "activities": [{"name": "a", "competencies": NEEDS}]}]
OFFICER = {"officer_id": "OFF-1", "course_id": "K-1", "occurred_at": AT}
VALID: dict[str, dict[str, Any]] = {
    "define_organisation": {"org_id": "MOF", "name": "Finance", "kind": "ministry"},
    "define_competency": {"competency_id": "C1", "name": "Budgeting", "kind": "functional"},
    "define_post": {"post_id": "P1", "org_id": "MOF", "title": "Under Secretary", "roles": ROLES},
    "publish_course": {k: v for k, v in COURSE.items() if k != "type"},
    "register_officer": {k: v for k, v in REGISTER.items() if k != "type"},
    "transfer_officer": {"officer_id": "OFF-1", "org_id": "DOE", "occurred_at": AT},
    "enrol": OFFICER, "withdraw": OFFICER, "complete_course": OFFICER,
    "record_progress": {**OFFICER, "percent": 40},
    "attempt_assessment": {**OFFICER, "score": 75.5},
}
GOOD_VALUES = st.sampled_from([
    "OFF-1", "MOF", "C1", "Name", "a@b.co", AT, 1, 2, 50, 2.5, None, [], NEEDS, ROLES,
    {"pass_mark": 50, "max_attempts": 2}, [{"name": "r", "activities": []}],
])


@st.composite
def command_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A valid command of a known type (when there is a sample) with a few fields
    replaced by arbitrary or plausible values, removed, or added."""
    kind = draw(st.sampled_from(sorted(SCHEMAS)))
    obj: dict[str, Any] = {"type": kind, **json.loads(json.dumps(VALID.get(kind, {})))}
    names = [*SCHEMAS[kind], *SCHEMAS[kind], "command_id", "type", "x"]  # fields twice as often
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=3)):
        if draw(st.booleans()) and name in obj:
            del obj[name]
        else:
            obj[name] = draw(GOOD_VALUES | JSON_VALUES)
    return obj


def answers(parse: Any, value: Any) -> Command | InvalidCommand:
    """Parse ``value``; anything other than a Command or an InvalidCommand fails the test."""
    try:
        command = parse(value)
    except InvalidCommand as exc:
        str(exc).encode("utf-8")  # the answer can always be written out
        return exc
    assert isinstance(command, Command)
    canonical = json.dumps(value if isinstance(value, dict) else json.loads(value),
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert command.content_hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return command


@PROPERTY
@given(JSON_VALUES | command_shaped())
def test_any_decoded_json_value_gets_an_answer(value: Any) -> None:
    answers(parse_command, value)


@PROPERTY
@given(JSON_VALUES | command_shaped(), st.booleans())
def test_any_json_text_gets_an_answer(value: Any, ascii_only: bool) -> None:
    try:
        text = json.dumps(value, ensure_ascii=ascii_only)
    except ValueError:  # an integer json.dumps itself will not write (over 4300 digits)
        assume(False)
        return
    answers(parse_line, text)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a raw lone surrogate has no UTF-8 form
        return
    answers(parse_line, data)


@PROPERTY
@given(st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), command_shaped())
       .flatmap(lambda b: st.tuples(st.just(b), st.integers(0, len(b)), st.binary(max_size=4))
                .map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:])))
def test_any_bytes_get_an_answer(data: bytes) -> None:
    answers(parse_line, data)
    try:
        decode_json(data)
    except InvalidCommand:
        pass


@PROPERTY
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=12),
       st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_the_reader_gives_back_every_line_numbered(
    pieces: list[bytes], ending: bytes, final_newline: bool
) -> None:
    data = ending.join(pieces) + (ending if final_newline and pieces else b"")
    results = list(read_lines(io.BytesIO(data), skip_blank=False))
    expected = [p[:-1] if ending == b"\n" and p.endswith(b"\r") else p for p in pieces]
    if pieces and not final_newline and ending == b"\n" and pieces[-1].endswith(b"\r"):
        expected[-1] = pieces[-1]  # a final \r with no \n after it is kept
    if pieces and pieces[-1] == b"" and not final_newline:
        expected.pop()  # nothing after the last line ending: not a line
    assert [n for n, _ in results] == list(range(1, len(expected) + 1))
    for (_, item), raw in zip(results, expected, strict=True):
        if isinstance(item, str):
            assert item.encode("utf-8") == raw
        else:
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
