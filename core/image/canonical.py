"""Deterministic JSON: the same content always serialises to the same bytes (and digest)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from core.errors import ImageError


def canonical_json(obj: object) -> bytes:
    """Serialise `obj` with sorted keys, no insignificant whitespace, UTF-8 text.

    Non-ASCII characters are written as themselves, NaN and infinities are refused, so equal
    values give equal bytes whatever the key order of the dicts they came in.
    """
    try:
        text = json.dumps(thaw_json(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ImageError(f"value cannot be written as JSON: {err}") from None
    return text.encode("utf-8")


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """Decode `data` as one JSON object; anything else is an ImageError naming `what`."""
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ImageError(f"{what} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ImageError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ImageError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def freeze_json(value: Any) -> Any:
    """A read-only copy of a decoded JSON value: objects become mappings, arrays tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    return value


def thaw_json(value: Any) -> Any:
    """Plain dicts and lists again, ready for `json.dumps` (undoes `freeze_json`)."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw_json(v) for v in value]
    return value
