"""BuildKit's own word-expansion vectors (shell-envVarTest, shell-wordsTest), read from shared/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.dockerfile.shell import Lexer
from core.errors import DockerfileError

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO.parent / "shared" / "conformance" / "buildkit"
ENV_VAR_TEST = VECTORS / "shell-envVarTest"
WORDS_TEST = VECTORS / "shell-wordsTest"

# The environment every shell-envVarTest line runs with (see the vectors' README).
ENV_VAR_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _missing(path: Path) -> list[Any]:
    reason = f"BuildKit conformance vectors not found at {path}"
    return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="absent")]


def _env_var_cases() -> list[Any]:
    """(source, expected) for every A and U line; W lines are Windows-only."""
    if not ENV_VAR_TEST.is_file():
        return _missing(ENV_VAR_TEST)
    cases = []
    for number, line in enumerate(ENV_VAR_TEST.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        platform, source, expected = (part.strip() for part in line.strip().split("|"))
        assert platform in ("A", "U", "W"), f"bad platform tag on line {number}"
        if platform != "W":
            cases.append(pytest.param((source, expected), id=f"line{number}:{source}"))
    return cases


def _words_cases() -> list[Any]:
    """(source, env at that line, expected words) for every test line of shell-wordsTest."""
    if not WORDS_TEST.is_file():
        return _missing(WORDS_TEST)
    env: dict[str, str] = {}
    cases = []
    for number, line in enumerate(WORDS_TEST.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("ENV "):
            name, _, value = line[3:].lstrip(" ").partition("=")
            env[name] = value
            continue
        source, expected = line.split("|")
        words = expected.lstrip(" ").split(",")
        cases.append(pytest.param((source.strip(), dict(env), words),
                                  id=f"line{number}:{source.strip()}"))
    return cases


@pytest.mark.parametrize("case", _env_var_cases())
def test_env_var_vector(case: tuple[str, str]) -> None:
    source, expected = case
    lexer = Lexer()
    if expected == "error":
        with pytest.raises(DockerfileError):
            lexer.expand_word(source, ENV_VAR_ENV)
        return
    assert lexer.expand_word(source, ENV_VAR_ENV) == expected
    assert lexer.expand_word_with_matches(source, ENV_VAR_ENV).value == expected


@pytest.mark.parametrize("case", _words_cases())
def test_words_vector(case: tuple[str, dict[str, str], list[str]]) -> None:
    source, env, expected = case
    lexer = Lexer()
    if expected == ["error"]:
        with pytest.raises(DockerfileError):
            lexer.expand_words(source, env)
        return
    assert lexer.expand_words(source, env) == expected


def test_vectors_are_all_collected() -> None:
    """Guard against a parsing slip silently dropping vectors."""
    if not (ENV_VAR_TEST.is_file() and WORDS_TEST.is_file()):
        pytest.skip(f"BuildKit conformance vectors not found at {VECTORS}")
    assert len(_env_var_cases()) > 200
    assert len(_words_cases()) >= 20
