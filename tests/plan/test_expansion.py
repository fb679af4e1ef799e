"""The word expander used by the planner agrees with the character-by-character lexer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dockerfile.shell import Lexer
from core.errors import DockerfileError
from core.plan.expansion import Words

ENV = {"A": "1", "AB": "two words", "_x9": "", "PATH": "/bin", "é": "accent"}
_ALPHABET = st.sampled_from([*"$${}AB_x9é -:+?#%/'\"\\`", "PATH", "${A}", "$AB", "${_x9",
                             "${AB:-", "${A-", "${NOPE:+", ":-", '"', "}"])


def _lexer_result(lexer: Lexer, word: str) -> tuple[str, dict[str, str], set[str]] | str:
    try:
        expansion = lexer.lex_word_with_matches(word, ENV)
    except DockerfileError as error:
        return error.message
    return expansion.value, {name: ENV[name] for name in expansion.used}, set(expansion.unset)


def _words_result(lexer: Lexer, word: str) -> tuple[str, dict[str, str], set[str]] | str:
    words = Words(lexer, ENV)
    try:
        value = words.word(word)
    except DockerfileError as error:
        return error.message
    return value, words.used, words.unset


@pytest.mark.parametrize("escape", ["\\", "`"])
@settings(max_examples=400, deadline=None)
@given(word=st.lists(_ALPHABET, max_size=12).map("".join))
def test_word_matches_the_lexer(escape: str, word: str) -> None:
    lexer = Lexer(escape)
    assert _words_result(lexer, word) == _lexer_result(lexer, word)


@pytest.mark.parametrize("word", [
    "", "plain/path", "$A", "${A}", "$AB$A", "x${AB}y", "$MISSING-$A", "${_x9}", "$A_", "$Aé",
    "$1", "$", "${A", "${A:-d}", "\ufeff$A", "a b $A", '"$A"', '"${AB}" x"$A"y', '$A"B"',
    '"$A', "${_x9:-empty}", "${_x9-empty}", "${_x9:+set}", "${_x9+set}", "${NO:-d}-${NO-d}",
    "${NO:+s}${NO+s}", "${A:-{x}", "${A:-a b}", '"${A:-q}"', "${A:=x}", "${A:?x}",
])
def test_word_examples(word: str) -> None:
    lexer = Lexer("\\")
    assert _words_result(lexer, word) == _lexer_result(lexer, word)


def test_split_and_body() -> None:
    words = Words(Lexer("\\"), ENV)
    assert words.split("$AB 'c d'") == ("two", "words", "c d")
    assert words.body("v='$A' \"$AB\" \\$A\n") == "v='1' \"two words\" $A\n"
    assert words.used == {"A": "1", "AB": "two words"}


@pytest.mark.parametrize("body", [False, True])
@settings(max_examples=300, deadline=None)
@given(word=st.lists(_ALPHABET, max_size=12).map("".join))
def test_split_and_body_match_the_lexer(body: bool, word: str) -> None:
    lexer = Lexer("\\", skip_process_quotes=body)  # bodies: quotes are plain characters
    words = Words(lexer, ENV)
    expand = words.body if body else words.split
    try:
        expected = lexer.lex_word_with_matches(word, ENV)
    except DockerfileError as error:
        with pytest.raises(DockerfileError) as raised:
            expand(word)
        assert raised.value.message == error.message
        return
    assert expand(word) == (expected.value if body else expected.words)
    assert (words.used, words.unset) == ({name: ENV[name] for name in expected.used},
                                         set(expected.unset))
