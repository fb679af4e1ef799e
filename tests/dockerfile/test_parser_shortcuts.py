"""The parser's shortcuts (regular expressions for common text) agree with its scanners."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dockerfile import arguments, heredoc
from core.dockerfile.jsonform import decode_json_array, parse_json_array
from core.dockerfile.lines import go_trim
from core.errors import DockerfileError

FUZZ = settings(max_examples=1500, deadline=None)
TEXT = st.lists(st.sampled_from([
    *"ab=$-_/ \t'\"\\`<", "\u3000", "\x85", "\x1c", "\udcff", "é", "<<", "<<-", "3<<", "EOF",
    "${A}", "'x y'", '"x y"', "''", '""',
]), max_size=16).map("".join)
_BLANK = st.sampled_from(["", " ", "\t", "\n\r", "\x85"])
_ELEMENT = st.sampled_from([
    '"a"', '"b c"', '""', '"\udcff"', '"é"', '"\\n"', '"\\u0041"', '"\x01"', '"\\"', "1", "null",
    "[]", '"', "", "x",
])
JSONISH = st.tuples(st.lists(st.tuples(_BLANK, _ELEMENT, _BLANK), max_size=5), _BLANK,
                    st.sampled_from(["]", "", "] ", "]x", ",]"])).map(
    lambda parts: "[" + ",".join("".join(item) for item in parts[0]) + parts[1] + parts[2])


def _outcome(function: object, *args: object) -> object:
    assert callable(function)
    try:
        return function(*args)
    except DockerfileError as error:
        return error.message


@pytest.mark.parametrize("escape", ["\\", "`"])
@FUZZ
@given(text=TEXT)
def test_word_split_matches_the_scanner(escape: str, text: str) -> None:
    scanned = [arguments._INVALID_BYTE.sub("\ufffd", word)
               for word in arguments._scan_words(text, escape)]
    assert arguments.parse_words(text, escape) == scanned


@FUZZ
@given(text=TEXT)
def test_heredoc_line_words_match_the_lexer(text: str) -> None:
    assert heredoc.line_words(text) == heredoc.split_words(text, raw_quotes=True,
                                                           raw_escapes=True)


@FUZZ
@given(text=TEXT.filter(bool))
def test_heredoc_delimiters_match_the_lexer(text: str) -> None:
    assert _outcome(heredoc.delimiter_name, text) == \
        _outcome(heredoc.lexed_delimiter_name, text)


@FUZZ
@given(text=JSONISH)
def test_json_arrays_match_the_decoder(text: str) -> None:
    assert _outcome(parse_json_array, text) == _outcome(decode_json_array, text)


@pytest.mark.parametrize(("text", "strings"), [
    ('["a", "b c"]', ("a", "b c")),
    ("[ ]", ()),
    ('["\udcff"]', ("\ufffd",)),
    ('["a",]', None),
    ('["a"] x', None),
])
def test_simple_json_arrays(text: str, strings: tuple[str, ...] | None) -> None:
    assert parse_json_array(text) == strings


LINES = st.lists(st.sampled_from([
    "RUN", "ENV", "run", "FRÖM", "x", " ", "  ", "\t", "\v", "\n", "\x85", "\u3000", "\x1c", "--",
    "--a=b", "--x", '--a="b c"', "-", "=", "a", "b c", "'q'", '"', "\\", "`", "\udcff", "é",
]), max_size=10).map("".join)


def _reference_split_command(line: str) -> tuple[str, tuple[str, ...], str]:
    parts = arguments._TOKEN_SPACE.split(go_trim(line), maxsplit=1)
    if len(parts) == 1:
        return parts[0], (), ""
    rest, flags = arguments.extract_flags(parts[1])
    return parts[0], flags, go_trim(rest)


@FUZZ
@given(line=LINES)
def test_command_split_matches_the_regex_split(line: str) -> None:
    assert arguments.split_command(line) == _reference_split_command(line)
    assert arguments._simple_flags(line) == arguments._each_simple_flag(line)
    assert arguments.parse_whitespace_delimited(line).args == \
        (tuple(arguments._TOKEN_SPACE.split(line)) if line else ())


@pytest.mark.parametrize("escape", ["\\", "`"])
@FUZZ
@given(line=LINES)
def test_legacy_key_value_matches_the_regex_split(escape: str, line: str) -> None:
    try:
        shape = arguments.parse_name_val(line, "ENV", escape)
    except DockerfileError:
        return
    if shape.args and shape.args[2] == "":
        assert list(shape.args[:2]) == arguments._TOKEN_SPACE.split(line, maxsplit=1)
