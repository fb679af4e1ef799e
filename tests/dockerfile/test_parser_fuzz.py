"""Property tests: any input either parses or raises DockerfileError, and results are sane."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.dockerfile import ParseResult, dump_buildkit, dump_json, parse_dockerfile
from core.errors import DockerfileError

FRAGMENTS = (
    "FROM", "RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "ENV", "LABEL", "ARG",
    "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME", "USER", "WORKDIR", "STOPSIGNAL",
    "MAINTAINER", "run", "copy", "NONE", " CMD ", "COPPY", " ", "  ", "\t", "\n", "\r\n", "\r",
    "\\", "\\\n", "`", "`\n", "#", "# escape=`\n", "# escape=\\\n", "# syntax=x\n",
    "# check=skip=all\n", "<<", "<<EOF", "<<-EOF", "<<'EOF'", '<<"EOF"', "3<<X", "EOF", "\tEOF",
    "X", "'", '"', "[", "]", ",", '"a"', "[]", '["a", "b"]', "[1]", "{", "}", "$", "${", "${a}",
    "=", "a=b", "--", "--from=x", "--mount=type=cache", "-", "x", "é", "\u00a0", "\x85",
    "\x00", "\ufeff", "\udcff", "1e999", "null",
)

dockerish = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join)
dockerish_lines = st.lists(
    st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join), max_size=20,
).map("\n".join)


def check(data: str | bytes) -> ParseResult | None:
    try:
        result = parse_dockerfile(data, filename="fuzz/Dockerfile")
    except DockerfileError as err:
        assert err.file == "fuzz/Dockerfile"
        assert err.line >= 1
        assert err.end_line >= err.line
        str(err)
        return None
    assert result.nodes
    previous_end = 0
    for node in result.nodes:
        assert previous_end < node.start_line <= node.end_line
        previous_end = node.end_line
        assert node.instruction == node.instruction.lower()
    out = dump_buildkit(result)
    assert out.endswith(")\n")
    out.encode("utf-8")
    document = json.loads(dump_json(result))
    assert len(document["nodes"]) == len(result.nodes)
    return result


SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@SETTINGS
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@SETTINGS
@given(dockerish)
def test_dockerfile_fragments(text: str) -> None:
    check(text)


@SETTINGS
@given(dockerish_lines)
def test_dockerfile_lines(text: str) -> None:
    check("FROM a\n" + text)


@SETTINGS
@given(dockerish_lines)
def test_text_and_utf8_bytes_agree(text: str) -> None:
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return
    outcomes: list[object] = []
    for source in (text, data):
        try:
            outcomes.append(parse_dockerfile(source))
        except DockerfileError as err:
            outcomes.append((err.message, err.line))
    assert outcomes[0] == outcomes[1]
