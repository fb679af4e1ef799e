"""Exec-form arguments: a JSON array of strings, decoded as Go's encoding/json decodes it.

BuildKit tries JSON only when the arguments start with `[`. Anything Go's decoder rejects
(syntax errors, `NaN`, numbers outside float64, nesting deeper than 10000) silently falls back to
the shell form; a well-formed array holding anything but strings is an error. Decoded strings
follow Go: invalid UTF-8 and unpaired surrogate escapes become U+FFFD.
"""

from __future__ import annotations

import json
import math
import re
from typing import Final

from core.dockerfile.lines import go_trim_left
from core.errors import DockerfileError

NOT_STRING_ARRAY: Final = "when using JSON array syntax, arrays must be comprised of strings only"
_MAX_DEPTH: Final = 10000  # Go's encoding/json scanner limit
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_SIMPLE_STRING: Final = re.compile(r'"([^"\\\x00-\x1f]*)"')
_SIMPLE_ARRAY: Final = re.compile(
    r'\[[ \t\n\r]*(?:"[^"\\\x00-\x1f]*"(?:[ \t\n\r]*,[ \t\n\r]*"[^"\\\x00-\x1f]*")*[ \t\n\r]*)?'
    r"\][ \t\n\r]*")
_TOKEN: Final = re.compile(
    r"""[ \t\n\r]*+(?:
        (?P<str>"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+")
      | (?P<num>-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?)
      | (?P<lit>true|false|null)
      | (?P<punct>[\[\]{},:])
    )""",
    re.VERBOSE,
)


class _NotJSON(ValueError):
    """Raised by the number and constant hooks for values Go's decoder refuses."""


def parse_json_array(text: str) -> tuple[str, ...] | None:
    """The strings of a JSON array, or None when `text` is not a valid JSON array.

    Raises DockerfileError for a valid array with an element that is not a string.
    """
    text = go_trim_left(text)
    if not text.startswith("["):
        return None
    if _SIMPLE_ARRAY.fullmatch(text):  # strings without escapes: no decoder needed
        strings = _SIMPLE_STRING.findall(text)
        return tuple(strings) if text.isascii() else _go_strings(strings)
    return decode_json_array(text)


def decode_json_array(text: str) -> tuple[str, ...] | None:
    """`parse_json_array` for text starting with `[`, always with the full decoder."""
    try:
        value = _DECODER.decode(text)
    except ValueError:
        return None
    except RecursionError:
        if not is_valid_json(text):
            return None
        raise DockerfileError(NOT_STRING_ARRAY) from None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise DockerfileError(NOT_STRING_ARRAY)
    return _go_strings(value)


def _go_strings(strings: list[str]) -> tuple[str, ...]:
    """Decoded strings as Go has them: lone surrogates (invalid UTF-8) become U+FFFD."""
    return tuple(_SURROGATE.sub("\ufffd", item) for item in strings)


def _reject_constant(name: str) -> object:
    raise _NotJSON(name)


def _number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJSON(text)
    return value


# A decoder holds only its (fixed) hooks, no state between calls; built once for speed.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_number,
                                   parse_float=_number)


def is_valid_json(text: str) -> bool:
    """Whether Go would decode `text` as one JSON value (iterative: any depth up to Go's limit)."""
    stack: list[str] = []
    expect = "value"  # one of: value, value|], key|}, key, colon, ,|end
    pos = 0
    while True:
        token = _TOKEN.match(text, pos)
        if token is None:
            return expect == "end" and not text[pos:].strip(" \t\n\r")
        pos = token.end()
        kind, lexeme = token.lastgroup or "", token.group(token.lastgroup or 0)
        if kind == "num" and math.isinf(float(lexeme)):
            return False
        next_expect = _step(expect, kind, lexeme, stack)
        if next_expect is None or len(stack) > _MAX_DEPTH:
            return False
        expect = next_expect


def _step(expect: str, kind: str, lexeme: str, stack: list[str]) -> str | None:
    """One token of the JSON grammar; returns what may follow, None on a syntax error."""
    if expect == "colon":
        return "value" if lexeme == ":" else None
    if expect in ("key", "key|}"):
        if kind == "str":
            return "colon"
        return _close(stack, "{") if expect == "key|}" and lexeme == "}" else None
    if expect in ("value", "value|]"):
        if lexeme in ("[", "{"):
            stack.append(lexeme)
            return "value|]" if lexeme == "[" else "key|}"
        if kind != "punct":
            return _after_value(stack)
        return _close(stack, "[") if expect == "value|]" and lexeme == "]" else None
    # after a value: a comma or the end of the container
    if lexeme == "," and stack:
        return "value" if stack[-1] == "[" else "key"
    if lexeme in ("]", "}") and stack:
        return _close(stack, "[" if lexeme == "]" else "{")
    return None


def _close(stack: list[str], opener: str) -> str | None:
    if not stack or stack[-1] != opener:
        return None
    stack.pop()
    return _after_value(stack)


def _after_value(stack: list[str]) -> str:
    return ",|end" if stack else "end"
