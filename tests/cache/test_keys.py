"""Cache keys: plain data of typed values, without their place in the Dockerfile."""

from __future__ import annotations

from core.cache.keys import chain_key, stable
from core.dockerfile import parse_dockerfile
from core.dockerfile.convert import convert_nodes


def _instructions(text: str) -> list[object]:
    return list(convert_nodes(parse_dockerfile(text.encode())))


def test_moving_a_line_keeps_its_key() -> None:
    first = _instructions("FROM scratch\nCOPY a /a\n")[1]
    moved = _instructions("FROM scratch\n# a comment\n\nCOPY a /a\n")[1]
    assert stable(first) == stable(moved)
    assert chain_key("p", "COPY", {"instruction": first}) == \
        chain_key("p", "COPY", {"instruction": moved})


def test_inputs_and_parents_change_keys() -> None:
    base = chain_key("p", "RUN", {"env": {"A": "1"}})
    assert base != chain_key("p", "RUN", {"env": {"A": "2"}})
    assert base != chain_key("q", "RUN", {"env": {"A": "1"}})
    assert base == chain_key("p", "RUN", {"env": {"A": "1"}})
    heredoc = _instructions("FROM scratch\nCOPY <<EOF /x\none\nEOF\n")[1]
    other = _instructions("FROM scratch\nCOPY <<EOF /x\ntwo\nEOF\n")[1]
    assert stable(heredoc) != stable(other)  # heredoc bodies are part of the key
