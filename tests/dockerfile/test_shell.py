"""Word expansion (core.dockerfile.shell) and its shell patterns (core.dockerfile.shellpattern)."""

from __future__ import annotations

import time

import pytest

from core.dockerfile import shellpattern
from core.dockerfile.shell import EXPANDED_INSTRUCTIONS, MAX_NESTING, Expansion, Lexer
from core.errors import DockerfileError

ENV = {"SET": "value", "EMPTY": "", "PATHS": "/usr/local/lib/file.tar.gz", "SPACED": " x  y "}


def expand(word: str, env: dict[str, str] | None = None, **options: object) -> str:
    return Lexer(**options).expand_word(word, ENV if env is None else env)  # type: ignore[arg-type]


def error_of(word: str, env: dict[str, str] | None = None, escape: str = "\\") -> str:
    with pytest.raises(DockerfileError) as caught:
        Lexer(escape).expand_word(word, ENV if env is None else env)
    return caught.value.message


# --- operators -------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "expected"), [
    ("$SET", "value"), ("${SET}", "value"), ("$UNSET", ""), ("${UNSET}x", "x"),
    ("${SET-d}", "value"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${SET:-d}", "value"), ("${EMPTY:-d}", "d"), ("${UNSET:-d}", "d"),
    ("${SET+a}", "a"), ("${EMPTY+a}", "a"), ("${UNSET+a}", ""),
    ("${SET:+a}", "a"), ("${EMPTY:+a}", ""), ("${UNSET:+a}", ""),
    ("${SET?m}", "value"), ("${EMPTY?m}", ""), ("${SET:?m}", "value"),
    ("${UNSET:-${SET}}", "value"), ("${UNSET:-${ALSO:-deep}}", "deep"),
    ("${UNSET:-a\\}b}", "a}b"), ("${UNSET:-'q}'}", "q}"), ('${UNSET:-"$SET"}', "value"),
    ("${SET:+[$SET]}", "[value]"), ("${UNSET:--}", "-"), ("${UNSET:-}", ""),
])
def test_substitution_operators(word: str, expected: str) -> None:
    assert expand(word) == expected


@pytest.mark.parametrize(("word", "expected"), [
    ("${PATHS#*/}", "usr/local/lib/file.tar.gz"),
    ("${PATHS##*/}", "file.tar.gz"),
    ("${PATHS%.*}", "/usr/local/lib/file.tar"),
    ("${PATHS%%.*}", "/usr/local/lib/file"),
    ("${PATHS#/usr}", "/local/lib/file.tar.gz"),
    ("${PATHS#nomatch}", "/usr/local/lib/file.tar.gz"),
    ("${PATHS#}", "/usr/local/lib/file.tar.gz"),
    ("${PATHS%%}", "/usr/local/lib/file.tar.gz"),
    ("${PATHS#?????}", "local/lib/file.tar.gz"),
    ("${PATHS:#/usr}", "/local/lib/file.tar.gz"),  # BuildKit reads `:#` as `#`
    ("${UNSET#x}", ""),
    ("${PATHS/lib/LIB}", "/usr/local/LIB/file.tar.gz"),
    ("${PATHS//\\//:}", ":usr:local:lib:file.tar.gz"),
    ("${PATHS//\\//\\/}", "\\/usr\\/local\\/lib\\/file.tar.gz"),
    ("${PATHS/l*/X}", "/usr/X"),
    ("${PATHS//?/.}", "." * 26),
    ("${PATHS/#\\/usr/X}", "/usr/local/lib/file.tar.gz"),  # no bash anchors: `#` is literal
    ("${PATHS//.}", None),
    ("${UNSET/a/b}", ""),
    ("${SET/}", None),
])
def test_pattern_operators(word: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(DockerfileError):
            expand(word)
    else:
        assert expand(word) == expected


@pytest.mark.parametrize(("value", "word", "expected"), [
    ("xxyy", "${V#*x*y}", "y"),
    ("xxyy", "${V##*x}", "yy"),
    ("xxyy", "${V#*}", "xxyy"),
    ("xxyy", "${V%y*}", "xxy"),
    ("a***yy*", "${V%%\\**\\*}", "a"),
    ("()[]{}^$.*?|\\x", "${V#()[]{\\}^$.\\*\\?|\\\\}", "x"),
    ("???y", "${V#?\\?}", "?y"),
    ("ab\ncd", "${V##*}", "\ncd"),  # wildcards do not match a newline
    ("ab\ncd", "${V%%*}", "ab\n"),
    ("a\nb", "${V//?/x}", "x\nx"),
    ("ab", "${V//*/X}", "X"),  # Go skips the empty match right after a match
    ("ab", "${V///-}", "-a-b-"),
    ("", "${V/*/X}", "X"),
    ("ax1 ax2", "${V/x*/Y}", "aY"),
    ("ax1\nax2", "${V//x*/Y}", "aY\naY"),
    ("\u00e9t\u00e9", "${V//\u00e9/e}", "ete"),
])
def test_pattern_semantics(value: str, word: str, expected: str) -> None:
    assert expand(word, {"V": value}) == expected


@pytest.mark.parametrize(("replacement", "every", "expected"), [
    ("<$0>", True, "<a>b<a>"), ("<${0}>", True, "<a>b<a>"), ("$$", True, "$b$"),
    ("$x", True, "b"), ("${x}", True, "b"), ("$", True, "$b$"), ("${0", True, "${0b${0"),
    ("$00", True, "b"), ("$1", True, "b"), ("<$0>", False, "<$0>ba"),
])
def test_replacement_template(replacement: str, every: bool, expected: str) -> None:
    """`//` runs the replacement through Go's template expansion; `/` uses it as it is."""
    word = "${V//a/$R}" if every else "${V/a/$R}"
    assert expand(word, {"V": "aba", "R": replacement}) == expected


def test_reverse_pattern_keeps_escape_pairs() -> None:
    assert shellpattern.reverse_pattern("a\\*c") == "c\\*a"
    assert shellpattern.reverse_pattern("\\\\\\ab") == "b\\a\\\\"
    assert shellpattern.reverse_pattern("ab\\") == "\\ba"
    assert shellpattern.reverse_pattern("\U0001f47d\\\U0001f680\U0001f596") == \
        "\U0001f596\\\U0001f680\U0001f47d"


# --- quoting, escapes, words -----------------------------------------------------------------

@pytest.mark.parametrize(("word", "expected"), [
    ("'$SET'", "$SET"), ('"$SET"', "value"), ("\\$SET", "$SET"), ('"\\$SET"', "$SET"),
    ('"a\\b"', "a\\b"), ('"a\\\\b"', "a\\b"), ("'a\\'", "a\\"), ("a\\", "a"),
    ("$", "$"), ("a$", "a$"), ("$ x", "$ x"), ("$.", "$."), ("$1x", "x"), ("$$", ""),
    ("\ufeff$SET", "value"), ("a\ufeff$SET", "a\ufeffvalue"),
])
def test_quotes_and_escapes(word: str, expected: str) -> None:
    assert expand(word) == expected


@pytest.mark.parametrize(("word", "expected"), [
    ("he`$SET", "he$SET"), ("C:\\dir\\$SET", "C:\\dir\\value"), ('"a`"b"', 'a"b'),
    ('"a\\"', "a\\"), ('"a``b"', "a`b"), ('"a`b"', "a`b"), ("a`", "a"), ("a``", "a`"),
    ("${UNSET:-`}}", "}"), ("'`$SET'", "`$SET"),
])
def test_backtick_escape(word: str, expected: str) -> None:
    assert Lexer("`").expand_word(word, ENV) == expected


def test_backtick_escape_splits_words() -> None:
    assert Lexer("`").expand_words("a` b c\\ d", ENV) == ["a b", "c\\", "d"]


@pytest.mark.parametrize(("word", "expected"), [
    ("a  b", ["a", "b"]), ('"a  b"', ["a  b"]), ("a\\ b", ["a b"]), ('""', []), ("", []),
    ('a "" b', ["a", "b"]), ("$SPACED", ["x", "y"]), ('"$SPACED"', [" x  y "]),
    ("<$SPACED>", ["<", "x", "y", ">"]), ('${UNSET:-"x y"}z', ["x", "yz"]),
    ("a\tb\nc", ["a", "b", "c"]), ("'a b'c\\ d", ["a bc d"]),
])
def test_words(word: str, expected: list[str]) -> None:
    assert Lexer().expand_words(word, ENV) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("a\u00a0b", ["a", "b"]), ("a\u3000b", ["a", "b"]), ("a\x85b", ["a", "b"]),
    ("a\u200bb", ["a\u200bb"]), ("a\x1cb", ["a\x1cb"]),
])
def test_words_split_on_go_white_space(value: str, expected: list[str]) -> None:
    assert Lexer().expand_words("$V", {"V": value}) == expected


# --- matches ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "used", "unset"), [
    ("x", set(), set()),
    ("x ${MISSING}", set(), {"MISSING"}),
    ("${SET:-$OTHER}", {"SET"}, {"OTHER"}),  # the default is expanded even when not needed
    ("${SET-a} ${EMPTY-b} ${GONE-c}", {"SET", "EMPTY"}, {"GONE"}),
    ("$1 ${@} $$", set(), {"1", "@", "$"}),
    ("'$SET' \\$EMPTY", set(), set()),
    ("${PATHS#$SET}", {"PATHS", "SET"}, set()),
    ("${GONE/$SET/$EMPTY}", {"SET", "EMPTY"}, {"GONE"}),
])
def test_matches(word: str, used: set[str], unset: set[str]) -> None:
    result = Lexer().expand_word_with_matches(word, ENV)
    assert result.used == used
    assert result.unset == unset
    assert isinstance(result.used, frozenset)


def test_expansion_carries_value_and_words() -> None:
    result = Lexer().expand_word_with_matches("a $SPACED", ENV)
    assert result == Expansion("a  x  y ", ("a", "x", "y"), frozenset({"SPACED"}), frozenset())


def test_release_name_idiom() -> None:
    word = "tool-${VERSION}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tar.gz"
    env = {"VERSION": "v1.2.3", "OS": "linux", "ARCH": "arm"}
    assert Lexer().expand_word(word, {**env, "VARIANT": "v7"}) == "tool-v1.2.3.linux-arm-v7.tar.gz"
    assert Lexer().expand_word(word, {**env, "VARIANT": ""}) == "tool-v1.2.3.linux-arm.tar.gz"
    assert Lexer().expand_word(word, env) == "tool-v1.2.3.linux-arm.tar.gz"


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "message"), [
    ("${}", "syntax error: bad substitution"),
    ("${:-x}", "syntax error: bad substitution"),
    ("${{x}", "syntax error: bad substitution"),
    ("${", "syntax error: missing '}'"),
    ("${SET", "syntax error: missing '}'"),
    ("${SET:-x", "syntax error: missing '}'"),
    ("${SET:", "syntax error: missing '}'"),
    ("${SET:-'x}", "syntax error: missing '}'"),
    ("${SET:-a\\", "syntax error: missing '}'"),
    ("${SET/a/b", "syntax error: missing '}'"),
    ("${SET/a}", "syntax error: missing '/' in ${}"),
    ("${SET:=x}", "unsupported modifier (:=) in substitution"),
    ("${SET=x}", "unsupported modifier (=) in substitution"),
    ("${SET.x}", "unsupported modifier (.) in substitution"),
    ("${SET:/a/b}", "unsupported modifier (:/) in substitution"),
    ("${#SET}", "unsupported modifier (S) in substitution"),
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
    ('"abc\\"', "unexpected end of statement while looking for matching double-quote"),
    ("${UNSET?}", "UNSET: is not allowed to be unset"),
    ("${UNSET:?}", "UNSET: is not allowed to be unset"),
    ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("${UNSET:?need $SET here}", "UNSET: need value here"),
    ("${SET:-${UNSET:?inner}}", "UNSET: inner"),
    ("${SET#\\a}", "invalid pattern (\\a) in substitution: invalid escape '\\a'"),
    ("${SET%x\\\\\\}", "syntax error: missing '}'"),
])
def test_error_messages(word: str, message: str) -> None:
    text = error_of(word)
    assert text.endswith(": " + message), text
    assert text.startswith("failed to process ")


def test_error_names_the_word_go_style() -> None:
    assert error_of('a\t"${') == 'failed to process "a\\t\\"${": syntax error: missing \'}\''
    assert error_of('"\x01\u00a0\U0001f600') == 'failed to process "\\"\\x01\\u00a0\U0001f600": ' \
        "unexpected end of statement while looking for matching double-quote"
    long_word = "${" + "x" * 1000
    assert error_of(long_word).startswith('failed to process "${xxx')
    assert '"...: ' in error_of(long_word)


def test_error_has_no_location_yet() -> None:
    with pytest.raises(DockerfileError) as caught:
        Lexer().expand_word("${", {})
    assert caught.value.line == 0


def test_lexer_rejects_other_escape_characters() -> None:
    with pytest.raises(DockerfileError):
        Lexer("x")


# --- options ---------------------------------------------------------------------------------

def test_raw_quotes_keeps_quote_characters() -> None:
    assert expand("'a b' \"$SET\"", raw_quotes=True) == "'a b' \"value\""


def test_raw_escapes_keeps_escape_characters() -> None:
    assert expand("a\\$SET \\x", raw_escapes=True) == "a\\$SET \\x"
    assert expand('"a\\b"', raw_escapes=True) == "a\\\\b"  # as BuildKit: kept twice


def test_skip_process_quotes_treats_quotes_as_text() -> None:
    assert expand("echo '$SET' \"$SET\"", skip_process_quotes=True) == "echo 'value' \"value\""
    assert expand("it's", skip_process_quotes=True) == "it's"


def test_skip_unset_env_leaves_unset_references() -> None:
    word = "$U ${U} ${U:-d} ${U/a/b} ${U//a/b} ${U#x} $SET ${SET:+y}"
    assert expand(word, skip_unset_env=True) == \
        "$U ${U} ${U:-d} ${U/a/b} ${U//a/b} ${U#x} value y"


# --- bounds and speed ------------------------------------------------------------------------

def test_output_length_is_capped() -> None:
    with pytest.raises(DockerfileError, match="longer than 100 characters"):
        expand("$A$A", {"A": "x" * 60}, max_length=100)
    assert expand("$A", {"A": "x" * 60}, max_length=100) == "x" * 60


@pytest.mark.parametrize("word", [
    "$A" * 20_000,
    '"' + "$A" * 20_000 + '"',
    "${B:-" + "$A" * 20_000 + "}",
    "${A//?/$A}",
    "${A//a/$A}",
    "${A//??/$A}",
])
def test_blow_up_attempts_fail_fast(word: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DockerfileError, match="longer than"):
        Lexer().expand_word(word, {"A": "a" * 100_000})
    assert time.perf_counter() - start < 2.0


def test_nesting_is_capped() -> None:
    deep = "${U:-" * MAX_NESTING + "x" + "}" * MAX_NESTING
    assert Lexer().expand_word(deep, {}) == "x"
    too_deep = "${U:-" * (MAX_NESTING + 1) + "x" + "}" * (MAX_NESTING + 1)
    with pytest.raises(DockerfileError, match="nested too deeply"):
        Lexer().expand_word(too_deep, {})
    with pytest.raises(DockerfileError):
        Lexer().expand_word('${U:-"' * 5000, {})


def test_pattern_work_is_capped() -> None:
    start = time.perf_counter()
    with pytest.raises(DockerfileError, match="too costly"):
        Lexer().expand_word("${A/$P/x}", {"A": "a" * 20_000, "P": "?" * 2_000 + "b"})
    assert time.perf_counter() - start < 5.0


def test_pattern_matching_is_linear_for_ordinary_patterns() -> None:
    value = ("word " * 40_000) + "end"
    start = time.perf_counter()
    assert expand("${A##*e}", {"A": value}) == "nd"
    assert expand("${A%%w*}", {"A": value}) == ""
    assert expand("${A//o?d/x}", {"A": value}).count("x") == 40_000
    assert expand("${A/*a*b*c*d/x}", {"A": value}) == value
    assert time.perf_counter() - start < 5.0


def test_many_instructions_expand_quickly() -> None:
    lexer = Lexer()
    env = {f"VAR{i}": f"value-{i}" for i in range(100)} | {"HOME": "/root"}
    words = [f'${{VAR{i % 100}:-x}}/"$HOME"/lib-{i}.so ${{VAR{i % 7}#val}}' for i in range(10_000)]
    start = time.perf_counter()
    for word in words:
        lexer.expand_words(word, env)
    per_word = (time.perf_counter() - start) / len(words)
    assert per_word < 0.002, per_word


def test_expanded_instructions() -> None:
    assert {"add", "copy", "env", "expose", "from", "label", "stopsignal", "user", "volume",
            "workdir", "arg", "onbuild"} <= EXPANDED_INSTRUCTIONS
    assert not {"run", "cmd", "entrypoint", "shell", "healthcheck", "maintainer"} & \
        EXPANDED_INSTRUCTIONS
    assert isinstance(EXPANDED_INSTRUCTIONS, frozenset)
