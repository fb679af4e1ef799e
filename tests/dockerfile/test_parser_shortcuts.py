"""The parser's shortcuts (regular expressions for common text) agree with its scanners."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dockerfile import arguments, heredoc
from core.dockerfile.jsonform import decode_json_array, parse_json_array
from core.errors import DockerfileError

FUZZ = settings(max_examples=1500, deadline=None)
TEXT = st.lists(st.sampled_from([
    *"ab=$-_/ \t'\"\\`<", "\u3000", "\x85", "\udcff", "é", "<<", "<<-", "3<<", "EOF", "${A}",
    "'x y'", '"x y"', "''", '""',
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
