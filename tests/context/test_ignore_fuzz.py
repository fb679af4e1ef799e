"""Property tests: any ignore file either fails to parse with ContextError or yields a matcher
whose answers are booleans, whose two engines agree, and whose walk pruning is safe."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.context.ignore import IgnoreMatcher, parse_ignore
from core.errors import ContextError

SETTINGS = settings(max_examples=300, deadline=None)

# Free-form text over the characters that mean something in patterns and paths.
PATTERN_CHARS = "ab/*?[]^!-\\. #\té"
PATH_CHARS = "ab.*?[]\\!-é #"
lines = st.lists(st.text(PATTERN_CHARS, max_size=10), max_size=6)
segments = st.text(PATH_CHARS, min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
paths = st.lists(segments, min_size=1, max_size=4).map("/".join)

# Structured inputs over a tiny alphabet, so that patterns hit paths often.
glob_segments = st.sampled_from(["a", "b", "ab", "*", "?", "**", "a*", "*b", "[ab]", "[^a]", "a?"])
globs = st.lists(glob_segments, min_size=1, max_size=3).map("/".join)
glob_lines = st.lists(st.tuples(st.booleans(), globs).map(lambda t: "!" * t[0] + t[1]), max_size=5)
small_paths = st.lists(st.sampled_from(["a", "b", "ab", "ba"]), min_size=1, max_size=3).map(
    "/".join
)


def parse_or_none(pattern_lines: list[str]) -> IgnoreMatcher | None:
    try:
        return parse_ignore("\n".join(pattern_lines))
    except ContextError:
        return None


def ancestors_and_self(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]


def check_engines_agree(matcher: IgnoreMatcher, path: str) -> None:
    for pattern in matcher.patterns:
        assert (pattern.regex.match(path) is not None) is pattern.automaton.matches(path)


def check_forward_model(matcher: IgnoreMatcher, path: str) -> None:
    """moby's loop: patterns in order, a pattern that could flip the answer and matches the
    path or a parent directory flips it."""
    excluded = False
    for pattern in matcher.patterns:
        if pattern.exception == excluded and any(
            pattern.regex.fullmatch(candidate) for candidate in ancestors_and_self(path)
        ):
            excluded = not pattern.exception
    assert matcher.matches(path) is excluded


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_context_error(data: bytes) -> None:
    try:
        matcher = parse_ignore(data)
    except ContextError:
        return
    assert isinstance(matcher, IgnoreMatcher)


@SETTINGS
@given(lines, st.text(max_size=12))
def test_answers_are_booleans_for_any_path(pattern_lines: list[str], path: str) -> None:
    matcher = parse_or_none(pattern_lines)
    if matcher is not None:
        assert isinstance(matcher.matches(path), bool)
        assert isinstance(matcher.must_walk(path), bool)
        assert matcher.deciding_pattern(path) in (None, *matcher.patterns)


@SETTINGS
@given(lines, paths)
def test_free_form_patterns_agree_with_the_model_and_across_engines(
    pattern_lines: list[str], path: str
) -> None:
    matcher = parse_or_none(pattern_lines)
    if matcher is not None:
        check_engines_agree(matcher, path)
        check_forward_model(matcher, path)


@SETTINGS
@given(glob_lines, small_paths)
def test_structured_patterns_agree_with_the_model_and_across_engines(
    pattern_lines: list[str], path: str
) -> None:
    matcher = parse_ignore("\n".join(pattern_lines))
    check_engines_agree(matcher, path)
    check_forward_model(matcher, path)


@st.composite
def walk_cases(draw: st.DrawFn) -> tuple[list[str], str, str]:
    """An exclusion and an exception blurred from a directory and a path inside it, in any
    order among other patterns: excluded directories with re-included content come up often."""
    directory, below = draw(small_paths), draw(small_paths)

    def blur(path: str) -> str:
        return "/".join(draw(st.sampled_from([part, draw(glob_segments)]))
                        for part in path.split("/"))

    chosen = [blur(directory), "!" + blur(f"{directory}/{below}"), *draw(glob_lines)]
    return draw(st.permutations(chosen)), directory, below


@SETTINGS
@given(walk_cases())
def test_must_walk_never_prunes_a_re_included_path(case: tuple[list[str], str, str]) -> None:
    pattern_lines, directory, below = case
    matcher = parse_ignore("\n".join(pattern_lines))
    if matcher.matches(directory) and not matcher.matches(f"{directory}/{below}"):
        assert matcher.must_walk(directory)


literal_segments = st.text("ab.*?[]\\!-é#", min_size=1, max_size=4).filter(
    lambda s: s not in (".", "..")
)
literal_paths = st.lists(literal_segments, min_size=1, max_size=3).map("/".join)


@SETTINGS
@given(literal_paths, literal_paths)
def test_an_exception_naming_a_path_inside_forces_the_walk(directory: str, below: str) -> None:
    inside = f"{directory}/{below}"
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in inside)
    matcher = parse_ignore(f"*\n!{escaped}\n")
    assert matcher.matches(directory)
    assert matcher.must_walk(directory)
    assert not matcher.matches(inside)
