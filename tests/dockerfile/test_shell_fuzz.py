"""Property tests for word expansion: any input gives a string or a DockerfileError, and the
pattern matcher agrees with Go-style regular-expression matching on small inputs."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from core.dockerfile import shellpattern
from core.dockerfile.shell import Lexer
from core.errors import DockerfileError

FUZZ = settings(max_examples=200, deadline=None)

SPECIAL = list("${}:-+?#%/\\`'\" \t\nab_1@*")
NAMES = st.sampled_from(["A", "B", "PWD", "_x", "1", "@", "é", "NULL"])
TEXT = st.text(st.sampled_from(SPECIAL) | st.characters(), max_size=60)
ENVS = st.dictionaries(NAMES, st.text(st.sampled_from(SPECIAL) | st.characters(), max_size=12))
LEXERS = st.builds(
    Lexer, st.sampled_from(["\\", "`"]), raw_quotes=st.booleans(), raw_escapes=st.booleans(),
    skip_process_quotes=st.booleans(), skip_unset_env=st.booleans())
GO_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


@FUZZ
@given(lexer=LEXERS, word=TEXT, env=ENVS)
def test_any_input_expands_or_raises_dockerfile_error(lexer: Lexer, word: str,
                                                      env: dict[str, str]) -> None:
    try:
        result = lexer.expand_word_with_matches(word, env)
    except DockerfileError as err:
        assert err.message.startswith("failed to process ")
        return
    assert isinstance(result.value, str)
    assert all(isinstance(w, str) and w for w in result.words)
    assert result.used <= env.keys()
    assert not result.unset & env.keys()
    assert lexer.expand_word(word, env) == result.value
    assert lexer.expand_words(word, env) == list(result.words)


@FUZZ
@given(word=st.text(st.characters(blacklist_characters="$'\"\\\ufeff"), max_size=40))
def test_text_without_special_characters_is_unchanged(word: str) -> None:
    assert Lexer().expand_word(word, {"A": "x"}) == word
    assert Lexer().expand_words(word, {}) == [w for w in GO_SPACE.split(word) if w]


@FUZZ
@given(word=st.text(max_size=40))
def test_escaping_every_character_gives_the_text_back(word: str) -> None:
    for escape in ("\\", "`"):
        escaped = "".join(escape + char for char in word)
        assert Lexer(escape).expand_word(escaped, {}) == word
        assert Lexer(escape).expand_words(escaped, {}) == ([word] if word else [])


@FUZZ
@given(word=st.text(st.characters(blacklist_characters="'"), max_size=40))
def test_single_quotes_keep_everything(word: str) -> None:
    assert Lexer().expand_word(f"'{word}'", {"A": "x"}) == word


@FUZZ
@given(name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), value=st.text())
def test_variable_values_are_inserted_as_they_are(name: str, value: str) -> None:
    env = {name: value}
    assert Lexer().expand_word(f"${{{name}}}", env) == value
    assert Lexer().expand_word(f'"${name}"', env) == value
    assert Lexer().expand_word(f"${{{name}:-d}}", env) == (value or "d")


# --- the pattern matcher against Python's backtracking regexes (Go's leftmost-first rules) ----

PATTERN_CHARS = st.sampled_from(list("ab*?\\\n}/"))
PATTERNS = st.text(PATTERN_CHARS, max_size=8)
VALUES = st.text(st.sampled_from(list("ab*?\\\n}/")), max_size=12)


def go_regex(source: str, *, greedy: bool) -> re.Pattern[str] | None:
    """The regular expression BuildKit would build; None where it reports an invalid escape."""
    out: list[str] = []
    i = 0
    while i < len(source):
        char = source[i]
        i += 1
        if char == "*":
            out.append(".*" if greedy else ".*?")
        elif char == "?":
            out.append(".")
        elif char != "\\":
            out.append(re.escape(char))
        elif i < len(source) and source[i] in "}/":
            continue
        elif i < len(source) and source[i] in "*?\\":
            out.append(re.escape(source[i]))
            i += 1
        else:
            return None
    return re.compile("".join(out))


def go_replace_all(regex: re.Pattern[str], value: str, replacement: str) -> str:
    """Go's ReplaceAllString loop (empty matches right after a match are not replaced)."""
    out, last, search = [], 0, 0
    while search <= len(value):
        found = regex.search(value, search)
        if found is None:
            break
        out.append(value[last:found.start()])
        if found.end() > last or found.start() == 0:
            out.append(replacement)
        last = found.end()
        search = search + 1 if search + 1 > found.end() else found.end()
    return "".join(out) + value[last:]


@FUZZ
@given(pattern=PATTERNS, value=VALUES, longest=st.booleans())
def test_trim_prefix_agrees_with_regex(pattern: str, value: str, longest: bool) -> None:
    regex = go_regex(pattern, greedy=longest)
    if regex is None:
        try:
            shellpattern.trim_prefix(pattern, value, longest=longest)
        except DockerfileError:
            return
        raise AssertionError("invalid pattern accepted")
    found = regex.match(value)
    expected = value[found.end():] if found else value
    assert shellpattern.trim_prefix(pattern, value, longest=longest) == expected


@FUZZ
@given(pattern=PATTERNS, value=VALUES, longest=st.booleans())
def test_trim_suffix_agrees_with_regex(pattern: str, value: str, longest: bool) -> None:
    regex = go_regex(shellpattern.reverse_pattern(pattern), greedy=longest)
    if regex is None:
        return
    reversed_value = value[::-1]
    found = regex.match(reversed_value)
    expected = (reversed_value[found.end():] if found else reversed_value)[::-1]
    assert shellpattern.trim_suffix(pattern, value, longest=longest) == expected


@FUZZ
@given(pattern=PATTERNS, value=VALUES, replacement=st.text(st.sampled_from("xy"), max_size=2))
def test_replace_agrees_with_regex(pattern: str, value: str, replacement: str) -> None:
    regex = go_regex(pattern, greedy=True)
    if regex is None:
        return
    found = regex.search(value)
    first = value[:found.start()] + replacement + value[found.end():] if found else value
    assert shellpattern.replace_first(pattern, value, replacement) == first
    assert shellpattern.replace_all(pattern, value, replacement, max_length=10_000) == \
        go_replace_all(regex, value, replacement)
