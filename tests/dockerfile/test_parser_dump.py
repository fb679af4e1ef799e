"""The dump formats: Go's string quoting, BuildKit's s-expressions, the JSON document."""

from __future__ import annotations

import json

import pytest

from core.dockerfile import dump_buildkit, dump_json, parse_dockerfile
from core.dockerfile.dump import go_quote


@pytest.mark.parametrize(("text", "quoted"), [
    ("", '""'),
    ("plain text", '"plain text"'),
    ('a"b\\c', '"a\\"b\\\\c"'),
    ("\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
    ("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"'),
    ("♥ ☃ é 中", '"♥ ☃ é 中"'),
    ("\x85\xa0\xad", '"\\u0085\\u00a0\\u00ad"'),
    ("\u2028\ufeff", '"\\u2028\\ufeff"'),
    ("\U000e0001", '"\\U000e0001"'),
    ("😀", '"😀"'),
    ("\ufffd", '"\ufffd"'),
    ("a\udcffb\udce2\udc82", '"a\\xffb\\xe2\\x82"'),  # undecodable bytes
    ("'", "\"'\""),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_dump_shows_undecodable_bytes_like_go() -> None:
    result = parse_dockerfile(b"FROM a\nRUN echo \xff\xfe \xe2\x82 \xc3\xa9\n")
    assert dump_buildkit(result) == '(from "a")\n(run "echo \\xff\\xfe \\xe2\\x82 é")\n'


def test_dump_of_onbuild_and_healthcheck() -> None:
    result = parse_dockerfile("FROM a\nONBUILD RUN [\"echo\", \"x\"]\n"
                              "HEALTHCHECK --interval=5s CMD /check\n")
    assert dump_buildkit(result) == (
        '(from "a")\n(onbuild (run "echo" "x"))\n'
        '(healthcheck ["--interval=5s"] "CMD" "/check")\n')


def test_json_dump_document() -> None:
    result = parse_dockerfile("# syntax=docker/dockerfile:1\nFROM a\nRUN x \\\n\n y\n"
                              "ONBUILD COPY <<EOF /d\nhi\nEOF\n", filename="Dockerfile")
    text = dump_json(result)
    assert text.endswith("}\n")
    document = json.loads(text)
    assert document["directives"] == [
        {"name": "syntax", "value": "docker/dockerfile:1", "line": 1}]
    assert document["escape"] == "\\"
    assert len(document["warnings"]) == 1
    run = document["nodes"][1]
    assert run == {
        "instruction": "run", "flags": [], "args": ["x  y"], "json": False,
        "original": "RUN x  y", "start_line": 3, "end_line": 5, "heredocs": [], "child": None,
    }
    onbuild = document["nodes"][2]
    assert onbuild["heredocs"] == [{"name": "EOF", "content": "hi\n", "expand": True,
                                    "chomp": False, "file_descriptor": 0}]
    assert onbuild["child"]["instruction"] == "copy"
    assert onbuild["child"]["args"] == ["<<EOF", "/d"]
    assert (onbuild["start_line"], onbuild["end_line"]) == (6, 8)


def test_json_dump_escapes_undecodable_bytes() -> None:
    text = dump_json(parse_dockerfile(b"FROM a\xff\n"))
    text.encode("utf-8")  # no lone surrogates left
    assert json.loads(text)["nodes"][0]["args"] == ["a\udcff"]
