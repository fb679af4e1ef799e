"""BuildKit's own parser test vectors: dumps byte-identical, negatives rejected, lines right."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.dockerfile import dump_buildkit, parse_dockerfile
from core.errors import DockerfileError

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "buildkit"
pytestmark = pytest.mark.skipif(
    not CONFORMANCE.is_dir(), reason=f"conformance vectors not found at {CONFORMANCE}")


def _cases(folder: str) -> list[str]:
    root = CONFORMANCE / folder
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


POSITIVE = _cases("testfiles")
NEGATIVE = _cases("testfiles-negative")


def test_all_vectors_are_found() -> None:
    assert len(POSITIVE) == 33
    assert len(NEGATIVE) == 4


@pytest.mark.parametrize("name", POSITIVE)
def test_dump_matches_buildkit(name: str) -> None:
    case = CONFORMANCE / "testfiles" / name
    result = parse_dockerfile((case / "Dockerfile").read_bytes())
    assert dump_buildkit(result) == (case / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", POSITIVE)
def test_text_input_gives_the_same_dump(name: str) -> None:
    case = CONFORMANCE / "testfiles" / name
    text = (case / "Dockerfile").read_text(encoding="utf-8")
    assert dump_buildkit(parse_dockerfile(text)) == (case / "result").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", POSITIVE)
def test_crlf_files_dump_the_same(name: str) -> None:
    case = CONFORMANCE / "testfiles" / name
    data = (case / "Dockerfile").read_bytes().replace(b"\n", b"\r\n")
    assert dump_buildkit(parse_dockerfile(data)) == (case / "result").read_text(encoding="utf-8")


NEGATIVE_ERRORS = {
    "empty_dockerfile": ("file with no instructions", 1),
    "env_no_value": ("ENV must have two arguments", 3),
    "only_comments": ("file with no instructions", 3),
    "shykes-nested-json": (
        "when using JSON array syntax, arrays must be comprised of strings only", 1),
}


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative_cases_are_rejected(name: str) -> None:
    path = CONFORMANCE / "testfiles-negative" / name / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(path.read_bytes(), filename=str(path))
    message, line = NEGATIVE_ERRORS[name]
    assert info.value.message == message
    assert info.value.line == line
    assert info.value.file == str(path)


def test_line_numbers_of_testfile_line() -> None:
    # Read off the file: a directive on line 1, FROM on 5, ENV on 11 continued to 12, and a
    # RUN from 17 to 31 whose continuation spans blank lines (19, 20, 24, 27).
    data = (CONFORMANCE / "testfile-line" / "Dockerfile").read_bytes()
    result = parse_dockerfile(data)
    spans = [(n.instruction, n.start_line, n.end_line) for n in result.nodes]
    assert spans == [("from", 5, 5), ("env", 11, 12), ("run", 17, 31)]
    assert [(d.name, d.value, d.line) for d in result.directives] == [("escape", "\\", 1)]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("Dockerfile:17: Empty continuation line found in: RUN ")
    assert result.nodes[1].comments == ("TORUN -v /var/run/docker.sock:/var/run/docker.sock",)
