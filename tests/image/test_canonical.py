"""Canonical JSON: equal content, equal bytes, equal digest."""

from __future__ import annotations

import itertools
import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ImageError
from core.image.canonical import canonical_json, freeze_json, parse_json_object, thaw_json
from core.image.digest import sha256_digest

DOC = {"schemaVersion": 2, "mediaType": "x", "config": {"size": 1, "digest": "d"},
       "layers": [{"b": 1, "a": [3, 2, 1]}], "annotations": {"z": "ü<&>", "a": ""}}


def _permute(value: Any, order: int) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        if order % 2:
            items.reverse()
        return {k: _permute(v, order // 2) for k, v in items}
    if isinstance(value, list):
        return [_permute(v, order) for v in value]
    return value


def test_key_order_does_not_change_the_digest() -> None:
    digests = set()
    for keys in itertools.permutations(DOC):
        for order in range(4):
            digests.add(sha256_digest(canonical_json(_permute({k: DOC[k] for k in keys}, order))))
    assert len(digests) == 1


def test_exact_bytes() -> None:
    assert canonical_json({"b": [1, True, None], "a": "ü<&>"}) == (
        '{"a":"ü<&>","b":[1,true,null]}'.encode())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_round_trip_and_reordering(value: dict[str, Any]) -> None:
    data = canonical_json(value)
    assert json.loads(data) == value
    reordered = dict(reversed(list(value.items())))
    assert canonical_json(reordered) == data
    assert canonical_json(freeze_json(value)) == data


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": {1, 2}}, object()])
def test_unserialisable_values(value: object) -> None:
    with pytest.raises(ImageError, match="cannot be written as JSON"):
        canonical_json(value)


def test_freeze_and_thaw() -> None:
    frozen = freeze_json({"a": [1, {"b": []}]})
    assert isinstance(frozen, MappingProxyType)
    assert frozen["a"] == (1, MappingProxyType({"b": ()}))
    assert thaw_json(frozen) == {"a": [1, {"b": []}]}


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b"\xff", "not UTF-8"),
    (b"[]", "must be a JSON object, got list"),
    (b"null", "must be a JSON object, got NoneType"),
])
def test_parse_json_object_errors(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        parse_json_object(data, "thing")
