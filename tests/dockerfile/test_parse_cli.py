"""`bucketbuild parse` through `python -m core`, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance" / "buildkit"
needs_vectors = pytest.mark.skipif(
    not CONFORMANCE.is_dir(), reason=f"conformance vectors not found at {CONFORMANCE}")


def _cases(folder: str) -> list[str]:
    root = CONFORMANCE / folder
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def run_parse(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "core", "parse", *map(str, args)],
                          cwd=REPO, capture_output=True, timeout=60, check=False)


@needs_vectors
@pytest.mark.parametrize("name", _cases("testfiles"))
def test_buildkit_dump_is_byte_identical(name: str) -> None:
    case = CONFORMANCE / "testfiles" / name
    done = run_parse(case / "Dockerfile")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == (case / "result").read_bytes()
    assert done.stderr == b""


@needs_vectors
@pytest.mark.parametrize(("name", "line", "message"), [
    ("empty_dockerfile", 1, "file with no instructions"),
    ("env_no_value", 3, "ENV must have two arguments"),
    ("only_comments", 3, "file with no instructions"),
    ("shykes-nested-json", 1, "arrays must be comprised of strings only"),
])
def test_negative_cases_fail_with_location(name: str, line: int, message: str) -> None:
    assert name in _cases("testfiles-negative")
    done = run_parse(CONFORMANCE / "testfiles-negative" / name / "Dockerfile")
    assert done.returncode != 0
    assert done.stdout == b""
    stderr = done.stderr.decode()
    assert f"Dockerfile:{line}: " in stderr
    assert message in stderr
    assert "Traceback" not in stderr


def test_json_format(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a\nRUN <<EOF\nhi \xff\nEOF\n")
    done = run_parse("--format", "json", path)
    assert done.returncode == 0, done.stderr.decode()
    document = json.loads(done.stdout)
    assert [n["instruction"] for n in document["nodes"]] == ["from", "run"]
    assert document["nodes"][1]["heredocs"][0]["content"] == "hi \udcff\n"


def test_undecodable_bytes_are_printed_escaped(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM a\nRUN echo \xff\n")
    done = run_parse(path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b'(from "a")\n(run "echo \\xff")\n'


def test_missing_file(tmp_path: Path) -> None:
    done = run_parse(tmp_path / "nope")
    assert done.returncode != 0
    assert b"nope" in done.stderr
