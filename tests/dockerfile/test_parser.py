"""The parser's reading of lines: directives, comments, continuations, CRLF, errors."""

from __future__ import annotations

import time

import pytest

from core.dockerfile import Directive, dump_buildkit, parse_dockerfile
from core.errors import DockerfileError


def dump(text: str | bytes) -> str:
    return dump_buildkit(parse_dockerfile(text))


def error(text: str | bytes) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(text)
    return info.value


# --- parser directives --------------------------------------------------------------------

def test_directives_are_recorded_with_lower_case_names() -> None:
    result = parse_dockerfile("# Syntax = docker/dockerfile:1\n#ESCAPE=`\n# check=skip=all\n"
                              "FROM a\n")
    assert result.directives == (
        Directive("syntax", "docker/dockerfile:1", 1),
        Directive("escape", "`", 2),
        Directive("check", "skip=all", 3),
    )
    assert result.escape == "`"


def test_escape_backtick_changes_continuations() -> None:
    assert dump("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n") == (
        '(from "a")\n(run "dir c:\\\\   && echo")\n')


def test_directive_after_a_blank_line_is_a_comment() -> None:
    result = parse_dockerfile("\n# escape=`\nFROM a \\\n b\n")
    assert result.directives == ()
    assert result.escape == "\\"
    assert dump_buildkit(result) == '(from "a" "b")\n'


def test_directive_after_an_ordinary_comment_is_a_comment() -> None:
    result = parse_dockerfile("# hello\n# escape=`\nFROM a\n")
    assert result.directives == ()


def test_unknown_directive_ends_the_directives() -> None:
    result = parse_dockerfile("# foo=bar\n# escape=`\nFROM a\n")
    assert result.directives == ()
    assert result.escape == "\\"


def test_directive_after_an_instruction_is_a_comment() -> None:
    result = parse_dockerfile("FROM a\n# escape=`\n# escape=`\n")
    assert result.directives == ()


def test_directive_may_be_indented_and_spaced() -> None:
    result = parse_dockerfile("   #   escape   =   `   \nFROM a\n")
    assert result.directives == (Directive("escape", "`", 1),)


def test_directive_lines_are_not_comments_of_the_first_instruction() -> None:
    result = parse_dockerfile("# syntax=x\n# a comment\nFROM a\n")
    assert result.nodes[0].comments == ("a comment",)


@pytest.mark.parametrize("text", [
    "# escape=`\n# escape=\\\nFROM a\n",
    "# syntax=a\n# SYNTAX=b\nFROM a\n",
    "# check=a\n# Check=b\nFROM a\n",
])
def test_duplicate_directive_is_an_error(text: str) -> None:
    err = error(text)
    assert "parser directive can be used" in err.message
    assert err.line == 2
    assert err.source_line == text.splitlines()[1]


@pytest.mark.parametrize("value", ["x", "``", "\\\\", "/"])
def test_invalid_escape_is_an_error(value: str) -> None:
    err = error(f"# escape={value}\nFROM a\n")
    assert err.message == f"invalid escape token '{value}' does not match ` or \\"
    assert err.line == 1


def test_escape_of_only_blanks_keeps_the_last_blank() -> None:
    # BuildKit's lazy regular expression leaves one blank as the value, which is invalid.
    assert error("# escape= \t\nFROM a\n").message.startswith("invalid escape token '\t'")


def test_empty_directive_value_is_not_a_directive() -> None:
    result = parse_dockerfile("# escape=\nFROM a\n")
    assert result.directives == ()


def test_bom_is_stripped_before_directives() -> None:
    result = parse_dockerfile(b"\xef\xbb\xbf# escape=`\nFROM a\n")
    assert result.directives == (Directive("escape", "`", 1),)
    assert parse_dockerfile("\ufeffFROM a\n").nodes[0].original == "FROM a"


# --- comments, blank lines, continuations --------------------------------------------------

def test_comments_and_blank_lines_are_skipped() -> None:
    assert dump("# one\n\n   # two\nFROM a\n\n\t\n# three\nRUN b\n") == (
        '(from "a")\n(run "b")\n')


def test_comments_inside_a_continuation_are_dropped() -> None:
    result = parse_dockerfile("FROM a\nRUN one \\\n# inside\n  # indented\n  two\n")
    assert dump_buildkit(result) == '(from "a")\n(run "one   two")\n'
    assert (result.nodes[1].start_line, result.nodes[1].end_line) == (2, 5)
    assert result.warnings == ()


def test_empty_continuation_lines_warn() -> None:
    result = parse_dockerfile("FROM a\nRUN one \\\n\n   \n  two\n")
    assert dump_buildkit(result) == '(from "a")\n(run "one   two")\n'
    assert result.warnings == (
        "Dockerfile:2: Empty continuation line found in: RUN one   two (empty continuation "
        "lines will become errors in a future release)",)


def test_continuation_keeps_leading_blanks_of_following_lines() -> None:
    assert dump("FROM a\nRUN a\\\n   b\n") == '(from "a")\n(run "a   b")\n'


def test_escaped_escape_at_end_is_not_a_continuation() -> None:
    assert dump("FROM a\nENV C x\\\\\nENV D y\n") == (
        '(from "a")\n(env "C" "x\\\\\\\\" "")\n(env "D" "y" "")\n')


def test_trailing_blanks_after_the_escape_still_continue() -> None:
    assert dump("FROM a\nRUN a \\ \t \nb\n") == '(from "a")\n(run "a b")\n'


def test_continuation_at_end_of_file() -> None:
    assert dump("FROM a\nRUN a \\") == '(from "a")\n(run "a")\n'
    result = parse_dockerfile("FROM a\nRUN a \\\n# only a comment\n")
    assert (result.nodes[1].start_line, result.nodes[1].end_line) == (2, 3)


def test_lone_escape_with_nothing_after_it_is_an_error() -> None:
    err = error("FROM a\n\\\n")
    assert err.line == 2
    assert "no instruction" in err.message


def test_crlf_line_endings() -> None:
    result = parse_dockerfile(b"FROM a\r\nRUN one \\\r\n  two\r\n\r\nCMD [\"x\"]\r\n")
    assert dump_buildkit(result) == '(from "a")\n(run "one   two")\n(cmd "x")\n'
    assert [(n.start_line, n.end_line) for n in result.nodes] == [(1, 1), (2, 3), (5, 5)]


def test_lone_carriage_returns_do_not_split_lines() -> None:
    # "\r" is not a line break, but it is a blank between words.
    assert dump(b"FROM a\rRUN b\n") == '(from "a" "RUN" "b")\n'
    assert dump(b"FROM a\nRUN b\rc\n") == '(from "a")\n(run "b\\rc")\n'


def test_original_is_the_joined_line() -> None:
    result = parse_dockerfile("FROM a\n  RUN  one \\\n two  \n")
    assert result.nodes[1].original == "RUN  one  two  "


def test_comments_above_an_instruction_are_kept() -> None:
    result = parse_dockerfile("# base image\n# pinned\nFROM a\n#\n# runs\nRUN b\nRUN c\n")
    assert result.nodes[0].comments == ("base image", "pinned")
    assert result.nodes[1].comments == ("runs",)
    assert result.nodes[2].comments == ()


def test_keywords_are_case_insensitive() -> None:
    assert dump("from a\nRuN b\nCoPy x y\n") == '(from "a")\n(run "b")\n(copy "x" "y")\n'
    assert parse_dockerfile("fRoM a").nodes[0].instruction == "from"


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "\n\n", "# a\n# b\n", "  \t\n#x\n"])
def test_no_instructions(text: str) -> None:
    err = error(text)
    assert err.message == "file with no instructions"
    assert err.line >= 1


def test_unknown_instruction_with_suggestion() -> None:
    err = error("FROM a\n\n  COPPY x y\n")
    assert err.message == "unknown instruction: COPPY (did you mean COPY?)"
    assert (err.line, err.column, err.source_line) == (3, 3, "  COPPY x y")
    assert str(err) == ("Dockerfile:3: unknown instruction: COPPY (did you mean COPY?)\n"
                        "  3 |   COPPY x y")


@pytest.mark.parametrize(("keyword", "suggestion"), [
    ("RUNN", "RUN"), ("frm", "FROM"), ("form", None), ("HEALTCHECK", "HEALTHCHECK"),
    ("entrypont", "ENTRYPOINT"), ("LABLE", None), ("XYZZY", None), ("EOF", None),
])
def test_unknown_instruction_suggestions(keyword: str, suggestion: str | None) -> None:
    message = error(f"FROM a\n{keyword} x\n").message
    hint = f" (did you mean {suggestion}?)" if suggestion else ""
    assert message == f"unknown instruction: {keyword}{hint}"


def test_errors_carry_file_and_span() -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM a\nENV x \\\n  \\\n", filename="ctx/Dockerfile.dev")
    err = info.value
    assert (err.file, err.line, err.end_line) == ("ctx/Dockerfile.dev", 2, 3)
    assert str(err).startswith("ctx/Dockerfile.dev:2: ENV must have two arguments")


def test_unterminated_heredoc_points_at_the_instruction() -> None:
    err = error("FROM a\nRUN <<EOF\necho\n\n")
    assert (err.message, err.line, err.end_line) == ("unterminated heredoc", 2, 4)
    assert err.source_line == "RUN <<EOF"


def test_text_and_bytes_agree() -> None:
    text = "FROM a\nLABEL k=\"v ☃\"\nRUN echo ♥\n"
    assert parse_dockerfile(text) == parse_dockerfile(text.encode())


def test_filename_is_kept() -> None:
    assert parse_dockerfile("FROM a", filename="x/Dockerfile").filename == "x/Dockerfile"


# --- speed -----------------------------------------------------------------------------------

def test_ten_thousand_instructions_parse_quickly() -> None:
    kinds = (
        "RUN apt-get update && apt-get install -y curl \\\n    && rm -rf /var/lib/apt/lists/*\n",
        'ENV FOO=bar BAZ="qu ux"\n', "COPY --chown=1000:1000 --link src/ /app/\n", "LABEL a=b\n",
        "# a comment\n", 'CMD ["python", "-m", "app"]\n', "ARG X=1\n", "WORKDIR /app\n",
        "EXPOSE 80 443\n", "RUN <<EOF\necho hi\nEOF\n", "ENV LEGACY value with spaces\n",
    )
    text = "FROM alpine:3.19 AS base\n" + "".join(kinds[i % len(kinds)] for i in range(10000))
    best = min(_cpu_seconds(text) for _ in range(3))
    assert best < 0.3, f"parsing 10,000 instructions took {best:.3f}s of CPU"


def _cpu_seconds(text: str) -> float:
    start = time.process_time()
    result = parse_dockerfile(text)
    elapsed = time.process_time() - start
    assert len(result.nodes) > 9000
    return elapsed
