"""The lexer's shortcuts (plain and simple words) agree with the character-by-character lexer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.dockerfile import shell
from core.dockerfile.shell import Expansion, Lexer
from core.errors import DockerfileError

ENVS = st.dictionaries(st.sampled_from(["A", "AB", "_x9", "PATH", "é"]),
                       st.sampled_from(["", "1", "two words", " lead", "a\tb ", '"q"', "$A"]),
                       max_size=5)
TOKENS = st.sampled_from([
    *"$${}AB_x9é -:+?#%/'\"\\`\t\n\ufeff", "PATH", "${A}", "$AB", "${_x9", "${AB:-", "${A-",
    "${NOPE:+", "${A+", ":-", '"', "}", "plain/text", "\u3000",
])
WORDS = st.lists(TOKENS, max_size=14).map("".join)
LEXERS = st.builds(
    Lexer, st.sampled_from(["\\", "`"]), raw_quotes=st.booleans(), raw_escapes=st.booleans(),
    skip_process_quotes=st.booleans(), skip_unset_env=st.booleans(),
    max_length=st.sampled_from([5, 20, 1000]))

Outcome = tuple[str, tuple[str, ...], frozenset[str], frozenset[str]] | str


def _outcome(expand: Callable[[], Expansion]) -> Outcome:
    try:
        result = expand()
    except DockerfileError as error:
        return error.message
    return result.value, result.words, result.used, result.unset


@settings(max_examples=1500, deadline=None)
@given(lexer=LEXERS, word=WORDS, env=ENVS)
def test_shortcuts_match_the_lexer(lexer: Lexer, word: str, env: dict[str, str]) -> None:
    expected = _outcome(lambda: lexer.lex_word_with_matches(word, env))
    assert _outcome(lambda: lexer.expand_word_with_matches(word, env)) == expected
    if isinstance(expected, str):
        for expand in (lexer.expand_word, lexer.expand_words, _noting(lexer)):
            with pytest.raises(DockerfileError) as raised:
                expand(word, env)
            assert raised.value.message == expected
        return
    value, words, used, unset = expected
    assert lexer.expand_word(word, env) == value
    assert lexer.expand_words(word, env) == list(words)
    noted_used: dict[str, str] = {}
    noted_unset: set[str] = set()
    assert lexer.expand_word_noting(word, env, noted_used, noted_unset) == value
    assert noted_used == {name: env[name] for name in used}
    assert noted_unset == unset


def _noting(lexer: Lexer) -> Callable[[str, Mapping[str, str]], str]:
    return lambda word, env: lexer.expand_word_noting(word, env, {}, set())


@pytest.fixture
def no_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if the character-by-character lexer runs."""
    def refuse(*args: object) -> None:
        raise AssertionError(f"the lexer ran for {args[1]!r}")
    monkeypatch.setattr(shell, "Machine", refuse)
    yield


@pytest.mark.usefixtures("no_machine")
@pytest.mark.parametrize(("word", "value", "words"), [
    ("plain/path with blanks", "plain/path with blanks", ("plain/path", "with", "blanks")),
    ("${VERSION}/bin:$PATH", "2.1/bin:/bin", ("2.1/bin:/bin",)),
    ("${UNSET:-90}/udp ${VERSION:+x}", "90/udp x", ("90/udp", "x")),
    ('v="$VERSION"', "v=2.1", None),
    ("a-${EMPTY-d}-${EMPTY:-d}-${UNSET+s}-${EMPTY+s}", "a--d--s", ("a--d--s",)),
])
def test_common_words_take_the_shortcut(word: str, value: str,
                                        words: tuple[str, ...] | None) -> None:
    env = {"VERSION": "2.1", "PATH": "/bin", "EMPTY": ""}
    lexer = Lexer()
    assert lexer.expand_word(word, env) == value
    if words is not None:
        assert lexer.expand_word_with_matches(word, env).words == words
    body = "[main]\nversion=${VERSION}\nname='$PATH' \"x\"\n"
    assert Lexer(skip_process_quotes=True).expand_word(body, env) == \
        "[main]\nversion=2.1\nname='/bin' \"x\"\n"


def test_syntax_detection() -> None:
    assert not Lexer().has_syntax("plain/path:1")
    assert all(Lexer().has_syntax(word) for word in ("$A", "'a'", '"a"', "a\\b", "\ufeffx"))
    assert not Lexer("`").has_syntax("a\\b")
    assert not Lexer(skip_process_quotes=True).has_syntax("'a' \"b\"")


@pytest.mark.parametrize("word", [
    "$$A", "${A:-$B}", "$1$A", "$A$", "${A}$}", '"$A', '"$A"x"', "'$A'", "\\$A$B", "${A:=x}$B",
    "${A:-'q'}", '${A:-"q"}', "$A{B}", "${A-}${B:+}", "é$A", "\ufeff$A", "${A:-a b} c",
])
@pytest.mark.parametrize("lexer", [Lexer(), Lexer("`"), Lexer(skip_process_quotes=True)])
def test_tricky_words_match_the_lexer(lexer: Lexer, word: str) -> None:
    env = {"A": "x y", "B": ""}
    expected = _outcome(lambda: lexer.lex_word_with_matches(word, env))
    assert _outcome(lambda: lexer.expand_word_with_matches(word, env)) == expected
