"""Here-documents: markers on RUN/COPY/ADD lines, bodies, quoting, `<<-`, line spans."""

from __future__ import annotations

import pytest

from core.dockerfile import Heredoc, dump_buildkit, parse_dockerfile
from core.dockerfile.heredoc import find_markers
from core.errors import DockerfileError


def docs(text: str | bytes) -> list[tuple[Heredoc, ...]]:
    return [n.heredocs for n in parse_dockerfile(text).nodes]


def test_run_heredoc_with_a_command_after_the_marker() -> None:
    result = parse_dockerfile("FROM a\nRUN <<EOF python3\nprint('hi')\nEOF\nRUN next\n")
    run = result.nodes[1]
    assert run.args == ("<<EOF python3",)
    assert run.heredocs == (Heredoc("EOF", "print('hi')\n", expand=True, chomp=False),)
    assert (run.start_line, run.end_line) == (2, 4)
    assert (result.nodes[2].start_line, result.nodes[2].end_line) == (5, 5)
    assert dump_buildkit(result) == '(from "a")\n(run "<<EOF python3")\n(run "next")\n'


def test_several_heredocs_on_one_line_read_in_order() -> None:
    result = parse_dockerfile("FROM a\nCOPY <<FILE1 <<FILE2 /dest\none\nFILE1\ntwo\nFILE2\n")
    copy = result.nodes[1]
    assert copy.args == ("<<FILE1", "<<FILE2", "/dest")
    assert [(d.name, d.content) for d in copy.heredocs] == [("FILE1", "one\n"), ("FILE2", "two\n")]
    assert copy.end_line == 6


def test_delimiters_may_appear_inside_other_bodies() -> None:
    copy = parse_dockerfile("FROM a\nCOPY <<X <<Y /d\nY\nX\nX\nY\n").nodes[1]
    assert [(d.name, d.content) for d in copy.heredocs] == [("X", "Y\n"), ("Y", "X\n")]


def test_empty_body_and_file_descriptor() -> None:
    run = parse_dockerfile("FROM a\nRUN 3<<EMPTY\nEMPTY\n").nodes[1]
    assert run.heredocs == (Heredoc("EMPTY", "", expand=True, chomp=False, file_descriptor=3),)


@pytest.mark.parametrize(("marker", "name", "expand"), [
    ("<<EOF", "EOF", True),
    ("<<'EOF'", "EOF", False),
    ('<<"EOF"', "EOF", False),
    ("<<E'O'F", "EOF", False),
    ("<<-'EOF'", "EOF", False),
    ("<<\\EOF", "EOF", True),
    ("<<$X", "$X", True),
    ("<<${X}", "${X}", True),
    ('<<"E F"', "E F", False),
])
def test_marker_names_and_expansion(marker: str, name: str, expand: bool) -> None:
    (found,) = find_markers(f"RUN cat {marker}")
    assert (found.name, found.expand) == (name, expand)


@pytest.mark.parametrize("line", [
    "RUN '<<EOF'", 'RUN "<<EOF"', "RUN a<<EOF", "RUN <<", "RUN <<-", "RUN <<<EOF",
    "RUN <EOF", "RUN <<'EOF", "RUN <<EOF'", 'RUN <<"EOF', "RUN <<''", "RUN echo ${a",
    "RUN <<EOF ${", "RUN <<EOF ${}", "RUN <<EOF ${a:x", "RUN <<EOF ${a!}",
])
def test_not_heredocs(line: str) -> None:
    assert find_markers(line) == ()


@pytest.mark.parametrize("line", [
    "RUN <<EOF ${a}", "RUN <<EOF ${a:-b c}", "RUN <<EOF ${a/b/c}", "RUN <<EOF $1 $@",
    "RUN <<EOF \"a\\\"b\" 'c'", "RUN <<EOF ${a#x} ${a%y}", "RUN <<EOF $", "RUN <<EOF \\",
])
def test_shell_syntax_around_markers(line: str) -> None:
    assert [m.name for m in find_markers(line)] == ["EOF"]


def test_chomp_strips_leading_tabs_of_body_and_terminator() -> None:
    run = parse_dockerfile("FROM a\nRUN <<-EOT\n\tbaz\n\t\tquux\n  sp\n\tEOT\n").nodes[1]
    assert run.heredocs == (Heredoc("EOT", "baz\nquux\n  sp\n", expand=True, chomp=True),)
    assert run.end_line == 6


def test_without_chomp_tabs_stay_and_an_indented_terminator_is_body() -> None:
    run = parse_dockerfile("FROM a\nRUN <<EOT\n\tfoo\n\tEOT\nEOT\n").nodes[1]
    assert run.heredocs[0].content == "\tfoo\n\tEOT\n"


def test_bodies_are_byte_exact() -> None:
    body = b"# not a comment \\\n\xff raw\r\n  $HOME \\\n\n"
    run = parse_dockerfile(b"FROM a\nRUN <<EOF\n" + body + b"EOF\n").nodes[1]
    assert run.heredocs[0].content.encode("utf-8", "surrogateescape") == body


def test_crlf_terminator() -> None:
    run = parse_dockerfile(b"FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\nRUN b\r\n").nodes[1]
    assert run.heredocs[0].content == "x\r\n"
    assert run.end_line == 4


def test_terminator_at_end_of_file_without_newline() -> None:
    run = parse_dockerfile("FROM a\nRUN <<EOF\nx\nEOF").nodes[1]
    assert (run.heredocs[0].content, run.end_line) == ("x\n", 4)


def test_heredocs_only_for_run_copy_add() -> None:
    # BuildKit reads no bodies for other instructions: the next line is an instruction again.
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM a\nUSER <<INVALID\nINVALID\n")
    assert info.value.message == "unknown instruction: INVALID"
    assert info.value.line == 3
    assert docs("FROM a\nCMD <<EOF\nRUN x\n")[1] == ()


def test_json_form_has_no_heredocs() -> None:
    assert docs('FROM a\nRUN ["<<EOF"]\nRUN ["cat", "<<\'EOF\'"]\n') == [(), (), ()]


def test_markers_after_flags_and_continuations() -> None:
    result = parse_dockerfile(
        "FROM a\nRUN --mount=type=cache,target=/c \\\n  <<EOF bash\necho hi\nEOF\n")
    run = result.nodes[1]
    assert run.flags == ("--mount=type=cache,target=/c",)
    assert (run.start_line, run.end_line, run.heredocs[0].content) == (2, 5, "echo hi\n")


def test_onbuild_heredoc_is_read_for_the_trigger() -> None:
    onbuild = parse_dockerfile("FROM a\nONBUILD RUN <<EOF\nx\nEOF\n").nodes[1]
    assert onbuild.heredocs == (Heredoc("EOF", "x\n", expand=True, chomp=False),)
    assert onbuild.child is not None
    assert onbuild.child.heredocs == onbuild.heredocs
    assert onbuild.end_line == onbuild.child.end_line == 4


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM a\nCOPY <<A <<B /d\na\nA\nb\n")
    assert (info.value.message, info.value.line, info.value.end_line) == (
        "unterminated heredoc", 2, 5)


def test_huge_file_descriptor_saturates() -> None:
    (marker,) = find_markers("RUN " + "9" * 5000 + "<<EOF")
    assert marker.file_descriptor == 2**64 - 1
    (marker,) = find_markers("RUN 0009<<EOF")
    assert marker.file_descriptor == 9
