"""Table tests for `.dockerignore` reading, matching, walking and file selection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.context.ignore import (
    IgnoreMatcher,
    compile_patterns,
    filter_paths,
    ignore_file_candidates,
    load_ignore,
    parse_ignore,
    select_ignore_file,
)
from core.errors import ContextError


def excluded(patterns: list[str], path: str) -> bool:
    return parse_ignore("\n".join(patterns)).matches(path)


# --- reading the file -----------------------------------------------------------------------


def test_reading_drops_comments_blanks_and_leading_slashes() -> None:
    text = (
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n"
        "! /inverted/abs/path\n"
    )
    matcher = parse_ignore(text)
    assert [(p.text, p.exception, p.line) for p in matcher.patterns] == [
        ("test1", False, 1),
        ("test2", False, 2),
        ("a/file/here", False, 3),
        ("lastfile", False, 5),
        ("inverted/abs/path", True, 7),
    ]
    assert matcher.source == ".dockerignore"


@pytest.mark.parametrize(
    ("line", "text", "exception"),
    [
        ("\t\tfoo \t", "foo", False),
        ("foo\r", "foo", False),
        ("./a/../b//c/", "b/c", False),
        ("//x", "x", False),
        ("!  keep ", "keep", True),
        ("! /keep/", "keep", True),
        ("!!bang", "!bang", True),
        (" # not a comment", "# not a comment", False),
        ("a/..", ".", False),
        ("/", "/", False),
        ("**/", "**", False),
        ("foo\u3000", "foo", False),  # Go trims Unicode spaces too
        ("foo\x1f", "foo\x1f", False),  # ...but not the ASCII separators str.strip() would
    ],
)
def test_reading_normalises_each_line(line: str, text: str, exception: bool) -> None:
    (pattern,) = parse_ignore(line).patterns
    assert (pattern.text, pattern.exception) == (text, exception)


def test_reading_handles_crlf_and_bom_on_first_line_only() -> None:
    matcher = parse_ignore(b"\xef\xbb\xbf# comment\r\na\r\n\xef\xbb\xbfb\r\n")
    assert [p.text for p in matcher.patterns] == ["a", "\ufeffb"]
    assert [p.line for p in matcher.patterns] == [2, 3]


def test_bom_before_a_pattern_is_dropped() -> None:
    assert parse_ignore("\ufeffsecret").matches("secret")


def test_str_and_bytes_parse_alike() -> None:
    text = "*.md\n!README.md\n"
    assert parse_ignore(text).patterns == parse_ignore(text.encode()).patterns


def test_undecodable_bytes_match_paths_decoded_like_os_fsdecode() -> None:
    matcher = parse_ignore(b"caf\xe9\n")
    assert matcher.matches("caf\udce9")
    assert not matcher.matches("café")


def test_empty_file_excludes_nothing() -> None:
    for text in ("", "\n\n", "# only comments\n#\n"):
        matcher = parse_ignore(text)
        assert matcher.patterns == ()
        assert not matcher.matches("anything")


def test_dot_dot_and_root_patterns_match_nothing_inside_the_context() -> None:
    assert not excluded(["../x"], "x")
    assert not excluded(["a/.."], "a")
    assert not excluded(["/"], "a")
    assert not excluded(["."], "a")


@pytest.mark.parametrize(
    "pattern",
    ["[", "[^", "[^bc", "a[", "[]a]", "[^]", "[-]", "[x-]", "[-x]", "[a-b-c]", "[z-a]",
     "\\", "a\\", "[\\", "!", "!  ", "!/", "![", "!a[-]"],
)
def test_invalid_patterns_are_context_errors_naming_the_line(pattern: str) -> None:
    with pytest.raises(ContextError) as caught:
        parse_ignore(f"# header\n\nok\n{pattern}\n", source="app.Dockerfile.dockerignore")
    assert "app.Dockerfile.dockerignore:4:" in str(caught.value)


def test_error_message_shortens_a_long_pattern() -> None:
    with pytest.raises(ContextError) as caught:
        parse_ignore("[" + "x" * 500)
    assert len(str(caught.value)) < 200


def test_compile_patterns_follows_patternmatcher_new() -> None:
    matcher = compile_patterns(["*.go", "", "  ", "!main.go", "/abs"], source="COPY --exclude")
    assert [(p.text, p.exception, p.line) for p in matcher.patterns] == [
        ("*.go", False, 1), ("main.go", True, 4), ("/abs", False, 5),
    ]
    assert matcher.matches("x.go")
    assert not matcher.matches("main.go")
    assert not matcher.matches("abs")  # no leading-slash stripping at this level
    with pytest.raises(ContextError, match="COPY --exclude:2:"):
        compile_patterns(["ok", "!"], source="COPY --exclude")


# --- single patterns ------------------------------------------------------------------------

SINGLE = [
    # plain names, `*`, `?` and parent directories
    ("*", "file", True),
    ("*", "dir/file", True),
    ("*.go", "main.go", True),
    ("*.go", "cmd/main.go", False),
    ("docs", "docs", True),
    ("docs", "docs/README.md", True),
    ("docs", "docsx", False),
    ("foo/bar", "foo/bar/baz/qux", True),
    ("foo/bar", "foo", False),
    ("a*", "ab/c", True),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("*x", "xxx", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("temp?", "tempa", True),
    ("temp?", "temp", False),
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("*/*/temp*", "somedir/temporary.txt", False),
    # regex metacharacters are literal
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    # `**`
    ("**", "file", True),
    ("**", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("dir/**", "dir", False),
    ("**/dir", "dir", True),
    ("**/dir", "a/b/dir", True),
    ("**/dir", "a/dir/file", True),
    ("**/dir", "adir", False),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir2/file", True),
    ("**/dir2/*", "dir2", False),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("**/*.txt", "file.txt", True),
    ("**/*.txt", "a/b/file.txt", True),
    ("**/**/*.txt", "a/b/file.txt", True),
    ("**/**/*.txt2", "a/b/file.txt", False),
    ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt**", "a/file.txt", True),
    ("abc**", "abcdef/x", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    # moby quirks kept on purpose: a leading `**` before plain text is a suffix test...
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**file", "dir/afile", True),
    ("**.go", "x/y/main.go", True),
    # ...while an inner `**` not followed by `/` still means "whole directories"
    ("a**b", "ab", True),
    ("a**b", "ax/b", True),
    ("a**b", "axb", False),
    ("***", "a/b", True),
    # classes
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    ("a[^b-d]e", "ace", False),
    ("ab[c]", "abc", True),
    ("ab[^e-g]", "abc", True),
    ("ab[^b-d]", "abc", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "a", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a[^a]b", "a☺b", True),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("a?b", "a☺b", True),
    ("a???b", "a☺b", False),
    # Docker negates with `^` only: in `[!a]` the `!` is a member (as in Go's filepath.Match)
    ("[!a]", "!", True),
    ("[!a]", "b", False),
    # a negated class is a set of characters, so it can match `/` (as moby's regexp does)
    ("a[^x]b", "a/b", True),
    # escapes
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a\\\\", "a\\", True),
    ("\\[x]", "[x]", True),
    ("\\?", "?", True),
    ("\\?", "a", False),
    ("\\d", "d", True),  # an escaped letter is that letter, not a regexp class
]


@pytest.mark.parametrize(("pattern", "path", "expected"), SINGLE)
def test_single_pattern(pattern: str, path: str, expected: bool) -> None:
    assert excluded([pattern], path) is expected


@pytest.mark.parametrize(("pattern", "path", "expected"), SINGLE)
def test_both_engines_agree_on_the_table(pattern: str, path: str, expected: bool) -> None:
    (compiled,) = parse_ignore(pattern).patterns
    assert (compiled.regex.match(path) is not None) is expected
    assert compiled.automaton.matches(path) is expected


@pytest.mark.parametrize("path", ["a/b/", "./a/b", "/a/b", "a//b", "a/./b", "x/../a/b"])
def test_paths_are_cleaned_before_matching(path: str) -> None:
    assert excluded(["a/b"], path)


@pytest.mark.parametrize("path", ["", ".", "/", "./", "x/.."])
def test_the_context_root_is_never_excluded(path: str) -> None:
    matcher = parse_ignore("*\n**\n.\n")
    assert not matcher.matches(path)
    assert not matcher.must_walk(path)


# --- several patterns: order and exceptions -------------------------------------------------

MULTI = [
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["*.md", "!README.md"], "docs/guide.md", False),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
    (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["docs", "!docs/README.md"], "docs", True),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs", False),
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web"], "util/docker/other", True),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/bar", False),
    (["**", "!dist/*.whl"], "dist/pkg-1.0+local-py3-none-any.whl", False),
    (["*", "!keep"], "keep", False),
    (["*", "!keep"], "keep/inside/file", False),
    (["*", "!keep"], "other", True),
    (["vendor", "!vendor/keep.txt", "vendor/keep.txt"], "vendor/keep.txt", True),
    (["!x"], "x", False),
    # the last line that matches the path or a parent directory decides
    (["a/b", "!a"], "a/b", False),
    (["!a", "a/b"], "a/b", True),
    (["a", "!a", "a"], "a/b", True),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), MULTI)
def test_pattern_order_and_exceptions(patterns: list[str], path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected


def test_deciding_pattern_is_the_last_match() -> None:
    matcher = parse_ignore("*.md\n!README*.md\nREADME-secret.md\n")
    deciding = matcher.deciding_pattern("README-secret.md")
    assert deciding is not None and (deciding.text, deciding.line) == ("README-secret.md", 3)
    deciding = matcher.deciding_pattern("README.md")
    assert deciding is not None and deciding.exception and deciding.line == 2
    assert matcher.deciding_pattern("main.go") is None


def test_dockerfile_and_dockerignore_match_like_any_path() -> None:
    # Excluding them keeps them out of COPY/ADD; the builder still reads them itself.
    matcher = parse_ignore("Dockerfile\n.dockerignore\nbuild/*.Dockerfile*\n")
    for path in ("Dockerfile", ".dockerignore", "build/app.Dockerfile",
                 "build/app.Dockerfile.dockerignore"):
        assert matcher.matches(path)
    assert not matcher.matches("sub/Dockerfile")
    assert parse_ignore("*\n").matches("Dockerfile")
    assert not parse_ignore("*\n!Dockerfile\n").matches("Dockerfile")


# --- walking ----------------------------------------------------------------------------------

WALK = [
    (["vendor"], "vendor", False),  # excluded, no exceptions: skip it
    (["vendor", "!vendor/keep.txt"], "vendor", True),
    (["vendor", "!vendor/keep.txt"], "vendor/sub", False),
    (["vendor", "!vendor/sub/keep.txt"], "vendor/sub", True),
    (["vendor", "!other/keep.txt"], "vendor", False),
    (["vendor", "!**/keep.txt"], "vendor", True),
    (["vendor", "!**/keep.txt"], "vendor/a/b", True),
    (["vendor", "!*/keep.txt"], "vendor", True),
    (["vendor", "!*/keep.txt"], "vendor/a", False),
    (["vendor", "!vendor?x"], "vendor", False),  # `?` never matches `/`
    (["vendor", "!vendor[^x]x"], "vendor", True),  # ...but a negated class can
    (["*", "!src/**/*.py"], "src", True),
    (["*", "!src/**/*.py"], "src/pkg/deep", True),
    (["*", "!src/**/*.py"], "docs", False),
    (["build", "!build"], "build", False),  # not excluded at all: nothing to decide
    (["a", "!a*"], "a", False),
    (["a/b", "!a/b/c"], "a/b", True),
    (["a/b", "!a/b/c"], "a", False),
    (["node_modules", "!node_modules/.bin", "node_modules/.bin/x"], "node_modules", True),
]


@pytest.mark.parametrize(("patterns", "directory", "expected"), WALK)
def test_must_walk(patterns: list[str], directory: str, expected: bool) -> None:
    assert parse_ignore("\n".join(patterns)).must_walk(directory) is expected


def test_has_exceptions() -> None:
    assert not parse_ignore("a\nb\n").has_exceptions
    assert parse_ignore("a\n!a/b\n").has_exceptions


def test_filter_paths_keeps_parents_of_re_included_files() -> None:
    matcher = parse_ignore("vendor\n!vendor/keep.txt\n**/*.md\n")
    paths = ["Dockerfile", "vendor", "vendor/a.go", "vendor/keep.txt", "src", "src/x.md",
             "src/main.py"]
    assert filter_paths(matcher, paths) == [
        "Dockerfile", "vendor", "vendor/keep.txt", "src", "src/main.py",
    ]


def test_filter_paths_without_patterns_keeps_everything_in_order() -> None:
    paths = ["b", "a", "a/c", "."]
    assert filter_paths(IgnoreMatcher(), iter(paths)) == paths


def test_filter_paths_drops_an_excluded_directory_when_nothing_inside_survives() -> None:
    matcher = parse_ignore("cache\n!cache/keep\n")
    assert filter_paths(matcher, ["cache", "cache/a", "x"]) == ["x"]


# --- performance ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("*a*a*a*a*a*a*b", "a" * 20_000),
        ("*a*a*a*a*a*a*b", "a/" * 5_000 + "a" * 5_000),
        ("**/**/**/**/**/**/x", "a/" * 5_000 + "y"),
        ("**a**a**a**a**b", "a/" * 5_000),
        ("[a-z]*[a-z]*[a-z]*[a-z]*.txt", "abc" * 5_000),
    ],
)
def test_pathological_patterns_stay_fast(pattern: str, path: str) -> None:
    matcher = parse_ignore(f"{pattern}\n!{pattern}/keep\n{pattern}\n")
    started = time.perf_counter()
    assert not matcher.matches(path)
    assert not matcher.must_walk(path)
    assert time.perf_counter() - started < 2.0


def test_short_paths_use_the_regex_long_ones_the_automaton() -> None:
    (pattern,) = parse_ignore("*a*a*a*a*a*a*b").patterns
    assert 0 < pattern.regex_limit < 20
    (simple,) = parse_ignore("node_modules").patterns
    assert simple.regex_limit > 10**9
    long_path = "xa" * 10 + "b"
    assert pattern.matches(long_path) is pattern.automaton.matches(long_path) is True
    assert pattern.regex.match(long_path) is not None


# --- choosing and loading the file -----------------------------------------------------------


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("Dockerfile", ("Dockerfile.dockerignore", ".dockerignore")),
        ("./Dockerfile", ("Dockerfile.dockerignore", ".dockerignore")),
        ("build/app.Dockerfile", ("build/app.Dockerfile.dockerignore", ".dockerignore")),
        ("./build/../app.Dockerfile", ("app.Dockerfile.dockerignore", ".dockerignore")),
        ("/abs/Dockerfile", ("/abs/Dockerfile.dockerignore", ".dockerignore")),
    ],
)
def test_ignore_file_candidates(dockerfile: str, expected: tuple[str, ...]) -> None:
    assert ignore_file_candidates(dockerfile) == expected


@pytest.mark.parametrize(
    ("existing", "dockerfile", "expected"),
    [
        (["build/app.Dockerfile.dockerignore", ".dockerignore"], "build/app.Dockerfile",
         "build/app.Dockerfile.dockerignore"),
        ([".dockerignore", "build/app.Dockerfile.dockerignore"], "build/app.Dockerfile",
         "build/app.Dockerfile.dockerignore"),
        ([".dockerignore"], "build/app.Dockerfile", ".dockerignore"),
        (["app.Dockerfile.dockerignore"], "build/app.Dockerfile", None),  # not beside it
        (["Dockerfile.dockerignore", ".dockerignore"], "Dockerfile", "Dockerfile.dockerignore"),
        (["./.dockerignore", "src/main.go"], "Dockerfile", ".dockerignore"),
        (["sub/.dockerignore"], "sub/Dockerfile", None),  # only the context root's counts
        ([], "Dockerfile", None),
        (["/ci/Dockerfile.dockerignore", ".dockerignore"], "/ci/Dockerfile",
         "/ci/Dockerfile.dockerignore"),
    ],
)
def test_select_ignore_file(existing: list[str], dockerfile: str, expected: str | None) -> None:
    assert select_ignore_file(existing, dockerfile) == expected


def make_context(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return root


def test_load_ignore_reads_the_context_root_file(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"Dockerfile": "FROM x\n", ".dockerignore": "*.log\n"})
    matcher = load_ignore(context, Path("Dockerfile"))
    assert matcher.source == ".dockerignore"
    assert matcher.matches("debug.log")


def test_load_ignore_prefers_the_dockerfile_specific_file(tmp_path: Path) -> None:
    context = make_context(tmp_path, {
        ".dockerignore": "*.log\n",
        "build/app.Dockerfile": "FROM x\n",
        "build/app.Dockerfile.dockerignore": "*.tmp\n",
    })
    for dockerfile in (Path("build/app.Dockerfile"), context / "build" / "app.Dockerfile"):
        matcher = load_ignore(context, dockerfile)
        assert matcher.source == "build/app.Dockerfile.dockerignore"
        assert matcher.matches("x.tmp") and not matcher.matches("x.log")


def test_load_ignore_falls_back_when_only_the_root_file_exists(tmp_path: Path) -> None:
    context = make_context(tmp_path, {".dockerignore": "secret\n", "ci/app.Dockerfile": ""})
    assert load_ignore(context, Path("ci/app.Dockerfile")).source == ".dockerignore"


def test_load_ignore_without_any_file_excludes_nothing(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"Dockerfile": "FROM x\n"})
    matcher = load_ignore(context, Path("Dockerfile"))
    assert matcher == IgnoreMatcher()
    assert not matcher.matches("anything")


def test_load_ignore_with_a_dockerfile_outside_the_context(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {".dockerignore": "*.log\n"})
    outside = make_context(tmp_path / "ci", {"Dockerfile": "", "Dockerfile.dockerignore": "x\n"})
    matcher = load_ignore(context, outside / "Dockerfile")
    assert matcher.source == (outside / "Dockerfile.dockerignore").as_posix()
    assert matcher.matches("x")


def test_load_ignore_with_a_relative_context_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_context(tmp_path, {".dockerignore": "a\n", "Dockerfile.dockerignore": "b\n"})
    monkeypatch.chdir(tmp_path)
    assert load_ignore(Path("."), Path("Dockerfile")).source == "Dockerfile.dockerignore"


def test_load_ignore_skips_a_directory_named_like_the_file(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"Dockerfile.dockerignore/x": "", ".dockerignore": "a\n"})
    assert load_ignore(context, Path("Dockerfile")).source == ".dockerignore"


def test_load_ignore_refuses_a_symlink_out_of_the_context(tmp_path: Path) -> None:
    context = make_context(tmp_path / "ctx", {"Dockerfile": ""})
    secret = make_context(tmp_path, {"secret.txt": "[top secret\n"}) / "secret.txt"
    (context / ".dockerignore").symlink_to(secret)
    with pytest.raises(ContextError, match="outside the build context"):
        load_ignore(context, Path("Dockerfile"))


def test_load_ignore_follows_a_symlink_inside_the_context(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"conf/ignore": "*.bak\n"})
    (context / ".dockerignore").symlink_to(context / "conf" / "ignore")
    assert load_ignore(context, Path("Dockerfile")).matches("a.bak")


def test_load_ignore_reports_syntax_errors_with_file_and_line(tmp_path: Path) -> None:
    context = make_context(tmp_path, {"app.Dockerfile.dockerignore": "ok\n[oops\n"})
    with pytest.raises(ContextError, match=r"app\.Dockerfile\.dockerignore:2:"):
        load_ignore(context, Path("app.Dockerfile"))


def test_load_ignore_caps_the_file_size(tmp_path: Path) -> None:
    context = make_context(tmp_path, {".dockerignore": "a\n" * 100})
    with pytest.raises(ContextError, match="larger than"):
        load_ignore(context, Path("Dockerfile"), max_bytes=64)
    assert len(load_ignore(context, Path("Dockerfile"), max_bytes=200).patterns) == 100
